"""Test helpers for the local server: documents made on the fly, polling, and CER."""

from __future__ import annotations

import io
import random
import time
from collections.abc import Sequence
from typing import Any

import httpx
from PIL import Image, ImageDraw, ImageFilter, ImageFont

PDF_LINE = tuple[float, float, float, str]
"""One line of a test PDF: x and y of the baseline in points, font size, text."""


def levenshtein(a: str, b: str) -> int:
    """The edit distance between two strings (insertions, deletions, substitutions)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            )
        previous = current
    return previous[-1]


def cer(expected: str, actual: str) -> float:
    """Character error rate: edit distance over the expected length, whitespace normalised."""
    want = " ".join(expected.split())
    got = " ".join(actual.split())
    return levenshtein(want, got) / max(1, len(want))


def render_lines(
    lines: Sequence[str], *, size: int = 28, width: int = 1400, margin: int = 40
) -> Image.Image:
    """Black text on white, one string per line, in Pillow's bundled TrueType font."""
    font = ImageFont.load_default(size=size)
    step = int(size * 1.6)
    image = Image.new("L", (width, margin * 2 + step * len(lines)), 255)
    draw = ImageDraw.Draw(image)
    for row, text in enumerate(lines):
        draw.text((margin, margin + row * step), text, font=font, fill=0)
    return image


def degrade(
    image: Image.Image, *, angle: float = 2.0, blur: float = 1.2, noise: float = 0.25, seed: int = 7
) -> Image.Image:
    """A scanner-like copy: rotated by ``angle`` degrees, blurred, with seeded uniform noise."""
    rotated = image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    blurred = rotated.filter(ImageFilter.GaussianBlur(radius=blur))
    grain = Image.frombytes(
        "L", blurred.size, random.Random(seed).randbytes(blurred.width * blurred.height)
    )
    return Image.blend(blurred, grain, noise)


def image_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    """``image`` encoded in ``fmt``."""
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def text_pdf(pages: Sequence[Sequence[PDF_LINE]], width: float = 612, height: float = 792) -> bytes:
    """A PDF whose pages carry a real text layer in the standard Helvetica font."""
    count = len(pages)
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(count))
    bodies: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {count} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for i, lines in enumerate(pages):
        content = "\n".join(
            f"BT /F1 {size:g} Tf {x:g} {y:g} Td ({_escape(text)}) Tj ET"
            for x, y, size, text in lines
        ).encode("latin-1")
        bodies.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width:g} {height:g}] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>".encode()
        )
        bodies.append(f"<< /Length {len(content)} >>\nstream\n".encode() + content + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(bodies, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(bodies) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += (
        f"trailer\n<< /Size {len(bodies) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)


def numbered_pdf(count: int) -> bytes:
    """A ``count``-page text PDF whose page i (0-based) reads ``This is page i``."""
    return text_pdf([[(72, 700, 14, f"This is page {i}")] for i in range(count)])


def submit(
    client: httpx.Client,
    base_url: str,
    content: bytes,
    filename: str = "doc.pdf",
    content_type: str = "application/pdf",
    field: str = "file",
    **form: str,
) -> httpx.Response:
    """``POST /api/v1/ocr`` with one file and plain form fields."""
    return client.post(
        f"{base_url}/api/v1/ocr", files={field: (filename, content, content_type)}, data=form
    )


def wait_complete(client: httpx.Client, check_url: str, timeout: float = 30.0) -> dict[str, Any]:
    """Poll ``check_url`` until the job is complete and return its body."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(check_url)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        if body["status"] == "complete":
            return body
        if time.monotonic() > deadline:
            raise TimeoutError(f"job at {check_url} still {body['status']} after {timeout} s")
        time.sleep(0.02)


def run_job(client: httpx.Client, base_url: str, content: bytes, **kwargs: str) -> dict[str, Any]:
    """Submit a document and wait for its completed result."""
    response = submit(client, base_url, content, **kwargs)
    assert response.status_code == 200, response.text
    return wait_complete(client, response.json()["request_check_url"])
