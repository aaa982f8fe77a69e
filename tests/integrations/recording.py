"""Recording and replaying HTTP exchanges with vcrpy, for the cassette tests.

``DATALAB_RECORD`` picks the mode:

- unset: replay ``cassettes/*.yaml`` with record mode ``none`` (CI); no server, no network,
  fake time. A request the cassette does not hold fails the test.
- ``1`` or ``local``: record against the local Datalab-compatible server, started with a
  literal test key so that the key filter is exercised.
- ``hosted``: record against the hosted API with the key in ``DATALAB_API_KEY``.

Requests match on method and path only: the host and port change between runs (the local
server takes a free port) and the multipart boundary is random. Uploads also match on the
uploaded file name, because concurrent submits reach the cassette in completion order. The
request body itself is never stored (only the file name and the form fields), and neither
is the ``X-API-Key`` header or any ``Set-Cookie``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import vcr
import yaml  # type: ignore[import-untyped,unused-ignore]

from datalab_ocr import DEFAULT_BASE_URL, AsyncDatalabClient, DatalabClient, PollPolicy
from datalab_ocr.testing import FakeClock

CASSETTES = Path(__file__).resolve().parents[2] / "cassettes"
RECORD_ENV = "DATALAB_RECORD"
RECORDING_KEY = "dl-cassette-recording-key-0b7e41"
"""The key sent to the local server while recording; it must never reach a cassette."""
REPLAY_KEY = "dl-cassette-replay-key"
"""A placeholder key for replaying hosted cassettes (the client insists on one)."""

_FILENAME = re.compile(rb'filename="([^"]*)"')


@dataclass(frozen=True)
class Backend:
    """Where a cassette test talks to, and how its clients are built."""

    mode: str  # "replay", "local" or "hosted"
    base_url: str | None
    api_key: str | None

    @property
    def recording(self) -> bool:
        """Whether exchanges go to a real server and are written to the cassette."""
        return self.mode != "replay"

    def client_options(self) -> dict[str, Any]:
        """Client settings: fake time on replay, short real polls on the local server."""
        options: dict[str, Any] = {"api_key": self.api_key, "base_url": self.base_url}
        if self.mode == "replay":
            options["clock"] = FakeClock()
        elif self.mode == "local":
            options["polling"] = PollPolicy(initial_delay=0.1, multiplier=1.5, max_delay=0.5)
        return options

    def sync_client(self) -> DatalabClient:
        """A sync client for this backend."""
        return DatalabClient(**self.client_options())

    def async_client(self) -> AsyncDatalabClient:
        """An async client for this backend."""
        return AsyncDatalabClient(**self.client_options())


def record_mode() -> str:
    """``replay``, ``local`` or ``hosted``, from ``DATALAB_RECORD``."""
    value = os.environ.get(RECORD_ENV, "").strip().lower()
    if value in ("", "0", "none", "replay"):
        return "replay"
    if value in ("1", "local"):
        return "local"
    if value == "hosted":
        return "hosted"
    raise ValueError(f"{RECORD_ENV} must be unset, 1, local or hosted; not {value!r}")


def recorded_origin(cassette: Path) -> str:
    """The scheme, host and port the cassette was recorded against."""
    data = yaml.safe_load(cassette.read_text())
    url = httpx.URL(data["interactions"][0]["request"]["uri"])
    return str(url.copy_with(path="/", query=None, fragment=None)).rstrip("/")


def _strip_request(request: Any) -> Any:
    # The upload is large and may be sensitive; keep what identifies it and nothing more.
    body = request.body
    if isinstance(body, str):
        body = body.encode()
    if body and b"Content-Disposition" in body:
        found = _FILENAME.search(body)
        name = found.group(1).decode() if found else ""
        request.body = f'multipart upload, file part filename="{name}"'.encode()
    return request


def _strip_response(response: dict[str, Any]) -> dict[str, Any]:
    headers = response.get("headers", {})
    for name in list(headers):
        if name.lower() in ("set-cookie", "x-api-key"):
            del headers[name]
    return response


def _same_upload(r1: Any, r2: Any) -> None:
    def name(request: Any) -> bytes | None:
        body = request.body if isinstance(request.body, bytes) else str(request.body).encode()
        found = _FILENAME.search(body or b"")
        return found.group(1) if found else None

    assert name(r1) == name(r2), f"uploaded file {name(r1)!r} != {name(r2)!r}"


def make_vcr(mode: str) -> vcr.VCR:
    """The vcrpy configuration shared by every cassette test."""
    recorder = vcr.VCR(
        cassette_library_dir=str(CASSETTES),
        serializer="yaml",
        record_mode="none" if mode == "replay" else "all",
        match_on=["method", "path", "upload"],
        filter_headers=["X-API-Key"],
        before_record_request=_strip_request,
        before_record_response=_strip_response,
        decode_compressed_response=True,
    )
    recorder.register_matcher("upload", _same_upload)
    return recorder


@contextmanager
def cassette(name: str, backend: Backend) -> Iterator[None]:
    """Replay (or record) the exchanges of one test in ``cassettes/<name>.yaml``.

    On replay every recorded interaction must be played: a client that asked less than it
    did when recording would be a behaviour change worth a failing test.
    """
    path = CASSETTES / f"{name}.yaml"
    if backend.recording:
        CASSETTES.mkdir(exist_ok=True)
        path.unlink(missing_ok=True)
    with make_vcr(backend.mode).use_cassette(path.name, allow_playback_repeats=False) as tape:
        yield
    if not backend.recording:
        assert tape.all_played, f"{path.name}: some recorded requests were not replayed"


def replay_backend(name: str, mode: str) -> Backend:
    """The backend that replays ``cassettes/<name>.yaml``."""
    path = CASSETTES / f"{name}.yaml"
    origin = recorded_origin(path)
    hosted = httpx.URL(origin).host.endswith("datalab.to")
    return Backend(mode, origin, REPLAY_KEY if hosted else None)


def hosted_backend() -> Backend:
    """The hosted API, with the key from the environment."""
    key = os.environ.get("DATALAB_API_KEY")
    if not key:
        raise RuntimeError("DATALAB_RECORD=hosted needs DATALAB_API_KEY")
    return Backend("hosted", os.environ.get("DATALAB_BASE_URL") or DEFAULT_BASE_URL, key)
