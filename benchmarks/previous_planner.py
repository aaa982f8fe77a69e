"""The poll planner as it was before issue 10, loaded from git history as a measured baseline.

Not shipped and not imported by the library: the benchmarks read ``src/datalab_ocr/_planner.py``
at :data:`BASELINE_COMMIT` with ``git show`` and run it beside today's planner, so the
figures of the old behaviour come from the same run as the new ones. Without git or the
history (a source archive), :func:`previous_planner` returns None and the contender is
skipped with a note.
"""

from __future__ import annotations

import random
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

from datalab_ocr import PollPolicy

BASELINE_COMMIT = "17df664"
"""The last commit before the planner was reworked for mixed workloads."""

ROOT = Path(__file__).resolve().parent.parent


def _load() -> types.ModuleType | None:
    try:
        source = subprocess.run(
            ["git", "show", f"{BASELINE_COMMIT}:src/datalab_ocr/_planner.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    source = source.replace("from ._policies import", "from datalab_ocr._policies import")
    module = types.ModuleType("previous_planner_source")
    # Its dataclasses look their module up by name while being defined.
    sys.modules[module.__name__] = module
    exec(compile(source, f"{BASELINE_COMMIT}:_planner.py", "exec"), module.__dict__)
    return module


_MODULE = _load()


def previous_planner(policy: PollPolicy) -> Any | None:
    """The old planner for ``policy``, speaking today's interface; None without git."""
    if _MODULE is None:
        return None
    base: Any = _MODULE.PollPlanner

    class Previous(base):  # type: ignore[misc]
        """Today's flow passes ``scarce`` and ``elapsed``, which the old planner did not know."""

        def next_poll(
            self, job: Any, rng: random.Random, *, throttled: bool = False, **_: Any
        ) -> float:
            result: float = super().next_poll(job, rng, throttled=throttled)
            return result

    return Previous(policy)
