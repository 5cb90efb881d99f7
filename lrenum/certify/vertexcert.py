"""Float64 bounds for the vertex path's proofs (:mod:`lrenum.core.vertices`): pure functions.

* :func:`sign_error_terms`: how far a float pre-activation at a float vertex can be from the
  exact one at the exact vertex;
* :func:`crossing_radius`: where the new vertex of a cut edge can be, from interpolation;
* :func:`solved_vertices`: where a vertex can be, from its own d rows (Rump's a posteriori bound);
* :func:`dual_combination`: dual weights at a vertex (proposals, checked by
  :func:`lrenum.certify.floatcert.certify_empty`).

Every bound follows Higham's rounding model (gamma_n, :mod:`lrenum.tolerances`) and carries the
rows' own errors against the exact network (eA, ec: 1-norm and offset, as everywhere in lrenum).
"""

from __future__ import annotations

import numpy as np

from ..tolerances import ETA, SAFETY, U64, gamma


def sign_error_terms(G1, eG, eg, g, d: int, reach: float):
    """(fixed, per_radius) with ``|float value - exact value| <= SAFETY * (fixed + per_radius * r)``
    for a neuron (1-norm G1, errors eG, eg, offset g) at a vertex within r of its exact point:
    the row's own error, the vertex's error through ||G||_1, the dot product's rounding
    (gamma_{d+1}), with |x|_inf <= reach + r (exact vertices lie in the box)."""
    per_x = eG + gamma(d + 1) * G1
    fixed = eg + gamma(d + 1) * np.abs(g) + ETA * (d + 1) + per_x * reach
    return fixed, G1 + eG + per_x


def crossing_radius(u, w, ru, rw, a, b, ea, eb, lam):
    """Certified distance bound of the new vertex ``u + lam (w - u)`` to the exact crossing point.

    The exact crossing is ``u* + lam* (w* - u*)`` with ``lam* = a*/(a* - b*)``, where the exact
    values a* (> 0) at u* and b* (< 0) at w* are within ea, eb of the float ones. lam* is increasing
    in a* and in b*, so it lies in [lam_lo, lam_hi] below, and
    ``x* - x = (1 - lam*)(u* - u) + lam*(w* - w) + (lam* - lam)(w - u) - rounding``.
    """
    nb = -b
    lam_lo = (a - ea) / ((a - ea) + (nb + eb)) * (1 - 16 * U64)    # a few roundings each: 16 u covers them
    lam_hi = (a + ea) / ((a + ea) + (nb - eb)) * (1 + 16 * U64)
    dlam = np.maximum(lam_hi - lam, lam - lam_lo)
    span = np.abs(w - u).max(axis=1)
    r = SAFETY * (np.maximum(ru, rw) + dlam * span + gamma(3) * (np.abs(u).max(axis=1) + span) + 4 * ETA)
    return np.nan_to_num(r, nan=np.inf, posinf=np.inf)


def solved_vertices(A: np.ndarray, c: np.ndarray, eA: np.ndarray, ec: np.ndarray, Rinv=None):
    """Solutions of the d x d systems ``A x = c`` (rows within eA (1-norm) and ec of the exact
    ones), each with a certified bound on its distance (infinity norm) to the exact solution:
    (x (K, d), radius (K,), inf where the exact system is not proven regular).

    Rump's a posteriori bound: with R an approximate inverse and ||I - R A*|| <= beta < 1,
    ||A*^-1|| <= ||R|| / (1 - beta), so ||x - x*|| <= ||R|| ||c* - A* x|| / (1 - beta).
    ``Rinv``: an approximate inverse already at hand (any R: the bound checks it).
    """
    K, d = c.shape
    with np.errstate(all="ignore"):
        try:
            Rinv = np.linalg.inv(A) if Rinv is None else Rinv
            x_ok = np.einsum("kij,kj->ki", Rinv, c)
        except np.linalg.LinAlgError:             # a singular system in the batch: one at a time
            x_ok, Rinv = np.zeros((K, d)), np.zeros((K, d, d))
            for i in range(K):
                try:
                    x_ok[i], Rinv[i] = np.linalg.solve(A[i], c[i]), np.linalg.inv(A[i])
                except np.linalg.LinAlgError:
                    x_ok[i], Rinv[i] = np.nan, np.nan
        absA, absR = np.abs(A), np.abs(Rinv)
        xinf = np.abs(x_ok).max(axis=1)
        # the exact residual c* - A* x, bounded: the float residual, its rounding, the rows' errors
        res = c - np.einsum("kij,kj->ki", A, x_ok)
        res_bound = (np.abs(res) + gamma(d + 1) * (np.abs(c) + np.einsum("kij,kj->ki", absA, np.abs(x_ok)))
                     + ec + eA * xinf[:, None] + ETA * (d + 1)).max(axis=1)
        # ||I - R A*|| <= ||I - R A|| (float, plus its rounding) + ||R|| max_i eA_i
        E = np.eye(d) - Rinv @ A
        Rnorm = absR.sum(axis=2).max(axis=1)
        beta = ((np.abs(E) + gamma(d + 1) * (absR @ absA) + U64).sum(axis=2).max(axis=1)
                + Rnorm * eA.max(axis=1))
        r = SAFETY * (SAFETY * Rnorm / (1.0 - SAFETY * beta)) * res_bound
    good = (beta * SAFETY < 1.0) & np.isfinite(r) & np.all(np.isfinite(x_ok), axis=1)
    return np.where(good[:, None], x_ok, 0.0), np.where(good, r, np.inf)


def dual_combination(A: np.ndarray, target: np.ndarray, square: np.ndarray) -> np.ndarray:
    """mu with sum_t mu_t A[:, t] = target: a d x d solve where the vertex is simple (``square``),
    least squares elsewhere (degenerate vertices; a wrong mu only fails its certificate)."""
    K, T, d = A.shape
    mu = np.zeros((K, T))
    At = np.transpose(A, (0, 2, 1))
    sq = np.nonzero(square)[0] if T == d else np.zeros(0, np.int64)
    if sq.size:
        try:
            mu[sq] = np.linalg.solve(At[sq], target[sq][:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:          # a singular one in the batch: least squares for all
            sq = np.zeros(0, np.int64)
    is_sq = np.zeros(K, bool)
    is_sq[sq] = True
    rest = np.nonzero(~is_sq)[0]
    if rest.size:
        mu[rest] = np.einsum("ktd,kd->kt", np.linalg.pinv(At[rest]), target[rest])
    return mu
