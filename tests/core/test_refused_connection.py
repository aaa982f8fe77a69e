"""A base URL where nothing listens: the error says so and points at the server and the URL.

A socket bound on loopback but not listening refuses every connection, and holding it keeps
any other process from taking the port during the test.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from datalab_ocr import APIConnectionError, DatalabClient, RetryPolicy
from datalab_ocr.testing import FakeClock

from .conftest import PDF_BYTES


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


def test_a_refused_connection_asks_whether_the_server_runs(closed_port: int) -> None:
    with (
        DatalabClient(
            "dl-test",
            f"http://127.0.0.1:{closed_port}",
            cache=False,
            rate_limit=False,
            clock=FakeClock(),
            retry=RetryPolicy(max_attempts=2),
        ) as client,
        pytest.raises(APIConnectionError) as caught,
    ):
        client.ocr(PDF_BYTES, filename="a.pdf")

    message = str(caught.value)
    assert f"nothing listens at 127.0.0.1:{closed_port}" in message
    assert "is the server running" in message
    assert "DATALAB_BASE_URL" in message
