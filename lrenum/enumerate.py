"""Exact enumeration: walk the layer-by-layer region tree batch by batch.

The walk always splits a batch from the deepest layer that has regions waiting, so the
live frontier stays bounded by (layers x batch x children per region), never by the total
number of regions. Regions are handed to a callback as soon as they are final (the last
hidden layer) or as soon as their number of children is known (earlier layers), which is
how the HDF5 writer streams them to disk.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from . import _jax
from .certify import certify_witnesses
from .decide import DecisionStats
from .domain import Domain, box_domain
from .errors import InputError
from .network import Network
from .progress import Progress
from .regions import RegionBatch
from .split import Splitter

LayerCallback = Callable[[int, RegionBatch], None]
SplitCallback = Callable[[int, np.ndarray, np.ndarray], None]


@dataclass
class EnumerationResult:
    """Summary of an enumeration. ``per_layer[l]`` counts the regions after hidden layer l+1."""

    regions: int
    per_layer: list[int]
    seconds: float
    device: str
    stats: DecisionStats
    patterns: Optional[np.ndarray] = None   # (regions, N) bool, when collected
    witnesses: Optional[np.ndarray] = None  # (regions, d), when collected
    extra: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """The JSON summary printed by ``lrenum enumerate --json``."""
        out = {"regions": self.regions, "seconds": round(self.seconds, 6), "per_layer": self.per_layer,
               "certified": self.stats.certified_f64, "exact_decisions": self.stats.exact,
               "lps": self.stats.lps, "lps_avoided": self.stats.avoided,
               "witness_repairs": self.stats.witness_repairs,
               "uncertified_witnesses": self.stats.uncertified_witnesses, "device": self.device}
        out.update(self.extra)
        return out


def root_region(net: Network, domain: Domain) -> RegionBatch:
    """The whole domain as the single region of layer 0, with a certified witness."""
    d = net.input_dim
    m = domain.A.shape[0]
    if domain.kind == "polytope":
        from scipy.optimize import linprog

        norms = np.linalg.norm(domain.A, axis=1)
        res = linprog(np.r_[np.zeros(d), -1.0], A_ub=np.c_[domain.A, norms], b_ub=domain.b,
                      bounds=[(None, None)] * (d + 1), method="highs")
        w = res.x[:d]
    else:
        w = domain.center()
    status, radius = certify_witnesses(net, domain, w[None], [], [], [], [])
    if status[0] != 0:
        raise InputError("domain has no certified interior point (empty or too thin)")
    return RegionBatch(
        layer=0, bits=np.zeros((1, 0), bool), const=np.zeros((1, 0), bool),
        A=domain.A[None].copy(), b=domain.b[None].copy(), ea=np.zeros((1, m)), eb=np.zeros((1, m)),
        rmask=np.ones((1, m), bool), M=np.eye(d)[None], c=np.zeros((1, d)), eM=np.zeros((1, d)),
        ec=np.zeros((1, d)), witness=w[None].astype(np.float64), radius=radius,
        rank=np.zeros((1, 0), np.int64), parent=np.array([-1]), ident=np.array([0]))


class _Stack:
    """Regions of one layer waiting to be split, in chunks."""

    def __init__(self):
        self.chunks: list[RegionBatch] = []
        self.size = 0

    def push(self, batch: RegionBatch) -> None:
        if len(batch):
            self.chunks.append(batch)
            self.size += len(batch)

    def pop(self, n: int) -> RegionBatch:
        taken, got = [], 0
        while self.chunks and got < n:
            chunk = self.chunks.pop()
            need = n - got
            if len(chunk) > need:
                self.chunks.append(chunk.take(slice(need, None)))
                chunk = chunk.take(slice(0, need))
            taken.append(chunk)
            got += len(chunk)
        self.size -= got
        return RegionBatch.concat(taken)


def enumerate_regions(net: Network, domain: Optional[Domain] = None, *, batch_size: int = 512,
                      device: Optional[str] = None, on_layer: Optional[LayerCallback] = None,
                      on_split: Optional[SplitCallback] = None,
                      collect: bool = False, progress: bool = False, lp_dtype=np.float64,
                      start: Optional[list] = None, lp_batch: Optional[int] = None) -> EnumerationResult:
    """Enumerate every full-dimensional activation region of ``net`` over ``domain``.

    Parameters
    ----------
    net : the network; domain : default ``[-1, 1]^d``.
    batch_size : parents split together (bounds memory together with the widths).
    device : 'cpu', 'gpu' or None (JAX's default device).
    on_layer : ``on_layer(l, regions)`` is called for every batch of layer-l regions (l >= 1) as
        soon as they exist. ``regions.ident`` numbers them within layer l, ``regions.parent``
        points into layer l-1. Layer ``L = net.n_hidden`` holds the final regions.
    on_split : ``on_split(l, ident, n_children)`` is called when layer-l regions have been split.
    collect : also return the final patterns and witnesses (memory grows with the count).
    progress : print regions per layer and the rate to stderr.
    lp_batch : LPs per device call (default 1024 on a CPU, 16384 on a GPU).
    start : internal, for resuming: stacks of pending regions and id counters.
    """
    if domain is None:
        domain = box_domain(-1.0, 1.0, net.input_dim)
    if domain.dim != net.input_dim:
        raise InputError(f"domain has dimension {domain.dim} but the network has {net.input_dim} inputs")
    dev = _jax.select_device(device)
    t0 = time.perf_counter()
    stats = DecisionStats()
    splitter = Splitter(net, domain, dev, stats, lp_dtype=lp_dtype, batch_size=batch_size,
                        lp_batch=lp_batch)
    L = net.n_hidden
    stacks = [_Stack() for _ in range(L)]
    next_id = [1] + [0] * L
    if start is None:
        stacks[0].push(root_region(net, domain))
    else:
        for layer, batch in start[0]:
            stacks[layer].push(batch)
        next_id = list(start[1])
    counts = list(next_id[1:])
    pats, wits = [], []
    meter = Progress(L, enabled=progress)
    while True:
        level = next((l for l in range(L - 1, -1, -1) if stacks[l].size), None)
        if level is None:
            break
        parents = stacks[level].pop(batch_size)
        children, n_children = splitter.split(parents)
        children.ident = np.arange(next_id[level + 1], next_id[level + 1] + len(children), dtype=np.int64)
        next_id[level + 1] += len(children)
        counts[level] += len(children)
        if on_layer is not None:
            on_layer(level + 1, children)
        if on_split is not None and level > 0:
            on_split(level, parents.ident, n_children)
        if level + 1 == L:
            if collect:
                pats.append(children.bits.copy())
                wits.append(children.witness.copy())
        else:
            stacks[level + 1].push(children)
        meter.update(counts, pending=[s.size for s in stacks])
    meter.close(counts)
    result = EnumerationResult(
        regions=counts[-1], per_layer=counts, seconds=time.perf_counter() - t0,
        device=_jax.describe_device(dev), stats=stats)
    if collect:
        N = int(sum(net.hidden_widths))
        result.patterns = np.concatenate(pats) if pats else np.zeros((0, N), bool)
        result.witnesses = np.concatenate(wits) if wits else np.zeros((0, net.input_dim))
    return result
