"""Log lines and progress bars on one terminal: while a bar is drawn, log lines go above it.

A console log handler writes its line wherever the cursor is, which is at the end of the bar:
the line lands on the bar's row, and the next redraw mangles both. While a bar is shown,
:func:`logging_above_bars` sends the console handlers' output through ``tqdm.write``, which
clears the bars, writes the line, and draws the bars again below it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from tqdm.auto import tqdm

__all__ = ["logging_above_bars"]

# The loggers whose handlers are rerouted: the root (where logging.basicConfig puts its
# handler) and this library's own logger (where an application may have put one).
_LOGGER_NAMES = ("", "datalab_ocr")


class _AboveBars:
    """A stream that writes through ``tqdm.write``, so that bars are cleared and redrawn."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        tqdm.write(text, file=self.stream, end="")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str) -> object:
        # Anything else (isatty, encoding, fileno) as the real stream has it, for handlers
        # and formatters that look (colour handlers ask isatty).
        return getattr(self.stream, name)


@contextmanager
def logging_above_bars() -> Iterator[None]:
    """Route console log handlers (to stdout or stderr) around progress bars, for a while.

    Only the handlers' stream changes: their levels, filters and formats stay as they are,
    and handlers writing to files are left alone.
    """
    swapped: list[tuple[logging.StreamHandler[IO[str]], IO[str]]] = []
    consoles = {id(sys.stdout), id(sys.stderr)}
    for name in _LOGGER_NAMES:
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.StreamHandler) and id(handler.stream) in consoles:
                original = handler.stream
                handler.setStream(_AboveBars(original))
                swapped.append((handler, original))
    try:
        yield
    finally:
        for handler, original in swapped:
            handler.setStream(original)
