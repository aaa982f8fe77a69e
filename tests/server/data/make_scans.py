"""Write the scans in this folder and their truths; this project's own text and code.

Run by hand, not by the tests: ``python tests/server/data/make_scans.py``. Each scan is a page
of text written here, typeset with reportlab's built-in Times and Helvetica (no font file),
rendered by PDFium at 200 dpi and saved as a 1-bit image, as an office scanner saves it.
Each ``.txt`` holds the lines as they were typeset, in reading order: the truth the OCR is
measured against.
"""

from __future__ import annotations

import io
import itertools
import zlib
from collections.abc import Callable
from pathlib import Path

import pypdfium2
from PIL import Image
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

HERE = Path(__file__).resolve().parent
DPI = 200
STAMP = "CONFIDENTIAL - BATES NO. ACME-000123"
A4 = (595.276, 841.89)

LETTER_HEAD = [
    "Saltmarsh Sailing Club",
    "14 Quay Street, Port Elwyn",
    "3 November 2026",
    "Dear Ms Hartley,",
]
LETTER_BODY = (
    "Thank you for your letter about the winter storage of your boat. We have room for her "
    "in the lower yard from the middle of the month, and the crane is booked for the morning "
    "of the eighteenth. Please bring the mast down the week before, and leave the keys with "
    "the office so that the yard crew can move her if the wind turns."
)
LETTER_FOOT = ["Yours sincerely,", "Tom Abernethy", "Secretary to the committee"]

ARTICLE = (
    "When the old lifeboat station closed, the town lost more than a building on the "
    "shore. For ninety years the station had been the place where fishermen met before "
    "dawn to read the weather, where children learned to tie knots on wet afternoons, and "
    "where the whole street gathered when a boat was late coming home. The crews were "
    "volunteers, and most of them worked at the harbour, the boatyard or the fish market, "
    "so that the siren could empty half the town in a few minutes. "
    "The new station stands two miles along the coast, on a headland where the water is "
    "deep enough at every state of the tide. Its boat is faster and its crew better "
    "trained, and nobody in the town argues that the move was wrong. Yet the old building "
    "stood empty for six winters, its doors chained and its slipway slowly buried by "
    "shingle, and people walked past it without looking. "
    "Last spring a group of neighbours asked the council for the keys. They cleared the "
    "shingle, mended the roof and opened the doors on Saturday mornings. Now the boat hall "
    "holds a small museum of the rescues, a workshop where young people build dinghies, and "
    "a long table where anyone may sit with a cup of tea and watch the harbour. The siren "
    "is silent, but the building is full again."
)

SCAN_TITLE = "Report of the harbour works committee"
SCAN_TEXT = [
    "The committee met four times during the year to follow the repair of the eastern "
    "quay wall. The contractor began work in April, when the worst of the winter weather "
    "had passed, and finished the stonework at the end of August, two weeks later than "
    "planned because of a fortnight of high tides in July.",
    "The new mooring chains were laid in September. The divers who inspected them after "
    "the first autumn storm found them sound, and the committee recommends that the old "
    "chains be sold for scrap. The cost of the whole work came within the budget agreed "
    "by the board, with a small sum left for the painting of the railings next spring.",
]


def _render(draw: Callable[[Canvas], None], size: tuple[float, float]) -> Image.Image:
    """The page ``draw(canvas)`` makes, rendered at :data:`DPI` in grey."""
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=size, invariant=True)
    draw(canvas)
    canvas.save()
    page = pypdfium2.PdfDocument(out.getvalue())[0]
    image: Image.Image = page.render(scale=DPI / 72, grayscale=True).to_pil().convert("L")
    return image


def _bilevel(image: Image.Image) -> Image.Image:
    return image.point(lambda value: 255 if value > 160 else 0).convert("1")


def _trimmed(image: Image.Image, margin: int = 40) -> Image.Image:
    """``image`` cut to its ink with a white ``margin`` all round."""
    box = Image.eval(image, lambda value: 255 - value).getbbox()
    assert box is not None
    left, top, right, bottom = box
    return image.crop((left - margin, top - margin, right + margin, bottom + margin))


def _write_text(name: str, lines: list[str]) -> None:
    (HERE / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _justified(canvas: Canvas, lines: list[str], x: float, y: float, width: float) -> None:
    """Draw ``lines`` from ``y`` down, every one but the last stretched to ``width``."""
    font, size, leading = "Times-Roman", 10, 12.5
    for index, line in enumerate(lines):
        text = canvas.beginText(x, y - index * leading)
        text.setFont(font, size)
        gaps = line.count(" ")
        if index < len(lines) - 1 and gaps:
            text.setWordSpace((width - stringWidth(line, font, size)) / gaps)
        text.textLine(line)
        canvas.drawText(text)


def rotated_letters() -> None:
    """A short letter, turned by 90, 180 and 270 degrees."""
    body = simpleSplit(LETTER_BODY, "Times-Roman", 12, 400)
    lines = LETTER_HEAD + body + LETTER_FOOT

    def draw(canvas: Canvas) -> None:
        canvas.setFont("Helvetica-Bold", 13)
        canvas.drawString(40, 330, LETTER_HEAD[0])
        canvas.setFont("Times-Roman", 12)
        y = 312.0
        for index, line in enumerate(lines[1:], start=1):
            # A blank line after the address, the date, the greeting and the body.
            y -= 8 if index in (3, 4, 4 + len(body)) else 0
            canvas.drawString(40, y, line)
            y -= 15

    upright = _bilevel(_trimmed(_render(draw, (480, 360))))
    _write_text("letter.txt", lines)
    for angle in (90, 180, 270):
        upright.rotate(angle, expand=True).save(HERE / f"letter-{angle}.png", optimize=True)


def three_columns() -> None:
    """An article of running text set in three justified columns with a narrow gutter.

    The gutter is 10 pt (0.14 in), as in many real papers: narrow enough that a reader
    taking the page line by line runs across the columns.
    """
    width, gutter = 200.0, 10.0
    lines = simpleSplit(ARTICLE, "Times-Roman", 10, width)
    per_column = -(-len(lines) // 3)
    columns = [lines[i : i + per_column] for i in range(0, len(lines), per_column)]
    assert len(columns) == 3

    def draw(canvas: Canvas) -> None:
        for number, column in enumerate(columns):
            _justified(canvas, column, 30 + number * (width + gutter), 260, width)

    _bilevel(_trimmed(_render(draw, (3 * width + 2 * gutter + 60, 300)))).save(
        HERE / "three-columns.png", optimize=True
    )
    _write_text("three-columns.txt", lines)


CHART_TEXT = (
    "The chart below shows the depth of water at the harbour mouth through one spring tide, "
    "measured every hour from the end of the eastern quay."
)
CHART_UP = "Depth of water in metres"
CHART_DOWN = "Measured at the eastern quay"
CHART_ACROSS = "Hours after low water"


def chart() -> None:
    """A paragraph over a line chart whose axis titles run up and down its sides.

    Titles turned a quarter, as charts and figures set them; the truth holds the lines as
    typeset (the order of the titles is left open: a reader may take them in any order).
    """
    paragraph = simpleSplit(CHART_TEXT, "Times-Roman", 12, 440)

    def draw(canvas: Canvas) -> None:
        canvas.setFont("Times-Roman", 12)
        for index, line in enumerate(paragraph):
            canvas.drawString(40, 560 - 16 * index, line)
        canvas.rect(110, 150, 300, 300)
        points = [(110 + 25 * hour, 170 + 260 * (1 - abs(6 - hour) / 6)) for hour in range(13)]
        canvas.lines([(*a, *b) for a, b in itertools.pairwise(points)])
        canvas.setFont("Helvetica", 12)
        canvas.drawCentredString(260, 125, CHART_ACROSS)
        canvas.saveState()
        canvas.translate(90, 300)
        canvas.rotate(90)  # counter-clockwise: the title runs up the page
        canvas.drawCentredString(0, 0, CHART_UP)
        canvas.restoreState()
        canvas.saveState()
        canvas.translate(430, 300)
        canvas.rotate(-90)  # clockwise: the title runs down the page
        canvas.drawCentredString(0, 0, CHART_DOWN)
        canvas.restoreState()

    _bilevel(_trimmed(_render(draw, (520, 600)))).save(HERE / "chart.png", optimize=True)
    _write_text("chart.txt", [*paragraph, CHART_UP, CHART_ACROSS, CHART_DOWN])


def _pdf(objects: list[bytes]) -> bytes:
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    trailer = f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    out += trailer.encode()
    return bytes(out)


def _image_page_pdf(image: Image.Image, width: float, height: float, content: bytes) -> bytes:
    """One page drawing a 1-bit ``image`` (as /Im1) with ``content`` (may use /F1 Helvetica)."""
    bits = image.convert("1")
    data = zlib.compress(bits.tobytes(), 9)
    return _pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width:g} {height:g}] "
            "/Resources << /XObject << /Im1 5 0 R >> /Font << /F1 6 0 R >> >> "
            "/Contents 4 0 R >>".encode(),
            f"<< /Length {len(content)} >>\nstream\n".encode() + content + b"\nendstream",
            f"<< /Type /XObject /Subtype /Image /Width {bits.width} /Height {bits.height} "
            "/ColorSpace /DeviceGray /BitsPerComponent 1 /Filter /FlateDecode "
            f"/Length {len(data)} >>\nstream\n".encode()
            + data
            + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        ]
    )


def stamped_scan() -> None:
    """A scanned committee report (its upper part) as a page image, with a one-line stamp."""
    paragraphs = [simpleSplit(text, "Times-Roman", 12, A4[0] - 144) for text in SCAN_TEXT]

    def draw(canvas: Canvas) -> None:
        canvas.setFont("Helvetica-Bold", 15)
        canvas.drawString(72, A4[1] - 90, SCAN_TITLE)
        canvas.setFont("Times-Roman", 12)
        y = A4[1] - 124
        for lines in paragraphs:
            for line in lines:
                canvas.drawString(72, y, line)
                y -= 16
            y -= 12

    scan = _bilevel(_render(draw, A4))
    _write_text("stamped-scan.txt", [SCAN_TITLE] + [line for lines in paragraphs for line in lines])
    width, height = A4
    content = (
        f"q {width:g} 0 0 {height:g} 0 0 cm /Im1 Do Q\nBT /F1 11 Tf 72 40 Td ({STAMP}) Tj ET"
    ).encode()
    (HERE / "stamped-scan.pdf").write_bytes(_image_page_pdf(scan, width, height, content))


def page_size_bomb() -> None:
    """A 200 x 200 inch page (PDF's largest) drawing one small image over all of it."""
    side = 200 * 72
    image = Image.new("L", (64, 64), 255)
    image.paste(0, (8, 8, 56, 16))
    content = f"q {side} 0 0 {side} 0 0 cm /Im1 Do Q".encode()
    (HERE / "page-200in.pdf").write_bytes(_image_page_pdf(image, side, side, content))


def main() -> None:
    """Write every scan and its truth next to this script."""
    rotated_letters()
    three_columns()
    chart()
    stamped_scan()
    page_size_bomb()


if __name__ == "__main__":
    main()
