"""Split a batch of layer-l regions into their layer-(l+1) children: the algorithm in five steps.

    hyperplanes  each parent's next-layer hyperplanes, from its affine map (device kernel)
    classify     constant / cuts / one-signed by cheap tests; the rest stays open
    vertices     at small d, parents with a vertex set: the arrangement from vertex signs, each
                 "empty" side certified by a dual read off a vertex (:mod:`lrenum.core.vertices`)
    arrange      otherwise: LPs for the open neurons, then the cutting hyperplanes added one by
                 one to every cell (see :mod:`lrenum.core.arrangement`)
    assemble     children's patterns, rows and maps; witnesses certified by a forward pass; ranks

Every "no interior" answer is certified where it is made, every "interior" answer with the
children, so nothing the float kernels propose is trusted uncertified.
"""

from __future__ import annotations

from typing import Callable, Iterator, Optional

import numpy as np

from ..certify import device_certs
from ..certify.decide import Decider, DecisionStats
from ..lp.device import choose_backend
from .arrangement import SideTester, arrange, witnesses
from . import group_split
from .children import ChildCells, assemble
from .classify import classify
from .frame import Frame
from .hyperplanes import Propagator
from .state import Regions, SplitResult, pattern_keys


class Splitter:
    """Holds what one enumeration shares; :meth:`split` does one layer for one batch of parents."""

    def __init__(self, frame: Frame, device, stats: DecisionStats, backend=None, propagate_batch: Optional[int] = None):
        """``backend``: the margin-LP back end, when the caller brings one (the pooled back end of
        :mod:`lrenum.lp.pool`); else the cheaper device back end for this frame.
        ``propagate_batch``: regions per hyperplane-propagation call (:class:`Propagator`)."""
        self.frame = frame
        self.device = device
        self.stats = stats
        settings = frame.settings
        self.propagate = Propagator(frame, device, propagate_batch)
        rows = int(sum(frame.widths)) + 1
        self.backend = choose_backend(frame.geometry, rows, device, settings) if backend is None else backend
        self.decider = Decider(frame.geometry, lambda: frame.exact, stats, frame.d, settings,
                               device_certs.for_run(frame.net, frame.geometry, device, settings.certify_on_device))
        from .vertices import VertexSplitter   # low-dimensional path

        self.vertex = VertexSplitter.for_frame(frame, stats)
        self.on_step: Optional[Callable[[int, int, int, int], None]] = None   # (layer, hyperplanes added,
                                                # of how many, cells so far): progress inside one split

    def _report(self, layer: int) -> Callable[[int, int, int], None]:
        """The progress callback of one split of layer-``layer`` parents (no-op without a meter)."""
        on_step = self.on_step
        if on_step is None:
            return lambda step, steps, cells: None
        return lambda step, steps, cells: on_step(layer, step, steps, cells)

    def split(self, P: Regions) -> SplitResult:
        """Children of every region in ``P`` (grouped by parent) and each parent's number of children."""
        parts = list(self.split_chunks(P))
        children = Regions.concat([ch for ch, _ in parts])
        local = np.concatenate([loc for _, loc in parts])
        return SplitResult(children, np.bincount(local, minlength=len(P)))

    def split_chunks(self, P: Regions) -> Iterator[tuple[Regions, np.ndarray]]:
        """The children of ``P`` (grouped by parent) in chunks of at most ``assemble_chunk``, each with
        the index of every child's parent in ``P``; at least one chunk, maybe empty. A single
        parent can have 10^4-10^5 children (the root of a 12-input network: 57,292; of a 4-input
        48-wide layer: 66,259): certifying ranks and witnesses makes several copies of their rows,
        and the caller can hand each chunk on (and store it compactly) before the next is built.
        A single parent on the vertex path is built in pieces (:meth:`_in_pieces`), handed on as
        they are finished."""
        frame, stats = self.frame, self.stats
        hyp = self.propagate(P)
        cls = classify(frame, P, hyp, stats, self.decider.certify_empty)
        if group_split.takes(frame, P.layer):   # max pooling over 3+ values: argmax cells, not an arrangement
            splitter = group_split.GroupSplitter(frame, self.backend, self.decider, stats)
            cells = splitter.split(P, hyp, cls, self._report(P.layer))
            yield from self._assembled(P, hyp, cls, cells, copies=False)
            return
        cls = self._without_copies(P.layer, cls)
        if self.vertex is not None and P.vertices is not None and len(P) == 1 and self.vertex.takes(P, cls)[0]:
            yield from self._in_pieces(P, hyp, cls)
            return
        done = np.zeros(len(P), bool)
        parts = []
        if self.vertex is not None and P.vertices is not None:
            tester = SideTester(frame, P, hyp, self.backend, self.decider, stats)
            cells, handled = self.vertex.split(P, hyp, cls, tester, last_layer=P.layer + 1 == frame.net.n_hidden,
                                               report=self._report(P.layer))
            done |= handled
            if cells is not None:
                parts.append(cells)
        exact = ~done & cls.unreliable
        if np.any(exact):
            from .exact_split import exact_cells

            parts.append(exact_cells(frame, P, hyp, cls, np.nonzero(exact)[0], stats))
            done |= exact
        rest = np.nonzero(~done)[0]
        if rest.size:
            parts.append(self._arrange(P, hyp, cls, rest))
        cells = _concat_cells(parts, self.vertex)
        if np.any(cells.parent[1:] < cells.parent[:-1]):
            order = np.argsort(cells.parent, kind="stable")
            cells = ChildCells(cells.parent[order], cells.signs[order], cells.witness[order],
                               None if cells.vertices is None else cells.vertices.take(order))
        yield from self._assembled(P, hyp, cls, cells)

    def _without_copies(self, layer: int, cls):
        """Copies of another neuron of the layer (proportional rows, :mod:`lrenum.model.coincidences`)
        are never hyperplanes of the arrangement: their representative's hyperplane is theirs."""
        copies = self.frame.copies
        passengers = copies.rep[layer] != np.arange(copies.rep[layer].size)
        if not passengers.any():
            return cls
        return cls._replace(cuts=cls.cuts & ~passengers, open=cls.open & ~passengers)

    def _with_copies_signs(self, P: Regions, cls, cells: ChildCells) -> ChildCells:
        """A copy's sign from its representative's: the same (c > 0) or the opposite (c < 0) where
        the representative is not constant on the parent (constant neurons keep their own
        constant's side: an exact zero is inactive for both)."""
        rep, sign = self.frame.copies.rep[P.layer], self.frame.copies.sign[P.layer]
        passengers = np.flatnonzero(rep != np.arange(rep.size))
        if passengers.size == 0 or len(cells.parent) == 0:
            return cells
        signs = cells.signs.copy()
        follow = ~cls.const[cells.parent][:, passengers]
        signs[:, passengers] = np.where(follow, sign[passengers] * cells.signs[:, rep[passengers]],
                                        cells.signs[:, passengers])
        return cells._replace(signs=signs.astype(np.int8))

    def _assembled(self, P: Regions, hyp, cls, cells: ChildCells, copies: bool = True
                   ) -> Iterator[tuple[Regions, np.ndarray]]:
        """Cells made child regions, ``assemble_chunk`` at a time (at least one chunk, maybe empty);
        ``copies``: fill in the copies' signs (cells of the arrangement; a group split signs every unit)."""
        if copies:
            cells = self._with_copies_signs(P, cls, cells)
        n = len(cells.parent)
        step = self.frame.settings.assemble_chunk
        for s in range(0, max(n, 1), step):
            rows = slice(s, min(s + step, n))
            chunk = ChildCells(cells.parent[rows], cells.signs[rows], cells.witness[rows],
                               None if cells.vertices is None else cells.vertices.take(rows))
            yield assemble(self.frame, P, hyp, cls.const, chunk, self.decider, self.stats)

    def _in_pieces(self, P: Regions, hyp, cls) -> Iterator[tuple[Regions, np.ndarray]]:
        """One parent on the vertex path, its arrangement built ``piece_cells`` cells at a time. If the
        vertex path gives up after some children were handed on, the LP path finishes the parent
        and hands on only the children not given yet (a region's signs name it)."""
        from .vertices import PiecesFailed

        tester = SideTester(self.frame, P, hyp, self.backend, self.decider, self.stats)
        last = P.layer + 1 == self.frame.net.n_hidden
        given = set()
        try:
            for cells in self.vertex.split_in_pieces(P, hyp, cls, tester, last, self.frame.settings.piece_cells,
                                                     self._report(P.layer)):
                given.update(pattern_keys(cells.signs > 0))
                yield from self._assembled(P, hyp, cls, cells)
        except PiecesFailed:
            cells = self._arrange(P, hyp, cls, np.array([0]))
            new = np.array([k not in given for k in pattern_keys(cells.signs > 0)], bool)
            cells = ChildCells(cells.parent[new], cells.signs[new], cells.witness[new],
                               self.vertex.no_vertices(int(new.sum())))
            yield from self._assembled(P, hyp, cls, cells)

    def _arrange(self, P: Regions, hyp, cls, which: np.ndarray) -> ChildCells:
        """The LP path for parents ``which``."""
        sub = P.take(which)
        sub_hyp = hyp._replace(**{f: getattr(hyp, f)[which] for f in hyp._fields})
        sub_cls = cls._replace(**{f: getattr(cls, f)[which] for f in cls._fields})
        tester = SideTester(self.frame, sub, sub_hyp, self.backend, self.decider, self.stats)
        cells, pool, cuts = arrange(self.frame, sub, sub_hyp, sub_cls, tester, self.stats, self._report(P.layer))
        wit, _ = witnesses(pool, len(cells.parent))
        signs = np.where(cuts[cells.parent], cells.signs, sub_cls.sign[cells.parent]).astype(np.int8)
        return ChildCells(which[cells.parent], signs, wit)


def _concat_cells(parts: list, vertex_path) -> ChildCells:
    """One batch of cells; where some parts carry vertex sets, the others get empty ones (LP path below)."""
    if len(parts) == 1:
        return parts[0]
    vertices = None
    if any(p.vertices is not None for p in parts):
        vertices = type(next(p.vertices for p in parts if p.vertices is not None)).concat(
            [p.vertices if p.vertices is not None else vertex_path.no_vertices(len(p.parent)) for p in parts])
    return ChildCells(np.concatenate([p.parent for p in parts]), np.concatenate([p.signs for p in parts]),
                      np.concatenate([p.witness for p in parts]), vertices)
