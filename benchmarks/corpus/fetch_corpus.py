"""Download the evaluation corpus named in ``manifest.json`` into ``benchmarks/corpus/cache/``.

Every file is pinned by repository commit and sha256; a file whose checksum differs is
refused. Sources, tried in order for each file:

1. the cache itself (a file already there with the right checksum is kept);
2. a local mirror of the repository: a bare git directory at
   ``MIRROR/<owner>+<name>/repo`` (``--mirror``, default ``$DATALAB_CORPUS_MIRROR`` or
   ``/work/.mirror``), read with ``git show COMMIT:PATH``;
3. with ``--online`` only, the repository's raw file at that commit over HTTPS.

A file no source can give is skipped with a line saying so; the script then exits 0 unless
``--strict``, so the benchmark runs on whatever part of the corpus could be had.

    python benchmarks/corpus/fetch_corpus.py [--online] [--strict]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "manifest.json"
CACHE = HERE / "cache"
RAW_URL = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"


def cache_name(repo: str, path: str) -> str:
    """The file name a corpus entry gets in the cache: unique, readable, flat."""
    owner_name = repo.replace("/", "+")
    return f"{owner_name}__{path.replace('/', '__')}"


def _from_mirror(mirror: Path, repo: str, commit: str, path: str) -> bytes | None:
    git_dir = mirror / repo.replace("/", "+") / "repo"
    if not git_dir.is_dir():
        return None
    done = subprocess.run(
        ["git", f"--git-dir={git_dir}", "show", f"{commit}:{path}"],
        capture_output=True,
        check=False,
    )
    return done.stdout if done.returncode == 0 else None


def _from_web(repo: str, commit: str, path: str) -> bytes | None:
    try:
        response = httpx.get(RAW_URL.format(repo=repo, commit=commit, path=path), timeout=30.0)
    except httpx.HTTPError:
        return None
    return response.content if response.status_code == 200 else None


def fetch(mirror: Path, *, online: bool) -> tuple[int, int, list[str]]:
    """Fill the cache; (files present, files fetched now, messages about skipped files)."""
    manifest = json.loads(MANIFEST.read_text())
    commits = {repo: entry["commit"] for repo, entry in manifest["repositories"].items()}
    CACHE.mkdir(exist_ok=True)
    present = fetched = 0
    skipped: list[str] = []
    for entry in manifest["files"]:
        repo, path, expected = entry["repo"], entry["path"], entry["sha256"]
        target = CACHE / cache_name(repo, path)
        if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == expected:
            present += 1
            continue
        data = _from_mirror(mirror, repo, commits[repo], path)
        if data is None and online:
            data = _from_web(repo, commits[repo], path)
        if data is None:
            hint = "" if online else " (try --online)"
            skipped.append(f"skipped {repo}:{path}: not in a mirror under {mirror}{hint}")
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest != expected:
            skipped.append(f"refused {repo}:{path}: sha256 {digest}, expected {expected}")
            continue
        target.write_bytes(data)
        present += 1
        fetched += 1
    return present, fetched, skipped


def main() -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_mirror = Path(os.environ.get("DATALAB_CORPUS_MIRROR", "/work/.mirror"))
    parser.add_argument("--mirror", type=Path, default=default_mirror)
    parser.add_argument("--online", action="store_true", help="also download what no mirror has")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any file is missing")
    args = parser.parse_args()
    present, fetched, skipped = fetch(args.mirror, online=args.online)
    for line in skipped:
        print(line)
    total = present + len(skipped)
    print(f"corpus: {present}/{total} files in {CACHE}", end=" ")
    print(f"({fetched} fetched now, {len(skipped)} skipped)")
    return 1 if args.strict and skipped else 0


if __name__ == "__main__":
    sys.exit(main())
