"""Peak memory of a running Airflow stack's processes, sampled: per process tree and per task.

A backfill's memory is spread over long-lived processes (scheduler, api-server, workers) and
the short task processes they fork, which ``wait4`` cannot see from here. So a thread samples
every named process's tree with psutil twice a second and keeps, per name, the peak of the
tree's summed PSS, and the largest single PSS of any process forked under it (a task process,
or a worker's pool child). PSS, not RSS: forked processes share their parent's pages, and a
sum of RSS would count those once per process (a LocalExecutor tree of 4 tasks: ~2 GB of RSS).
A process living less than a sampling interval can be missed: the figures are lower bounds,
close for tasks that run for seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType

import psutil

INTERVAL_S = 0.5
MB = 1024 * 1024


class TreeMemory:
    """``with TreeMemory(lambda: {name: pid}) as memory: ...``, then ``memory.peaks()``."""

    def __init__(self, roots: Callable[[], dict[str, int]], interval_s: float = INTERVAL_S):
        self.roots = roots
        self.interval_s = interval_s
        self.tree_peak: dict[str, int] = {}
        self.child_peak: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            for name, pid in self.roots().items():
                self._sample(name, pid)

    def _sample(self, name: str, pid: int) -> None:
        try:
            root = psutil.Process(pid)
            children = root.children(recursive=True)
            own = _pss(root)
        except psutil.Error:
            return
        sizes = []
        for child in children:
            try:
                sizes.append(_pss(child))
            except psutil.Error:
                continue  # ended between the listing and the reading
        self.tree_peak[name] = max(self.tree_peak.get(name, 0), own + sum(sizes))
        if sizes:
            self.child_peak[name] = max(self.child_peak.get(name, 0), max(sizes))

    def peaks(self) -> dict[str, dict[str, float]]:
        """Per process name: ``{"tree_mb", "largest_child_mb"}``, peaks over the sampling."""
        return {
            name: {
                "tree_mb": round(peak / MB),
                "largest_child_mb": round(self.child_peak.get(name, 0) / MB),
            }
            for name, peak in sorted(self.tree_peak.items())
        }


def _pss(process: psutil.Process) -> int:
    """The process's proportional set size (its shared pages divided among their sharers);
    RSS where the platform has no PSS."""
    info = process.memory_full_info()
    return int(getattr(info, "pss", info.rss))
