"""Step 4 of a split (the LP path): the arrangement of the cutting hyperplanes inside each parent.

First, every (parent, neuron) the cheap tests left open gets one LP: does the far side of its
hyperplane (seen from the witness) hold interior points of the parent? Then the cutting
hyperplanes are added one at a time, each step over all current cells of all parents at once
(the incremental construction of an arrangement restricted to a polytope). A cell is cut by the
new hyperplane when

1. its *pool* already holds points on both sides (every LP leaves an interior point behind, and
   points are shared by the cells that contain them);
2. or its best point's ball reaches across (both half-balls lie in the cell);
3. or an LP finds interior on the side without points.

An LP answer "no interior" is certified at once (:class:`lrenum.certify.decide.Decider`); "interior"
claims are certified with the children (a forward pass at each child's witness), so a cell wrongly
proposed non-empty only produces children that fail that check and are removed.

One module: the side tester and the hyperplane insertion share the pool of points that avoids LPs.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..certify.decide import CellSpec, Decider, DecisionStats
from ..lp.problem import MarginProblems
from . import memory
from .classify import Classes
from .frame import Frame
from .state import Hyperplanes, Regions, Rows


class Pool(NamedTuple):
    """Known interior points, each assigned to the cell that contains it."""

    x: np.ndarray        # (P, d)
    img: np.ndarray      # (P, r) basis coordinates U x
    cell: np.ndarray     # (P,)
    radius: np.ndarray   # (P,) estimated distance to the cell's boundary (a proposal)


class Cells(NamedTuple):
    """Cells under construction: their parent and this layer's signs decided so far."""

    parent: np.ndarray   # (C,) index into the parent batch
    signs: np.ndarray    # (C, n) int8: +1/-1 for cutting neurons already added, else 0


def layer_rows(hyp: Hyperplanes, parent: np.ndarray, signs: np.ndarray):
    """This layer's rows ``-s G y < s g`` for signs s (0 rows are masked out)."""
    s = signs.astype(np.float64)
    return (-s[:, :, None] * hyp.G[parent], s * hyp.g[parent], hyp.eG[parent], hyp.eg[parent], signs != 0)


class SideTester:
    """Does side ``s`` of neuron k hold interior points of a cell? One batched LP, then certification."""

    def __init__(self, frame: Frame, P: Regions, hyp: Hyperplanes, backend, decider: Decider, stats: DecisionStats):
        self.frame, self.P, self.hyp = frame, P, hyp
        self.backend, self.decider, self.stats = backend, decider, stats

    def __call__(self, parent, signs, k, side, start):
        """(interior proven (K,), a point in each nonempty side, its radius); built in chunks so
        that the stacked rows of K cells never exceed the LP memory budget."""
        K = parent.size
        d = self.frame.d
        if K == 0:
            return np.zeros(0, bool), np.zeros((0, d)), np.zeros(0)
        step = memory.lp_chunk(self.frame.settings, self.P.rows.C.shape[1] + signs.shape[1] + 1, self.frame.r)
        if K > step:
            parts = [self(parent[s:s + step], signs[s:s + step], k[s:s + step], side[s:s + step], start[s:s + step])
                     for s in range(0, K, step)]
            return tuple(np.concatenate(p) for p in zip(*parts))
        rows = self.cell_rows(parent, signs, k, side)
        problems = MarginProblems(rows.C, rows.b, rows.mask, start)
        cut = self.frame.settings.cut_tol * self.frame.geometry.scale
        certs = self.decider.device_certs
        fused = getattr(self.backend, "solve_certified", None)
        proven = None
        if certs is not None and certs.empty_on_device and fused is not None:
            sol, proven = fused(problems, rows.eC, rows.eb, certs, cut)   # LPs and their dual bounds in one call
        else:
            sol = self.backend.solve(problems)
        self.stats.lps += K
        self.stats.lp_unfinished += int(np.sum(sol.status != 0))
        nonempty = sol.t > cut
        x, radius = sol.x.copy(), np.where(nonempty, sol.radius, 0.0)
        claims = np.nonzero(~nonempty)[0]
        if proven is not None:
            self.stats.float_certificates += int(proven[claims].sum())
            claims = claims[~proven[claims]]
        if claims.size:
            empty, wit, rad = self.settle(parent[claims], signs[claims], k[claims], side[claims],
                                          sol.y[claims], sol.y_dom[claims])
            flip = claims[~empty]
            nonempty[flip] = True
            x[flip], radius[flip] = wit[~empty], rad[~empty]
        return nonempty, x, radius

    def cell_rows(self, parent, signs, k, side):
        """Rows of "side ``side`` of neuron k in the cell": the parent's rows
        (one per earlier neuron), this layer's (one per neuron, masked where the sign is 0), the test row."""
        K = parent.size
        test = np.zeros_like(signs)
        test[np.arange(K), k] = side
        R = self.P.rows
        Cl, bl, eCl, ebl, ml = layer_rows(self.hyp, parent, signs)
        Ct, bt, eCt, ebt, _ = layer_rows(self.hyp, parent, test)
        kk = (np.arange(K), k)
        return Rows(np.concatenate([R.C[parent], Cl, Ct[kk][:, None]], axis=1),
                np.concatenate([R.b[parent], bl, bt[kk][:, None]], axis=1),
                np.concatenate([R.eC[parent], eCl, eCt[kk][:, None]], axis=1),
                np.concatenate([R.eb[parent], ebl, ebt[kk][:, None]], axis=1),
                np.concatenate([R.mask[parent], ml, np.ones((K, 1), bool)], axis=1))

    def settle(self, parent, signs, k, side, y, y_dom):
        """Certify "no interior" claims for these cells with dual weights y (layout of
        :meth:`cell_rows`), climbing the Decider's ladder where needed: (empty, witness, radius)."""
        return self.decider.empty_claims(self.cell_rows(parent, signs, k, side), y, y_dom,
                                         lambda i: self._spec(parent[i], signs[i], k[i], side[i]))

    def _spec(self, p: int, signs: np.ndarray, k: int, side: int) -> CellSpec:
        """The exact path's view of one tested cell, rows in the float layout's order."""
        frame, P = self.frame, self.P
        cur = signs.copy()
        cur[k] = side
        prev = np.nonzero(P.rows.mask[p])[0]
        here = np.nonzero(signs)[0]
        off = frame.offsets[P.layer]
        order = np.concatenate([prev, off + here, [off + k]])
        return CellSpec(frame.layer_signs(P.bits[p], P.layer, cur), order)


def arrange(frame: Frame, P: Regions, hyp: Hyperplanes, cls: Classes, tester: SideTester,
            stats: DecisionStats, report=None) -> tuple[Cells, Pool, np.ndarray]:
    """Cells of every parent (with their pools) and the final set of cutting neurons (B, n);
    ``report(hyperplanes added, of how many, cells)`` after each hyperplane (progress)."""
    B, n = cls.cuts.shape
    geo = frame.geometry
    cuts = cls.cuts.copy()
    pool = Pool(P.witness.copy(), geo.image(P.witness), np.arange(B), P.radius.copy())
    pi, pj = np.nonzero(cls.open)
    if pi.size:                      # parent-level: does the far side of each open hyperplane exist?
        side = -cls.sign[pi, pj]
        ok, x, rad = tester(pi, np.zeros((pi.size, n), np.int8), pj, side, P.witness[pi])
        cuts[pi[ok], pj[ok]] = True
        pool = Pool(np.concatenate([pool.x, x[ok]]), np.concatenate([pool.img, geo.image(x[ok])]),
                    np.concatenate([pool.cell, pi[ok]]), np.concatenate([pool.radius, rad[ok]]))
    cells = Cells(np.arange(B), np.zeros((B, n), np.int8))
    for k in range(n):
        # every cut can at most double the cells: check before the arrays grow
        memory.check_cells(frame.settings, 2 * len(cells.parent), int(frame.offsets[P.layer + 1]), P.layer + 1, B)
        cells, pool = _add_hyperplane(frame, hyp, cls, cuts, cells, pool, k, tester, stats)
        if report is not None:
            report(k + 1, n, len(cells.parent))
    return cells, pool, cuts


def _add_hyperplane(frame, hyp, cls, cuts, cells: Cells, pool: Pool, k: int, tester: SideTester, stats):
    """Cut every cell whose parent is cut by neuron k, where the cell really is cut."""
    geo, settings = frame.geometry, frame.settings
    sel = np.nonzero(cuts[cells.parent, k])[0]
    if sel.size == 0:
        return cells, pool
    C = len(cells.parent)
    in_sel = np.zeros(C, bool)
    in_sel[sel] = True
    pts = np.nonzero(in_sel[pool.cell])[0]
    pp = cells.parent[pool.cell[pts]]
    val = np.einsum("pr,pr->p", hyp.G[pp, k], pool.img[pts]) + hyp.g[pp, k]
    dist = np.abs(val) / cls.norms[pp, k]
    clear = dist > settings.pool_margin * geo.scale
    has_pos = np.bincount(pool.cell[pts][clear & (val > 0)], minlength=C) > 0
    has_neg = np.bincount(pool.cell[pts][clear & (val < 0)], minlength=C) > 0
    new_x, new_cell, new_rad = [], [], []

    # 2. the ball test, on each cell's best clear point, for cells lacking one side
    lacking = sel[~(has_pos[sel] & has_neg[sel])]
    best = _best_point(pool, pts[clear], C)
    any_point = np.where(best >= 0, best, _best_point(pool, pts, C))
    lacking = lacking[best[lacking] >= 0]
    bp = best[lacking]
    pidx = cells.parent[lacking]
    bval = np.einsum("kr,kr->k", hyp.G[pidx, k], pool.img[bp]) + hyp.g[pidx, k]
    bdist = np.abs(bval) / cls.norms[pidx, k]
    r_eff = np.minimum(pool.radius[bp], bdist + settings.radius_cap * geo.scale)
    geo_cut = bdist < settings.geo_safety * r_eff
    if np.any(geo_cut):
        gi = np.nonzero(geo_cut)[0]
        s = np.where(bval[gi] >= 0, 1.0, -1.0)[:, None]
        unit = geo.to_x(hyp.G[pidx[gi], k]) / cls.norms[pidx[gi], k][:, None]
        dl, re = bdist[gi][:, None], r_eff[gi][:, None]
        new_x.append(pool.x[bp[gi]] - s * unit * (dl + re) / 2)        # centre of the far half-ball
        new_rad.append(((re - dl) / 2)[:, 0])
        new_cell.append(lacking[gi])
        moved = pool.x[bp[gi]] + s * unit * (re - dl) / 2                # centre of the near half-ball
        pool.x[bp[gi]] = moved
        pool.img[bp[gi]] = geo.image(moved)
        pool.radius[bp[gi]] = ((re + dl) / 2)[:, 0]
        has_pos[lacking[gi]] = True
        has_neg[lacking[gi]] = True
        stats.avoided += gi.size
    stats.avoided += int(np.sum(has_pos[sel] & has_neg[sel])) - int(np.sum(geo_cut))

    # 3. an LP for every side that still has no point: both sides in one device call
    need_pos, need_neg = sel[~has_pos[sel]], sel[~has_neg[sel]]
    need = np.concatenate([need_pos, need_neg])
    if need.size:
        side = np.concatenate([np.ones(need_pos.size, np.int64), -np.ones(need_neg.size, np.int64)])
        start = np.where(any_point[need, None] >= 0, pool.x[np.maximum(any_point[need], 0)],
                         frame.domain.center()[None, :])
        ok, x, rad = tester(cells.parent[need], cells.signs[need], np.full(need.size, k), side, start)
        new_x.append(x[ok])
        new_rad.append(rad[ok])
        new_cell.append(need[ok])
        has_pos[need_pos[ok[:need_pos.size]]] = True
        has_neg[need_neg[ok[need_pos.size:]]] = True
    split = sel[has_pos[sel] & has_neg[sel]]
    only_pos = sel[has_pos[sel] & ~has_neg[sel]]
    only_neg = sel[~has_pos[sel] & has_neg[sel]]
    dead = sel[~has_pos[sel] & ~has_neg[sel]]     # both sides proven empty: the cell was a false proposal
    if dead.size:
        cells, pool = _drop_cells(cells, pool, dead)
        remap = np.cumsum(np.isin(np.arange(C), dead, invert=True)) - 1
        split, only_pos, only_neg = remap[split], remap[only_pos], remap[only_neg]
        sel = remap[np.setdiff1d(sel, dead)]
        C = len(cells.parent)
    signs = cells.signs.copy()
    signs[only_pos, k] = 1
    signs[only_neg, k] = -1
    if new_x:
        xs = np.concatenate(new_x)
        pool = Pool(np.concatenate([pool.x, xs]), np.concatenate([pool.img, geo.image(xs)]),
                    np.concatenate([pool.cell] + new_cell), np.concatenate([pool.radius] + new_rad))
    if split.size == 0:
        return Cells(cells.parent, signs), pool
    # split cells: the cell keeps the positive side, a new cell takes the negative side
    new_id = np.full(C, -1)
    new_id[split] = C + np.arange(split.size)
    signs[split, k] = 1
    child_signs = signs[split].copy()
    child_signs[:, k] = -1
    in_split = np.zeros(C, bool)
    in_split[split] = True
    moving = in_split[pool.cell]
    mp = np.nonzero(moving)[0]
    par = cells.parent[pool.cell[mp]]
    v = np.einsum("pr,pr->p", hyp.G[par, k], pool.img[mp]) + hyp.g[par, k]
    dv = np.abs(v) / cls.norms[par, k]
    keep = dv > settings.pool_margin * geo.scale                 # a point on the hyperplane belongs to neither side
    cell = pool.cell.copy()
    cell[mp[v < 0]] = new_id[pool.cell[mp[v < 0]]]
    radius = pool.radius.copy()
    radius[mp] = np.minimum(radius[mp], dv)
    alive = np.ones(len(cell), bool)
    alive[mp[~keep]] = False
    pool = Pool(pool.x[alive], pool.img[alive], cell[alive], radius[alive])
    cells = Cells(np.concatenate([cells.parent, cells.parent[split]]), np.concatenate([signs, child_signs]))
    return cells, pool


def _drop_cells(cells: Cells, pool: Pool, dead: np.ndarray) -> tuple[Cells, Pool]:
    alive = np.ones(len(cells.parent), bool)
    alive[dead] = False
    new_index = np.cumsum(alive) - 1
    keep = alive[pool.cell]
    pool = Pool(pool.x[keep], pool.img[keep], new_index[pool.cell[keep]], pool.radius[keep])
    return Cells(cells.parent[alive], cells.signs[alive]), pool


def _best_point(pool: Pool, candidates: np.ndarray, n_cells: int) -> np.ndarray:
    """Per cell, the candidate point with the largest radius (-1 where it has none)."""
    best = np.full(n_cells, -1)
    if candidates.size:
        order = candidates[np.lexsort((pool.radius[candidates], pool.cell[candidates]))]
        best[pool.cell[order]] = order            # the last write per cell is its largest radius
    return best


def witnesses(pool: Pool, n_cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Each cell's best point and its radius (every cell has at least one point)."""
    best = _best_point(pool, np.arange(len(pool.cell)), n_cells)
    return pool.x[best], pool.radius[best]
