"""Step 3 of a split (the low-dimensional vertex path): a parent's arrangement from its vertices, not LPs.

At small input dimension a region has few vertices. Whether hyperplane k cuts a cell is read off
the signs of its values at the cell's vertices; a cut cell's two children get their vertices plus
one new vertex per crossing edge (two vertices span an edge when they share d - 1 tight rows),
the incremental construction of an arrangement, one hyperplane at a time over every cell
of every parent at once (Berzins' edge subdivision, kept per region).

Each cell is in one of two proof modes (docs/architecture.md, "The vertex path", has the argument):

* **proven**: its vertices are exactly the exact cell's vertices, each simple and within a
  certified radius of its exact point. Where every sign of hyperplane k at them is certain, the
  signs alone prove "one side" or "cut"; new vertices get certified radii
  (:mod:`lrenum.certify.vertexcert`). A sign that is not certain turns the cell into a proposal.
* **proposal**: "side s of hyperplane k holds no interior point of the cell" gets a Farkas
  certificate: at the cell's extreme vertex the tight rows' normals combine into the hyperplane's
  normal (LP duality), and those few rows alone are checked by the dual bound (the Decider's
  rung 1, :func:`floatcert.certify_empty` or its device twin);
  where that fails the claim climbs the Decider's ladder (exact support, Clarabel, exact simplex).

In both modes a child's non-emptiness is proven with the children: its witness (the mean of its
vertices) passes the forward-pass certificate in :func:`lrenum.core.children.assemble`, or is
repaired, or the child is proven empty and dropped. Every branch the construction prunes is
proven empty, so no cell can be missed. If the ladder finds interior where the vertices said
none, the parent's vertex set was wrong (degenerate rounding); that parent is redone on the LP
path, whose children carry no vertex set.

The data (vertex sets) lives in :mod:`lrenum.core.vertex_sets`, the float bounds of the proofs in
:mod:`lrenum.certify.vertexcert`. This module stays over 350 lines on purpose: the construction
and its two proof modes update the same cell and vertex arrays at every step; split apart, each
half would have to hand the other its whole state.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

import numpy as np

from ..certify import vertexcert
from ..certify.decide import DecisionStats
from ..errors import InputError
from ..tolerances import SAFETY
from . import memory
from .frame import Frame
from .state import Hyperplanes, Regions
from .vertex_sets import VertexSets, box_corners, ragged_arange, rebuilt_from_rows, row_bit, tight_ids

class VertexSplitter:
    """The vertex path for one enumeration (box domains, small d)."""

    def __init__(self, frame: Frame, stats: DecisionStats):
        self.frame, self.stats = frame, stats
        self.settings = frame.settings
        self.d = frame.d
        self.n_ids = 2 * self.d + int(frame.offsets[-1])
        self.words = (self.n_ids + 63) // 64

    @staticmethod
    def unavailable(domain) -> Optional[str]:
        """Why the vertex path cannot run on this domain (None: it can)."""
        if domain.kind != "box":
            return "a box domain (polytope and unbounded domains take the LP path)"
        return None

    @classmethod
    def for_frame(cls, frame: Frame, stats: DecisionStats) -> Optional["VertexSplitter"]:
        """The vertex path where it applies (``settings.vertex_path``: None decides by dimension,
        True insists, False never)."""
        enabled = frame.settings.vertex_path
        if enabled is False:
            return None
        why = cls.unavailable(frame.domain)
        if enabled and why:
            raise InputError(f"the vertex path needs {why}")
        if why or (enabled is None and frame.d > frame.settings.vertex_max_dim):
            return None
        return cls(frame, stats)

    def with_root_vertices(self, root: Regions) -> Regions:
        """The domain box's 2^d corners as the root's vertex set (exact: proven where the rows are
        in x-space, i.e. the basis is the identity)."""
        lo, hi = self.frame.domain.box
        return replace(root, vertices=box_corners(lo, hi, self.d, self.words, self.frame.geometry.identity_basis))

    def no_vertices(self, n: int) -> VertexSets:
        return VertexSets.none(n, self.d, self.words)

    def with_vertices(self, batch: Regions) -> Regions:
        """Vertex sets rebuilt from the rows, for regions read back on resume or handed to a Ray
        task (qhull: proposals only; regions qhull cannot do take the LP path)."""
        geo = self.frame.geometry
        lo, hi = self.frame.domain.box
        rows = [(geo.to_x(batch.rows.C[i, m]), batch.rows.b[i, m], 2 * self.d + np.nonzero(m)[0])
                for i, m in enumerate(batch.rows.mask)]
        return replace(batch, vertices=rebuilt_from_rows(rows, batch.witness, lo, hi, self.words, self.settings.vertex_band))

    def split(self, P: Regions, hyp: Hyperplanes, cls, tester, last_layer: bool, report=None):
        """Cells of the parents this path can take: (ChildCells or None, handled (B,) bool);
        ``report(hyperplanes added, of how many, cells)`` after each hyperplane (progress)."""
        handled = self.takes(P, cls)
        which = np.nonzero(handled)[0]
        if which.size == 0:
            return None, handled
        build = self._parents_settled(P, hyp, cls, tester, which)
        n = hyp.G.shape[1]
        for k in range(n):
            build.add_hyperplane(k)
            if report is not None:
                report(k + 1, n, build.cparent.size)
        cells, failed = build.finish()
        handled[which[failed]] = False
        return self._child_cells(cells, failed, which, cls, last_layer), handled

    def takes(self, P: Regions, cls) -> np.ndarray:
        """(B,) bool: the parents this path can take (a vertex set, not too many vertices, and
        hyperplanes whose float error is under control)."""
        V = P.vertices
        return (V.count > 0) & (V.count <= self.settings.vertex_cap) & ~cls.unreliable

    def split_in_pieces(self, P: Regions, hyp: Hyperplanes, cls, tester, last_layer: bool, cap: int, report=None):
        """The cells of one parent (``P`` holds one region this path can take), at most ``cap`` at a
        time: where the arrangement under construction grows past ``cap`` cells its cells are split
        in two groups, each finished on its own (a cell's further cuts involve only its own
        vertices), depth first, so that at most one group per hyperplane waits. The root of a
        4-input network with 48 first-layer neurons has 66,259 cells: built at once, they and their
        vertex sets were the largest arrays of the run. Yields ChildCells, then raises
        :class:`PiecesFailed` if the vertex path failed on a later group (the caller finishes the
        parent on the LP path, without the children already yielded)."""
        waiting = [(self._parents_settled(P, hyp, cls, tester, np.array([0])), 0)]
        n = hyp.G.shape[1]
        done = 0                                  # cells of the groups finished (progress only)
        while waiting:
            build, k = waiting.pop()
            while not build.failed[0]:
                if build.cparent.size > cap:
                    half = build.cparent.size // 2
                    waiting.append((build.take_cells(np.arange(half, build.cparent.size)), k))
                    build = build.take_cells(np.arange(half))
                    continue
                if k == n:
                    break
                build.add_hyperplane(k)
                k += 1
                if report is not None:
                    report(k, n, done + build.cparent.size)
            cells, failed = build.finish()
            if failed[0]:
                raise PiecesFailed()
            done += build.cparent.size
            yield self._child_cells(cells, failed, np.array([0]), cls, last_layer)

    def _parents_settled(self, P, hyp, cls, tester, which) -> "_Arrangement":
        """The arrangement inside parents ``which`` before any cut: every hyperplane first against
        the parents themselves; those that do not cut a parent are settled once for all its cells
        (one pass over its vertices), the cutting ones are left to build the arrangement."""
        build = _Arrangement(self, P, hyp, cls, tester, which)
        left = build.settle_on_parents()
        for k in range(hyp.G.shape[1]):
            build.add_hyperplane(k, split=False, only=left[:, k])
        return build

    def _child_cells(self, cells, failed, which, cls, last_layer: bool):
        """ChildCells of the parents that did not fail: complete signs, the mean of each cell's
        vertices as its proposed witness, and its vertex set (none after the last hidden layer unless ``settings.final_vertices``)."""
        from .children import ChildCells

        keep = ~failed[cells.parent]
        parent = which[cells.parent[keep]]
        cand = (cls.cuts | cls.open)[parent]
        signs = np.where(cand, cells.signs[keep], cls.sign[parent]).astype(np.int8)
        vs = cells.vertices if keep.all() else cells.vertices.take(keep)
        wit = np.stack([np.bincount(np.repeat(np.arange(len(vs)), vs.count), weights=vs.x[:, j], minlength=len(vs))
                        for j in range(self.d)], axis=1) / np.maximum(vs.count, 1)[:, None]
        drop = last_layer and not self.settings.final_vertices
        vertices = VertexSets.none(len(vs), self.d, self.words) if drop else vs
        return ChildCells(parent, signs, wit, vertices)


class PiecesFailed(Exception):
    """The vertex path gave up on a parent after some of its cells were handed on."""


class _Cells:
    """Cells under construction on the vertex path."""

    def __init__(self, parent, signs, vertices):
        self.parent, self.signs, self.vertices = parent, signs, vertices


class _Arrangement:
    """The incremental arrangement inside the parents ``which`` (local cell and vertex arrays)."""

    def __init__(self, path: VertexSplitter, P: Regions, hyp: Hyperplanes, cls, tester, which: np.ndarray):
        self.path, self.P, self.tester, self.which = path, P, tester, which
        self.d = path.d
        self.G, self.g = hyp.G[which], hyp.g[which]
        self.Gx = path.frame.geometry.to_x(self.G)                # vertices live in x-space
        self.eG, self.eg = hyp.eG[which], hyp.eg[which]
        self.cand = (cls.cuts | cls.open)[which]
        lo, hi = path.frame.domain.box
        self.lo, self.hi = (np.broadcast_to(np.asarray(v, np.float64), (self.d,)) for v in (lo, hi))
        self.reach = float(np.max(np.maximum(np.abs(lo), np.abs(hi))))    # |x|_inf over the box
        self.G1 = np.abs(self.Gx).sum(axis=2)                     # ||G_k||_1 per parent and neuron
        self.settings = path.settings
        self.band = self.settings.vertex_band * (self.G1 * self.reach + np.abs(self.g))
        V = P.vertices.take(which)
        B, n = self.cand.shape
        self.cparent = np.arange(B)
        self.signs = np.zeros((B, n), np.int8)
        # the vertex arrays grow at their end only: buffers with spare room (doubling), so that a
        # cut appends its new vertices instead of copying every vertex of the batch
        self.nv = int(V.count.sum())
        self._bx, self._bt, self._br = V.x.copy(), V.tight.copy(), V.radius.copy()
        self._bc = np.repeat(np.arange(B), V.count)
        self.ccount = V.count.copy()                         # vertices per cell
        self.cproven = V.proven.copy() & self.settings.vertex_proofs
        self.failed = np.zeros(B, bool)
        self.offset = int(path.frame.offsets[P.layer])     # flat index of this layer's first neuron

    # ------------------------------------------------------------------ the vertex buffers
    vx = property(lambda self: self._bx[:self.nv])        # (V, d) positions
    vt = property(lambda self: self._bt[:self.nv])        # (V, words) tight-row bits
    vr = property(lambda self: self._br[:self.nv])        # (V,) certified radii
    vcell = property(lambda self: self._bc[:self.nv])     # (V,) the cell each belongs to

    def _append_vertices(self, x, tight, radius, cell) -> None:
        need = self.nv + x.shape[0]
        if need > self._bc.shape[0]:
            cap = max(need, 2 * self._bc.shape[0])
            for name in ("_bx", "_bt", "_br", "_bc"):
                old = getattr(self, name)
                new = np.empty((cap,) + old.shape[1:], old.dtype)
                new[:self.nv] = old[:self.nv]
                setattr(self, name, new)
        sl = slice(self.nv, need)
        self._bx[sl], self._bt[sl], self._br[sl], self._bc[sl] = x, tight, radius, cell
        self.nv = need

    # ------------------------------------------------------------------ the parents first
    def settle_on_parents(self) -> np.ndarray:
        """Every hyperplane against every proven parent at once (before any cut, cells are the
        parents and their vertices lie in parent order): where all signs are certain, one-sided
        hyperplanes are settled and cutting ones kept as candidates. Returns the (parent, neuron)
        pairs still to look at one hyperplane at a time (uncertain signs, unproven parents)."""
        B, n = self.cand.shape
        count = self.ccount
        start = np.cumsum(count) - count
        fixed, per_r = vertexcert.sign_error_terms(self.G1, self.eG, self.eg, self.g, self.d, self.reach)
        npos, nneg, unsure = (np.zeros((B, n), np.int64) for _ in range(3))
        step = max(1, self.settings.pair_chunk // max(1, n * self.d))          # vertices per chunk: bounded temporaries
        p0 = 0
        while p0 < B:
            p1 = max(p0 + 1, int(np.searchsorted(start + count, start[p0] + step, "right")))
            v = np.arange(start[p0], start[p1 - 1] + count[p1 - 1])
            par = self.vcell[v]
            val = np.einsum("vd,vnd->vn", self.vx[v], self.Gx[par]) + self.g[par]
            err = self._sign_error(self.vr[v][:, None], par, fixed, per_r)
            seg = start[p0:p1] - start[p0]
            keep = count[p0:p1] > 0
            for out, flag in ((npos, val > err), (nneg, val < -err), (unsure, ~(np.abs(val) > err))):
                out[p0:p1][keep] = np.add.reduceat(flag.astype(np.int64), seg[keep], axis=0)
            p0 = p1
        decided = self.cand & self.cproven[:, None] & (unsure == 0)
        one = decided & ((npos > 0) != (nneg > 0))
        self.signs[one] = np.where(npos > 0, 1, -1)[one]
        self.cand[one] = False
        self.path.stats.vertex_decisions += int(one.sum())
        return self.cand & ~decided

    # ------------------------------------------------------------------ one hyperplane
    def add_hyperplane(self, k: int, split: bool = True, only: Optional[np.ndarray] = None) -> None:
        """Settle hyperplane k on every current cell: one-sided (proven by vertex signs or
        certified by a dual) or cut. ``split=False`` (the parents alone, before any cut, only the
        parents marked in ``only``): cuts are only recorded; hyperplanes found one-sided leave the
        parent's candidates."""
        sel = self.cand[self.cparent, k] & ~self.failed[self.cparent]
        if only is not None:
            sel &= only[self.cparent]
        if not sel.any():
            return
        C = self.cparent.size
        # every cut can at most double the cells (and their vertices): check before the arrays grow
        memory.check_cells(self.settings, 2 * C, int(self.path.frame.offsets[self.P.layer + 1]), self.P.layer + 1, self.which.size,
                           extra_bytes=2.0 * self.vx.shape[0] * 8 * (self.d + self.path.words + 1))
        vi = np.nonzero(sel[self.vcell])[0]
        vc = self.vcell[vi]
        par = self.cparent[vc]
        x = self.vx[vi]
        val = np.einsum("vd,vd->v", x, self.Gx[:, k][par]) + self.g[:, k][par]
        # proven cells: the sign of the exact pre-activation at each exact vertex, where certain
        err = self._sign_error(self.vr[vi], par, *vertexcert.sign_error_terms(
            self.G1[:, k], self.eG[:, k], self.eg[:, k], self.g[:, k], self.d, self.reach))
        unsure = self.cproven[vc] & ~(np.abs(val) > err)
        self.cproven[vc[unsure]] = False                         # a vertex on (or too near) the plane: proposals from here on
        proven = self.cproven[vc]
        thr = np.where(proven, err, self.band[:, k][par])
        pos, neg = val > thr, val < -thr
        npos = np.bincount(vc[pos], minlength=C)
        nneg = np.bincount(vc[neg], minlength=C)
        zero = vi[~pos & ~neg]
        bit = row_bit(2 * self.d + self.offset + k, self.path.words)
        self.vt[zero] |= bit                                     # the hyperplane passes through these vertices
        cut = sel & (npos > 0) & (nneg > 0)
        one_sided = sel & ((npos > 0) != (nneg > 0))
        flat = sel & (npos == 0) & (nneg == 0)                   # every vertex within the band: rounding, not geometry
        self.failed[self.cparent[flat]] = True
        near = np.where(npos > 0, 1, -1)
        # a proven cell with certain signs at all its exact vertices lies on one side: nothing to certify
        settled = np.nonzero(one_sided & self.cproven)[0]
        self.signs[settled, k] = near[settled]
        self._settle_one_sided(k, np.nonzero(one_sided & ~self.cproven)[0], near, vi, vc, val)
        if not split:
            self.cand[self.cparent[one_sided], k] = False
            self.path.stats.vertex_decisions += settled.size
            return
        self.path.stats.vertex_decisions += int(cut.sum()) + settled.size
        if cut.any():
            self._cut(k, np.nonzero(cut)[0], vi, vc, val, pos, neg, bit, err)

    @staticmethod
    def _sign_error(radius, par, fixed, per_r):
        """Bound on |float value - exact pre-activation at the exact vertex| at vertices of parents
        ``par`` each within ``radius`` of its exact point (the terms of
        :func:`vertexcert.sign_error_terms`, per parent)."""
        with np.errstate(invalid="ignore", over="ignore"):   # 0 * inf for an unproven vertex: unsure anyway
            e = fixed[par] + per_r[par] * radius
        return SAFETY * np.nan_to_num(e, nan=np.inf, posinf=np.inf)

    def _settle_one_sided(self, k, cells, near, vi, vc, val) -> None:
        """Cells on one side of hyperplane k: certify that the far side holds no interior point."""
        if cells.size == 0:
            return
        far = -near[cells]                                       # the side claimed empty
        is_claim = np.zeros(self.cparent.size, bool)
        is_claim[cells] = True
        m = is_claim[vc]
        # the extreme vertex: the largest value on the far side (an LP optimum if the vertex set is right)
        key, vcm = -near[vc[m]] * val[m], vc[m]
        best = np.full(self.cparent.size, -np.inf)
        np.maximum.at(best, vcm, key)
        top = np.nonzero(key == best[vcm])[0]
        ext = np.empty(self.cparent.size, np.int64)
        ext[vcm[top]] = vi[m][top]
        y, ok = self._certify(k, cells, far, ext[cells])
        self.path.stats.vertex_decisions += int(ok.sum())
        self.path.stats.vertex_duals += int(ok.sum())
        bad = np.nonzero(~ok)[0]
        if bad.size:
            glob = self.which[self.cparent[cells[bad]]]
            empty, _, _ = self.tester.settle(glob, self.signs[cells[bad]], np.full(bad.size, k), far[bad], y[bad],
                                             np.zeros((bad.size, 0)))
            self.failed[self.cparent[cells[bad[~empty]]]] = True
        self.signs[cells, k] = -far

    def _certify(self, k, cells, far, ext):
        """Farkas certificates from the extreme vertices' tight rows: (dual weights in the
        :meth:`SideTester.cell_rows` layout, certified (K,) bool)."""
        K = cells.size
        p = self.cparent[cells]
        ids, cnt = tight_ids(self.vt[ext])
        T = ids.shape[1]
        A, Ax, bcol, eA, ebcol, face = self._tight_rows(ids, cells)
        # KKT at the extreme vertex: sum_i mu_i a_i = far * G_k (the far side's gradient), mu >= 0
        mu = vertexcert.dual_combination(Ax, far[:, None] * self.Gx[p, k], cnt == self.d)
        mu = np.where(face, 0.0, np.maximum(np.nan_to_num(mu), 0.0))   # the box's duals are implicit
        test_C = -far[:, None] * self.G[p, k]
        test_b = far * self.g[p, k]
        ok = self.tester.decider.certify_empty(
            np.concatenate([A, test_C[:, None]], axis=1), np.concatenate([bcol, test_b[:, None]], axis=1),
            np.concatenate([eA, self.eG[p, k][:, None]], axis=1), np.concatenate([ebcol, self.eg[p, k][:, None]], axis=1),
            np.concatenate([mu, np.ones((K, 1))], axis=1))
        n = self.G.shape[1]
        y = np.zeros((K, self.offset + n + 1))
        rows_here = np.where(ids >= 2 * self.d, ids - 2 * self.d, self.offset + n)   # padding and box faces -> test slot, then reset
        np.add.at(y, (np.repeat(np.arange(K), T), rows_here.ravel()), mu.ravel())
        y[:, -1] = 1.0
        return y, ok

    def _tight_rows(self, ids, cells):
        """The rows named by ``ids`` (K, T; -1 pads) for cells ``cells``, as ``a.(U x) < b``:
        (A in basis coordinates, the same in x-space with the box faces, b, eA, eb, face mask)."""
        d, (K, T) = self.d, ids.shape
        p = self.cparent[cells]
        A = np.zeros((K, T, self.G.shape[2]))
        b, eA, eb = np.zeros((K, T)), np.zeros((K, T)), np.zeros((K, T))
        q = ids - 2 * d
        R = self.P.rows
        pk, pt = np.nonzero((q >= 0) & (q < self.offset))            # rows of earlier layers
        gp = self.which[p[pk]]
        A[pk, pt], b[pk, pt] = R.C[gp, q[pk, pt]], R.b[gp, q[pk, pt]]
        eA[pk, pt], eb[pk, pt] = R.eC[gp, q[pk, pt]], R.eb[gp, q[pk, pt]]
        hk, ht = np.nonzero(q >= self.offset)                         # this layer's, on the cell's side
        jn = q[hk, ht] - self.offset
        s = self.signs[cells[hk], jn].astype(np.float64)
        A[hk, ht] = -s[:, None] * self.G[p[hk], jn]
        b[hk, ht] = s * self.g[p[hk], jn]
        eA[hk, ht], eb[hk, ht] = self.eG[p[hk], jn], self.eg[p[hk], jn]
        Ax = self.path.frame.geometry.to_x(A)
        face = (ids >= 0) & (ids < 2 * d)                             # x_j < hi_j and -x_j < -lo_j
        fk, ft = np.nonzero(face)
        hi_face = ids[fk, ft] % 2 == 1
        Ax[fk, ft, ids[fk, ft] // 2] = np.where(hi_face, 1.0, -1.0)
        b[fk, ft] = np.where(hi_face, self.hi[ids[fk, ft] // 2], -self.lo[ids[fk, ft] // 2])
        return A, Ax, b, eA, eb, face

    def _solve_vertices(self, tight, cells):
        """Vertices of proven cells recomputed from their d tight rows, with a certified radius:
        (x (K, d), radius (K,); inf where the system is not proven regular). Interpolating along
        an edge compounds errors from vertex to vertex; solving afresh bounds each vertex by its
        own system only (:func:`vertexcert.solved_vertices`)."""
        d = self.d
        ids, cnt = tight_ids(tight)
        K = ids.shape[0]
        x = np.zeros((K, d))
        radius = np.full(K, np.inf)
        ok = np.nonzero(cnt == d)[0]
        if ok.size == 0 or ids.shape[1] != d:
            return x, radius
        _, A, c, eA, ec, _ = self._tight_rows(ids[ok], cells[ok])
        x[ok], radius[ok] = vertexcert.solved_vertices(A, c, eA, ec)
        return x, radius

    def _edges(self, pu, pw, nneg, first_neg):
        """Crossing edges: pairs (u positive, w negative) of one cell sharing d - 1 tight rows, as
        indices into ``pu`` and ``pw`` (the latter grouped by cell) and the shared bits. Every
        positive-negative pair of a cell is a candidate, so the pairs are formed in chunks of at
        most ``pair_chunk`` (their memory is bounded whatever the cells' vertex counts)."""
        vcell = self.vcell
        per_u = nneg[vcell[pu]]
        ends = np.cumsum(per_u)
        out_u, out_w, out_c = [], [], []
        start = 0
        while start < pu.size:
            stop = max(start + 1, int(np.searchsorted(ends, (ends[start - 1] if start else 0) + self.settings.pair_chunk,
                                                      "right")))
            cu = vcell[pu[start:stop]]
            iu = np.repeat(np.arange(start, stop), nneg[cu])
            iw = ragged_arange(first_neg[cu], nneg[cu])
            common = self.vt[pu[iu]] & self.vt[pw[iw]]
            edge = np.bitwise_count(common).sum(axis=1) >= self.d - 1
            out_u.append(iu[edge])
            out_w.append(iw[edge])
            out_c.append(common[edge])
            start = stop
        if not out_u:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, self.path.words), np.uint64)
        return np.concatenate(out_u), np.concatenate(out_w), np.concatenate(out_c)

    def _cut(self, k, cells, vi, vc, val, pos, neg, bit, err) -> None:
        """Split the cells cut by hyperplane k: the cell keeps the positive side, a new cell the
        negative. ``vi`` are the vertices looked at, ``vc`` their cells, ``val``/``err``/``pos``/
        ``neg`` aligned with them."""
        C = self.cparent.size
        self.signs[cells, k] = 1                                   # the cell keeps the positive side (its rows)
        new_id = np.full(C, -1)
        new_id[cells] = C + np.arange(cells.size)
        is_cut = np.zeros(C, bool)
        is_cut[cells] = True
        in_cut = is_cut[vc]
        # new vertices: crossing edges (u positive, w negative, sharing d - 1 tight rows)
        lp = np.nonzero(in_cut & pos)[0]
        ln = np.nonzero(in_cut & neg)[0]
        ln = ln[np.argsort(vc[ln], kind="stable")]
        nneg = np.bincount(vc[ln], minlength=C)
        first_neg = np.cumsum(nneg) - nneg
        iu, iw, common = self._edges(vi[lp], vi[ln], nneg, first_neg)
        u, w = vi[lp[iu]], vi[ln[iw]]
        val_u, val_w, err_u, err_w = val[lp[iu]], val[ln[iw]], err[lp[iu]], err[ln[iw]]
        lam = (val_u / (val_u - val_w))[:, None]
        xu, xw = self.vx[u], self.vx[w]
        nx = xu + lam * (xw - xu)
        nt = common | bit
        ncell = vc[lp[iu]]
        nr = np.full(u.size, np.inf)
        pr = np.nonzero(self.cproven[ncell])[0]
        nr[pr] = vertexcert.crossing_radius(xu[pr], xw[pr], self.vr[u[pr]], self.vr[w[pr]], val_u[pr], val_w[pr],
                                            err_u[pr], err_w[pr], lam[pr, 0])
        # interpolation compounds its endpoints' errors: where the radius has grown, solve afresh
        pr = pr[~(nr[pr] <= self.settings.vertex_resolve * (self.reach + 1.0))]
        if pr.size:
            xs, rs = self._solve_vertices(nt[pr], ncell[pr])
            better = rs < nr[pr]
            nx[pr[better]], nr[pr[better]] = xs[better], rs[better]
        # old vertices of cut cells: negative ones move to the new cell, those on the plane go to both
        on_plane = in_cut & ~pos & ~neg
        both, both_cell = vi[on_plane], vc[on_plane]
        moving_cell = vc[ln]
        self.vcell[vi[ln]] = new_id[moving_cell]
        self._append_vertices(np.concatenate([self.vx[both], nx, nx]), np.concatenate([self.vt[both], nt, nt]),
                              np.concatenate([self.vr[both], nr, nr]),
                              np.concatenate([new_id[both_cell], ncell, new_id[ncell]]))
        gone, shared, added = (np.bincount(a, minlength=C) for a in (moving_cell, both_cell, ncell))
        self.ccount = np.concatenate([self.ccount - gone + added, (gone + shared + added)[cells]])
        child = self.signs[cells].copy()
        child[:, k] = -1
        self.signs = np.concatenate([self.signs, child])
        self.cparent = np.concatenate([self.cparent, self.cparent[cells]])
        self.cproven = np.concatenate([self.cproven, self.cproven[cells]])
        # a cell with more vertices than vertex_cap: its parent is cheaper on the LP path
        big = self.ccount > self.settings.vertex_cap
        self.failed[self.cparent[big]] = True

    def take_cells(self, idx: np.ndarray) -> "_Arrangement":
        """The arrangement restricted to cells ``idx`` (ascending) and their vertices (what the
        cells share with the parent, its hyperplanes and the record of failure, is shared, not
        copied)."""
        part = object.__new__(_Arrangement)
        part.__dict__.update(self.__dict__)
        keep = np.zeros(self.cparent.size, bool)
        keep[idx] = True
        renumber = np.cumsum(keep) - 1
        mine = np.nonzero(keep[self.vcell])[0]
        part._bx, part._bt, part._br = self.vx[mine], self.vt[mine], self.vr[mine]
        part._bc = renumber[self.vcell[mine]]
        part.nv = mine.size
        part.cparent, part.signs = self.cparent[idx], self.signs[idx]
        part.ccount, part.cproven = self.ccount[idx], self.cproven[idx]
        return part

    # ------------------------------------------------------------------ result
    def finish(self):
        """(cells with their vertex sets, failed (B,) bool: parents to redo on the LP path)."""
        # cells grouped by parent (the split hands children on in parent order: no second sort),
        # each cell's vertices together
        by_parent = np.argsort(self.cparent, kind="stable")
        position = np.empty_like(by_parent)
        position[by_parent] = np.arange(by_parent.size)
        order = np.argsort(position[self.vcell], kind="stable")
        count = self.ccount[by_parent]
        cells = _Cells(self.cparent[by_parent], self.signs[by_parent],
                       VertexSets(self.vx[order], self.vt[order], count, self.vr[order], self.cproven[by_parent]))
        return cells, self.failed
