"""Exact local complexity: the regions in the box around each of many inputs, in one run.

A box of half-width R around an input (an l-inf ball, clipped to the network's domain on request)
of even a 784-input network holds few regions, so one point alone keeps neither the host nor the
device busy. :func:`local_regions` walks the points' boxes concurrently, one walk per point on
its own thread, all sharing one basis (:func:`lrenum.core.frame.choose_basis`, an exact rank test
done once), one set of compiled kernels and one :class:`lrenum.lp.pool.LanePool` that runs the
LPs of every waiting walk together in full device calls. Each walk is today's exact walk on its
own box domain (:func:`lrenum.core.walk.walk_tree`): every answer is certified against that box,
so each point's count is the count ``enumerate_regions`` gives on the same box.

What is shared is the device call, not the walk: a batch of parents holds one point's regions,
and the pooled LP calls mix points. Memory holds one point's frontier (and, with
``keep_regions``, its regions) per concurrent walk, never all points' regions at once.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from .. import runtime
from ..certify.decide import DecisionStats
from ..core.frame import Frame, choose_basis
from ..core.progress import Progress
from ..core.split import Splitter
from ..core.state import Regions
from ..core.tree import Tree
from ..core.walk import walk_tree
from ..errors import InputError
from ..lp.device import BOX_CPU_LANES, LANE_STEP, MIN_LANES, default_lp_batch
from ..lp.pool import LanePool, PooledBoxLP
from ..model.domain import Domain, box_domain
from ..model.network import Network
from ..settings import Settings
from .local_proxies import neurons_meeting_box, sampled_patterns

__all__ = ["local_regions", "local_boxes", "LocalResult", "PointResult"]

PROPAGATE_BATCH = 32   # regions per propagation call in a walk: one point's splits take few parents, and
                       # 64 walks padding to the default 256 held ~1 GB of padded maps (measured at 784-64-64)
DEFAULT_WALKS = 64   # concurrent walks: on the 2-core CPU a point's split makes ~3 LPs per call, so
                     # ~20 waiting walks fill one 64-lane call; more walks cost only their frontiers


@dataclass
class PointResult:
    """One point's box and what was found in it. Children statistics are per level l = 0..L-1
    (splitting the regions of layer l, the root being layer 0, into those of layer l+1)."""

    index: int
    lo: np.ndarray
    hi: np.ndarray
    regions: int
    per_layer: list[int]
    rank_hist: list[list[int]]      # rank_hist[l][k]: regions of layer l+1 whose rank after layer l+1 is k
    max_children: list[int]
    mean_children: list[float]
    switching: list[int]            # per layer: neurons active on some final region and inactive on another
    seconds: float
    proxies: Optional[dict] = None  # neurons_meeting (per layer), sampled_patterns, samples_certified
    patterns: Optional[np.ndarray] = None    # (regions, N) bool, with keep_regions
    witnesses: Optional[np.ndarray] = None   # (regions, d)
    radii: Optional[np.ndarray] = None       # (regions,) certified distance of each witness to its boundary
    wstatus: Optional[np.ndarray] = None     # (regions,) int8 WitnessStatus
    constant: Optional[np.ndarray] = None    # (regions, N) bool: the neuron is constant on the region
    ranks: Optional[np.ndarray] = None       # (regions, L) rank after every layer

    def summary(self) -> dict:
        out = {"index": self.index, "regions": self.regions, "per_layer": self.per_layer,
               "rank_hist": self.rank_hist, "max_children": self.max_children,
               "mean_children": [round(m, 6) for m in self.mean_children], "switching": self.switching,
               "seconds": round(self.seconds, 6)}
        if self.proxies is not None:
            out["proxies"] = self.proxies
        return out


@dataclass
class LocalResult:
    """Every point's :class:`PointResult` (in the points' order) and the run's totals."""

    points: list[PointResult]
    seconds: float
    device: str
    stats: DecisionStats
    lp_calls: int = 0
    lane_fill: float = 0.0          # LPs per lane paid for in the pooled calls (1.0: every call full)
    compilations: int = 0
    compile_seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def counts(self) -> list[int]:
        return [p.regions for p in self.points]

    def summary(self) -> dict:
        """The JSON object of ``lrenum local --json``."""
        total = int(sum(self.counts))
        out = {"points": len(self.points), "counts": self.counts, "per_layer": [p.per_layer for p in self.points],
               "regions": total, "seconds": round(self.seconds, 6),
               "regions_per_second": round(total / self.seconds, 3) if self.seconds > 0 else None,
               "rank_hist": [p.rank_hist for p in self.points],
               "max_children": [p.max_children for p in self.points],
               "mean_children": [[round(m, 6) for m in p.mean_children] for p in self.points],
               "switching": [p.switching for p in self.points],
               "lps": self.stats.lps, "lp_calls": self.lp_calls, "lane_fill": round(self.lane_fill, 4),
               "exact_decisions": self.stats.exact_decisions, "compilations": self.compilations,
               "compile_seconds": round(self.compile_seconds, 3), "device": self.device}
        if self.points and self.points[0].proxies is not None:
            out["proxies"] = {key: [p.proxies[key] for p in self.points] for key in self.points[0].proxies}
        out.update(self.extra)
        return out


def local_boxes(points, radius=None, *, radii=None, domain: Optional[Domain] = None, clip: bool = False,
                dim: Optional[int] = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(points (n, d), lo (n, d), hi (n, d)): the box ``[fl(p - r), fl(p + r)]`` around every point,
    clipped to a box ``domain`` with ``clip`` (else a box leaving it is an error). Every bad input
    is an :class:`InputError` with one line naming the point."""
    P = np.asarray(points, dtype=np.float64) if not isinstance(points, np.ndarray) else points.astype(np.float64)
    if P.ndim == 1:
        P = P[None, :]
    if P.ndim != 2:
        raise InputError(f"points must be a (n, d) array, got shape {P.shape}")
    if P.shape[0] == 0:
        raise InputError("no points given")
    if dim is not None and P.shape[1] != dim:
        raise InputError(f"points have {P.shape[1]} coordinates but the network has {dim} inputs")
    bad = np.nonzero(~np.all(np.isfinite(P), axis=1))[0]
    if bad.size:
        raise InputError(f"point {int(bad[0])} has NaN or inf coordinates")
    if (radius is None) == (radii is None):
        raise InputError("give one radius or an array of radii (one per point)")
    r = np.broadcast_to(np.asarray(radius, np.float64), (P.shape[0],)) if radii is None \
        else np.asarray(radii, np.float64).ravel()
    if r.shape != (P.shape[0],):
        raise InputError(f"{r.size} radii for {P.shape[0]} points")
    bad = np.nonzero(~(np.isfinite(r) & (r > 0)))[0]
    if bad.size:
        raise InputError(f"radius {r[bad[0]]:g} (point {int(bad[0])}) must be a positive number")
    lo, hi = P - r[:, None], P + r[:, None]
    if domain is not None and domain.kind == "polytope":
        raise InputError("boxes around points need a box domain or none (this network's domain is a polytope)")
    if domain is not None and domain.kind == "box":
        dlo, dhi = domain.box
        leaves = np.any(lo < dlo, axis=1) | np.any(hi > dhi, axis=1)
        if np.any(leaves) and not clip:
            i = int(np.nonzero(leaves)[0][0])
            raise InputError(f"the box around point {i} leaves the network's domain "
                             f"({int(leaves.sum())} of {len(P)} boxes do; --clip clips them to it)")
        lo, hi = np.maximum(lo, dlo), np.minimum(hi, dhi)
    empty = np.nonzero(np.any(lo >= hi, axis=1))[0]
    if empty.size:
        i = int(empty[0])
        why = "lies outside the domain" if domain is not None and domain.kind == "box" else "has a radius too small to widen it in float64"
        raise InputError(f"point {i} {why}: its box is empty")
    return P, lo, hi


class _PointSink:
    """Per-point statistics from the walk's regions as they are found (a :class:`RegionSink`)."""

    def __init__(self, L: int, N: int, rank_cap: int, keep: bool):
        self.L, self.keep = L, keep
        self.max_children = [0] * L
        self.rank_hist = np.zeros((L, rank_cap + 1), np.int64)
        self.any_on = np.zeros(N, bool)
        self.any_off = np.zeros(N, bool)
        self.finals: list[Regions] = []

    def regions(self, layer: int, batch: Regions) -> None:
        if layer == 0 or not len(batch):
            return
        self.rank_hist[layer - 1] += np.bincount(batch.rank[:, layer - 1], minlength=self.rank_hist.shape[1])
        if layer == self.L:
            self.any_on |= batch.bits.any(axis=0)
            self.any_off |= ~batch.bits.all(axis=0)
            if self.keep:
                self.finals.append(batch)

    def split_done(self, layer: int, ident: np.ndarray, n_children: np.ndarray) -> None:
        if len(n_children):
            self.max_children[layer] = max(self.max_children[layer], int(n_children.max()))


def _walk_point(i: int, net: Network, lo: np.ndarray, hi: np.ndarray, basis, settings: Settings, device,
                pool: Optional[LanePool], keep: bool) -> tuple[PointResult, DecisionStats]:
    """The exact walk over one point's box."""
    t0 = time.perf_counter()
    frame = Frame(net, box_domain(lo, hi, net.input_dim), settings, basis=basis)
    stats = DecisionStats()
    rows = int(sum(frame.widths)) + 1
    backend = None if pool is None else PooledBoxLP(frame.geometry, device, settings, pool, max_rows=rows)
    splitter = Splitter(frame, device, stats, backend, propagate_batch=PROPAGATE_BATCH)
    L, N = net.n_hidden, int(sum(net.hidden_widths))
    sink = _PointSink(L, N, min(net.input_dim, max(net.hidden_widths)), keep)
    tree = Tree(frame, splitter, [sink])
    walk_tree(tree, settings.parents_per_split(splitter.vertex is not None), None, Progress(L, enabled=False))
    counts = tree.counts
    sink.max_children[0] = counts[0]
    mean = [counts[0]] + [counts[l + 1] / counts[l] if counts[l] else 0.0 for l in range(L - 1)]
    offs = net.neuron_offsets
    switching = sink.any_on & sink.any_off
    res = PointResult(
        index=i, lo=lo, hi=hi, regions=counts[-1], per_layer=list(counts),
        rank_hist=[row[:int(np.max(np.nonzero(row)[0], initial=0)) + 1].tolist() for row in sink.rank_hist],
        max_children=sink.max_children, mean_children=[float(m) for m in mean],
        switching=[int(switching[offs[l]:offs[l + 1]].sum()) for l in range(L)], seconds=time.perf_counter() - t0)
    if keep:
        fin = Regions.concat(sink.finals) if sink.finals else None
        d = net.input_dim
        res.patterns = fin.bits.copy() if fin else np.zeros((0, N), bool)
        res.witnesses = fin.witness.copy() if fin else np.zeros((0, d))
        res.radii = fin.radius.copy() if fin else np.zeros(0)
        res.wstatus = fin.wstatus.copy() if fin else np.zeros(0, np.int8)
        res.ranks = fin.rank.copy() if fin else np.zeros((0, L), np.int64)
        res.constant = fin.const.copy() if fin else np.zeros((0, N), bool)
    return res, stats


def local_regions(net: Network, points, radius=None, *, radii=None, domain: Optional[Domain] = None,
                  clip: bool = False, settings: Optional[Settings] = None, proxies: bool = False,
                  samples: int = 1000, seed: int = 0, keep_regions: bool = False, walks: Optional[int] = None,
                  pooled: bool = True, on_point: Optional[Callable[[PointResult], None]] = None,
                  tick: Optional[Callable[[int, int, int], None]] = None) -> LocalResult:
    """The exact regions in the box of half-width ``radius`` (or ``radii[i]``) around each point.

    Parameters
    ----------
    net : the network; points : (n, d) or (d,).
    radius / radii : one half-width for all points, or one per point (l-inf balls).
    domain : the network's domain (a box or None for R^d); a box leaving it is clipped with
        ``clip``, else refused (:class:`InputError`).
    proxies : also the literature's proxies per point (:mod:`lrenum.counting.local_proxies`):
        neurons meeting the box, and distinct certified patterns of ``samples`` uniform samples.
    keep_regions : attach every region (pattern, witness, radius, status, ranks) to its point.
    walks : concurrent walks (default 64); pooled : share device calls through one LanePool
        (False: each walk makes its own calls, as ``enumerate_regions`` does).
    on_point : called with each point's result as soon as it is done (from the caller's thread,
        in completion order); with it, the regions kept are dropped from the returned results
        once handed over, so memory stays bounded by the concurrent walks.
    tick : ``tick(points_done, points, regions_so_far)`` after every point.
    """
    settings = Settings.build() if settings is None else settings
    settings = settings.replace(lp_dtype=settings.local_lp_dtype)
    P, lo, hi = local_boxes(points, radius, radii=radii, domain=domain, clip=clip, dim=net.input_dim)
    n = len(P)
    dev = runtime.select_device(settings.device)
    t0 = time.perf_counter()
    basis = choose_basis(net, box_domain(lo[0], hi[0], net.input_dim))
    pool = None
    if pooled:
        on_cpu = dev.platform == "cpu"
        top = settings.lp_batch or (BOX_CPU_LANES if on_cpu else default_lp_batch(dev))
        buckets = [top] if on_cpu else sorted({max(MIN_LANES, top // LANE_STEP ** j) for j in range(4)})
        pool = LanePool(dev, basis[0], buckets, settings.lp_iters, settings.lp_numpy_dtype())
    results: list[Optional[PointResult]] = [None] * n
    stats = DecisionStats()
    lock = threading.Lock()
    todo = list(range(n - 1, -1, -1))     # popped from the end: points in order
    done_now: list = []

    def worker() -> None:
        while True:
            with lock:
                if not todo:
                    return
                i = todo.pop()
            if pool is not None:
                pool.enter()
            try:
                res, st = _walk_point(i, net, lo[i], hi[i], basis, settings, dev, pool, keep_regions)
            finally:
                if pool is not None:
                    pool.leave()
            with lock:
                done_now.append((res, st))

    n_walks = max(1, min(n, walks or DEFAULT_WALKS))
    finished, total = 0, 0
    with runtime.CompileCounter() as compiles, runtime.DeviceClock() as clock, runtime.device_errors():
        with ThreadPoolExecutor(max_workers=n_walks, thread_name_prefix="lrenum-local") as ex:
            futures = [ex.submit(worker) for _ in range(n_walks)]
            try:
                pending = set(futures)
                while pending or done_now:
                    if pending:
                        _, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
                        failed = next((f for f in futures if f.done() and f.exception() is not None), None)
                        if failed is not None:
                            raise failed.exception()
                    with lock:
                        batch, done_now[:] = list(done_now), []
                    for res, st in batch:
                        stats.add(st)
                        if proxies:    # seeded per point: the same answer whatever the completion order
                            res.proxies = _proxies(net, res.lo, res.hi, samples, np.random.default_rng([seed, res.index]))
                        finished += 1
                        total += res.regions
                        if on_point is not None:
                            on_point(res)
                            res.patterns = res.witnesses = res.radii = res.wstatus = res.ranks = res.constant = None
                        results[res.index] = res
                        if tick is not None:
                            tick(finished, n, total)
            except BaseException:
                with lock:
                    todo.clear()      # the walks under way finish their point; no new point starts
                raise
    out = LocalResult(points=results, seconds=time.perf_counter() - t0, device=runtime.describe_device(dev),
                      stats=stats, compilations=compiles.count, compile_seconds=compiles.seconds)
    if pool is not None:
        out.lp_calls = pool.calls
        out.lane_fill = pool.lps / pool.lane_slots if pool.lane_slots else 0.0
    out.extra.update(device_calls=clock.calls, device_seconds=round(clock.seconds, 6), walks=n_walks,
                     pooled=pooled)
    return out


def _proxies(net: Network, lo: np.ndarray, hi: np.ndarray, samples: int, rng: np.random.Generator) -> dict:
    meeting = neurons_meeting_box(net, lo, hi)
    distinct, certified = sampled_patterns(net, lo, hi, samples, rng) if samples > 0 else (0, 0)
    return {"neurons_meeting": meeting, "neurons_meeting_total": int(sum(meeting)),
            "sampled_patterns": distinct, "samples_certified": certified}
