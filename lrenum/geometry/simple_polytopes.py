"""Facets and certified volumes of final regions, read off the vertex path's proven vertex sets.

At d <= 6 on a box the vertex path ends with each region's vertex set *proven*
(:class:`lrenum.core.vertex_sets.VertexSets`): one to one with the exact vertices, each simple
(exactly d independent rows through it, named by its tight bits), each within a certified
radius of its exact point. From there, for a whole batch of regions at once:

* **The rows check** (:func:`rows_strict_off_vertices`): every row of the region (every
  non-constant neuron of every layer, every box face) that is not tight at a vertex is certainly
  strict there. So no other neuron's hyperplane passes through a vertex, and none can contain a
  facet (it would pass through the facet's vertices).
* **Facets**: at a simple vertex every tight row is a facet (the tangent cone is simplicial, with
  one facet per row), and every facet of a polytope holds a vertex, so the facets are the union
  of the tight rows, one neuron (or box face) each.
* **Volume** by Lawrence's formula for simple polytopes (J. Lawrence, "Polytope volume
  computation", Math. Comp. 57, 1991): for c generic (no edge orthogonal to it) and any point z,
  ``vol = sum_v (c . (v - z))^d / (d! |det A_v| prod_i gamma_v,i)`` with ``A_v`` the outward
  rows tight at v and ``A_v^T gamma_v = c``. One d x d determinant and solve per vertex, no
  triangulation. Evaluated in ball arithmetic (:mod:`lrenum.certify.balls`) from the vertices'
  radii and the rows' error bounds, so the volume comes with a certified bound; where c is
  nearly orthogonal to an edge (a gamma near 0) the bound is wide or infinite, and another c is
  tried (:data:`DIRECTIONS`).

A region where a step is not proven (an unproven vertex set, a row too near a vertex, no c with
a finite bound) is reported not done; the caller computes it on the exact path.
"""

from __future__ import annotations

from math import factorial
from typing import NamedTuple

import numpy as np

from ..certify import balls
from ..certify.vertexcert import solved_vertices
from ..core.vertex_sets import VertexSets, ragged_arange, tight_ids
from ..lp.problem import Rows
from ..tolerances import ETA, SAFETY, U64, gamma

N_DIRECTIONS = 3          # directions c tried for Lawrence's formula before a region goes to the exact path
VOLUME_REL_BOUND = 1e-6   # a volume bound wider than this (relative) tries the next direction (a loose bound is still true, just less useful)
DIRECTION_SEED = 20261203  # the directions are fixed (reproducible volumes), pseudo-random (generic for any network)


class BatchGeometry(NamedTuple):
    """Geometry of a batch of B regions: done (B,) and, for the done ones (in batch order), their
    facets as row ids (ragged: ``facet_count``), volumes and bounds."""

    done: np.ndarray            # (B,) bool: everything below is proven for this region
    facet_ids: np.ndarray       # (F,) row ids of the done regions' facets (box bit 2j: lo_j, 2j + 1: hi_j; 2d + q: neuron q)
    facet_count: np.ndarray     # (B,) facets per region (0 where not done)
    volume: np.ndarray          # (B,) float64 (nan where not done)
    volume_bound: np.ndarray    # (B,) certified |volume - exact volume| (inf where not done)
    x: np.ndarray               # (V, d) the vertices (solved afresh where that is more precise)
    radius: np.ndarray          # (V,) certified distance (infinity norm) of each to its exact vertex


def directions(d: int) -> np.ndarray:
    """The fixed directions c for Lawrence's formula, (N_DIRECTIONS, d)."""
    return np.random.default_rng(DIRECTION_SEED).standard_normal((N_DIRECTIONS, d))


REGIONS_PER_PIECE = 512   # regions done at once: temporaries stay small (fresh large arrays cost their page faults: an 18,017-region batch took 3.5 s whole, 1.9 s in pieces of 256), numpy calls stay large enough to leave the GIL to the walk (4-input 24-24-24 with two geometry threads: pieces of 64/256/512/1,024 17.0/13.8/12.9/13.3 s)


def batch_geometry(V: VertexSets, rows: Rows, lo: np.ndarray, hi: np.ndarray) -> BatchGeometry:
    """Facets and certified volumes of a batch of final regions (rows in x-space: the vertex path
    proves vertex sets only with the identity basis), in pieces of REGIONS_PER_PIECE."""
    if len(V) <= REGIONS_PER_PIECE:
        return _piece_geometry(V, rows, lo, hi)
    parts = [_piece_geometry(V.take(slice(s, s + REGIONS_PER_PIECE)), Rows(*(f[s:s + REGIONS_PER_PIECE] for f in rows)),
                             lo, hi) for s in range(0, len(V), REGIONS_PER_PIECE)]
    return BatchGeometry(*(np.concatenate(field) for field in zip(*parts)))


def _piece_geometry(V: VertexSets, rows: Rows, lo: np.ndarray, hi: np.ndarray) -> BatchGeometry:
    B, d = len(V), V.x.shape[1]
    region = np.repeat(np.arange(B), V.count)
    ok = V.count > 0
    simple = np.bitwise_count(V.tight).sum(axis=1) == d
    ok &= np.bincount(region, weights=~simple, minlength=B) == 0      # simple vertices only (a region with
    vi = np.nonzero(ok[region])[0]                                    # one that is not goes to the exact path)
    vol, bound = np.full(B, np.nan), np.full(B, np.inf)
    if vi.size:
        ids, _ = tight_ids(V.tight[vi])                               # d rows each
        tight = _TightSystems.build(rows, lo, hi, region[vi], ids)
        V = resolved_vertices(V, vi, tight)
        ok &= np.bincount(region, weights=~np.isfinite(V.radius), minlength=B) == 0
        ok &= rows_strict_off_vertices(V, rows, lo, hi, region)
        ok &= closed_under_edges(region[vi], ids, B)
        vol, bound = _volumes(V, region, vi, tight, ok)
    ok &= np.isfinite(bound)
    # facets: the union of the tight rows over each region's vertices
    starts = V.start
    has = V.count > 0
    union = np.zeros((B, V.tight.shape[1]), np.uint64)
    if has.any():
        union[has] = np.bitwise_or.reduceat(V.tight, starts[has], axis=0)
    union[~ok] = 0
    bits = np.unpackbits(union.view(np.uint8), axis=1, bitorder="little")
    reg, facet = np.nonzero(bits)
    return BatchGeometry(ok, facet.astype(np.int64), np.bincount(reg, minlength=B),
                         np.where(ok, vol, np.nan), np.where(ok, bound, np.inf), V.x, V.radius)


class _TightSystems(NamedTuple):
    """The d tight rows ``A_v x <= b_v`` of vertices ``vi`` (balls), and an approximate inverse of
    each A_v (shared by the vertex solve and Lawrence's gamma solve: A_v^-T = (A_v^-1)^T)."""

    A: balls.Ball            # (K, d, d) outward normals
    b: balls.Ball            # (K, d)
    R: np.ndarray            # (K, d, d) float inverse (nan where singular: the bounds then fail)
    det: balls.Ball          # (K,) |det A_v|

    @staticmethod
    def build(rows, lo, hi, region, ids) -> "_TightSystems":
        A, b = _tight_rows(rows, lo, hi, region, ids)
        with np.errstate(all="ignore"):
            try:
                R = np.linalg.inv(A.mid)
            except np.linalg.LinAlgError:             # a singular one in the batch: one at a time
                R = np.full_like(A.mid, np.nan)
                for k in range(R.shape[0]):
                    try:
                        R[k] = np.linalg.inv(A.mid[k])
                    except np.linalg.LinAlgError:
                        pass
        return _TightSystems(A, b, R, balls.abs_(balls.det(A)))

    def take(self, idx) -> "_TightSystems":
        return _TightSystems(*(balls.Ball(v.mid[idx], v.rad[idx]) if isinstance(v, balls.Ball) else v[idx]
                               for v in self))


def resolved_vertices(V: VertexSets, vi: np.ndarray, tight: _TightSystems) -> VertexSets:
    """Vertices ``vi`` solved afresh from their d tight rows, with Rump's certified radius
    (:func:`lrenum.certify.vertexcert.solved_vertices`), where that radius is smaller than the
    one carried: the vertex path lets radii grow along chains of crossings (up to
    ``vertex_resolve``) because signs need little precision, but volumes and stored vertices
    want each vertex as precise as its own rows allow."""
    x, r = solved_vertices(tight.A.mid, tight.b.mid, tight.A.rad[:, :, 0], tight.b.rad, tight.R)
    better = r < V.radius[vi]
    X, R = V.x.copy(), V.radius.copy()
    X[vi[better]], R[vi[better]] = x[better], r[better]
    return VertexSets(X, V.tight, V.count, R, V.proven)


def closed_under_edges(region: np.ndarray, ids: np.ndarray, B: int) -> np.ndarray:
    """(B,) bool: each region's vertices are distinct, and every edge leaving one ends at another.

    With every vertex proven simple (its d rows meet at a point where every other row is
    strict), the line where d - 1 of its rows stay tight meets the region in an edge whose other
    end is the only other vertex on that line. So the set is closed under the vertex graph's
    edges exactly when each (region, d - 1 rows) key occurs twice; the graph of a bounded
    polytope is connected, so a closed set is every vertex. This makes the proof independent of
    how the vertex set was found (the vertex path's incremental construction, or qhull)."""
    d = ids.shape[1]
    bad = np.zeros(B, bool)
    if ids.shape[0] == 0:
        return ~bad
    _, inv, count = np.unique(_rows_as_keys(np.c_[region, ids]), return_inverse=True, return_counts=True)
    np.logical_or.at(bad, region, count[inv.ravel()] > 1)                   # a vertex listed twice
    subs = np.concatenate([np.c_[region, np.delete(ids, j, axis=1)] for j in range(d)])
    _, inv, count = np.unique(_rows_as_keys(subs), return_inverse=True, return_counts=True)
    np.logical_or.at(bad, np.tile(region, d), count[inv.ravel()] != 2)       # an edge with no vertex at its end
    return ~bad


def _rows_as_keys(a: np.ndarray) -> np.ndarray:
    """Rows of a non-negative int64 array as one key each, for np.unique: one int64 (mixed
    radix) when the rows fit in 63 bits (a sort of integers, several times faster), else a void
    scalar per row (whole rows compared)."""
    a = np.ascontiguousarray(a, dtype=np.int64)
    base = int(a.max(initial=0)) + 1
    if base ** a.shape[1] < 2 ** 63:
        key = np.zeros(a.shape[0], np.int64)
        for col in a.T:
            key = key * base + col
        return key
    return a.view(np.dtype((np.void, a.shape[1] * 8))).ravel()


def rows_strict_off_vertices(V: VertexSets, rows: Rows, lo, hi, region: np.ndarray) -> np.ndarray:
    """(B,) bool: at every vertex, every row not tight there is certainly strict at the exact
    vertex (neuron rows with their error bounds and the vertex's radius; box faces exactly).

    First per (region, row) over the box around the region's vertices: most rows are strict on
    the whole box (their hyperplane passes far away), proven without looking at a vertex; only
    the rest (the facets, and rows passing near) are checked vertex by vertex."""
    B, d = len(V), V.x.shape[1]
    if V.x.shape[0] == 0:
        return np.ones(B, bool)
    x, rho = V.x, V.radius
    start = V.start
    has = V.count > 0
    top = np.zeros((B, d))
    bot = np.zeros((B, d))
    reach = np.zeros(B)
    top[has] = np.maximum.reduceat(x, start[has], axis=0)
    bot[has] = np.minimum.reduceat(x, start[has], axis=0)
    reach[has] = np.maximum.reduceat(rho, start[has])
    bot, top = bot - reach[:, None], top + reach[:, None]       # every exact vertex lies in [bot, top] (rounding: SAFETY below)
    xinf = np.maximum(np.abs(bot), np.abs(top)).max(axis=1)[:, None]
    C, b = rows.C, rows.b
    C1 = np.abs(C).sum(axis=2)
    with np.errstate(invalid="ignore", over="ignore"):          # 0 * inf where a radius is unknown: nan, never sure
        least = b - np.maximum(C * bot[:, None, :], C * top[:, None, :]).sum(axis=2)
        # gamma_{d+2}: the sum's d + 1 roundings, and one more for the rounding of bot and top
        err = SAFETY * (rows.eb + rows.eC * xinf + gamma(d + 2) * (C1 * xinf + np.abs(b)) + ETA * (d + 1))
        sure = least > err                                      # a nan bound is never sure
    pi, pn = np.nonzero(rows.mask & ~sure)
    bad = np.zeros(B, bool)
    if pi.size:
        v = ragged_arange(start[pi], V.count[pi])               # every vertex of the pair's region
        pair = np.repeat(np.arange(pi.size), V.count[pi])
        i, n = pi[pair], pn[pair]
        c = C[i, n]
        slack = b[i, n] - np.einsum("vd,vd->v", c, x[v])
        xv = (np.abs(x[v]).max(axis=1) + rho[v])
        with np.errstate(invalid="ignore", over="ignore"):
            e = SAFETY * (rows.eb[i, n] + rows.eC[i, n] * xv + C1[i, n] * rho[v]
                          + gamma(d + 1) * (C1[i, n] * xv + np.abs(b[i, n])) + ETA * (d + 1))
            strict = slack > e
        bit = 2 * d + n
        is_tight = (V.tight[v, bit // 64] >> (bit % 64).astype(np.uint64)) & np.uint64(1) == 1
        bad |= np.bincount(i, weights=~(strict | is_tight), minlength=B) > 0
    # box faces: x_j - lo_j and hi_j - x_j are computed with one rounding each
    box_tight = _bits(V.tight, 0, 2 * d).reshape(-1, d, 2)
    rv = rho[:, None]
    room_lo, room_hi = x - lo, hi - x
    with np.errstate(invalid="ignore"):
        sure_lo = room_lo > SAFETY * (rv + U64 * np.abs(room_lo))
        sure_hi = room_hi > SAFETY * (rv + U64 * np.abs(room_hi))
    bad_b = ((~box_tight[:, :, 0] & ~sure_lo) | (~box_tight[:, :, 1] & ~sure_hi)).any(axis=1)
    bad |= np.bincount(region, weights=bad_b, minlength=B) > 0
    return ~bad


def _bits(tight: np.ndarray, first: int, n: int) -> np.ndarray:
    """(V, n) bool: bits first .. first + n - 1 of each vertex's tight mask."""
    allbits = np.unpackbits(tight.view(np.uint8), axis=1, bitorder="little")
    return allbits[:, first:first + n].astype(bool)


def rows_by_id(rows: Rows, lo, hi, region: np.ndarray, ids: np.ndarray):
    """The rows named by row ids (box bit 2j: ``-x_j <= -lo_j``, 2j + 1: ``x_j <= hi_j``, exact;
    2d + q: neuron q's row of its region) as ``a . x <= b`` with outward normals: (A (..., d),
    eA (...) the 1-norm error bound, b (...), eb (...)), ``region`` of the same shape as ``ids``."""
    d = len(lo)
    A = np.zeros(ids.shape + (d,))
    eA, b, eb = np.zeros(ids.shape), np.zeros(ids.shape), np.zeros(ids.shape)
    q = ids - 2 * d
    on = np.nonzero(q >= 0)
    reg, qq = region[on], q[on]
    A[on], eA[on], b[on], eb[on] = rows.C[reg, qq], rows.eC[reg, qq], rows.b[reg, qq], rows.eb[reg, qq]
    face = np.nonzero((ids >= 0) & (ids < 2 * d))
    j, upper = ids[face] // 2, ids[face] % 2 == 1
    A[face + (j,)] = np.where(upper, 1.0, -1.0)
    b[face] = np.where(upper, hi[j], -lo[j])
    return A, eA, b, eb


def domain_row(ids: np.ndarray, d: int) -> np.ndarray:
    """The box domain's row k (``Domain.A``: rows 0..d-1 ``x_j <= hi_j``, d..2d-1 ``-x_j <= -lo_j``)
    of each box bit."""
    return np.where(ids % 2 == 1, ids // 2, d + ids // 2)


def _tight_rows(rows: Rows, lo, hi, region, ids) -> tuple[balls.Ball, balls.Ball]:
    """Each simple vertex's d tight rows as balls (A (V, d, d), b (V, d)); each entry of a row
    errs by at most the row's 1-norm bound."""
    A, eA, b, eb = rows_by_id(rows, lo, hi, np.broadcast_to(region[:, None], ids.shape), ids)
    return balls.Ball(A, np.broadcast_to(eA[:, :, None], A.shape).copy()), balls.Ball(b, eb)


def _volumes(V: VertexSets, region, vi, tight: _TightSystems, ok) -> tuple[np.ndarray, np.ndarray]:
    """Lawrence volumes of the regions marked ``ok`` (others: nan, inf), each by the first of the
    fixed directions whose certified bound is within VOLUME_REL_BOUND (else the tightest).
    ``vi``, ``tight``: the vertices of the candidate regions and their tight systems."""
    B, d = len(V), V.x.shape[1]
    vol, bound = np.full(B, np.nan), np.full(B, np.inf)
    # a reference point per region (any point works): the mean of its vertices, taken as exact
    z = np.stack([np.bincount(region, weights=V.x[:, k], minlength=B) for k in range(d)], axis=1)
    z /= np.maximum(V.count, 1)[:, None]
    longest = int(V.count.max(initial=1))
    todo = ok.copy()
    for c in directions(d):
        sel = np.nonzero(todo[region[vi]])[0]
        if sel.size == 0:
            break
        w = vi[sel]
        total = _lawrence_sums(V, region[w], w, tight.take(sel), z[region[w]], c, B, longest)
        better = todo & (total.rad < bound)                       # nan (unknown) is never better
        vol[better], bound[better] = total.mid[better], total.rad[better]
        todo &= ~(bound <= VOLUME_REL_BOUND * np.abs(vol))
    return vol, np.where(ok, bound, np.inf)


def _lawrence_sums(V, reg, vi, tight: _TightSystems, z, c, B, longest) -> balls.Ball:
    """sum over the vertices ``vi`` (of regions ``reg``) of (c.(v - z))^d / (d! |det A_v| prod
    gamma_v), as balls (B,) (regions without vertices in ``vi``: 0)."""
    d = V.x.shape[1]
    A, det = tight.A, tight.det
    At = np.transpose(A.mid, (0, 2, 1))
    eAt = np.repeat(A.rad[:, :, 0].sum(axis=1)[:, None], d, axis=1)   # a column's entries: each row's bound
    g, g_rad = solved_vertices(At, np.broadcast_to(c, (vi.size, d)).copy(), eAt, np.zeros((vi.size, d)),
                               np.transpose(tight.R, (0, 2, 1)))
    prod = balls.mul(balls.exact(np.full(vi.size, float(factorial(d)))), det)
    for k in range(d):
        prod = balls.mul(prod, balls.Ball(g[:, k], g_rad))
    x = balls.Ball(V.x[vi], np.repeat(V.radius[vi][:, None], d, axis=1))
    N = balls.dot(balls.exact(np.broadcast_to(c, (vi.size, d))), balls.sub(x, balls.exact(z)))
    term = balls.mul(balls.power(N, d), balls.recip(prod))
    term = balls.Ball(term.mid, np.where(det.mid > det.rad, term.rad, np.inf))
    return balls.grouped_total(term, reg, B, longest)
