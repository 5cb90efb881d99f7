"""The region tree as it is built: the root, one split with its children numbered and handed to
the sinks, and the state a resumed walk starts from.

These are the pieces every walk shares: the one-process walk (:mod:`lrenum.core.walk`), the top
of a sharded run (:mod:`lrenum.distributed`) and the tree estimator
(:mod:`lrenum.counting.estimate`). Each decides *which* parents to split next; this module does
the splitting and the bookkeeping the same way for all of them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterator, NamedTuple, Optional, Protocol, Sequence

import numpy as np

from ..certify.decide import WitnessStatus
from ..certify.floatcert import certify_witnesses
from ..errors import InputError
from .frame import Frame
from .split import Splitter
from .state import AffineMaps, Regions, Rows, pattern_keys


class RegionSink(Protocol):
    """Where the walk puts regions as they are found."""

    def regions(self, layer: int, batch: Regions) -> None:
        """New regions of hidden layer ``layer`` (numbered: ``batch.ident``; ``batch.parent``
        points into layer - 1). Layer ``L`` holds the final regions."""

    def split_done(self, layer: int, ident: np.ndarray, n_children: np.ndarray) -> None:
        """Regions ``ident`` of ``layer`` (>= 1) have been split and all their children delivered."""

    # optional: ``root_split(is_open)``: the root's children are being delivered in pieces, with
    # deeper splits (and their ``split_done``) in between (True), or all have been (False)


class ResumeState(NamedTuple):
    """Where an interrupted walk stands: regions still to split (per layer) and the id counters."""

    pending: list          # [(layer, Regions)] regions whose children are not all committed
    next_id: list          # [1, next id of layer 1, ..., next id of layer L]
    root_given: Optional[np.ndarray] = None   # (m, n_1) bool: with the root pending, the patterns of
                                              # its children already committed (not handed on again)


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


class SkipGiven:
    """The root's children that an interrupted run already committed (named by their patterns,
    :attr:`ResumeState.root_given`) are not handed on again: the root is split again on resume."""

    def __init__(self, given: Optional[np.ndarray]):
        self.keys = None if given is None or not len(given) else set(pattern_keys(given))

    def new(self, bits: np.ndarray) -> Optional[np.ndarray]:
        """(n,) bool: which of these patterns are new; None when none is skipped."""
        if self.keys is None or not len(bits):
            return None
        new = np.array([k not in self.keys for k in pattern_keys(bits)], bool)
        return None if new.all() else new


class Tree:
    """The tree being built: it numbers new regions per layer and hands them to the sinks.

    ``next_id[l]`` is the id the next region of layer l gets (``next_id[0]`` is 1: the root).
    """

    def __init__(self, frame: Frame, splitter: Splitter, sinks: Sequence[RegionSink], next_id: Optional[list] = None,
                 root_given: Optional[np.ndarray] = None):
        self.frame, self.splitter, self.sinks = frame, splitter, list(sinks)
        self.L = frame.net.n_hidden
        self.next_id = list(next_id) if next_id is not None else [1] + [0] * self.L
        self.skip = SkipGiven(root_given)

    @property
    def counts(self) -> list[int]:
        """Regions numbered so far per hidden layer."""
        return self.next_id[1:]

    def root(self) -> Regions:
        """The root region, with its vertex set on the vertex path."""
        root = root_region(self.frame)
        return self.with_vertex_sets(root)

    def with_vertex_sets(self, batch: Regions) -> Regions:
        """Regions read back (resume, Ray task roots) get vertex sets again where the vertex path
        runs and they travelled without them."""
        vertex = self.splitter.vertex
        if vertex is None or batch.vertices is not None:
            return batch
        return vertex.with_root_vertices(batch) if batch.layer == 0 else vertex.with_vertices(batch)

    def children(self, parents: Regions) -> Iterator[tuple[Regions, np.ndarray]]:
        """Split ``parents``; every chunk of children is numbered and handed to the sinks, then
        yielded with each child's parent index in ``parents``. The root's children already
        committed by an interrupted run are skipped. After the last chunk the sinks learn that
        the parents are split (layers >= 1: the root's split is tracked by ``root_split``)."""
        level = parents.layer
        n_children = np.zeros(len(parents), np.int64)
        for children, local in self.splitter.split_chunks(parents):
            keep = self.skip.new(children.bits) if level == 0 else None
            if keep is not None:
                children, local = children.take(keep), local[keep]
            n_children += np.bincount(local, minlength=len(parents))
            children = self.number(level + 1, children)
            yield children, local
        if level > 0:
            for s in self.sinks:
                s.split_done(level, parents.ident, n_children)

    def number(self, layer: int, children: Regions) -> Regions:
        """Give new regions of ``layer`` their ids and hand them to the sinks."""
        start = self.next_id[layer]
        children = children.with_ids(np.arange(start, start + len(children), dtype=np.int64))
        self.next_id[layer] += len(children)
        for s in self.sinks:
            s.regions(layer, children)
        return children

    def tell_root_split(self, is_open: bool) -> None:
        """The sinks that care (the dataset writer) learn whether the root's split is under way."""
        for s in self.sinks:
            if hasattr(s, "root_split"):
                s.root_split(is_open)

    def split_all(self, regions: Regions, batch_size: int) -> tuple[Regions, np.ndarray]:
        """Every region of ``regions`` split (in batches of ``batch_size``): the children grouped by
        parent, in parent order, and the number of children of each."""
        kids, counts = [], []
        for s in range(0, len(regions), batch_size):
            part = regions.take(slice(s, s + batch_size))
            n = np.zeros(len(part), np.int64)
            for ch, local in self.children(part):
                kids.append(ch)
                n += np.bincount(local, minlength=len(part))
            counts.append(n)
        return Regions.concat(kids), np.concatenate(counts) if counts else np.zeros(0, np.int64)


def compact(batch: Regions) -> Regions:
    """Regions without their rows and maps (80% of a region's bytes at d = 4): what a stack keeps
    past its budget and what a Ray task receives; :func:`lrenum.core.rebuild.rebuild_regions`
    restores them bit for bit from the patterns."""
    return replace(batch, rows=None, maps=None)
