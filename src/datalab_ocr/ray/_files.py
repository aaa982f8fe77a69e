"""Files in, results out: listing inputs on any filesystem, and the resumable result store.

Inputs are named as ``ray.data.read_binary_files`` names them (files, directories, ``s3://``
and other URIs, a pyarrow or fsspec filesystem) plus glob patterns. Listing runs on the
driver and yields paths only: a worker opens its own file, streams it to a private temporary
file while hashing it, and uploads from disk, so no process holds a whole large file in
memory.

The result store keeps each finished unit of work (a file in hosted mode, a chunk of pages
in local mode) as one Parquet file named by the content hash and the options, written under
a temporary name and renamed when complete: a re-run finds what is done, and a worker killed
mid-write leaves nothing that looks done.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from datalab_ocr._exceptions import InvalidInputError
from datalab_ocr._inputs import SUPPORTED_KINDS

from ._rows import ROW_SCHEMA

__all__ = ["LocalCopy", "ResultStore", "as_filesystem", "list_files", "local_copy"]

SUPPORTED_SUFFIXES = frozenset(suffix for kind in SUPPORTED_KINDS for suffix in kind.extensions)
_GLOB_CHARS = frozenset("*?[")
_COPY_CHUNK = 1024 * 1024


def as_filesystem(filesystem: Any) -> pafs.FileSystem | None:
    """A pyarrow filesystem from a pyarrow or fsspec one (or None)."""
    if filesystem is None or isinstance(filesystem, pafs.FileSystem):
        return filesystem
    return pafs.PyFileSystem(pafs.FSSpecHandler(filesystem))


def _resolve(path: str, filesystem: pafs.FileSystem | None) -> tuple[pafs.FileSystem, str]:
    if filesystem is not None:
        return filesystem, path
    if "://" in path:
        found: tuple[pafs.FileSystem, str] = pafs.FileSystem.from_uri(path)
        return found
    return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(path))


def _supported(path: str) -> bool:
    return Path(path).suffix.lower() in SUPPORTED_SUFFIXES


def _expand(path: str, filesystem: pafs.FileSystem) -> list[str]:
    if _GLOB_CHARS & set(path):
        # The longest part without a wildcard is listed, then matched against the pattern.
        parts = path.split("/")
        stop = next(i for i, part in enumerate(parts) if _GLOB_CHARS & set(part))
        base = "/".join(parts[:stop]) or "/"
        selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
        infos = filesystem.get_file_info(selector)
        return sorted(
            info.path
            for info in infos
            if info.type == pafs.FileType.File and fnmatch.fnmatchcase(info.path, path)
        )
    info = filesystem.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        raise InvalidInputError(f"{path} does not exist: check the path", filename=path)
    if info.type == pafs.FileType.Directory:
        infos = filesystem.get_file_info(pafs.FileSelector(path, recursive=True))
        return sorted(
            entry.path
            for entry in infos
            if entry.type == pafs.FileType.File and _supported(entry.path)
        )
    return [path]


def list_files(
    paths: str | Sequence[str], filesystem: Any = None
) -> tuple[list[str], pafs.FileSystem]:
    """Every file named by ``paths`` (directories: the supported types, recursively).

    Raises :class:`InvalidInputError` for a missing path or when nothing is found, before
    any work starts.
    """
    given = [paths] if isinstance(paths, str) else [str(path) for path in paths]
    arrow_fs = as_filesystem(filesystem)
    found: list[str] = []
    resolved_fs: pafs.FileSystem | None = arrow_fs
    for path in given:
        fs, resolved = _resolve(path, arrow_fs)
        resolved_fs = fs
        found.extend(_expand(resolved, fs))
    if not found or resolved_fs is None:
        shown = ", ".join(given) or "(no paths)"
        raise InvalidInputError(
            f"no files to OCR in {shown}: give PDFs, images or Office files, "
            "or directories holding them",
            filename=shown,
        )
    return found, resolved_fs


@dataclass
class LocalCopy:
    """A file on this machine's disk: the original when it is local, else a private copy."""

    path: str
    sha256: str
    owned: bool

    def discard(self) -> None:
        """Delete the private copy, if one was made."""
        if self.owned:
            shutil.rmtree(os.path.dirname(self.path), ignore_errors=True)


def local_copy(
    path: str, filesystem: pafs.FileSystem | None, data: bytes | None = None
) -> LocalCopy:
    """``path`` on local disk, hashed on the way; ``data`` when the caller already has it.

    Without a ``filesystem``, a URI's own filesystem is used, else the local disk.
    """
    digest = hashlib.sha256()
    if filesystem is None:
        filesystem, path = _resolve(path, None)
    if data is None and isinstance(filesystem, pafs.LocalFileSystem):
        with open(path, "rb") as stream:
            while chunk := stream.read(_COPY_CHUNK):
                digest.update(chunk)
        return LocalCopy(path, digest.hexdigest(), owned=False)
    folder = tempfile.mkdtemp(prefix="datalab-ocr-ray-")
    target = os.path.join(folder, os.path.basename(path) or "upload")
    try:
        with open(target, "wb") as out:
            if data is not None:
                digest.update(data)
                out.write(data)
            else:
                with filesystem.open_input_stream(path) as stream:
                    while chunk := stream.read(_COPY_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return LocalCopy(target, digest.hexdigest(), owned=True)


class ResultStore:
    """Finished work as Parquet files under ``location``, one per key."""

    def __init__(self, location: str, filesystem: Any = None) -> None:
        self.location = location
        self._filesystem = as_filesystem(filesystem)
        self._fs: pafs.FileSystem | None = None
        self._root = ""

    def _open(self) -> tuple[pafs.FileSystem, str]:
        if self._fs is None:
            self._fs, self._root = _resolve(self.location, self._filesystem)
            self._fs.create_dir(self._root, recursive=True)
        return self._fs, self._root

    def exists(self, key: str) -> bool:
        """Whether the work stored under ``key`` is done."""
        fs, root = self._open()
        return bool(fs.get_file_info(f"{root}/{key}.parquet").type == pafs.FileType.File)

    def get(self, key: str) -> list[dict[str, Any]] | None:
        """The rows stored under ``key``, or None when that work is not done."""
        fs, root = self._open()
        path = f"{root}/{key}.parquet"
        if fs.get_file_info(path).type != pafs.FileType.File:
            return None
        return pq.read_table(path, filesystem=fs, schema=ROW_SCHEMA).to_pylist()  # type: ignore[no-any-return]

    def put(self, key: str, rows: list[dict[str, Any]]) -> None:
        """Store ``rows`` under ``key``, all or nothing."""
        fs, root = self._open()
        partial = f"{root}/.partial-{uuid.uuid4().hex}"
        pq.write_table(pa.Table.from_pylist(rows, schema=ROW_SCHEMA), partial, filesystem=fs)
        fs.move(partial, f"{root}/{key}.parquet")

    def __getstate__(self) -> dict[str, Any]:
        return {"location": self.location, "filesystem": self._filesystem}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["location"], state["filesystem"])  # type: ignore[misc]
