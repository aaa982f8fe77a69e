"""Log lines written while a progress bar is shown land on their own line, above the bar."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

import pytest

from datalab_ocr import DatalabClient
from datalab_ocr._batch import progress_bar


@contextmanager
def console_handler() -> Iterator[logging.StreamHandler[TextIO]]:
    """What ``logging.basicConfig`` sets up: a handler on the root logger writing to stderr
    (here pytest's capture of it, so it is made inside the test)."""
    handler: logging.StreamHandler[TextIO] = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("LOG %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


def terminal_lines(written: str) -> list[str]:
    """What a terminal shows: each line as left by its last carriage return."""
    return [line.rsplit("\r", 1)[-1] for line in written.split("\n")]


def test_a_log_line_during_the_bar_gets_a_line_of_its_own(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with console_handler(), progress_bar(3, True, "OCR") as bar:
        bar.update(1)
        logging.getLogger("datalab_ocr").warning("submit of a.pdf failed; retrying")
        bar.update(1)

    assert "LOG submit of a.pdf failed; retrying" in terminal_lines(capsys.readouterr().err)


def test_a_batch_failure_logged_under_the_bar_gets_a_line_of_its_own(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with (
        console_handler(),
        DatalabClient("dl-test", "https://ocr.example.test", cache=False) as client,
    ):
        client.ocr_batch(["missing-1.pdf", "missing-2.pdf"], errors="skip", show_progress=True)

    lines = terminal_lines(capsys.readouterr().err)
    assert any(line.startswith("LOG failed: missing-1.pdf") for line in lines)
    assert any(line.startswith("LOG failed: missing-2.pdf") for line in lines)


def test_the_handlers_write_straight_to_their_stream_again_after_the_bar() -> None:
    with console_handler() as handler:
        with progress_bar(1, True, "OCR"):
            assert handler.stream is not sys.stderr
        assert handler.stream is sys.stderr


def test_without_a_bar_the_handlers_are_left_alone() -> None:
    with console_handler() as handler, progress_bar(1, False, "OCR"):
        assert handler.stream is sys.stderr
