"""Batch OCR under a hosted-style rate limit: datalab-ocr against the official SDK.

Run on demand (not a test)::

    python benchmarks/bench_batch.py                       # the scenario below, ~5 minutes
    python benchmarks/bench_batch.py --loop-files 200      # no extrapolation, ~20 minutes
    python benchmarks/bench_batch.py --files 40 --latency 2 --rate-requests 40

The scenario (issue 5): ``--files`` distinct one-page PNGs (200), each job held in
``processing`` for ``--latency`` seconds (5) by the local server's simulated mode, and the
hosted API's rate limit of ``--rate-requests`` per ``--rate-window`` seconds (200 per 60),
polls included. Every contender gets a fresh server (so rate-limit windows never bleed over)
and a child process of its own, which reports its wall time, failed documents and how far its
peak resident memory rose; requests and 429 answers come from the server's ``/_local/stats``.

Contenders: this library's ``ocr_batch`` (sync) and ``iter_batch`` (async); the LlamaIndex
reader and the LangChain loader, sync and async, over the same files; the official
``datalab-python-sdk`` in a loop as its README shows (``client.ocr(path)`` per file) and its
async client with 5 jobs at a time, as its CLI does. Contenders run side by side (each against
its own server); ``--serial`` runs them one after another. The SDK loop takes about
``latency`` seconds per file, so it runs on the first ``--loop-files`` files and its wall time
is extrapolated linearly to ``--files`` (the output marks it): one file after another, its
time is proportional to the file count, and at about 1.4 requests a second it stays under the
rate limit.

``--pages 1-3`` makes the files PDFs of 1 to 3 pages (issue 10's mixed batches), so the
planner sees sizes vary. ``batch-previous`` runs ``ocr_batch`` with the planner as it was
before issue 10 (``previous_planner.py``, from git history), as a measured baseline. The
servers offer no long poll (``long_poll_max=0``): this simulates the hosted API.

The floor is max(latency, minimum requests / rate) with two requests (submit, one poll) per
job: 400 requests at 200 per 60 s is 120 s. A sliding-window limit lets a client burst its
first window's requests at once, so a client can beat this floor by up to one window.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

API_KEY = "bench-key"
SDK_CONCURRENCY = 5  # the official SDK's CLI default (--max_concurrent)
LOOP_CONTENDERS = frozenset({"sdk-loop"})
OURS = ("ocr_batch (sync)", "iter_batch (async)")


@dataclass(frozen=True)
class Contender:
    """One way of OCRing the files."""

    key: str
    label: str
    needs: str | None = None  # a module that must be importable


CONTENDERS = (
    Contender("batch-sync", "ocr_batch (sync)"),
    Contender("batch-async", "iter_batch (async)"),
    Contender("batch-previous", "ocr_batch, previous planner"),
    Contender("llamaindex-sync", "LlamaIndex load_data", "llama_index.core"),
    Contender("llamaindex-async", "LlamaIndex aload_data", "llama_index.core"),
    Contender("langchain-sync", "LangChain lazy_load", "langchain_core"),
    Contender("langchain-async", "LangChain alazy_load", "langchain_core"),
    Contender("sdk-loop", "official SDK, loop", "datalab_sdk"),
    Contender("sdk-async", f"official SDK async x{SDK_CONCURRENCY}", "datalab_sdk"),
)


# The files: small distinct PNGs, written without any imaging library.


def _png(seed: int) -> bytes:
    rng = random.Random(seed)
    width = height = 16
    rows = b"".join(b"\x00" + rng.randbytes(width * 3) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _pdf(seed: int, pages: int) -> bytes:
    """A minimal valid PDF of ``pages`` empty pages, made distinct by ``seed``."""
    kids = " ".join(f"{3 + i} 0 R" for i in range(pages))
    objects = [
        f"<< /Type /Catalog /Pages 2 0 R /Seed {seed} >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>",
        *["<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>"] * pages,
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    table = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    trailer = f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{table}\n"
    return out + trailer.encode() + b"%%EOF\n"


def write_files(folder: Path, count: int, salt: int, pages: tuple[int, int] = (1, 1)) -> list[Path]:
    """``count`` distinct files; ``salt`` keeps runs from sharing content. One-page PNGs, or
    PDFs of ``pages`` (low, high) pages drawn at random when high > 1."""
    paths = []
    rng = random.Random(salt)
    for index in range(count):
        seed = salt * 1_000_003 + index
        if pages[1] > 1:
            path = folder / f"doc-{index:04d}.pdf"
            path.write_bytes(_pdf(seed, rng.randint(*pages)))
        else:
            path = folder / f"page-{index:04d}.png"
            path.write_bytes(_png(seed))
        paths.append(path)
    return paths


# The child process: run one contender and report.


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _ours(base_url: str, rate: tuple[int, float], asynchronous: bool) -> Any:
    from datalab_ocr import AsyncDatalabClient, DatalabClient, RateLimiter

    limiter = RateLimiter(*rate)
    kind = AsyncDatalabClient if asynchronous else DatalabClient
    return kind(API_KEY, base_url, rate_limit=limiter, cache=False)


def run_batch_sync(paths: list[Path], base_url: str, rate: tuple[int, float]) -> int:
    with _ours(base_url, rate, asynchronous=False) as client:
        return len(client.ocr_batch(paths, errors="collect").failures)


def run_batch_previous(paths: list[Path], base_url: str, rate: tuple[int, float]) -> int:
    from previous_planner import previous_planner

    with _ours(base_url, rate, asynchronous=False) as client:
        # The benchmark's own baseline only: the flow settings are frozen on purpose.
        object.__setattr__(client._settings, "planner", previous_planner(client.polling))
        return len(client.ocr_batch(paths, errors="collect").failures)


def run_batch_async(paths: list[Path], base_url: str, rate: tuple[int, float]) -> int:
    async def main() -> int:
        failed = 0
        async with _ours(base_url, rate, asynchronous=True) as client:
            async for item in client.iter_batch(paths, errors="collect"):
                failed += 0 if item.ok else 1
        return failed

    return asyncio.run(main())


def run_llamaindex(
    paths: list[Path], base_url: str, rate: tuple[int, float], asynchronous: bool
) -> int:
    from datalab_ocr.llama_index import DatalabOCRReader

    # The reader's own clients would take the hosted rate limit and the on-disk cache; hand it
    # clients configured like the batch contenders so only the multi-file path differs.
    if asynchronous:

        async def main() -> int:
            async with _ours(base_url, rate, asynchronous=True) as client:
                reader = DatalabOCRReader(async_client=client)
                return len(await reader.aload_data(paths))

        return len(paths) - _documents_or_zero(lambda: asyncio.run(main()))
    with _ours(base_url, rate, asynchronous=False) as client:
        reader = DatalabOCRReader(client=client)
        return len(paths) - _documents_or_zero(lambda: len(reader.load_data(paths)))


def run_langchain(
    paths: list[Path], base_url: str, rate: tuple[int, float], asynchronous: bool
) -> int:
    from datalab_ocr.langchain import DatalabOCRLoader

    if asynchronous:

        async def main() -> int:
            async with _ours(base_url, rate, asynchronous=True) as client:
                loader = DatalabOCRLoader(paths, async_client=client)
                return len([document async for document in loader.alazy_load()])

        return len(paths) - _documents_or_zero(lambda: asyncio.run(main()))
    with _ours(base_url, rate, asynchronous=False) as client:
        loader = DatalabOCRLoader(paths, client=client)
        return len(paths) - _documents_or_zero(lambda: len(list(loader.lazy_load())))


def _documents_or_zero(load: Callable[[], int]) -> int:
    # The integrations raise at the first failed file (never a silent empty list); the files
    # after it count as failed too.
    try:
        return load()
    except Exception as error:
        print(f"stopped by {type(error).__name__}: {error}", file=sys.stderr)
        return 0


def run_sdk_loop(paths: list[Path], base_url: str) -> int:
    sdk = importlib.import_module("datalab_sdk")
    client = sdk.DatalabClient(api_key=API_KEY, base_url=base_url)
    failed = 0
    for path in paths:  # as its README shows: one call per file
        try:
            result = client.ocr(path)
        except Exception as error:
            print(f"{path.name}: {type(error).__name__}: {error}", file=sys.stderr)
            failed += 1
        else:
            failed += 0 if result.success else 1
    return failed


def run_sdk_async(paths: list[Path], base_url: str) -> int:
    sdk = importlib.import_module("datalab_sdk")

    async def main() -> int:
        gate = asyncio.Semaphore(SDK_CONCURRENCY)

        async def one(path: Path) -> bool:
            # As its CLI does (process_files_async): a client per file, 5 files at a time.
            async with gate:
                try:
                    async with sdk.AsyncDatalabClient(api_key=API_KEY, base_url=base_url) as c:
                        result = await c.ocr(path)
                except Exception as error:
                    print(f"{path.name}: {type(error).__name__}: {error}", file=sys.stderr)
                    return False
                return bool(result.success)

        outcomes = await asyncio.gather(*(one(path) for path in paths))
        return outcomes.count(False)

    return asyncio.run(main())


def child(key: str, folder: str, count: int, base_url: str, rate: tuple[int, float]) -> None:
    """Run contender ``key`` over the first ``count`` files of ``folder``; print JSON."""
    warnings.simplefilter("ignore", DeprecationWarning)  # the SDK's ocr() is deprecated
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix in (".png", ".pdf"))[:count]
    runners: dict[str, Callable[[], int]] = {
        "batch-sync": lambda: run_batch_sync(paths, base_url, rate),
        "batch-async": lambda: run_batch_async(paths, base_url, rate),
        "batch-previous": lambda: run_batch_previous(paths, base_url, rate),
        "llamaindex-sync": lambda: run_llamaindex(paths, base_url, rate, asynchronous=False),
        "llamaindex-async": lambda: run_llamaindex(paths, base_url, rate, asynchronous=True),
        "langchain-sync": lambda: run_langchain(paths, base_url, rate, asynchronous=False),
        "langchain-async": lambda: run_langchain(paths, base_url, rate, asynchronous=True),
        "sdk-loop": lambda: run_sdk_loop(paths, base_url),
        "sdk-async": lambda: run_sdk_async(paths, base_url),
    }
    # Import what the contender needs before the baseline, so memory growth is the run's.
    for module in ("datalab_ocr", "httpx", "datalab_sdk", "llama_index.core", "langchain_core"):
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)
    before = _rss_kib("VmRSS")
    started = time.perf_counter()
    failed = runners[key]()
    wall = time.perf_counter() - started
    growth = (_rss_kib("VmHWM") - before) / 1024
    print(json.dumps({"wall": wall, "failed": failed, "growth_mb": growth, "files": len(paths)}))


# The parent: a fresh server per contender, the child, the server's counters.


@dataclass
class Outcome:
    """What one contender did, measured on ``files`` files."""

    contender: Contender
    files: int
    wall: float
    failed: int
    growth_mb: float
    requests: int
    http_429: int
    completed: int
    error: str | None = None

    def scaled_wall(self, total: int) -> float:
        """Wall time for ``total`` files: measured, or extrapolated from a subset."""
        return self.wall * total / self.files if self.files else float("nan")


def measure(contender: Contender, folder: Path, count: int, args: argparse.Namespace) -> Outcome:
    """Run one contender in a child process against a fresh local server."""
    import httpx

    from datalab_ocr.server import LocalServer, ServerConfig

    config = ServerConfig(
        engine="none",
        workers=1,
        latency=args.latency,
        rate_limit_requests=args.rate_requests,
        rate_limit_window=args.rate_window,
        queue_size=max(64, count),
        long_poll_max=0,  # the hosted API offers no long poll
    )
    env = {**os.environ, "DATALAB_OCR_CACHE": "off", "PYTHONWARNINGS": "ignore"}
    env.pop("DATALAB_API_KEY", None)
    with LocalServer(config) as server:
        command = [
            sys.executable,
            __file__,
            "--child",
            contender.key,
            str(folder),
            str(count),
            server.base_url,
            str(args.rate_requests),
            str(args.rate_window),
        ]
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=args.timeout, check=False
        )
        stats = httpx.get(f"{server.base_url}/_local/stats").json()
    error = None
    report: dict[str, Any] = {"wall": float("nan"), "failed": count, "growth_mb": float("nan")}
    if done.returncode != 0 or not done.stdout.strip():
        error = (done.stderr.strip().splitlines() or ["no output"])[-1]
    else:
        report = json.loads(done.stdout.strip().splitlines()[-1])
    if done.stderr.strip() and args.verbose:
        print(f"--- {contender.label} stderr ---\n{done.stderr.strip()[-3000:]}")
    return Outcome(
        contender=contender,
        files=count,
        wall=float(report["wall"]),
        failed=int(report["failed"]),
        growth_mb=float(report["growth_mb"]),
        requests=int(stats["requests"]),
        http_429=int(stats["http_429"]),
        completed=int(stats["jobs_completed"]),
        error=error,
    )


def _available(contender: Contender) -> bool:
    return contender.needs is None or importlib.util.find_spec(contender.needs) is not None


def report(outcomes: list[Outcome], args: argparse.Namespace) -> bool:
    """Print the table and the goals; True when every goal is met."""
    total = args.files
    floor = max(args.latency, 2 * total / args.rate_requests * args.rate_window)
    print(
        f"\n{total} files of {args.pages} pages, {args.latency:g} s per job, rate limit "
        f"{args.rate_requests} requests / {args.rate_window:g} s"
    )
    print(
        f"floor: max({args.latency:g} s, {2 * total} requests / "
        f"({args.rate_requests}/{args.rate_window:g} s)) = {floor:.1f} s"
    )
    header = (
        f"{'contender':<30}{'files':>6}{'wall s':>9}{'x floor':>9}{'req/job':>9}"
        f"{'429s':>6}{'failed':>8}{'peak MB':>9}"
    )
    print(header)
    print("-" * len(header))
    walls: dict[str, float] = {}
    for outcome in outcomes:
        wall = outcome.scaled_wall(total)
        walls[outcome.contender.label] = wall
        mark = "*" if outcome.files < total else " "
        print(
            f"{outcome.contender.label:<30}{outcome.files:>6}{wall:>8.1f}{mark}"
            f"{wall / floor:>9.2f}{outcome.requests / max(1, outcome.files):>9.2f}"
            f"{outcome.http_429:>6}{outcome.failed:>8}{outcome.growth_mb:>9.1f}"
        )
        if outcome.error:
            print(f"    error: {outcome.error}")
    if any(outcome.files < total for outcome in outcomes):
        print(
            f"* measured on the first {args.loop_files} files and extrapolated linearly to "
            f"{total} (one file after another; --loop-files {total} measures it all)"
        )
    return _goals(outcomes, walls, floor)


def _goals(outcomes: list[Outcome], walls: dict[str, float], floor: float) -> bool:
    results: list[tuple[str, bool]] = []
    ours = [label for label in OURS if label in walls]
    for label in ours:
        ratio = walls[label] / floor
        results.append((f"{label}: within 1.15x of the floor: {ratio:.2f}x", ratio <= 1.15))
    for outcome in outcomes:
        if outcome.contender.label in ours:
            per_job = outcome.requests / max(1, outcome.files)
            results.append((f"{outcome.contender.label}: no failed documents", outcome.failed == 0))
            results.append(
                (
                    f"{outcome.contender.label}: <= 2.3 requests per job: {per_job:.2f}",
                    per_job <= 2.3,
                )
            )
    sdk_loop = walls.get(CONTENDERS[7].label)
    sdk_async = walls.get(CONTENDERS[8].label)
    for label in ours:
        if sdk_loop is not None:
            speedup = sdk_loop / walls[label]
            results.append(
                (f"{label}: >= 7x faster than the SDK loop: {speedup:.1f}x", speedup >= 7)
            )
        if sdk_async is not None:
            speedup = sdk_async / walls[label]
            results.append(
                (f"{label}: >= 2x faster than the SDK async client: {speedup:.1f}x", speedup >= 2)
            )
    print("\ngoals")
    for text, met in results:
        print(f"  {'pass' if met else 'FAIL'}  {text}")
    return all(met for _, met in results)


def main() -> None:
    """Run every contender and print the figures and the goals."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200, help="files (200)")
    parser.add_argument(
        "--pages",
        default="1",
        help="pages per file: N, or LOW-HIGH drawn at random (PDFs); default 1 (PNGs)",
    )
    parser.add_argument("--latency", type=float, default=5.0, help="seconds per job (5)")
    parser.add_argument("--rate-requests", type=int, default=200, help="requests per window")
    parser.add_argument("--rate-window", type=float, default=60.0, help="window in seconds")
    parser.add_argument("--loop-files", type=int, default=30, help="files for the SDK loop (30)")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated contender keys: "
        + ",".join(contender.key for contender in CONTENDERS),
    )
    parser.add_argument("--serial", action="store_true", help="one contender at a time")
    parser.add_argument("--timeout", type=float, default=3600.0, help="per contender (s)")
    parser.add_argument("--verbose", action="store_true", help="show each child's stderr")
    args = parser.parse_args()

    chosen = [c for c in CONTENDERS if not args.only or c.key in args.only.split(",")]
    missing = [c for c in chosen if not _available(c)]
    for contender in missing:
        print(f"skipped {contender.label}: {contender.needs} is not installed", flush=True)
    chosen = [c for c in chosen if c not in missing]
    lock = threading.Lock()
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        folder = Path(tmp)
        low, _, high = args.pages.partition("-")
        pages = (int(low), int(high or low))
        write_files(folder, args.files, salt=time.time_ns() % 1_000_000, pages=pages)

        def one(contender: Contender) -> Outcome:
            loop = contender.key in LOOP_CONTENDERS
            count = min(args.files, args.loop_files) if loop else args.files
            with lock:
                print(f"running {contender.label} on {count} files ...", flush=True)
            outcome = measure(contender, folder, count, args)
            with lock:
                print(f"  {contender.label}: {outcome.wall:.1f} s", flush=True)
            return outcome

        workers = 1 if args.serial else len(chosen)
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            outcomes = list(pool.map(one, chosen))
    report(outcomes, args)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        key, folder, count, base_url, requests, window = sys.argv[2:8]
        child(key, folder, int(count), base_url, (int(requests), float(window)))
    else:
        main()
