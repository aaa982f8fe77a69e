"""Word and PowerPoint files to PDF with LibreOffice, when it is installed.

Each conversion gets its own LibreOffice profile directory: two ``soffice`` processes sharing
a profile lock each other out, and the user's own profile must not be touched.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["INSTALL_HINT", "OfficeConversionError", "convert_to_pdf", "find_soffice"]

logger = logging.getLogger(__name__)

INSTALL_HINT = (
    "Word and PowerPoint files need LibreOffice on the server's machine: "
    "apt-get install libreoffice-writer libreoffice-impress (Debian/Ubuntu), "
    "or brew install --cask libreoffice (macOS)"
)


class OfficeConversionError(RuntimeError):
    """LibreOffice is missing, failed, or took longer than the timeout."""


def find_soffice() -> str | None:
    """The path of the LibreOffice command, or None when it is not installed."""
    return shutil.which("soffice") or shutil.which("libreoffice")


def convert_to_pdf(source: Path, out_dir: Path, *, timeout: float) -> Path:
    """Convert ``source`` to a PDF in ``out_dir`` and return its path."""
    soffice = find_soffice()
    if soffice is None:
        raise OfficeConversionError(INSTALL_HINT)
    with tempfile.TemporaryDirectory(prefix="datalab-ocr-lo-") as profile:
        command = [
            soffice,
            f"-env:UserInstallation={Path(profile).as_uri()}",
            "--headless",
            "--norestore",
            "--convert-to",
            "pdf",
            "--outdir",
            str(out_dir),
            str(source),
        ]
        logger.debug("converting %s with LibreOffice", source.name)
        try:
            completed = subprocess.run(  # noqa: S603 - fixed program, paths we created
                command, capture_output=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise OfficeConversionError(
                f"LibreOffice did not convert the file within {timeout:g} s"
            ) from None
    target = out_dir / (source.stem + ".pdf")
    if completed.returncode != 0 or not target.exists():
        message = completed.stderr.decode(errors="replace").strip()[:300]
        raise OfficeConversionError(
            f"LibreOffice could not convert the file (exit {completed.returncode})"
            + (f": {message}" if message else "")
        )
    return target
