"""Starting the server: in a background thread, as a process-wide singleton, from the CLI."""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import textwrap

import httpx
import pytest

from datalab_ocr.server import LocalServer, ServerConfig, add_serve_arguments, embedded_server
from datalab_ocr.server.cli import config_from_args


def test_local_server_binds_loopback_on_a_free_port_and_stops(client: httpx.Client) -> None:
    with LocalServer(ServerConfig(engine="none")) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert server.port != 0
        assert client.get(f"{server.base_url}/api/v1/ocr/x").status_code == 404
    assert not server.running
    with pytest.raises(httpx.ConnectError):
        client.get(f"{server.base_url}/api/v1/ocr/x")


def test_embedded_server_is_one_per_process_and_logs_where_it_runs(
    caplog: pytest.LogCaptureFixture, client: httpx.Client
) -> None:
    with caplog.at_level(logging.INFO, logger="datalab_ocr.server.embedded"):
        first = embedded_server()
        second = embedded_server()
    assert first is second
    assert client.get(f"{first.base_url}/_local/stats").status_code == 200
    if caplog.records:  # only the call that started it logs; another test may have been first
        assert "started local Datalab-compatible OCR server at http://127.0.0.1:" in caplog.text


def test_serve_arguments_build_the_server_config() -> None:
    parser = add_serve_arguments(argparse.ArgumentParser())
    args = parser.parse_args(
        ["--engine", "none", "--workers", "1", "--latency", "0.5", "--rate-limit", "200/60"]
    )
    config = config_from_args(args)
    assert args.host == "127.0.0.1"
    assert (config.engine, config.workers, config.latency) == ("none", 1, 0.5)
    assert (config.rate_limit_requests, config.rate_limit_window) == (200, 60.0)


@pytest.mark.ocr
def test_the_embedded_server_and_its_workers_stop_at_interpreter_exit() -> None:
    script = textwrap.dedent(
        """
        import io, time, httpx
        from PIL import Image
        from datalab_ocr.server import embedded_server

        if __name__ == "__main__":
            server = embedded_server()
            buffer = io.BytesIO()
            Image.new("L", (200, 100), 255).save(buffer, "PNG")
            files = {"file": ("blank.png", buffer.getvalue(), "image/png")}
            url = httpx.post(server.base_url + "/api/v1/ocr", files=files).json()[
                "request_check_url"
            ]
            while httpx.get(url).json()["status"] != "complete":
                time.sleep(0.02)
            print("done")
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "done"
    assert "Error" not in completed.stderr, completed.stderr
