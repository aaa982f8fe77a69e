"""Make the README's pictures of the OCR report: ``docs/report.png`` and ``docs/citation.png``.

    python docs/make_screenshot.py

Runs the README's examples: ``datalab-ocr view`` on ``examples/data/receipt.png`` (a search
for "tide" typed into the report), and a citation from ``DatalabOCRTextSplitter`` drawn on
``examples/data/saltmarsh-observatory.pdf``. OCR runs on the embedded local server, so the
pictures show what this project's own engine reads. The reports are opened in Debian's
headless Chromium (``apt-get install chromium``) through Playwright, as the tests do.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from playwright.sync_api import Page, ViewportSize, sync_playwright

from datalab_ocr import DatalabClient
from datalab_ocr.cli import main
from datalab_ocr.langchain import DatalabOCRLoader, DatalabOCRTextSplitter
from datalab_ocr.report import write_report

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "data"
DOCS = ROOT / "docs"
CHROMIUM = "/usr/bin/chromium"
VIEWPORT: ViewportSize = {"width": 1280, "height": 720}


def receipt_report(folder: Path) -> Path:
    """The README's command line example, on the receipt."""
    report = folder / "report.html"
    code = main(["view", str(DATA / "receipt.png"), "--local", "-q", "-o", str(report)])
    if code != 0:
        raise SystemExit(f"datalab-ocr view failed with exit code {code}")
    return report


def citation_report(folder: Path) -> Path:
    """The README's Python example: the chunk that answers a question, drawn on its page."""
    path = DATA / "saltmarsh-observatory.pdf"
    pages = DatalabOCRLoader(str(path), local=True).load()
    chunks = DatalabOCRTextSplitter(chunk_size=300, chunk_overlap=0).split_documents(pages)
    chunk = next(c for c in chunks if "siren" in c.page_content)
    with DatalabClient(local=True) as client:
        result = client.ocr(path)
    return write_report(
        [(result, path)], folder / "citation.html", highlight=chunk.metadata["bboxes"]
    )


def shoot(page: Page, report: Path, target: Path, *, search: str | None = None) -> None:
    """Open ``report``, optionally search, and save the window as ``target``."""
    page.goto(report.as_uri(), wait_until="load")
    if search:
        page.fill("#search", search)  # no Enter: it would scroll to the match
    page.wait_for_timeout(400)  # the search box waits for typing to pause
    page.screenshot(path=str(target))
    print(f"wrote {target.relative_to(ROOT)}")


def make_pictures() -> None:
    """Write both pictures."""
    with tempfile.TemporaryDirectory() as scratch, sync_playwright() as playwright:
        folder = Path(scratch)
        # A fresh result cache: the pictures show what the engine reads today.
        os.environ["DATALAB_OCR_CACHE_DIR"] = str(folder / "cache")
        receipt, citation = receipt_report(folder), citation_report(folder)
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport=VIEWPORT)
        shoot(page, receipt, DOCS / "report.png", search="tide")
        shoot(page, citation, DOCS / "citation.png")
        browser.close()


if __name__ == "__main__":
    make_pictures()
