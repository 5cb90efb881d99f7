"""One Ray task: rebuild its roots, walk their whole subtrees with the ordinary enumerator, stream
every region into the task's own file, and return the counts (and, when it ran long, its frontier).

The file is written to ``.tmp`` and renamed when the walk ends, so a killed worker leaves nothing
that looks finished; the driver commits the finished file as one segment of the dataset.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from typing import Callable, Optional

import h5py
import numpy as np

from .. import runtime
from ..core.frame import Frame
from ..core.hyperplanes import Propagator
from ..core.rebuild import rebuild_compact
from ..core.state import Regions
from ..core.tree import ResumeState, compact
from ..core.walk import enumerate_regions
from ..datasets.storage import Storage, describe, written
from ..datasets.layout import append_rows, region_rows
from ..errors import WriteError
from ..model.domain import Domain
from ..model.network import Network
from ..settings import Settings
from .ray_runtime import pin_to_a_free_core


@dataclass(frozen=True)
class FaultHooks:
    """Fault injection for tests (a production run passes none). ``task_start()`` runs at the
    start of every task, in its worker process (a test kills the worker there);
    ``task_committed(n)`` runs in the driver after the n-th task is committed (a test interrupts
    the driver there). Both must be picklable by Ray (closures are)."""

    task_start: Optional[Callable[[], None]] = None
    task_committed: Optional[Callable[[int], None]] = None


class TaskRoots:
    """The regions a task starts from: compact regions (:func:`lrenum.core.tree.compact`, rows and
    maps dropped, rebuilt in the task from the patterns) with their proven vertex sets, which
    travel along (else rebuilt by qhull as proposals)."""

    @staticmethod
    def of(regions: Regions) -> Regions:
        return compact(regions)

    @staticmethod
    def to_global(roots: Regions, task_layer: int, offsets: list) -> Regions:
        """A returned frontier renumbered from the task's local ids to global ids, as the driver
        renumbered its rows on commit (the task's own roots, of ``task_layer``, are global)."""
        l = roots.layer
        if l <= task_layer:
            return roots
        ident = roots.ident + offsets[l - 1]
        parent = roots.parent + offsets[l - 2] if l - 1 > task_layer else roots.parent
        return replace(roots, ident=ident, parent=parent)


class TaskFile:
    """The walk's sink inside a task: rows per layer, local ids, buffered in memory and appended to
    an HDF5 file in large pieces (appending every batch to auto-chunked datasets cost a third of a
    task's time). The finished file becomes a segment of the dataset as it is."""

    FLUSH_BYTES = 32 * 2 ** 20      # bounds a task's buffer

    def __init__(self, f: h5py.File, writer_rows: Callable[[int, Regions], dict]):
        self.f = f
        self.rows = writer_rows
        self.buffer: dict = {}
        self.buffered = 0

    def regions(self, layer: int, batch: Regions) -> None:
        rows = self.rows(layer, batch)
        self.buffer.setdefault(layer, []).append(rows)
        self.buffered += sum(a.nbytes for a in rows.values())
        if self.buffered > self.FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        for layer, parts in self.buffer.items():
            for name in parts[0]:
                arr = np.concatenate([p[name] for p in parts])
                key = f"layer_{layer}/{name}"
                if key not in self.f:
                    row_bytes = max(1, arr[:1].nbytes)
                    chunk = (max(1, min(len(arr), 2 ** 20 // row_bytes)),) + arr.shape[1:]
                    self.f.create_dataset(key, data=arr, maxshape=(None,) + arr.shape[1:], chunks=chunk)
                else:
                    append_rows(self.f[key], arr)
        self.buffer.clear()
        self.buffered = 0

    def split_done(self, layer, ident, n_children) -> None:
        pass


def run_task(net: Network, domain: Domain, settings: Settings, roots: Regions, path: str, maps: str,
             hooks: Optional[FaultHooks] = None) -> dict:
    """Walk the subtrees of ``roots`` (compact regions; ``roots.ident`` their global ids) and write
    every region below them to ``path``. Returns the local counts per layer and stats, and, when
    the task stopped after ``settings.task_seconds``, its frontier: ``pending`` as [(layer,
    compact regions)] with ids local to this task file (global for regions of the roots' layer)."""
    t_task, wall_start = time.perf_counter(), time.time()
    pin_to_a_free_core()
    if hooks is not None and hooks.task_start is not None:
        hooks.task_start()
    frame = Frame(net, domain, settings)
    dev = runtime.select_device(settings.device)
    regions = rebuild_compact(frame, Propagator(frame, dev), roots)
    t0 = time.perf_counter()
    limit = settings.task_seconds
    stop = None if limit is None else (lambda: time.perf_counter() - t0 > limit)
    try:
        with written(Storage(), path) as f:
            sink = TaskFile(f, lambda layer, batch: region_rows(net, frame, maps, layer, batch))
            res = enumerate_regions(net, domain, settings, sink=sink,
                                    resume=ResumeState([(roots.layer, regions)], [1] + [0] * net.n_hidden),
                                    should_stop=stop)
            sink.flush()
    except OSError as exc:
        raise WriteError(f"writing a task file in {os.path.dirname(path)}: {describe(exc)}") from None
    return {"counts": res.per_layer, "stats": res.stats.as_dict(), "seconds": res.seconds,
            "task_seconds": time.perf_counter() - t_task, "span": (os.getpid(), wall_start, time.time()),
            "pending": [TaskRoots.of(r) for _, r in res.pending]}
