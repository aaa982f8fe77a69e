"""A corpus to vectors on Ray: read_ocr -> chunks -> embeddings -> Parquet.

Run on this machine (local OCR engine, a two-node Ray cluster on 127.0.0.1)::

    python examples/ray_ingest.py --nodes 2

Against the hosted API (``DATALAB_API_KEY`` set) on an existing cluster::

    python examples/ray_ingest.py --hosted --address auto s3://bucket/scans/ --out s3://bucket/vectors/

Needs ``pip install 'datalab-ocr[ray,server,langchain]' langchain-text-splitters``. The
embedding here is a fake one (hashed words, no model to download); swap ``embed`` for a
local model such as a sentence-transformers encoder held by an actor.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback for local nodes

import numpy as np
import pyarrow as pa
import ray
import ray.data
from langchain_text_splitters import RecursiveCharacterTextSplitter

from datalab_ocr.ray import OCRProgress, read_ocr, to_langchain_documents

DATA = Path(__file__).resolve().parent / "data"
DIMENSIONS = 256


def embed(texts: list[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
    """A fake embedding: each word hashed into one of DIMENSIONS buckets, normalized."""
    vectors = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in text.lower().split():
            bucket = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big")
            vectors[row, bucket % DIMENSIONS] += 1.0
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    normalized: np.ndarray[Any, np.dtype[np.float32]] = vectors / np.maximum(norms, 1e-9)
    return normalized


def chunk_and_embed(batch: pa.Table) -> dict[str, Any]:
    """Page rows in, chunk rows out: the LangChain documents of the pages, split and embedded."""
    rows = batch.to_pylist()
    splitter = RecursiveCharacterTextSplitter(chunk_size=400, chunk_overlap=40)
    chunks = splitter.split_documents(to_langchain_documents(rows))
    texts = [chunk.page_content for chunk in chunks]
    return {
        "document_id": [chunk.id or "" for chunk in chunks],
        "source": [chunk.metadata["source"] for chunk in chunks],
        "page": [chunk.metadata.get("page", -1) for chunk in chunks],
        "text": texts,
        "vector": list(embed(texts)) if texts else [],
    }


def start_ray(address: str | None, nodes: int) -> Any:
    """Connect to ``address``, or start ``nodes`` nodes on 127.0.0.1; the local cluster."""
    if address is not None:
        ray.init(address=address)
        return None
    from ray.cluster_utils import Cluster

    node: dict[str, Any] = {"num_cpus": 1, "node_ip_address": "127.0.0.1"}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    for _ in range(nodes - 1):
        cluster.add_node(**node)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    return cluster


def main() -> None:
    """OCR the corpus, chunk and embed it, and write the vectors as Parquet."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=[str(DATA)])
    parser.add_argument("--hosted", action="store_true", help="the hosted API, not local OCR")
    parser.add_argument("--address", help="an existing cluster: auto, or ray://head:10001")
    parser.add_argument("--nodes", type=int, default=2, help="local nodes without --address")
    parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "ocr-vectors"))
    parser.add_argument("--resume", help="where finished files are kept, to resume a run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    cluster = start_ray(args.address, args.nodes)
    try:
        progress = OCRProgress()
        pages = read_ocr(
            args.paths,
            local=not args.hosted,
            errors="collect",
            output=args.resume,
            progress=progress,
        )
        # Failed files (one row each, with "error") make no documents; they are logged.
        vectors = pages.map_batches(chunk_and_embed, batch_format="pyarrow", batch_size=32)
        vectors.write_parquet(args.out)
        print(f"OCR: {progress.report()}")
        written = ray.data.read_parquet(args.out)
        print(f"{written.count()} chunks with {DIMENSIONS}-dim vectors in {args.out}")
        first = written.take(1)[0]
        print(f"e.g. {Path(first['source']).name} page {first['page']}: {first['text'][:60]!r}")
    finally:
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()


if __name__ == "__main__":
    main()
