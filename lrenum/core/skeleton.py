"""The 1-skeleton of each region of a batch: its vertices and its edges, edges as index pairs.

The data the vertex path (:mod:`lrenum.core.subdivision`) carries from layer to layer, kept apart
from the algorithm so that :class:`lrenum.core.state.Regions` can hold it without knowing it.

Row ids: box face ``lo_j`` is row 2j, ``hi_j`` row 2j + 1, neuron q (flat index over the hidden
layers) row 2d + q. A vertex's *tight* rows are a bitmask over these ids.

``proven[i]``: region i's skeleton is, one to one, the exact region's: every exact vertex is
listed once, simple (exactly d rows through it, independent) and within ``radius`` (infinity
norm) of its float position; the edges are exactly the pairs of vertices sharing d - 1 tight rows.
Unproven skeletons are not used (their regions take the LP path).
"""

from __future__ import annotations

from typing import Optional

import numpy as np


def ragged_arange(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + c)`` over (s, c): the rows of ragged groups."""
    counts = np.asarray(counts, np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    ends = np.cumsum(counts)
    return np.repeat(np.asarray(starts, np.int64) - (ends - counts), counts) + np.arange(total)


def row_bit(row_id: int, words: int) -> np.ndarray:
    out = np.zeros(words, np.uint64)
    out[row_id // 64] = np.uint64(1) << np.uint64(row_id % 64)
    return out


def bit_count(mask: np.ndarray) -> np.ndarray:
    """Set bits per row of a (K, words) uint64 mask."""
    return np.bitwise_count(mask).sum(axis=1).astype(np.int64)


def tight_ids(tight: np.ndarray, T: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
    """Each row's set bits as ids, padded with -1: ((K, T), count (K,)). Peels the lowest set bit
    T times (T: the largest count unless given)."""
    cnt = bit_count(tight)
    T = max(int(cnt.max(initial=0)), 1) if T is None else T
    ids = np.full((tight.shape[0], T), -1)
    rest = tight.copy()
    rows = np.arange(tight.shape[0])
    for t in range(T):
        word = np.argmax(rest != 0, axis=1)
        w = rest[rows, word]
        low = w & (~w + np.uint64(1))                        # the lowest set bit
        ids[:, t] = np.where(w != 0, word * 64 + np.bitwise_count(low - np.uint64(1)).astype(np.int64), -1)
        rest[rows, word] = w ^ low
    return ids, cnt


class Skeletons:
    """Vertices and edges of a batch of regions, grouped by region: region i owns ``vcount[i]``
    consecutive vertex rows and ``ecount[i]`` consecutive edge rows; ``edges`` holds vertex
    indices local to the region's block."""

    def __init__(self, x: np.ndarray, tight: np.ndarray, radius: np.ndarray, vcount: np.ndarray, edges: np.ndarray,
                 ecount: np.ndarray, proven: np.ndarray):
        self.x, self.tight, self.radius = x, tight, radius
        self.vcount, self.ecount = np.asarray(vcount, np.int64), np.asarray(ecount, np.int64)
        self.edges = np.asarray(edges, np.int32).reshape(-1, 2)
        self.proven = np.asarray(proven, bool)

    def __len__(self) -> int:
        return int(self.vcount.size)

    @property
    def count(self) -> np.ndarray:
        """Vertices per region (what the split's caps look at)."""
        return self.vcount

    @property
    def vstart(self) -> np.ndarray:
        return np.cumsum(self.vcount) - self.vcount

    @property
    def estart(self) -> np.ndarray:
        return np.cumsum(self.ecount) - self.ecount

    def take(self, idx) -> "Skeletons":
        if isinstance(idx, slice) and idx.step in (None, 1):   # a run of regions: views, no copy
            lo, hi, _ = idx.indices(self.vcount.size)
            hi = max(lo, hi)
            v0, e0 = int(self.vcount[:lo].sum()), int(self.ecount[:lo].sum())
            v1, e1 = v0 + int(self.vcount[lo:hi].sum()), e0 + int(self.ecount[lo:hi].sum())
            return Skeletons(self.x[v0:v1], self.tight[v0:v1], self.radius[v0:v1], self.vcount[lo:hi],
                             self.edges[e0:e1], self.ecount[lo:hi], self.proven[lo:hi])
        idx = np.arange(self.vcount.size)[idx]
        vrows = ragged_arange(self.vstart[idx], self.vcount[idx])
        erows = ragged_arange(self.estart[idx], self.ecount[idx])
        return Skeletons(self.x[vrows], self.tight[vrows], self.radius[vrows], self.vcount[idx], self.edges[erows],
                         self.ecount[idx], self.proven[idx])

    @staticmethod
    def concat(items: list["Skeletons"]) -> "Skeletons":
        return Skeletons(*(np.concatenate([getattr(s, f) for s in items])
                           for f in ("x", "tight", "radius", "vcount", "edges", "ecount", "proven")))

    @staticmethod
    def none(n: int, d: int, words: int) -> "Skeletons":
        """``n`` regions without skeletons."""
        return Skeletons(np.zeros((0, d)), np.zeros((0, words), np.uint64), np.zeros(0), np.zeros(n, np.int64),
                         np.zeros((0, 2), np.int32), np.zeros(n, np.int64), np.zeros(n, bool))

    def global_edges(self) -> np.ndarray:
        """Edges as indices into the batch's vertex rows."""
        owner = np.repeat(np.arange(self.vcount.size), self.ecount)
        return self.edges.astype(np.int64) + self.vstart[owner][:, None]


def box_skeleton(lo, hi, d: int, words: int, proven: bool) -> Skeletons:
    """The box as one region: its 2^d corners (exact, radius 0, d faces tight each) and its
    d 2^(d-1) edges (corners differing in one coordinate)."""
    lo, hi = (np.broadcast_to(np.asarray(v, np.float64), (d,)) for v in (lo, hi))
    n = 2 ** d
    corner = (np.arange(n)[:, None] >> np.arange(d)[None, :]) & 1      # 1: the hi face
    x = np.where(corner == 1, hi, lo)
    tight = np.zeros((n, words), np.uint64)
    for j in range(d):
        tight |= np.where(corner[:, j:j + 1] == 1, row_bit(2 * j + 1, words), row_bit(2 * j, words))
    a = np.arange(n)
    edges = np.concatenate([np.stack([a[(a >> j) & 1 == 0], a[(a >> j) & 1 == 0] | (1 << j)], axis=1)
                            for j in range(d)])
    return Skeletons(x, tight, np.zeros(n), np.array([n]), edges, np.array([len(edges)]), np.array([proven]))


def rebuilt_from_rows(rows: list, witness: np.ndarray, lo, hi, words: int, band: float) -> Skeletons:
    """Skeletons from H-representations (qhull's halfspace intersection around each witness):
    ``rows[i] = (A, b, ids)`` with ``A x < b`` besides the box, ``ids`` their row ids. Rows within
    ``band`` (relative) of a vertex count as tight; vertices sharing d - 1 tight rows are joined
    by an edge. Unproven (radius inf) until :func:`lrenum.core.subdivision.prove_rebuilt` proves
    them. A region qhull cannot do (d = 1, a witness on the boundary) gets no skeleton."""
    from scipy.spatial import HalfspaceIntersection, QhullError

    d = witness.shape[1]
    lo, hi = (np.broadcast_to(np.asarray(v, np.float64), (d,)) for v in (lo, hi))
    reach = float(np.max(np.maximum(np.abs(lo), np.abs(hi))))
    xs, ts, es = [], [], []
    vcount, ecount = np.zeros(len(rows), np.int64), np.zeros(len(rows), np.int64)
    for i, (A_i, b_i, ids_i) in enumerate(rows if d >= 2 else []):
        A = np.concatenate([-np.eye(d), np.eye(d), A_i])
        b = np.concatenate([-lo, hi, b_i])
        ids = np.concatenate([2 * np.arange(d), 2 * np.arange(d) + 1, ids_i])
        try:
            pts = HalfspaceIntersection(np.c_[A, -b], witness[i]).intersections
        except (QhullError, ValueError):
            continue
        pts = np.unique(pts, axis=0)
        tight = np.abs(b - pts @ A.T) <= band * (np.abs(A).sum(axis=1) * reach + np.abs(b))
        bits = np.zeros((pts.shape[0], words), np.uint64)
        for r in np.nonzero(tight.any(axis=0))[0]:
            bits[tight[:, r]] |= row_bit(int(ids[r]), words)
        iu, iw = np.triu_indices(pts.shape[0], 1)
        shared = bit_count(bits[iu] & bits[iw]) >= d - 1
        xs.append(pts)
        ts.append(bits)
        es.append(np.stack([iu[shared], iw[shared]], axis=1))
        vcount[i], ecount[i] = pts.shape[0], int(shared.sum())
    if not xs:
        return Skeletons.none(len(rows), d, words)
    return Skeletons(np.concatenate(xs), np.concatenate(ts), np.full(int(vcount.sum()), np.inf), vcount,
                     np.concatenate(es), ecount, np.zeros(len(rows), bool))
