"""A server that speaks the Datalab job contract and fails on command.

It is a raw asyncio HTTP/1.1 server (keep-alive, Content-Length and chunked bodies) run on its
own event loop in a background thread on 127.0.0.1, port 0. Raw rather than an ASGI app
because the faults worth testing live below HTTP: a connection closed with no answer, a body
shorter than its ``Content-Length``, an answer that comes after the client gave up.

What to break is scripted per request: ``submit_faults[i]`` for the i-th submit,
``poll_faults[i]`` for the i-th poll, ``id_faults[request_id]`` for the successive polls of one
job, or :class:`Chaos` for a seeded random share of every request. What each job does is
planned per file name (:class:`JobPlan`): complete, ``success: false``, ``status: failed``,
or expire (404) while being polled. ``foreign_check_url`` hands out check URLs on a second
listener at 127.0.0.2, another origin, to see whether the client follows them.

Everything is recorded: each request with its headers and the fault it got, and each job
created with the file it came from and the fault its submit answer met, so duplicate
submissions can be counted and explained.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

__all__ = [
    "DROP",
    "MALFORMED",
    "TRUNCATE",
    "Chaos",
    "Fault",
    "FaultServer",
    "JobPlan",
    "Recorded",
    "page_text",
    "slow",
    "status",
]

FaultKind = Literal["status", "drop", "truncate", "malformed", "slow"]
Outcome = Literal["ok", "success_false", "status_failed", "expire"]

_MAX_BODY = 16 * 1024 * 1024
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    529: "Site Overloaded",
}


@dataclass(frozen=True)
class Fault:
    """One way to answer a request badly.

    ``status``: an HTTP error (JSON ``{"detail": ...}`` or, with ``html``, a proxy's HTML
    page), with ``retry_after`` as the ``Retry-After`` header when given. ``drop``: close the
    connection with no answer. ``truncate``: declare a longer ``Content-Length`` than is sent,
    then close. ``malformed``: 200 with a body that is not JSON. ``slow``: answer nothing for
    ``delay`` seconds (past the client's read timeout), then close.

    ``after_work`` does the request's real work first (a submit creates its job) and only then
    spoils the answer: the case where the service acted but the client cannot know.
    """

    kind: FaultKind
    status: int = 503
    retry_after: str | None = None
    html: bool = False
    after_work: bool = False
    delay: float = 0.8

    @property
    def label(self) -> str:
        """A short name for reports and test ids."""
        if self.kind == "status":
            name = f"{self.status}"
            if self.html:
                name += "-html"
            if self.retry_after is not None:
                name += f"-retry-after-{self.retry_after}"
        else:
            name = self.kind
        return name + ("-after-work" if self.after_work else "")


def status(
    code: int, *, retry_after: str | None = None, html: bool = False, after_work: bool = False
) -> Fault:
    """An HTTP error answer."""
    return Fault("status", code, retry_after=retry_after, html=html, after_work=after_work)


def slow(delay: float = 0.8, *, after_work: bool = False) -> Fault:
    """No answer for ``delay`` seconds, then a closed connection."""
    return Fault("slow", delay=delay, after_work=after_work)


DROP = Fault("drop")
TRUNCATE = Fault("truncate")
MALFORMED = Fault("malformed")


@dataclass(frozen=True)
class JobPlan:
    """What the job of one file does: ``processing`` for ``processing_polls`` polls (and at
    least ``latency`` seconds), then its ``outcome``. ``pages`` pages without a page range.
    ``expire`` answers 404 from poll number ``processing_polls + 1`` on."""

    outcome: Outcome = "ok"
    pages: int = 1
    processing_polls: int = 1
    latency: float = 0.0


@dataclass
class Chaos:
    """Spoil a seeded random ``rate`` of requests with a fault drawn from ``faults``.

    ``submit_faults`` (default: ``faults``) are drawn for submits, so faults that only make
    sense there (``after_work``) can be kept apart.
    """

    rate: float
    faults: Sequence[Fault]
    seed: int = 0
    submit_faults: Sequence[Fault] | None = None
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def draw(self, method: str) -> Fault | None:
        """A fault for the next request, or None to answer it well."""
        if self.rng.random() >= self.rate:
            return None
        pool = self.submit_faults if method == "POST" and self.submit_faults else self.faults
        return self.rng.choice(list(pool))


@dataclass(frozen=True)
class Recorded:
    """One request as the server saw it."""

    listener: str
    method: str
    path: str
    headers: dict[str, str]
    index: int
    at: float
    filename: str | None = None
    request_id: str | None = None
    fault: Fault | None = None


@dataclass(frozen=True)
class Creation:
    """One job the server created: its id, its file, and the fault its answer met (if any)."""

    request_id: str
    filename: str
    answer_fault: Fault | None


@dataclass
class _Job:
    request_id: str
    filename: str
    plan: JobPlan
    pages: list[int]
    ready_at: float
    polls: int = 0


@dataclass
class _Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def page_text(filename: str, index: int) -> str:
    """The one line of text the server gives page ``index`` (0-based) of ``filename``."""
    return f"{filename} page {index}"


class FaultServer:
    """The job contract on loopback, with faults injected as scripted; see the module doc.

    ``latency`` is a (low, high) range of seconds each job stays ``processing``, drawn with
    ``seed``. Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, *, latency: tuple[float, float] = (0.0, 0.0), seed: int = 0) -> None:
        self.latency = latency
        self.submit_faults: dict[int, Fault] = {}
        self.poll_faults: dict[int, Fault] = {}
        self.id_faults: dict[str, list[Fault]] = {}
        self.chaos: Chaos | None = None
        self.plans: dict[str, JobPlan] = {}
        self.foreign_check_url = False
        self.requests: list[Recorded] = []
        self.creations: list[Creation] = []
        self._jobs: dict[str, _Job] = {}
        self._counts = {"POST": 0, "GET": 0}
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._sockets: dict[str, socket.socket] = {}
        self._writers: set[asyncio.StreamWriter] = set()
        self.base_url = ""
        self.foreign_base_url = ""

    # Life cycle.

    def start(self) -> FaultServer:
        """Bind both listeners and serve in a background thread; return when serving."""
        main = _bind("127.0.0.1")
        foreign = _bind("127.0.0.2")
        self._sockets = {"main": main, "foreign": foreign}
        self.base_url = f"http://127.0.0.1:{main.getsockname()[1]}"
        self.foreign_base_url = f"http://127.0.0.2:{foreign.getsockname()[1]}"
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="fault-server", daemon=True
        )
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fault server did not start within 10 s")
        return self

    def stop(self) -> None:
        """Close every connection and stop the thread (bounded: 10 s)."""
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(10)
            if self._thread.is_alive():
                raise RuntimeError("the fault server did not stop within 10 s")
        self._thread = None

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget scripts, plans, records and jobs: a clean server for the next test."""
        with self._lock:
            self.submit_faults.clear()
            self.poll_faults.clear()
            self.id_faults.clear()
            self.chaos = None
            self.plans.clear()
            self.foreign_check_url = False
            self.requests.clear()
            self.creations.clear()
            self._jobs.clear()
            self._counts = {"POST": 0, "GET": 0}

    # What tests read.

    def seen(self, method: str | None = None, listener: str = "main") -> list[Recorded]:
        """The requests one listener received, optionally of one method."""
        with self._lock:
            return [
                r
                for r in self.requests
                if r.listener == listener and (method is None or r.method == method)
            ]

    def creations_by_file(self) -> dict[str, list[Creation]]:
        """Every job created, grouped by the file it came from."""
        grouped: dict[str, list[Creation]] = {}
        with self._lock:
            for creation in self.creations:
                grouped.setdefault(creation.filename, []).append(creation)
        return grouped

    # Serving.

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve_forever(ready))
        finally:
            loop.close()

    async def _serve_forever(self, ready: threading.Event) -> None:
        self._stopping = asyncio.Event()
        servers = []
        for listener, sock in self._sockets.items():

            async def handle(
                reader: asyncio.StreamReader,
                writer: asyncio.StreamWriter,
                listener: str = listener,
            ) -> None:
                # Cancelled at shutdown while a slow fault sleeps: nothing left to do.
                with contextlib.suppress(asyncio.CancelledError):
                    await self._connection(reader, writer, listener)

            servers.append(await asyncio.start_server(handle, sock=sock, limit=_MAX_BODY))
        ready.set()
        await self._stopping.wait()
        for server in servers:
            server.close()
        for writer in list(self._writers):
            writer.close()
        for server in servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)
        # Connection handlers still sleeping (slow faults) are cancelled here.
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener: str
    ) -> None:
        self._writers.add(writer)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                if not await self._answer(request, writer, listener):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except ValueError:
            with contextlib.suppress(ConnectionError):
                await _write(writer, 400, {"detail": "bad request"}, close=True)
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, request: _Request, writer: asyncio.StreamWriter, listener: str) -> bool:
        """Answer one request; False when the connection is to be closed."""
        method, path = request.method, request.path
        is_submit = method == "POST" and path.rstrip("/").endswith("/api/v1/ocr")
        request_id = None if is_submit else path.rstrip("/").rsplit("/", 1)[-1]
        filename = _multipart_filename(request.body) if is_submit else None
        with self._lock:
            index = self._counts.get(method, 0)
            self._counts[method] = index + 1
            fault = self._pick_fault(method, index, request_id)
            self.requests.append(
                Recorded(
                    listener,
                    method,
                    path,
                    request.headers,
                    index,
                    time.monotonic(),
                    filename,
                    request_id,
                    fault,
                )
            )
            if fault is None or fault.after_work:
                code, body = (
                    self._submit(request, filename, fault)
                    if is_submit
                    else self._poll(request_id or "")
                )
            else:
                code, body = 0, {}
        if fault is None:
            await _write(writer, code, body)
            return True
        return await _spoil(writer, fault, code, body)

    def _pick_fault(self, method: str, index: int, request_id: str | None) -> Fault | None:
        if method == "POST" and index in self.submit_faults:
            return self.submit_faults[index]
        if method == "GET":
            if index in self.poll_faults:
                return self.poll_faults[index]
            queued = self.id_faults.get(request_id or "")
            if queued:
                return queued.pop(0)
        if self.chaos is not None:
            return self.chaos.draw(method)
        return None

    def _submit(
        self, request: _Request, filename: str | None, fault: Fault | None
    ) -> tuple[int, dict[str, Any]]:
        if filename is None:
            return 422, {"detail": [{"loc": ["body", "file"], "msg": "Field required"}]}
        form = _multipart_fields(request.body)
        plan = self.plans.get(filename, JobPlan())
        if "page_range" in form:
            pages = _parse_pages(form["page_range"])
        else:
            count = plan.pages
            if "max_pages" in form:
                count = min(count, int(form["max_pages"]))
            pages = list(range(count))
        request_id = f"job-{len(self.creations):05d}"
        latency = max(plan.latency, self._rng.uniform(*self.latency))
        self._jobs[request_id] = _Job(request_id, filename, plan, pages, time.monotonic() + latency)
        self.creations.append(Creation(request_id, filename, fault))
        base = self.foreign_base_url if self.foreign_check_url else self.base_url
        return 200, {
            "request_id": request_id,
            "request_check_url": f"{base}/api/v1/ocr/{request_id}",
            "success": True,
            "error": None,
            "versions": {},
        }

    def _poll(self, request_id: str) -> tuple[int, dict[str, Any]]:
        job = self._jobs.get(request_id)
        if job is None:
            return 404, {"detail": "Request not found"}
        job.polls += 1
        plan = job.plan
        if plan.outcome == "expire" and job.polls > plan.processing_polls:
            return 404, {"detail": "Request not found: its result expired"}
        if job.polls <= plan.processing_polls or time.monotonic() < job.ready_at:
            return 200, {"status": "processing"}
        if plan.outcome == "success_false":
            return 200, {"status": "complete", "success": False, "error": "could not read file"}
        if plan.outcome == "status_failed":
            return 200, {"status": "failed", "success": None, "error": "worker crashed"}
        return 200, {
            "status": "complete",
            "success": True,
            "error": "",
            "page_count": len(job.pages),
            "versions": {"fault-server": "1"},
            "pages": [_page(job.filename, index) for index in job.pages],
        }


def _page(filename: str, index: int) -> dict[str, Any]:
    return {
        "page": index + 1,
        "image_bbox": [0.0, 0.0, 100.0, 100.0],
        "text_lines": [
            {
                "text": page_text(filename, index),
                "confidence": 0.99,
                "polygon": [[1.0, 1.0], [9.0, 1.0], [9.0, 2.0], [1.0, 2.0]],
                "bbox": [1.0, 1.0, 9.0, 2.0],
            }
        ],
    }


def _bind(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(256)
    sock.setblocking(False)
    return sock


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    line = await reader.readline()
    if not line:
        return None
    parts = line.decode("latin-1").split()
    if len(parts) != 3:
        raise ValueError("bad request line")
    method, path, _ = parts
    headers: dict[str, str] = {}
    for _ in range(100):
        raw = await reader.readline()
        if raw in (b"\r\n", b"\n", b""):
            break
        name, _, value = raw.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    else:
        raise ValueError("too many headers")
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        while len(body) <= _MAX_BODY:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                await reader.readline()
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        return _Request(method, path, headers, bytes(body))
    length = int(headers.get("content-length", "0"))
    if length > _MAX_BODY:
        raise ValueError("body too large")
    body_bytes = await reader.readexactly(length) if length else b""
    return _Request(method, path, headers, body_bytes)


def _encode(code: int, body: bytes, content_type: str, extra: dict[str, str]) -> bytes:
    head = [f"HTTP/1.1 {code} {_REASONS.get(code, 'Error')}"]
    head.append(f"Content-Type: {content_type}")
    head.append(f"Content-Length: {extra.pop('Content-Length', str(len(body)))}")
    head.extend(f"{name}: {value}" for name, value in extra.items())
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


async def _write(
    writer: asyncio.StreamWriter, code: int, payload: dict[str, Any], *, close: bool = False
) -> None:
    extra = {"Connection": "close"} if close else {}
    writer.write(_encode(code, json.dumps(payload).encode(), "application/json", extra))
    await writer.drain()


async def _spoil(
    writer: asyncio.StreamWriter, fault: Fault, code: int, body: dict[str, Any]
) -> bool:
    """Answer with ``fault``; True when the connection may carry another request."""
    if fault.kind == "status":
        extra = {} if fault.retry_after is None else {"Retry-After": fault.retry_after}
        reason = _REASONS.get(fault.status, "Error")
        if fault.html:
            page = f"<html><body><h1>{fault.status} {reason}</h1></body></html>".encode()
            writer.write(_encode(fault.status, page, "text/html", extra))
        else:
            detail = json.dumps({"detail": f"{reason} (injected)"}).encode()
            writer.write(_encode(fault.status, detail, "application/json", extra))
        await writer.drain()
        return True
    if fault.kind == "malformed":
        writer.write(_encode(200, b'{"request_id": "half', "application/json", {}))
        await writer.drain()
        return True
    if fault.kind == "truncate":
        whole = json.dumps(body or {"status": "processing"}).encode()
        declared = {"Content-Length": str(len(whole) + 100)}
        writer.write(_encode(200, whole, "application/json", declared)[: -len(whole) // 2])
        await writer.drain()
        return False
    if fault.kind == "slow":
        await asyncio.sleep(fault.delay)
    # "drop", and a slow answer nobody waits for any more: close with nothing sent.
    return False


_FILENAME = re.compile(rb'filename="([^"]*)"')
_FIELD = re.compile(rb'name="([^"]+)"\r\n\r\n([^\r]*)\r\n')


def _multipart_filename(body: bytes) -> str | None:
    found = _FILENAME.search(body)
    return found.group(1).decode("utf-8", "replace") if found else None


def _multipart_fields(body: bytes) -> dict[str, str]:
    return {m.group(1).decode(): m.group(2).decode() for m in _FIELD.finditer(body)}


def _parse_pages(text: str) -> list[int]:
    pages: set[int] = set()
    for part in text.split(","):
        start, _, end = part.partition("-")
        pages.update(range(int(start), int(end or start) + 1))
    return sorted(pages)
