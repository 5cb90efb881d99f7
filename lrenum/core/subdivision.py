"""Step 3 of a split (the low-dimensional vertex path): each parent's arrangement by edge subdivision.

Each parent carries its 1-skeleton (its vertices, and its edges as pairs of vertex indices:
:mod:`lrenum.core.skeleton`). Its next-layer hyperplanes are added one at a time, each step over
every parent of the batch at once (Berzins' edge subdivision, kept per region):

1. hyperplane k is evaluated at the vertices, each sign certified (:func:`vertexcert.sign_error_terms`);
2. every edge whose ends have opposite signs gets a new vertex where it crosses k (interpolated
   along the edge, with a certified radius, :func:`vertexcert.crossing_radius`, solved afresh
   from its d rows where that radius grew) and becomes two edges;
3. every 2-face that k crosses gets a new edge between its two crossing points. The 2-faces
   around a crossing edge are named by dropping one of its d - 1 tight rows (and, for a row of
   this layer, choosing a side): two crossing edges with the same name bound the same 2-face.

Cells are never listed while the arrangement grows: a vertex records its side of each
hyperplane added (``S``: +1, -1, or 0 on it). At the end each cell (a child region) is a sign
vector over the hyperplanes that cut the parent; a vertex on z of them lies in 2^z cells, an
edge lying in z of them bounds 2^z cells, and each child gets its own skeleton for the next layer.

The proof (docs/architecture.md, "The vertex path"). Invariant, per parent: its skeleton is the
exact parent's (every exact vertex once, simple, within its radius of the float position; the
edges are exactly the pairs sharing d - 1 tight rows). When every sign of hyperplane k at the
vertices is certain, the exact hyperplane meets no exact vertex; the arrangement stays simple, an
edge crossing k meets it in one point (a new simple vertex, its d rows the edge's d - 1 and k),
and a 2-face crossed by k (a convex polygon) is cut by a segment joining exactly two such points.
So the invariant holds after each step, and the cells are the exact children. A sign that is not
certain (a hyperplane through or near a vertex), a 2-face named by other than two crossing edges,
or more than ``vertex_cap`` vertices in a parent: that parent leaves this path for the LP path.
Every child's witness (the mean of its vertices) is certified again by the forward pass in step 5.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterator, Optional

import numpy as np

from ..certify import vertexcert
from ..certify.decide import DecisionStats
from ..errors import InputError
from ..tolerances import SAFETY, gamma
from . import memory
from .frame import Frame
from .skeleton import Skeletons, bit_count, box_skeleton, ragged_arange, rebuilt_from_rows, row_bit, tight_ids
from .state import Hyperplanes, Regions


class PiecesFailed(Exception):
    """The vertex path gave up on a parent after some of its cells were handed on."""


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
        """The box's skeleton for the root (exact: corners of the box, radius 0)."""
        lo, hi = self.frame.domain.box
        return replace(root, vertices=box_skeleton(lo, hi, self.d, self.words, True))

    def x_rows(self, C: np.ndarray, eC: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows in basis coordinates as x-space rows with their error (1-norm): ``C U`` rounds
        (gamma_r of |C| |U|) unless U is the identity, and an error e in C moves it by e max_q
        ||U_q||_1 (the vertex path's bounds all live in x-space)."""
        geo = self.frame.geometry
        A = geo.to_x(C)
        if geo.identity_basis:
            return A, eC
        rounding = gamma(geo.rank) * np.einsum("...r,rd->...", np.abs(C), np.abs(geo.U))
        return A, SAFETY * (eC * geo.u_row_1 + rounding)

    def no_vertices(self, n: int) -> Skeletons:
        return Skeletons.none(n, self.d, self.words)

    def with_vertices(self, batch: Regions) -> Regions:
        """Skeletons rebuilt from the rows, for regions read back on resume (qhull), then proven
        where they can be (:func:`prove_rebuilt`); the others take the LP path."""
        geo = self.frame.geometry
        lo, hi = self.frame.domain.box
        rows = [(geo.to_x(batch.rows.C[i, m]), batch.rows.b[i, m], 2 * self.d + np.nonzero(m)[0])
                for i, m in enumerate(batch.rows.mask)]
        sk = rebuilt_from_rows(rows, batch.witness, lo, hi, self.words, self.settings.vertex_band)
        return replace(batch, vertices=prove_rebuilt(self, batch, sk))

    def takes(self, P: Regions, cls) -> np.ndarray:
        """(B,) bool: the parents this path can take (a proven skeleton, not too many vertices,
        hyperplanes whose float error is under control)."""
        V = P.vertices
        trusted = V.proven & self.settings.vertex_proofs
        return (V.vcount > 0) & trusted & (V.vcount <= self.settings.vertex_cap) & ~cls.unreliable

    def split(self, P: Regions, hyp: Hyperplanes, cls, last_layer: bool):
        """Cells of the parents this path can take: (ChildCells or None, handled (B,) bool)."""
        handled = self.takes(P, cls)
        which = np.nonzero(handled)[0]
        if which.size == 0:
            return None, handled
        parts, failed = [], np.zeros(P.vertices.vcount.size, bool)
        for cells, bad in self._cells(P, hyp, cls, which, last_layer, cap=None):
            parts.append(cells)
            failed |= bad
        handled &= ~failed
        from .children import ChildCells

        cells = ChildCells.concat(parts, self.no_vertices)
        keep = ~failed[cells.parent]
        if not keep.all():
            cells = cells.take(keep)
        return cells, handled

    def split_in_pieces(self, P: Regions, hyp: Hyperplanes, cls, last_layer: bool, cap: int):
        """The cells of one parent (``P`` holds one region this path can take), at most ``cap`` at
        a time: the arrangement is built whole while its vertices stay within a budget; past it,
        its cells so far become parents of their own for the remaining hyperplanes, taken a group
        at a time, depth first. Yields ChildCells, then raises :class:`PiecesFailed` if the path
        failed after some children were handed on (the caller finishes on the LP path)."""
        for cells, bad in self._cells(P, hyp, cls, np.array([0]), last_layer, cap=cap):
            if bad[0]:
                raise PiecesFailed()
            yield cells

    # ------------------------------------------------------------------ the construction
    def _cells(self, P: Regions, hyp: Hyperplanes, cls, which: np.ndarray, last_layer: bool,
               cap: Optional[int]) -> Iterator[tuple]:
        """(ChildCells, failed (len(P),) bool) chunks for the parents ``which``: each batch of
        (partial) parents is subdivided hyperplane by hyperplane; with ``cap``, a batch whose
        vertices outgrow its budget is cut into its cells so far, which go on in groups of at most
        ``cap`` (depth first), so that one parent's arrangement never has to be held whole."""
        start = _Subdivision(self, P, hyp, which, P.vertices.take(which), cls.sign[which], (cls.cuts | cls.open)[which],
                             decided=np.zeros((which.size, hyp.G.shape[1]), bool))
        start.settle()
        waiting = [start]
        failed = np.zeros(len(P), bool)
        while waiting:
            sub = waiting.pop()
            budget = max(self.settings.piece_cells * 2 ** self.d, 4 * sub.x.shape[0])
            while sub.rounds_left() and not sub.dead():
                if cap is not None and sub.round > 0 and sub.x.shape[0] > budget:
                    break
                sub.add_round()
            failed[sub.origin[sub.failed]] = True
            if sub.rounds_left() and not sub.dead():           # cut up: the cells so far go on in groups
                waiting.extend(reversed(sub.partial_cells(cap)))
                continue
            for cells in sub.children(last_layer, cap):
                yield cells, failed.copy()


def prove_rebuilt(path: VertexSplitter, batch: Regions, sk: Skeletons) -> Skeletons:
    """Rebuilt skeletons proven where possible: every vertex has exactly d tight rows, is solved
    afresh from them with a certified radius, and is certainly off every other row; every vertex
    has exactly d edges, each to a vertex sharing d - 1 of its rows. Then the found vertices are
    exact simple vertices of the region and closed under adjacency, so (the graph of a polytope
    is connected) they are all of them and the edges all of its edges."""
    d = path.d
    if len(sk) == 0 or sk.x.shape[0] == 0:
        return sk
    geo = path.frame.geometry
    lo, hi = (np.broadcast_to(np.asarray(v, np.float64), (d,)) for v in path.frame.domain.box)
    owner = np.repeat(np.arange(len(sk)), sk.vcount)
    proven = sk.vcount > 0
    cnt = bit_count(sk.tight)
    ge = sk.global_edges()
    deg = np.bincount(ge.ravel(), minlength=sk.x.shape[0])
    bad = (cnt != d) | (deg != d)
    if ge.size:
        shared = bit_count(sk.tight[ge[:, 0]] & sk.tight[ge[:, 1]])
        bad[ge[shared != d - 1, 0]] = True
    proven[owner[bad]] = False
    x, radius = sk.x.copy(), np.full(sk.x.shape[0], np.inf)
    vi = np.nonzero(proven[owner])[0]
    if vi.size:
        par = owner[vi]
        ids, _ = tight_ids(sk.tight[vi], d)
        A, c, eA, ec = _rows_by_id(path, batch, par, ids)
        xs, rs = vertexcert.solved_vertices(A, c, eA, ec)
        x[vi], radius[vi] = xs, rs
        # every other row of the region certainly off the exact vertex: its slack beyond the bound
        R = batch.rows
        Cx, eCx = path.x_rows(R.C[par], R.eC[par])                   # (K, m, d)
        slack = R.b[par] - np.einsum("kmd,kd->km", Cx, xs)
        fixed, per_r = vertexcert.sign_error_terms(np.abs(Cx).sum(axis=2), eCx, R.eb[par],
                                                   R.b[par], d, float(np.max(np.maximum(np.abs(lo), np.abs(hi)))))
        with np.errstate(invalid="ignore", over="ignore"):
            err = np.nan_to_num(SAFETY * (fixed + per_r * rs[:, None]), nan=np.inf, posinf=np.inf)
        row_id = 2 * d + np.arange(R.C.shape[1])
        tight_here = np.any(row_id[None, :, None] == ids[:, None, :], axis=2)
        rows_off = np.all(~R.mask[par] | tight_here | (slack > err), axis=1)
        face_id = np.stack([2 * np.arange(d), 2 * np.arange(d) + 1], axis=1)          # (d, 2): lo, hi faces
        face_tight = np.any(face_id[None, :, :, None] == ids[:, None, None, :], axis=3)
        room = np.stack([xs - lo, hi - xs], axis=2)                                  # (K, d, 2)
        box_off = np.all(face_tight | (room > rs[:, None, None]), axis=(1, 2))
        unproven = ~(np.isfinite(rs) & rows_off & box_off)
        proven[par[unproven]] = False
    return Skeletons(x, sk.tight, np.where(proven[owner], radius, np.inf), sk.vcount, sk.edges, sk.ecount, proven)


def _rows_by_id(path: VertexSplitter, P: Regions, parent: np.ndarray, ids: np.ndarray, layer=None):
    """The rows named by ``ids`` (K, T) through vertices of parents ``parent`` (indices into
    ``P``), as x-space systems ``a . x = c`` with errors: (A (K, T, d), c, eA, ec). Box faces are
    exact; rows of earlier layers are the parent's; rows of this layer come from ``layer`` =
    (Gx, g, eG, eg), each (K, n, ...) for the K vertices (a row through a vertex: its side does
    not matter)."""
    d, geo = path.d, path.frame.geometry
    K, T = ids.shape
    A = np.zeros((K, T, d))
    c, eA, ec = np.zeros((K, T)), np.zeros((K, T)), np.zeros((K, T))
    lo, hi = (np.broadcast_to(np.asarray(v, np.float64), (d,)) for v in path.frame.domain.box)
    bk, bt = np.nonzero((ids >= 0) & (ids < 2 * d))
    j = ids[bk, bt] // 2
    A[bk, bt, j] = 1.0
    c[bk, bt] = np.where(ids[bk, bt] % 2 == 1, hi[j], lo[j])
    q = ids - 2 * d
    offset = int(path.frame.offsets[P.layer])
    R = P.rows
    pk, pt = np.nonzero((q >= 0) & (q < offset))
    if pk.size:
        A[pk, pt], eA[pk, pt] = path.x_rows(R.C[parent[pk], q[pk, pt]], R.eC[parent[pk], q[pk, pt]])
        c[pk, pt] = R.b[parent[pk], q[pk, pt]]
        ec[pk, pt] = R.eb[parent[pk], q[pk, pt]]
    hk, ht = np.nonzero(q >= offset)
    if hk.size:
        Gx, g, eGx, eg = layer
        jj = q[hk, ht] - offset
        A[hk, ht] = Gx[hk, jj]
        c[hk, ht] = -g[hk, jj]
        eA[hk, ht] = eGx[hk, jj]
        ec[hk, ht] = eg[hk, jj]
    return A, c, eA, ec


class _Subdivision:
    """The arrangement under construction inside a batch of (partial) parents: one vertex table
    and one edge table for all of them, each row owned by one parent (``owner``).

    The hyperplanes are added in *rounds*: in round r every parent adds its r-th cutting
    hyperplane (parents differ in which, and in how many), so a round is one vectorised step over
    all the parents still being cut, and the number of steps is the most hyperplanes cutting one
    parent, not the layer's width.

    A *partial* parent is a cell of an arrangement cut up part way (:meth:`partial_cells`): the
    hyperplanes ``decided`` for it (its side of each) act like the rows of the region it lies in."""

    def __init__(self, path: VertexSplitter, P: Regions, hyp: Hyperplanes, origin: np.ndarray, sk: Skeletons,
                 sign: np.ndarray, cand: np.ndarray, decided: np.ndarray):
        self.path, self.P, self.hyp = path, P, hyp
        self.settings = path.settings
        self.d, self.words = path.d, path.words
        self.origin = np.asarray(origin, np.int64)             # (B,) each parent's index in P
        # (B, n, d): vertices live in x-space; eG: the hyperplanes' errors there (1-norm)
        self.Gx, self.eG = path.x_rows(hyp.G[self.origin], hyp.eG[self.origin])
        self.g, self.eg = hyp.g[self.origin], hyp.eg[self.origin]
        self.G1 = np.abs(self.Gx).sum(axis=2)
        lo, hi = path.frame.domain.box
        self.reach = float(np.max(np.maximum(np.abs(lo), np.abs(hi))))    # |x|_inf over the box
        self.n = hyp.G.shape[1]
        self.decided = np.asarray(decided, bool)               # (B, n) decided before this batch (partial parents)
        self.sign = np.asarray(sign, np.int8).copy()           # (B, n) each parent's side of hyperplanes not cutting it
        self.cand = np.asarray(cand, bool) & ~self.decided     # (B, n) candidates still to settle
        self.cuts = np.zeros_like(self.cand)                   # (B, n) hyperplanes proven to cut the parent
        self.added = np.zeros_like(self.cand)                  # (B, n) cutting hyperplanes added so far
        self.plan = np.zeros((self.cand.shape[0], 0), np.int64)   # (B, rounds) the cutting hyperplanes in order, -1 pads
        self.round = 0
        B = self.origin.size
        self.failed = np.zeros(B, bool)
        self.offset = int(path.frame.offsets[P.layer])         # flat index of this layer's first neuron
        # the vertex and edge tables grow at their end only: buffers with spare room (doubling), so
        # that a round appends its new rows instead of copying every row of the batch
        self._v = _Rows(x=sk.x, tight=sk.tight, radius=sk.radius, owner=np.repeat(np.arange(B), sk.vcount),
                        S=np.zeros((sk.x.shape[0], self.n), np.int8))   # S: each vertex's side of each hyperplane added
        self._e = _Rows(edges=sk.global_edges(), eowner=np.repeat(np.arange(B), sk.ecount))
        self.err_fixed, self.err_per_r = vertexcert.sign_error_terms(self.G1, self.eG, self.eg, self.g, self.d,
                                                                     self.reach)

    x = property(lambda self: self._v["x"])
    tight = property(lambda self: self._v["tight"])
    radius = property(lambda self: self._v["radius"])
    owner = property(lambda self: self._v["owner"])
    S = property(lambda self: self._v["S"])
    edges = property(lambda self: self._e["edges"])
    eowner = property(lambda self: self._e["eowner"])

    def rounds_left(self) -> bool:
        return self.round < self.plan.shape[1]

    def dead(self) -> bool:
        return bool(self.failed.all())

    def _fail(self, owners: np.ndarray) -> None:
        self.failed[np.unique(owners)] = True

    def _sign_error(self, owners, k, radius):
        """|float value - exact value| of hyperplane k (per row) at vertices of ``owners`` within ``radius``."""
        with np.errstate(invalid="ignore", over="ignore"):   # 0 * inf for an unproven vertex: unsure anyway
            e = self.err_fixed[owners, k] + self.err_per_r[owners, k] * radius
        return SAFETY * np.nan_to_num(e, nan=np.inf, posinf=np.inf)

    # ------------------------------------------------------------------ the parents first
    def settle(self) -> None:
        """Every candidate hyperplane against every vertex of every parent at once (the vertices
        are still grouped by parent): all signs certain and one-sided -> the parent lies on that
        side (it is the convex hull of its exact vertices); both signs -> it cuts the parent; an
        uncertain sign -> the parent leaves this path."""
        B, n, d, V = self.origin.size, self.n, self.d, self.x.shape[0]
        npos, nneg, unsure = (np.zeros((B, n), np.int64) for _ in range(3))
        fixed, per_r = self.err_fixed, self.err_per_r
        step = max(1, self.settings.pair_chunk // max(1, n * d))   # vertices at once: bounded temporaries
        for v0 in range(0, V, step):
            par = self.owner[v0:v0 + step]
            val = np.einsum("vd,vnd->vn", self.x[v0:v0 + step], self.Gx[par]) + self.g[par]
            with np.errstate(invalid="ignore", over="ignore"):
                err = SAFETY * np.nan_to_num(fixed[par] + per_r[par] * self.radius[v0:v0 + step, None], nan=np.inf,
                                             posinf=np.inf)
            for out, flag in ((npos, val > err), (nneg, val < -err), (unsure, ~(np.abs(val) > err))):
                _add_rows(out, par, flag)
        cand = self.cand
        self._fail(np.nonzero(np.any(cand & (unsure > 0), axis=1))[0])
        one = cand & (unsure == 0) & ((npos > 0) != (nneg > 0))
        self.sign[one] = np.where(npos > 0, 1, -1)[one]
        self.cuts = cand & (unsure == 0) & (npos > 0) & (nneg > 0)
        self.cand = np.zeros_like(cand)
        self.path.stats.vertex_decisions += int(one.sum()) + int(self.cuts.sum())
        # the plan: each parent's cutting hyperplanes in increasing order, one per round
        per = self.cuts.sum(axis=1)
        self.plan = np.full((B, int(per.max(initial=0))), -1, np.int64)
        pi, pk = np.nonzero(self.cuts)
        self.plan[pi, np.arange(pi.size) - (np.cumsum(per) - per)[pi]] = pk

    # ------------------------------------------------------------------ one round
    def add_round(self) -> None:
        """Every parent still being cut adds its next cutting hyperplane k (steps 1-3 of the
        module docstring; k differs from parent to parent)."""
        kp = np.where(self.failed, -1, self.plan[:, self.round])      # (B,) this round's hyperplane per parent
        self.round += 1
        live = kp >= 0
        if not live.any():
            return
        d = self.d
        self.added[np.nonzero(live)[0], kp[live]] = True
        # 1. signs at the vertices, certified
        vi = np.nonzero(live[self.owner])[0]
        par = self.owner[vi]
        k = kp[par]
        val = np.einsum("vd,vd->v", self.x[vi], self.Gx[par, k]) + self.g[par, k]
        err = self._sign_error(par, k, self.radius[vi])
        s = np.where(val > err, 1, np.where(val < -err, -1, 0)).astype(np.int8)
        if np.any(s == 0):                                     # a vertex on (or too near) the plane
            self._fail(par[s == 0])
        self.S[vi, k] = s
        V = self.x.shape[0]
        # 2. crossing edges get a new vertex each and become two edges
        ei = np.nonzero(live[self.eowner] & ~self.failed[self.eowner])[0]
        a, b = self.edges[ei, 0], self.edges[ei, 1]
        ke = kp[self.eowner[ei]]
        sa, sb = self.S[a, ke], self.S[b, ke]
        cross = (sa.astype(np.int16) * sb) < 0
        ci = ei[cross]
        if ci.size == 0:
            return
        up = sa[cross] > 0
        u, w = np.where(up, a[cross], b[cross]), np.where(up, b[cross], a[cross])
        own, kc = self.eowner[ci], ke[cross]
        common = self.tight[u] & self.tight[w]
        simple = bit_count(common) == d - 1
        if not simple.all():                                   # not an edge of a simple polytope
            self._fail(own[~simple])
        memory.check_cells(self.settings, 2 * V, int(self.path.frame.offsets[self.P.layer + 1]), self.P.layer + 1,
                           self.origin.size, extra_bytes=2.0 * V * (8 * (d + self.words + 2) + self.n))
        xu, xw = self.x[u], self.x[w]
        Gk, gk = self.Gx[own, kc], self.g[own, kc]
        vu, vw = np.einsum("cd,cd->c", xu, Gk) + gk, np.einsum("cd,cd->c", xw, Gk) + gk   # as in step 1, bit for bit
        eu, ew = self._sign_error(own, kc, self.radius[u]), self._sign_error(own, kc, self.radius[w])
        lam = vu / (vu - vw)
        nx = xu + lam[:, None] * (xw - xu)
        nt = common.copy()
        row = 2 * d + self.offset + kc
        nt[np.arange(ci.size), row // 64] |= np.uint64(1) << (row % 64).astype(np.uint64)
        nr = vertexcert.crossing_radius(xu, xw, self.radius[u], self.radius[w], vu, vw, eu, ew, lam)
        # interpolation compounds its endpoints' errors: where the radius has grown, solve afresh
        redo = np.nonzero(~(nr <= self.settings.vertex_resolve * (self.reach + 1.0)) & simple)[0]
        if redo.size:
            ids, _ = tight_ids(nt[redo], d)
            o = own[redo]
            A, c, eA, ec = _rows_by_id(self.path, self.P, self.origin[o], ids,
                                       (self.Gx[o], self.g[o], self.eG[o], self.eg[o]))
            xs, rs = vertexcert.solved_vertices(A, c, eA, ec)
            better = rs < nr[redo]
            nx[redo[better]], nr[redo[better]] = xs[better], rs[better]
        nS = np.sign(self.S[u].astype(np.int16) + self.S[w]).astype(np.int8)   # column k: +1 - 1 = 0
        new = V + np.arange(ci.size)
        self._v.append(x=nx, tight=nt, radius=nr, owner=own, S=nS)
        self.edges[ci] = np.stack([u, new], axis=1)
        # 3. one new edge per 2-face crossed
        face = self._face_edges(common[simple], nS[simple], own[simple], new[simple])
        self._e.append(edges=np.concatenate([np.stack([new, w], axis=1), face]),
                       eowner=np.concatenate([own, self.owner[face[:, 0]]]))
        self.path.stats.vertex_decisions += int(ci.size)

    def _face_edges(self, common: np.ndarray, nS: np.ndarray, own: np.ndarray, new: np.ndarray) -> np.ndarray:
        """Step 3: the new edges inside the hyperplane, one per 2-face it crosses. A crossing edge
        with tight rows T (d - 1 of them) bounds the 2-faces T - {t}: on the parent's side of t
        for a row of the parent (or a hyperplane ``decided`` for a partial parent), on both sides
        for a row of this layer still open. Each name must come up exactly twice (a crossed polygon has
        two crossing points); any other count means the arrangement is not simple there."""
        d, C = self.d, new.size
        if d < 2 or C == 0:
            return np.zeros((0, 2), np.int64)
        ids, _ = tight_ids(common, d - 1)                       # (C, d - 1)
        pos = _pack(nS > 0)                                     # (C, Wn) the edge's positive sides
        layer0 = 2 * d + self.offset                            # this layer's first row id
        keys, ends = [], []
        rows = np.arange(C)
        for t in range(d - 1):
            r = ids[:, t]
            cleared = common.copy()
            cleared[rows, r // 64] &= ~(np.uint64(1) << (r % 64).astype(np.uint64))
            base = np.concatenate([own[:, None].astype(np.uint64), cleared, pos], axis=1)
            keys.append(base)
            ends.append(new)
            j_all = np.clip(r - layer0, 0, self.n - 1)
            mine = np.nonzero((r >= layer0) & ~self.decided[own, j_all])[0]   # an open row of this layer: both sides
            if mine.size:
                other = base[mine].copy()
                j = r[mine] - layer0
                other[np.arange(mine.size), 1 + self.words + j // 64] |= np.uint64(1) << (j % 64).astype(np.uint64)
                keys.append(other)
                ends.append(new[mine])
        keys, ends = np.concatenate(keys), np.concatenate(ends)
        order, run, starts = _runs(keys)
        ends = ends[order]
        pairs = np.bincount(run)[run] == 2
        if not pairs.all():
            self._fail(keys[order[~pairs], 0].astype(np.int64))
        first_of_pair = np.nonzero(pairs & starts)[0]
        return np.stack([ends[first_of_pair], ends[first_of_pair + 1]], axis=1)

    # ------------------------------------------------------------------ the cells
    def _cell_table(self, with_edges: bool):
        """Every cell of every live parent, from the hyperplanes added so far: (cells (Q,) int64
        keys, sorted: owner in the high bits, the cell's sides of its parent's added hyperplanes
        (in the plan's order) in the low bits; (vertex, cell) copies; (edge, cell) copies or None).
        A vertex on z added hyperplanes lies in 2^z cells, an edge lying in z of them in 2^z."""
        R = self.plan.shape[1]
        owner_bits = max(1, int(self.origin.size).bit_length())
        if R + owner_bits > 62:                                # a wide plan (the root of a wide layer)
            return self._cell_table_wide(with_edges)
        plan = self.plan
        added = (plan >= 0) & (np.arange(R)[None, :] < self.round)        # (B, R) rounds already made
        alive = ~self.failed

        def keys(rows_owner, S_rows):
            cols = np.maximum(plan[rows_owner], 0)
            Sp = np.take_along_axis(S_rows, cols, axis=1)                 # (K, R) sides at the plan's hyperplanes
            row, bits = _completed_bits(Sp, added[rows_owner])
            return row, (rows_owner[row].astype(np.int64) << R) | bits[:, 0]

        vi = np.nonzero(alive[self.owner])[0]
        vrow, vkeys = keys(self.owner[vi], self.S[vi])
        parts = [vkeys]
        if with_edges:
            ei = np.nonzero(alive[self.eowner])[0]
            a, b = self.edges[ei, 0], self.edges[ei, 1]
            eS = np.sign(self.S[a].astype(np.int16) + self.S[b]).astype(np.int8)
            erow, ekeys = keys(self.eowner[ei], eS)
            parts.append(ekeys)
        cells, inverse = np.unique(np.concatenate(parts), return_inverse=True)
        nv = vrow.size
        return cells, (vi[vrow], inverse[:nv]), ((ei[erow], inverse[nv:]) if with_edges else None)

    def _cell_table_wide(self, with_edges: bool):
        """:meth:`_cell_table` for plans longer than one key word holds: keys of several words,
        grouped by a verified hash; returns cells as (owner, bits words) rows sorted by owner."""
        plan, R = self.plan, self.plan.shape[1]
        added = (plan >= 0) & (np.arange(R)[None, :] < self.round)
        alive = ~self.failed

        def keys(rows_owner, S_rows):
            Sp = np.take_along_axis(S_rows, np.maximum(plan[rows_owner], 0), axis=1)
            row, bits = _completed_bits(Sp, added[rows_owner])
            return row, np.concatenate([rows_owner[row, None].astype(np.int64), bits], axis=1)

        vi = np.nonzero(alive[self.owner])[0]
        vrow, vkeys = keys(self.owner[vi], self.S[vi])
        parts = [vkeys]
        if with_edges:
            ei = np.nonzero(alive[self.eowner])[0]
            a, b = self.edges[ei, 0], self.edges[ei, 1]
            erow, ekeys = keys(self.eowner[ei], np.sign(self.S[a].astype(np.int16) + self.S[b]).astype(np.int8))
            parts.append(ekeys)
        allkeys = np.concatenate(parts)
        order, run, starts = _runs(allkeys.view(np.uint64))
        inverse = np.empty(len(allkeys), np.int64)
        inverse[order] = run
        cells = allkeys[order][starts]
        by_owner = np.argsort(cells[:, 0], kind="stable")     # cells grouped by parent, in parent order
        rank = np.empty_like(by_owner)
        rank[by_owner] = np.arange(by_owner.size)
        cells, inverse = cells[by_owner], rank[inverse]
        nv = vrow.size
        return cells, (vi[vrow], inverse[:nv]), ((ei[erow], inverse[nv:]) if with_edges else None)

    def _chunks(self, with_edges: bool, cap: Optional[int]):
        """(cells' owners, complete signs, witnesses, skeletons) ``cap`` cells at a time (at least
        one chunk), cells grouped by owner."""
        cells, (vv, vc), ecopies = self._cell_table(with_edges)
        Q, V = cells.shape[0], self.x.shape[0]
        vkey = vc.astype(np.int64) * V + vv
        order = np.argsort(vkey)                                # vertex copies by cell, then vertex
        vkey, vv, vc = vkey[order], vv[order], vc[order]
        vcount = np.bincount(vc, minlength=Q)
        vstart = np.cumsum(vcount) - vcount
        if ecopies is not None:
            ee, ec = ecopies
            eorder = np.argsort(ec, kind="stable")
            ee, ec = ee[eorder], ec[eorder]
            ecount = np.bincount(ec, minlength=Q)
            estart = np.cumsum(ecount) - ecount
        R = self.plan.shape[1]
        if cells.ndim == 1:                                     # one key word: owner above the sides' bits
            owner, bits = cells >> R, (cells & ((1 << R) - 1))[:, None]
        else:
            owner, bits = cells[:, 0], cells[:, 1:]
        signs = self._signs(owner, bits)
        step = Q if cap is None else max(1, cap)
        for c0 in range(0, max(Q, 1), max(step, 1)):
            c1 = min(Q, c0 + step)
            rows = ragged_arange(vstart[c0:c1], vcount[c0:c1])
            vids, cnt = vv[rows], vcount[c0:c1]
            cell_of = np.repeat(np.arange(c1 - c0), cnt)
            wit = np.stack([np.bincount(cell_of, weights=self.x[vids, j], minlength=c1 - c0) for j in range(self.d)],
                           axis=1) / np.maximum(cnt, 1)[:, None]
            if ecopies is None:
                sk = Skeletons.none(c1 - c0, self.d, self.words)
            else:
                erows = ragged_arange(estart[c0:c1], ecount[c0:c1])
                ecell, ends = ec[erows], self.edges[ee[erows]]
                local = [np.searchsorted(vkey, ecell.astype(np.int64) * V + ends[:, i]) - vstart[ecell] for i in (0, 1)]
                sk = Skeletons(self.x[vids], self.tight[vids], self.radius[vids], cnt, np.stack(local, axis=1),
                               ecount[c0:c1], np.ones(c1 - c0, bool))
            yield owner[c0:c1], signs[c0:c1], wit, sk

    def children(self, last_layer: bool, cap: Optional[int]):
        """ChildCells of the live parents (grouped by parent), ``cap`` children at a time; after
        the last hidden layer the children carry no skeleton."""
        from .children import ChildCells

        for owner, signs, wit, sk in self._chunks(not last_layer, cap):
            yield ChildCells(self.origin[owner], signs, wit, sk)

    def _signs(self, owner: np.ndarray, bits: np.ndarray) -> np.ndarray:
        """(Q, n) int8 signs of the cells: their sides where a hyperplane cutting the parent was
        added (bit r % 62 of word r // 62 of ``bits``: the side of the parent's r-th planned
        hyperplane), the parent's side elsewhere."""
        signs = self.sign[owner].copy()
        R = self.plan.shape[1]
        for r in range(min(R, self.round)):
            k = self.plan[owner, r]
            has = k >= 0
            side = (bits[has, r // _KEY_BITS] >> (r % _KEY_BITS)) & 1
            signs[np.nonzero(has)[0], k[has]] = np.where(side == 1, 1, -1)
        return signs

    def partial_cells(self, group: Optional[int]) -> list["_Subdivision"]:
        """The arrangement so far as cells of their own, each a parent for the hyperplanes still
        to add (those cutting its parent, checked again against the cell), in groups of at most
        ``group`` cells."""
        out = []
        for owner, signs, _, sk in self._chunks(True, group):
            sub = _Subdivision(self.path, self.P, self.hyp, self.origin[owner], sk, signs,
                               self.cuts[owner] & ~self.added[owner], self.decided[owner] | self.added[owner])
            sub.settle()
            out.append(sub)
        return out


class _Rows:
    """Arrays sharing one row count that grow at their end: each kept in a buffer with spare room
    (capacity doubling), read through views of the rows in use."""

    def __init__(self, **arrays):
        self.buf = {k: np.asarray(v) for k, v in arrays.items()}
        self.n = len(next(iter(self.buf.values())))

    def __getitem__(self, name: str) -> np.ndarray:
        return self.buf[name][:self.n]

    def append(self, **rows) -> None:
        k = len(next(iter(rows.values())))
        need = self.n + k
        for name, new in rows.items():
            old = self.buf[name]
            if need > old.shape[0]:
                grown = np.empty((max(need, 2 * old.shape[0]),) + old.shape[1:], old.dtype)
                grown[:self.n] = old[:self.n]
                self.buf[name] = old = grown
            old[self.n:need] = new
        self.n = need


_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93,
                 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53, 0x94D049BB133111EB, 0xBF58476D1CE4E5B9], np.uint64)


def _hash_rows(keys: np.ndarray) -> np.ndarray:
    """One uint64 per row of ``keys`` (K, c) uint64: each column times its own odd constant,
    summed, then mixed (splitmix64's finaliser). Equal rows hash equally; the callers check that
    rows with equal hashes are equal, so a collision costs a slower sort, never a wrong answer."""
    with np.errstate(over="ignore"):
        h = np.zeros(keys.shape[0], np.uint64)
        for j in range(keys.shape[1]):
            h += (keys[:, j] ^ (keys[:, j] >> np.uint64(29))) * _MIX[j % _MIX.size]
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return h


def _runs(keys: np.ndarray):
    """Rows of ``keys`` (K, c) uint64 grouped, equal rows together: (order, run id of each row
    in that order, whether it starts a run). Sorted by a 64-bit hash of each row (one column to
    sort instead of c: lexsort over all columns was most of the grouping's time); if two
    different rows share a hash, sorted by all columns instead."""
    h = _hash_rows(keys)
    order = np.argsort(h)
    hs = h[order]
    starts = np.ones(len(hs), bool)
    if len(hs) > 1:
        starts[1:] = hs[1:] != hs[:-1]
        same = np.nonzero(~starts[1:])[0]                # neighbours sharing a hash must share the row
        if same.size and np.any(keys[order[same]] != keys[order[same + 1]]):
            order = np.lexsort(keys.T[::-1])             # a collision: sort by the rows themselves
            s = keys[order]
            starts[1:] = np.any(s[1:] != s[:-1], axis=1)
    return order, np.cumsum(starts) - 1, starts


def _pack(bits: np.ndarray) -> np.ndarray:
    """(K, n) bool -> (K, ceil(n / 64)) uint64 (bit j of word j // 64 is column j)."""
    K, n = bits.shape
    words = max(1, (n + 63) // 64)
    packed = np.packbits(bits, axis=1, bitorder="little")
    out = np.zeros((K, words * 8), np.uint8)
    out[:, :packed.shape[1]] = packed
    return out.view(np.uint64)


_KEY_BITS = 62   # sides per key word (int64, non-negative, with room for nothing else: the owner has its own column)


def _completed_bits(S: np.ndarray, added: np.ndarray):
    """For each row of ``S`` (K, R) (sides at a parent's planned hyperplanes; 0 where the point
    lies on an added one), every way of replacing its zeros on added hyperplanes by +1/-1: (row
    index (M,), the completed sides as bits (M, ceil(R / 62)) int64: bit r % 62 of word r // 62
    set for the positive side of the r-th)."""
    K, R = S.shape
    nw = max(1, -(-R // _KEY_BITS))
    zero = (S == 0) & added
    z = zero.sum(axis=1)
    col_word = np.arange(R) // _KEY_BITS
    col_bit = (np.int64(1) << (np.arange(R) % _KEY_BITS).astype(np.int64))
    pos = ((S > 0) & added).astype(np.int64)
    base = np.zeros((K, nw), np.int64)
    for w in range(nw):
        sel = col_word == w
        base[:, w] = pos[:, sel] @ col_bit[sel]
    rows, out = [], []
    for zz in np.unique(z):
        idx = np.nonzero(z == zz)[0]
        if zz == 0:
            rows.append(idx)
            out.append(base[idx])
            continue
        reps = 1 << int(zz)
        cols = np.nonzero(zero[idx])[1].reshape(idx.size, zz)                 # the zeros' columns
        pats = (np.arange(reps)[:, None] >> np.arange(zz)[None, :]) & 1        # (reps, zz)
        got = np.repeat(base[idx], reps, axis=0).reshape(idx.size, reps, nw)
        for t in range(int(zz)):
            c = cols[:, t]
            got[np.arange(idx.size)[:, None], np.arange(reps)[None, :], col_word[c][:, None]] += (
                pats[None, :, t] * col_bit[c][:, None])
        rows.append(np.repeat(idx, reps))
        out.append(got.reshape(-1, nw))
    if not rows:
        return np.zeros(0, np.int64), np.zeros((0, nw), np.int64)
    return np.concatenate(rows), np.concatenate(out)


def _add_rows(out: np.ndarray, par: np.ndarray, flag: np.ndarray) -> None:
    """out[p] += the sum of ``flag``'s rows owned by p (``par`` sorted: rows grouped by owner)."""
    if par.size == 0:
        return
    starts = np.nonzero(np.concatenate([[True], par[1:] != par[:-1]]))[0]
    out[par[starts]] += np.add.reduceat(flag.astype(np.int64), starts, axis=0)
