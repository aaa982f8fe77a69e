"""Documents and results for the report tests: pictures made here, results whose boxes are
known, so every test can say where each box must land."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import BrowserContext, Page, sync_playwright

from datalab_ocr import OCRPage, OCRResult, TextLine

# Each line of the test page: (text, confidence, original_text_good, box in the service's
# pixels). The service's page is 1224 x 1584 pixels (a Letter page at 144 dpi), as the local
# server reports it; the document itself is 612 x 792 points, so the report renders it at
# another size and must scale.
SERVICE_SIZE = (1224.0, 1584.0)
LINES: list[tuple[str, float | None, bool | None, list[float]]] = [
    ("Saltmarsh tide table", 0.98, None, [144.0, 144.0, 700.0, 190.0]),
    ("High water 06:12 and 18:40", 0.91, None, [144.0, 230.0, 820.0, 270.0]),
    ("smudged line read poorly", 0.42, None, [144.0, 310.0, 760.0, 352.0]),
    ("a middling reading", 0.8, None, [144.0, 392.0, 600.0, 430.0]),
    ("<script>window.injected = 1</script>", 0.6, None, [144.0, 470.0, 1000.0, 510.0]),
    ('"><img src=x onerror="window.injected = 2">', 0.97, None, [144.0, 550.0, 1050.0, 590.0]),
    ("from the text layer", 1.0, True, [144.0, 630.0, 560.0, 668.0]),
    ("a doubtful text layer", 1.0, False, [144.0, 708.0, 580.0, 746.0]),
    ("no confidence given", None, None, [144.0, 786.0, 560.0, 824.0]),
    ("the tide turns at the orange post", 0.88, None, [144.0, 1200.0, 1080.0, 1244.0]),
]
LINE_WITHOUT_BOX = "a line the service gave no box"


def page_picture(width: int, height: int) -> Image.Image:
    """A white page with a grey bar where each test line stands (scaled to the page)."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    sx, sy = width / SERVICE_SIZE[0], height / SERVICE_SIZE[1]
    for _, _, _, (x0, y0, x1, y1) in LINES:
        draw.rectangle((x0 * sx, y0 * sy, x1 * sx, y1 * sy), fill=(200, 200, 200))
    return image


def ocr_page(page_index: int) -> OCRPage:
    """The test page's OCR result, as the service would return it."""
    lines = [
        TextLine(text=text, confidence=conf, original_text_good=good, bbox=box)
        for text, conf, good, box in LINES
    ]
    lines.append(TextLine(text=LINE_WITHOUT_BOX, confidence=0.9))
    return OCRPage(
        page=page_index + 1,
        page_index=page_index,
        image_bbox=[0.0, 0.0, *SERVICE_SIZE],
        text_lines=lines,
    )


@pytest.fixture
def pdf_document(tmp_path: Path) -> Path:
    """A real two-page PDF (612 x 792 points a page), made with Pillow."""
    path = tmp_path / "tide-table.pdf"
    first, second = page_picture(612, 792), page_picture(612, 792)
    first.save(path, "PDF", resolution=72.0, save_all=True, append_images=[second])
    return path


@pytest.fixture
def pdf_result() -> OCRResult:
    """The result of :func:`pdf_document`'s second page only (as with ``page_range="1"``)."""
    return OCRResult(status="complete", success=True, pages=[ocr_page(1)], request_id="req-1")


@pytest.fixture
def png_bytes() -> bytes:
    """A PNG picture of the test page, at the service's own size."""
    buffer = io.BytesIO()
    page_picture(int(SERVICE_SIZE[0]), int(SERVICE_SIZE[1])).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def png_result() -> OCRResult:
    """The result of :func:`png_bytes`."""
    return OCRResult(status="complete", success=True, pages=[ocr_page(0)], request_id="req-2")


# -- a real browser -------------------------------------------------------------------------

CHROMIUM = Path(os.environ.get("DATALAB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")  # closed before other modules' event loops run
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """Debian's headless Chromium driven by Playwright (never a browser Playwright downloads),
    with a fresh profile; skipped only when Chromium is not installed (.ci/run installs it)."""
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


@dataclass
class OpenReport:
    """A report open in the browser, with every console message and page error it caused."""

    page: Page
    problems: list[str]


@pytest.fixture
def open_report(browser: BrowserContext) -> Iterator[Callable[[Path], OpenReport]]:
    """Open an HTML file in a new tab; the tabs are closed after the test."""
    pages: list[Page] = []

    def open_file(path: Path) -> OpenReport:
        page = browser.new_page()
        pages.append(page)
        problems: list[str] = []
        page.on(
            "console",
            lambda m: (
                problems.append(f"console {m.type}: {m.text}")
                if m.type in ("error", "warning")
                else None
            ),
        )
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on("dialog", lambda dialog: problems.append(f"dialog: {dialog.message}"))
        page.on("request", lambda r: None if r.url.startswith(("file:", "data:")) else
                problems.append(f"request: {r.url}"))  # fmt: skip
        page.goto(path.resolve().as_uri(), wait_until="load")
        return OpenReport(page, problems)

    yield open_file
    for page in pages:
        page.close()
