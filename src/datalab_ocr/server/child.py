"""The child side of :class:`~datalab_ocr.server.process.ServerProcess`: what
``python -m datalab_ocr.server --embedded`` runs.

It reads its configuration from stdin, checks that its OCR workers could run, listens on
127.0.0.1 and a free port, answers the handshake on stdout, and serves until stdin closes
(the parent stopped it, or died). Its log records go to stderr as JSON lines for the parent
to relay; the protocol is described in ``process``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading

from datalab_ocr.server.config import ServerConfig
from datalab_ocr.server.process import LocalServerError, missing_extra

__all__ = ["listen_on_loopback", "run_child"]

_STOP_GRACE = 20.0
"""Seconds a graceful shutdown may take (running OCR chunks finish) before the child exits."""


class _JSONLines(logging.Handler):
    """Log records as JSON lines on stderr, for the parent to relay."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            line = {"name": record.name, "level": record.levelno, "message": message}
            sys.stderr.write(json.dumps(line) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def listen_on_loopback() -> socket.socket:
    """A socket bound to 127.0.0.1 on a free port, or a :class:`LocalServerError` (``port``)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
    except OSError as exc:
        sock.close()
        raise LocalServerError(
            f"the local OCR server cannot listen on 127.0.0.1 ({exc.strerror or exc}): free "
            "some local ports, or run `datalab-ocr serve --port N` and point base_url at it",
            "port",
        ) from None
    return sock


def _answer(reply: dict[str, str]) -> None:
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
    # From here on, stray prints (ours, a library's, a worker's) go to the log relay.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())


def _fail(message: str, cause: str) -> int:
    _answer({"error": message, "cause": cause})
    return 1


def run_child() -> int:
    """The child's main: read the configuration, serve, answer the handshake, and stop at
    end of file on stdin. Returns the process exit code."""
    try:
        hello = json.loads(sys.stdin.buffer.readline())
        config = ServerConfig(**hello["config"])
        level = int(hello.get("log_level", logging.WARNING))
    except (ValueError, KeyError, TypeError) as exc:
        return _fail(f"the local OCR server got no valid configuration: {exc}", "exited")
    root = logging.getLogger()
    root.addHandler(_JSONLines())
    root.setLevel(level)
    try:
        import uvicorn

        from datalab_ocr.server.app import AppServer, create_app
        from datalab_ocr.server.workers import WorkerStartError, check_engine
    except ImportError as exc:
        return _fail(missing_extra(str(exc)), "missing-extra")
    try:
        check_engine(config.engine)
        sock = listen_on_loopback()
    except WorkerStartError as exc:
        return _fail(str(exc), "engine")
    except LocalServerError as exc:
        return _fail(str(exc), exc.cause)
    uvicorn_config = uvicorn.Config(
        create_app(config),
        log_config=None,  # our handler on the root logger carries everything to the parent
        log_level=max(level, logging.WARNING),  # its INFO lines repeat what the parent says
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    server = AppServer(uvicorn_config)
    finished = threading.Event()
    announced = threading.Event()

    def announce() -> None:
        while not server.started and not finished.wait(0.01):
            pass
        if server.started:
            _answer({"url": f"http://127.0.0.1:{sock.getsockname()[1]}"})
            announced.set()

    def watch_parent() -> None:
        sys.stdin.buffer.read()  # returns at end of file: the parent stopped us or is gone
        server.should_exit = True
        threading.Event().wait(_STOP_GRACE)
        os._exit(1)  # the workers watch this process and go with it

    announcer = threading.Thread(target=announce, name="announce", daemon=True)
    announcer.start()
    threading.Thread(target=watch_parent, name="watch-parent", daemon=True).start()
    try:
        server.run(sockets=[sock])
    finally:
        finished.set()
        announcer.join()  # one writer on stdout at a time
    if not announced.is_set():
        return _fail("the local OCR server stopped while starting; see its log", "exited")
    return 0
