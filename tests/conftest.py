"""Settings for the whole suite."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_result_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    # The clients cache results on disk by default. A test that wants a cache builds one in
    # its own tmp_path; no test reads or writes the user's cache.
    monkeypatch.setenv("DATALAB_OCR_CACHE", "off")
