"""Throughput of the local server against calling its engine directly, on the same pages.

Run on demand (not a test)::

    python benchmarks/bench_server.py [--jobs 12] [--text-pages 60] [--workers 2]

Scanned pages: the example scan (``examples/data/scanned-letter.jpg``, a 150 dpi letter page)
submitted as ``--jobs`` separate jobs at once, polled with plain httpx, against
:func:`process_pages` called in this process one page after another. Text-layer pages: the
example born-digital PDF repeated to ``--text-pages`` pages, in one job, against the same
direct call. The server side includes HTTP, the queue, worker start-up and polling delays.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import httpx

from datalab_ocr.server import LocalServer, ServerConfig
from datalab_ocr.server.engine import prepare_document, process_pages
from datalab_ocr.server.formats import IMAGE, PDF

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "data"
POLL_INTERVAL = 0.05


def _long_pdf(pages: int) -> bytes:
    """The example PDF's pages repeated to ``pages`` pages (written by its generator)."""
    spec = importlib.util.spec_from_file_location("make_data", DATA / "make_data.py")
    assert spec is not None
    assert spec.loader is not None
    make_data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_data)
    chosen = [make_data.PDF_PAGES[i % len(make_data.PDF_PAGES)] for i in range(pages)]
    document: bytes = make_data.make_pdf(chosen)
    return document


def _through_server(
    server: LocalServer, documents: list[tuple[str, bytes, str]]
) -> tuple[float, int]:
    """Submit every document at once, poll until all complete; (seconds, pages)."""
    started = time.perf_counter()
    with httpx.Client(timeout=120.0) as client:
        urls = []
        for name, content, content_type in documents:
            response = client.post(
                f"{server.base_url}/api/v1/ocr",
                files={"file": (name, content, content_type)},
                data={"skip_cache": "true"},
            )
            response.raise_for_status()
            urls.append(response.json()["request_check_url"])
        pages = 0
        pending = list(urls)
        while pending:
            still = []
            for url in pending:
                body = client.get(url).json()
                if body["status"] != "complete":
                    still.append(url)
                elif not body.get("success"):
                    raise RuntimeError(f"job failed: {body.get('error')}")
                else:
                    pages += int(body["page_count"])
            pending = still
            if pending:
                time.sleep(POLL_INTERVAL)
    return time.perf_counter() - started, pages


def _direct(content: bytes, kind: str, repeats: int) -> tuple[float, int]:
    """Call the engine in this process, page after page; (seconds, pages)."""
    folder = Path(tempfile.mkdtemp(prefix="bench-server-"))
    try:
        path = folder / "document"
        path.write_bytes(content)
        document = prepare_document(
            str(path), kind, suffix=".pdf", max_image_pixels=100_000_000, office_timeout=60
        )
        indices = list(range(document.page_count))
        process_pages(
            document,
            indices[:1],
            engine="tesseract",
            render_scale=2.0,
            max_image_pixels=100_000_000,
        )  # load the model outside the timing
        started = time.perf_counter()
        pages = 0
        for _ in range(repeats):
            result = process_pages(
                document,
                indices,
                engine="tesseract",
                render_scale=2.0,
                max_image_pixels=100_000_000,
            )
            pages += len(result.pages)
        return time.perf_counter() - started, pages
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _row(label: str, seconds: float, pages: int) -> str:
    return f"{label:<44} {pages:>6} pages {seconds:>8.2f} s {pages / seconds:>8.2f} pages/s"


def main() -> None:
    """Run both comparisons and print them side by side."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=12, help="scanned-page jobs to submit")
    parser.add_argument("--text-pages", type=int, default=60, help="pages of the text-layer PDF")
    parser.add_argument("--workers", type=int, default=ServerConfig().workers)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # the direct runs match one worker

    scan = (DATA / "scanned-letter.jpg").read_bytes()
    text_pdf = _long_pdf(args.text_pages)
    config = ServerConfig(workers=args.workers, queue_size=max(64, args.jobs), cache_size=0)

    print(f"cpu count {os.cpu_count()}, server workers {args.workers}")
    with LocalServer(config) as server:
        # Warm the workers (process start, model load) so both sides are timed hot.
        _through_server(server, [("warm.jpg", scan, "image/jpeg")] * args.workers)
        server_scan = _through_server(server, [("scan.jpg", scan, "image/jpeg")] * args.jobs)
        server_text = _through_server(server, [("text.pdf", text_pdf, "application/pdf")])
    direct_scan = _direct(scan, IMAGE, args.jobs)
    direct_text = _direct(text_pdf, PDF, 1)

    print(_row("scanned page, server over HTTP", *server_scan))
    print(_row("scanned page, engine direct (1 process)", *direct_scan))
    print(_row("text-layer page, server over HTTP", *server_text))
    print(_row("text-layer page, engine direct (1 process)", *direct_text))


if __name__ == "__main__":
    main()
