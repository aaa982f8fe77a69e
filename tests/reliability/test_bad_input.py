"""Bad input, end to end: refused before upload with an error naming the file, alone and in a
batch under each error policy while the rest goes on.

``tests/core/test_inputs.py`` checks how each file is judged; here the same cases go through
both clients against a server that records every upload, so "before upload" is observed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from datalab_ocr import MAX_FILE_BYTES, BatchError, InvalidInputError

from .conftest import Runner, make_pdf, tiny_pdf
from .fault_server import FaultServer, page_text

BadCase = Callable[[Path, pytest.MonkeyPatch], Any]


def _missing(folder: Path, _: pytest.MonkeyPatch) -> Path:
    return folder / "missing.pdf"


def _directory(folder: Path, _: pytest.MonkeyPatch) -> Path:
    path = folder / "scans.pdf"
    path.mkdir()
    return path


def _empty(folder: Path, _: pytest.MonkeyPatch) -> Path:
    path = folder / "empty.pdf"
    path.touch()
    return path


def _unsupported(folder: Path, _: pytest.MonkeyPatch) -> Path:
    path = folder / "notes.pdf"  # a PDF by name, plain text by content
    path.write_text("minutes of the meeting")
    return path


def _too_large(folder: Path, _: pytest.MonkeyPatch) -> Path:
    path = folder / "huge.pdf"
    with path.open("wb") as handle:
        handle.write(tiny_pdf("huge.pdf"))
        handle.truncate(MAX_FILE_BYTES + 1)  # sparse: no disk, no time
    return path


def _unreadable(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = make_pdf(folder, "secret.pdf")
    # The suite runs as root, who reads anything: fail the open as it fails for a user.
    real_open = Path.open

    def deny(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", deny)
    return path


def _broken_symlink(folder: Path, _: pytest.MonkeyPatch) -> Path:
    link = folder / "link.pdf"
    link.symlink_to(folder / "moved-away.pdf")
    return link


def _nameless_bytes(_folder: Path, _: pytest.MonkeyPatch) -> bytes:
    return tiny_pdf("anonymous")


BAD: dict[str, tuple[BadCase, str]] = {
    "missing": (_missing, "does not exist"),
    "directory": (_directory, "is a directory"),
    "empty": (_empty, "empty"),
    "unsupported-by-content": (_unsupported, "not a file type the service accepts"),
    "over-200-mb": (_too_large, "up to 200 MB"),
    "unreadable": (_unreadable, "permission denied"),
    "broken-symlink": (_broken_symlink, "broken symbolic link"),
    "bytes-without-a-name": (_nameless_bytes, "filename="),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_refused_before_upload_naming_the_file(
    runner: Runner,
    server: FaultServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
) -> None:
    make, message = BAD[case]
    bad = make(tmp_path, monkeypatch)

    with pytest.raises(InvalidInputError, match=message) as caught:
        runner.call("ocr", bad)

    if isinstance(bad, Path):
        assert caught.value.filename == str(bad)
        assert str(bad) in str(caught.value)
    assert server.requests == []


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_file_in_a_collecting_batch_is_recorded_and_the_rest_goes_on(
    runner: Runner,
    server: FaultServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
) -> None:
    make, message = BAD[case]
    good = [make_pdf(tmp_path, "first.pdf"), make_pdf(tmp_path, "last.pdf")]
    bad = make(tmp_path, monkeypatch)

    batch = runner.call("ocr_batch", [good[0], bad, good[1]], errors="collect")

    assert [item.ok for item in batch.items] == [True, False, True]
    failure = batch.items[1]
    assert isinstance(failure.error, InvalidInputError)
    assert message in str(failure.error)
    if isinstance(bad, Path):
        assert failure.source == failure.error.filename == str(bad)
    assert sorted(r.filename or "" for r in server.seen("POST")) == ["first.pdf", "last.pdf"]


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_file_in_a_skipping_batch_is_left_out(
    runner: Runner,
    server: FaultServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
) -> None:
    good = [make_pdf(tmp_path, "first.pdf"), make_pdf(tmp_path, "last.pdf")]
    bad = BAD[case][0](tmp_path, monkeypatch)

    batch = runner.call("ocr_batch", [good[0], bad, good[1]], errors="skip")

    assert [item.index for item in batch.items] == [0, 2]
    assert len(server.seen("POST")) == 2


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_file_stops_a_raising_batch_before_anything_is_uploaded(
    runner: Runner,
    server: FaultServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
) -> None:
    good = make_pdf(tmp_path, "first.pdf")
    bad = BAD[case][0](tmp_path, monkeypatch)

    with pytest.raises(BatchError) as caught:
        runner.call("ocr_batch", [good, bad], errors="raise")

    assert isinstance(caught.value.__cause__ or caught.value.failure.error, InvalidInputError)
    assert caught.value.failure.index == 1
    assert server.requests == []


# Options apply to every file: a bad one refuses the whole call, before any upload.

BAD_OPTIONS: list[dict[str, Any]] = [
    {"page_range": "4-2"},
    {"page_range": "-1"},
    {"page_range": "1,,2"},
    {"page_range": "a-b"},
    {"page_range": ""},
    {"page_range": [3, -1]},
    {"max_pages": 0},
    {"max_pages": -5},
    {"max_pages": 1.5},
    {"max_pages": True},
]


@pytest.mark.parametrize("options", BAD_OPTIONS, ids=repr)
@pytest.mark.parametrize("errors", ["raise", "skip", "collect"])
def test_a_bad_option_refuses_a_batch_under_every_policy_before_upload(
    runner: Runner, server: FaultServer, pdf: Path, options: dict[str, Any], errors: str
) -> None:
    with pytest.raises(InvalidInputError):
        runner.call("ocr_batch", [pdf], errors=errors, **options)

    assert server.requests == []


# Odd but good input is accepted and sent safely.


def test_a_pdf_named_png_is_sniffed_and_sent_as_a_pdf(
    runner: Runner, server: FaultServer, tmp_path: Path
) -> None:
    path = tmp_path / "scan.png"
    path.write_bytes(tiny_pdf("scan"))

    result = runner.call("ocr", path)

    (upload,) = server.seen("POST")
    assert upload.filename == "scan.pdf"
    assert result.pages[0].text == page_text("scan.pdf", 0)


def test_a_non_utf8_file_name_is_uploaded_with_a_printable_name(
    runner: Runner, server: FaultServer, tmp_path: Path
) -> None:
    raw = os.fsencode(tmp_path) + b"/r\xe9sum\xe9.pdf"
    with open(raw, "wb") as handle:
        handle.write(tiny_pdf("resume"))

    result = runner.call("ocr", Path(os.fsdecode(raw)))

    (upload,) = server.seen("POST")
    assert upload.filename == "r\ufffdsum\ufffd.pdf"
    assert result.pages


def test_a_very_long_file_name_is_uploaded_shortened(
    runner: Runner, server: FaultServer, tmp_path: Path
) -> None:
    path = make_pdf(tmp_path, "x" * 250 + ".pdf")

    runner.call("ocr", path)

    (upload,) = server.seen("POST")
    assert upload.filename is not None
    assert len(upload.filename) == 200
    assert upload.filename.endswith(".pdf")
