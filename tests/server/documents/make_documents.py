"""Write the small PDFs that show each class of text-layer problem seen on real documents.

Run ``python tests/server/documents/make_documents.py`` to rebuild them; the tests read the
committed files. Each page draws Helvetica glyphs and gives them the text of its choice with
a ToUnicode map, so the text layer says exactly what the case needs while the rendered page
stays readable (the garbage case relies on it: OCR must find the drawn words).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _cmap(mapping: dict[int, str]) -> bytes:
    """A ToUnicode CMap from one-byte codes to text (UTF-16BE, surrogates as they come)."""
    lines = [
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap",
        "/CMapName /Custom def /CMapType 2 def",
        "1 begincodespacerange <00> <FF> endcodespacerange",
        f"{len(mapping)} beginbfchar",
    ]
    for code, text in sorted(mapping.items()):
        lines.append(f"<{code:02X}> <{text.encode('utf-16-be').hex().upper()}>")
    lines += ["endbfchar", "endcmap CMapName currentdict /CMap defineresource pop end end"]
    return "\n".join(lines).encode()


def _pdf(
    content: bytes, cmap: dict[int, str] | None, *, rotate: int = 0, inherited_a4: bool = False
) -> bytes:
    """One Letter page drawing ``content`` with font /F1 (Helvetica, optional ToUnicode);
    ``inherited_a4``: an A4 page whose MediaBox is set on the page tree, not on the page."""
    pages = b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"
    media = b"/MediaBox [0 0 612 792] "
    if inherited_a4:
        pages = b"<< /Type /Pages /Kids [3 0 R] /Count 1 /MediaBox [0 0 595 842] >>"
        media = b""
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        pages,
        b"<< /Type /Page /Parent 2 0 R %s/Rotate %d "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>" % (media, rotate),
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
    ]
    font = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding"
    if cmap is not None:
        stream = _cmap(cmap)
        font += b" /ToUnicode 6 0 R"
        objects.append(font + b" >>")
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    else:
        objects.append(font + b" >>")
    return _objects_pdf(objects)


def _text(x: float, y: float, text: str, size: int = 14) -> bytes:
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return f"BT /F1 {size} Tf {x} {y} Td ({escaped}) Tj ET".encode("latin-1")


def _identity(text: str, extra: dict[int, str]) -> dict[int, str]:
    mapping = {ord(char): char for char in text if char != " "}
    mapping[32] = " "
    mapping.update(extra)
    return mapping


def astral() -> bytes:
    """Characters beyond the BMP: codes mapped to a mathematical letter and an emoji."""
    line = "Math # and smile @ here"
    cmap = _identity(line, {ord("#"): "\U0001d400", ord("@"): "\U0001f600"})
    return _pdf(_text(72, 700, line), cmap)


def controls() -> bytes:
    """A hyphen that ends a line, and codes mapped to U+0003 and U+FFFE."""
    content = b"\n".join(
        [
            _text(72, 700, "A word broken at the end of the infor-"),
            _text(72, 682, "mation line, then a strange ~ and ^ mark."),
        ]
    )
    cmap = _identity(
        "A word broken at the end of the infor- mation line, then a strange and mark.",
        {ord("~"): "\x03", ord("^"): "\ufffe"},
    )
    return _pdf(content, cmap)


def rotated() -> bytes:
    """A page displayed turned by 90 degrees, with an ordinary text layer."""
    content = b"\n".join(
        [
            _text(72, 700, "This page is displayed in landscape."),
            _text(72, 682, "Its text layer is good and must be kept."),
        ]
    )
    return _pdf(content, None, rotate=90)


def inherited_a4() -> bytes:
    """An A4 page that takes its size from the page tree (pdfTeX and many others write it
    so): one line near the top, one near the bottom, whose boxes must land on the A4 page."""
    text = "Top of the page" + "Foot of the page"
    content = _text(72, 790, "Top of the page") + b"\n" + _text(72, 40, "Foot of the page")
    return _pdf(content, _identity(text, {}), inherited_a4=True)


def silent_glyphs() -> bytes:
    """Glyphs whose ToUnicode entry is empty (``<7E> <>``: they carry no text), as shapers of
    complex scripts write them for a cluster's extra glyphs. PDFium flags one (0x81, a glyph
    name without a Unicode value) and reads the other from the encoding (``~``)."""
    mapping = _identity("Silent marks here", {0x7E: "", 0x81: ""})
    document = _pdf(_text(72, 700, "Sile\x81nt mar~ks here"), mapping)
    return document.replace(
        b"/Encoding /WinAnsiEncoding",
        b"/Encoding << /Type /Encoding /BaseEncoding /WinAnsiEncoding "
        b"/Differences [129 /zzcluster] >>",
    )


def garbage() -> bytes:
    """Readable words drawn, but every code maps into the private use area."""
    words = "Garbage layer here"
    cmap = {code: chr(0xE000 + code) for code in range(32, 127)}
    return _pdf(_text(72, 650, words, size=28), cmap)


def doubtful() -> bytes:
    """A good layer with a few unmappable characters: kept, but not fully trusted."""
    line = "Mostly good text with one odd mark | here"
    return _pdf(_text(72, 700, line), _identity(line, {ord("|"): "\ue000"}))


def _column(x: float, top: float, codes: Iterable[str], step: float = 16) -> bytes:
    return b"\n".join(_text(x, top - step * i, code) for i, code in enumerate(codes))


def vertical() -> bytes:
    """CJK written top to bottom, and a label turned by 90 degrees."""
    column = "ABCDEF"
    cjk = dict(zip(map(ord, column), "縦書きの文章", strict=True))
    label = "BT /F1 12 Tf 0 1 -1 0 300 400 Tm (Rotated label) Tj ET"
    content = _column(100, 700, column) + b"\n" + label.encode()
    return _pdf(content, _identity("Rotated label", cjk))


def rtl(rotate: int = 0) -> bytes:
    """Arabic three ways, each line reading "سلام 2024 عليكم" (or one word) in logical order.

    1. each letter placed left of the one before, as a right-to-left writer does, the
       number's digits left to right in their slot;
    2. one string in visual order (left to right on the page), as most producers write it;
    3. one glyph whose ToUnicode entry is a whole word (a ligature, as weasyprint writes).
    """
    codes = "ABEK 2024 PSVXY"
    mapping = dict(zip(map(ord, "ABEKPSVXY"), "سلامعليكم", strict=True))
    mapping[ord("W")] = "مرحبا"
    widths = {" ": 278, "2": 556, "0": 556, "4": 556}  # Helvetica; these letters are all 667
    glyphs = []
    x = 400.0
    index = 0
    while index < len(codes):
        run = codes[index : index + 4] if codes[index].isdigit() else codes[index]
        x -= sum(widths.get(char, 667) for char in run) * 14 / 1000
        glyphs.append(_text(round(x, 3), 700, run))
        index += len(run)
    glyphs.append(_text(round(x, 3), 680, "YXVSP 2024 KEBA"))
    glyphs.append(_text(round(x, 3), 660, "W"))
    return _pdf(b"\n".join(glyphs), _identity("2024", mapping), rotate=rotate)


def rtl_rotated() -> bytes:
    """The Arabic lines on a page displayed upside down (``/Rotate 180``)."""
    return rtl(rotate=180)


def utf8_codes() -> bytes:
    """A font whose character codes are the UTF-8 bytes of the text (a UTF-8 encoding CMap):
    PDFium cannot map its three- and four-byte codes, even through the ToUnicode map."""
    chars = {"\u3001": 200, "\U000289c0": 201}  # an ideographic comma, a rare CJK letter
    codes = {char: char.encode("utf-8").hex().upper() for char in chars}
    encoding = "\n".join(
        [
            "/CIDInit /ProcSet findresource begin 12 dict begin begincmap",
            "/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> def",
            "/CMapName /UTF8Codes def /CMapType 1 def",
            "3 begincodespacerange <00> <7F> <E00000> <EFFFFF> <F0000000> <F4FFFFFF>",
            "endcodespacerange 1 begincidrange <00> <7F> 0 endcidrange",
            f"{len(chars)} begincidchar",
            *(f"<{codes[char]}> {cid}" for char, cid in chars.items()),
            "endcidchar endcmap CMapName currentdict /CMap defineresource pop end end",
        ]
    ).encode()
    to_unicode = "\n".join(
        [
            "/CIDInit /ProcSet findresource begin 12 dict begin begincmap",
            "/CMapName /UTF8Text def /CMapType 2 def",
            "3 begincodespacerange <00> <7F> <E00000> <EFFFFF> <F0000000> <F4FFFFFF>",
            "endcodespacerange 1 beginbfrange <00> <7F> <0000> endbfrange",
            f"{len(chars)} beginbfchar",
            *(f"<{codes[c]}> <{c.encode('utf-16-be').hex().upper()}>" for c in chars),
            "endbfchar endcmap CMapName currentdict /CMap defineresource pop end end",
        ]
    ).encode()
    text = "Comma \u3001 and \U000289c0 here"
    content = b"BT /F1 14 Tf 72 700 Td <%s> Tj ET" % text.encode("utf-8").hex().encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /Font /Subtype /Type0 /BaseFont /Helvetica /Encoding 6 0 R "
        b"/DescendantFonts [7 0 R] /ToUnicode 8 0 R >>",
        b"<< /Type /CMap /CMapName /UTF8Codes /CIDSystemInfo << /Registry (Adobe) "
        b"/Ordering (Identity) /Supplement 0 >> /Length %d >>\nstream\n%s\nendstream"
        % (len(encoding), encoding),
        b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /Helvetica /CIDSystemInfo "
        b"<< /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /DW 600 >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(to_unicode), to_unicode),
    ]
    return _objects_pdf(objects)


def _letters(x: float, y: float, text: str) -> bytes:
    # One show per letter in a text object set a little askew, as drawing programs write
    # labels: PDFium's own check for text drawn twice misses copies written this way.
    widths = {"L": 556, "e": 556, "t": 278, "r": 333, " ": 278, "b": 556, "y": 500, "l": 222}
    shows = []
    for index, char in enumerate(text):
        advance = widths[text[index - 1]] / 1000 if index else 0
        shows.append(f"{advance} 0 Td ({char}) Tj" if index else f"({char}) Tj")
    matrix = f"14 -0.12 0.12 14 {x} {y} Tm"
    return f"BT /F1 1 Tf {matrix} {' '.join(shows)} ET".encode()


def shadow() -> bytes:
    """A label drawn twice, a little offset (a grey shadow under it), a fake bold (one line
    drawn three times), and two periods set very tight: each glyph must be read once, its
    double letters and both periods kept."""
    shadowed = b"0.6 g " + _letters(73, 699, "Letter by letter") + b" 0 g "
    shadowed += _letters(72, 700, "Letter by letter")
    fake_bold = b" ".join(_text(72 + dx, 620, "Bold balloon seen") for dx in (0, 0.3, 0.6))
    # Two periods set so tight that their loose boxes overlap, their ink apart: no copy.
    periods = b"BT /F1 14 Tf 72 580 Td (Tight) Tj -2.2 Tc (..) Tj ET"
    return _pdf(b"\n".join([shadowed, fake_bold, periods]), None)


def encrypted() -> bytes:
    """An ordinary page, encrypted with a user password (``secret``)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(_pdf(_text(72, 700, "Secret"), None))))
    writer.encrypt("secret", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


NEWSLETTER = [
    "Winter notes from the harbour office",
    "The harbour office keeps its winter hours from the first of November: nine until four "
    "on weekdays, and two hours on Saturday mornings. The crane can still be booked outside "
    "these hours, but please ask a day ahead so that someone can be there to run it.",
    "Most of the visiting boats have gone home, and the pontoons on the western side will be "
    "lifted for cleaning in the second week of the month. Owners who leave their boats afloat "
    "over the winter are asked to check their lines after every storm, and to tell the office "
    "if a neighbour's boat looks to be in trouble.",
    "The new water point near the slipway is now working. It was paid for from last year's "
    "surplus and fitted by two members of the sailing club over a weekend in October. The "
    "board thanks them, and everyone who helped at the autumn clean-up of the foreshore.",
]


def newsletter() -> bytes:
    """An ordinary one-page text document: a heading and three paragraphs of prose."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import simpleSplit
    from reportlab.pdfgen.canvas import Canvas

    out = io.BytesIO()
    canvas = Canvas(out, pagesize=A4, invariant=True)
    width, height = A4
    heading, *paragraphs = NEWSLETTER
    canvas.setFont("Helvetica-Bold", 16)
    canvas.drawString(72, height - 90, heading)
    canvas.setFont("Times-Roman", 12)
    y = height - 126
    for paragraph in paragraphs:
        for line in simpleSplit(paragraph, "Times-Roman", 12, width - 144):
            canvas.drawString(72, y, line)
            y -= 16
        y -= 10
    canvas.save()
    return out.getvalue()


def broken() -> bytes:
    """A damaged object header PDFium gives up on, while pypdf still reads the page."""
    document = _pdf(_text(72, 700, "Repaired and read"), None)
    return document.replace(b"1 0 obj", b"1 0 obk", 1)


def _objects_pdf(objects: list[bytes]) -> bytes:
    """A PDF of the given objects (numbered from 1, the first the catalog) with its xref."""
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    trailer = b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
    out.write(trailer % (len(objects) + 1, xref))
    return out.getvalue()


def lost_page_tree() -> bytes:
    """Two pages whose page tree was zeroed (a failed copy): only the page objects survive."""
    pages_tree = b"<< /Type /Pages /Kids [3 0 R 5 0 R] /Count 2 >>"
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", pages_tree]
    for number, text in ((3, "First page survives"), (5, "Second page survives")):
        content = _text(72, 700, text)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 7 0 R >> >> /Contents %d 0 R >>" % (number + 1)
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content))
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    document = _objects_pdf(objects)
    return document.replace(pages_tree, b"\0" * len(pages_tree), 1)


DOCUMENTS = {
    "astral.pdf": astral,
    "controls.pdf": controls,
    "rotated.pdf": rotated,
    "inherited-a4.pdf": inherited_a4,
    "silent-glyphs.pdf": silent_glyphs,
    "garbage.pdf": garbage,
    "doubtful.pdf": doubtful,
    "vertical.pdf": vertical,
    "rtl.pdf": rtl,
    "rtl-rotated.pdf": rtl_rotated,
    "encrypted.pdf": encrypted,
    "broken.pdf": broken,
    "lost-page-tree.pdf": lost_page_tree,
    "utf8-codes.pdf": utf8_codes,
    "shadow.pdf": shadow,
    "newsletter.pdf": newsletter,
}


def main() -> None:
    """Write every document next to this script."""
    for name, build in DOCUMENTS.items():
        (HERE / name).write_bytes(build())


if __name__ == "__main__":
    main()
