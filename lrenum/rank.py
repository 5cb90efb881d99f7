"""Rank of each region's affine map, certified.

The float64 singular values give a certified *lower* bound (a singular value larger than
the map's error bound plus the SVD's own rounding cannot be zero) and structure gives an
*upper* bound: the rank after layer l is at most the number of active neurons, the input
dimension and the rank after layer l-1. Where the two meet the rank is certain; otherwise
it is computed exactly in rationals (:mod:`lrenum.exact`).
"""

from __future__ import annotations

import numpy as np


def certified_ranks(M: np.ndarray, eM: np.ndarray, prev_rank: np.ndarray):
    """M: (B, n, d) post-activation maps, eM: (B, n) row error bounds (1-norm).

    Returns (rank (B,), sure (B,) bool); where ``sure`` is False the caller decides exactly.
    """
    B, n, d = M.shape
    if B == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    active = np.any(M != 0, axis=2) | (eM > 0)
    upper = np.minimum(np.minimum(active.sum(axis=1), d), prev_rank)
    sv = np.linalg.svd(M, compute_uv=False)  # (B, min(n, d))
    err = np.sqrt(np.sum(eM ** 2, axis=1))   # ||dM||_2 <= ||dM||_F <= this
    svd_err = 8 * max(n, d) * np.finfo(np.float64).eps * (sv[:, :1] if sv.shape[1] else 0.0)
    lower = np.sum(sv > (err[:, None] + svd_err), axis=1)
    return np.minimum(lower, upper), lower >= upper
