"""Ranks of each region's affine map, proven.

Upper bound (structure): the rank after layer l is at most the number of neurons whose map row
can be nonzero, the basis dimension r, and the rank after layer l-1.

Lower bound (a proven perturbation bound): a pivoting rule (partial pivoting for maps of full
column rank, the live rows themselves when there are exactly k of them, else QR with column
pivoting) picks a k x k submatrix S of the float map ``M~`` (k = the upper bound). If an approximate inverse X
of S gives ``rho = ||I - X S||_F < 1`` (evaluated with its rounding error), then
``sigma_min(S) >= (1 - rho) / ||X||_F``; the exact map's submatrix differs from S by at most
``eps = sqrt(sum_j eM_j^2)`` in the 2-norm (``eM_j >= ||row error||_1 >= ||row error||_2``), so
by Weyl's inequality ``sigma_min(S + dS) >= (1 - rho) / ||X||_F - eps > 0`` proves rank >= k.

Where the bounds meet the rank is certain; elsewhere (maps whose exact rank is below the
structural bound, or too ill-conditioned to tell) the caller computes it exactly in rationals.
With the basis ``U`` of full row rank (:mod:`lrenum.core.frame`), rank(M U) = rank(M).
"""

from __future__ import annotations

import numpy as np

from ..tolerances import SAFETY, gamma


def structural_upper(M: np.ndarray, eM: np.ndarray, prev_rank: np.ndarray) -> np.ndarray:
    """Rank upper bound of maps M (B, n, r) from their possibly-nonzero rows."""
    nonzero = np.any(M != 0, axis=2) | (eM > 0)
    return np.minimum(np.minimum(nonzero.sum(axis=1), M.shape[2]), prev_rank).astype(np.int64)


def pivot_submatrices(M: np.ndarray, k: np.ndarray):
    """Row and column indices (B, kmax), k_b of them meaningful: rows by LAPACK's QR with column
    pivoting of M^T, then columns by the same on those rows. One pair of small LAPACK calls per
    map (about 60 us at 64 x 64) instead of kmax vectorised elimination steps over the whole
    batch, whose numpy overhead dominated local walks (batches of one region, a fifth of their
    time). The choice only steers the proof, which checks the submatrix it is given."""
    from scipy.linalg import qr

    B = M.shape[0]
    kmax = int(k.max(initial=0))
    rsel = np.zeros((B, kmax), np.int64)
    csel = np.zeros((B, kmax), np.int64)
    for b in np.nonzero(k > 0)[0]:
        kk = int(k[b])
        _, rows = qr(M[b].T, mode="r", pivoting=True)
        _, cols = qr(M[b][rows[:kk]], mode="r", pivoting=True)
        rsel[b, :kk], csel[b, :kk] = rows[:kk], cols[:kk]
    return rsel, csel


def rows_by_partial_pivoting(M: np.ndarray):
    """Row and column indices (B, r) for maps of full column rank r: column s takes the largest
    remaining entry of column s after eliminating columns < s (Gaussian elimination with partial
    pivoting on M^T). A third of complete pivoting's passes over (B, n, r) and usually as well
    conditioned; the choice only steers the proof, which checks the submatrix it is given."""
    B, n, r = M.shape
    A = M.copy()
    rows_left = np.ones((B, n), bool)
    rsel = np.zeros((B, r), np.int64)
    bidx = np.arange(B)
    for s in range(r):
        i = np.where(rows_left, np.abs(A[:, :, s]), -1.0).argmax(axis=1)
        rsel[:, s] = i
        rows_left[bidx, i] = False
        if s + 1 < r:
            piv = A[bidx, i, s]
            factor = A[:, :, s] / np.where(piv != 0, piv, 1.0)[:, None]
            factor[bidx, i] = 0.0
            A[:, :, s + 1:] -= factor[:, :, None] * A[bidx, i, s + 1:][:, None, :]
    return rsel, np.broadcast_to(np.arange(r), (B, r))


def _submatrix_regular(M: np.ndarray, eM: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(B,) bool: the exact maps' k x k submatrices at ``rows`` x ``cols`` (B, k) are certainly
    regular (the perturbation bound in this module's docstring)."""
    B, kk = rows.shape
    S = M[np.arange(B)[:, None, None], rows[:, :, None], cols[:, None, :]]
    eps = np.sqrt(np.sum(eM ** 2, axis=1))
    with np.errstate(all="ignore"):
        try:
            X = np.linalg.inv(S)
        except np.linalg.LinAlgError:
            X = np.stack([np.linalg.pinv(s) for s in S])
        R = np.eye(kk) - X @ S
        R_err = gamma(kk + 1) * (np.abs(X) @ np.abs(S) + np.eye(kk))
        rho = SAFETY * (np.linalg.norm(R, axis=(1, 2)) + np.linalg.norm(R_err, axis=(1, 2)))
        xnorm = SAFETY * np.linalg.norm(X, axis=(1, 2))
        sigma_low = (1.0 - rho) / xnorm
    return np.isfinite(sigma_low) & (rho < 1.0) & (sigma_low > SAFETY * eps)


def proven_rank_at_least(M: np.ndarray, eM: np.ndarray, k: np.ndarray) -> np.ndarray:
    """(B,) bool: the exact map (within eM of M) certainly has rank >= k (k = 0 is always true).

    Maps whose bound is full column rank (the common case) try the rows of partial pivoting
    first (in exact arithmetic it finds r independent rows of any map of rank r); then maps with
    exactly k live rows try those rows; the rest, and any whose submatrix did not prove regular,
    take QR with column pivoting (:func:`pivot_submatrices`)."""
    out = k == 0
    r = M.shape[2]
    full = np.nonzero(k == r)[0] if r else np.zeros(0, np.int64)
    if full.size:
        rows, cols = rows_by_partial_pivoting(M[full])
        out[full] = _submatrix_regular(M[full], eM[full], rows, cols)
    out |= _rank_of_all_live_rows(M, eM, k, out)
    todo = np.nonzero(~out)[0]
    if todo.size == 0:
        return out
    rsel, csel = pivot_submatrices(M[todo], k[todo])
    for kk in np.unique(k[todo]):
        sel = np.nonzero(k[todo] == kk)[0]
        out[todo[sel]] = _submatrix_regular(M[todo[sel]], eM[todo[sel]], rsel[sel, :kk], csel[sel, :kk])
    return out


def _rank_of_all_live_rows(M: np.ndarray, eM: np.ndarray, k: np.ndarray, done: np.ndarray) -> np.ndarray:
    """(B,) bool: rank >= k proven with the map's k possibly-nonzero rows themselves, where it has
    exactly k (the common case below full column rank: the active units' rows are independent)
    and only the columns need choosing, by partial pivoting on the k rows' transpose (one batched
    pass; maps where this fails take :func:`pivot_submatrices`)."""
    out = np.zeros(len(k), bool)
    live = np.any(M != 0, axis=2) | (eM > 0)
    cand = np.nonzero(~done & (k > 0) & (k < M.shape[2]) & (live.sum(axis=1) == k))[0]
    for kk in np.unique(k[cand]):
        sel = cand[k[cand] == kk]
        rows = np.argsort(~live[sel], axis=1, kind="stable")[:, :kk]          # the live rows, in order
        sub = M[sel[:, None], rows]                                            # (S, kk, r)
        cols, _ = rows_by_partial_pivoting(np.transpose(sub, (0, 2, 1)))
        out[sel] = _submatrix_regular(M[sel], eM[sel], rows, cols)
    return out


def certified_ranks(M: np.ndarray, eM: np.ndarray, prev_rank: np.ndarray):
    """M: (B, n, r) maps, eM: (B, n) row error bounds (1-norm). Returns (rank (B,), sure (B,)).

    Where ``sure`` is False the rank is only an upper bound and the caller decides exactly.
    """
    B = M.shape[0]
    if B == 0:
        return np.zeros(0, np.int64), np.zeros(0, bool)
    upper = structural_upper(M, eM, prev_rank)
    return upper, proven_rank_at_least(M, eM, upper)


def layer_ranks(net, layer: int, M: np.ndarray, eM: np.ndarray, prev_rank: np.ndarray, exact_rank,
                bits: np.ndarray, const: np.ndarray) -> np.ndarray:
    """Proven ranks after hidden layer ``layer`` (1-based) of maps M (B, n, r): the float proof,
    then ``exact_rank(i)`` where it cannot tell. ``bits``/``const``: the regions' patterns over
    layers 1..layer at least.

    Linear (carried) units are not part of the layer's output: their rows are left out. A skip
    connection can raise the rank again, so the previous layer's rank is no bound there; the
    bound is the chain rule on the whole lowered layers instead: the Jacobian of layer l's
    output factors through every earlier lowered layer's, whose rank is at most its number of
    units that are not exactly 0 (active, leaky or linear, not constant)."""
    lin = net.linear[layer - 1]
    if lin.any():
        M, eM = M[:, ~lin], eM[:, ~lin]
    if net.has_linear:
        prev_rank = np.full(M.shape[0], M.shape[2])
        offs = net.neuron_offsets
        for k in range(layer - 1):
            lin = net.linear[k][None, :]          # stored constant (they constrain nothing) but never 0
            act = bits[:, offs[k]:offs[k + 1]] | (net.slopes[k] != 0)[None, :] | lin
            prev_rank = np.minimum(prev_rank, (act & (lin | ~const[:, offs[k]:offs[k + 1]])).sum(axis=1))
    rank, sure = certified_ranks(M, eM, prev_rank)
    for i in np.nonzero(~sure)[0]:
        rank[i] = exact_rank(int(i))
    return rank
