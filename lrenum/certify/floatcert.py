"""Float64 certificates with a priori rounding-error bounds.

The device kernels only *propose*. Nothing is trusted until one of these checks (or the exact
path in :mod:`lrenum.lp.exact`) has confirmed it:

* **Non-empty cell**: a witness point whose constraint slacks exceed their error bounds. For
  emitted regions the check is a forward pass through the network itself
  (:func:`certify_witnesses`), independent of any region matrix.
* **Empty interior**: a dual vector ``y >= 0`` with the safe bound
  ``y.b + max_{x in box} (-(A^T y).x) + err < 0``. Weak duality then shows that no point of the
  box satisfies all rows strictly. Without a box (R^d): a Farkas vector whose existence is proven
  by an enclosure of an exact square solve (:func:`certify_empty_unbounded`).

Rows are held in basis coordinates, ``a_i = C_i U`` (:class:`lrenum.lp.problem.LPGeometry`), and
every row comes with ``eC_i >= ||C~_i - C_i||_1`` and ``eb_i >= |b~_i - b_i|`` against the exact
network, propagated layer by layer with Higham's ``gamma_n`` bound for dot products
(*Accuracy and Stability of Numerical Algorithms*, section 3.1). Bounds are inflated by
``SAFETY`` to absorb the rounding of the bound computation itself.
"""

from __future__ import annotations

import numpy as np

from ..lp.problem import LPGeometry, Rows, norm2
from ..model.network import Network
from ..tolerances import ETA, SAFETY, U64, gamma


def certify_empty(C, b, eC, eb, y, geo: LPGeometry) -> np.ndarray:
    """Certify that cells ``{x in box : a_i . x < b_i}`` (``a_i = C_i U``) have no interior point.

    C: (K, m, r); b, eC, eb, y: (K, m) with y >= 0 (rows not in use must carry y = 0; exact rows,
    such as a polytope domain's, carry eC = eb = 0). Nothing is certified without a box (R^d):
    there :func:`certify_empty_unbounded` or the exact path decides. Returns a (K,) bool array.
    """
    K, m = b.shape
    if geo.box is None or K == 0:
        return np.zeros(K, dtype=bool)
    lo, hi = geo.box
    U = geo.U
    y = np.maximum(np.asarray(y, dtype=np.float64), 0.0)
    X = np.maximum(np.abs(lo), np.abs(hi))
    w = np.einsum("kmr,km->kr", C, y)                     # C^T y
    v = w if geo.identity_basis else w @ U                # A^T y = U^T C^T y
    val = np.einsum("km,km->k", y, b) + np.sum(np.maximum(-v * lo, -v * hi), axis=1)
    r, d = C.shape[2], v.shape[1]
    absU = np.abs(U)
    wabs = np.einsum("kmr,km->kr", np.abs(C), y)          # |C|^T y
    spread = wabs if geo.identity_basis else wabs @ absU  # |U|^T |C|^T y
    uX = geo.u_row_1 * X.max()
    err = (np.einsum("km,km->k", y, eb)                               # errors of b
           + np.einsum("km,km->k", y, eC) * uX                        # errors of the rows
           + (gamma(m) + gamma(r) + gamma(m) * gamma(r)) * (spread @ X)   # rounding of A^T y
           + gamma(m) * np.einsum("km,km->k", y, np.abs(b))           # rounding of y.b
           + gamma(d + 2) * (np.abs(v) @ X + np.abs(np.einsum("km,km->k", y, b)))  # the final sums
           + ETA * (m * r + m + r * d + d + 2))                                       # products that underflow
    return val + SAFETY * err < 0.0


def certify_empty_unbounded(C, b, eC, eb, y) -> np.ndarray:
    """Certify that cells ``{z in R^r : C~_i . z < b~_i}`` are empty without a box (R^d domains;
    z = U x ranges over all of R^r), by a Farkas vector proven to exist from floats alone.

    C: (K, m, r); b, eC, eb, y: (K, m), y >= 0 a float dual (0 on rows not in use). On the r + 1
    rows S with the largest weights, the exact Farkas system ``M~ y = e`` with
    ``M~ = [C~_S^T; 1^T]`` is solved in floats with an approximate inverse R, and enclosed
    (Krawczyk / Rump, Higham 2002 section 7.2): if ``||I - R M~||_inf <= alpha < 1`` for every M~
    within the rows' error bounds, the exact solution y~ exists and
    ``||y~ - y0||_inf <= ||R (e - M~ y0)||_inf / (1 - alpha)``. If the whole enclosure is
    positive and ``b~ . y~ <= 0`` over it, then y~ >= 0, C~^T y~ = 0 and b~ . y~ <= 0, so no z
    satisfies every row strictly (``0 < y~ . (b~ - C~ z) = b~ . y~``). Returns a (K,) bool array;
    claims it cannot prove go on to the exact path.
    """
    C, b, eC, eb = (np.asarray(a, dtype=np.float64) for a in (C, b, eC, eb))
    K, m, r = C.shape
    n = r + 1
    out = np.zeros(K, dtype=bool)
    if K == 0 or m < n:
        return out
    y = np.maximum(np.asarray(y, dtype=np.float64), 0.0)
    S = np.argsort(-y, axis=1, kind="stable")[:, :n]                      # (K, n) heaviest rows
    usable = np.take_along_axis(y, S, axis=1).min(axis=1) > 0
    CS = np.take_along_axis(C, S[:, :, None], axis=1)                    # (K, n, r)
    bS, ebS, eCS = (np.take_along_axis(a, S, axis=1) for a in (b, eb, eC))
    M = np.concatenate([np.swapaxes(CS, 1, 2), np.ones((K, 1, n))], axis=1)   # (K, n, n)
    E = np.zeros_like(M)
    E[:, :r, :] = eCS[:, None, :]                                         # |M~ - M| <= E (column i: row S_i)
    finite = np.all(np.isfinite(M), axis=(1, 2)) & usable
    cond = np.full(K, np.inf)
    cond[finite] = np.linalg.cond(M[finite])
    good = finite & (cond < 1e12)                                         # else leave it to the exact path
    if not good.any():
        return out
    M, E, bS, ebS = M[good], E[good], bS[good], ebS[good]
    R = np.linalg.inv(M)
    absR, absM = np.abs(R), np.abs(M)
    g = gamma(n)
    eye = np.eye(n)
    G = np.abs(eye - R @ M) + g * (absR @ absM) + absR @ E + ETA * n        # >= |I - R M~| entrywise
    alpha = SAFETY * G.sum(axis=2).max(axis=1)
    y0 = R[:, :, n - 1]                                                    # R e, e = (0, ..., 0, 1)
    resid = (np.abs(eye[n - 1] - np.einsum("kij,kj->ki", M, y0))
             + g * np.einsum("kij,kj->ki", absM, np.abs(y0))
             + np.einsum("kij,kj->ki", E, np.abs(y0)) + ETA * n)          # >= |e - M~ y0|
    R_resid = np.einsum("kij,kj->ki", absR, resid)                        # |R| |e - M~ y0|, and g of it for its rounding
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = SAFETY * (R_resid + g * R_resid).max(axis=1) / (1.0 - alpha)
    positive = (alpha < 1.0) & (y0.min(axis=1) - delta > 0)
    # b~ . y~ <= b . y0 + |b| . delta + eb . (|y0| + delta), each nonnegative sum inflated against its rounding
    bound = (np.einsum("ki,ki->k", bS, y0)
             + SAFETY * (delta * np.abs(bS).sum(axis=1) + np.einsum("ki,ki->k", ebS, np.abs(y0) + delta[:, None])
                         + g * np.einsum("ki,ki->k", np.abs(bS), np.abs(y0)) + ETA * n))
    out[np.nonzero(good)[0]] = positive & (bound <= 0.0)
    return out


def row_slacks(rows: Rows, x, geo: LPGeometry):
    """Certified lower bounds of ``b_i - a_i . x`` for the exact rows (rows not in use: +inf).

    rows: K cells of m rows, x: (K, d). Returns (K, m).
    """
    C, b, eC, eb, mask = rows
    d = x.shape[1]
    yx = geo.image(x)                                                   # U x, (K, r)
    if geo.identity_basis:
        ey = np.zeros_like(yx)
    else:
        ey = gamma(d) * (np.abs(x) @ np.abs(geo.U).T)                   # rounding of U x
    r = C.shape[2]
    slack = b - np.einsum("kmr,kr->km", C, yx)
    yinf = np.max(np.abs(yx) + ey, axis=1, keepdims=True)
    err = (eC * yinf + eb
           + np.einsum("kmr,kr->km", np.abs(C), ey)
           + gamma(r + 1) * (np.einsum("kmr,kr->km", np.abs(C), np.abs(yx)) + np.abs(b))
           + ETA * (r + 1))                                              # products that underflow
    return np.where(mask, slack - SAFETY * err, np.inf)


def certify_points(rows: Rows, x, geo: LPGeometry):
    """Is ``x`` strictly inside each cell ``{a_i . x < b_i}``? Returns (inside (K,), radius (K,)).

    ``radius`` is a certified lower bound on the distance from ``x`` to the cell's rows (inf
    where the cell has no rows).
    """
    low = row_slacks(rows, x, geo)
    inside = np.all(low > 0, axis=1)
    C, eC, mask = rows.C, rows.eC, rows.mask
    norms = geo.row_norms(C) * SAFETY + eC * geo.u_row_2
    with np.errstate(divide="ignore", invalid="ignore"):
        rr = np.where(mask, low / np.where(norms > 0, norms, np.inf), np.inf)
    radius = np.min(rr, axis=1) if rr.shape[1] else np.full(rr.shape[0], np.inf)
    return inside, np.where(inside, radius, 0.0)


def forward_with_bounds(net: Network, x: np.ndarray, n_layers: int):
    """Float64 forward pass through the first ``n_layers`` hidden layers with error bounds.

    x: (K, d). Returns lists ``z[l]`` (K, n_l) and ``ez[l]`` with ``|z~ - z_exact| <= ez``.
    """
    h = np.asarray(x, dtype=np.float64)
    eh = np.zeros_like(h)
    zs, ezs = [], []
    for W, b, a in zip(net.weights[:n_layers], net.biases[:n_layers], net.slopes[:n_layers]):
        n_in = W.shape[1]
        z = h @ W.T + b
        aW = np.abs(W)
        ez = SAFETY * (eh @ aW.T + gamma(n_in + 1) * (np.abs(h) @ aW.T + np.abs(b)) + ETA * (n_in + 1))
        # underflow needs ETA only per product that may be nonzero: where z is exactly 0, count
        # them (an input exactly 0 with no error is 0 in the exact pass too, and 0 * w = 0), so
        # that a max pool's b - a over two dead units is a certain 0, not "0 with an error"
        zk, zj = np.nonzero(z == 0)
        if zk.size:
            hk, ek, wj = h[zk], eh[zk], aW[zj]
            live = (((hk != 0) | (ek > 0)) & (wj != 0)).sum(axis=1) + (b[zj] != 0)
            ez[zk, zj] = SAFETY * (np.einsum("ki,ki->k", ek, wj)
                                   + gamma(n_in + 1) * (np.einsum("ki,ki->k", np.abs(hk), wj) + np.abs(b[zj]))
                                   + ETA * live)
        zs.append(z)
        ezs.append(ez)
        act = net.active_units(len(zs) - 1, z)
        h = np.where(act, z, a * z)
        # the activation is max(1, |slope|)-Lipschitz; multiplying by a slope rounds once more.
        # A ReLU whose z is certainly negative outputs exactly 0, as the exact one does: no error
        # (else a max pool's b - a over two dead units is "0 with an error" and never certain)
        eh = SAFETY * (np.maximum(1.0, np.abs(a)) * ez + U64 * np.abs(np.where(z > 0, 0.0, a * z)))
        eh = np.where((z < -ez) & (a == 0), 0.0, eh)
        for members in net.group_members[len(zs) - 1]:
            eh[:, members] = _group_output_error(z[:, members], ez[:, members], act[:, members])
    return zs, ezs


def _group_output_error(z, ez, act):
    """Error bounds of a winner-take-all group's outputs (K, m). A unit's output jumps from z to 0
    when another unit overtakes it, so only a certain winner gives a bound: the winner's output
    is its z (error ez), the others' exactly 0; where the winner is uncertain, inf."""
    K, m = z.shape
    won = act.any(axis=1)
    w = np.argmax(act, axis=1)
    rows = np.arange(K)
    zw, ew = z[rows, w], ez[rows, w]
    diff = zw[:, None] - z
    idx = np.arange(m)[None, :]
    exact_tie = (diff == 0) & (ew[:, None] == 0) & (ez == 0)           # won by the lower index
    beats = (diff > SAFETY * (ew[:, None] + ez + U64 * np.abs(diff))) | (idx == w[:, None]) | (exact_tie & (idx > w[:, None]))
    below = (z < -ez) | ((z == 0) & (ez == 0))                          # an exact 0 ties with "none", which wins
    sure = np.where(won, (zw > ew) & beats.all(axis=1), np.all(below, axis=1))
    out = np.where(act, SAFETY * ez, 0.0)
    return np.where(sure[:, None], out, np.inf)


def certify_witnesses(net: Network, domain, x, bits, const_mask, row_norms, row_errs):
    """Certify that witness points lie strictly inside their regions, by forward pass.

    Parameters
    ----------
    net, domain; x : (K, d) witnesses.
    bits : list over the first ``len(bits)`` hidden layers of (K, n_l) bool (active).
    const_mask : same shapes, True where the neuron is constant on the region.
    row_norms, row_errs : same shapes, an upper bound on ``||grad z_j||_2`` on the region and on
        its error (used only for the radius).

    Returns
    -------
    status : (K,) int8, 0 certified, 1 witness certainly outside, 2 undecided in float64.
    radius : (K,) certified lower bound on the distance to the region's boundary (0 unless 0).
    """
    K = x.shape[0]
    L = len(bits)
    zs, ezs = forward_with_bounds(net, x, L)
    status = np.zeros(K, dtype=np.int8)
    radius = np.full(K, np.inf)
    for l in range(L):
        z, ez, bit, const = zs[l], ezs[l], bits[l], const_mask[l]
        tie_wrong = np.zeros(K, bool)
        if net.group_members[l]:                 # a group's losers are checked against their winner
            z, ez, tie_wrong = group_margins(net, l, z, ez, bit)
        lin = net.linear[l]                      # linear units constrain nothing: never checked
        certain = (np.abs(z) > ez) | lin
        exact_zero = (z == 0) & (ez == 0)
        wrong = certain & ~lin & ((z > 0) != bit)
        # constant neurons: a certain sign must agree; an exact zero must be inactive
        unsure = ~certain & ~(const & exact_zero & ~bit)
        status = np.maximum(status, np.where(np.any(wrong, axis=1) | tie_wrong, 1, 0).astype(np.int8))
        bad = np.any(unsure, axis=1) & (status == 0)
        status[bad] = 2
        with np.errstate(divide="ignore", invalid="ignore"):
            denom = row_norms[l] * SAFETY + row_errs[l]
            r = (np.abs(z) - ez) / np.where(denom > 0, denom, np.inf)
        r = np.where(const | lin, np.inf, r)
        radius = np.minimum(radius, np.min(r, axis=1) if r.shape[1] else np.inf)
    inside, droom = domain_slack(domain, x)
    status[~inside & (status == 0)] = 2
    radius = np.minimum(radius, droom)
    radius = np.where(status == 0, np.maximum(radius, 0.0), 0.0)
    return status, radius


def group_margins(net: Network, l: int, z, ez, bit):
    """A layer's values as its rows see them: a group's loser j as ``z_j - z_t`` (t the stored
    winner), with the two bounds and the subtraction's ulp; and the points where a loser ties
    exactly with a later winner (on a tie the lower index wins: such a pattern is wrong there)."""
    ref = net.group_reference(l, np.where(bit, 1, -1))
    pick = ref >= 0
    t = np.where(pick, ref, 0)
    K = z.shape[0]
    zt, et = z[np.arange(K)[:, None], t], ez[np.arange(K)[:, None], t]
    d = z - zt
    v = np.where(pick, d, z)
    ev = np.where(pick, SAFETY * (ez + et + U64 * np.abs(d)), ez)
    tie = pick & (v == 0) & (ev == 0) & (ref > np.arange(z.shape[1])[None, :])
    return v, ev, np.any(tie, axis=1)


def domain_slack(domain, x):
    """(strictly inside the domain (K,), certified distance to the domain's boundary (K,))."""
    K, d = x.shape
    if domain.A.shape[0] == 0:
        return np.ones(K, bool), np.full(K, np.inf)
    if domain.kind == "box":      # exact: x - lo and hi - x are computed with one rounding each
        lo, hi = domain.box
        room = np.minimum(x - lo, hi - x) * (1 - 2 * U64)
        room = np.min(room, axis=1)
        return room > 0, np.maximum(room, 0.0)
    slack = domain.b - x @ domain.A.T
    err = gamma(d + 1) * (np.abs(x) @ np.abs(domain.A).T + np.abs(domain.b))
    low = slack - SAFETY * err
    rr = low / (norm2(domain.A) * SAFETY)
    return np.all(low > 0, axis=1), np.min(rr, axis=1)
