"""Polling on the local server with real documents: mixed batches and text-layer throughput.

Run on demand (not a test; about 5 minutes on 2 cores)::

    python benchmarks/bench_local.py [--text-files 40] [--scans 24] [--workers 2]

Documents, all public and none made here, read from the mirrors at run time (nothing is
committed): the 117-page text PDF ``GeoTopo-komprimiert.pdf`` of ``py-pdf/sample-files``;
"scans" rendered from its pages (``--scans`` one-page PNGs at 120 dpi and a 20-page
image-only PDF, so the server has to OCR them); and the first ``--text-files`` PDFs of
``mozilla/pdf.js``'s test corpus that have a text layer and at most 60 pages. Both are
read with ``git --git-dir=...``: ``--sample-files`` and ``--pdfjs`` take the git directories
of clones of https://github.com/py-pdf/sample-files and https://github.com/mozilla/pdf.js
(``path/to/clone/.git``, or a bare clone).

Three measurements, each printed beside its baseline from the same run:

1. Mixed batch (the scans and the 20-page scan) through ``ocr_batch`` against the server's
   own time for the batch (the same files submitted at once with plain httpx, from the first
   submit to the last completion as the server records it). Goal: the default client within
   1.1x of it.
2. The 117-page text PDF right after a one-page scan, through one client: seconds from the
   PDF's completion on the server to ``ocr()`` returning. Goal: within 1 s.
3. The text-PDF corpus through ``ocr_batch`` against the engine called directly on the same
   files in this process. Goal: at least 80 % of the engine's pages per second.

Contenders: the default client against a server that offers the long poll (the new default);
and against a server that does not (``long_poll_max=0``, as the hosted API): today's planner,
the planner before issue 10 (``previous_planner.py``, from git history) and
``PollPolicy(adaptive=False)``. Every server is warmed first and runs with ``cache_size=0``;
clients run with ``cache=False``, so nothing is answered from a cache.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pypdfium2
from previous_planner import previous_planner

from datalab_ocr import DatalabClient, PollPolicy
from datalab_ocr.server import LocalServer, ServerConfig
from datalab_ocr.server.engine import prepare_document, process_pages
from datalab_ocr.server.formats import PDF

MIRRORS = Path("/work/.mirror")
SAMPLE_FILES = MIRRORS / "py-pdf+sample-files" / "repo"
PDFJS = MIRRORS / "mozilla+pdf.js" / "repo"
GEOTOPO = "009-pdflatex-geotopo/GeoTopo-komprimiert.pdf"
SCAN_DPI = 120


def _git_show(repo: Path, path: str) -> bytes:
    return subprocess.run(
        ["git", f"--git-dir={repo}", "show", f"HEAD:{path}"],
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout


def _render(pdf: Path, indices: list[int]) -> list[Any]:
    document = pypdfium2.PdfDocument(str(pdf))
    try:
        return [document[i].render(scale=SCAN_DPI / 72).to_pil().convert("L") for i in indices]
    finally:
        document.close()


def _documents(
    folder: Path, scans: int, text_files: int, sample_files: Path, pdfjs: Path
) -> dict[str, Any]:
    """Write the benchmark's documents into ``folder``."""
    geotopo = folder / "GeoTopo-komprimiert.pdf"
    geotopo.write_bytes(_git_show(sample_files, GEOTOPO))
    pngs: list[Path] = []
    for number, image in enumerate(_render(geotopo, list(range(10, 10 + scans)))):
        path = folder / f"scan-{number:02d}.png"
        image.save(path)
        pngs.append(path)
    pages = _render(geotopo, list(range(40, 60)))
    scan_pdf = folder / "scan-20-pages.pdf"
    pages[0].save(scan_pdf, save_all=True, append_images=pages[1:], resolution=SCAN_DPI)
    listing = subprocess.run(
        ["git", f"--git-dir={pdfjs}", "ls-tree", "-r", "--name-only", "HEAD", "test/pdfs"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    texts: list[Path] = []
    for name in sorted(n for n in listing if n.endswith(".pdf")):
        if len(texts) >= text_files:
            break
        try:
            content = _git_show(pdfjs, name)
        except subprocess.CalledProcessError:
            continue  # the mirror leaves its largest files out
        if not 10_000 <= len(content) <= 5_000_000 or not _has_text_layer(content):
            continue
        path = folder / f"text-{len(texts):02d}-{Path(name).name}"
        path.write_bytes(content)
        texts.append(path)
    return {"geotopo": geotopo, "pngs": pngs, "scan_pdf": scan_pdf, "texts": texts}


def _has_text_layer(content: bytes) -> bool:
    try:
        document = pypdfium2.PdfDocument(io.BytesIO(content))
    except pypdfium2.PdfiumError:
        return False
    try:
        if not 1 <= len(document) <= 60:
            return False
        text = document[0].get_textpage().get_text_range()
        return len(text.strip()) >= 200
    except Exception:
        return False
    finally:
        document.close()


def _server(workers: int, long_poll: bool) -> LocalServer:
    config = ServerConfig(
        workers=workers,
        queue_size=256,
        cache_size=0,
        long_poll_max=20.0 if long_poll else 0.0,
    )
    return LocalServer(config).start()


def _raw(server: LocalServer, files: list[Path]) -> float:
    """The server's own time for ``files``: from the first submit, all sent at once, to the
    last job's completion as the server records it (checks every 0.2 s only to know when to
    stop; they do not set the figure)."""
    with httpx.Client(timeout=120.0) as http:
        started = time.monotonic()
        urls = []
        for path in files:
            answer = http.post(
                f"{server.base_url}/api/v1/ocr",
                files={"file": (path.name, path.read_bytes())},
                data={"skip_cache": "true"},
            )
            answer.raise_for_status()
            urls.append(answer.json()["request_check_url"])
        while urls:
            urls = [url for url in urls if http.get(url).json()["status"] != "complete"]
            if urls:
                time.sleep(0.2)
        completed = float(http.get(f"{server.base_url}/_local/stats").json()["last_completed"])
    return completed - started


Contender = tuple[str, bool, Callable[[str], DatalabClient]]


def _client(policy: PollPolicy | None = None, previous: bool = False) -> Callable[[str], Any]:
    def make(base_url: str) -> DatalabClient:
        client = DatalabClient(base_url=base_url, cache=False, rate_limit=False, polling=policy)
        if previous:
            planner = previous_planner(client.polling)
            if planner is None:
                raise RuntimeError("the previous planner needs git and the history")
            # The benchmark's own baseline only: the flow settings are frozen on purpose.
            object.__setattr__(client._settings, "planner", planner)
        return client

    return make


CONTENDERS: list[Contender] = [
    ("default client, long poll", True, _client()),
    ("default client, no long poll", False, _client()),
    ("previous planner, no long poll", False, _client(previous=True)),
    ("adaptive=False, no long poll", False, _client(PollPolicy(adaptive=False))),
]


def _batch(client: DatalabClient, files: list[Path]) -> tuple[float, int]:
    started = time.perf_counter()
    result = client.ocr_batch(files, errors="collect", concurrency=16)
    wall = time.perf_counter() - started
    if result.failures:
        raise RuntimeError(f"{len(result.failures)} files failed: {result.failures[0].error}")
    return wall, sum(len(r.pages) for r in result.results)


def _big_after_scan(client: DatalabClient, server: LocalServer, docs: dict[str, Any]) -> float:
    """Seconds from the big PDF's completion on the server to ``ocr()`` returning."""
    client.ocr(docs["pngs"][0])
    client.ocr(docs["geotopo"])
    returned = time.monotonic()
    completed = float(httpx.get(f"{server.base_url}/_local/stats").json()["last_completed"])
    return returned - completed


def _direct(files: list[Path]) -> tuple[float, int]:
    """The engine called in this process on every page of ``files``: (seconds, pages)."""
    started = time.perf_counter()
    pages = 0
    for path in files:
        document = prepare_document(
            str(path), PDF, suffix=".pdf", max_image_pixels=100_000_000, office_timeout=60
        )
        result = process_pages(
            document,
            list(range(document.page_count)),
            engine="tesseract",
            render_scale=2.0,
            max_image_pixels=100_000_000,
        )
        pages += len(result.pages)
    return time.perf_counter() - started, pages


def main() -> None:
    """Run the three measurements and print them with their goals."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text-files", type=int, default=40)
    parser.add_argument("--scans", type=int, default=24)
    parser.add_argument("--workers", type=int, default=ServerConfig().workers)
    parser.add_argument("--sample-files", type=Path, default=SAMPLE_FILES, metavar="GIT_DIR")
    parser.add_argument("--pdfjs", type=Path, default=PDFJS, metavar="GIT_DIR")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    folder = Path(tempfile.mkdtemp(prefix="bench-local-"))
    try:
        docs = _documents(folder, args.scans, args.text_files, args.sample_files, args.pdfjs)
        mixed = [*docs["pngs"], docs["scan_pdf"]]
        texts = docs["texts"]
        print(
            f"cpu count {os.cpu_count()}, server workers {args.workers}; mixed batch: "
            f"{len(docs['pngs'])} one-page scans + a 20-page scan; text corpus: {len(texts)} "
            f"PDFs of pdf.js's test corpus"
        )
        figures: dict[str, dict[str, float]] = {}
        server_time: dict[bool, float] = {}
        for long_poll in (True, False):
            server = _server(args.workers, long_poll)
            try:
                # Warm the workers on both kinds of pages (process start, model and PDF
                # library loads), so the first contender is not charged for it.
                _raw(server, [*docs["pngs"][: args.workers], *texts[:2]])
                server_time[long_poll] = _raw(server, mixed)
                for label, wants, make in CONTENDERS:
                    if wants != long_poll:
                        continue
                    with make(server.base_url) as client:
                        mixed_wall, _ = _batch(client, mixed)
                    with make(server.base_url) as client:
                        late = _big_after_scan(client, server, docs)
                    with make(server.base_url) as client:
                        text_wall, text_pages = _batch(client, texts)
                    figures[label] = {
                        "mixed": mixed_wall,
                        "server": server_time[long_poll],
                        "late": late,
                        "text_pps": text_pages / text_wall,
                    }
            finally:
                server.stop()
        direct_seconds, direct_pages = _direct(texts)
        engine_pps = direct_pages / direct_seconds
        _print(figures, engine_pps, direct_pages)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _print(figures: dict[str, dict[str, float]], engine_pps: float, pages: int) -> None:
    print(
        f"\n{'contender':<34}{'mixed s':>9}{'server s':>10}{'x server':>10}"
        f"{'big PDF late s':>16}{'text pages/s':>14}{'x engine':>10}"
    )
    for label, row in figures.items():
        print(
            f"{label:<34}{row['mixed']:>9.2f}{row['server']:>10.2f}"
            f"{row['mixed'] / row['server']:>10.2f}{row['late']:>16.2f}"
            f"{row['text_pps']:>14.1f}{row['text_pps'] / engine_pps:>10.2f}"
        )
    print(f"{'engine direct (1 process)':<34}{'':>45}{engine_pps:>14.1f}{1.0:>10.2f}")
    print(f"({pages} text-layer pages)")
    best = figures["default client, long poll"]
    print("\ngoals (default client, long poll)")
    for text, met in (
        (
            f"mixed batch within 1.1x of the server ({best['mixed'] / best['server']:.2f}x)",
            best["mixed"] <= 1.1 * best["server"],
        ),
        (
            f"big PDF returned within 1 s of its completion ({best['late']:.2f} s)",
            best["late"] <= 1.0,
        ),
        (
            f"text PDFs at >= 80 % of the engine's pages/s ({best['text_pps'] / engine_pps:.0%})",
            best["text_pps"] >= 0.8 * engine_pps,
        ),
    ):
        print(f"  {'pass' if met else 'FAIL'}  {text}")


if __name__ == "__main__":
    # The guard matters: the local server starts worker processes, which re-import this file.
    main()
