"""Exact enumeration: walk the layer-by-layer region tree, batch by batch.

The walk always splits a batch from the deepest layer that has regions waiting, so the live
frontier stays bounded by (layers x batch x children per region), never by the number of
regions. The root's children (bounded by the network, not the batch) are handed on a group at
a time, each group's subtree walked before the next. Regions go to *sinks* as soon as they
exist (:class:`lrenum.core.tree.RegionSink`): the HDF5 writer is one
(:mod:`lrenum.datasets.writer`), collecting patterns in memory is another. The splitting and
numbering themselves are :class:`lrenum.core.tree.Tree`'s, shared with the sharded run and the
estimator; this module decides which parents to split next.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from .. import runtime
from ..certify.decide import DecisionStats
from ..errors import InputError
from ..model.domain import Domain, box_domain
from ..model.network import Network
from ..settings import Settings
from . import memory
from .frame import Frame
from .progress import Progress
from .rebuild import rebuild_compact
from .split import Splitter
from .state import Regions
from .tree import RegionSink, ResumeState, Tree, compact

__all__ = ["enumerate_regions", "EnumerationResult", "Collector", "LayerCallback", "most_children", "walk_tree"]


@dataclass
class EnumerationResult:
    """Summary of an enumeration. ``per_layer[l]`` counts the regions after hidden layer l+1."""

    regions: int
    per_layer: list[int]
    seconds: float
    device: str
    stats: DecisionStats
    compilations: int = 0
    compile_seconds: float = 0.0
    patterns: Optional[np.ndarray] = None   # (regions, N) bool, when collected
    witnesses: Optional[np.ndarray] = None  # (regions, d), when collected
    extra: dict = field(default_factory=dict)
    pending: list = field(default_factory=list)   # [(layer, Regions)] left unsplit by ``should_stop``

    def summary(self) -> dict:
        """The JSON summary printed by ``lrenum enumerate --json``."""
        s = self.stats
        out = {"regions": self.regions, "seconds": round(self.seconds, 6), "per_layer": self.per_layer,
               "lps": s.lps, "lps_unfinished": s.lp_unfinished, "lps_avoided": s.avoided,
               "vertex_decisions": s.vertex_decisions, "float_certificates": s.float_certificates,
               "vertex_duals": s.vertex_duals,
               "clarabel_redecisions": s.float_redecisions,
               "exact_decisions": s.exact_decisions, "exact_certificates": s.exact_certificates,
               "exact_simplex": s.exact_simplex, "witness_repairs": s.witness_repairs,
               "exact_witnesses": s.exact_witnesses, "compilations": self.compilations,
               "compile_seconds": round(self.compile_seconds, 3), "device": self.device,
               # deprecated alias of clarabel_redecisions (kept for one version, see README)
               "certified": s.float_redecisions}
        out.update(self.extra)
        return out


def most_children(width: int, dim: int) -> int:
    """At most how many children one parent can have: the regions of ``width`` hyperplanes in
    general position in ``dim`` dimensions (Zaslavsky), sum_{i <= dim} C(width, i). The first probe
    of a level takes no more parents than the split budget allows at this bound (measured: 16
    probing parents of a 12-input 16-16 network had 194,178 children, 12x the budget, and the run
    peaked at 2.8 GB against 1.6 GB after it)."""
    return int(sum(math.comb(width, i) for i in range(min(width, dim) + 1)))


class _Stack:
    """Regions of one layer waiting to be split, in chunks (each chunk homogeneous).

    Past ``compact_over`` waiting regions, a pushed chunk is kept without its rows and maps
    (:func:`lrenum.core.tree.compact`) and rebuilt from its patterns when popped: the children of
    one parent are not bounded by the split budget (the root of a 4-input network with 48 neurons
    in its first layer has 66,259).
    """

    def __init__(self, rebuild: Callable[[Regions], Regions], compact_over: float = math.inf):
        self.chunks: list[Regions] = []
        self.size = 0
        self.rebuild, self.compact_over = rebuild, compact_over
        self.compacted = 0        # regions stored compact so far (reported in the result's extra)

    def push(self, batch: Regions) -> None:
        if len(batch):
            if self.size + len(batch) > self.compact_over:
                batch = compact(batch)
                self.compacted += len(batch)
            self.chunks.append(batch)
            self.size += len(batch)

    def pop(self, n: int) -> Regions:
        taken, got = [], 0
        while self.chunks and got < n:
            chunk = self.chunks.pop()
            need = n - got
            if len(chunk) > need:
                self.chunks.append(chunk.take(slice(need, None)))
                chunk = chunk.take(slice(0, need))
            taken.append(chunk if chunk.rows is not None else self.rebuild(chunk))
            got += len(chunk)
        self.size -= got
        return Regions.concat(taken)


class Collector:
    """A sink that keeps the final patterns and witnesses in memory (``collect=True``)."""

    def __init__(self, n_layers: int):
        self.L = n_layers
        self.patterns: list = []
        self.witnesses: list = []

    def regions(self, layer: int, batch: Regions) -> None:
        if layer == self.L:
            self.patterns.append(batch.bits.copy())
            self.witnesses.append(batch.witness.copy())

    def split_done(self, layer, ident, n_children) -> None:
        pass


class LayerCallback:
    """A sink from two functions: ``on_layer(layer, regions)`` for every new batch of regions and
    ``on_split(layer, ident, n_children)`` when regions of ``layer`` (>= 1) are split."""

    def __init__(self, on_layer: Optional[Callable] = None, on_split: Optional[Callable] = None):
        self.on_layer, self.on_split = on_layer, on_split

    def regions(self, layer: int, batch: Regions) -> None:
        if self.on_layer is not None:
            self.on_layer(layer, batch)

    def split_done(self, layer: int, ident: np.ndarray, n_children: np.ndarray) -> None:
        if self.on_split is not None:
            self.on_split(layer, ident, n_children)


def enumerate_regions(net: Network, domain: Optional[Domain] = None, settings: Optional[Settings] = None, *,
                      sink: Optional[RegionSink | list] = None, collect: bool = False, progress: bool = False,
                      resume: Optional[ResumeState] = None,
                      should_stop: Optional[Callable[[], bool]] = None) -> EnumerationResult:
    """Enumerate every full-dimensional activation region of ``net`` over ``domain``.

    Parameters
    ----------
    net : the network; domain : default ``[-1, 1]^d``.
    settings : the run's knobs (:class:`lrenum.settings.Settings`: device, batch sizes, vertex
        path, LP lanes, ...); default :meth:`Settings.build` (defaults and ``LRENUM_SETTINGS``).
    sink : receives every batch of regions as soon as they exist (:class:`RegionSink`, or a list
        of them, each given every batch in turn).
    collect : also return the final patterns and witnesses (memory grows with the count).
    progress : a progress line on stderr (from the first second).
    resume : continue an interrupted walk (the dataset writer builds this state).
    should_stop : asked after every split; True ends the walk early, leaving the regions not yet
        split in ``result.pending`` (every region above them already went to the sinks). The
        sharded run uses it to hand a long subtree's frontier back to the driver.
    """
    settings = Settings.build() if settings is None else settings
    if domain is None:
        domain = box_domain(-1.0, 1.0, net.input_dim)
    if domain.dim != net.input_dim:
        raise InputError(f"domain has dimension {domain.dim} but the network has {net.input_dim} inputs")
    dev = runtime.select_device(settings.device)
    meter = Progress(net.n_hidden, enabled=progress)
    t0 = time.perf_counter()
    stats = DecisionStats()
    frame = Frame(net, domain, settings)
    with runtime.CompileCounter() as compiles, runtime.DeviceClock() as clock, runtime.device_errors():
        splitter = Splitter(frame, dev, stats)
        batch_size = settings.parents_per_split(splitter.vertex is not None)
        memory.check_run(settings, int(sum(net.hidden_widths)), frame.r, max(net.hidden_widths), batch_size)
        sinks = [] if sink is None else list(sink) if isinstance(sink, (list, tuple)) else [sink]
        collector = Collector(net.n_hidden) if collect else None
        if collector is not None:
            sinks.append(collector)
        tree = Tree(frame, splitter, sinks, resume.next_id if resume else None,
                    resume.root_given if resume else None)
        pending, compacted = walk_tree(tree, batch_size, resume, meter, should_stop)
    counts = tree.counts
    meter.close(counts)
    result = EnumerationResult(
        regions=counts[-1], per_layer=counts, seconds=time.perf_counter() - t0,
        device=runtime.describe_device(dev), stats=stats, compilations=compiles.count,
        compile_seconds=compiles.seconds, pending=pending)
    result.extra["compacted_regions"] = compacted
    result.extra.update(device_calls=clock.calls, device_seconds=round(clock.seconds, 6),
                        host_seconds=round(max(0.0, result.seconds - clock.seconds), 6),
                        split_path=_paths_taken(stats))
    if collector is not None:
        N = int(sum(net.hidden_widths))
        result.patterns = np.concatenate(collector.patterns) if collector.patterns else np.zeros((0, N), bool)
        result.witnesses = np.concatenate(collector.witnesses) if collector.witnesses else np.zeros((0, net.input_dim))
    return result


def _paths_taken(stats: DecisionStats) -> str:
    """Which paths split the regions (vertex path on the host, LPs on the device, or both)."""
    paths = [name for name, used in (("vertices (host)", stats.vertex_decisions > 0),
                                     ("LPs (device)", stats.lps > 0)) if used]
    return " + ".join(paths) or "cheap tests only"


def walk_tree(tree: Tree, batch_size: int, resume: Optional[ResumeState], meter: Progress,
          should_stop: Optional[Callable[[], bool]] = None) -> tuple[list, int]:
    """The walk; returns the regions left unsplit by ``should_stop`` and how many were stored compact."""
    frame, splitter = tree.frame, tree.splitter
    settings, L = frame.settings, tree.L
    splitter.on_step = meter.inside          # progress from inside long splits too
    budget = settings.children_per_split(splitter.device.platform, splitter.vertex is not None)
    stacks = [_Stack(lambda batch: rebuild_compact(frame, splitter.propagate, batch),
                     compact_over=min(budget, settings.compact_over)) for _ in range(L)]
    if resume is None:
        stacks[0].push(tree.root())
    else:
        for layer, batch in resume.pending:
            stacks[layer].push(tree.with_vertex_sets(batch))
    per_parent = [None] * L        # children per parent seen so far at each level (None: not yet measured)
    widths, dim = list(frame.net.hidden_widths), frame.r

    def hand_on(level: int, children: Regions) -> None:
        if level + 1 < L:
            stacks[level + 1].push(children)

    def compacted() -> int:
        return sum(s.compacted for s in stacks)

    # the root's split is handed on piece by piece, each piece's subtree walked before the next
    # (the root's children are bounded by the network, not the batch: 66,259 for a 4-input net
    # with 48 first-layer neurons); ``root_split`` holds the rest of it meanwhile
    root_split = None
    while True:
        level = next((l for l in range(L - 1, -1, -1) if stacks[l].size), None)
        if level is None and root_split is None:
            break
        if level is None or (level == 0 and should_stop is None and root_split is None):
            if root_split is None:
                root_split = tree.children(stacks[0].pop(1))
                tree.tell_root_split(True)
            piece = next(root_split, None)
            if piece is None:
                root_split = None
                tree.tell_root_split(False)
            else:
                hand_on(0, piece[0])
            meter.update(tree.counts, pending=[s.size for s in stacks])
            continue
        # parents per split: the batch size, fewer where each parent has many children, so that one
        # split's arrays (cells, rows, LPs) stay bounded whatever the children per parent (measured:
        # 512 MNIST parents x 450 children each held 11.8 GB)
        est = per_parent[level]
        if est is None:
            bound = most_children(widths[level], dim)
            take = int(np.clip(budget // bound, 1, min(batch_size, settings.first_probe)))
        else:
            take = int(np.clip(budget / est, 1, batch_size))
        parents = stacks[level].pop(take)
        n_children = np.zeros(len(parents), np.int64)
        for children, local in tree.children(parents):   # each chunk handed on before the next is built
            n_children += np.bincount(local, minlength=len(parents))
            hand_on(level, children)
        # the mean, raised towards the largest parent seen: a batch of heavy parents after light
        # ones must not overshoot the budget (measured: the mean alone let a 12-input 16-16 run
        # peak at 2.7 GB)
        seen = max(n_children.sum() / max(1, len(parents)), 0.25 * float(n_children.max(initial=0)))
        per_parent[level] = seen if est is None else max(seen, 0.5 * est)
        meter.update(tree.counts, pending=[s.size for s in stacks])
        if should_stop is not None and should_stop():
            return [(l, stacks[l].pop(stacks[l].size)) for l in range(L) if stacks[l].size], compacted()
    return [], compacted()
