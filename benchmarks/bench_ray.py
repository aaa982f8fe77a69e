"""Local mode on Ray against the engine in one process, and the cluster limiter's own cost.

Run on demand (not a test)::

    python benchmarks/bench_ray.py [--scanned-pages 16] [--text-pages 120] [--reserves 2000]

Pages: one PDF of ``--scanned-pages`` scanned pages (the example letter, no text layer: real
OCR) and one born-digital PDF of ``--text-pages`` pages (text layer), each read with
``read_ocr(..., local=True)`` on a one-node Ray cluster of this machine's cores with 1 and 2
engine actors, against ``prepare_document`` + ``process_pages`` called in this process on
the same pages. Two rates per Ray run: end to end (``take_all`` from start to finish, actor
start-up included) and in steady state (the run report's span, first chunk started to last
finished).

Limiter: seconds per ``reserve`` through the named actor, from a Ray worker (the real path),
against the in-process ``RateLimiter``; and peak memory of one engine actor.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import ray
import ray.data

from datalab_ocr import RateLimiter
from datalab_ocr.ray import OCRProgress, cluster_rate_limit, read_ocr
from datalab_ocr.ray._limiter import ClusterRateLimiter
from datalab_ocr.server.engine import prepare_document, process_pages
from datalab_ocr.server.formats import PDF

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "data"


def _text_pdf(path: Path, pages: int) -> Path:
    from bench_server import long_pdf  # the benchmarks' one long text PDF

    path.write_bytes(long_pdf(pages))
    return path


def _scanned_pdf(path: Path, pages: int) -> Path:
    from PIL import Image

    with Image.open(DATA / "scanned-letter.jpg") as scan:
        page = scan.convert("RGB")
    page.save(path, save_all=True, append_images=[page] * (pages - 1), resolution=100)
    return path


def _direct(path: Path, pages: int) -> float:
    """Pages per second calling the engine in this process, engine loaded beforehand."""
    document = prepare_document(
        str(path), PDF, suffix=".pdf", max_image_pixels=100_000_000, office_timeout=60
    )
    process_pages(document, [0], engine="tesseract", render_scale=2.0, max_image_pixels=10**8)
    started = time.perf_counter()
    process_pages(
        document, list(range(pages)), engine="tesseract", render_scale=2.0, max_image_pixels=10**8
    )
    return pages / (time.perf_counter() - started)


def _on_ray(path: Path, pages: int, actors: int, chunk_pages: int) -> tuple[float, float]:
    """(end-to-end, steady-state) pages per second with ``actors`` engine actors."""
    progress = OCRProgress()
    started = time.perf_counter()
    dataset = read_ocr(
        str(path), local=True, concurrency=actors, chunk_pages=chunk_pages, progress=progress
    )
    rows = dataset.take_all()
    elapsed = time.perf_counter() - started
    assert len(rows) == pages, len(rows)
    return pages / elapsed, progress.report().pages_per_second


@ray.remote(num_cpus=0)
def _reserve_many(name: str, count: int) -> float:
    limiter = ClusterRateLimiter(name)
    limiter.reserve(time.monotonic())  # find the actor first
    started = time.perf_counter()
    for _ in range(count):
        limiter.reserve(time.monotonic())
    return (time.perf_counter() - started) / count


@ray.remote(num_cpus=0)
def _engine_memory(path: str) -> float:
    """Peak resident memory (MB) of a worker that loaded the engine and read two pages."""
    from datalab_ocr.server.engine import _engine

    _engine("tesseract")
    document = prepare_document(path, PDF, suffix=".pdf", max_image_pixels=10**8, office_timeout=60)
    process_pages(document, [0, 1], engine="tesseract", render_scale=2.0, max_image_pixels=10**8)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _limiter_cost(count: int) -> tuple[float, float]:
    local = RateLimiter(10**9, 60)
    started = time.perf_counter()
    for _ in range(count):
        local.reserve(time.monotonic())
    in_process = (time.perf_counter() - started) / count
    cluster_rate_limit(10**9, 60.0, name="bench-limiter")
    through_actor: float = ray.get(_reserve_many.remote("bench-limiter", count))
    return in_process, through_actor


def main() -> None:
    """Run every measurement and print it beside its baseline."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scanned-pages", type=int, default=16)
    parser.add_argument("--text-pages", type=int, default=120)
    parser.add_argument("--reserves", type=int, default=2000)
    parser.add_argument("--chunk-pages", type=int, default=2, help="pages per chunk")
    args = parser.parse_args()
    cpus = os.cpu_count() or 1
    # One logical CPU more than the cores: local mode keeps one free for the split stage,
    # so two engine actors fit on a two-core machine, as they would on a three-CPU node.
    ray.init(num_cpus=cpus + 1, include_dashboard=False, _node_ip_address="127.0.0.1")
    ray.data.DataContext.get_current().enable_progress_bars = False
    results: list[tuple[str, Any, Any, Any]] = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            scanned = _scanned_pdf(Path(folder) / "scans.pdf", args.scanned_pages)
            text = _text_pdf(Path(folder) / "text.pdf", args.text_pages)
            for label, path, pages in (
                ("scanned", scanned, args.scanned_pages),
                ("text layer", text, args.text_pages),
            ):
                direct = _direct(path, pages)
                one = _on_ray(path, pages, 1, args.chunk_pages)
                two = _on_ray(path, pages, 2, args.chunk_pages)
                results.append((label, direct, one, two))
            memory = ray.get(_engine_memory.remote(str(scanned)))
        in_process, through_actor = _limiter_cost(args.reserves)
    finally:
        ray.shutdown()
    print(
        f"local mode on one node with {cpus} cores ({cpus + 1} Ray CPUs), "
        f"{args.chunk_pages} pages per chunk, pages per second"
    )
    print("  pages       | engine, 1 process | Ray 1 actor (e2e / steady) | Ray 2 actors")
    for label, direct, one, two in results:
        print(
            f"  {label:<11} | {direct:17.1f} | {one[0]:10.1f} / {one[1]:6.1f}       "
            f"| {two[0]:.1f} / {two[1]:.1f}"
        )
    print(f"engine actor peak memory: {memory:.0f} MB")
    print(
        f"limiter reserve: {through_actor * 1e3:.3f} ms through the actor "
        f"({1 / through_actor:.0f} requests/s from one worker) against "
        f"{in_process * 1e6:.2f} us in process"
    )


if __name__ == "__main__":
    main()
