"""The local server as a child process of its own: :class:`ServerProcess` and its child side.

Why a process: OCR workers are started with "spawn", which imports the main module of the
process that starts them once more in every worker. In a user's process that module is the
user's script, so a top-level script without an ``if __name__ == "__main__":`` guard (or one
piped to ``python -``) would run again in each worker. The child is
``python -m datalab_ocr.server --embedded`` (its side is ``child``): its workers import our
module, never the user's, whatever the user's process is (a script, ``-c``, stdin, Jupyter,
a thread, a forked worker).

The handshake runs over the child's standard streams:

- stdin: the parent writes one JSON line (the configuration and the log level) and keeps
  the pipe open. End of file means the parent is gone, even after ``kill -9``: the child
  stops, and its OCR workers, which watch the child, stop with it.
- stdout: the child writes one JSON line, ``{"url": ...}`` once it serves on 127.0.0.1, or
  ``{"error": ..., "cause": ...}`` when it cannot start; nothing else ever.
- stderr: the child's log records, one JSON object a line, which the parent hands to its own
  ``logging`` (under ``datalab_ocr.server``); anything else (native libraries) is logged as
  a warning. So the server speaks through the user's logging, also in Jupyter.

The child runs in a session of its own, so Ctrl-C in the user's terminal reaches the user's
script only: the script stops the server at exit, quietly.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import dataclasses
import json
import logging
import os
import queue
import site
import subprocess
import sys
import threading
import weakref
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from datalab_ocr._exceptions import ConfigurationError
from datalab_ocr.server.config import ServerConfig

__all__ = ["LocalServerError", "ServerProcess"]

logger = logging.getLogger(__name__)

_CHILD_COMMAND = ("-m", "datalab_ocr.server", "--embedded")


class LocalServerError(ConfigurationError):
    """The local OCR server could not start; the message names the cause and the fix.

    ``cause`` is one of ``"missing-extra"``, ``"engine"``, ``"port"``, ``"python"``,
    ``"exited"`` and ``"timeout"``.
    """

    def __init__(self, message: str, cause: str) -> None:
        super().__init__(message)
        self.cause = cause


# -- the parent side -------------------------------------------------------------------------

_instances: weakref.WeakSet[ServerProcess] = weakref.WeakSet()


class ServerProcess:
    """The local server in a child process, on 127.0.0.1 and a free port.

    Works from any Python process, with no ``__main__`` guard. :meth:`start` returns once the
    server answers; :meth:`stop` (also run at interpreter exit) stops it and its workers. It
    never outlives this process, even one killed with ``kill -9``. A process forked from this
    one does not share it: the copy there is inert (see :meth:`_abandon`).
    """

    def __init__(self, config: ServerConfig | None = None, *, startup_timeout: float = 60.0):
        self.config = config or ServerConfig()
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._owner = 0
        self._url: str | None = None
        self._log_thread: threading.Thread | None = None
        self._recent: collections.deque[str] = collections.deque(maxlen=4)
        _instances.add(self)

    @property
    def base_url(self) -> str:
        """The server's root URL, like ``http://127.0.0.1:54321``."""
        if self._url is None:
            raise RuntimeError("the server is not started")
        return self._url

    @property
    def pid(self) -> int | None:
        """The server process's id, or None when it is not running here."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        """Whether this process started the server and it is still alive."""
        process = self._process
        return process is not None and self._owner == os.getpid() and process.poll() is None

    def start(self) -> ServerProcess:
        """Start the server and return once it answers on its address.

        Raises :class:`LocalServerError` naming the cause (a missing extra or OCR model, no
        free port, a server that exited or did not answer in ``startup_timeout`` seconds).
        """
        if self._process is not None:
            raise RuntimeError("the server is already started")
        if not sys.executable:
            raise LocalServerError(
                "cannot start the local OCR server: this Python has no sys.executable to run "
                "it with; run `datalab-ocr serve` elsewhere and point base_url at it",
                "python",
            )
        process = subprocess.Popen(  # noqa: S603 - our own module, run by this interpreter
            [sys.executable, *_CHILD_COMMAND],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # Unbuffered pipes: their file objects hold no locks, so a forked copy of this
            # process can close them safely (see _abandon).
            bufsize=0,
            env=_child_environment(),
            **_detached(),
        )
        self._process, self._owner = process, os.getpid()
        self._log_thread = _thread(self._relay_logs, process.stderr, "log")
        handshake: queue.Queue[bytes] = queue.Queue()
        _thread(lambda stream: handshake.put(_read_line(stream)), process.stdout, "handshake")
        try:
            _write_all(process.stdin, _hello(self.config))
            line = handshake.get(timeout=self.startup_timeout)
        except queue.Empty:
            self._kill(grace=0.0)
            raise LocalServerError(
                f"the local OCR server did not start within {self.startup_timeout:g} s (a "
                "busy machine?): raise startup_timeout, or run `datalab-ocr serve` yourself",
                "timeout",
            ) from None
        except OSError:  # the child died before reading its configuration
            line = b""
        except BaseException:  # Ctrl-C while waiting (a notebook goes on): leave nothing behind
            self._kill(grace=0.0)
            raise
        answer = _parse_answer(line)
        if "url" not in answer:
            raise self._startup_error(answer, self._kill(grace=5.0))
        self._url = str(answer["url"])
        atexit.register(self._stop_at_exit)
        logger.debug("local OCR server (pid %d) at %s", process.pid, self._url)
        return self

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop the server and its workers; kill them after ``timeout`` seconds.

        Returns the server's exit code, or None when this process has no server to stop.
        """
        process = self._process
        if process is None or self._owner != os.getpid():
            return None
        atexit.unregister(self._stop_at_exit)
        self._process = None
        _close(process.stdin)  # end of file: the child shuts down gracefully
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("the local OCR server did not stop within %g s; killing it", timeout)
            process.kill()
            process.wait()
        except KeyboardInterrupt:
            # A second Ctrl-C while it stops: the user wants out now. Kill it (its workers
            # follow it) and go on with the interrupt.
            process.kill()
            process.wait()
            raise
        if self._log_thread is not None:
            self._log_thread.join(2.0)  # its last records; workers may hold stderr a moment
        return process.returncode

    def _stop_at_exit(self) -> None:
        # At exit a Ctrl-C has nowhere useful to go: the server is killed (in stop) and the
        # interpreter ends quietly instead of printing a traceback from an atexit hook.
        with contextlib.suppress(KeyboardInterrupt):
            self.stop()

    def _kill(self, grace: float) -> int | None:
        """Stop a server that failed to start; its exit code once its last words are read."""
        process = self._process
        self._process = None
        if process is None:
            return None
        _close(process.stdin)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if self._log_thread is not None:
            self._log_thread.join(2.0)
        return process.returncode

    def _abandon(self) -> None:
        """In a forked copy of the parent: let go of the parent's server, never touch it.

        The copy must not keep the server alive (it holds the write end of the server's
        stdin) nor stop it at its own exit; it starts a server of its own when it needs one.
        """
        process = self._process
        if process is None:
            return
        self._process = None
        for stream in (process.stdin, process.stdout, process.stderr):
            _close(stream)
        # Not this process's child: nothing to wait for, and no warning when it is collected.
        process.returncode = 0

    def _startup_error(self, answer: dict[str, Any], code: int | None) -> LocalServerError:
        if "error" in answer:
            return LocalServerError(str(answer["error"]), str(answer.get("cause", "exited")))
        # A traceback's last line names the exception; that is what a user needs to see.
        last = self._recent[-1].splitlines()[-1] if self._recent else "no output"
        if last.startswith("ModuleNotFoundError:"):
            return LocalServerError(missing_extra(last.partition(": ")[2]), "missing-extra")
        return LocalServerError(
            f"the local OCR server exited while starting (exit code {code}): {last}",
            "exited",
        )

    def _relay_logs(self, stream: IO[bytes]) -> None:
        with contextlib.closing(stream):
            self._relay(stream)

    def _relay(self, stream: IO[bytes]) -> None:
        for line in _lines(stream):
            text = line.decode("utf-8", "replace").rstrip()
            if not text:
                continue
            record = _parse_record(text)
            if record is None:
                self._recent.append(text)
                # Before the handshake, raw output is a failed start's traceback: its last
                # line goes into the LocalServerError, the rest only to the debug log.
                level = logging.WARNING if self._url is not None else logging.DEBUG
                logging.getLogger("datalab_ocr.server.output").log(level, "%s", text)
                continue
            name, level, message = record
            self._recent.append(message)
            parent_name = name if name.startswith("datalab_ocr") else f"datalab_ocr.server.{name}"
            logging.getLogger(parent_name).log(level, "%s", message)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self._url if self.running else "not running"
        return f"ServerProcess({where}, engine={self.config.engine!r})"


def _after_fork_in_child() -> None:
    for server in list(_instances):
        server._abandon()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _detached() -> dict[str, Any]:
    # Outside the terminal's process group: Ctrl-C goes to the user's script, which then
    # stops the server itself, instead of to every worker at once (tracebacks all over).
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def _child_environment() -> dict[str, str]:
    """This environment, plus the folder this package is imported from when it is not a
    site-packages folder (a checkout put on ``sys.path`` by hand)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    folders = [*site.getsitepackages(), site.USER_SITE or ""]
    sites = {str(Path(path).resolve()) for path in folders if path}
    if root not in sites:
        parts = [root, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        env["PYTHONPATH"] = os.pathsep.join(parts)
    return env


def _hello(config: ServerConfig) -> bytes:
    level = logging.getLogger("datalab_ocr.server").getEffectiveLevel()
    line = json.dumps({"config": dataclasses.asdict(config), "log_level": level})
    return line.encode() + b"\n"


def _thread(target: Any, stream: IO[bytes] | None, name: str) -> threading.Thread:
    thread = threading.Thread(target=target, args=(stream,), name=f"datalab-ocr-server-{name}")
    thread.daemon = True
    thread.start()
    return thread


def _lines(stream: IO[bytes]) -> Any:
    """Lines from an unbuffered pipe, read with ``os.read`` (no buffer, no lock)."""
    fd = stream.fileno()
    pending = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # closed under us: the server is being stopped or abandoned
            chunk = b""
        if not chunk:
            if pending:
                yield pending
            return
        pending += chunk
        *complete, pending = pending.split(b"\n")
        yield from complete


def _read_line(stream: IO[bytes]) -> bytes:
    """The first line, then the stream closed: only its reading thread closes it, so no
    thread ever reads a descriptor number that was closed and reused under it."""
    try:
        return next(iter(_lines(stream)), b"")
    finally:
        _close(stream)


def _write_all(stream: IO[bytes] | None, data: bytes) -> None:
    assert stream is not None
    view = memoryview(data)
    while view:
        view = view[os.write(stream.fileno(), view) :]


def _close(stream: IO[bytes] | None) -> None:
    if stream is not None:
        with contextlib.suppress(OSError):
            stream.close()


def _parse_answer(line: bytes) -> dict[str, Any]:
    try:
        answer = json.loads(line)
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _parse_record(text: str) -> tuple[str, int, str] | None:
    if not text.startswith("{"):
        return None
    try:
        record = json.loads(text)
        return str(record["name"]), int(record["level"]), str(record["message"])
    except (ValueError, KeyError, TypeError):
        return None


def missing_extra(reason: str) -> str:
    """The message for a server library that cannot be imported: the extra that brings it."""
    return f"the local OCR server needs the 'server' extra ({reason}): " + (
        "pip install 'datalab-ocr[server]'"
    )
