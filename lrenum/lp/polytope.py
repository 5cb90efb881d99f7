"""A polytope domain's interior point and its *certified* bounding box.

Every emptiness certificate on a polytope domain bounds ``max_{x in box} -(A^T y) . x`` over a
box that must contain the domain, so the box cannot rest on a float LP's word. Each face of the
box comes from a float LP (scipy's HiGHS) whose basic dual solution ``y`` is rebuilt exactly on
its support: ``y >= 0`` with ``A^T y = +-e_i`` proves ``+-x_i <= y . b`` for every point of the
polytope (weak duality), and ``y . b`` is rounded outward to a float.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from flint import fmpq_mat

from .exact import ONE, ZERO, affine_solutions, q, to_float
from .problem import norm2


class PolytopeError(ValueError):
    """The polytope is empty, unbounded, or its bounding box could not be certified."""


def _round_up(v) -> float:
    f = float(v)
    return f if q(f) >= v else float(np.nextafter(f, np.inf))


def chebyshev_center(A: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre and radius of the largest ball in ``{A x <= b}`` (float proposal; radius may be inf)."""
    from scipy.optimize import linprog

    d = A.shape[1]
    norms = norm2(A)
    res = linprog(np.r_[np.zeros(d), -1.0], A_ub=np.c_[A, norms], b_ub=b,
                  bounds=[(None, None)] * d + [(None, None)], method="highs")
    if res.status == 2:
        raise PolytopeError("the polytope domain is empty (its rows are infeasible)")
    if res.status == 3:
        return np.zeros(d), np.inf
    if res.status != 0:
        raise PolytopeError(f"the polytope domain's interior point LP failed ({res.message})")
    return res.x[:d], float(-res.fun)


def certified_bounding_box(A: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A box ``[lo, hi]`` proven to contain ``{A x <= b}`` (exact dual certificates)."""
    from scipy.optimize import linprog

    m, d = A.shape
    rows = [[q(v) for v in A[i]] for i in range(m)]
    bq = [q(v) for v in b]
    lo, hi = np.empty(d), np.empty(d)
    for i in range(d):
        for sign in (1.0, -1.0):
            c = np.zeros(d)
            c[i] = -sign                                  # linprog minimises: max sign * x_i
            res = linprog(c, A_ub=A, b_ub=b, bounds=[(None, None)] * d, method="highs")
            if res.status == 2:
                raise PolytopeError("the polytope domain is empty (its rows are infeasible)")
            if res.status == 3:
                raise PolytopeError("the polytope domain is unbounded; use a bounded polytope or --domain unbounded")
            if res.status != 0:
                raise PolytopeError(f"bounding-box LP failed ({res.message})")
            y = np.maximum(-np.asarray(res.ineqlin.marginals, float), 0.0)
            bound = _dual_bound(rows, bq, y, i, sign)
            if bound is None:   # badly scaled rows blur the float dual: use the rows active at the optimum
                bound = _dual_bound(rows, bq, _active_rows(A, b, res.x), i, sign)
            if bound is None:
                raise PolytopeError(f"could not certify the polytope's extent along x{i + 1} exactly "
                                    "(degenerate LP); give the domain as a box instead")
            if sign > 0:
                hi[i] = _round_up(bound)
            else:
                lo[i] = -_round_up(bound)
    return lo, hi


ACTIVE_REL = 1e-9   # a row counts as active at a float optimum when its slack is below this, relative to its scale


def _active_rows(A: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Indicator weights of the rows active at ``x`` (scale-free: each row's slack relative to its size)."""
    scale = np.abs(b) + np.abs(A) @ np.abs(x) + 1e-300
    return ((b - A @ x) <= ACTIVE_REL * scale).astype(float)


def _dual_bound(rows, bq, y: np.ndarray, i: int, sign: float):
    """Exact ``y . b`` for a rational ``y >= 0`` on the float dual's support with ``A^T y = sign e_i``."""
    if y.max(initial=0.0) <= 0:
        return None
    S = np.nonzero(y > 1e-12 * y.max())[0]
    d = len(rows[0])
    E = fmpq_mat(d, len(S), [rows[j][k] for k in range(d) for j in S])
    rhs = [(ONE if sign > 0 else -ONE) if k == i else ZERO for k in range(d)]
    sol = affine_solutions(E, rhs)
    if sol is None:
        return None
    yq, basis = sol
    if basis:   # several exact duals on this support: take the one nearest the float answer
        N = np.array([[float(v) for v in vec] for vec in basis]).T
        coef, *_ = np.linalg.lstsq(N, y[S] - to_float(yq), rcond=None)
        yq = [yq[k] + sum((q(coef[j]) * basis[j][k] for j in range(len(basis)) if basis[j][k]), ZERO)
              for k in range(len(S))]
    if any(v < 0 for v in yq):
        return None
    return sum((yq[k] * bq[j] for k, j in enumerate(S) if yq[k]), ZERO)


def interior_point(A: np.ndarray, b: np.ndarray) -> Optional[np.ndarray]:
    """A point strictly inside ``{A x <= b}`` checked exactly, or None (too thin to find one)."""
    x, r = chebyshev_center(A, b)
    if r < 0:
        raise PolytopeError("the polytope domain is empty (its rows are infeasible)")
    if not r > 0:
        return None
    xq = [q(v) for v in x]
    for i in range(A.shape[0]):
        if not sum((q(A[i, k]) * xq[k] for k in range(A.shape[1]) if A[i, k] and x[k]), ZERO) < q(b[i]):
            return None
    return x
