"""``read_ocr`` and ``ocr_files``: the two entry points, wiring the stages into a Dataset."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import pyarrow as pa
import ray
import ray.data

from datalab_ocr._batch import ErrorPolicy, check_policy
from datalab_ocr._config import resolve_connection
from datalab_ocr._documents import LoadOptions
from datalab_ocr._page_range import PageRange
from datalab_ocr._policies import PollPolicy, RetryPolicy
from datalab_ocr._ratelimit import RateLimiter

from ._files import ResultStore, as_filesystem, list_files
from ._hosted import HostedOCR, HostedSettings
from ._limiter import DEFAULT_LIMITER_NAME, cluster_rate_limit
from ._local import LocalSettings, PageEngine, SplitDocuments
from ._report import OCRProgress

__all__ = ["ocr_files", "read_ocr"]

logger = logging.getLogger(__name__)

_HOSTED_WORKERS = 4


def read_ocr(
    paths: str | Sequence[str] | ray.data.Dataset,
    *,
    local: bool = False,
    api_key: str | None = None,
    base_url: str | None = None,
    max_pages: int | None = None,
    page_range: PageRange | None = None,
    errors: ErrorPolicy = "raise",
    concurrency: int | None = None,
    filesystem: Any = None,
    output: str | None = None,
    output_filesystem: Any = None,
    progress: OCRProgress | None = None,
    **options: Any,
) -> ray.data.Dataset:
    """OCR files on a Ray cluster: a Dataset with one row per page.

    ``paths`` names files as ``ray.data.read_binary_files`` does (files, directories,
    ``s3://...`` URIs, any pyarrow or fsspec ``filesystem``) and also takes glob patterns, or
    is a Dataset with a ``path`` column (and optionally ``bytes``, as made by
    ``read_binary_files(..., include_paths=True)``). Files are listed now, on the driver, and a
    missing path raises :class:`~datalab_ocr.InvalidInputError` before any work starts.

    Rows follow :data:`~datalab_ocr.ray.ROW_SCHEMA`. ``errors``: ``"raise"`` fails the
    dataset on the first failed file; ``"collect"`` gives each failed file one row with
    ``error`` set and no page; ``"skip"`` leaves it out (logged).

    ``local=True`` runs the local engine in an actor pool (``concurrency`` actors, by
    default one per CPU of the cluster), no HTTP; otherwise every worker calls the API
    (``api_key``, else ``DATALAB_API_KEY``; ``base_url``, else ``DATALAB_BASE_URL``) under one
    cluster-wide rate limit. ``output`` (a directory or URI) makes the run resumable: each
    finished file (hosted) or chunk of pages (local) is stored there, keyed by content hash
    and options, and a later run with the same ``output`` reads it back instead of redoing
    it. ``progress`` counts the run (see :class:`OCRProgress`). Further keyword options are
    those of :func:`ocr_files`.
    """
    if isinstance(paths, ray.data.Dataset):
        files = paths
    else:
        found, fs = list_files(paths, filesystem)
        filesystem = fs
        # Small blocks (one file each, up to 10,000 blocks): a task is one block, so a retried
        # task redoes little, and files spread evenly over the workers.
        files = ray.data.from_items(
            [{"path": path} for path in found], override_num_blocks=min(len(found), 10_000)
        )
    return ocr_files(
        files,
        local=local,
        api_key=api_key,
        base_url=base_url,
        max_pages=max_pages,
        page_range=page_range,
        errors=errors,
        concurrency=concurrency,
        filesystem=filesystem,
        output=output,
        output_filesystem=output_filesystem,
        progress=progress,
        **options,
    )


def ocr_files(
    files: ray.data.Dataset,
    *,
    local: bool = False,
    api_key: str | None = None,
    base_url: str | None = None,
    max_pages: int | None = None,
    page_range: PageRange | None = None,
    skip_cache: bool = False,
    errors: ErrorPolicy = "raise",
    concurrency: int | None = None,
    filesystem: Any = None,
    output: str | None = None,
    output_filesystem: Any = None,
    progress: OCRProgress | None = None,
    rate_limit: RateLimiter | Literal[False] | None = None,
    limiter_name: str = DEFAULT_LIMITER_NAME,
    threads: int = 16,
    cache: bool | str = True,
    timeout: float | None = None,
    retry: RetryPolicy | None = None,
    polling: PollPolicy | None = None,
    engine: str = "tesseract",
    chunk_pages: int = 8,
    render_scale: float = 2.0,
) -> ray.data.Dataset:
    """The OCR transform on its own: a Dataset of files (a ``path`` column, optionally
    ``bytes``) to a Dataset of page rows, for pipelines that already have their files.

    Arguments as in :func:`read_ocr`, plus: ``rate_limit`` (hosted mode), the budget every
    worker shares, by default the hosted API's ``RateLimiter(200, 60)``, ``False`` for none;
    ``limiter_name``, the cluster-wide limiter actor (one per API key); ``threads``, files
    in flight per hosted worker; ``cache``, the client result cache on each node (a path on
    the nodes, or ``False``); ``timeout``, ``retry``, ``polling`` as on the client;
    ``engine``, ``chunk_pages`` and ``render_scale`` for local mode. ``filesystem`` is the
    one the paths live on (pyarrow or fsspec); by default each path's own.
    """
    check_policy(errors)
    load = LoadOptions(max_pages=max_pages, page_range=page_range, skip_cache=skip_cache)
    store = None if output is None else ResultStore(output, output_filesystem)
    arrow_fs = as_filesystem(filesystem)
    if arrow_fs is None:
        import pyarrow.fs as pafs

        arrow_fs = pafs.LocalFileSystem()
    progress_name = None if progress is None else progress.name
    if local:
        if api_key is not None or base_url is not None:
            raise ValueError("local=True runs the engine on the cluster: no api_key or base_url")
        settings = LocalSettings(
            engine=engine,
            render_scale=render_scale,
            chunk_pages=chunk_pages,
            options=load,
            errors=errors,
            filesystem=arrow_fs,
            store=store,
            progress=progress_name,
        )
        return _local(files, settings, concurrency)
    connection = resolve_connection(api_key, base_url, local=False)
    limiter_name_or_none = None
    if rate_limit is not False:
        limit = rate_limit if rate_limit is not None else RateLimiter()
        cluster_rate_limit(limit.requests, limit.window, margin=limit.margin, name=limiter_name)
        limiter_name_or_none = limiter_name
    hosted = HostedSettings(
        base_url=str(connection.base_url),
        timeout=timeout,
        retry=retry,
        polling=polling,
        limiter_name=limiter_name_or_none,
        cache=cache,
        threads=threads,
        options=load,
        errors=errors,
        filesystem=arrow_fs,
        store=store,
        progress=progress_name,
    )
    # The key reaches the workers through their environment, never as an argument that
    # Ray would pickle into a task or actor spec.
    runtime_env = None
    if connection.api_key:
        runtime_env = {"env_vars": {"DATALAB_API_KEY": connection.api_key}}
    return files.map_batches(
        HostedOCR,
        fn_constructor_args=(hosted,),
        batch_format="pyarrow",
        batch_size=threads,
        compute=ray.data.ActorPoolStrategy(size=concurrency or _HOSTED_WORKERS),
        # Waiting on the network, not computing: several workers share a CPU.
        num_cpus=0.25,
        runtime_env=runtime_env,
    )


def _split(batch: pa.Table, *, settings: LocalSettings) -> pa.Table:
    # Plain tasks rather than actors: splitting keeps no state worth a process.
    return SplitDocuments(settings)(batch)


def engine_actors(cpus: float, requested: int | None) -> tuple[int, float]:
    """How many engine actors, and CPUs for each, on a cluster with ``cpus`` CPUs.

    One CPU stays free for the split and the re-blocking between the stages: were every CPU
    held by an engine actor, those tasks could never run and the pipeline would stall.
    """
    if cpus < 2:
        return 1, max(0.1, cpus / 2)
    slots = max(1, int(cpus - 1))
    if requested is not None and requested > slots:
        logger.warning(
            "%d engine actors asked for, but a cluster of %g CPUs fits %d beside the split",
            requested,
            cpus,
            slots,
        )
    return min(requested or slots, slots), 1.0


def _local(
    files: ray.data.Dataset, settings: LocalSettings, concurrency: int | None
) -> ray.data.Dataset:
    cpus = float(ray.cluster_resources().get("CPU", 1))  # type: ignore[no-untyped-call]
    actors, cpus_each = engine_actors(cpus, concurrency)
    chunks = files.map_batches(
        _split,  # type: ignore[arg-type]  # fn_kwargs supplies the settings
        fn_kwargs={"settings": settings},
        batch_format="pyarrow",
        batch_size=1,
        num_cpus=0.1,
    )
    # One chunk per block: the engine actors take work a block at a time, and the chunks of
    # one file leave the split as one block, which would keep a long PDF on one actor.
    chunks = chunks.repartition(target_num_rows_per_block=1)
    return chunks.map_batches(
        PageEngine,
        fn_constructor_args=(settings,),
        batch_format="pyarrow",
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=cpus_each,
    )
