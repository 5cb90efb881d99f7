"""Vertex sets of a batch of regions: ragged arrays grouped by region, and the tight-row bitmasks.

The data the vertex path (:mod:`lrenum.core.vertices`) carries from layer to layer, kept apart
from the algorithm so that :class:`lrenum.core.state.Regions` can hold it without knowing it.
"""

from __future__ import annotations

import numpy as np


def ragged_arange(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + c)`` over (s, c): the rows of ragged groups."""
    counts = np.asarray(counts, np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    ends = np.cumsum(counts)
    return np.repeat(np.asarray(starts, np.int64) - (ends - counts), counts) + np.arange(total)


class VertexSets:
    """Vertices of a batch of regions, grouped by region: region i owns ``count[i]`` consecutive rows.

    ``tight`` marks, per vertex, the rows through it as bits: box face ``lo_j`` is bit 2j, ``hi_j``
    bit 2j + 1, neuron q (flat index over the hidden layers) bit 2d + q. A region with no vertices
    has no vertex set and takes the LP path.

    ``proven[i]``: region i's vertices are, one to one, the exact vertices of the region, each
    simple (exactly d rows through it, independent), each within ``radius`` (infinity norm) of
    the exact point where its tight rows meet. Unproven sets are proposals only.
    """

    def __init__(self, x: np.ndarray, tight: np.ndarray, count: np.ndarray, radius: np.ndarray, proven: np.ndarray):
        self.x, self.tight, self.count = x, tight, np.asarray(count, np.int64)
        self.radius, self.proven = radius, np.asarray(proven, bool)

    def __len__(self) -> int:
        return int(self.count.size)

    @property
    def start(self) -> np.ndarray:
        return np.cumsum(self.count) - self.count

    def take(self, idx) -> "VertexSets":
        if isinstance(idx, slice) and idx.step in (None, 1):   # a run of regions: views, no copy
            lo, hi, _ = idx.indices(self.count.size)
            hi = max(lo, hi)
            first = int(self.count[:lo].sum())
            last = first + int(self.count[lo:hi].sum())
            return VertexSets(self.x[first:last], self.tight[first:last], self.count[lo:hi],
                              self.radius[first:last], self.proven[lo:hi])
        idx = np.arange(self.count.size)[idx]
        rows = ragged_arange(self.start[idx], self.count[idx])
        return VertexSets(self.x[rows], self.tight[rows], self.count[idx], self.radius[rows], self.proven[idx])

    @staticmethod
    def concat(items: list["VertexSets"]) -> "VertexSets":
        return VertexSets(*(np.concatenate([getattr(v, f) for v in items])
                            for f in ("x", "tight", "count", "radius", "proven")))

    @staticmethod
    def none(n: int, d: int, words: int) -> "VertexSets":
        """``n`` regions without vertex sets."""
        return VertexSets(np.zeros((0, d)), np.zeros((0, words), np.uint64), np.zeros(n, np.int64), np.zeros(0),
                          np.zeros(n, bool))


def row_bit(row_id: int, words: int) -> np.ndarray:
    out = np.zeros(words, np.uint64)
    out[row_id // 64] = np.uint64(1) << np.uint64(row_id % 64)
    return out


def tight_ids(tight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each vertex's tight rows as ids, padded with -1: ((V, T), count (V,)). Peels the lowest
    set bit T times (T = the largest count: d for simple vertices)."""
    cnt = np.bitwise_count(tight).sum(axis=1).astype(np.int64)
    T = max(int(cnt.max(initial=0)), 1)
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


def box_corners(lo, hi, d: int, words: int, proven: bool) -> VertexSets:
    """The box's 2^d corners as one region's vertex set: each exact, radius 0, its d faces tight."""
    lo, hi = (np.broadcast_to(np.asarray(v, np.float64), (d,)) for v in (lo, hi))
    corner = (np.arange(2 ** d)[:, None] >> np.arange(d)[None, :]) & 1      # 1: the hi face
    x = np.where(corner == 1, hi, lo)
    tight = np.zeros((2 ** d, words), np.uint64)
    for j in range(d):
        tight |= np.where(corner[:, j:j + 1] == 1, row_bit(2 * j + 1, words), row_bit(2 * j, words))
    return VertexSets(x, tight, np.array([2 ** d]), np.zeros(2 ** d), np.array([proven]))


def rebuilt_from_rows(rows: list, witness: np.ndarray, lo, hi, words: int, band: float) -> VertexSets:
    """Vertex sets from H-representations (qhull's halfspace intersection around each witness):
    ``rows[i] = (A, b, ids)`` with ``A x < b`` besides the box, ``ids`` their row ids. Rows within
    ``band`` (relative) of a vertex count as tight. Unproven (radius inf): proposals only. A region
    qhull cannot do (d = 1, a witness on the boundary) gets no vertices."""
    from scipy.spatial import HalfspaceIntersection, QhullError

    d = witness.shape[1]
    lo, hi = (np.broadcast_to(np.asarray(v, np.float64), (d,)) for v in (lo, hi))
    reach = float(np.max(np.maximum(np.abs(lo), np.abs(hi))))
    xs, ts, counts = [], [], np.zeros(len(rows), np.int64)
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
        xs.append(pts)
        ts.append(bits)
        counts[i] = pts.shape[0]
    if not xs:
        return VertexSets.none(len(rows), d, words)
    return VertexSets(np.concatenate(xs), np.concatenate(ts), counts, np.full(int(counts.sum()), np.inf),
                      np.zeros(len(rows), bool))
