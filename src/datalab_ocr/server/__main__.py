"""``python -m datalab_ocr.server``: run the local Datalab-compatible OCR server."""

from __future__ import annotations

import argparse
import logging

from datalab_ocr.server.cli import add_serve_arguments, run_serve


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and serve until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m datalab_ocr.server",
        description="A local server speaking the Datalab OCR API (POST /api/v1/ocr).",
    )
    args = add_serve_arguments(parser).parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    return run_serve(args)


if __name__ == "__main__":
    raise SystemExit(main())
