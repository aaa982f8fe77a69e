"""The flow's wait step against a server that offers a long poll, stepped by hand."""

from __future__ import annotations

import random

import httpx
import pytest

from datalab_ocr import PollPolicy, RetryPolicy
from datalab_ocr._flow import FlowSettings, Send, learn_server, run_ocr
from datalab_ocr._inputs import prepare_upload
from datalab_ocr._options import OCROptions
from datalab_ocr.testing import FakeClock

from .conftest import PDF_BYTES, complete, processing, submitted

LOCAL = "http://127.0.0.1:8765"
ADVERTISED = {
    "X-Datalab-Long-Poll": "20",
    "X-Datalab-Server-Id": "local-abc",
    "X-Datalab-Server-Instance": "run-1",
}


def flow_settings(base_url: str = LOCAL) -> FlowSettings:
    return FlowSettings(
        base_url=httpx.URL(base_url),
        retry=RetryPolicy(jitter=0),
        polling=PollPolicy(timeout=100.0),
        clock=FakeClock(),
        rng=random.Random(0),
    )


def with_headers(response: httpx.Response, headers: dict[str, str]) -> httpx.Response:
    response.headers.update(headers)
    return response


def start(settings: FlowSettings):  # type: ignore[no-untyped-def]
    upload = prepare_upload(PDF_BYTES, filename="doc.pdf")
    flow = run_ocr(settings, upload, OCROptions())
    assert isinstance(next(flow), Send)
    return flow


def test_an_advertised_long_poll_is_used_at_once_and_again_after_processing() -> None:
    flow = start(flow_settings())

    first = flow.send(with_headers(submitted(check_url=f"{LOCAL}/api/v1/ocr/req-1"), ADVERTISED))
    second = flow.send(processing())

    for step in (first, second):
        assert isinstance(step, Send)
        assert httpx.URL(step.url).params["wait"] == "20.00"
        assert step.read_timeout is not None and step.read_timeout > 20
    with pytest.raises(StopIteration) as done:
        flow.send(complete())
    assert done.value.value.pages


def test_the_long_poll_never_waits_past_the_job_deadline() -> None:
    settings = flow_settings()
    flow = start(settings)
    settings.clock.advance(95.0)  # type: ignore[attr-defined]

    step = flow.send(with_headers(submitted(), ADVERTISED))

    assert isinstance(step, Send)
    assert float(httpx.URL(step.url).params["wait"]) <= 5.0


def test_without_the_header_polls_follow_the_planner_with_no_wait() -> None:
    flow = start(flow_settings("https://www.datalab.to"))

    step = flow.send(submitted())

    assert not isinstance(step, Send) or "wait" not in httpx.URL(step.url).params


def test_the_hosted_api_is_never_asked_who_it_is() -> None:
    flow = learn_server(flow_settings("https://www.datalab.to"))

    with pytest.raises(StopIteration) as done:
        next(flow)  # no request: the flow ends at once
    assert done.value.value.server_id is None


def test_a_local_server_is_asked_once_for_its_identity() -> None:
    settings = flow_settings()
    flow = learn_server(settings)
    step = next(flow)
    assert isinstance(step, Send) and step.method == "OPTIONS"

    with pytest.raises(StopIteration) as done:
        flow.send(with_headers(httpx.Response(204), ADVERTISED))
    assert done.value.value.server_id == "local-abc"
    with pytest.raises(StopIteration) as again:
        next(learn_server(settings))  # remembered: no second request
    assert again.value.value.instance == "run-1"
