"""The driver of a sharded run: split the top of the tree here, hand subtrees out as Ray tasks,
commit each finished task as one segment, requeue the frontiers of tasks that ran long.

The protocol (docs/format.md, "Sharded runs"): a subtree is committed whole or not at all, so

* a worker killed mid-task: Ray re-runs the task, which rewrites its file; nothing was committed;
* the driver killed: ``--resume --workers N`` finds the roots without committed children (the
  writer's resume rule) and runs only those again.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Optional

import h5py
import numpy as np

from .. import runtime
from ..certify.decide import DecisionStats
from ..core.split import Splitter
from ..core.state import Regions
from ..core.tree import Tree
from ..core.walk import EnumerationResult
from ..datasets.storage import describe, write_error
from ..datasets.writer import RegionWriter
from ..errors import InputError, LrenumError, WorkerError, WriteError
from .ray_runtime import fork_safe_blas, ray_module, share_gpus, start_ray, stdout_to_stderr
from .task import FaultHooks, TaskRoots, run_task


def enumerate_sharded(writer: RegionWriter, *, workers: int, address: Optional[str] = None, progress: bool = False,
                      hooks: Optional[FaultHooks] = None) -> EnumerationResult:
    """Fill ``writer``'s file using Ray workers; the file ends complete and merged. The writer's
    settings go to every task (``task_seconds``: a task running that long hands its frontier
    back as new tasks; None: never)."""
    if workers < 1:
        raise InputError("--workers must be at least 1")
    with stdout_to_stderr():
        return _enumerate_sharded(writer, workers, address, progress, hooks)


def _enumerate_sharded(writer: RegionWriter, workers: int, address: Optional[str], progress: bool,
                       hooks: Optional[FaultHooks]) -> EnumerationResult:
    settings = writer.settings
    t0, t_wall0 = time.perf_counter(), time.time()
    ray = ray_module()
    start_here = not ray.is_initialized()       # a runtime this call starts is also shut down by it
    share_gpus()
    net, domain = writer.net, writer.domain
    stats = DecisionStats()
    counts = [0] * writer.L
    want = workers * settings.tasks_per_worker

    def first_tasks() -> list[Regions]:
        """The roots to hand out: the top of the tree split here, or the pending regions of a resumed file."""
        resume = writer.resume_state()
        if resume is None:
            frontier = _split_top(writer, want, stats, counts)
            return [frontier] if frontier is not None else []
        counts[:] = list(resume.next_id[1:])
        tasks = [TaskRoots.of(regions) for layer, regions in resume.pending if layer > 0]
        if resume.root_given is not None:      # a one-process run stopped while the root's children came in pieces
            frontier = _split_top(writer, want, stats, counts, given=resume.root_given)
            tasks += [frontier] if frontier is not None else []
        return tasks

    # Ray's start (~3 s: its own processes) and the top split (the driver's one core) overlap;
    # ray.init stays in the main thread, where it may install its signal handlers. The first task
    # starts ~1 s after the split: Ray creates its worker processes only at the end of its start
    # and each needs ~2 s to start and import lrenum (a warm-up task per worker, to import lrenum
    # during the top split, measured no faster: 3 runs each, then 0.2 s earlier in one pair)
    with fork_safe_blas() as overlap, ThreadPoolExecutor(1) as top:
        first = top.submit(first_tasks)
        if not overlap:
            first.result()
        t_ray = time.perf_counter()
        try:
            ray = start_ray(workers, address, device=settings.device)
            # on GPUs each task holds one (Ray sets CUDA_VISIBLE_DEVICES for it): one worker per GPU
            on_gpu = (runtime.select_device(settings.device).platform == "gpu"
                      and ray.cluster_resources().get("GPU", 0) >= 1)
            remote = ray.remote(max_retries=settings.task_retries, num_gpus=1 if on_gpu else 0)(run_task)
            net_ref = ray.put(net)
        finally:
            ray_start = time.perf_counter() - t_ray
            pending = first.result()
    # one folder per run: tasks of an interrupted run may still be running (on a cluster they
    # outlive their driver) and must never write over this run's task files
    task_dir = os.path.join(writer.path + ".tasks", uuid.uuid4().hex)
    try:
        os.makedirs(task_dir, exist_ok=True)
    except OSError as exc:
        raise write_error(writer.path, exc, writer.committed_regions) from None
    futures: dict = {}
    submitted = [0]

    def submit(roots: Regions) -> None:
        path = os.path.join(task_dir, f"task_{submitted[0]:06d}.h5")
        futures[remote.remote(net_ref, domain, settings, roots, path, writer.maps, hooks)] = (roots.layer, path)
        submitted[0] += 1

    for roots in pending:
        for part in task_parts(len(roots), workers, settings.tasks_per_worker):
            submit(roots.take(part))
    top_seconds = time.perf_counter() - t0         # top split and Ray's start, side by side
    try:
        tally = _collect(ray, futures, writer, counts, stats, t0, progress, submit, 2 * workers, hooks)
    finally:
        for fut in futures:         # interrupted: stop this run's tasks (their files are discarded)
            ray.cancel(fut, force=True)
    shutil.rmtree(writer.path + ".tasks", ignore_errors=True)
    # Ray's shutdown (~2.5 s, mostly waiting for its processes) runs beside the merge
    closing = threading.Thread(target=ray.shutdown, daemon=True) if start_here else None
    if closing is not None:
        closing.start()
    result = EnumerationResult(regions=counts[-1], per_layer=counts, seconds=time.perf_counter() - t0,
                               device=(f"ray:{workers} workers" if not address else f"ray:{address}")
                               + (" (one GPU each)" if on_gpu else ""), stats=stats)
    # what experiments/NOTES-scale.md models: the driver's share of the work
    result.extra.update({"tasks": submitted[0], "tasks_handed_back": tally.handed_back,
                         "ray_start_seconds": round(ray_start, 3), "top_split_seconds": round(top_seconds, 3),
                         "driver_commit_seconds": round(tally.commit_seconds, 3), "task_file_bytes": tally.task_bytes,
                         "worker_seconds": round(tally.worker_seconds, 3), **tally.timeline(t_wall0)})
    t_merge = time.perf_counter()
    try:
        writer.finish(result)
    finally:
        if closing is not None:
            closing.join()
    result.extra["merge_seconds"] = round(time.perf_counter() - t_merge, 3)
    return result


def task_parts(n: int, workers: int, tasks_per_worker: int, seed: int = 0) -> list[np.ndarray]:
    """The first tasks: ``n`` roots in a seeded random order, cut into pieces of decreasing size
    (guided self-scheduling: each piece 1/(tasks_per_worker * workers / 2) of the roots left, down
    to a quarter of the mean piece).

    Why: neighbouring roots have similar subtrees (on a 4-input 32-32-32 network the last of 16
    equal pieces held 5.5x the regions of the first), so pieces in the split's order end with one
    heavy task while the other workers idle. In a random order a piece's work is about in
    proportion to its roots; decreasing pieces then leave only small ones for the end."""
    order = np.random.default_rng(seed).permutation(n)
    mean = max(1, n // max(1, workers * tasks_per_worker))
    parts, start = [], 0
    while start < n:
        size = max(-(-mean // 4), -(-(n - start) * 2 // max(1, workers * tasks_per_worker)))
        parts.append(np.sort(order[start:start + size]))
        start += size
    return parts


@dataclass
class _Tally:
    """What the driver saw of its tasks (reported in the result's ``extra``: the quantities
    experiments/NOTES-scale.md models)."""
    commit_seconds: float = 0.0     # the driver's time committing task files
    task_bytes: int = 0             # task files' size: what a cluster moves per region
    worker_seconds: float = 0.0     # tasks' busy time, all workers together
    handed_back: int = 0            # tasks that stopped early and returned their frontier
    spans: list = field(default_factory=list)   # (worker pid, wall start, wall end) per task; on a
                                                # cluster pids may repeat across machines and clocks
                                                # differ: a diagnostic, exact on one machine

    def timeline(self, t_wall0: float) -> dict:
        """When the workers began and ended, and their idle time at the end (the last task's
        wait): where a sharded run loses against ``workers`` times one process."""
        if not self.spans:
            return {}
        last_end: dict = {}
        for pid, _, end in self.spans:
            last_end[pid] = max(end, last_end.get(pid, end))
        finish = max(last_end.values())
        return {"first_task_start_seconds": round(min(s[1] for s in self.spans) - t_wall0, 3),
                "last_task_end_seconds": round(finish - t_wall0, 3),
                "tail_idle_seconds": round(sum(finish - e for e in last_end.values()), 3)}


def _task_failure(exc: BaseException, writer: RegionWriter) -> LrenumError:
    """The one line a task that failed for good ends in: a write failure in the task is one (exit
    3), anything else a worker failure (exit 4); what was committed stays for --resume."""
    cause = getattr(exc, "cause", None) or exc
    committed = f"{writer.committed_regions} regions committed"
    if isinstance(cause, WriteError):
        return WriteError(f"{cause} ({committed}; free space and rerun with --resume)")
    if isinstance(cause, OSError):
        return WriteError(f"writing {writer.path}: {describe(cause)} ({committed}; rerun with --resume)")
    text = str(cause).strip().splitlines()
    return WorkerError(f"a worker task failed ({type(cause).__name__}: {(text[0] if text else '')[:160]}); "
                       f"{committed}, rerun with --resume to finish")


def _collect(ray, futures: dict, writer: RegionWriter, counts: list, stats: DecisionStats, t0: float,
             progress: bool, submit, pieces: int, hooks: Optional[FaultHooks]) -> _Tally:
    """Commit tasks as they finish (any order), each as one segment; a task's frontier goes back
    into the queue in up to ``pieces`` new tasks per layer."""
    done_tasks = 0
    tally = _Tally()
    last = time.perf_counter()
    while futures:
        ready, _ = ray.wait(list(futures), num_returns=1)
        fut = ready[0]
        layer, path = futures.pop(fut)
        try:
            out = ray.get(fut)
        except Exception as exc:   # a task failed for good (after retries): keep what is committed
            raise _task_failure(exc, writer) from None
        tc = time.perf_counter()
        tally.task_bytes += os.path.getsize(path)
        offsets = _commit_task(writer, path, layer, counts)
        for roots in out["pending"]:
            roots = TaskRoots.to_global(roots, layer, offsets)
            n = len(roots)
            step = max(1, -(-n // pieces))
            for s in range(0, n, step):
                submit(roots.take(slice(s, s + step)))
        tally.handed_back += bool(out["pending"])
        tally.commit_seconds += time.perf_counter() - tc
        tally.worker_seconds += out["task_seconds"]
        tally.spans.append(out["span"])
        for key, v in out["stats"].items():
            setattr(stats, key, getattr(stats, key) + v)
        done_tasks += 1
        if progress and (time.perf_counter() - last > 1.0 or not futures):
            last = time.perf_counter()
            print(f"[lrenum] {last - t0:7.1f}s  tasks {done_tasks}/{done_tasks + len(futures)}  "
                  + " ".join(f"L{i + 1}={c}" for i, c in enumerate(counts)), flush=True, file=sys.stderr)
        if hooks is not None and hooks.task_committed is not None:
            hooks.task_committed(done_tasks)
    return tally


def _split_top(writer: RegionWriter, want: int, stats: DecisionStats, counts: list,
               given: Optional[np.ndarray] = None) -> Optional[Regions]:
    """Split in-process, layer by layer, until a layer has ``want`` regions (or the last hidden
    layer is reached); commit every region found. Returns that layer's regions (compact) to hand
    out, or None when the tree is complete. ``given``: the root's children an interrupted run
    committed (not handed on again; the ids go on from ``counts``)."""
    frame = writer.frame
    splitter = Splitter(frame, runtime.select_device(frame.settings.device), stats)
    tree = Tree(frame, splitter, [writer], [1] + list(counts), root_given=given)
    batch_size = frame.settings.parents_per_split(splitter.vertex is not None)
    regions = tree.root()
    L = frame.net.n_hidden
    with runtime.device_errors():
        for level in range(L):
            first = tree.next_id[level + 1]
            kids = []
            for s in range(0, len(regions), batch_size):
                kids.extend(ch for ch, _ in tree.children(regions.take(slice(s, s + batch_size))))
            counts[level] = tree.next_id[level + 1]
            writer.commit(force=True)
            n = tree.next_id[level + 1] - first
            if level + 1 == L or n == 0:
                return None
            if n >= want or level + 2 == L:     # only what tasks need is gathered (not the rows and maps:
                return Regions.concat([TaskRoots.of(ch) for ch in kids])   # 0.7 s for a 66,259-region layer)
            regions = Regions.concat(kids)
    return None


def _commit_task(writer: RegionWriter, path: str, layer: int, counts: list) -> list:
    """Commit a finished task file as one segment (all its layers at once), moved into place as it
    is: its rows of layer l > layer + 1 name parents by local id, so the segment records the shift
    to global ids. Returns the offsets (the global id of each layer's first row of this task)."""
    offsets = list(counts)
    shift = [0] * (writer.L + 1)
    with h5py.File(path, "r") as f:
        for l in range(layer + 1, writer.L + 1):
            if f"layer_{l}/parent" in f:
                counts[l - 1] += f[f"layer_{l}/parent"].shape[0]
                if l > layer + 1:
                    shift[l] = offsets[l - 2]
    writer.commit_file(path, shift)
    return offsets
