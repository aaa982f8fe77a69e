"""Peak memory of uploading a 200 MB file: datalab-ocr's streamed upload against a naive one.

Run on demand: ``.venv/bin/python benchmarks/bench_upload_memory.py [--mb 200]``.

A sink server on 127.0.0.1 (a child process) reads and discards the upload and answers like
the service. Each upload runs in a fresh child process, which reports how far its peak
resident memory (VmHWM) rose above its resident memory just before the upload. Goal: the
library's growth stays under 32 MB for a 200 MB file; the baseline reads the file into memory
first, as a plain ``httpx.post(files=...)`` of the bytes does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

GOAL_MB = 32.0


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        # The request id reports how many bytes arrived, so the benchmark can check that the
        # whole file was sent.
        remaining = received = int(self.headers.get("Content-Length", "0"))
        while remaining:
            remaining -= len(self.rfile.read(min(remaining, 1 << 20)))
        self._json({"request_id": f"r{received}", "success": True})

    def do_GET(self) -> None:
        self._json(
            {
                "status": "complete",
                "success": True,
                "page_count": 1,
                "pages": [{"page": 1, "text_lines": [{"text": "ok"}]}],
            }
        )

    def _json(self, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


def serve() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    print(server.server_address[1], flush=True)
    server.serve_forever()


def upload(mode: str, path: str, base_url: str) -> None:
    import httpx

    from datalab_ocr import DatalabClient, PollPolicy

    before = _rss_kib("VmRSS")
    if mode == "library":
        with DatalabClient(base_url=base_url, polling=PollPolicy(initial_delay=0.01)) as client:
            request_id = client.ocr(path).request_id or ""
    else:
        data = Path(path).read_bytes()
        files = {"file": ("big.pdf", data, "application/pdf")}
        request_id = httpx.post(f"{base_url}/api/v1/ocr", files=files, timeout=120).json()[
            "request_id"
        ]
    growth = (_rss_kib("VmHWM") - before) / 1024
    print(json.dumps({"growth_mb": growth, "received": int(request_id[1:])}))


def measure(mode: str, path: Path, base_url: str) -> tuple[float, float]:
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path), base_url],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads(out.stdout)
    if report["received"] < path.stat().st_size:
        raise RuntimeError(f"{mode}: the sink received {report['received']} bytes only")
    return report["growth_mb"], time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=200, help="file size in MB (default 200)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.pdf"
        with path.open("wb") as handle:
            handle.write(b"%PDF-1.4\n")
            chunk = os.urandom(1 << 20)
            for _ in range(args.mb):
                handle.write(chunk)
            handle.truncate(args.mb * 1024 * 1024)
        sink = subprocess.Popen(
            [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True
        )
        try:
            assert sink.stdout is not None
            base_url = f"http://127.0.0.1:{sink.stdout.readline().strip()}"
            library, library_s = measure("library", path, base_url)
            naive, naive_s = measure("naive", path, base_url)
        finally:
            sink.terminate()
            sink.wait(timeout=10)
    print(f"upload of a {args.mb} MB file, peak resident memory growth")
    print(f"{'':24}{'growth MB':>12}{'seconds':>10}")
    print(f"{'datalab-ocr (streamed)':24}{library:12.1f}{library_s:10.2f}")
    print(f"{'baseline (read, post)':24}{naive:12.1f}{naive_s:10.2f}")
    verdict = "met" if library < GOAL_MB else "MISSED"
    print(f"goal: growth < {GOAL_MB:.0f} MB: {verdict}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve()
    elif sys.argv[1:2] == ["--child"]:
        upload(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        main()
