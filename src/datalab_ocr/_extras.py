"""Importing an optional framework with an error that says which extra to install."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["require_extra"]


@contextmanager
def require_extra(module: str, extra: str, package: str, framework: str) -> Iterator[None]:
    """Turn a missing ``package`` inside the block into an ImportError naming ``extra``.

    ``module`` is the importing module, ``framework`` the name users know the package by.

    Only the framework's own absence is translated: an import error from inside an installed
    framework (a broken or mismatched install) goes on unchanged, since the advice to install
    the extra would not fix it.
    """
    try:
        yield
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if missing != package and not missing.startswith(package + "."):
            raise
        raise ModuleNotFoundError(
            f"{module} needs {framework}, which is not installed: "
            f"pip install 'datalab-ocr[{extra}]' (or 'datalab-ocr[all]')",
            name=missing,
        ) from error
