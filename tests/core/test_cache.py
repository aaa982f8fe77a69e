"""The result cache and job ledger: what a re-run or a resumed batch relies on."""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest

from datalab_ocr import _cache
from datalab_ocr._cache import ResultCache
from datalab_ocr._models import OCRResult
from datalab_ocr._options import OCRJob

BASE = "https://www.datalab.to"
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
OPTIONS = {"page_range": "0-2", "max_pages": "3"}
JOB = OCRJob(
    request_id="req-1",
    check_url=f"{BASE}/api/v1/ocr/req-1",
    filename="scan.pdf",
    page_range=(0, 1, 2),
    max_pages=3,
    expected_pages=3,
)


def result(request_id: str = "req-1", text: str = "Hello") -> OCRResult:
    """A complete result with two pages, glyphs, and fields the models do not declare."""
    return OCRResult.model_validate(
        {
            "status": "complete",
            "success": True,
            "request_id": request_id,
            "page_count": 2,
            "total_cost": 2.0,
            "versions": {"engine": "1.2"},
            "new_top_level_field": {"nested": [1, 2]},
            "pages": [
                {
                    "page": 1,
                    "page_index": 0,
                    "image_bbox": [0, 0, 800, 1000],
                    "undeclared_page_field": "kept",
                    "text_lines": [
                        {
                            "text": text,
                            "confidence": 0.98,
                            "bbox": [10, 10, 100, 30],
                            "polygon": [[10, 10], [100, 10], [100, 30], [10, 30]],
                            "words": [{"text": text, "confidence": 0.97, "extra": True}],
                            "undeclared_line_field": 7,
                        }
                    ],
                },
                {"page": 2, "page_index": 1, "text_lines": []},
            ],
        }
    )


def key(**changes: Any) -> str:
    arguments: dict[str, Any] = {"content_sha256": SHA, "options": OPTIONS, "base_url": BASE}
    arguments.update(changes)
    return ResultCache.key(**arguments)


@contextmanager
def raw_connection(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain connection to the cache file, committed and closed on leaving."""
    with closing(sqlite3.connect(path)) as connection, connection:
        yield connection


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[ResultCache]:
    with ResultCache(tmp_path / "cache" / "results.sqlite3") as opened:
        yield opened


# -- results ---------------------------------------------------------------------------------


def test_a_stored_result_comes_back_equal_with_its_extra_fields(cache: ResultCache) -> None:
    stored = result()
    cache.put(key(), stored)

    loaded = cache.get(key())

    assert loaded == stored
    assert loaded is not None
    assert loaded.model_dump() == stored.model_dump()
    assert loaded.model_extra == {"new_top_level_field": {"nested": [1, 2]}}
    assert loaded.pages[0].model_extra == {"undeclared_page_field": "kept"}
    assert loaded.pages[0].text_lines[0].model_extra == {"undeclared_line_field": 7}
    assert loaded.text == stored.text


def test_an_unknown_key_is_a_miss(cache: ResultCache) -> None:
    assert cache.get(key()) is None


def test_put_replaces_the_result_of_the_same_key(cache: ResultCache) -> None:
    cache.put(key(), result(text="first"))
    cache.put(key(), result(text="second"))

    loaded = cache.get(key())

    assert loaded is not None
    assert loaded.pages[0].text == "second"
    assert cache.stats().results == 1


def test_a_stored_row_that_no_longer_validates_is_a_miss_and_is_dropped(
    cache: ResultCache,
) -> None:
    cache.put(key(), result())
    with raw_connection(cache.path) as raw:
        raw.execute("UPDATE results SET codec = 'json', data = ?", (b'{"no": "status"}',))

    assert cache.get(key()) is None
    assert cache.stats().results == 0


def test_results_are_stored_compressed(cache: ResultCache) -> None:
    big = OCRResult.model_validate(
        {
            "status": "complete",
            "pages": [
                {"page_index": i, "text_lines": [{"text": f"line {j}"} for j in range(50)]}
                for i in range(100)
            ],
        }
    )
    cache.put(key(), big)

    with raw_connection(cache.path) as raw:
        (stored,) = raw.execute("SELECT length(data) FROM results").fetchone()

    assert stored < len(big.model_dump_json()) / 5
    assert cache.get(key()) == big


# -- keys ------------------------------------------------------------------------------------


def test_the_key_is_stable_hex() -> None:
    first = key()

    assert first == key()
    assert len(first) == 64
    assert int(first, 16) >= 0


def test_the_key_ignores_the_order_of_options() -> None:
    reordered = dict(reversed(list(OPTIONS.items())))

    assert key(options=reordered) == key()


def test_the_key_changes_with_content_options_base_url_and_endpoint() -> None:
    variants = {
        key(content_sha256="0" * 64),
        key(options={**OPTIONS, "page_range": "0-3"}),
        key(options={"page_range": "0-2"}),
        key(base_url="http://127.0.0.1:8000"),
        key(endpoint="/api/v1/other"),
    }

    assert key() not in variants
    assert len(variants) == 5


def test_the_key_ignores_skip_cache_and_a_trailing_slash() -> None:
    assert key(options={**OPTIONS, "skip_cache": "true"}) == key()
    assert key(options={**OPTIONS, "skip_cache": "false"}) == key()
    assert key(base_url=BASE + "/") == key()


# -- pending jobs ----------------------------------------------------------------------------


def test_a_recorded_job_comes_back_exactly(cache: ResultCache) -> None:
    cache.record_job(key(), JOB, submitted_at=1000.0)

    assert cache.pending_job(key(), now=1001.0) == JOB


def test_a_job_without_page_range_or_filename_comes_back_exactly(cache: ResultCache) -> None:
    bare = OCRJob(request_id="req-2", check_url=f"{BASE}/api/v1/ocr/req-2")
    cache.record_job(key(), bare, submitted_at=1000.0)

    assert cache.pending_job(key(), now=1000.0) == bare


def test_a_job_row_with_fields_this_version_does_not_know_still_loads(
    cache: ResultCache,
) -> None:
    cache.record_job(key(), JOB, submitted_at=1000.0)
    with raw_connection(cache.path) as raw:
        (stored,) = raw.execute("SELECT job FROM jobs").fetchone()
        with_more = json.dumps({**json.loads(stored), "added_in_a_later_version": 1})
        raw.execute("UPDATE jobs SET job = ?", (with_more,))

    assert cache.pending_job(key(), now=1000.0) == JOB


def test_a_job_older_than_max_age_is_gone(cache: ResultCache) -> None:
    cache.record_job(key(), JOB, submitted_at=1000.0)

    assert cache.pending_job(key(), max_age=60, now=1060.0) == JOB
    assert cache.pending_job(key(), max_age=60, now=1060.5) is None
    assert cache.stats().pending_jobs == 0


def test_finding_a_stale_job_drops_every_stale_job(cache: ResultCache) -> None:
    cache.record_job("old-a", JOB, submitted_at=0.0)
    cache.record_job("old-b", JOB, submitted_at=10.0)
    cache.record_job("fresh", JOB, submitted_at=5000.0)

    assert cache.pending_job("old-a", max_age=3600, now=5000.0) is None

    assert cache.stats().pending_jobs == 1
    assert cache.pending_job("fresh", now=5000.0) == JOB


def test_forget_job_removes_the_job(cache: ResultCache) -> None:
    cache.record_job(key(), JOB)

    cache.forget_job(key())

    assert cache.pending_job(key()) is None


def test_put_forgets_the_pending_job_of_its_key(cache: ResultCache) -> None:
    cache.record_job(key(), JOB)
    cache.record_job("other", JOB)

    cache.put(key(), result())

    assert cache.pending_job(key()) is None
    assert cache.pending_job("other") == JOB


# -- housekeeping ----------------------------------------------------------------------------


def test_clear_removes_everything_and_counts_the_results(cache: ResultCache) -> None:
    cache.put("a", result("a"))
    cache.put("b", result("b"))
    cache.record_job("c", JOB)

    assert cache.clear() == 2

    assert cache.get("a") is None
    assert cache.pending_job("c") is None
    stats = cache.stats()
    assert (stats.results, stats.pending_jobs) == (0, 0)


def test_stats_counts_results_jobs_and_bytes(cache: ResultCache) -> None:
    cache.put("a", result("a"))
    cache.record_job("b", JOB)

    stats = cache.stats()

    assert (stats.results, stats.pending_jobs) == (1, 1)
    assert stats.bytes_on_disk > 0


def test_the_constructor_creates_parent_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "c.sqlite3"

    with ResultCache(path) as cache:
        cache.put("k", result())

    assert path.is_file()


def test_repr_shows_the_path(cache: ResultCache) -> None:
    assert str(cache.path) in repr(cache)


def test_a_closed_cache_opens_again_when_used(cache: ResultCache) -> None:
    cache.put("k", result())
    cache.close()
    cache.close()

    assert cache.get("k") == result()


# -- default path ----------------------------------------------------------------------------


def test_default_path_honours_datalab_ocr_cache_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATALAB_OCR_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

    assert ResultCache.default_path() == tmp_path / "mine" / "results.sqlite3"


def test_default_path_honours_xdg_cache_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DATALAB_OCR_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

    assert ResultCache.default_path() == tmp_path / "xdg" / "datalab-ocr" / "results.sqlite3"


def test_default_path_falls_back_to_home_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DATALAB_OCR_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))

    assert ResultCache.default_path() == tmp_path / ".cache" / "datalab-ocr" / "results.sqlite3"


def test_no_path_means_the_default_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATALAB_OCR_CACHE_DIR", str(tmp_path / "mine"))

    with ResultCache() as cache:
        assert cache.path == tmp_path / "mine" / "results.sqlite3"


# -- concurrency -----------------------------------------------------------------------------


def test_concurrent_puts_from_eight_threads_lose_nothing(cache: ResultCache) -> None:
    stored = result()
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            for item in range(50):
                cache.put(f"{thread}-{item}", stored)
                cache.record_job(f"job-{thread}-{item}", JOB)
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert (cache.stats().results, cache.stats().pending_jobs) == (400, 400)
    assert all(cache.get(f"{n}-{i}") == stored for n in range(8) for i in range(50))


def test_two_caches_on_one_file_see_each_others_writes(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    with ResultCache(path) as first, ResultCache(path) as second:
        first.put("from-first", result("a"))
        second.record_job("from-second", JOB)
        second.put("also-second", result("b"))

        assert second.get("from-first") == result("a")
        assert first.pending_job("from-second") == JOB
        assert first.get("also-second") == result("b")


def test_a_job_recorded_by_another_process_is_pending_here(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    script = (
        "import sys\n"
        "from datalab_ocr._cache import ResultCache\n"
        "from datalab_ocr._options import OCRJob\n"
        "with ResultCache(sys.argv[1]) as cache:\n"
        "    cache.record_job('k', OCRJob('req-9', 'http://x/req-9', 'a.pdf', (4, 5), None))\n"
    )
    with ResultCache(path) as cache:
        cache.put("warm", result())  # the file exists, open in WAL mode, while the other writes

        subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=60)

        assert cache.pending_job("k") == OCRJob("req-9", "http://x/req-9", "a.pdf", (4, 5))


# -- damage ----------------------------------------------------------------------------------


def test_a_corrupt_file_is_moved_aside_and_the_cache_still_works(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "results.sqlite3"
    garbage = b"this is not a database \x00\xff" * 200
    path.write_bytes(garbage)

    with caplog.at_level(logging.WARNING, logger="datalab_ocr"), ResultCache(path) as cache:
        cache.put("k", result())
        assert cache.get("k") == result()

    (aside,) = tmp_path.glob("results.sqlite3.corrupt-*")
    assert aside.read_bytes() == garbage
    assert "moved it to" in caplog.text


def test_a_file_from_a_newer_version_is_left_alone_and_caching_goes_to_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "results.sqlite3"
    with raw_connection(path) as raw:
        raw.execute("PRAGMA user_version = 99")

    with caplog.at_level(logging.WARNING, logger="datalab_ocr"), ResultCache(path) as cache:
        cache.put("k", result())
        assert cache.get("k") == result()

    assert list(tmp_path.glob("*.corrupt-*")) == []
    with raw_connection(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (99,)
    assert "newer datalab-ocr" in caplog.text


def test_a_new_file_records_its_schema_version(cache: ResultCache) -> None:
    cache.put("k", result())

    with raw_connection(cache.path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (1,)
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_opening_a_file_another_process_is_switching_to_wal_waits_instead_of_giving_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite answers that race with SQLITE_BUSY at once, without calling the busy handler.
    real_connect = _cache._connect
    attempts: list[object] = []

    def busy_once(path: Path | str) -> sqlite3.Connection:
        attempts.append(path)
        if len(attempts) == 1:
            raise sqlite3.OperationalError("database is locked")
        return real_connect(path)

    monkeypatch.setattr(_cache, "_connect", busy_once)

    with ResultCache(tmp_path / "results.sqlite3") as cache:
        cache.put("k", result())

        assert "in memory" not in repr(cache)
    assert len(attempts) == 2


def test_a_write_that_cannot_get_the_lock_is_skipped_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_cache, "_BUSY_TIMEOUT_SECONDS", 0.05)
    path = tmp_path / "results.sqlite3"
    with ResultCache(path) as cache:
        cache.put("warm", result())
        with closing(sqlite3.connect(path, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")  # another process in the middle of a write

            with caplog.at_level(logging.WARNING, logger="datalab_ocr"):
                cache.put("k", result())
                cache.record_job("k", JOB)

            other.execute("ROLLBACK")

        assert cache.get("k") is None
        assert "could not store a result" in caplog.text
        assert "could not record a submitted job" in caplog.text


def test_a_cache_folder_that_cannot_be_made_means_caching_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    cache = ResultCache(blocker / "sub" / "results.sqlite3")  # building it must not fail

    with caplog.at_level(logging.WARNING, logger="datalab_ocr"):
        cache.put("k", OCRResult(status="complete", pages=[]))
        stored = cache.get("k")

    assert stored is not None
    assert "in memory" in caplog.text
    cache.close()
