"""The local server's long poll and identity headers, over loopback with plain httpx."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx

from datalab_ocr.server import LocalServer

from .server_helpers import numbered_pdf, submit

StartServer = Callable[..., LocalServer]


def test_a_long_poll_answers_as_soon_as_the_job_completes(
    start_server: StartServer, client: httpx.Client
) -> None:
    server = start_server(engine="none", latency=0.6)
    check_url = submit(client, server.base_url, numbered_pdf(1)).json()["request_check_url"]

    started = time.monotonic()
    answer = client.get(check_url, params={"wait": "10"}, timeout=30)
    waited = time.monotonic() - started

    assert answer.json()["status"] == "complete"
    assert 0.3 <= waited < 5.0  # the job's time, not the 10 s asked for (slack for a busy CI)


def test_a_long_poll_answers_processing_when_its_wait_runs_out(
    start_server: StartServer, client: httpx.Client
) -> None:
    server = start_server(engine="none", latency=5.0)
    check_url = submit(client, server.base_url, numbered_pdf(1)).json()["request_check_url"]

    started = time.monotonic()
    answer = client.get(check_url, params={"wait": "0.3"}, timeout=30)

    # "processing" already shows the answer came before the 5 s job ended; the bound says it
    # came near the 0.3 s wait, with slack for a busy machine.
    assert answer.json() == {"status": "processing"}
    assert time.monotonic() - started < 4.0


def test_the_wait_is_capped_at_what_the_server_advertises(
    start_server: StartServer, client: httpx.Client
) -> None:
    server = start_server(engine="none", latency=5.0, long_poll_max=0.3)
    submitted = submit(client, server.base_url, numbered_pdf(1))

    started = time.monotonic()
    answer = client.get(submitted.json()["request_check_url"], params={"wait": "60"}, timeout=30)

    assert submitted.headers["X-Datalab-Long-Poll"] == "0.3"
    # "processing" already shows the answer came before the 5 s job ended; the bound says it
    # came near the 0.3 s wait, with slack for a busy machine.
    assert answer.json() == {"status": "processing"}
    assert time.monotonic() - started < 4.0


def test_a_wait_that_is_not_a_number_is_refused(
    start_server: StartServer, client: httpx.Client
) -> None:
    server = start_server(engine="none")
    check_url = submit(client, server.base_url, numbered_pdf(1)).json()["request_check_url"]

    answer = client.get(check_url, params={"wait": "soon"})

    assert answer.status_code == 422


def test_servers_with_the_same_engine_share_an_id_but_not_an_instance(
    start_server: StartServer, client: httpx.Client
) -> None:
    first = client.options(f"{start_server(engine='none').base_url}/api/v1/ocr")
    second = client.options(f"{start_server(engine='none').base_url}/api/v1/ocr")

    assert first.headers["X-Datalab-Server-Id"] == second.headers["X-Datalab-Server-Id"]
    assert first.headers["X-Datalab-Server-Instance"] != second.headers["X-Datalab-Server-Instance"]


def test_servers_with_different_engines_have_different_ids(
    start_server: StartServer, client: httpx.Client
) -> None:
    none = client.options(f"{start_server(engine='none').base_url}/api/v1/ocr")
    tesseract = client.options(f"{start_server(engine='tesseract').base_url}/api/v1/ocr")

    assert none.headers["X-Datalab-Server-Id"] != tesseract.headers["X-Datalab-Server-Id"]


def test_a_stopping_server_answers_its_long_polls_at_once(
    start_server: StartServer, client: httpx.Client
) -> None:
    server = start_server(engine="none", latency=60.0)
    check_url = submit(client, server.base_url, numbered_pdf(1)).json()["request_check_url"]
    answers: list[httpx.Response] = []
    poll = threading.Thread(
        target=lambda: answers.append(client.get(check_url, params={"wait": "20"}, timeout=30))
    )
    poll.start()
    time.sleep(0.5)  # the poll is waiting on the server

    started = time.monotonic()
    server.stop()
    poll.join(30)

    # Without the wake-up, the stop waits out uvicorn's graceful timeout (5 s) and the poll
    # ends in a broken connection; with it, the poll gets a normal answer and the stop is quick.
    assert [answer.json() for answer in answers] == [{"status": "processing"}]
    assert time.monotonic() - started < 4.0
