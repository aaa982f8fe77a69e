"""The OCR report on a long document: build time and size, against rendering the pages alone.

Run on demand (not a test)::

    python benchmarks/bench_report.py [--pages 100] [--lines 45] [--image-size 1400]

The document: ``--pages`` Letter pages of typeset text (reportlab, made here), and a result
of ``--lines`` lines a page with boxes where the lines are, as the local server sends it
for a text PDF. Timed, best of ``--repeat``:

* PDFium rendering every page at the report's size, nothing else;
* the baseline: the pictures alone, rendered and encoded as the report embeds them (WebP),
  the least any report with page pictures must do;
* ``render_report`` of the whole document (pictures, boxes, text, template).

Goals: the report within 1.3x the baseline's time (what it adds to its pictures is small),
and at most 20 MB per 100 dense pages (45 lines of 10-point text each) at the default
picture size: a report people can still mail and open. Page pictures are most of both.
"""

from __future__ import annotations

import argparse
import io
import random
import time
from collections.abc import Callable

import pypdfium2
from reportlab.lib.pagesizes import letter
from reportlab.pdfgen import canvas

from datalab_ocr import OCRPage, OCRResult, TextLine
from datalab_ocr._page_images import page_images
from datalab_ocr.report import DEFAULT_MAX_SIDE, render_report

TIME_GOAL = 1.3
SIZE_GOAL_MB_PER_100 = 20.0
WORDS = [
    "the", "tide", "gauge", "records", "water", "height", "each", "minute", "and", "harbour",
    "master", "posts", "next", "four", "tides", "on", "board", "by", "slipway", "while",
    "siren", "sounds", "thirty", "minutes", "before", "high", "water", "from", "causeway",
]  # fmt: skip
SCALE = 2.0  # the local server's 144 dpi: boxes in pixels of that rendering


def make_document(pages: int, lines: int, seed: int = 5) -> tuple[bytes, OCRResult]:
    """A text PDF of ``pages`` pages and its result, boxes where the lines were typeset."""
    rng = random.Random(seed)
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=letter)
    width, height = letter
    result_pages = []
    step = (height - 144) / lines
    for index in range(pages):
        text_lines = []
        for number in range(lines):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 12)))
            baseline = height - 72 - (number + 1) * step
            pdf.setFont("Helvetica", 10)
            pdf.drawString(72, baseline, text)
            right = 72 + pdf.stringWidth(text, "Helvetica", 10)
            box = [72 * SCALE, (height - baseline - 9) * SCALE, right * SCALE,
                   (height - baseline + 3) * SCALE]  # fmt: skip
            confidence = round(rng.uniform(0.55, 1.0), 3)
            text_lines.append(TextLine(text=text, confidence=confidence, bbox=box))
        pdf.showPage()
        result_pages.append(
            OCRPage(
                page=index + 1,
                page_index=index,
                image_bbox=[0, 0, width * SCALE, height * SCALE],
                text_lines=text_lines,
            )
        )
    pdf.save()
    return buffer.getvalue(), OCRResult(status="complete", pages=result_pages)


def render_only(data: bytes, max_side: int) -> None:
    """The baseline: every page rendered by PDFium at the report's size."""
    document = pypdfium2.PdfDocument(data)
    for page in document:
        width, height = page.get_size()
        page.render(scale=max_side / max(width, height)).to_pil()
        page.close()
    document.close()


def pictures_only(data: bytes, max_side: int) -> None:
    """The baseline: every page pictured as the report embeds it, and nothing else."""
    list(page_images(data, list(range(len(pypdfium2.PdfDocument(data)))), name="bench",
                     max_side=max_side))  # fmt: skip


def best_of(repeat: int, run: Callable[[], object]) -> tuple[float, object]:
    """The shortest of ``repeat`` runs and the last run's value."""
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = run()
        times.append(time.perf_counter() - start)
    return min(times), value


def main() -> None:
    """Measure and print the figures side by side."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--lines", type=int, default=45)
    parser.add_argument("--image-size", type=int, default=DEFAULT_MAX_SIDE)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    data, result = make_document(args.pages, args.lines)
    rendering, _ = best_of(args.repeat, lambda: render_only(data, args.image_size))
    baseline, _ = best_of(args.repeat, lambda: pictures_only(data, args.image_size))
    took, html = best_of(
        args.repeat, lambda: render_report([(result, data)], max_side=args.image_size)
    )
    assert isinstance(html, str)
    size_mb = len(html.encode("utf-8")) / 1e6
    per_100 = size_mb * 100 / args.pages
    ratio = took / baseline
    print(f"{args.pages} text pages, {args.lines} lines each, pictures at {args.image_size} px")
    print(f"  PDFium rendering alone:           {rendering:6.2f} s")
    print(f"  baseline, the pictures alone:     {baseline:6.2f} s")
    print(f"  render_report:                    {took:6.2f} s  ({ratio:.1f}x the baseline)")
    print(f"  report: {size_mb:.1f} MB, {size_mb * 1000 / args.pages:.0f} kB a page")
    verdict = {True: "pass", False: "FAIL"}
    print(f"goal: build within {TIME_GOAL:g}x the baseline: {verdict[ratio <= TIME_GOAL]}")
    print(
        f"goal: at most {SIZE_GOAL_MB_PER_100:g} MB per 100 pages ({per_100:.1f}): "
        f"{verdict[per_100 <= SIZE_GOAL_MB_PER_100]}"
    )


if __name__ == "__main__":
    main()
