"""The pieces of the distributed path that need no cluster: listing, the store, the split,
the rows and the limiter's handle."""

from __future__ import annotations

import pickle
from pathlib import Path

import pyarrow as pa
import pytest

from datalab_ocr import InvalidInputError, OCRResult
from datalab_ocr._documents import LoadOptions
from datalab_ocr._exceptions import JobError
from datalab_ocr.ray import (
    ClusterRateLimiter,
    LocalSettings,
    ResultStore,
    SplitDocuments,
    list_files,
    to_llama_index_documents,
)
from datalab_ocr.ray._rows import error_row, page_rows

from .conftest import DATA


def _tree(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    for name in ("a.pdf", "notes.txt", "sub/b.png", "sub/c.pdf"):
        (root / name).write_bytes(b"x")
    return root


def test_a_directory_lists_its_supported_files_recursively(tmp_path: Path) -> None:
    found, _ = list_files(str(_tree(tmp_path)))
    assert [Path(p).relative_to(tmp_path).as_posix() for p in found] == [
        "a.pdf",
        "sub/b.png",
        "sub/c.pdf",
    ]


def test_a_glob_matches_file_names(tmp_path: Path) -> None:
    found, _ = list_files(str(_tree(tmp_path) / "sub" / "*.pdf"))
    assert [Path(p).name for p in found] == ["c.pdf"]


def test_a_missing_path_is_named_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="nowhere.pdf does not exist"):
        list_files([str(tmp_path / "nowhere.pdf")])


def test_an_empty_directory_is_an_error_not_an_empty_run(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="no files to OCR"):
        list_files(str(tmp_path))


def test_the_store_gives_back_what_was_put_and_nothing_else(tmp_path: Path) -> None:
    store = ResultStore(str(tmp_path / "out"))
    row = error_row("a.pdf", "boom", "0" * 64)
    assert store.get("k") is None
    store.put("k", [row])
    assert store.get("k") == [row]
    assert store.exists("k") and not store.exists("other")
    # Nothing half-written is left to look done.
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["k.parquet"]


def test_the_limiter_handle_pickles_to_its_name_only() -> None:
    limiter = ClusterRateLimiter("budget-a")
    copy = pickle.loads(pickle.dumps(limiter))
    assert copy.name == "budget-a"
    assert repr(copy) == "ClusterRateLimiter(name='budget-a')"


def _files(*paths: Path) -> pa.Table:
    return pa.table({"path": [str(p) for p in paths]})


def test_a_long_pdf_is_cut_into_chunks_of_its_selected_pages() -> None:
    settings = LocalSettings(chunk_pages=2, options=LoadOptions(page_range="0,2"))
    chunks = SplitDocuments(settings)(_files(DATA / "saltmarsh-observatory.pdf")).to_pylist()
    assert [c["pages"] for c in chunks] == [[0, 2]]
    settings = LocalSettings(chunk_pages=2)
    chunks = SplitDocuments(settings)(_files(DATA / "saltmarsh-observatory.pdf")).to_pylist()
    assert [c["pages"] for c in chunks] == [[0, 1], [2]]
    assert [c["first"] for c in chunks] == [True, False]
    assert all(c["data"].startswith(b"%PDF") for c in chunks)
    assert all(c["total_pages"] == 3 for c in chunks)


def test_an_unreadable_file_raises_naming_it(tmp_path: Path) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\nnot a pdf\n%%EOF\n")
    with pytest.raises(JobError) as caught:
        SplitDocuments(LocalSettings())(_files(broken))
    assert caught.value.filename == str(broken)


def test_a_truncated_pdf_is_refused_as_the_clients_refuse_it(tmp_path: Path) -> None:
    whole = (DATA / "saltmarsh-observatory.pdf").read_bytes()
    cut = tmp_path / "download.pdf"
    cut.write_bytes(whole[: len(whole) * 2 // 3])  # a broken download PDFium would half read
    with pytest.raises(InvalidInputError, match="download.pdf is not a whole PDF") as caught:
        SplitDocuments(LocalSettings())(_files(cut))
    assert caught.value.filename == str(cut)


def test_with_errors_collected_a_truncated_pdf_is_one_failed_chunk(tmp_path: Path) -> None:
    whole = (DATA / "saltmarsh-observatory.pdf").read_bytes()
    cut = tmp_path / "download.pdf"
    cut.write_bytes(whole[: len(whole) // 2])
    good = DATA / "saltmarsh-observatory.pdf"
    chunks = SplitDocuments(LocalSettings(errors="collect"))(_files(cut, good)).to_pylist()
    [failed] = [c for c in chunks if c["error"]]
    assert failed["source"] == str(cut)
    assert "not a whole PDF" in failed["error"]
    assert sum(1 for c in chunks if not c["error"]) == 1


def test_error_rows_make_no_documents() -> None:
    result = OCRResult.model_validate(
        {
            "status": "complete",
            "success": True,
            "request_id": "r1",
            "pages": [{"page": 1, "page_index": 0, "text_lines": [{"text": "hello"}]}],
        }
    )
    rows = page_rows(result, "a.pdf", "ab" * 32, LoadOptions())
    rows.append(error_row("b.pdf", "broken"))
    documents = to_llama_index_documents(rows)
    assert [d.text for d in documents] == ["hello"]
    assert documents[0].metadata["file_name"] == "a.pdf"


def test_files_on_an_fsspec_filesystem_are_listed_and_copied_with_their_hash() -> None:
    import hashlib

    from fsspec.implementations.memory import MemoryFileSystem  # type: ignore[import-untyped]

    from datalab_ocr.ray._files import local_copy

    memory = MemoryFileSystem()
    content = (DATA / "receipt.png").read_bytes()
    memory.pipe("/bucket/scans/receipt.png", content)
    memory.pipe("/bucket/scans/notes.txt", b"not a document")
    found, filesystem = list_files("/bucket/scans", filesystem=memory)
    assert [p.rsplit("/", 1)[-1] for p in found] == ["receipt.png"]
    copy = local_copy(found[0], filesystem)
    try:
        assert Path(copy.path).read_bytes() == content
        assert copy.sha256 == hashlib.sha256(content).hexdigest()
    finally:
        copy.discard()
    assert not Path(copy.path).exists()
