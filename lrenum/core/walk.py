"""Exact enumeration: walk the layer-by-layer region tree, batch by batch.

The walk always splits a batch from the deepest layer that has regions waiting, so the live
frontier stays bounded by (layers x batch x children per region), never by the number of
regions. The root's children (bounded by the network, not the batch) are handed on a group at
a time, each group's subtree walked before the next. Regions go to a *sink* as soon as they
exist (:class:`RegionSink`): the HDF5 writer is one (:mod:`lrenum.datasets.writer`), collecting
patterns in memory is another.

The walk, its result type, its stacks and its two small sinks stay together, a little over 350
lines: the walk is the paper's loop, and the rest is the state it alone reads and writes.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable, NamedTuple, Optional, Protocol

import numpy as np

from .. import runtime
from ..certify.decide import DecisionStats, WitnessStatus
from ..certify.floatcert import certify_witnesses
from ..errors import InputError
from ..model.domain import Domain, box_domain
from ..model.network import Network
from . import memory
from .frame import Frame
from .progress import Progress
from .split import Splitter
from .state import AffineMaps, Regions, Rows, pattern_keys


class RegionSink(Protocol):
    """Where the walk puts regions as they are found."""

    def regions(self, layer: int, batch: Regions) -> None:
        """New regions of hidden layer ``layer`` (numbered: ``batch.ident``; ``batch.parent``
        points into layer - 1). Layer ``L`` holds the final regions."""

    def split_done(self, layer: int, ident: np.ndarray, n_children: np.ndarray) -> None:
        """Regions ``ident`` of ``layer`` have been split and all their children delivered."""

    # optional: ``root_split(is_open)``: the root's children are being delivered in pieces, with
    # deeper splits (and their ``split_done``) in between (True), or all have been (False)


class ResumeState(NamedTuple):
    """Where an interrupted walk stands: regions still to split (per layer) and the id counters."""

    pending: list          # [(layer, Regions)] regions whose children are not all committed
    next_id: list          # [1, next id of layer 1, ..., next id of layer L]
    root_given: Optional[np.ndarray] = None   # (m, n_1) bool: with the root pending, the patterns of
                                              # its children already committed (not handed on again)


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
               "lps": s.lps, "lps_avoided": s.avoided, "vertex_decisions": s.vertex_decisions,
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


def root_region(frame: Frame) -> Regions:
    """The whole domain as the single region of layer 0, with a certified witness."""
    net, domain = frame.net, frame.domain
    r = frame.r
    w = domain.center()
    status, radius = certify_witnesses(net, domain, w[None], [], [], [], [])
    if status[0] != 0:
        raise InputError("domain has no certified interior point (empty or too thin)")
    z = np.zeros((1, 0))
    return Regions(
        layer=0, bits=np.zeros((1, 0), bool), const=np.zeros((1, 0), bool),
        rows=Rows(np.zeros((1, 0, r)), z, z, z, np.zeros((1, 0), bool)),
        maps=AffineMaps(np.zeros((1, 0, r)), z, z, z), witness=w[None].astype(np.float64), radius=radius,
        wstatus=np.array([WitnessStatus.FLOAT], np.int8), rank=np.zeros((1, 0), np.int64),
        parent=np.array([-1]), ident=np.array([0]), vertices=None)


FIRST_PROBE = 16   # parents in the first split of a level, before its children per parent are known


def most_children(width: int, dim: int) -> int:
    """At most how many children one parent can have: the regions of ``width`` hyperplanes in
    general position in ``dim`` dimensions (Zaslavsky), sum_{i <= dim} C(width, i). The first probe
    of a level takes no more parents than the split budget allows at this bound (measured: 16
    probing parents of a 12-input 16-16 network had 194,178 children, 12x the budget, and the run
    peaked at 2.8 GB against 1.6 GB after it)."""
    return int(sum(math.comb(width, i) for i in range(min(width, dim) + 1)))


def children_per_split(device, vertex_path: bool = False) -> int:
    """Children one split may produce (bounds its memory): ~30 MB of rows at MNIST sizes on a CPU;
    a GPU wants ~10^5 lanes at once. On the vertex path each child also carries its vertex set,
    and a split costs per hyperplane, not per lane: half the budget on a CPU (a GPU's budget is
    set by its lanes; not measured there). Measured on the 2-core CPU (2026-11-23, ASSEMBLE_CHUNK
    4096), 16,384 -> 8,192: a 4-input 24-24-24 net on [-8, 8]^4 (1,002,506 regions) peaked at
    346 -> 330-332 MB, no slower; 4,096 saved 15-30 MB more but was ~5% slower."""
    if device.platform == "gpu":
        return 262_144
    return 8_192 if vertex_path else 16_384


COMPACT_OVER = 4096   # waiting regions per layer kept whole; the rest are compacted. Measured on the 2-core CPU
                     # (2026-11-23, results/memory-cpu-2026-11-23*.md), against the split budget (16,384): a 4-input
                     # 24-24-24 net on [-4, 4]^4 (798,972 regions) peaked at 367 instead of 426 MB, no slower


class _Stack:
    """Regions of one layer waiting to be split, in chunks (each chunk homogeneous).

    Past ``compact_over`` waiting regions, a pushed chunk is kept without its rows and maps (about
    80% of a region's bytes at d = 4) and rebuilt from its patterns when popped
    (:func:`lrenum.core.rebuild.rebuild_regions`, bit for bit what the split built): the children
    of one parent are not bounded by the split budget (the root of a 4-input network with 48
    neurons in its first layer has 66,259). The root's come 2,048 at a time, each group's subtree
    walked before the next (:func:`_walk`; on the vertex path built in pieces too,
    :meth:`Splitter._in_pieces`).
    """

    def __init__(self, rebuild: Optional[Callable[[Regions], Regions]] = None, compact_over: float = math.inf):
        self.chunks: list[Regions] = []
        self.size = 0
        self.rebuild, self.compact_over = rebuild, compact_over

    def push(self, batch: Regions) -> None:
        if len(batch):
            if self.rebuild is not None and self.size + len(batch) > self.compact_over:
                batch = replace(batch, rows=None, maps=None)
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


class _Callbacks:
    """Adapts the older callback arguments to the sink interface."""

    def __init__(self, on_layer, on_split):
        self.on_layer, self.on_split = on_layer, on_split

    def regions(self, layer, batch):
        if self.on_layer is not None:
            self.on_layer(layer, batch)

    def split_done(self, layer, ident, n_children):
        if self.on_split is not None:
            self.on_split(layer, ident, n_children)


BATCH_SIZE = 512          # parents split together (LP path): tuned for the device LPs' lanes
VERTEX_BATCH_SIZE = 1024  # on the vertex path, whose cost per split is mostly numpy's per-call overhead:
                          # measured on the 2-core CPU (2026-11-23, 3 runs each, interleaved), 512 -> 1024
                          # parents: 3-input 48-48-48 6.26 -> 5.74 s, 4-input 16-16-16-16 3.89 -> 3.54 s,
                          # 4-input 24-24-24 3.54 -> 3.41 s; 2048 was no better overall


def enumerate_regions(net: Network, domain: Optional[Domain] = None, *, batch_size: Optional[int] = None,
                      device: Optional[str] = None, sink: Optional[RegionSink] = None, on_layer=None,
                      on_split=None, collect: bool = False, progress: bool = False, lp_dtype=np.float64,
                      resume: Optional[ResumeState] = None, lp_batch: Optional[int] = None,
                      vertex_path: Optional[bool] = None,
                      should_stop: Optional[Callable[[], bool]] = None) -> EnumerationResult:
    """Enumerate every full-dimensional activation region of ``net`` over ``domain``.

    Parameters
    ----------
    net : the network; domain : default ``[-1, 1]^d``.
    batch_size : parents split together (bounds memory together with the widths); default
        BATCH_SIZE, VERTEX_BATCH_SIZE on the vertex path.
    device : 'cpu', 'gpu' or None (JAX's default device).
    sink : receives every batch of regions as soon as they exist (:class:`RegionSink`);
        ``on_layer(l, regions)`` / ``on_split(l, ident, n_children)`` are the same as callbacks.
    collect : also return the final patterns and witnesses (memory grows with the count).
    progress : a progress bar on stderr (from the first second).
    lp_dtype : float type of the device LPs (float32 proposes, float64 still certifies).
    resume : continue an interrupted walk (the dataset writer builds this state).
    lp_batch : LPs per device call (default 16384 on a GPU, 256 on a CPU).
    vertex_path : the low-dimensional vertex path (:mod:`lrenum.core.vertices`): None uses it on box
        domains up to d = 6, True insists (an error where it cannot run), False uses LPs only.
    should_stop : asked after every split; True ends the walk early, leaving the regions not yet
        split in ``result.pending`` (every region above them already went to the sinks). The
        sharded run uses it to hand a long subtree's frontier back to the driver.
    """
    if domain is None:
        domain = box_domain(-1.0, 1.0, net.input_dim)
    if domain.dim != net.input_dim:
        raise InputError(f"domain has dimension {domain.dim} but the network has {net.input_dim} inputs")
    if batch_size is not None and batch_size < 1:
        raise InputError("batch_size must be at least 1")
    dev = runtime.select_device(device)
    meter = Progress(net.n_hidden, enabled=progress)
    t0 = time.perf_counter()
    stats = DecisionStats()
    frame = Frame(net, domain)
    with runtime.CompileCounter() as compiles:
        splitter = Splitter(frame, dev, stats, lp_batch=lp_batch, lp_dtype=lp_dtype, vertex_path=vertex_path)
        if batch_size is None:
            batch_size = VERTEX_BATCH_SIZE if splitter.vertex is not None else BATCH_SIZE
        memory.check_run(int(sum(net.hidden_widths)), frame.r, max(net.hidden_widths), batch_size)
        sinks = [s for s in (sink, _Callbacks(on_layer, on_split) if (on_layer or on_split) else None) if s]
        collector = Collector(net.n_hidden) if collect else None
        if collector is not None:
            sinks.append(collector)
        counts, pending = _walk(frame, splitter, sinks, batch_size, resume, meter, should_stop)
    meter.close(counts)
    result = EnumerationResult(
        regions=counts[-1], per_layer=counts, seconds=time.perf_counter() - t0,
        device=runtime.describe_device(dev), stats=stats, compilations=compiles.count,
        compile_seconds=compiles.seconds, pending=pending)
    if collector is not None:
        N = int(sum(net.hidden_widths))
        result.patterns = np.concatenate(collector.patterns) if collector.patterns else np.zeros((0, N), bool)
        result.witnesses = np.concatenate(collector.witnesses) if collector.witnesses else np.zeros((0, net.input_dim))
    return result


def _walk(frame: Frame, splitter: Splitter, sinks: list, batch_size: int, resume: Optional[ResumeState],
          meter: Progress, should_stop: Optional[Callable[[], bool]] = None) -> tuple[list[int], list]:
    L = frame.net.n_hidden
    budget = children_per_split(splitter.device, vertex_path=splitter.vertex is not None)
    stacks = [_Stack(lambda batch: _rebuilt(frame, splitter, batch), compact_over=min(budget, COMPACT_OVER))
              for _ in range(L)]
    if resume is None:
        root = root_region(frame)
        if splitter.vertex is not None:
            root = splitter.vertex.with_root_vertices(root)
        stacks[0].push(root)
        next_id = [1] + [0] * L
    else:
        for layer, batch in resume.pending:
            if splitter.vertex is not None and batch.vertices is None:   # regions read back: rebuilt
                batch = splitter.vertex.with_root_vertices(batch) if layer == 0 else splitter.vertex.with_vertices(batch)
            stacks[layer].push(batch)
        next_id = list(resume.next_id)
    counts = list(next_id[1:])
    per_parent = [None] * L        # children per parent seen so far at each level (None: not yet measured)
    widths, dim = list(frame.net.hidden_widths), frame.r
    skip = SkipGiven(resume.root_given if resume is not None else None)

    def hand_on(level: int, children: Regions) -> None:
        children = children.with_ids(np.arange(next_id[level + 1], next_id[level + 1] + len(children), dtype=np.int64))
        next_id[level + 1] += len(children)
        counts[level] += len(children)
        for s in sinks:
            s.regions(level + 1, children)
        if level + 1 < L:
            stacks[level + 1].push(children)

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
                root_split = splitter.split_chunks(stacks[0].pop(1))
                _tell_root_split(sinks, True)
            piece = next(root_split, None)
            if piece is None:
                root_split = None
                _tell_root_split(sinks, False)
            else:
                hand_on(0, skip(piece[0]))
            meter.update(counts, pending=[s.size for s in stacks])
            continue
        # parents per split: the batch size, fewer where each parent has many children, so that one
        # split's arrays (cells, rows, LPs) stay bounded whatever the children per parent (measured:
        # 512 MNIST parents x 450 children each held 11.8 GB)
        est = per_parent[level]
        if est is None:
            bound = most_children(widths[level], dim)
            take = int(np.clip(budget // bound, 1, min(batch_size, FIRST_PROBE)))
        else:
            take = int(np.clip(budget / est, 1, batch_size))
        parents = stacks[level].pop(take)
        n_children = np.zeros(len(parents), np.int64)
        for children, local in splitter.split_chunks(parents):   # each chunk handed on before the next is built
            n_children += np.bincount(local, minlength=len(parents))
            hand_on(level, skip(children) if level == 0 else children)
        # the mean, raised towards the largest parent seen: a batch of heavy parents after light
        # ones must not overshoot the budget (measured: the mean alone let a 12-input 16-16 run
        # peak at 2.7 GB)
        seen = max(n_children.sum() / max(1, len(parents)), 0.25 * float(n_children.max(initial=0)))
        per_parent[level] = seen if est is None else max(seen, 0.5 * est)
        if level > 0:
            for s in sinks:
                s.split_done(level, parents.ident, n_children)
        meter.update(counts, pending=[s.size for s in stacks])
        if should_stop is not None and should_stop():
            return counts, [(l, stacks[l].pop(stacks[l].size)) for l in range(L) if stacks[l].size]
    return counts, []


def _tell_root_split(sinks: list, is_open: bool) -> None:
    """The sinks that care (the dataset writer) learn whether the root's split is under way."""
    for s in sinks:
        if hasattr(s, "root_split"):
            s.root_split(is_open)


class SkipGiven:
    """Drops the root's children that an interrupted run already committed (named by their
    patterns, :attr:`ResumeState.root_given`): the root is split again on resume."""

    def __init__(self, given: Optional[np.ndarray]):
        self.keys = None if given is None or not len(given) else set(pattern_keys(given))

    def __call__(self, children: Regions) -> Regions:
        if self.keys is None or not len(children):
            return children
        new = np.array([k not in self.keys for k in pattern_keys(children.bits)], bool)
        return children if new.all() else children.take(new)


def _rebuilt(frame: Frame, splitter: Splitter, batch: Regions) -> Regions:
    """A compacted stack chunk with its rows and maps again (its vertex sets were kept)."""
    from .rebuild import rebuild_regions

    full = rebuild_regions(frame, splitter.propagate, batch.bits, batch.const, batch.witness, batch.radius,
                           batch.wstatus, batch.rank, batch.parent, batch.ident)
    return replace(full, vertices=batch.vertices)
