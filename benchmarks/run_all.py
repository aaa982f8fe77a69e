"""Run every benchmark in turn (``make bench``); each prints its figures beside its baseline.

Run on demand::

    python benchmarks/run_all.py [--quick] [--only bench_parse,bench_polling]

``--quick`` runs scaled-down versions (a minute or two in all) instead of the full scenarios
(about 10 minutes: ``bench_batch.py`` alone takes 5). A benchmark that fails does not stop the
others; the exit status says whether all of them ran.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name -> (full arguments, quick arguments)
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "bench_parse": ([], ["--pages", "1000", "--repeat", "1"]),
    "bench_polling": ([], ["--jobs", "100"]),
    "bench_upload_memory": ([], ["--mb", "50"]),
    "bench_server": ([], ["--jobs", "4", "--text-pages", "10"]),
    "bench_ray": ([], ["--scanned-pages", "4", "--text-pages", "24", "--reserves", "200"]),
    "bench_batch": (
        ["--pages", "1-3"],
        ["--files", "40", "--latency", "2", "--rate-requests", "40", "--rate-window", "24"],
    ),
    "bench_local": ([], ["--text-files", "10", "--scans", "6"]),
    "bench_report": ([], ["--pages", "20", "--repeat", "1"]),
}


def main() -> None:
    """Run the chosen benchmarks one after another and summarize."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="scaled-down scenarios")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    args = parser.parse_args()
    chosen = [name for name in BENCHMARKS if not args.only or name in args.only.split(",")]
    outcomes: list[tuple[str, int, float]] = []
    for name in chosen:
        full, quick = BENCHMARKS[name]
        command = [sys.executable, str(HERE / f"{name}.py"), *(quick if args.quick else full)]
        print(f"\n##### {name} {' '.join(command[2:])}", flush=True)
        started = time.perf_counter()
        code = subprocess.run(command, check=False).returncode
        outcomes.append((name, code, time.perf_counter() - started))
    print("\n##### summary")
    for name, code, seconds in outcomes:
        print(f"  {name:<22}{'ran' if code == 0 else f'FAILED (exit {code})':<18}{seconds:>7.0f} s")
    sys.exit(0 if all(code == 0 for _, code, _ in outcomes) else 1)


if __name__ == "__main__":
    main()
