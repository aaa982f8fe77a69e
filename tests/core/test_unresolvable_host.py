"""A base URL whose host name does not resolve fails at once, naming the host.

``.invalid`` is reserved (RFC 2606) and resolves nowhere, so these tests need no network:
the resolver answers "unknown name" from the machine itself.
"""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import pytest

from datalab_ocr import APIConnectionError, AsyncDatalabClient, DatalabClient
from datalab_ocr._policies import is_name_resolution_error
from datalab_ocr.testing import FakeClock

from .conftest import PDF_BYTES

HOST = "datalab-ocr-test.invalid"


def sync_client(clock: FakeClock) -> DatalabClient:
    return DatalabClient("dl-test", f"https://{HOST}", cache=False, rate_limit=False, clock=clock)


def test_the_sync_client_fails_fast_naming_the_host() -> None:
    clock = FakeClock()
    started = time.monotonic()
    with (
        sync_client(clock) as client,
        pytest.raises(APIConnectionError) as caught,
    ):
        client.ocr(PDF_BYTES, filename="a.pdf")

    assert time.monotonic() - started < 5.0  # one lookup, not six attempts over 15 s
    assert clock.sleeps == []  # not retried
    assert HOST in str(caught.value)
    assert "base URL" in str(caught.value)


def test_the_async_client_fails_fast_naming_the_host() -> None:
    clock = FakeClock()

    async def run() -> None:
        async with AsyncDatalabClient(
            "dl-test", f"https://{HOST}", cache=False, rate_limit=False, clock=clock
        ) as client:
            await client.ocr(PDF_BYTES, filename="a.pdf")

    with pytest.raises(APIConnectionError, match=HOST):
        asyncio.run(run())
    assert clock.sleeps == []


def test_only_a_resolver_failure_counts_as_an_unknown_host() -> None:
    def chained(cause: BaseException) -> httpx.ConnectError:
        error = httpx.ConnectError("connect failed")
        error.__cause__ = cause
        return error

    assert is_name_resolution_error(chained(socket.gaierror(-2, "Name or service not known")))
    assert not is_name_resolution_error(chained(ConnectionRefusedError(111, "refused")))
    assert not is_name_resolution_error(httpx.ConnectError("connect failed"))
