"""``local=True`` from scripts written the way users write them, each in a fresh interpreter.

The scripts have no ``if __name__ == "__main__":`` guard. They run at once (one module-scoped
fixture) to share the cost of starting interpreters; each test then checks one behaviour of
one run. Real OCR: a scanned receipt and a text PDF of this project's own
(``documents/SOURCES.md``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.ocr

ROOT = Path(__file__).resolve().parents[2]
RECEIPT = ROOT / "examples" / "data" / "receipt.png"
TEXT_PDF = Path(__file__).resolve().parent / "documents" / "newsletter.pdf"
TIMEOUT = 120.0
needs_proc = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="finds processes through /proc"
)

# Lets a script name its server's processes, so a test can check they are gone afterwards.
PROCESSES = """
import os
def _descendants(pid):
    found = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent == pid:
            found += [int(entry), *_descendants(int(entry))]
    return found
def server_processes():
    from datalab_ocr.server import embedded_server
    pid = embedded_server().pid
    return [pid, *_descendants(pid)]
"""

SCRIPTS = {
    "top_level": f"""
        import json
        from datalab_ocr.llama_index import DatalabOCRReader

        documents = DatalabOCRReader(local=True).load_data({str(RECEIPT)!r})
        print(json.dumps({{"text": documents[0].text, "processes": server_processes()}}))
    """,
    "fork": f"""
        import json, os, sys
        from datalab_ocr import DatalabClient

        client = DatalabClient(local=True, cache=False)
        first = client.ocr({str(TEXT_PDF)!r}).text
        reader, writer = os.pipe()
        child = os.fork()
        if child == 0:  # like a web server's worker: OCR, then exit normally (atexit runs)
            os.close(reader)
            with DatalabClient(local=True, cache=False) as own:
                text = own.ocr({str(RECEIPT)!r}).text
                os.write(writer, json.dumps({{"url": str(own.base_url), "text": text}}).encode())
            sys.exit(0)
        os.close(writer)
        from_child = json.loads(os.read(reader, 1 << 20) or b"null")
        _, status = os.waitpid(child, 0)
        after = client.ocr({str(TEXT_PDF)!r}).text  # the parent's server still serves
        print(json.dumps({{
            "parent_url": str(client.base_url), "child": from_child,
            "child_status": status, "before": first, "after": after,
        }}))
    """,
    # Two behaviours per interpreter where they fit, to start fewer: -c with two threads
    # asking for the server at once; a script read from stdin that is then killed.
    "dash_c_threads": f"""
        import json, threading
        from datalab_ocr import DatalabClient

        results = {{}}
        def work(name, path):
            with DatalabClient(local=True, cache=False) as client:
                results[name] = {{"url": str(client.base_url), "text": client.ocr(path).text}}
        threads = [
            threading.Thread(target=work, args=("a", {str(RECEIPT)!r})),
            threading.Thread(target=work, args=("b", {str(TEXT_PDF)!r})),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print(json.dumps(results))
    """,
    "stdin_killed": f"""
        import json, time
        from datalab_ocr import DatalabClient

        text = DatalabClient(local=True, cache=False).ocr({str(TEXT_PDF)!r}).text
        print(json.dumps({{"text": text, "processes": server_processes()}}), flush=True)
        time.sleep(120)
    """,
}


@dataclass
class Run:
    """One finished script (``stdin_killed``: its first line, and its end by SIGKILL)."""

    code: int | None
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out.strip().splitlines()[-1])


def _environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATALAB_")}
    env["DATALAB_OCR_CACHE"] = "off"
    env["HOME"] = str(home)
    return env


def _start(name: str, tmp: Path) -> subprocess.Popen[str]:
    code = PROCESSES + textwrap.dedent(SCRIPTS[name])
    script = tmp / f"{name}.py"
    script.write_text(code)
    command = [sys.executable, str(script)]
    if name == "stdin_killed":
        command = [sys.executable, "-"]
    elif name == "dash_c_threads":
        command = [sys.executable, "-c", code]
    with script.open() as source:
        return subprocess.Popen(
            command,
            stdin=source if name == "stdin_killed" else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp,
            env=_environment(tmp),
        )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Run]]:
    """Every script run at once; ``stdin_killed`` gets SIGKILL once it has OCRed a file."""
    tmp = tmp_path_factory.mktemp("scripts")
    names = [name for name in SCRIPTS if name != "fork" or hasattr(os, "fork")]
    processes = {name: _start(name, tmp) for name in names}
    finished: dict[str, Run] = {}
    try:
        killed = processes.pop("stdin_killed")
        assert killed.stdout is not None
        watchdog = threading.Timer(TIMEOUT, killed.kill)
        watchdog.start()
        line = killed.stdout.readline()  # once it has OCRed and named its processes
        watchdog.cancel()
        killed.send_signal(signal.SIGKILL)
        _, err = killed.communicate(timeout=TIMEOUT)
        finished["stdin_killed"] = Run(killed.returncode, line, err)
        for name, process in processes.items():
            out, err = process.communicate(timeout=TIMEOUT)
            finished[name] = Run(process.returncode, out, err)
        yield finished
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _gone_within(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while (alive := [pid for pid in pids if _alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


def test_a_top_level_script_without_a_main_guard_gets_ocr_text(runs: dict[str, Run]) -> None:
    run = runs["top_level"]
    assert run.code == 0, run.err
    text = run.json()["text"]
    assert "TOTAL" in text.upper()
    assert "17.70" in text


def test_the_script_prints_nothing_of_the_servers_own(runs: dict[str, Run]) -> None:
    run = runs["top_level"]
    assert run.code == 0
    assert len(run.out.strip().splitlines()) == 1
    # Nothing from the server, its workers or uvicorn (other libraries may warn on import).
    for mark in ("uvicorn", "datalab_ocr", "127.0.0.1", "INFO", "Traceback", "worker"):
        assert mark not in run.err, run.err


@needs_proc
def test_the_server_and_its_workers_are_gone_when_the_script_ends(runs: dict[str, Run]) -> None:
    processes = runs["top_level"].json()["processes"]
    assert len(processes) >= 3  # the server, its resource tracker, the workers that OCRed
    assert _gone_within(processes, 10.0) == []


def test_a_script_piped_to_python_stdin_gets_ocr_text(runs: dict[str, Run]) -> None:
    run = runs["stdin_killed"]
    assert run.out, run.err
    assert "The harbour office keeps its winter hours" in run.json()["text"]


def test_python_dash_c_gets_ocr_text(runs: dict[str, Run]) -> None:
    run = runs["dash_c_threads"]
    assert run.code == 0, run.err
    assert "17.70" in run.json()["a"]["text"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX")
def test_a_forked_child_gets_a_server_of_its_own_and_leaves_the_parents_running(
    runs: dict[str, Run],
) -> None:
    run = runs["fork"]
    assert run.code == 0, run.err
    report = run.json()
    assert report["child_status"] == 0
    assert "17.70" in report["child"]["text"]
    assert report["child"]["url"] != report["parent_url"]
    assert "winter hours" in report["before"]
    assert report["after"] == report["before"]


def test_threads_starting_at_once_share_one_server(runs: dict[str, Run]) -> None:
    run = runs["dash_c_threads"]
    assert run.code == 0, run.err
    results = run.json()
    assert results["a"]["url"] == results["b"]["url"]
    assert "17.70" in results["a"]["text"]
    assert "winter hours" in results["b"]["text"]


@needs_proc
def test_the_server_and_its_workers_go_when_the_script_is_killed_with_sigkill(
    runs: dict[str, Run],
) -> None:
    run = runs["stdin_killed"]
    assert run.out, run.err  # it OCRed a file and named its server's processes
    assert run.code == -signal.SIGKILL
    processes = run.json()["processes"]
    assert len(processes) >= 3
    assert _gone_within(processes, 30.0) == []
