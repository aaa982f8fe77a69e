"""Regenerate the example documents in this folder, byte for byte.

- ``saltmarsh-observatory.pdf``: a born-digital, 3-page PDF with a real text layer
  (Helvetica; headings and paragraphs about a fictional tidal observatory).
- ``scanned-letter.jpg``: a letter page rendered at 150 dpi, rotated by 1 degree, with
  seeded grain, saved as JPEG, as a flatbed scan would look.
- ``receipt.png``: a short receipt with a table of items and prices.

Run ``python examples/data/make_data.py``; it needs only Pillow.
"""

from __future__ import annotations

import io
import random
import textwrap
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = Path(__file__).resolve().parent

PDF_PAGES: list[list[tuple[str, str]]] = [
    [
        ("h1", "The Saltmarsh Tidal Observatory"),
        ("h2", "A visitor's guide, spring edition"),
        (
            "p",
            "The Saltmarsh Tidal Observatory stands on stilts at the mouth of the Wren estuary, "
            "where the river meets a shallow bay that empties twice a day. Founded in 1911 by "
            "the engineer Maud Keswick, it has recorded the height of every tide since, first "
            "with a float and a pen on a paper drum, today with a radar gauge read each minute.",
        ),
        ("h2", "What you can see"),
        (
            "p",
            "The gauge room keeps the original brass clockwork, still wound every Monday. In the "
            "long gallery, forty years of paper records hang in frames, each roll a month of "
            "water rising and falling. From the balcony, at low water, the mudflats show the "
            "ribs of the schooner Patience, which ran aground in the great storm of 1953.",
        ),
    ],
    [
        ("h2", "Tides and timetables"),
        (
            "p",
            "High water at the observatory comes about fifty minutes later each day. Spring "
            "tides, the largest, follow the new and the full moon by a day or two; neap tides "
            "fall between them. The observatory publishes a table for each month, and the "
            "harbour master posts the next four tides on the board by the slipway.",
        ),
        ("h2", "Safety on the flats"),
        (
            "p",
            "The flood tide crosses the flats faster than a person can walk. Keep to the marked "
            "causeway, carry the tide table, and turn back at the orange post if the water "
            "reaches it. The siren on the observatory roof sounds one long note thirty minutes "
            "before high water.",
        ),
    ],
    [
        ("h2", "Opening hours"),
        (
            "p",
            "From April to October the observatory opens daily from 10:00 to 17:00; from "
            "November to March, on weekends only. Entry is free for members of the Saltmarsh "
            "Society and costs 4 pounds for other adults. Guided tours of the gauge room start "
            "at 11:00 and 15:00 and last forty minutes.",
        ),
        ("h2", "Contact"),
        ("p", "Saltmarsh Tidal Observatory, Causeway End, Wrenmouth. Telephone 01632 960 114."),
    ],
]

LETTER = [
    "Wrenmouth, 3 March",
    "",
    "Dear Ms Keswick,",
    "",
    "Thank you for the tide records of last winter. The readings",
    "for the storm of 14 January agree with our own gauge to within",
    "two centimetres, which is better than we hoped.",
    "",
    "We would like to borrow the rolls for 1952 and 1953 for the",
    "exhibition in the autumn. They will be kept in a dry room and",
    "returned before the end of November.",
    "",
    "With kind regards,",
    "Tobias Fenwick, Harbour Museum",
]

RECEIPT = [
    "OBSERVATORY CAFE",
    "Causeway End, Wrenmouth",
    "",
    "2  Tea, pot for one      5.00",
    "1  Crab sandwich         7.50",
    "1  Lemon cake            3.20",
    "1  Tide table 2024       2.00",
    "",
    "TOTAL                   17.70",
    "Paid by card     12/04  14:32",
]

_STYLES = {"h1": ("F2", 20.0, 30.0), "h2": ("F2", 14.0, 24.0), "p": ("F1", 11.0, 15.0)}


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _page_content(blocks: Sequence[tuple[str, str]]) -> bytes:
    y = 730.0
    commands = []
    for style, text in blocks:
        font, size, leading = _STYLES[style]
        # Helvetica averages about half an em per character: 85 characters fill 6.5 inches.
        for line in textwrap.wrap(text, width=85 if style == "p" else 60):
            commands.append(f"BT /{font} {size:g} Tf 72 {y:g} Td ({_escape(line)}) Tj ET")
            y -= leading
        y -= 8
    return "\n".join(commands).encode("cp1252")


def make_pdf(pages: Sequence[Sequence[tuple[str, str]]]) -> bytes:
    """A PDF with a text layer, written by hand: standard fonts need no embedding."""
    kids = " ".join(f"{5 + 2 * i} 0 R" for i in range(len(pages)))
    font = "<< /Type /Font /Subtype /Type1 /BaseFont /{} /Encoding /WinAnsiEncoding >>"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode(),
        font.format("Helvetica").encode(),
        font.format("Helvetica-Bold").encode(),
    ]
    for i, blocks in enumerate(pages):
        content = _page_content(blocks)
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources "
            f"<< /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {6 + 2 * i} 0 R >>".encode()
        )
        header = f"<< /Length {len(content)} >>\nstream\n".encode()
        objects.append(header + content + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n".encode()
    out += f"startxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _draw_lines(
    size: tuple[int, int], lines: Sequence[str], font_size: int, left: int, top: int
) -> Image.Image:
    font = ImageFont.load_default(size=font_size)
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    step = int(font_size * 1.5)
    for row, text in enumerate(lines):
        draw.text((left, top + row * step), text, font=font, fill=20)
    return image


def make_scan() -> bytes:
    """A letter page at 150 dpi (1275 x 1650 px), slightly rotated, grainy, as JPEG."""
    page = _draw_lines((1275, 1650), LETTER, font_size=30, left=150, top=180)
    page = page.rotate(1.0, resample=Image.Resampling.BICUBIC, fillcolor=250)
    page = page.filter(ImageFilter.GaussianBlur(radius=0.6))
    grain = Image.frombytes("L", page.size, random.Random(1911).randbytes(page.width * page.height))
    page = Image.blend(page, grain, 0.06)
    buffer = io.BytesIO()
    page.save(buffer, "JPEG", quality=60, dpi=(150, 150))
    return buffer.getvalue()


def make_receipt() -> bytes:
    """A receipt with a small table of items and prices, as PNG."""
    image = _draw_lines((560, 420), RECEIPT, font_size=24, left=30, top=30)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def main() -> None:
    """Write the three example files next to this script."""
    outputs = {
        "saltmarsh-observatory.pdf": make_pdf(PDF_PAGES),
        "scanned-letter.jpg": make_scan(),
        "receipt.png": make_receipt(),
    }
    for name, data in outputs.items():
        (HERE / name).write_bytes(data)
        print(f"wrote {name} ({len(data) // 1024} KB)")


if __name__ == "__main__":
    main()
