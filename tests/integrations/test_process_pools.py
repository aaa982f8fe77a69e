"""The reader inside a process pool, as ``SimpleDirectoryReader(...).load_data(num_workers=2)``
runs it: every file comes back, and the pool's end leaves nothing behind to warn about."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("llama_index.core")

from datalab_ocr.server import LocalServer, ServerConfig

SCRIPT = """
import sys
from llama_index.core import SimpleDirectoryReader
from datalab_ocr.llama_index import DatalabOCRReader

if __name__ == "__main__":
    reader = DatalabOCRReader(base_url=sys.argv[2])  # the key comes from DATALAB_API_KEY
    docs = SimpleDirectoryReader(sys.argv[1], file_extractor={".pdf": reader}).load_data(
        num_workers=2
    )
    print(sorted(doc.metadata["file_name"] for doc in docs))
"""


def test_simple_directory_reader_workers_return_every_file_and_leak_nothing(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("a.pdf", "b.pdf", "c.pdf"):
        (folder / name).write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Page >> endobj\n%%EOF\n")
    script = tmp_path / "ingest.py"
    script.write_text(SCRIPT)
    with LocalServer(ServerConfig(engine="none", api_key="pool-key")) as server:
        run = subprocess.run(
            [sys.executable, str(script), str(folder), server.base_url],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "DATALAB_API_KEY": "pool-key"},
        )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "['a.pdf', 'b.pdf', 'c.pdf']"
    assert "leaked" not in run.stderr  # a multiprocessing lock left by a killed worker
    assert "Traceback" not in run.stderr
