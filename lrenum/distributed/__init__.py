"""Enumeration sharded over Ray workers, with the same result as one process.

The driver (:mod:`.driver`) splits the top of the region tree in-process until a layer holds
several times more regions than there are workers (while Ray starts, beside it), commits those
regions, and hands them out as Ray tasks, in a seeded random order and in pieces of decreasing
size (:func:`task_parts`: over-decomposition keeps workers busy although subtrees are very
unequal). A task (:mod:`.task`) rebuilds its roots from their patterns, walks their whole subtrees
with the ordinary enumerator, and streams the rows, numbered locally, into its own task file
(written to ``.tmp`` and renamed, so a killed worker leaves nothing half-written). When a task
finishes, the driver renumbers its rows to global ids and commits them as *one* segment of the
dataset (:class:`lrenum.datasets.writer.RegionWriter`): a subtree is committed whole or not at all.

Work stealing through the driver: a task that has run ``Settings.task_seconds`` stops after its
current split and returns its frontier (regions written but not yet split). Its rows are
committed as usual; the frontier, renumbered to global ids, goes back into the queue as new
tasks, so a few heavy subtrees are spread over all workers instead of idling the rest.
Committed regions without children are exactly what the resume rule redoes, so an interruption
at any point stays safe.

Ray is an optional dependency (``pip install 'lrenum[ray]'``); :mod:`.ray_runtime` is its one door.
"""

from .driver import enumerate_sharded, task_parts
from .estimates import mipbound_sharded, tree_estimate_sharded
from .ray_runtime import fork_safe_blas, ray_module, start_ray, stdout_to_stderr
from .task import FaultHooks, TaskRoots, run_task

__all__ = ["enumerate_sharded", "task_parts", "tree_estimate_sharded", "mipbound_sharded", "fork_safe_blas",
           "ray_module", "start_ray", "stdout_to_stderr", "FaultHooks", "TaskRoots", "run_task"]
