"""``python -m datalab_ocr.server``: run the local Datalab-compatible OCR server.

With ``--embedded`` (not for people) it is the child process of
:class:`~datalab_ocr.server.process.ServerProcess` (see ``child``): configuration on stdin,
its address on stdout, and it stops when stdin closes.
"""

from __future__ import annotations

import sys

from datalab_ocr.server.cli import build_serve_parser, run_serve


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and serve until interrupted (or, embedded, until told to)."""
    arguments = sys.argv[1:] if argv is None else argv
    if arguments == ["--embedded"]:
        from datalab_ocr.server.child import run_child

        return run_child()
    prog = "python -m datalab_ocr.server"
    args = build_serve_parser(prog).parse_args(arguments)
    try:
        return run_serve(args, prog)
    except KeyboardInterrupt:  # before serving began; once serving, Ctrl-C is a clean stop
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
