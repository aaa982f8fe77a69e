"""Ray clusters on loopback for the distributed path, and a rate-limited fault server.

Each test module starts its own cluster once (module scope) and stops it, with every Ray
process, when the module is done: ``single_node`` is ``ray.init`` on this machine,
``three_nodes`` a head and two worker nodes from ``ray.cluster_utils.Cluster``, so named
actors, object transfer and task retries cross real process and node boundaries. Every node
binds 127.0.0.1 (checked with ``ray.nodes()``), and every test is bounded by an alarm.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

# Ray takes the loopback address for every node with this set; it is read when Ray is
# imported, so it comes first.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

pytest.importorskip("ray", reason="the ray extra is not installed")

import ray
import ray.data
from ray.cluster_utils import Cluster

from tests.reliability.fault_server import Fault, FaultServer, status

API_KEY = "dl-ray-test-key-4b9d2e71"
TEST_SECONDS = 90
OBJECT_STORE = 120 * 1024 * 1024
DATA = Path(__file__).resolve().parents[2] / "examples" / "data"

# The workers must never touch the user's result cache, nor find a key of the developer's.
_WORKER_ENV = {"env_vars": {"DATALAB_OCR_CACHE": "off", "DATALAB_API_KEY": ""}}


class _TimeoutError(Exception):
    pass


@pytest.fixture(autouse=True)
def _bounded() -> Iterator[None]:
    """Fail any test of this folder that runs longer than ``TEST_SECONDS``."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise _TimeoutError(f"the test ran longer than {TEST_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TEST_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _quiet() -> None:
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False


def _on_loopback() -> None:
    nodes = ray.nodes()  # type: ignore[no-untyped-call]
    addresses = {node["NodeManagerAddress"] for node in nodes if node["Alive"]}
    assert addresses == {"127.0.0.1"}, addresses


@pytest.fixture(scope="module")
def single_node() -> Iterator[None]:
    """Ray on this machine: one node, two CPUs, on 127.0.0.1."""
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        object_store_memory=OBJECT_STORE,
        runtime_env=_WORKER_ENV,
        log_to_driver=False,
    )
    try:
        _on_loopback()
        _quiet()
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def three_nodes() -> Iterator[Cluster]:
    """A head and two worker nodes, one CPU each, all on 127.0.0.1."""
    node: dict[str, Any] = {
        "num_cpus": 1,
        "object_store_memory": OBJECT_STORE,
        "node_ip_address": "127.0.0.1",
    }
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    try:
        for _ in range(2):
            cluster.add_node(**node)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, runtime_env=_WORKER_ENV, log_to_driver=False)
        try:
            nodes = ray.nodes()  # type: ignore[no-untyped-call]
            assert len([n for n in nodes if n["Alive"]]) == 3
            _on_loopback()
            _quiet()
            yield cluster
        finally:
            ray.shutdown()
    finally:
        cluster.shutdown()  # type: ignore[no-untyped-call]


class RateLimitedServer(FaultServer):
    """The fault server with the hosted API's limit: at most ``requests`` requests (submits
    and polls) in any ``window`` seconds; beyond it, 429 with ``Retry-After``."""

    def __init__(self, requests: int, window: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.limit = (requests, window)
        self._arrivals: deque[float] = deque()

    def reset(self) -> None:
        super().reset()
        self._arrivals.clear()

    def _pick_fault(self, method: str, index: int, request_id: str | None) -> Fault | None:
        requests, window = self.limit
        now = time.monotonic()
        while self._arrivals and self._arrivals[0] <= now - window:
            self._arrivals.popleft()
        if len(self._arrivals) >= requests:
            return status(429, retry_after="1")
        self._arrivals.append(now)
        return super()._pick_fault(method, index, request_id)

    def rate_limited(self) -> int:
        """How many requests were answered 429."""
        return sum(1 for r in self.seen() if r.fault is not None and r.fault.status == 429)


@pytest.fixture(scope="module")
def limited_server() -> Iterator[RateLimitedServer]:
    """A fault server allowing 20 requests per 2 s; reset before each test that uses it."""
    server = RateLimitedServer(20, 2.0)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def scanned_pdf(path: Path, pages: int) -> Path:
    """A PDF of ``pages`` scanned pages (images without a text layer): each needs real OCR."""
    from PIL import Image

    with Image.open(DATA / "scanned-letter.jpg") as scan:
        page = scan.convert("RGB")
    page.save(path, save_all=True, append_images=[page] * (pages - 1), resolution=100)
    return path


def engine_worker_pids(cluster: Cluster) -> list[int]:
    """The engine actors' processes, among the children of this cluster's raylets only."""
    raylets = set()
    for node in cluster.list_all_nodes():  # type: ignore[no-untyped-call]
        for info in node.all_processes.get("raylet", []):
            raylets.add(info.process.pid)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                title = handle.read().decode(errors="replace")
            with open(f"/proc/{entry}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if "PageEngine" in title and parent in raylets:
            found.append(int(entry))
    return found


def kill_when(predicate: Any, target: Any, *, timeout: float = 30.0) -> threading.Thread:
    """Run ``target()`` once ``predicate()`` is true, from a background thread (bounded)."""

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                target()
                return
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread
