"""Async streams over a batch that can be closed early: quietly, at once, nothing lost.

The integrations' async methods hand over these instead of async generators. asyncio
finalizes abandoned async generators one by one in no set order, and a chain of them (an outer
one closing an inner one that asyncio is closing too) fails at shutdown with "aclose():
asynchronous generator is already running". Here the client's batch generator is the only
generator underneath, so a bare ``break`` is cleaned up quietly when the stream is dropped,
and closing the stream closes the batch: files not yet started are never submitted, polls in
flight are cancelled, and jobs already submitted stay in the result cache's ledger.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncGenerator, Callable, Generator, Iterator
from typing import Any, Generic, TypeVar

from ._batch import BatchItem

__all__ = ["DocumentStream", "RecordStream"]

T = TypeVar("T")
D = TypeVar("D")


class RecordStream(Generic[T]):
    """What a batch's outcomes become (``take`` turns each into zero or more values), as an
    async iterator to use once; nothing runs before the first step.

    ``start`` opens the batch and returns it with its ``take``; an error it raises (a file
    refused under ``errors="raise"``) ends the stream. Closing it (``await stream.aclose()``,
    ``contextlib.aclosing``, ``async with``) closes the batch.
    """

    def __init__(
        self,
        start: Callable[
            [], tuple[AsyncGenerator[BatchItem, None], Callable[[BatchItem], Iterator[T]]]
        ],
    ) -> None:
        self._start = start
        self._batch: AsyncGenerator[BatchItem, None] | None = None
        self._take: Callable[[BatchItem], Iterator[T]] | None = None
        self._ready: deque[T] = deque()
        self._finished = False

    def __aiter__(self) -> RecordStream[T]:
        return self

    async def __anext__(self) -> T:
        while not self._ready:
            if self._finished:
                raise StopAsyncIteration
            if self._batch is None:
                self._finished = True  # a refusal at the start ends the stream for good
                self._batch, self._take = self._start()
                self._finished = False
            await self._pull(self._batch)
        return self._ready.popleft()

    async def _pull(self, batch: AsyncGenerator[BatchItem, None]) -> None:
        assert self._take is not None
        try:
            item = await batch.__anext__()
            self._ready.extend(self._take(item))
        except StopAsyncIteration:
            self._finished = True
        except BaseException:
            # An error under errors="raise", a bug, or the caller's task being cancelled:
            # stop whatever is still in flight before the error goes on.
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Stop the load: cancel the files in flight; submitted jobs stay in the ledger."""
        self._finished = True
        self._ready.clear()
        batch, self._batch = self._batch, None
        if batch is not None:
            await batch.aclose()

    async def __aenter__(self) -> RecordStream[T]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class DocumentStream(Generic[D]):
    """Documents of many files, each file's as soon as it completes; use it once.

    ``async for document in stream`` streams them; ``await stream`` returns them all in a
    list. To stop early, close it: ``await stream.aclose()``, ``async with
    contextlib.aclosing(stream)``, or ``async with stream``. Files not yet started are then
    never submitted, polls in flight are cancelled, and jobs already submitted stay recorded
    in the result cache, so the next load resumes them instead of paying again. A bare
    ``break`` does the same once the stream is dropped, and prints nothing at shutdown.

    ``opener`` is called on the first step (nothing runs before): it returns the stream of
    files and how to turn one file into documents.
    """

    def __init__(
        self, opener: Callable[[], tuple[RecordStream[Any], Callable[[Any], list[D]]]]
    ) -> None:
        self._opener = opener
        self._files: RecordStream[Any] | None = None
        self._convert: Callable[[Any], list[D]] | None = None
        self._ready: deque[D] = deque()
        self._closed = False

    def __aiter__(self) -> DocumentStream[D]:
        return self

    async def __anext__(self) -> D:
        while not self._ready:
            if self._closed:
                raise StopAsyncIteration
            if self._files is None:
                self._closed = True  # a failure to open ends the stream for good
                self._files, self._convert = self._opener()
                self._closed = False
            assert self._convert is not None
            try:
                file = await self._files.__anext__()
            except StopAsyncIteration:
                self._closed = True
                raise
            self._ready.extend(self._convert(file))
        return self._ready.popleft()

    async def aclose(self) -> None:
        """Stop the load: cancel the files in flight; submitted jobs stay in the ledger."""
        self._closed = True
        self._ready.clear()
        if self._files is not None:
            await self._files.aclose()

    async def __aenter__(self) -> DocumentStream[D]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __await__(self) -> Generator[Any, None, list[D]]:
        return self._collect().__await__()

    async def _collect(self) -> list[D]:
        async with self:
            return [document async for document in self]
