"""Starting the server from Python: :class:`LocalServer` (in a thread of this process) and the
process-wide :func:`embedded_server` (a child process) that ``local=True`` and the CLI use.

Two shapes, because "spawn" workers import the main module of the process that starts them:

- :func:`embedded_server` runs :class:`~datalab_ocr.server.process.ServerProcess`, so it works
  from anything (a top-level script with no guard, ``-c``, stdin, Jupyter, threads, forks).
- :class:`LocalServer` serves from a thread of this process: it starts in a fraction of the
  time and shares the interpreter, which suits tests and programs that manage their own
  lifecycle. With a real OCR engine its workers import this process's main script again, so
  a script using it needs ``if __name__ == "__main__":``; with ``engine="none"`` (no workers)
  it does not.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from types import TracebackType

import uvicorn

from datalab_ocr.server.app import AppServer, create_app
from datalab_ocr.server.config import ServerConfig
from datalab_ocr.server.process import ServerProcess
from datalab_ocr.server.workers import check_engine

__all__ = ["LocalServer", "embedded_server"]

logger = logging.getLogger(__name__)


class LocalServer:
    """A local Datalab-compatible server running uvicorn in a background thread.

    ``port=0`` picks a free port; the socket is bound before the thread starts, so
    :attr:`base_url` is known and nothing else can take the port in between. Use it as a
    context manager, or call :meth:`start` and :meth:`stop`. A script using it with a real
    OCR engine needs an ``if __name__ == "__main__":`` guard (see the module docstring);
    :class:`~datalab_ocr.server.process.ServerProcess` has the same methods and needs none.
    """

    def __init__(
        self,
        config: ServerConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        startup_timeout: float = 15.0,
        log_level: str = "warning",
    ) -> None:
        self.config = config or ServerConfig()
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self.log_level = log_level
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def base_url(self) -> str:
        """The server's root URL, like ``http://127.0.0.1:54321``."""
        if self._socket is None:
            raise RuntimeError("the server is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the server thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> LocalServer:
        """Start serving and return once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError("the server is already started")
        check_engine(self.config.engine)
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._socket = sock
        config = uvicorn.Config(
            create_app(self.config),
            log_level=self.log_level,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
        server = AppServer(config)
        self._server = server
        self._thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [sock]},
            name=f"datalab-ocr-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the local OCR server did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop serving, cancel unfinished jobs and shut the worker processes down."""
        server, thread, sock = self._server, self._thread, self._socket
        if server is not None:
            server.should_exit = True
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                logger.warning("the local OCR server did not stop within %g s", timeout)
        if sock is not None:
            sock.close()
        self._server = self._thread = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.base_url if self._socket is not None else "not started"
        return f"LocalServer({where}, engine={self.config.engine!r})"


_embedded: ServerProcess | None = None
_embedded_lock = threading.Lock()


def embedded_server(config: ServerConfig | None = None) -> ServerProcess:
    """The server of this process, started on first use and stopped at interpreter exit.

    The first call's ``config`` wins; later calls return the running server as it is, from
    any thread. A forked child process (a web server's worker, a fork-based pool) starts a
    server of its own on first use rather than sharing its parent's: the parent may stop or
    be killed while the child still works, and each process stopping only what it started
    is what makes the stop at exit safe. Worker processes start with the first OCR job.

    Raises :class:`~datalab_ocr.server.process.LocalServerError` naming the cause and the fix
    when the server cannot start.
    """
    global _embedded  # noqa: PLW0603 - one server per process is the point
    with _embedded_lock:
        if _embedded is None or not _embedded.running:
            if _embedded is not None:
                code = _embedded.stop()  # it died: collect it before starting another
                logger.warning(
                    "the local OCR server stopped unexpectedly (exit code %s); starting a new one",
                    code,
                )
            _embedded = ServerProcess(config).start()
            logger.debug("embedded local OCR server at %s", _embedded.base_url)
        return _embedded


def _forget_in_child() -> None:
    # The lock may have been held by another thread of the parent at fork time.
    global _embedded, _embedded_lock
    _embedded, _embedded_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
