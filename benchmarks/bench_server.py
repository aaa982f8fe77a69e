"""Throughput of the local server against calling its engine directly, on the same pages.

Run on demand (not a test)::

    python benchmarks/bench_server.py [--jobs 12] [--text-pages 60] [--workers 2] [--no-bomb]
                                      [--upright] [--rounds 3] [--client-only]

Scans: ``--jobs`` one-page jobs cycling over five scans (the example letter, upright; the
committed test scans: a letter turned 90 degrees, three columns, a stamped scan PDF, an
upright letter; ``--upright`` keeps the three upright full-page scans), all submitted at
once and polled with plain httpx, against the engine's :func:`process_pages` on the same
documents in as many processes as the server has workers,
so both sides keep every core busy. Text-layer pages: the example born-digital PDF repeated
to ``--text-pages`` pages in one job, against the same direct call. The server side includes
HTTP, the queue and polling delays; workers are warmed on both sides first.

Page-size bombs (unless ``--no-bomb``): a 200 x 200 inch page and a blank 90 x 90 inch page
through the server, with the time each job takes and the peak resident memory (VmHWM) of the
largest worker process afterwards. Goals: the ratio of server to direct throughput on scans
at least 0.9, each bomb done within 10 s, no worker above 1 GB. On a machine shared with other
work, wall times swing; the CPU seconds per page (the server's workers against the direct
processes, and apart the HTTP server's and polling client's own) show the overhead without
that noise.

Through the client (issue 11): the scan pages of ``bench_corpus.py`` (20 text pages of
public PDFs rendered at 200 dpi, when ``benchmarks/corpus/cache`` holds the corpus; else the
five scans above) as PNG files, OCRed by ``DatalabClient.ocr_batch`` (default concurrency)
against a ``LocalServer`` with ``--workers`` workers, and by :func:`process_pages` in as
many warm spawned processes, ``--rounds`` times, the two sides taking turns (which goes
first alternates). Goal: the client's throughput within 10 % of the direct one (ratio of
the summed pages per second at least 0.9; each round's ratio is printed too, since load
from other work moves both sides). Then the fixed cost of a job, from one-word images whose
OCR takes milliseconds: what the server path adds per job beside the OCR itself.
``--client-only`` runs just this comparison.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import logging
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from datalab_ocr import DatalabClient
from datalab_ocr.server import LocalServer, ServerConfig
from datalab_ocr.server.engine import prepare_document, process_pages
from datalab_ocr.server.formats import IMAGE, PDF

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "data"
SCANS = ROOT / "tests" / "server" / "data"
POLL_INTERVAL = 0.05
UPRIGHT = ("scan.jpg", "three-columns.png", "letter-upright.png")
Document = tuple[str, bytes, str, str]
"""A document to process: file name, bytes, content type, kind (``image`` or ``pdf``)."""
Timing = tuple[float, int, float]
"""Wall seconds, pages, CPU seconds of the processes doing the OCR."""
OWN_CPU: list[float] = []
"""CPU seconds per page of this process (HTTP server and polling client) per server run."""


def long_pdf(pages: int) -> bytes:
    """The example PDF's pages repeated to ``pages`` pages (written by its generator)."""
    spec = importlib.util.spec_from_file_location("make_data", DATA / "make_data.py")
    assert spec is not None
    assert spec.loader is not None
    make_data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_data)
    chosen = [make_data.PDF_PAGES[i % len(make_data.PDF_PAGES)] for i in range(pages)]
    document: bytes = make_data.make_pdf(chosen)
    return document


def _scans() -> list[Document]:
    letter = SCANS / "letter-90.png"
    upright = letter.with_name("letter-upright.png")
    return [
        ("scan.jpg", (DATA / "scanned-letter.jpg").read_bytes(), "image/jpeg", IMAGE),
        (letter.name, letter.read_bytes(), "image/png", IMAGE),
        ("three-columns.png", (SCANS / "three-columns.png").read_bytes(), "image/png", IMAGE),
        ("stamped-scan.pdf", (SCANS / "stamped-scan.pdf").read_bytes(), "application/pdf", PDF),
        (upright.name, _turned_upright(letter), "image/png", IMAGE),
    ]


def _turned_upright(path: Path) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.open(path).rotate(-90, expand=True).save(buffer, "PNG")  # it was turned by +90
    return buffer.getvalue()


def _through_server(server: LocalServer, documents: list[Document]) -> Timing:
    """Submit every document at once, poll until all complete; (seconds, pages, CPU seconds).

    The CPU seconds are the workers'; this process's own (the server's event loop and the
    polling client, both here) are printed apart, as :data:`OWN_CPU`.
    """
    started = time.perf_counter()
    cpu = _children_cpu()
    own = time.process_time()
    with httpx.Client(timeout=120.0) as client:
        urls = []
        for name, content, content_type, _kind in documents:
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
    seconds = time.perf_counter() - started
    OWN_CPU.append((time.process_time() - own) / max(1, pages))
    return seconds, pages, _children_cpu() - cpu


def _one_job(document: Document) -> int:
    """Process one document in this (worker) process, all its pages; the page count."""
    name, content, _content_type, kind = document
    folder = Path(tempfile.mkdtemp(prefix="bench-server-"))
    try:
        path = folder / "document"
        path.write_bytes(content)
        prepared = prepare_document(
            str(path),
            kind,
            suffix=Path(name).suffix,
            max_image_pixels=100_000_000,
            office_timeout=60,
        )
        result = process_pages(
            prepared,
            list(range(prepared.page_count)),
            engine="tesseract",
            render_scale=2.0,
            max_image_pixels=100_000_000,
        )
        return len(result.pages)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _warm_worker(document: Document) -> None:
    os.environ["OMP_THREAD_LIMIT"] = "1"  # as the server's workers
    _one_job(document)  # load the model outside the timing


def _direct(documents: list[Document], processes: int, warm: Document) -> Timing:
    """The same documents through the engine in ``processes`` spawned processes."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes, initializer=_warm_worker, initargs=(warm,)) as pool:
        # One task per process first: the pool's start-up and warm-up stay out of the timing.
        pool.map(_one_job, [warm] * processes, chunksize=1)
        started = time.perf_counter()
        cpu = _children_cpu()
        pages = sum(pool.map(_one_job, documents, chunksize=1))
        return time.perf_counter() - started, pages, _children_cpu() - cpu


def _corpus_scans(count: int) -> list[Document]:
    """``bench_corpus.py``'s scan pages as 200 dpi PNGs; none without the corpus cache."""
    from bench_corpus import CORPUS, references, render_scan, scan_pages

    paths = sorted(CORPUS.glob("*.pdf"))
    if not paths:
        return []
    documents: list[Document] = []
    for path, index, _truth, _readings in scan_pages(references(paths), count):
        name = f"{path.stem.rsplit('__', 1)[-1]}-p{index + 1}.png"
        documents.append((name, render_scan(path, index), "image/png", IMAGE))
    return documents


def _through_client(client: DatalabClient, files: list[Path]) -> Timing:
    """``ocr_batch`` over ``files`` as a user would call it; (seconds, pages, worker CPU)."""
    started = time.perf_counter()
    cpu = _children_cpu()
    own = time.process_time()
    batch = client.ocr_batch(files, skip_cache=True)
    seconds = time.perf_counter() - started
    pages = sum(len(result.pages) for result in batch.results)
    if pages < len(files):
        raise RuntimeError(f"only {pages} of {len(files)} pages came back")
    OWN_CPU.append((time.process_time() - own) / pages)
    return seconds, pages, _children_cpu() - cpu


def _one_word_png() -> Document:
    """A one-word image: OCR takes milliseconds, so its jobs time the path around it."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", (240, 60), 255)
    ImageDraw.Draw(image).text((10, 10), "harbour", fill=0, font=ImageFont.load_default(size=30))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", dpi=(200, 200))
    return ("word.png", buffer.getvalue(), "image/png", IMAGE)


def _write(folder: Path, documents: list[Document]) -> list[Path]:
    files = []
    for number, (name, content, _type, _kind) in enumerate(documents):
        files.append(folder / f"{number:02d}-{name}")
        files[-1].write_bytes(content)
    return files


def _client_against_direct(documents: list[Document], workers: int, rounds: int) -> None:
    """The client against a local server and the engine direct, taking turns, per round.

    Then the fixed cost of a job: 40 one-word images each way, in milliseconds a job.
    """
    config = ServerConfig(workers=workers, queue_size=max(64, len(documents)), cache_size=0)
    folder = Path(tempfile.mkdtemp(prefix="bench-server-client-"))
    context = multiprocessing.get_context("spawn")
    totals = {"client": [0.0, 0, 0.0], "direct": [0.0, 0, 0.0]}
    ratios = []
    try:
        files = _write(folder, documents)
        word = _one_word_png()
        words = _write(folder, [word] * 40)
        with (
            LocalServer(config) as server,
            DatalabClient(base_url=server.base_url, cache=False, rate_limit=False) as client,
            context.Pool(workers, initializer=_warm_worker, initargs=(documents[0],)) as pool,
        ):
            _through_client(client, files[: 2 * workers])  # start and warm the workers
            pool.map(_one_job, [documents[0]] * workers, chunksize=1)
            print(f"\n{len(documents)} scan pages through the client, {rounds} rounds:")
            for number in range(rounds):
                sides = ["client", "direct"] if number % 2 == 0 else ["direct", "client"]
                rates = {}
                for side in sides:
                    if side == "client":
                        timing = _through_client(client, files)
                    else:
                        started, cpu = time.perf_counter(), _children_cpu()
                        pages = sum(pool.map(_one_job, documents, chunksize=1))
                        timing = (time.perf_counter() - started, pages, _children_cpu() - cpu)
                    for at, value in enumerate(timing):
                        totals[side][at] += value
                    rates[side] = timing[1] / timing[0]
                    label = "client + local server" if side == "client" else "engine direct"
                    print(_row(f"  round {number + 1}: {label}", *timing))
                ratios.append(rates["client"] / rates["direct"])
            client_job = _through_client(client, words)[0] / len(words)
            started = time.perf_counter()
            pool.map(_one_job, [word] * len(words), chunksize=1)
            direct_job = (time.perf_counter() - started) / len(words)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    client_rate = totals["client"][1] / totals["client"][0]
    direct_rate = totals["direct"][1] / totals["direct"][0]
    ratio = client_rate / direct_rate
    verdict = "pass" if ratio >= 0.9 else "FAIL"
    print(f"client {client_rate:.2f} pages/s, direct {direct_rate:.2f} pages/s ({workers} each)")
    print(f"client / direct throughput {ratio:.2f} (goal >= 0.90: {verdict})")
    rounds_text = ", ".join(f"{value:.2f}" for value in ratios)
    print(f"  per round {rounds_text}; median {statistics.median(ratios):.2f}")
    cpu = (totals["client"][2] / totals["client"][1]) / (totals["direct"][2] / totals["direct"][1])
    print(f"client: server workers / direct CPU per page {cpu:.2f}")
    own = sum(OWN_CPU[-rounds - 1 : -1]) / rounds
    print(f"client: the HTTP server and the client (this process) {own:.3f} CPU s/page besides")
    print(
        f"fixed cost of a job (one-word images, {workers} at a time): client "
        f"{1000 * client_job:.1f} ms, direct {1000 * direct_job:.1f} ms"
    )


def _children_cpu() -> float:
    """CPU seconds (user + system) used so far by this process's live child processes."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    me = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[1] == me:  # fields after the name: state, ppid, ..., utime (12), stime (13)
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def _peak_worker_mb() -> float:
    """The largest VmHWM among this process's children (the server's workers), in MB."""
    peak = 0.0
    me = str(os.getpid())
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":", 1) for line in status.read_text().splitlines() if ":" in line
            )
        except OSError:
            continue
        if fields.get("PPid", "").strip() == me and "VmHWM" in fields:
            peak = max(peak, int(fields["VmHWM"].split()[0]) / 1024)
    return peak


def _bomb_pdf(inches: int) -> bytes:
    import pypdfium2

    pdf = pypdfium2.PdfDocument.new()
    pdf.new_page(72 * inches, 72 * inches).close()
    folder = Path(tempfile.mkdtemp(prefix="bench-bomb-"))
    try:
        pdf.save(folder / "bomb.pdf")
        pdf.close()
        return (folder / "bomb.pdf").read_bytes()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _bomb(server: LocalServer, name: str, content: bytes) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    with httpx.Client(timeout=120.0) as client:
        response = client.post(
            f"{server.base_url}/api/v1/ocr",
            files={"file": (name, content, "application/pdf")},
            data={"skip_cache": "true"},
        )
        response.raise_for_status()
        url = response.json()["request_check_url"]
        while (body := client.get(url).json())["status"] != "complete":
            time.sleep(POLL_INTERVAL)
    return time.perf_counter() - started, body


def _row(label: str, seconds: float, pages: int, cpu: float) -> str:
    return (
        f"{label:<44} {pages:>4} pages {seconds:>7.2f} s {pages / seconds:>7.2f} pages/s "
        f"{cpu / pages:>6.3f} CPU s/page"
    )


def main() -> None:
    """Run both comparisons and the bombs, and print them side by side."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=12, help="scanned-page jobs to submit")
    parser.add_argument("--text-pages", type=int, default=60, help="pages of the text-layer PDF")
    parser.add_argument("--workers", type=int, default=ServerConfig().workers)
    parser.add_argument("--no-bomb", action="store_true", help="skip the page-size bombs")
    parser.add_argument(
        "--upright",
        action="store_true",
        help="only the upright full-page scans (no turned page, no stamp)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="turns of client and direct")
    parser.add_argument("--corpus-scans", type=int, default=20, help="corpus pages to render")
    parser.add_argument(
        "--client-only", action="store_true", help="only the client against the engine direct"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.client_only:
        _client_against_direct(
            _corpus_scans(args.corpus_scans) or _scans(), args.workers, args.rounds
        )
        return

    scans = _scans()
    if args.upright:
        scans = [scan for scan in scans if scan[0] in UPRIGHT]
    scan_jobs = [scans[i % len(scans)] for i in range(args.jobs)]
    text_pdf: Document = ("text.pdf", long_pdf(args.text_pages), "application/pdf", PDF)
    config = ServerConfig(workers=args.workers, queue_size=max(64, args.jobs), cache_size=0)

    print(f"cpu count {os.cpu_count()}, server workers {args.workers}, direct processes too")
    bombs: list[tuple[str, float, dict[str, Any]]] = []
    with LocalServer(config) as server:
        # Warm the workers (process start, model load) so both sides are timed hot.
        _through_server(server, [scans[0]] * args.workers)
        server_scan = _through_server(server, scan_jobs)
        server_text = _through_server(server, [text_pdf])
        if not args.no_bomb:
            for inches in (200, 90):
                seconds, body = _bomb(server, f"{inches}in.pdf", _bomb_pdf(inches))
                bombs.append((f"{inches} x {inches} inch page", seconds, body))
            peak = _peak_worker_mb()
    direct_scan = _direct(scan_jobs, args.workers, scans[0])
    direct_text = _direct([text_pdf], 1, scans[0])

    print(_row("scans, server over HTTP", *server_scan))
    print(_row(f"scans, engine direct ({args.workers} processes)", *direct_scan))
    print(_row("text-layer pages, server over HTTP", *server_text))
    print(_row("text-layer pages, engine direct (1 process)", *direct_text))
    ratio = (server_scan[1] / server_scan[0]) / (direct_scan[1] / direct_scan[0])
    print(f"scans: server / direct throughput {ratio:.2f} (goal >= 0.90: ", end="")
    print(f"{'pass' if ratio >= 0.9 else 'FAIL'})")
    cpu_ratio = (server_scan[2] / server_scan[1]) / (direct_scan[2] / direct_scan[1])
    print(f"scans: server workers / direct CPU per page {cpu_ratio:.2f} (load-independent)")
    print(f"scans: HTTP server and polling client {OWN_CPU[1]:.3f} CPU s/page besides")
    for label, seconds, body in bombs:
        if body.get("success"):
            size = body["pages"][0]["image_bbox"]
            outcome = f"rendered at {size[2]:.0f} x {size[3]:.0f} px"
        else:
            outcome = f"refused: {body.get('error')}"
        verdict = "pass" if seconds <= 10 else "FAIL"
        print(f"{label:<24} {seconds:>6.2f} s ({verdict}: <= 10 s) {outcome}")
    if bombs:
        verdict = "pass" if peak < 1024 else "FAIL"
        print(f"largest worker peak RSS {peak:.0f} MB ({verdict}: < 1024 MB)")
    _client_against_direct(_corpus_scans(args.corpus_scans) or _scans(), args.workers, args.rounds)


if __name__ == "__main__":
    main()
