"""Enumeration sharded over Ray workers, with the same result as one process.

The driver splits the top of the region tree in-process until a layer holds several times more
regions than there are workers (while Ray starts, beside it), commits those regions, and hands
them out as Ray tasks, in a seeded random order and in pieces of decreasing size (:func:`task_parts`:
over-decomposition keeps workers busy although subtrees are very unequal). A task
re-builds its roots from their patterns (:func:`lrenum.core.rebuild.rebuild_regions`), walks their
whole subtrees with the ordinary enumerator, and streams the rows, numbered locally, into its own
task file (written to ``.tmp`` and renamed, so a killed worker leaves nothing half-written). When
a task finishes, the driver renumbers its rows to global ids and commits them as *one* segment of
the dataset (:class:`lrenum.datasets.writer.RegionWriter`): a subtree is committed whole or not at
all. Hence:

* a worker killed mid-task: Ray re-runs the task, which rewrites its file; nothing was committed;
* the driver killed: ``--resume --workers N`` finds the roots without committed children (the
  writer's resume rule) and runs only those again.

Work stealing through the driver: a task that has run ``task_seconds`` stops after its current
split and returns its frontier (regions written but not yet split). Its rows are committed as
usual; the frontier, renumbered to global ids, goes back into the queue as new tasks, so a few
heavy subtrees are spread over all workers instead of idling the rest. Committed regions without
children are exactly what the resume rule redoes, so an interruption at any point stays safe.

Ray is an optional dependency (``pip install 'lrenum[ray]'``).

One module: the driver, the task and the atomic commit are one protocol (a subtree is committed
whole or not at all); reading it in one place is how one checks that. The estimators' Ray wrappers
(tree probes, MIPBound trials) sit at the end so that the optional dependency has one door.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Optional

import h5py
import numpy as np

from . import runtime
from .certify.decide import DecisionStats
from .core.frame import Frame
from .core.hyperplanes import Propagator
from .core.rebuild import rebuild_regions
from .core.split import Splitter
from .core.state import Regions
from .core.walk import (BATCH_SIZE, VERTEX_BATCH_SIZE, EnumerationResult, ResumeState, SkipGiven, enumerate_regions,
                         root_region)
from .datasets.writer import RegionWriter, append_rows, region_rows
from .errors import InputError
from .lp.device import default_lp_batch
from .model.domain import Domain
from .model.network import Network

TASKS_PER_WORKER = 8      # subtrees handed out per worker: enough that one long subtree does not idle the rest
TASK_RETRIES = 3          # Ray re-runs a task whose worker died this many times
TASK_SECONDS = 20.0       # a task running this long hands its frontier back (long enough that the
                          # per-task cost, ~0.1-0.5 s of rebuilding roots and committing, stays small)


def ray_module():
    """Ray, or one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise InputError("--workers needs Ray: pip install 'lrenum[ray]'") from None
    return ray


ADDRESS_TIMEOUT = 3.0     # seconds to reach a cluster's port before saying it is not there (Ray itself waits minutes)


def _check_address(address: str) -> None:
    """One clear line for an address nothing listens on, instead of Ray's minutes of retries."""
    import socket

    if address in ("auto", "local"):
        return
    host_port = address.split("://", 1)[-1]
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=ADDRESS_TIMEOUT):
            pass
    except ValueError:
        raise InputError(f"--ray-address must look like HOST:PORT, got {address!r}") from None
    except OSError as exc:
        raise InputError(f"cannot reach a Ray cluster at {address} ({exc.strerror or exc})") from None


def _share_gpus() -> None:
    """GPU workers share devices with the driver: no process may grab 75% of a GPU's memory up
    front (JAX's default), or the second one on that GPU runs out. Must run before JAX starts."""
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def start_ray(workers: int, address: Optional[str], device: Optional[str] = "cpu"):
    """Start a local Ray runtime with ``workers`` CPUs, and the GPUs JAX sees (up to ``workers``)
    when ``device`` is a GPU (enumeration tasks then hold one GPU each), or join the cluster at
    ``address``."""
    ray = ray_module()
    if address:
        _check_address(address)
    if ray.is_initialized():
        return ray
    _share_gpus()
    gpus = 0 if address else min(workers, runtime.gpu_count(device))
    runtime_env = {"env_vars": {"XLA_PYTHON_CLIENT_PREALLOCATE": "false", "PYTHONPATH": os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
        + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}}
    try:
        with warnings.catch_warnings():
            # ray.init starts its processes by fork + exec, maybe while the top split's JAX threads
            # run (enumerate_sharded); the child execs at once, so JAX's fork warning does not apply
            warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
            if address:
                ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
            else:   # Ray's own start-up lines would break into lrenum's progress lines
                ray.init(num_cpus=workers, num_gpus=gpus, include_dashboard=False, log_to_driver=False,
                         logging_level=logging.ERROR, runtime_env=runtime_env)
    except Exception as exc:   # Ray raises ConnectionError, RuntimeError, ValueError ... on a bad address
        raise InputError(f"cannot start or join Ray{' at ' + address if address else ''}: "
                         f"{str(exc).splitlines()[0][:160]}") from None
    return ray


@contextmanager
def fork_safe_blas():
    """While ray.init forks its processes, the top split's thread must not be inside a threaded
    OpenBLAS call: OpenBLAS shuts its thread pool down before a fork, and a call in flight then
    spins forever (seen once in ~20 runs; tests/test_distributed.py reproduces it with os.fork).
    Yields True with BLAS held to one thread (threadpoolctl: the driver's matrices are small, so
    nothing is lost), False where threadpoolctl is missing: then the split must not overlap."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield False
        return
    with threadpool_limits(1, user_api="blas"):
        yield True


# ---------------------------------------------------------------------------------- the worker
class _TaskFile:
    """The walk's sink inside a task: rows per layer, local ids, buffered in memory and appended to
    an HDF5 file in large pieces (appending every batch to auto-chunked datasets cost a third of a
    task's time). The finished file becomes a segment of the dataset as it is (see _commit_task)."""

    FLUSH_BYTES = 32 * 2 ** 20      # bounds a task's buffer

    def __init__(self, path: str, writer_rows):
        self.path = path
        self.rows = writer_rows
        self.f = h5py.File(path, "w")
        self.buffer: dict = {}
        self.buffered = 0

    def regions(self, layer: int, batch: Regions) -> None:
        rows = self.rows(layer, batch)
        self.buffer.setdefault(layer, []).append(rows)
        self.buffered += sum(a.nbytes for a in rows.values())
        if self.buffered > self.FLUSH_BYTES:
            self._flush()

    def _flush(self) -> None:
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

    def close(self) -> None:
        self._flush()
        self.f.close()


_PINNED: list = []   # this worker process's core lock (kept open for the process's lifetime)


def _pin_to_a_free_core() -> None:
    """Give this worker process a core of its own, before JAX starts its thread pool.

    Measured on the 2-core CPU: one enumeration pinned to one core ran *faster* (136 s) than the
    same run free on both (150 s), and two unpinned workers oversubscribed the cores (their XLA
    pools both span all cores: 1.04x). Cores are claimed with per-core lock files, so workers on one
    machine never share one; with more workers than cores the rest stay unpinned.
    """
    if _PINNED or not hasattr(os, "sched_setaffinity"):
        return
    import fcntl
    import tempfile

    cores = sorted(os.sched_getaffinity(0))
    for core in cores:
        fd = os.open(os.path.join(tempfile.gettempdir(), f"lrenum-core-{core}.lock"), os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        os.sched_setaffinity(0, {core})   # threads started later (JAX's pool, at its first use) inherit it
        _PINNED.append(fd)
        return
    _PINNED.append(None)


def _roots(part: Regions) -> dict:
    """What a task needs of its root regions (the rest is rebuilt from the patterns)."""
    return {"bits": part.bits, "const": part.const, "witness": part.witness, "radius": part.radius,
            "wstatus": part.wstatus, "rank": part.rank, "parent": part.parent, "ident": part.ident,
            "vertices": part.vertices}     # proven vertex sets travel along (else rebuilt by qhull)


def run_task(net: Network, domain: Domain, roots: dict, layer: int, path: str, batch_size: Optional[int],
             device: Optional[str], maps: str, kill_marker: Optional[str] = None,
             vertex_path: Optional[bool] = None, task_seconds: Optional[float] = None) -> dict:
    """Walk the subtrees of ``roots`` (regions of ``layer``; ``roots['ident']`` their global ids)
    and write every region below them to ``path``. Returns the local counts per layer and stats,
    and, when the task stopped after ``task_seconds``, its frontier: ``pending`` as [(layer, roots)]
    with ids local to this task file (global for regions of ``layer`` itself).

    ``kill_marker`` (tests only): the first task to find this file missing creates it and kills
    its own worker process, as a crash would."""
    t_task, wall_start = time.perf_counter(), time.time()
    _pin_to_a_free_core()
    if kill_marker:
        marker = kill_marker
        if not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), 9)
    frame = Frame(net, domain)
    dev = runtime.select_device(device)
    regions = rebuild_regions(frame, Propagator(frame, dev, default_lp_batch(dev)), roots["bits"], roots["const"],
                              roots["witness"], roots["radius"], roots["wstatus"], roots["rank"], roots["parent"],
                              roots["ident"])
    if roots.get("vertices") is not None:
        from dataclasses import replace

        regions = replace(regions, vertices=roots["vertices"])
    tmp = path + ".tmp"
    sink = _TaskFile(tmp, lambda layer, batch: region_rows(net, frame, maps, layer, batch))
    t0 = time.perf_counter()
    stop = None if task_seconds is None else (lambda: time.perf_counter() - t0 > task_seconds)
    try:
        res = enumerate_regions(net, domain, batch_size=batch_size, device=device, sink=sink,
                                resume=ResumeState([(layer, regions)], [1] + [0] * net.n_hidden),
                                vertex_path=vertex_path, should_stop=stop)
    finally:
        sink.close()
    os.replace(tmp, path)
    return {"counts": res.per_layer, "stats": res.stats.as_dict(), "seconds": res.seconds,
            "task_seconds": time.perf_counter() - t_task, "span": (os.getpid(), wall_start, time.time()),
            "pending": [(l, _roots(r)) for l, r in res.pending]}


# ---------------------------------------------------------------------------------- the driver
def enumerate_sharded(writer: RegionWriter, *, workers: int, address: Optional[str] = None,
                      batch_size: Optional[int] = None, device: Optional[str] = None, progress: bool = False,
                      tasks_per_worker: int = TASKS_PER_WORKER, vertex_path: Optional[bool] = None,
                      task_seconds: Optional[float] = TASK_SECONDS) -> EnumerationResult:
    """Fill ``writer``'s file using Ray workers; the file ends complete and merged. A task that
    runs ``task_seconds`` hands its frontier back as new tasks (None: never)."""
    if workers < 1:
        raise InputError("--workers must be at least 1")
    t0, t_wall0 = time.perf_counter(), time.time()
    ray = ray_module()
    start_here = not ray.is_initialized()       # a runtime this call starts is also shut down by it
    _share_gpus()
    net, domain = writer.net, writer.domain
    stats = DecisionStats()
    counts = [0] * writer.L

    def first_tasks():
        """The roots to hand out: the top of the tree split here, or the pending regions of a resumed file."""
        resume = writer._pending_state(device)
        if resume is None:
            layer, frontier = _split_top(writer, batch_size, device, workers * tasks_per_worker, stats, counts,
                                         vertex_path)
            return [(layer, frontier)] if frontier is not None else []
        counts[:] = list(resume.next_id[1:])
        tasks = [(layer, _roots(regions)) for layer, regions in resume.pending if layer > 0]
        if resume.root_given is not None:      # a one-process run stopped while the root's children came in pieces
            layer, frontier = _split_top(writer, batch_size, device, workers * tasks_per_worker, stats, counts,
                                         vertex_path, given=resume.root_given)
            tasks += [(layer, frontier)] if frontier is not None else []
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
            ray = start_ray(workers, address, device=device)
            # on GPUs each task holds one (Ray sets CUDA_VISIBLE_DEVICES for it): one worker per GPU
            on_gpu = runtime.select_device(device).platform == "gpu" and ray.cluster_resources().get("GPU", 0) >= 1
            options = dict(max_retries=TASK_RETRIES, num_gpus=1 if on_gpu else 0)
            remote = ray.remote(**options)(run_task)
            net_ref = ray.put(net)
        finally:
            ray_start = time.perf_counter() - t_ray
            pending = first.result()
    # one folder per run: tasks of an interrupted run may still be running (on a cluster they
    # outlive their driver) and must never write over this run's task files
    import uuid

    task_dir = os.path.join(writer.path + ".tasks", uuid.uuid4().hex)
    os.makedirs(task_dir, exist_ok=True)
    futures = {}
    submitted = [0]

    def submit(layer: int, roots: dict) -> None:
        path = os.path.join(task_dir, f"task_{submitted[0]:06d}.h5")
        futures[remote.remote(net_ref, domain, roots, layer, path, batch_size, device, writer.maps,
                              os.environ.get("LRENUM_TEST_KILL_WORKER_ONCE"), vertex_path, task_seconds)] = (layer, path)
        submitted[0] += 1

    for layer, roots in pending:
        for part in task_parts(len(roots["ident"]), workers, tasks_per_worker):
            submit(layer, _take_roots(roots, part))
    stop_after = int(os.environ.get("LRENUM_TEST_STOP_AFTER_TASKS", "0"))   # interruption hook for the tests
    top_seconds = time.perf_counter() - t0         # top split and Ray's start, side by side
    try:
        tally = _collect(
            ray, futures, writer, counts, stats, t0, progress, stop_after, submit, 2 * workers)
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
    a = writer.f.attrs
    a["counts"] = np.array(counts, dtype=np.int64)
    a["regions"] = counts[-1]
    a["complete"] = True
    a["summary"] = json.dumps(result.summary())
    t_merge = time.perf_counter()
    writer._merge()
    result.extra["merge_seconds"] = round(time.perf_counter() - t_merge, 3)
    if closing is not None:
        closing.join()
    return result


def task_parts(n: int, workers: int, tasks_per_worker: int = TASKS_PER_WORKER, seed: int = 0) -> list[np.ndarray]:
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


def _collect(ray, futures: dict, writer: RegionWriter, counts: list, stats: DecisionStats, t0: float,
             progress: bool, stop_after: int, submit, pieces: int) -> _Tally:
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
            raise InputError(f"a worker task failed ({type(exc).__name__}: {str(exc).splitlines()[0][:160]}); "
                             f"rerun with --resume to finish") from None
        tc = time.perf_counter()
        tally.task_bytes += os.path.getsize(path)
        offsets = _commit_task(writer, path, layer, counts)
        for l, roots in out["pending"]:
            _to_global(roots, l, layer, offsets)
            n = len(roots["ident"])
            step = max(1, -(-n // pieces))
            for s in range(0, n, step):
                submit(l, _take_roots(roots, slice(s, s + step)))
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
        if stop_after and done_tasks >= stop_after:
            raise KeyboardInterrupt
    return tally


def _to_global(roots: dict, l: int, task_layer: int, offsets: list) -> None:
    """Renumber a returned frontier of layer ``l`` from the task's local ids to global ids, as
    :func:`_commit_task` renumbered its rows (the task's own roots, of ``task_layer``, are global)."""
    if l > task_layer:
        roots["ident"] = roots["ident"] + offsets[l - 1]
        if l - 1 > task_layer:
            roots["parent"] = roots["parent"] + offsets[l - 2]


def _take_roots(roots: dict, rows) -> dict:
    """Some of the task roots ``roots`` (``rows``: a slice or an index array)."""
    out = {k: (v[rows] if isinstance(v, np.ndarray) else v) for k, v in roots.items()}
    if roots.get("vertices") is not None:
        out["vertices"] = roots["vertices"].take(rows)
    return out


def _split_top(writer: RegionWriter, batch_size: Optional[int], device, want: int, stats: DecisionStats, counts: list,
               vertex_path: Optional[bool] = None, given: Optional[np.ndarray] = None):
    """Split in-process, layer by layer, until a layer has ``want`` regions (or the last hidden
    layer is reached); commit every region found. Returns (layer, its regions) to hand out.
    ``given``: the root's children an interrupted run committed (not handed on again; the ids
    go on from ``counts``)."""
    frame = writer.frame
    dev = runtime.select_device(device)
    splitter = Splitter(frame, dev, stats, vertex_path=vertex_path)
    regions = root_region(frame)
    if splitter.vertex is not None:
        regions = splitter.vertex.with_root_vertices(regions)
    batch_size = batch_size or (VERTEX_BATCH_SIZE if splitter.vertex is not None else BATCH_SIZE)
    L = frame.net.n_hidden
    skip = SkipGiven(given)
    for level in range(L):
        kids, first = [], counts[level]
        n = first
        for s in range(0, len(regions), batch_size):
            for ch, _ in splitter.split_chunks(regions.take(slice(s, s + batch_size))):
                ch = skip(ch) if level == 0 else ch
                ch = ch.with_ids(np.arange(n, n + len(ch), dtype=np.int64))
                n += len(ch)
                writer.regions(level + 1, ch)
                kids.append(ch)
        counts[level] = n
        writer.commit(force=True)
        if level + 1 == L or n == first:
            return level + 1, None
        if n - first >= want or level + 2 == L:     # only what tasks need is gathered (not the maps: 0.7 s
            return level + 1, _concat_roots([_roots(ch) for ch in kids])   # for a 66,259-region layer)
        regions = Regions.concat(kids)
    return L, None


def _concat_roots(parts: list[dict]) -> dict:
    """Task roots (:func:`_roots`) of several batches as one."""
    out = {k: np.concatenate([p[k] for p in parts]) for k, v in parts[0].items() if isinstance(v, np.ndarray)}
    vertices = [p["vertices"] for p in parts]
    out["vertices"] = None if vertices[0] is None else type(vertices[0]).concat(vertices)
    return out


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


# ---------------------------------------------------------------------------------- estimates
def tree_estimate_sharded(net: Network, domain: Domain, *, workers: int, address: Optional[str] = None,
                          probes: int = 256, branch: int = 1, seed: int = 0, confidence: float = 0.95,
                          interval: str = "union", device: Optional[str] = None):
    """The tree estimator with its probes spread over Ray workers (independent seeds per task),
    pooled into one estimate: the same estimator as one process with the same number of probes."""
    from .counting.estimate import tree_estimate, tree_result

    ray = start_ray(workers, address)
    t0 = time.perf_counter()
    tasks = min(probes, workers * 2)
    sizes = [probes // tasks + (1 if i < probes % tasks else 0) for i in range(tasks)]
    remote = ray.remote(max_retries=TASK_RETRIES)(tree_estimate)
    futures = [remote.remote(net, domain, probes=n, branch=branch, seed=int(np.random.SeedSequence([seed, i]).generate_state(1)[0]),
                             confidence=confidence, interval=interval, device=device) for i, n in enumerate(sizes)]
    parts = ray.get(futures)
    samples = np.concatenate([p.samples for p in parts])
    lower = max(p.lower_bound for p in parts)
    return tree_result(samples, lower, confidence, interval, time.perf_counter() - t0,
                       {"probes": probes, "branch": branch, "seed": seed, "workers": workers, "tasks": tasks,
                        "lps": sum(p.details["lps"] for p in parts), "device": f"ray:{workers} workers"})


def mipbound_sharded(net: Network, domain: Domain, *, workers: int, address: Optional[str] = None, **kw):
    """MIPBound with each level's trials (independent MILPs) run as Ray tasks. The driver draws the
    XOR sets in the same order as one process, so a seed gives the same bound; the MILP encoding
    goes to Ray's object store once per level and is shared by that level's tasks."""
    from .counting.mipbound import mipbound, run_trial

    ray = start_ray(workers, address)
    remote = ray.remote(max_retries=TASK_RETRIES)(run_trial)

    def run_trials(model, net_, domain_, trial_xors, backend, time_limit):
        refs = [ray.put(v) for v in (model, net_, domain_)]
        return ray.get([remote.remote(*refs, xors, backend, time_limit) for xors in trial_xors])

    res = mipbound(net, domain, run_trials=run_trials, **kw)
    res.workers = workers
    return res
