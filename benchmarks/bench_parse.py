"""Parsing the largest result the API can send, against ``json.loads`` of the same body.

Run on demand (not a test)::

    python benchmarks/bench_parse.py [--pages 7000] [--lines 40] [--repeat 3] [--profile]

The body: a complete result of ``--pages`` pages (7,000 is the API's maximum per request),
each with ``--lines`` text lines carrying text, confidence, polygon and bbox, as the service
sends them. Timed, best of ``--repeat``:

* ``json.loads`` of the body alone (the baseline);
* ``OCRResult.model_validate_json`` alone;
* the whole client path: ``DatalabClient.ocr()`` on an ``httpx.MockTransport`` that answers
  the submit and then the body, in fake time (so parsing, page indices and the flow count);
* the LlamaIndex reader's ``load_data`` and the LangChain loader's ``load`` over the same
  client, so the shared page-to-record mapping and each framework's ``Document`` count too.

Goal: each stays within 3x of ``json.loads``. ``--profile`` prints where the time of the
slowest path goes (cProfile, top functions by own time).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pstats
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from datalab_ocr import DatalabClient, OCRResult
from datalab_ocr.testing import FakeClock

GOAL = 3.0
BASE_URL = "https://bench.invalid"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
_VOCABULARY = (
    "the of and to in is for on that with as by this are from at be or an it which we our "
    "results model data method table figure training adversarial robust accuracy section"
)
WORDS = _VOCABULARY.split()


def make_body(pages: int, lines: int, seed: int = 7) -> bytes:
    """A complete result of ``pages`` pages with ``lines`` realistic lines each."""
    rng = random.Random(seed)
    page_list = []
    for number in range(1, pages + 1):
        text_lines = []
        y = 60.0
        for _ in range(lines):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12)))
            x0 = round(rng.uniform(60, 120), 1)
            x1 = round(x0 + 6.2 * len(text), 1)
            y0, y1 = round(y, 1), round(y + 18.0, 1)
            y += 23.5
            text_lines.append(
                {
                    "text": text,
                    "confidence": round(rng.uniform(0.85, 1.0), 4),
                    "polygon": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]],
                    "bbox": [x0, y0, x1, y1],
                }
            )
        page_list.append(
            {"page": number, "image_bbox": [0.0, 0.0, 1224.0, 1584.0], "text_lines": text_lines}
        )
    body = {
        "status": "complete",
        "success": True,
        "error": None,
        "pages": page_list,
        "page_count": pages,
        "total_cost": float(pages),
        "cost_breakdown": {"list_cost_cents": float(pages)},
        "versions": {"surya": "0.4.0", "datalab": "1.0"},
    }
    return json.dumps(body).encode()


def client_for(body: bytes) -> DatalabClient:
    """A client whose service answers a submit, then ``body`` on the first poll."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            answer = {
                "request_id": "bench",
                "request_check_url": f"{BASE_URL}/api/v1/ocr/bench",
                "success": True,
            }
            return httpx.Response(200, json=answer)
        return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})

    http = httpx.Client(transport=httpx.MockTransport(handler))
    return DatalabClient(
        "bench-key",
        BASE_URL,
        http_client=http,
        clock=FakeClock(),
        rate_limit=False,
        cache=False,
    )


def best_of(repeat: int, work: Callable[[], Any]) -> float:
    """The fastest of ``repeat`` runs, in seconds, with the collector settled in between."""
    times = []
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
        del result
    return min(times)


def paths(body: bytes, file: Path) -> dict[str, Callable[[], Any]]:
    """The timed paths, by label."""
    from datalab_ocr.langchain import DatalabOCRLoader
    from datalab_ocr.llama_index import DatalabOCRReader

    def client_ocr() -> OCRResult:
        with client_for(body) as client:
            return client.ocr(file)

    def llama_index() -> list[Any]:
        with client_for(body) as client:
            return DatalabOCRReader(client=client).load_data(file)

    def langchain() -> list[Any]:
        with client_for(body) as client:
            return DatalabOCRLoader(file, client=client).load()

    return {
        "json.loads (baseline)": lambda: json.loads(body),
        "OCRResult.model_validate_json": lambda: OCRResult.model_validate_json(body),
        "DatalabClient.ocr (whole path)": client_ocr,
        "LlamaIndex load_data": llama_index,
        "LangChain load": langchain,
    }


def main() -> None:
    """Time every path and print them side by side with the ratio to json.loads."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=7000, help="pages in the body (7000)")
    parser.add_argument("--lines", type=int, default=40, help="text lines per page (40)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per path; best counts")
    parser.add_argument("--profile", action="store_true", help="profile the slowest path")
    args = parser.parse_args()

    body = make_body(args.pages, args.lines)
    print(
        f"body: {args.pages} pages x {args.lines} lines, {len(body) / 1e6:.1f} MB; "
        f"best of {args.repeat}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-parse-") as folder:
        file = Path(folder) / "scan.png"
        file.write_bytes(PNG)
        timed = paths(body, file)
        results = {label: best_of(args.repeat, work) for label, work in timed.items()}
        baseline = results["json.loads (baseline)"]
        print(f"{'path':<34}{'seconds':>9}{'x json.loads':>14}")
        for label, seconds in results.items():
            print(f"{label:<34}{seconds:>9.2f}{seconds / baseline:>14.2f}")
        print("\ngoals")
        for label, seconds in results.items():
            if label == "json.loads (baseline)":
                continue
            ratio = seconds / baseline
            verdict = "pass" if ratio <= GOAL else "FAIL"
            print(f"  {verdict}  {label}: within {GOAL:g}x of json.loads ({ratio:.2f}x)")
        if args.profile:
            slowest = max(
                (label for label in results if label != "json.loads (baseline)"),
                key=results.__getitem__,
            )
            print(f"\nprofile of {slowest} (own time)")
            profiler = cProfile.Profile()
            profiler.runcall(timed[slowest])
            pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
