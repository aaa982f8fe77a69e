"""No cassette may hold an API key: not the recording key, not any X-API-Key header.

Marked ``cassette`` so that the re-recording command checks what it has just written (this
module sorts after ``test_cassettes.py``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

from .recording import CASSETTES, RECORDING_KEY, REPLAY_KEY

pytestmark = pytest.mark.cassette

CASSETTE_FILES = sorted(CASSETTES.glob("*.yaml"))
# Read at import: the fixtures clear the environment before each test runs.
ENVIRONMENT_KEY = os.environ.get("DATALAB_API_KEY")


def test_there_are_cassettes_to_scan() -> None:
    assert CASSETTE_FILES, f"no cassettes in {CASSETTES}"


@pytest.mark.parametrize("path", CASSETTE_FILES, ids=lambda path: path.name)
def test_no_known_key_appears_anywhere(path: Path) -> None:
    text = path.read_text()
    keys = [RECORDING_KEY, REPLAY_KEY]
    # A real key in the environment (as when recording against the hosted API) too.
    if ENVIRONMENT_KEY:
        keys.append(ENVIRONMENT_KEY)

    for key in keys:
        assert key not in text, f"{path.name} holds an API key"


@pytest.mark.parametrize("path", CASSETTE_FILES, ids=lambda path: path.name)
def test_no_request_or_response_carries_an_api_key_header(path: Path) -> None:
    interactions: list[dict[str, Any]] = yaml.safe_load(path.read_text())["interactions"]

    for interaction in interactions:
        for part in ("request", "response"):
            headers = interaction[part].get("headers") or {}
            assert "x-api-key" not in {name.lower() for name in headers}, path.name
    assert "x-api-key" not in path.read_text().lower()


@pytest.mark.parametrize("path", CASSETTE_FILES, ids=lambda path: path.name)
def test_no_upload_body_is_stored(path: Path) -> None:
    interactions: list[dict[str, Any]] = yaml.safe_load(path.read_text())["interactions"]

    for interaction in interactions:
        body = interaction["request"].get("body") or ""
        assert len(body) < 200, f"{path.name} stores a request body"
