"""Command-line options for running the server in the foreground.

``python -m datalab_ocr.server`` and the package CLI's ``datalab-ocr serve`` share
:func:`add_serve_arguments` and :func:`run_serve`. Every option is checked by the parser
(exit code 2 with a message, never a traceback); the port is bound before anything says
"serving", so a port in use is one clear line.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import logging
import math
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from datalab_ocr.server.config import API_KEY_ENV, DEFAULT_MAX_UPLOAD_BYTES, ENGINES, ServerConfig

__all__ = [
    "add_serve_arguments",
    "build_serve_parser",
    "config_from_args",
    "parse_rate_limit",
    "run_serve",
    "serving_line",
]

logger = logging.getLogger(__name__)

EXIT_FAILED = 1
EXIT_USAGE = 2
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
_TRACE = 5  # uvicorn's level below DEBUG


def parse_rate_limit(text: str) -> tuple[int, float]:
    """Parse ``"200/60"`` (requests per window in seconds) or ``"200"`` (per 60 s)."""
    requests_text, _, window_text = text.partition("/")
    try:
        requests = int(requests_text)
        window = float(window_text) if window_text else 60.0
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N/SECONDS like 200/60, not {text!r}") from None
    if requests < 1 or not 0 < window < math.inf:
        raise argparse.ArgumentTypeError("the rate limit needs N >= 1 and SECONDS > 0")
    return requests, window


def serving_line(host: str, port: int, config: ServerConfig) -> str:
    """The line ``serve`` logs once it listens: where, which engine, and the limits in force."""
    shown = f"[{host}]" if ":" in host else host
    limit = (
        f", at most {config.rate_limit_requests} requests per {config.rate_limit_window:g} s"
        if config.rate_limit_requests
        else ""
    )
    key = "" if config.api_key else " (no API key required)"
    return (
        f"serving the Datalab OCR API on http://{shown}:{port} with engine {config.engine} "
        f"and {config.workers} workers{limit}{key}"
    )


def _integer(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
        if value < low or (high is not None and value > high):
            allowed = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"expected a number {allowed}, not {value}")
        return value

    return parse


def _seconds(*, positive: bool, high: float | None = None) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            wanted = "a number above 0" if positive else "a number of at least 0"
            raise argparse.ArgumentTypeError(f"expected {wanted}, not {text}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"expected a number up to {high:g}, not {text}")
        return value

    return parse


def _key_file(text: str) -> str:
    try:
        key = Path(text).read_text(encoding="utf-8").strip()
    except OSError as error:
        reason = error.strerror or str(error)
        raise argparse.ArgumentTypeError(f"cannot read the key file {text}: {reason}") from None
    if not key:
        raise argparse.ArgumentTypeError(f"the key file {text} is empty")
    return key


def add_serve_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the server's options to ``parser`` and return it."""
    defaults = ServerConfig()
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s, loopback only)"
    )
    parser.add_argument(
        "--port",
        type=_integer(0, 65535),
        default=8000,
        help="port to bind; 0 picks a free one (default: %(default)s)",
    )
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument(
        "--api-key",
        default=None,
        help=f"require this X-API-Key on every request; other local users can read it in the "
        f"process list, so prefer --api-key-file or ${API_KEY_ENV} (default: ${API_KEY_ENV}, "
        "else no key)",
    )
    keys.add_argument(
        "--api-key-file",
        type=_key_file,
        default=None,
        metavar="PATH",
        help="read the required X-API-Key from this file (surrounding whitespace ignored)",
    )
    parser.add_argument(
        "--allow-no-key-on-network",
        action="store_true",
        help="serve on a non-loopback --host without an API key, to anyone who can reach it",
    )
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default=defaults.engine,
        help="OCR engine; none returns synthetic pages (default: %(default)s)",
    )
    parser.add_argument(
        "--workers",
        type=_integer(1),
        default=defaults.workers,
        help="OCR worker processes (default: %(default)s, at most 2 by the cores here)",
    )
    parser.add_argument(
        "--queue-size",
        type=_integer(0),
        default=defaults.queue_size,
        help="jobs that may wait beyond the running ones before submits get 429 "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--latency",
        type=_seconds(positive=False),
        default=0.0,
        metavar="SECONDS",
        help="hold every job at least this long (default: %(default)s)",
    )
    parser.add_argument(
        "--page-latency",
        type=_seconds(positive=False),
        default=0.0,
        metavar="SECONDS",
        help="and this much longer per page (default: %(default)s)",
    )
    parser.add_argument(
        "--rate-limit",
        type=parse_rate_limit,
        default=None,
        metavar="N/SECONDS",
        help="allow N requests (submits and polls) per window of SECONDS, like the hosted "
        "API's 200/60; N alone means per 60 s (default: no limit)",
    )
    parser.add_argument(
        "--result-ttl",
        type=_seconds(positive=True),
        default=defaults.result_ttl,
        metavar="SECONDS",
        help="how long results are kept (default: %(default)s)",
    )
    parser.add_argument(
        "--max-upload-mb",
        type=_seconds(positive=True),
        default=DEFAULT_MAX_UPLOAD_BYTES / (1024 * 1024),
        metavar="MB",
        help="largest accepted file (default: %(default)s)",
    )
    parser.add_argument(
        "--max-render-pixels",
        type=_integer(1_000_000),
        default=defaults.max_render_pixels,
        metavar="PIXELS",
        help="render every page within this many pixels: bigger pages are read at a lower "
        "resolution, and one that would fall under 50 dpi fails (default: %(default)s)",
    )
    parser.add_argument(
        "--long-poll-max",
        type=_seconds(positive=False, high=300),
        default=defaults.long_poll_max,
        metavar="SECONDS",
        help="the longest ?wait= a result check may hold the request for; 0 turns the long "
        "poll off, so clients poll as on the hosted API (default: %(default)s)",
    )
    parser.add_argument(
        "--log-level",
        type=str.lower,
        choices=LOG_LEVELS,
        default="info",
        help="the server's log level (default: %(default)s)",
    )
    return parser


def build_serve_parser(prog: str) -> argparse.ArgumentParser:
    """A parser holding only the server's options, for ``python -m datalab_ocr.server``."""
    parser = argparse.ArgumentParser(
        prog=prog, description="A local server speaking the Datalab OCR API (POST /api/v1/ocr)."
    )
    return add_serve_arguments(parser)


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """The :class:`ServerConfig` that parsed command-line options describe.

    The API key comes from ``--api-key``, then ``--api-key-file``, then ``$DATALAB_SERVER_API_KEY``.
    """
    rate: tuple[int, float] | None = args.rate_limit
    return ServerConfig(
        api_key=_api_key(args),
        engine=args.engine,
        workers=args.workers,
        queue_size=args.queue_size,
        latency=args.latency,
        page_latency=args.page_latency,
        rate_limit_requests=rate[0] if rate else None,
        rate_limit_window=rate[1] if rate else 60.0,
        result_ttl=args.result_ttl,
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        max_render_pixels=args.max_render_pixels,
        long_poll_max=args.long_poll_max,
    )


def _api_key(args: argparse.Namespace) -> str | None:
    for key in (args.api_key, getattr(args, "api_key_file", None), os.environ.get(API_KEY_ENV)):
        if key and key.strip():
            return str(key).strip()
    return None


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _ServeError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def run_serve(args: argparse.Namespace, prog: str = "datalab-ocr serve") -> int:
    """Serve in the foreground until interrupted; returns the process exit code.

    Refuses (exit code 2) a non-loopback ``--host`` without an API key unless
    ``--allow-no-key-on-network`` says so; a port in use or a worker that could not start
    is one line on stderr and exit code 1.
    """
    level = _TRACE if args.log_level == "trace" else getattr(logging, args.log_level.upper())
    try:
        return _serve(args, level)
    except _ServeError as error:
        sys.stderr.write(f"{prog}: error: {error}\n")
        return error.code


def _serve(args: argparse.Namespace, level: int) -> int:
    import uvicorn

    from datalab_ocr.server.app import AppServer, create_app
    from datalab_ocr.server.workers import WorkerStartError, check_engine

    config = config_from_args(args)
    if config.api_key is None and not _is_loopback(args.host) and not args.allow_no_key_on_network:
        raise _ServeError(
            f"refusing to serve on {args.host} without an API key: anyone who can reach it "
            f"could use it. Set a key with --api-key-file PATH or ${API_KEY_ENV} (clients "
            "send it as DATALAB_API_KEY), or pass --allow-no-key-on-network",
            EXIT_USAGE,
        )
    try:
        check_engine(config.engine)
    except WorkerStartError as error:
        raise _ServeError(str(error), EXIT_FAILED) from None
    sock = _bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    # Only now: a refused start is one line on stderr, with nothing logged before it.
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logger.info("%s", serving_line(host, port, config))
    server = AppServer(
        uvicorn.Config(
            create_app(config),
            host=host,  # what uvicorn's own "running on" line shows; the socket is bound
            port=port,
            log_config=None,  # the logging configured above
            log_level=level,
            access_log=level <= logging.DEBUG,
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
    )
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn stops gracefully, then raises the signal again
        pass
    finally:
        sock.close()
    return 0


def _bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, or a :class:`_ServeError` saying what is wrong."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as error:
        raise _ServeError(
            f"cannot listen on {host!r}: {error.strerror} (use an address of this machine, "
            "like 127.0.0.1 or 0.0.0.0)",
            EXIT_USAGE,
        ) from None
    sock = socket.socket(family, kind, proto)
    if os.name != "nt":  # on POSIX it only lets a restart reuse a port in TIME_WAIT
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        where = f"port {port} on {host}"
        if error.errno == errno.EADDRINUSE:
            message = f"{where} is already in use (another server?): stop it or pick another --port"
        elif error.errno == errno.EACCES:
            message = f"no permission to use {where}: pick a --port above 1023"
        elif error.errno == errno.EADDRNOTAVAIL:
            message = f"{host} is not an address of this machine: pick another --host"
        else:
            message = f"cannot listen on {where}: {error.strerror or error}"
        raise _ServeError(message, EXIT_FAILED) from None
    return sock
