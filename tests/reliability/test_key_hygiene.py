"""Where the API key must never appear: logs, reprs, errors, tracebacks, pickles, the cache
file, and requests to any origin but the base URL's.

Cassettes are covered by ``tests/integrations/test_cassettes_hold_no_secrets.py``, which scans
every recorded cassette for the key and for any ``X-API-Key`` header.
"""

from __future__ import annotations

import logging
import pickle
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from datalab_ocr import (
    AsyncDatalabClient,
    DatalabClient,
    DatalabError,
    PollPolicy,
    ResultCache,
    RetryPolicy,
)

from .conftest import API_KEY, Runner
from .fault_server import DROP, MALFORMED, TRUNCATE, Chaos, FaultServer, JobPlan, slow, status

LOGGERS = ["", "datalab_ocr", "httpx", "httpcore", "asyncio"]


class _Everything(logging.Handler):
    """Keeps every record's formatted message and raw arguments."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.names: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        self.names.add(record.name.split(".")[0])
        self.lines.append(f"{record.name} {record.getMessage()} {record.args!r}")
        if record.exc_info and record.exc_info[1] is not None:
            self.lines.extend(traceback.format_exception(record.exc_info[1]))


@pytest.fixture
def every_log() -> Iterator[_Everything]:
    """Every logger at DEBUG into one handler on the root; restored afterwards."""
    handler = _Everything()
    saved = {name: logging.getLogger(name).level for name in LOGGERS}
    root = logging.getLogger()
    root.addHandler(handler)
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def assert_no_key(*texts: str | bytes) -> None:
    for text in texts:
        raw = text if isinstance(text, bytes) else text.encode("utf-8", "replace")
        assert API_KEY.encode() not in raw


# Requests: the key goes to the base URL's origin and nowhere else.


def test_the_key_is_never_sent_to_a_check_url_on_another_origin(
    runner: Runner, server: FaultServer, pdf: Path
) -> None:
    server.foreign_check_url = True
    server.poll_faults[0] = DROP

    result = runner.call("ocr", pdf)

    assert result.pages
    assert server.seen(listener="foreign") == []
    mine = server.seen()
    assert [r.method for r in mine] == ["POST", "GET", "GET", "GET"]
    assert all(r.headers.get("x-api-key") == API_KEY for r in mine)
    assert {r.path for r in server.seen("GET")} == {"/api/v1/ocr/job-00000"}


# Logs.


def test_debug_logs_of_every_logger_hold_no_key(
    runner: Runner, server: FaultServer, pdf: Path, every_log: _Everything
) -> None:
    server.foreign_check_url = True
    server.submit_faults.update({0: DROP, 1: status(503, html=True), 2: MALFORMED})
    server.poll_faults.update({0: TRUNCATE, 1: status(429, retry_after="0"), 2: slow(0.4)})
    runner.call("ocr", pdf)
    server.submit_faults[4] = status(401)  # the next call's submit
    with pytest.raises(DatalabError):
        runner.call("ocr", pdf)

    assert {"datalab_ocr", "httpx", "httpcore"} <= every_log.names
    assert_no_key(*every_log.lines)


# Errors: message, repr, traceback with its chained causes, pickle.

ERROR_SCENARIOS: dict[str, Callable[[FaultServer], None]] = {
    "401": lambda s: s.submit_faults.update({0: status(401)}),
    "503-forever": lambda s: setattr(s, "chaos", Chaos(1.0, [status(503)])),
    "drop-forever": lambda s: setattr(s, "chaos", Chaos(1.0, [DROP])),
    "slow-forever": lambda s: setattr(s, "chaos", Chaos(1.0, [slow(0.4)])),
    "malformed-forever": lambda s: setattr(s, "chaos", Chaos(1.0, [MALFORMED])),
    "success-false": lambda s: s.plans.update({"report.pdf": JobPlan(outcome="success_false")}),
    "expired": lambda s: s.plans.update({"report.pdf": JobPlan(outcome="expire")}),
    "deadline": lambda s: s.plans.update({"report.pdf": JobPlan(processing_polls=10**6)}),
}


@pytest.mark.parametrize("scenario", list(ERROR_SCENARIOS))
def test_no_error_shows_the_key(
    runner: Runner, server: FaultServer, pdf: Path, scenario: str
) -> None:
    runner.client_kwargs["retry"] = RetryPolicy(max_attempts=2, initial_delay=0.01)
    runner.client_kwargs["polling"] = PollPolicy(initial_delay=0.02, timeout=0.3, adaptive=False)
    ERROR_SCENARIOS[scenario](server)

    with pytest.raises(DatalabError) as caught:
        runner.call("ocr", pdf)

    error = caught.value
    assert error.filename == str(pdf)
    assert_no_key(
        str(error),
        repr(error),
        "".join(traceback.format_exception(error)),
        pickle.dumps(error),
    )


# Objects that hold the key.


def key_holders() -> dict[str, Any]:
    from datalab_ocr._documents import ClientSettings
    from datalab_ocr.langchain import DatalabOCRLoader, DatalabOCRParser
    from datalab_ocr.llama_index import DatalabOCRReader

    return {
        "DatalabClient": DatalabClient(api_key=API_KEY, cache=False),
        "AsyncDatalabClient": AsyncDatalabClient(api_key=API_KEY, cache=False),
        "DatalabOCRReader": DatalabOCRReader(api_key=API_KEY),
        "DatalabOCRLoader": DatalabOCRLoader("report.pdf", api_key=API_KEY),
        "DatalabOCRParser": DatalabOCRParser(api_key=API_KEY),
        "ClientSettings": ClientSettings(api_key=API_KEY),
    }


def test_no_repr_or_str_of_an_object_holding_the_key_shows_it() -> None:
    for name, holder in key_holders().items():
        assert API_KEY not in repr(holder), name
        assert API_KEY not in str(holder), name
        assert API_KEY not in format(holder), name


def test_the_clients_cannot_be_pickled_at_all() -> None:
    # They hold connection pools and locks; nothing of them, key included, can leak this way.
    for name in ("DatalabClient", "AsyncDatalabClient"):
        with pytest.raises(TypeError):
            pickle.dumps(key_holders()[name])


def test_what_the_client_hands_back_pickles_without_the_key(
    runner: Runner, server: FaultServer, pdf: Path
) -> None:
    job = runner.call("submit", pdf)
    result = runner.call("wait", job)
    batch = runner.call("ocr_batch", [pdf, pdf.parent / "missing.pdf"], errors="collect")

    for value in (job, result, batch, *batch.items):
        assert_no_key(pickle.dumps(value), repr(value))


def test_the_integrations_pickle_without_their_key() -> None:
    # Process pools (SimpleDirectoryReader(num_workers=...)) ship the reader or loader to
    # workers; the copies take the key from DATALAB_API_KEY, which workers inherit.
    holders = key_holders()
    for name in ("DatalabOCRReader", "DatalabOCRLoader", "DatalabOCRParser"):
        assert API_KEY.encode() not in pickle.dumps(holders[name]), name


def test_a_copy_whose_key_stayed_behind_says_to_set_it_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the environment variable the copy would send no key, and the 401 would blame
    # the key its user did pass.
    from langchain_core.documents.base import Blob

    from datalab_ocr import ConfigurationError

    monkeypatch.delenv("DATALAB_API_KEY", raising=False)
    document = tmp_path / "report.pdf"
    document.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Page >> endobj\n%%EOF\n")
    holders = key_holders()
    loads: dict[str, Callable[[Any], Any]] = {
        "DatalabOCRReader": lambda copy: copy.load_data(document),
        "DatalabOCRLoader": lambda copy: copy.load(),
        "DatalabOCRParser": lambda copy: copy.parse(Blob.from_path(document)),
    }
    for name, load in loads.items():
        copy = pickle.loads(pickle.dumps(holders[name]))
        with pytest.raises(ConfigurationError, match="copy made in another process") as caught:
            load(copy)
        assert "set DATALAB_API_KEY in the environment" in str(caught.value), name


def test_a_copy_takes_its_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATALAB_API_KEY", "worker-key")
    settings = pickle.loads(pickle.dumps(key_holders()["DatalabOCRParser"]))._settings
    with settings.sync_client() as client:
        assert client._connection.api_key == "worker-key"


def test_llama_index_serialization_holds_no_key() -> None:
    # to_dict/to_json are covered in tests/integrations/test_llama_index.py; here the nested
    # form that a pipeline's own to_dict embeds.
    reader = key_holders()["DatalabOCRReader"]

    assert_no_key(reader.to_json(), repr(reader.to_dict()), reader.model_dump_json())


# The result cache on disk.


def test_the_cache_file_holds_no_key(runner: Runner, server: FaultServer, tmp_path: Path) -> None:
    from .conftest import make_pdf

    cache_dir = tmp_path / "cache"
    cache = ResultCache(cache_dir / "results.sqlite3")
    runner.client_kwargs["cache"] = cache
    runner.client_kwargs["retry"] = RetryPolicy(max_attempts=2, initial_delay=0.01)
    done = make_pdf(tmp_path, "done.pdf")
    pending = make_pdf(tmp_path, "pending.pdf")
    runner.call("ocr", done)
    server.id_faults["job-00001"] = [status(503)] * 5
    with pytest.raises(DatalabError):
        runner.call("ocr", pending)  # its job stays in the ledger, to be resumed
    cache.close()

    stored = list(cache_dir.iterdir())
    assert stored
    assert ResultCache(cache_dir / "results.sqlite3").stats().pending_jobs == 1
    for path in stored:
        assert_no_key(path.read_bytes())
