"""The ``datalab-ocr`` command: OCR files and folders, run the local server, manage the cache.

::

    datalab-ocr ocr scans/ report.pdf --out results.jsonl   # one JSON line per file
    datalab-ocr view scan.pdf -o report.html                # look at what OCR read
    datalab-ocr serve --port 8000                           # the local Datalab-compatible server
    datalab-ocr cache info                                  # what the result cache holds

Exit codes: 0 when every file succeeded, 1 when some failed, 2 for a usage or configuration
error, 130 when interrupted. Output goes to stdout (or ``--out``); progress, notices and
failures go to stderr, so ``--out -`` can feed a pipe.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError
from tqdm.auto import tqdm

from . import __version__
from ._batch import DEFAULT_CONCURRENCY, BatchItem
from ._cache import ResultCache
from ._client import DatalabClient
from ._config import API_KEY_ENV, BASE_URL_ENV
from ._exceptions import ConfigurationError, DatalabError, InvalidInputError, JobTimeoutError
from ._geometry import GeometryError, PageSpan, decode_bboxes
from ._models import OCRResult
from ._page_images import require_libraries
from ._page_range import parse_page_range
from ._policies import PollPolicy
from ._wording import counted
from .report import (
    DEFAULT_MAX_SIDE,
    DEFAULT_THRESHOLD,
    MAX_SIDE_LIMIT,
    PageImageError,
    write_report,
)

__all__ = ["SUPPORTED_EXTENSIONS", "build_parser", "expand_paths", "main"]

logger = logging.getLogger("datalab_ocr")

SUPPORTED_EXTENSIONS = frozenset(
    {".pdf", ".png", ".jpg", ".jpeg", ".webp", ".gif", ".tif", ".tiff"}
    | {".doc", ".docx", ".ppt", ".pptx"}
)
"""File name extensions picked up when a directory is given (case-insensitive)."""

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_ERROR_POLICIES = ("collect", "skip", "raise")
_CACHE_ENV = "DATALAB_OCR_CACHE"  # read by the client: off, 0, false, no or none turn it off
_CACHE_OFF = {"0", "off", "false", "no", "none"}


class UsageError(Exception):
    """The command line cannot be carried out as given (exit code 2)."""


# -- the command line -----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``datalab-ocr`` argument parser: ``ocr``, ``view``, ``serve`` and ``cache``."""
    parser = argparse.ArgumentParser(
        prog="datalab-ocr",
        description="OCR documents with the Datalab OCR API or the embedded local server.",
    )
    parser.add_argument("--version", action="version", version=f"datalab-ocr {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_ocr_command(commands)
    _add_view_command(commands)
    _add_serve_command(commands)
    cache = commands.add_parser("cache", help="inspect or clear the local result cache")
    cache_commands = cache.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    cache_commands.add_parser("info", help="where the cache is and what it holds")
    cache_commands.add_parser("clear", help="remove every cached result and recorded job")
    return parser


def _add_ocr_command(commands: Any) -> None:
    ocr = commands.add_parser(
        "ocr",
        help="OCR files and directories",
        description=(
            "OCR files and directories. Without DATALAB_API_KEY and without --base-url (or "
            "DATALAB_BASE_URL), the embedded local OCR server is used, and the command says "
            "so on stderr. Results are cached locally: running the same command again costs "
            "nothing, and jobs submitted by an interrupted run are resumed."
        ),
        epilog="Exit codes: 0 every file succeeded, 1 some failed (listed on stderr), 2 usage "
        "or configuration error, 130 interrupted.",
    )
    ocr.add_argument("paths", nargs="+", metavar="FILE|DIR", help="files, or directories")
    ocr.add_argument(
        "--out",
        "-o",
        metavar="FILE",
        help="write one JSON line per file, as each completes ('-' for stdout); "
        "without it, print a one-line summary per file",
    )
    ocr.add_argument(
        "--glob",
        default="**/*",
        help="which files of a directory to take (default '**/*': every supported file, "
        "recursively; hidden files and folders are left out)",
    )
    ocr.add_argument(
        "--errors",
        choices=_ERROR_POLICIES,
        default="collect",
        help="what a failed file does: 'collect' (default) records it (an error line in "
        "--out) and goes on; 'skip' leaves it out of --out and goes on; 'raise' stops at "
        "the first failure. Every policy lists the failures on stderr and exits with 1",
    )
    ocr.add_argument(
        "--full",
        action="store_true",
        help="with --out, each JSON line also holds the whole result ('result': every page's "
        "lines with their boxes and confidences), which 'datalab-ocr view --results' can show",
    )
    _add_client_options(ocr)


def _add_client_options(command: Any) -> None:
    """Pages, service, caches, polling and chattiness: the options ``ocr`` and ``view`` share."""
    command.add_argument(
        "--page-range",
        type=_page_range,
        metavar="PAGES",
        help="0-based pages and ranges, like '0,2-4'; overrides --max-pages",
    )
    command.add_argument("--max-pages", type=_positive_int, metavar="N", help="at most N pages")
    command.add_argument(
        "--skip-cache",
        action="store_true",
        help="ask the service to run OCR again instead of answering from its own cache",
    )
    command.add_argument(
        "--no-cache",
        action="store_true",
        help="neither read nor write the local result cache (no resume after Ctrl-C)",
    )
    command.add_argument(
        "--concurrency",
        type=_positive_int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"files in flight at once (default: {DEFAULT_CONCURRENCY})",
    )
    where = command.add_mutually_exclusive_group()
    where.add_argument(
        "--local", action="store_true", help="use the embedded local OCR server (no API key)"
    )
    where.add_argument(
        "--base-url", metavar="URL", help=f"the service's URL (default: ${BASE_URL_ENV} or hosted)"
    )
    command.add_argument(
        "--api-key",
        metavar="KEY",
        help=f"the API key; prefer the {API_KEY_ENV} environment variable, which does not "
        "show in the process list or the shell history",
    )
    _add_polling_options(command)
    command.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="no progress bar and no per-file lines (failures are still reported)",
    )
    command.add_argument("--verbose", "-v", action="store_true", help="log submits and retries")


def _add_view_command(commands: Any) -> None:
    view = commands.add_parser(
        "view",
        help="an HTML report to look at what OCR read on each page",
        description=(
            "Write one self-contained HTML file showing each page with every line's box "
            "coloured by confidence, the page text beside it, a search box and a "
            "low-confidence filter. Files are OCRed as by 'ocr', with the same options and "
            "the same result cache: viewing what was just OCRed costs nothing. With "
            "--results, the results saved by 'ocr --full --out' are shown instead. The report "
            "needs no server and no network to open."
        ),
        epilog="Exit codes: 0 every file shown, 1 some failed (listed in the report and on "
        "stderr), 2 usage or configuration error, 130 interrupted.",
    )
    view.add_argument("paths", nargs="+", metavar="FILE|DIR", help="files, or directories")
    view.add_argument(
        "--out", "-o", required=True, metavar="REPORT.html", help="the HTML file to write"
    )
    view.add_argument(
        "--glob",
        default="**/*",
        help="which files of a directory to take (default '**/*', as for ocr)",
    )
    view.add_argument(
        "--results",
        metavar="FILE",
        help="show saved results instead of OCRing: the JSON lines of 'ocr --full --out FILE' "
        "(matched to the files by their source), or one OCRResult as JSON for one file",
    )
    view.add_argument(
        "--highlight",
        type=_bboxes,
        metavar="BBOXES",
        help="draw a citation: a chunk's 'bboxes' metadata value (JSON), or @FILE holding "
        "it; needs a single FILE",
    )
    view.add_argument(
        "--threshold",
        type=_fraction,
        default=DEFAULT_THRESHOLD,
        metavar="CONFIDENCE",
        help=f"lines below this confidence count as low (default: {DEFAULT_THRESHOLD}; the "
        "report can change it)",
    )
    view.add_argument(
        "--image-size",
        type=_image_size,
        default=DEFAULT_MAX_SIDE,
        metavar="PIXELS",
        help=f"longest side of each page picture (default: {DEFAULT_MAX_SIDE}); smaller makes "
        "a smaller file",
    )
    _add_client_options(view)


def _bboxes(text: str) -> list[PageSpan]:
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as error:
            raise argparse.ArgumentTypeError(
                f"cannot read {text[1:]}: {error.strerror or error}"
            ) from None
    try:
        return decode_bboxes(text)
    except GeometryError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _fraction(text: str) -> float:
    value = _number(text, low=0.0, strict=False, what="between 0 and 1")
    if value > 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 1")
    return value


def _image_size(text: str) -> int:
    value = _positive_int(text)
    if value < 100:
        raise argparse.ArgumentTypeError(f"{value} pixels is too small to read; give 100 or more")
    if value > MAX_SIDE_LIMIT:
        raise argparse.ArgumentTypeError(
            f"{value} pixels is more than a page picture can hold (WebP: {MAX_SIDE_LIMIT})"
        )
    return value


def _add_polling_options(ocr: Any) -> None:
    """The client's PollPolicy settings, with its defaults."""
    default = PollPolicy()
    polling = ocr.add_argument_group(
        "polling",
        "How often to ask whether a job is done (the client's PollPolicy). A local server "
        "that offers a long poll answers the moment a job completes: the schedule options "
        "then do not matter, only --job-timeout does.",
    )
    polling.add_argument(
        "--job-timeout",
        type=_positive_float,
        default=default.timeout,
        metavar="SECONDS",
        help=f"give up on a job this long after its submit (default: {default.timeout:g}); "
        "it can be collected later from the result cache's ledger by running again",
    )
    polling.add_argument(
        "--fixed-polling",
        action="store_true",
        help="poll on the fixed schedule below instead of learning how long jobs take",
    )
    polling.add_argument(
        "--poll-initial",
        type=_non_negative_float,
        default=default.initial_delay,
        metavar="SECONDS",
        help=f"first check this long after the submit (default: {default.initial_delay:g})",
    )
    polling.add_argument(
        "--poll-multiplier",
        type=_at_least_one,
        default=default.multiplier,
        metavar="X",
        help=f"each gap between checks X times the last (default: {default.multiplier:g})",
    )
    polling.add_argument(
        "--poll-max-delay",
        type=_non_negative_float,
        default=default.max_delay,
        metavar="SECONDS",
        help=f"longest gap between checks (default: {default.max_delay:g})",
    )


def _polling(args: argparse.Namespace) -> PollPolicy:
    return PollPolicy(
        initial_delay=args.poll_initial,
        multiplier=args.poll_multiplier,
        max_delay=args.poll_max_delay,
        timeout=args.job_timeout,
        adaptive=not args.fixed_polling,
    )


def _number(text: str, *, low: float, strict: bool, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < low or (strict and value == low):
        raise argparse.ArgumentTypeError(f"{text!r} must be {what}")
    return value


def _positive_float(text: str) -> float:
    return _number(text, low=0.0, strict=True, what="more than 0")


def _non_negative_float(text: str) -> float:
    return _number(text, low=0.0, strict=False, what="0 or more")


def _at_least_one(text: str) -> float:
    return _number(text, low=1.0, strict=False, what="1 or more")


def _add_serve_command(commands: Any) -> None:
    description = "Run the local Datalab-compatible OCR server in the foreground."
    try:
        from .server import add_serve_arguments
    except ImportError:
        # The server is an extra: without it the command exists but explains how to get it.
        commands.add_parser("serve", help="run the local OCR server", description=description)
        return
    serve = commands.add_parser("serve", help="run the local OCR server", description=description)
    add_serve_arguments(serve)


def _page_range(text: str) -> str:
    try:
        parse_page_range(text)
    except InvalidInputError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, not {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``datalab-ocr`` with ``argv`` (default: the process's arguments); return its exit
    code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, --version and usage errors; tests call main() in-process
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    try:
        if args.command == "ocr":
            return _ocr(args)
        if args.command == "view":
            return _view(args)
        if args.command == "serve":
            return _serve(args)
        return _cache(args)
    except UsageError as error:
        _note(f"datalab-ocr {args.command}: error: {error}")
        return EXIT_USAGE
    except KeyboardInterrupt:  # before any file was submitted: nothing to resume
        _note("interrupted")
        return EXIT_INTERRUPTED


# -- ocr -------------------------------------------------------------------------------------


def expand_paths(paths: Sequence[str | os.PathLike[str]], pattern: str = "**/*") -> list[Path]:
    """The files to OCR: files as given, directories expanded to their supported files.

    A directory contributes the files matching ``pattern`` whose extension is in
    :data:`SUPPORTED_EXTENSIONS`, sorted, leaving out hidden files and folders. A file named
    outright is taken whatever its extension (the client checks its content and refuses it if
    need be). A file reached twice is taken once. Raises :class:`UsageError` for a path that
    does not exist.
    """
    files: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                candidate
                for candidate in path.glob(pattern)
                if candidate.suffix.lower() in SUPPORTED_EXTENSIONS
                and candidate.is_file()
                and not _hidden(candidate.relative_to(path))
            )
            if not found:
                logger.warning("no supported files in %s (matching %r)", path, pattern)
        elif path.exists():
            found = [path]
        else:
            raise UsageError(f"no such file or directory: {path}")
        for file in found:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                files.append(file)
    return files


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _ocr(args: argparse.Namespace) -> int:
    with _cli_logging(verbose=args.verbose):
        files = expand_paths(args.paths, args.glob)
        if not files:
            raise UsageError("no supported files to OCR in the given paths")
        with _open_output(args.out) as out:
            client = _open_client(args)
            with client:
                return _run_batch(args, client, files, out)


def _open_client(args: argparse.Namespace) -> DatalabClient:
    """The client the options and environment ask for, announcing an embedded server."""
    cache: bool = not args.no_cache
    explicit_service = args.base_url or os.environ.get(BASE_URL_ENV)
    has_key = args.api_key or os.environ.get(API_KEY_ENV)
    local = args.local or not (explicit_service or has_key)
    try:
        polling = _polling(args)
        if local:
            client = DatalabClient(local=True, cache=cache, polling=polling)
        else:
            client = DatalabClient(
                api_key=args.api_key, base_url=args.base_url, cache=cache, polling=polling
            )
    except ConfigurationError as error:
        if local and not args.local and isinstance(error.__cause__, ImportError):
            raise UsageError(
                f"no {API_KEY_ENV} set and the embedded local server is not installed: set "
                f"{API_KEY_ENV} for the hosted API, or pip install 'datalab-ocr[server]'"
            ) from error
        if args.local:
            # The library's message speaks of local=True; the user typed --local.
            raise UsageError(
                "--local needs the local server, which is an extra: "
                "pip install 'datalab-ocr[server]'"
            ) from error
        if str(error).startswith("no API key for "):
            # The library's message speaks of arguments; the user typed options.
            where = str(error)[len("no API key for ") :].split(": pass ", 1)[0]
            raise UsageError(
                f"no API key for {where}: pass --api-key or set {API_KEY_ENV}; to run without "
                f"a key, use --local (an embedded local OCR server) or point --base-url / "
                f"{BASE_URL_ENV} at your own server"
            ) from error
        raise UsageError(str(error)) from error
    args.embedded = local  # what becomes of unfinished jobs depends on it (_resume_hint)
    if local:
        # Files go to a different place than the user may expect: always say so.
        reason = "--local" if args.local else f"no {API_KEY_ENV} set"
        _note(f"{reason}: using the embedded local OCR server at {client.base_url}")
    return client


def _run_batch(
    args: argparse.Namespace, client: DatalabClient, files: list[Path], out: IO[str] | None
) -> int:
    show_progress = not args.quiet and sys.stderr.isatty()
    # The CLI always collects failures and applies --errors itself: every failure can then be
    # named with its reason in the final summary, whatever the policy.
    items = client.iter_batch(
        files,
        concurrency=args.concurrency,
        errors="collect",
        show_progress=show_progress,
        max_pages=args.max_pages,
        page_range=args.page_range,
        skip_cache=args.skip_cache,
    )
    failures: list[BatchItem] = []
    done = 0
    stopped_early = False
    pending_before = _pending_jobs(client)
    try:
        for item in items:
            done += 1
            source = str(files[item.index])
            if item.ok:
                _emit_success(out, source, item, quiet=args.quiet, full=args.full)
                continue
            failures.append(item)
            if out is not None and args.errors != "skip":
                _write_line(out, _error_record(source, item, client, embedded=args.embedded))
            elif out is None and not args.quiet:
                _say(f"FAILED  {source}: {_reason(item, client, embedded=args.embedded)}")
            if args.errors == "raise":
                stopped_early = True
                break
    except KeyboardInterrupt:
        # Workers may still be recording a job whose answer was arriving: the generic hint.
        _interrupted(client, done, len(files), embedded=args.embedded)
        return EXIT_INTERRUPTED
    finally:
        items.close()  # stops the workers of an abandoned batch at once
    left = _left_running(client, pending_before) if stopped_early else 0
    return _report(
        files, failures, done, stopped_early, client, left, quiet=args.quiet, embedded=args.embedded
    )


def _emit_success(
    out: IO[str] | None, source: str, item: BatchItem, *, quiet: bool, full: bool
) -> None:
    result = item.result
    assert result is not None
    if out is not None:
        _write_line(out, _success_record(source, item, full=full))
    elif not quiet:
        pages = len(result.pages)
        cached = "  (from cache)" if item.from_cache else ""
        _say(
            f"ok      {source}: {counted(pages, 'page')}, "
            f"{len(result.text)} characters, request {result.request_id}{cached}"
        )


def _success_record(source: str, item: BatchItem, *, full: bool = False) -> dict[str, Any]:
    """One JSON line for a file that was OCRed; with ``full``, the whole result too."""
    result = item.result
    assert result is not None
    record = {
        "source": source,
        "request_id": result.request_id,
        "page_count": result.page_count if result.page_count is not None else len(result.pages),
        "pages": [
            {
                "page_index": page.page_index,
                "page": page.page,
                "text": page.text,
                "mean_confidence": page.mean_confidence,
            }
            for page in result.pages
        ],
        "versions": result.versions,
        "from_cache": item.from_cache,
    }
    if full:
        record["result"] = result.model_dump(mode="json", exclude_none=True)
    return record


def _error_record(
    source: str, item: BatchItem, client: DatalabClient, *, embedded: bool
) -> dict[str, Any]:
    """One JSON line for a file that failed."""
    error = item.error
    assert error is not None
    return {
        "source": source,
        "error": {
            "type": type(error).__name__,
            "message": _message(error, client, embedded=embedded),
            "request_id": error.request_id,
        },
    }


def _reason(item: BatchItem, client: DatalabClient, *, embedded: bool) -> str:
    error = item.error
    assert error is not None
    request = f" (request {error.request_id})" if error.request_id else ""
    return f"{type(error).__name__}: {_message(error, client, embedded=embedded)}{request}"


def _message(error: DatalabError, client: DatalabClient, *, embedded: bool) -> str:
    if isinstance(error, JobTimeoutError):
        # The library's message speaks of wait(); the user can only run the command again.
        return _timeout_message(client, embedded=embedded)
    return error.message


def _timeout_message(client: DatalabClient, *, embedded: bool) -> str:
    limit = client.polling.timeout
    within = f"within the job deadline of {limit:g} s (--job-timeout)" if limit else "in time"
    if embedded:
        then = "the embedded local server stops with this command, so the next run OCRs it again"
    elif client.cache is None:
        then = "it may still finish, but the result cache is off, so the next run submits it again"
    else:
        then = (
            "it may still finish: run the same command again within the hour to collect it "
            "from the result cache without paying again (a longer --job-timeout waits for it)"
        )
    return f"the job did not complete {within}; {then}"


def _write_line(out: IO[str], record: dict[str, Any]) -> None:
    out.write(json.dumps(record, ensure_ascii=False) + "\n")
    out.flush()  # a line per completed file, readable while the batch runs


def _report(
    files: list[Path],
    failures: list[BatchItem],
    done: int,
    stopped_early: bool,
    client: DatalabClient,
    left_running: int | None,
    *,
    quiet: bool,
    embedded: bool,
) -> int:
    total = len(files)
    if stopped_early:
        hint = _resume_hint(client, left_running, embedded=embedded)
        left = total - done
        _note(
            f"stopped at the first failure (--errors raise): {left} of {counted(total, 'file')} "
            f"{'was' if left == 1 else 'were'} not finished.{' ' + hint if hint else ''}"
        )
    if not failures:
        if not quiet:
            _note(f"{counted(done, 'file')} OCRed, none failed")
        return EXIT_OK
    _note(f"{len(failures)} of {counted(total, 'file')} failed:")
    for item in failures:
        _note(f"  {files[item.index]}: {_reason(item, client, embedded=embedded)}")
    return EXIT_FAILED


def _interrupted(client: DatalabClient, done: int, total: int, *, embedded: bool) -> None:
    hint = _resume_hint(client, None, embedded=embedded)
    _note(f"interrupted: {done} of {counted(total, 'file')} finished. {hint}")


def _pending_jobs(client: DatalabClient) -> int:
    return client.cache.stats().pending_jobs if client.cache is not None else 0


def _left_running(client: DatalabClient, pending_before: int) -> int | None:
    """Jobs this run submitted and left unfinished (what the ledger gained), or None when
    there is no ledger to tell."""
    if client.cache is None:
        return None
    return max(0, _pending_jobs(client) - pending_before)


def _resume_hint(client: DatalabClient, left_running: int | None, *, embedded: bool) -> str:
    """What becomes of the jobs left running (``None``: not known); nothing when none was
    submitted."""
    if left_running == 0:
        return ""
    if embedded:
        # The embedded server stops with this command, and its unfinished jobs with it.
        return (
            "The embedded local server stops with this command, so files it had not finished "
            "are OCRed again by the next run; finished ones are answered from the result cache."
            if client.cache is not None
            else "The embedded local server stops with this command: the next run starts over."
        )
    if client.cache is None:
        return (
            "The result cache is off, so any job already submitted will not be resumed: the "
            "next run submits those files again."
        )
    if left_running is None:
        return (
            f"Jobs already submitted are recorded in the result cache ({client.cache.path}) "
            "and will be resumed, not paid for again, when the same command runs again "
            "within the hour."
        )
    jobs = counted(left_running, "job")
    return (
        f"{jobs} already submitted {'is' if left_running == 1 else 'are'} recorded in the "
        f"result cache ({client.cache.path}) and will be resumed, not paid for again, when "
        "the same command runs again within the hour."
    )


@contextmanager
def _open_output(path: str | None) -> Iterator[IO[str] | None]:
    if path is None:
        yield None
        return
    if path == "-":
        yield sys.stdout
        return
    try:
        stream = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror or error}") from error
    with stream:
        yield stream


# -- view ------------------------------------------------------------------------------------


def _view(args: argparse.Namespace) -> int:
    with _cli_logging(verbose=args.verbose):
        files = expand_paths(args.paths, args.glob)
        if not files:
            raise UsageError("no supported files to view in the given paths")
        if args.highlight is not None and len(files) != 1:
            raise UsageError(
                f"--highlight draws one chunk's citation on one document, and "
                f"{len(files)} files were given: give the one the chunk came from"
            )
        try:
            require_libraries()
        except ImportError as error:
            raise UsageError(str(error)) from error
        target = Path(args.out)
        if not target.parent.is_dir():
            raise UsageError(f"cannot write {target}: no folder {target.parent}")
        failures: list[tuple[str, str]] = []
        documents: list[tuple[OCRResult, Path]] | None
        if args.results:
            documents = _saved_results(Path(args.results), files, failures)
        else:
            with _open_client(args) as client:
                documents = _collect(args, client, files, failures)
            if documents is None:
                return EXIT_INTERRUPTED
        if not documents:
            _note("nothing to show: every file failed")
            return EXIT_FAILED
        pages = sum(len(result.pages) for result, _ in documents)
        if not args.quiet:
            _note(f"rendering {counted(pages, 'page')} of {counted(len(documents), 'file')}...")
        try:
            write_report(
                documents,
                target,
                highlight=args.highlight,
                threshold=args.threshold,
                max_side=args.image_size,
                failures=failures,
            )
        except PageImageError as error:
            _note(f"datalab-ocr view: cannot show {error}")
            return EXIT_FAILED
        except OSError as error:
            raise UsageError(f"cannot write {target}: {error.strerror or error}") from error
        _note(f"wrote {target} ({_size(target.stat().st_size)}): {counted(pages, 'page')}")
        return EXIT_FAILED if failures else EXIT_OK


def _collect(
    args: argparse.Namespace,
    client: DatalabClient,
    files: list[Path],
    failures: list[tuple[str, str]],
) -> list[tuple[OCRResult, Path]] | None:
    """OCR ``files`` as ``ocr`` does (result cache included); the results in input order,
    failures appended to ``failures``; None when interrupted."""
    items = client.iter_batch(
        files,
        concurrency=args.concurrency,
        errors="collect",
        show_progress=not args.quiet and sys.stderr.isatty(),
        max_pages=args.max_pages,
        page_range=args.page_range,
        skip_cache=args.skip_cache,
    )
    results: dict[int, OCRResult] = {}
    done = 0
    try:
        for item in items:
            done += 1
            if item.result is not None:
                results[item.index] = item.result
            else:
                reason = _reason(item, client, embedded=args.embedded)
                failures.append((str(files[item.index]), reason))
                _note(f"FAILED  {files[item.index]}: {reason}")
    except KeyboardInterrupt:
        _interrupted(client, done, len(files), embedded=args.embedded)
        return None
    finally:
        items.close()
    return [(results[i], files[i]) for i in sorted(results)]


def _saved_results(
    path: Path, files: list[Path], failures: list[tuple[str, str]]
) -> list[tuple[OCRResult, Path]]:
    """The results ``path`` holds for ``files``: JSON lines written by ``ocr --full --out``,
    or one OCRResult as JSON (``result.model_dump_json()``) for a single file. Files it
    records as failed are appended to ``failures``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read --results {path}: {error}") from error
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, dict) and "source" not in whole:
        if len(files) != 1:
            raise UsageError(
                f"{path} holds one result, and {len(files)} files were given: give the one "
                "it was made from"
            )
        return [(_result(whole, path, files[0]), files[0])]
    records = [whole] if isinstance(whole, dict) else _json_lines(text, path)
    by_path = {Path(str(r.get("source"))).resolve(): r for r in records}
    shown: list[tuple[OCRResult, Path]] = []
    for file in files:
        record = by_path.get(file.resolve())
        if record is None:
            named = [r for r in records if Path(str(r.get("source"))).name == file.name]
            record = named[0] if len(named) == 1 else None
        if record is None:
            raise UsageError(
                f"{path} has no result for {file} (it has {len(records)} records, matched by "
                "their 'source'): OCR it with 'datalab-ocr ocr --full --out', or leave out "
                "--results to OCR it now"
            )
        if "error" in record:
            recorded = record["error"] if isinstance(record["error"], dict) else {}
            reason = f"{recorded.get('type', 'error')}: {recorded.get('message', record['error'])}"
            failures.append((str(file), reason))
            _note(f"FAILED  {file}: {reason} (as recorded in {path})")
            continue
        if "result" not in record:
            raise UsageError(
                f"{path} was written without --full: it has the text of {file} but not its "
                f"line boxes. Write it again with 'datalab-ocr ocr --full --out {path} ...' "
                "(answered from the result cache), or leave out --results"
            )
        shown.append((_result(record["result"], path, file), file))
    return shown


def _json_lines(text: str, path: Path) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise UsageError(f"{path}, line {number}: not JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise UsageError(f"{path}, line {number}: not a JSON object")
        records.append(record)
    return records


def _result(data: Any, path: Path, file: Path) -> OCRResult:
    try:
        result = OCRResult.model_validate(data)
    except ValidationError as error:
        raise UsageError(f"{path}: the result for {file} is not an OCR result ({error})") from None
    for position, page in enumerate(result.pages):
        if page.page_index is None:
            page.page_index = position
    return result


# -- serve and cache -------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    try:
        from .server import run_serve
    except ImportError as error:
        raise UsageError(
            f"the local server is an extra: pip install 'datalab-ocr[server]' ({error})"
        ) from error
    try:
        return run_serve(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _cache(args: argparse.Namespace) -> int:
    path = ResultCache.default_path()
    off = os.environ.get(_CACHE_ENV, "").strip().lower() in _CACHE_OFF
    if args.cache_command == "info":
        _say(f"path:          {path}")
        if off:
            _say(f"note:          caching is off ({_CACHE_ENV}={os.environ[_CACHE_ENV]})")
        if not path.exists():
            # Looking must not create the file.
            _say("results:       0\npending jobs:  0\nsize:          0 B (no cache file yet)")
            return EXIT_OK
        with ResultCache(path) as cache:
            stats = cache.stats()
        _say(f"results:       {stats.results}")
        _say(f"pending jobs:  {stats.pending_jobs}")
        _say(f"size:          {_size(stats.bytes_on_disk)}")
        return EXIT_OK
    if not path.exists():
        _say(f"nothing to clear: no cache file at {path}")
        return EXIT_OK
    with ResultCache(path) as cache:
        pending = cache.stats().pending_jobs
        removed = cache.clear()
    _say(f"removed {removed} results and {pending} pending jobs from {path}")
    return EXIT_OK


def _size(count: int) -> str:
    size = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


# -- printing and logging ----------------------------------------------------------------------


def _say(line: str) -> None:
    """A line of output on stdout, printed above the progress bar rather than through it."""
    tqdm.write(line, file=sys.stdout)


def _note(line: str) -> None:
    """A line for the user on stderr (notices, failures), above the progress bar."""
    tqdm.write(line, file=sys.stderr)


class _StderrHandler(logging.Handler):
    """Log records on the current stderr, above any progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            _note(self.format(record))
        except Exception:
            self.handleError(record)


def _not_a_failure_report(record: logging.LogRecord) -> bool:
    # The batch logs every failed file; the CLI reports failures itself (a line per file and
    # a summary), so these records would only say it twice.
    return record.funcName != "report_failure"


@contextmanager
def _cli_logging(*, verbose: bool) -> Iterator[None]:
    """Show the library's warnings (and with ``verbose`` its INFO lines) for one command."""
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("datalab-ocr: %(message)s"))
    handler.addFilter(_not_a_failure_report)
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


if __name__ == "__main__":
    raise SystemExit(main())
