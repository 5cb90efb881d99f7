"""Storing things once: vertices shared by the regions around them, facet rows shared by the
regions on either side, and region lookups by pattern, all through 64-bit hashes of rows.

A hash only proposes: vertex copies merged under one key keep a radius that covers every copy
(so even a collision stays sound), facet rows are merged only when equal bit for bit, and a
pattern lookup counts a hit only when the bytes agree.
"""

from __future__ import annotations

import numpy as np

from ..tolerances import SAFETY


class PatternLookup:
    """Region index by packed pattern, for a million lookups at once: 64-bit hashes of the packed
    rows, sorted once and searched with ``searchsorted``; a hit counts only if the bytes are
    equal (a hash shared by two patterns sends its queries to a dictionary)."""

    def __init__(self, packed: np.ndarray):
        self.packed = packed
        h = _row_hashes(packed)
        self.order = np.argsort(h, kind="stable")
        self.h = h[self.order]
        self.clash = bool(np.any(self.h[1:] == self.h[:-1]))
        self._dict = None

    def find(self, queries: np.ndarray) -> np.ndarray:
        """(Q,) int64 region index of each packed pattern, -1 where it is not a region."""
        out = np.full(len(queries), -1, np.int64)
        if len(self.h) == 0 or len(queries) == 0:
            return out
        hq = _row_hashes(queries)
        pos = np.minimum(np.searchsorted(self.h, hq), len(self.h) - 1)
        cand = self.order[pos]
        hit = (self.h[pos] == hq) & np.all(self.packed[cand] == queries, axis=1)
        out[hit] = cand[hit]
        if self.clash:                 # equal hashes: the first one may be the wrong pattern
            if self._dict is None:
                self._dict = {p.tobytes(): i for i, p in enumerate(self.packed)}
            for k in np.nonzero(~hit & (self.h[pos] == hq))[0]:
                out[k] = self._dict.get(queries[k].tobytes(), -1)
        return out


def _row_hashes(packed: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row of a (n, bytes) uint8 array."""
    width = -(-packed.shape[1] // 8) * 8
    words = np.zeros((packed.shape[0], width), np.uint8)
    words[:, :packed.shape[1]] = packed
    return hash_columns(words.view(np.uint64))


VERTEX_GRID = 1e-9   # copies of a vertex are merged when their tight rows agree and they round to one point of this grid (relative to the box's reach): far below any two distinct vertices' distance in general position; a merge of two distinct ones would still be sound (the radius covers every copy)


def vertex_hashes(X: np.ndarray, tight: np.ndarray, reach: float) -> np.ndarray:
    """One 64-bit key per vertex copy: its tight rows and its point on a grid of VERTEX_GRID *
    reach (hashed: sorting whole rows cost 1.8 s for 1.5 million copies). Copies of one vertex
    get one key; a collision of two different vertices would only merge them, which
    :func:`shared_vertices` keeps sound (the stored radius covers every copy)."""
    with np.errstate(invalid="ignore", over="ignore"):
        grid = np.round(X / (reach * VERTEX_GRID)).astype(np.int64)
    return hash_columns(np.concatenate([tight.view(np.uint64), grid.view(np.uint64)], axis=1))


def hash_columns(words: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row of a (n, k) uint64 array (multiply-xor mixing, column by column)."""
    h = np.zeros(words.shape[0], np.uint64)
    with np.errstate(over="ignore"):
        for col in words.T:
            h = (h ^ col) * np.uint64(0x100000001B3) + np.uint64(0x9E3779B97F4A7C15)
            h ^= h >> np.uint64(29)
    return h


def shared_vertices(X: np.ndarray, rad: np.ndarray, key: np.ndarray):
    """Each vertex stored once however many regions meet at it (up to 2^d at d <= 6): copies
    with one ``key`` (:func:`vertex_hashes`) are one entry, whose radius covers every copy (the
    copy's radius plus its distance to the stored point). Returns (vertices (U, d), radii (U,),
    index (V,) int32 into them, one per copy)."""
    if len(X) == 0:
        return X, rad, np.zeros(0, np.int32)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    rep = X[first]
    dist = np.abs(X - rep[inverse]).max(axis=1)
    R = np.zeros(first.size)
    np.maximum.at(R, inverse, SAFETY * (rad + dist))            # the subtraction rounds once: SAFETY covers it
    return rep, R, inverse.astype(np.int32 if first.size < 2 ** 31 else np.int64)


def shared_planes(A: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Facet rows stored once per hyperplane: the two regions on either side of a facet hold the
    same row negated (they share their layers up to the facet's neuron, so the enumeration gave
    both the same float64 row), and every region on a box face the same face. Rows equal up to
    sign (bit for bit, checked) share one plane. Returns (plane A (P, d), plane b (P,), signed
    1-based plane per row (F,) int32: -j is plane j - 1 negated)."""
    F = len(b)
    if F == 0:
        return A, b, np.zeros(0, np.int32)
    rows = np.c_[A, b]
    lead = rows[np.arange(F), np.argmax(rows != 0, axis=1)]
    sign = np.where(lead < 0, -1.0, 1.0)
    canon = rows * sign[:, None]                     # negation is exact
    canon[canon == 0] = 0.0                          # -0.0 and 0.0: one key
    _, first, inverse = np.unique(hash_columns(canon.view(np.uint64)), return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    same = np.all(canon == canon[first][inverse], axis=1)
    plane = np.where(same, inverse, -1)
    odd = np.nonzero(~same)[0]                       # a hash shared by two different rows: planes of their own
    plane[odd] = first.size + np.arange(odd.size)
    planes = np.concatenate([canon[first], canon[odd]])
    return planes[:, :-1].copy(), planes[:, -1].copy(), ((plane + 1) * sign).astype(np.int32)
