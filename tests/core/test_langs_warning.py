"""``langs=`` is deprecated: the warning points at the caller's line, whatever the entry point.

Each call is given a file that does not exist, so it stops right after checking its options
and nothing is sent.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable
from typing import Any

import pytest

from datalab_ocr import AsyncDatalabClient, DatalabClient, InvalidInputError

MISSING = "no-such-scan.pdf"


def sync_client() -> DatalabClient:
    return DatalabClient("dl-test", "https://ocr.example.test", cache=False)


def async_client() -> AsyncDatalabClient:
    return AsyncDatalabClient("dl-test", "https://ocr.example.test", cache=False)


def call_sync_ocr() -> None:
    with sync_client() as client, pytest.raises(InvalidInputError):
        client.ocr(MISSING, langs="en")


def call_sync_submit() -> None:
    with sync_client() as client, pytest.raises(InvalidInputError):
        client.submit(MISSING, langs=["en", "de"])


def call_sync_iter_batch() -> None:
    with sync_client() as client:
        for _ in client.iter_batch([MISSING], errors="collect", langs="en"):
            pass


def call_sync_ocr_batch() -> None:
    with sync_client() as client:
        client.ocr_batch([MISSING], errors="collect", langs="en")


def call_async_ocr() -> None:
    async def run() -> None:
        async with async_client() as client:
            await client.ocr(MISSING, langs="en")

    with pytest.raises(InvalidInputError):
        asyncio.run(run())


def call_async_submit() -> None:
    async def run() -> None:
        async with async_client() as client:
            await client.submit(MISSING, langs="en")

    with pytest.raises(InvalidInputError):
        asyncio.run(run())


def call_async_iter_batch() -> None:
    async def run() -> None:
        async with async_client() as client:
            async for _ in client.iter_batch([MISSING], errors="collect", langs="en"):
                pass

    asyncio.run(run())


def call_async_ocr_batch() -> None:
    async def run() -> None:
        async with async_client() as client:
            await client.ocr_batch([MISSING], errors="collect", langs="en")

    asyncio.run(run())


@pytest.mark.parametrize(
    "call",
    [
        call_sync_ocr,
        call_sync_submit,
        call_sync_iter_batch,
        call_sync_ocr_batch,
        call_async_ocr,
        call_async_submit,
        call_async_iter_batch,
        call_async_ocr_batch,
    ],
)
def test_the_langs_warning_points_at_the_callers_line(call: Callable[[], Any]) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()

    [warning] = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    assert "langs is deprecated" in str(warning.message)
    assert warning.filename == __file__
