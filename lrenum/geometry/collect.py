"""Certified-float geometry of a whole enumeration, gathered while it runs (``--geometry``).

:class:`GeometrySink` is a region sink: every batch of final regions that arrives with proven
vertex sets (the vertex path, d <= 6, a box) is turned into facets, vertices and certified
volumes at once (:func:`lrenum.geometry.simple_polytopes.batch_geometry`); nothing is recomputed
per region. :meth:`GeometrySink.assemble` then puts the regions in the file's order and finds
the adjacency graph:

* across the facet of neuron q of region i, the neighbour's pattern is i's with bit q flipped,
  *if* such a region exists. Proof: on q's hyperplane H, every row of region i's closure and of
  that region's closure is the same affine function (the deeper layers see relu(z_q) = z_q = 0
  there), so both closures meet H in the same set, the facet, which is (d-1)-dimensional: the
  two regions share it. A lookup that finds nothing (a neuron that switches with q, a deeper
  neuron constant on one side) sends the region to the exact path, which finds its neighbours by
  probes (:func:`lrenum.geometry.facets.exact_region_record`);
* every region the fast path could not prove (no proven vertex set, a row too close to a
  vertex, no certified volume) is computed on the exact path and stored as float64 with its
  rounding as the bound, so every region of the file has the same kinds of data.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import numpy as np

from ..core.frame import Frame
from ..core.state import Regions
from ..core.vertex_sets import VertexSets, ragged_arange, rebuilt_from_rows
from ..model.domain import Domain
from ..errors import InputError
from ..model.network import Network
from ..tolerances import U64
from . import polyhedron
from .exact_from_vertices import exact_vertices_and_volume
from .facets import VERTEX_MAX_DIM, exact_region_record, pattern_index
from .sharing import PatternLookup, shared_vertices, vertex_hashes
from .simple_polytopes import batch_geometry, domain_row, rows_by_id


GEOMETRY_THREADS = 2   # threads working on final batches beside the walk: on this 2-core CPU (4-input 24-24-24, 123,885 regions) 1 thread left the walk waiting; the work is numpy on small arrays, mostly outside the GIL
IN_FLIGHT = 3   # final batches waiting for the geometry threads at most (each is one split's children)


def fast_path_applies(net: Network, domain: Domain, frame: Optional[Frame] = None) -> bool:
    """The final vertex sets exist and are proven only on a box at d <= VERTEX_MAX_DIM with rows
    in x-space (the identity basis)."""
    frame = frame or Frame(net, domain)
    return domain.kind == "box" and net.input_dim <= VERTEX_MAX_DIM and frame.geometry.identity_basis


class GeometrySink:
    """Keeps the final regions' geometry, batch by batch (the walk's sink for layer L)."""

    def __init__(self, net: Network, domain: Domain, background: bool = True):
        if net.has_groups:    # facets, neighbours (a flipped bit) and exact patterns here are the ReLU case's
            raise InputError("--geometry does not support max pooling over windows of 3 or more values yet "
                             "(enumerate, local, verify and estimate --method tree do)")
        self.net, self.domain = net, domain
        self.frame = Frame(net, domain)
        self.d, self.L = net.input_dim, net.n_hidden
        self.fast = fast_path_applies(net, domain, self.frame)
        if domain.kind == "box":
            self.lo, self.hi = (np.broadcast_to(np.asarray(v, np.float64), (self.d,)) for v in domain.box)
            self.reach = float(np.max(np.maximum(np.abs(self.lo), np.abs(self.hi))))
        self.parts: list[dict] = []
        # batches are worked on in background threads while the walk goes on (numpy releases the
        # GIL in its array work); at most IN_FLIGHT wait, so memory stays bounded by batches
        self._pool = ThreadPoolExecutor(max_workers=GEOMETRY_THREADS, thread_name_prefix="lrenum-geometry") if background else None
        self._waiting: deque = deque()

    def regions(self, layer: int, batch: Regions) -> None:
        if layer != self.L or not self.fast or len(batch) == 0:
            return
        if self._pool is None:
            self._batch(batch)
            return
        while len(self._waiting) >= IN_FLIGHT:
            self._waiting.popleft().result()                 # re-raises the worker's error here
        self._waiting.append(self._pool.submit(self._batch, batch))

    def finished(self) -> None:
        """Wait for the batches still being worked on (assemble does this first)."""
        while self._waiting:
            self._waiting.popleft().result()
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _batch(self, batch: Regions) -> None:
        has = np.zeros(len(batch), bool) if batch.vertices is None else batch.vertices.count > 0
        if has.any():
            part = batch if has.all() else batch.take(has)
            self._add(part.vertices, part.rows, part.bits)
        if not has.all():          # regions the LP path made: qhull proposes, the same proof decides
            rest = batch.take(~has)
            self._add(self._proposed_vertices(rest.rows, rest.witness), rest.rows, rest.bits)

    def _proposed_vertices(self, rows, witness) -> VertexSets:
        lo, hi = self.lo, self.hi
        words = (2 * self.d + int(sum(self.net.hidden_widths)) + 63) // 64
        listed = [(rows.C[i, m], rows.b[i, m], 2 * self.d + np.nonzero(m)[0]) for i, m in enumerate(rows.mask)]
        return rebuilt_from_rows(listed, witness, lo, hi, words, self.frame.settings.vertex_band)

    def _add(self, V: VertexSets, rows, bits: np.ndarray) -> None:
        lo, hi = self.lo, self.hi
        g = batch_geometry(V, rows, lo, hi)
        done = np.nonzero(g.done)[0]
        if done.size == 0:
            return
        fstart = np.cumsum(g.facet_count) - g.facet_count
        fsel = ragged_arange(fstart[done], g.facet_count[done])
        ids = g.facet_ids[fsel]
        reg = np.repeat(done, g.facet_count[done])
        A, b, label = self._facet_rows(ids, reg, rows, lo, hi)
        vsel = ragged_arange(V.start[done], V.count[done])
        self.parts.append({"keys": np.packbits(bits[done], axis=1),
                           "facet_count": g.facet_count[done], "A": A, "b": b, "neuron": label,
                           "vertex_count": V.count[done], "vertices": g.x[vsel], "vertex_radius": g.radius[vsel],
                           "vertex_tight": V.tight[vsel], "vertex_hash": vertex_hashes(g.x[vsel], V.tight[vsel], self.reach),
                           "volume": g.volume[done], "volume_bound": g.volume_bound[done]})

    def split_done(self, layer, ident, n_children) -> None:
        pass

    def _facet_rows(self, ids, reg, rows, lo, hi):
        """Facet rows ``A x <= b`` and the file's labels: neuron q, or -1 - k for the box's row k."""
        A, _, b, _ = rows_by_id(rows, lo, hi, reg, ids)
        label = np.where(ids >= 2 * self.d, ids - 2 * self.d, -1 - domain_row(ids, self.d))
        return A, b, label.astype(np.int64)

    # ------------------------------------------------------------------ the whole file
    def assemble(self, patterns: np.ndarray, progress=None, exact: bool = False) -> dict:
        """The ``geometry`` group's arrays for the regions ``patterns`` (the file's final
        patterns, in its order): fast regions as gathered, the rest on the exact path.
        ``exact``: the fast regions' vertices and volumes in rationals, from their proven tight
        rows (:mod:`lrenum.geometry.exact_from_vertices`), in the exact mode's layout. Called
        once: the gathered batches are handed over (memory: the geometry is held once, not twice)."""
        self.finished()
        d, n = self.d, len(patterns)
        lookup = PatternLookup(np.packbits(patterns, axis=1))
        fast = _concat(self.parts, d)
        self.parts = []
        where = lookup.find(fast["keys"])
        # neighbours across neuron facets: the pattern with that bit flipped
        fidx = np.repeat(np.arange(where.size), fast["facet_count"])
        on_neuron = np.nonzero(fast["neuron"] >= 0)[0]
        keys = fast["keys"][fidx[on_neuron]].copy()
        q = fast["neuron"][on_neuron]
        keys[np.arange(q.size), q // 8] ^= (0x80 >> (q % 8)).astype(np.uint8)
        other = lookup.find(keys)
        lost = np.zeros(where.size, bool)
        lost[fidx[on_neuron[other < 0]]] = True
        keep = (where >= 0) & ~lost
        is_fast = np.zeros(n, bool)
        is_fast[where[keep]] = True
        first = np.unique(where[keep], return_index=True)[1]     # one copy per region (a pattern is one region)
        kept = np.nonzero(keep)[0][first]
        good_edge = keep[fidx[on_neuron]] & (other >= 0)
        i_reg = where[fidx[on_neuron[good_edge]]]
        k_reg = other[good_edge]
        edges = [np.stack([np.minimum(i_reg, k_reg), np.maximum(i_reg, k_reg), q[good_edge]], axis=1)]
        # the rest on the exact path
        slow = np.nonzero(~is_fast)[0]
        ex = self.frame.exact if slow.size or exact else None
        todo = slow.size + (kept.size if exact else 0)
        records = {}
        index = pattern_index(patterns) if slow.size else {}
        for s, i in enumerate(slow):
            records[int(i)] = exact_region_record(ex, self.net, self.domain, int(i), patterns[i], patterns, index)
            if progress is not None:
                progress(s + 1, todo)
        for r in records.values():
            if r.edges:
                edges.append(np.array(r.edges, np.int64).reshape(-1, 3))
        out = _in_file_order(fast, kept, where, records, n, d)
        del fast                                   # everything is in ``out`` now
        if exact:
            self._exact_arithmetic(out, np.sort(where[kept]), patterns, records, ex,
                                   None if progress is None else (lambda k: progress(slow.size + k, todo)))
        elif "vertices" in out:
            out.pop("vertex_key")
            out["vertices"], out["vertex_radius"], out["vertex_index"] = shared_vertices(
                out["vertices"], out["vertex_radius"], out.pop("vertex_hash"))
        e = np.unique(np.concatenate(edges).reshape(-1, 3), axis=0)
        out.update(edges=e, unresolved_neighbours=int(sum(r.unresolved for r in records.values())),
                   fast_regions=int(kept.size), exact_regions=int(slow.size))
        return out


    def _exact_arithmetic(self, out: dict, regions: np.ndarray, patterns: np.ndarray, records: dict, ex, tick) -> None:
        """Exact mode: the fast regions' facet rows (nearest float64 to the exact rows), vertices
        (nearest float64 to the exact ones) and volumes (exact, and nearest float64)."""
        d = self.d
        volume_exact = np.full(len(patterns), "", dtype=object)
        for i, r in records.items():
            volume_exact[i] = "inf" if r.volume is None else str(r.volume)
        for k, i in enumerate(regions):
            rows = ex.region_rows([np.where(s, 1, -1) for s in self.net.layer_slices(patterns[i])])
            vs = slice(out["vertex_offsets"][i], out["vertex_offsets"][i + 1])
            points, vol = exact_vertices_and_volume(rows, out["vertex_key"][vs], d)
            out["vertices"][vs] = [[polyhedron.to_float(c) for c in p] for p in points]
            out["volume"][i] = polyhedron.to_float(vol)
            volume_exact[i] = str(vol)
            fs = slice(out["offsets"][i], out["offsets"][i + 1])
            for t, lab in zip(range(fs.start, fs.stop), out["neuron"][fs]):
                a, b = rows[2 * d + lab] if lab >= 0 else rows[-1 - lab]
                out["A"][t], out["b"][t] = [polyhedron.to_float(v) for v in a], polyhedron.to_float(b)
            if tick is not None:
                tick(k + 1)
        for name in ("vertex_key", "vertex_hash", "vertex_radius", "volume_bound"):
            out.pop(name, None)
        out["volume_exact"] = volume_exact


def _concat(parts: list[dict], d: int) -> dict:
    """The batches' arrays joined, field by field, each batch's field dropped once copied (the
    parts are used up: at most one field is held twice)."""
    if not parts:
        empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0)
        return {"keys": np.zeros((0, 1), np.uint8), "facet_count": empty_i, "A": np.zeros((0, d)), "b": empty_f,
                "neuron": empty_i, "vertex_count": empty_i, "vertices": np.zeros((0, d)), "vertex_radius": empty_f,
                "vertex_tight": np.zeros((0, 1), np.uint64), "vertex_hash": np.zeros(0, np.uint64),
                "volume": empty_f, "volume_bound": empty_f}
    return {k: np.concatenate([p.pop(k) for p in parts]) for k in list(parts[0])}


def _in_file_order(fast: dict, kept: np.ndarray, where: np.ndarray, records: dict, n: int, d: int) -> dict:
    """Ragged arrays over all n regions: the fast regions ``kept`` (positions in ``fast``) at
    their file index ``where``, the exact records at theirs."""
    facet_count = np.zeros(n, np.int64)
    vertex_count = np.zeros(n, np.int64)
    facet_count[where[kept]] = fast["facet_count"][kept]
    vertex_count[where[kept]] = fast["vertex_count"][kept]
    for i, r in records.items():
        facet_count[i], vertex_count[i] = len(r.b), len(r.vertices)
    offsets = np.r_[0, np.cumsum(facet_count)]
    voffsets = np.r_[0, np.cumsum(vertex_count)]
    A, b, neuron = np.zeros((offsets[-1], d)), np.zeros(offsets[-1]), np.zeros(offsets[-1], np.int64)
    X, rad = np.zeros((voffsets[-1], d)), np.zeros(voffsets[-1])
    key = np.zeros((voffsets[-1], fast["vertex_tight"].shape[1]), np.uint64)    # each copy's tight rows
    vhash = np.uint64(2 ** 63) + np.arange(voffsets[-1], dtype=np.uint64)      # exact-path copies: not shared
    volume, bound = np.zeros(n), np.zeros(n)
    fstart = np.cumsum(fast["facet_count"]) - fast["facet_count"]
    vstart = np.cumsum(fast["vertex_count"]) - fast["vertex_count"]
    src = ragged_arange(fstart[kept], fast["facet_count"][kept])
    dst = ragged_arange(offsets[where[kept]], fast["facet_count"][kept])
    A[dst], b[dst], neuron[dst] = fast["A"][src], fast["b"][src], fast["neuron"][src]
    src = ragged_arange(vstart[kept], fast["vertex_count"][kept])
    dst = ragged_arange(voffsets[where[kept]], fast["vertex_count"][kept])
    X[dst], rad[dst] = fast["vertices"][src], fast["vertex_radius"][src]
    key[dst], vhash[dst] = fast["vertex_tight"][src], fast["vertex_hash"][src]
    volume[where[kept]], bound[where[kept]] = fast["volume"][kept], fast["volume_bound"][kept]
    for i, r in records.items():
        s = slice(offsets[i], offsets[i + 1])
        A[s], b[s], neuron[s] = np.reshape(r.A, (-1, d)), r.b, r.neuron
        vs = slice(voffsets[i], voffsets[i + 1])
        X[vs] = np.reshape(r.vertices, (-1, d))
        rad[vs] = U64 * np.abs(X[vs]).max(axis=1) if r.vertices else 0.0    # the nearest float64: half an ulp
        if r.volume is None:
            volume[i], bound[i] = np.inf, 0.0
        else:
            volume[i] = polyhedron.to_float(r.volume)
            bound[i] = U64 * abs(volume[i])
    out = {"offsets": offsets.astype(np.int64), "A": A, "b": b, "neuron": neuron}
    if d <= VERTEX_MAX_DIM:
        out.update(vertex_offsets=voffsets.astype(np.int64), vertices=X, vertex_radius=rad, vertex_key=key, vertex_hash=vhash,
                   volume=volume, volume_bound=bound)
    return out
