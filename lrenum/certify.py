"""Float64 certificates with a priori rounding-error bounds.

The device kernels only *propose* answers. Nothing is trusted until one of these
checks (or the exact fallback in :mod:`lrenum.exact`) has confirmed it:

* **Non-empty cell** (a region or a partial cell has an interior point): a witness
  point ``x`` whose constraint slacks exceed their rounding-error bounds. For
  emitted regions the check is a forward pass through the network itself
  (:func:`certify_witnesses`), independent of the region matrices.
* **Empty interior** (a hyperplane does not cut a cell): a dual vector ``y >= 0``
  with the safe bound ``y.b + max_{x in box} (-(A^T y).x) + err < 0``. Weak duality
  then shows that no point of the bounding box satisfies all rows strictly.

Row errors: every constraint row ``(a_i, b_i)`` computed in floating point comes with
``ea_i >= ||a~_i - a_i||_1`` and ``eb_i >= |b~_i - b_i|`` relative to the exact
network, propagated layer by layer with the standard ``gamma_n = n u / (1 - n u)``
bound for dot products (Higham, *Accuracy and Stability*, section 3.1). Bounds are
inflated by a small factor to absorb the rounding of the bound computation itself.
"""

from __future__ import annotations

import numpy as np

U64 = np.finfo(np.float64).eps / 2  # unit roundoff of float64
SAFETY = 1.0 + 1e-6                 # inflation of computed error bounds


def gamma(n: int) -> float:
    """Higham's gamma_n for float64: bound on the relative error of an n-term dot product."""
    return SAFETY * n * U64 / (1.0 - n * U64)


def certify_empty(A, b, ea, eb, y, lo, hi) -> np.ndarray:
    """Certify that cells ``{x in box : A x < b}`` have no interior point.

    A: (K, m, d) rows, b, ea, eb, y: (K, m), y >= 0 (masked rows must have y = 0);
    lo, hi: (d,) a box containing the domain, or None for R^d (then nothing is certified
    here: the dual bound needs a bounded domain). Returns a (K,) bool array.
    """
    K = A.shape[0]
    if lo is None or K == 0:
        return np.zeros(K, dtype=bool)
    y = np.maximum(np.asarray(y, dtype=np.float64), 0.0)
    m, d = A.shape[1], A.shape[2]
    X = np.maximum(np.abs(lo), np.abs(hi))
    v = np.einsum("kmd,km->kd", A, y)
    U = np.einsum("km,km->k", y, b) + np.sum(np.maximum(-v * lo, -v * hi), axis=1)
    mag = np.einsum("km,km->k", y, np.einsum("kmd,d->km", np.abs(A), X) + np.abs(b))
    err = np.einsum("km,km->k", y, ea * X.max() + eb) + 2.0 * gamma(m + d + 2) * mag
    return U + SAFETY * err < 0.0


def row_slacks(A, b, ea, eb, mask, x):
    """Certified lower bounds of ``b_i - a_i . x`` for the exact rows (masked rows: +inf).

    A: (K, m, d), b/ea/eb/mask: (K, m), x: (K, d). Returns (K, m).
    """
    d = A.shape[2]
    slack = b - np.einsum("kmd,kd->km", A, x)
    xinf = np.max(np.abs(x), axis=1, keepdims=True)
    err = ea * xinf + eb + gamma(d + 1) * (np.einsum("kmd,kd->km", np.abs(A), np.abs(x)) + np.abs(b))
    low = slack - SAFETY * err
    return np.where(mask, low, np.inf)


def certify_points(A, b, ea, eb, mask, x):
    """Is ``x`` strictly inside each cell ``{A x < b}``? Returns (inside (K,), radius (K,)).

    ``radius`` is a certified lower bound on the distance from ``x`` to the cell's boundary
    (inf where the cell has no rows, i.e. R^d).
    """
    low = row_slacks(A, b, ea, eb, mask, x)
    inside = np.all(low > 0, axis=1)
    norms = np.linalg.norm(A, axis=2) * SAFETY + ea
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(mask, low / np.where(norms > 0, norms, np.inf), np.inf)
    radius = np.min(r, axis=1) if r.shape[1] else np.full(r.shape[0], np.inf)
    return inside, np.where(inside, radius, 0.0)


def forward_with_bounds(weights, biases, x):
    """Float64 forward pass through the hidden layers with rounding-error bounds.

    x: (K, d). Returns lists ``z[l]`` (K, n_l) and ``ez[l]`` (K, n_l) with
    ``|z~ - z_exact| <= ez`` for every hidden layer l.
    """
    h = np.asarray(x, dtype=np.float64)
    eh = np.zeros_like(h)
    zs, ezs = [], []
    for W, b in zip(weights, biases):
        n_in = W.shape[1]
        z = h @ W.T + b
        aW = np.abs(W)
        ez = SAFETY * (eh @ aW.T + gamma(n_in + 1) * (np.abs(h) @ aW.T + np.abs(b)))
        zs.append(z)
        ezs.append(ez)
        h = np.maximum(z, 0.0)
        eh = ez  # relu is 1-Lipschitz
    return zs, ezs


def certify_witnesses(net, domain, x, bits, const_mask, row_norms, row_errs):
    """Certify that witness points lie strictly inside their regions, by forward pass.

    Parameters
    ----------
    net : Network; domain : Domain; x : (K, d) witnesses.
    bits : list over the first ``len(bits)`` hidden layers of (K, n_l) bool (active).
    const_mask : same shapes, True where the neuron is constant on the region.
    row_norms, row_errs : same shapes, ``||G~_j||_2`` and ``||G~_j - G_j||_1`` of each neuron's
        pre-activation gradient on the region (used only for the radius).

    Returns
    -------
    status : (K,) int8, 0 certified, 1 witness certainly outside, 2 undecided in float64.
    radius : (K,) certified lower bound on the distance to the region's boundary (0 unless 0).
    """
    K = x.shape[0]
    L = len(bits)
    zs, ezs = forward_with_bounds(net.weights[:L], net.biases[:L], x)
    status = np.zeros(K, dtype=np.int8)
    radius = np.full(K, np.inf)
    for l in range(L):
        z, ez, bit, const = zs[l], ezs[l], bits[l], const_mask[l]
        certain = np.abs(z) > ez
        exact_zero = (z == 0) & (ez == 0)
        wrong = certain & ((z > 0) != bit)
        # constant neurons: a certain sign must agree; an exact zero must be inactive
        unsure = ~certain & ~(const & exact_zero & ~bit)
        status = np.maximum(status, np.where(np.any(wrong, axis=1), 1, 0).astype(np.int8))
        bad = np.any(unsure, axis=1) & (status == 0)
        status[bad] = 2
        with np.errstate(divide="ignore", invalid="ignore"):
            denom = row_norms[l] * SAFETY + row_errs[l]
            r = (np.abs(z) - ez) / np.where(denom > 0, denom, np.inf)
        r = np.where(const, np.inf, r)
        radius = np.minimum(radius, np.min(r, axis=1))
    if domain.A.shape[0]:
        d = x.shape[1]
        slack = domain.b - x @ domain.A.T
        err = gamma(d + 1) * (np.abs(x) @ np.abs(domain.A).T + np.abs(domain.b))
        low = slack - SAFETY * err
        outside = np.any(low <= 0, axis=1)
        status[outside & (status == 0)] = 2
        rr = low / (np.linalg.norm(domain.A, axis=1) * SAFETY)
        radius = np.minimum(radius, np.min(rr, axis=1))
    radius = np.where(status == 0, np.maximum(radius, 0.0), 0.0)
    return status, radius


def polytope_bounding_box(A, b):
    """Bounding box and Chebyshev radius of ``{A x <= b}`` by float64 LPs (scipy HiGHS).

    The box is widened by a relative margin far above the LP tolerance, so that it contains
    the polytope; the certificates only need *some* box that contains the domain.
    Returns ``(None, r)`` when the polytope is unbounded.
    """
    from scipy.optimize import linprog

    k, d = A.shape
    norms = np.linalg.norm(A, axis=1)
    res = linprog(np.r_[np.zeros(d), -1.0], A_ub=np.c_[A, norms], b_ub=b,
                  bounds=[(None, None)] * d + [(None, None)], method="highs")
    if res.status == 3:
        return None, np.inf
    if res.status != 0:
        return None, 0.0
    radius = -res.fun
    lo, hi = np.empty(d), np.empty(d)
    for i in range(d):
        for sgn, out in ((1.0, lo), (-1.0, hi)):
            c = np.zeros(d)
            c[i] = sgn
            r = linprog(c, A_ub=A, b_ub=b, bounds=[(None, None)] * d, method="highs")
            if r.status != 0:
                return None, radius
            out[i] = sgn * r.fun
    width = np.maximum(hi - lo, 1e-12)
    margin = 1e-6 * width + 1e-9 * np.maximum(np.abs(lo), np.abs(hi))
    return (lo - margin, hi + margin), radius
