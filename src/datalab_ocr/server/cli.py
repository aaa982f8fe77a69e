"""Command-line options for running the server in the foreground.

``python -m datalab_ocr.server`` and the package CLI's ``datalab-ocr serve`` share
:func:`add_serve_arguments` and :func:`run_serve`.
"""

from __future__ import annotations

import argparse
import logging

from datalab_ocr.server.config import DEFAULT_MAX_UPLOAD_BYTES, ENGINES, ServerConfig

__all__ = ["add_serve_arguments", "config_from_args", "parse_rate_limit", "run_serve"]

logger = logging.getLogger(__name__)


def parse_rate_limit(text: str) -> tuple[int, float]:
    """Parse ``"200/60"`` (requests per window in seconds) or ``"200"`` (per 60 s)."""
    requests_text, _, window_text = text.partition("/")
    try:
        requests = int(requests_text)
        window = float(window_text) if window_text else 60.0
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N/SECONDS like 200/60, not {text!r}") from None
    if requests < 1 or window <= 0:
        raise argparse.ArgumentTypeError("the rate limit needs N >= 1 and SECONDS > 0")
    return requests, window


def add_serve_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the server's options to ``parser`` and return it."""
    defaults = ServerConfig()
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind (default: 8000)")
    parser.add_argument("--api-key", default=None, help="require this X-API-Key on every request")
    parser.add_argument(
        "--engine", choices=ENGINES, default=defaults.engine, help="OCR engine (default: tesseract)"
    )
    parser.add_argument(
        "--workers", type=int, default=defaults.workers, help="OCR worker processes"
    )
    parser.add_argument(
        "--queue-size",
        type=int,
        default=defaults.queue_size,
        help="jobs that may wait beyond the running ones before submits get 429",
    )
    parser.add_argument(
        "--latency", type=float, default=0.0, help="hold every job at least this many seconds"
    )
    parser.add_argument(
        "--page-latency", type=float, default=0.0, help="and this many more seconds per page"
    )
    parser.add_argument(
        "--rate-limit",
        type=parse_rate_limit,
        default=None,
        metavar="N/SECONDS",
        help="allow N requests (submits and polls) per window, like the hosted API's 200/60",
    )
    parser.add_argument(
        "--result-ttl", type=float, default=defaults.result_ttl, help="seconds results are kept"
    )
    parser.add_argument(
        "--max-upload-mb",
        type=float,
        default=DEFAULT_MAX_UPLOAD_BYTES / (1024 * 1024),
        help="largest accepted file in MB (default: 200)",
    )
    parser.add_argument("--log-level", default="info", help="uvicorn log level")
    return parser


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """The :class:`ServerConfig` that parsed command-line options describe."""
    rate: tuple[int, float] | None = args.rate_limit
    return ServerConfig(
        api_key=args.api_key,
        engine=args.engine,
        workers=args.workers,
        queue_size=args.queue_size,
        latency=args.latency,
        page_latency=args.page_latency,
        rate_limit_requests=rate[0] if rate else None,
        rate_limit_window=rate[1] if rate else 60.0,
        result_ttl=args.result_ttl,
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
    )


def run_serve(args: argparse.Namespace) -> int:
    """Serve in the foreground until interrupted; returns the process exit code."""
    import uvicorn

    from datalab_ocr.server.app import create_app

    config = config_from_args(args)
    logger.info(
        "serving the Datalab OCR API on http://%s:%d with engine %s and %d workers",
        args.host,
        args.port,
        config.engine,
        config.workers,
    )
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level=args.log_level)
    return 0
