"""Exact rational decisions: the last word on anything float64 could not certify.

Every float64 number is a rational, so the network's weights, the domain and a float64
witness point are exact :class:`fractions.Fraction` values. Here a region's constraint
rows are rebuilt exactly from its activation pattern, and "does this cell have an
interior point?" is answered by an exact simplex method (Bland's rule, so degenerate
problems, which are the normal case here, cannot cycle).

The margin LP ``max t s.t. a_i . x + t <= b_i, t <= 1`` is solved through its dual in
standard form, ``min b.y + z  s.t.  A^T y = 0, 1.y + z = 1, y, z >= 0``, whose start
``y = 0, z = 1`` is feasible, so no phase-one search is needed. ``t* > 0`` exactly when the
cell has an interior point (rows that are identically zero are never constraints).
This is slow (Python fractions) and meant for the rare, degenerate cases only.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Optional, Sequence

import numpy as np

Row = tuple[list[Fraction], Fraction]


def _frac_matrix(a: np.ndarray) -> list[list[Fraction]]:
    return [[Fraction(float(v)) for v in row] for row in np.atleast_2d(a)]


class ExactNetwork:
    """The network and domain as exact rationals, built once per enumeration."""

    def __init__(self, net, domain):
        self.d = net.input_dim
        self.W = [_frac_matrix(W) for W in net.weights]
        self.b = [[Fraction(float(v)) for v in bb] for bb in net.biases]
        self.dom_rows: list[Row] = [
            ([Fraction(float(v)) for v in domain.A[i]], Fraction(float(domain.b[i])))
            for i in range(domain.A.shape[0])
        ]

    def region_rows(self, signs: Sequence[Sequence[int]]) -> Optional[list[Row]]:
        """Exact rows ``a . x <= b`` of the cell with the given signs, or None if it is empty.

        ``signs[l][j]`` is +1 (active), -1 (inactive) or 0 (no constraint) for neuron j of
        hidden layer l+1; layers after ``len(signs)`` are ignored. A neuron whose exact
        pre-activation is constant on the cell gives no row; if its constant contradicts
        its sign (active needs > 0; constant 0 is inactive) the cell is empty.
        """
        d = self.d
        M = [[Fraction(int(i == k)) for k in range(d)] for i in range(d)]
        c = [Fraction(0)] * d
        rows = list(self.dom_rows)
        for l, s in enumerate(signs):
            W, bias = self.W[l], self.b[l]
            newM, newc = [], []
            for j, Wj in enumerate(W):
                G = [sum((Wj[i] * M[i][k] for i in range(len(M)) if Wj[i] and M[i][k]), Fraction(0))
                     for k in range(d)]
                g = sum((Wj[i] * c[i] for i in range(len(c)) if Wj[i] and c[i]), Fraction(0)) + bias[j]
                sj = int(s[j])
                if not any(G):
                    if (sj > 0 and not g > 0) or (sj < 0 and g > 0):
                        return None
                elif sj > 0:
                    rows.append(([-v for v in G], g))
                elif sj < 0:
                    rows.append((G, -g))
                active = sj > 0
                newM.append(G if active else [Fraction(0)] * d)
                newc.append(g if active else Fraction(0))
            M, c = newM, newc
        return rows

    def affine_map(self, bits: Sequence[Sequence[bool]]):
        """Exact post-activation map ``h = M x + c`` of the last given layer on the region."""
        d = self.d
        M = [[Fraction(int(i == k)) for k in range(d)] for i in range(d)]
        c = [Fraction(0)] * d
        for l, act in enumerate(bits):
            W, bias = self.W[l], self.b[l]
            newM, newc = [], []
            for j, Wj in enumerate(W):
                if not act[j]:
                    newM.append([Fraction(0)] * d)
                    newc.append(Fraction(0))
                    continue
                newM.append([sum((Wj[i] * M[i][k] for i in range(len(M)) if Wj[i] and M[i][k]), Fraction(0))
                             for k in range(d)])
                newc.append(sum((Wj[i] * c[i] for i in range(len(c)) if Wj[i] and c[i]), Fraction(0)) + bias[j])
            M, c = newM, newc
        return M, c

    def pre_activation(self, bits: Sequence[Sequence[bool]], j: int) -> tuple[list[Fraction], Fraction]:
        """Exact ``(G, g)`` of neuron j of the layer after ``bits`` on the region: z = G.x + g."""
        M, c = self.affine_map(bits)
        Wj, l = self.W[len(bits)][j], len(bits)
        G = [sum((Wj[i] * M[i][k] for i in range(len(M)) if Wj[i] and M[i][k]), Fraction(0)) for k in range(self.d)]
        g = sum((Wj[i] * c[i] for i in range(len(c)) if Wj[i] and c[i]), Fraction(0)) + self.b[l][j]
        return G, g

    def post_activation_map(self, bits: Sequence[Sequence[bool]]) -> list[list[Fraction]]:
        """Exact Jacobian of the last given layer's post-activation output on the region."""
        return self.affine_map(bits)[0]


def exact_rank(M: list[list[Fraction]]) -> int:
    """Rank of a rational matrix by exact Gaussian elimination."""
    rows = [list(r) for r in M if any(r)]
    rank = 0
    ncols = len(rows[0]) if rows else 0
    for col in range(ncols):
        piv = next((i for i in range(rank, len(rows)) if rows[i][col] != 0), None)
        if piv is None:
            continue
        rows[rank], rows[piv] = rows[piv], rows[rank]
        p = rows[rank]
        for i in range(rank + 1, len(rows)):
            if rows[i][col] != 0:
                f = rows[i][col] / p[col]
                rows[i] = [a - f * b for a, b in zip(rows[i], p)]
        rank += 1
    return rank


def max_margin(rows: list[Row], d: int) -> tuple[Fraction, list[Fraction]]:
    """Exact optimum of ``max t s.t. a_i . x + t <= b_i, t <= 1`` and an optimal ``x``.

    Rows with ``a_i = 0`` must not be passed (they are not constraints on x).
    """
    m = len(rows)
    p = d + 1                     # equality rows: A^T y = 0 (d rows) and 1.y + z = 1
    q = m + 1                     # columns: y_1..y_m, z
    n_art = d                     # artificial columns for the d rows with rhs 0
    ncol = q + n_art
    # tableau T[r] = coefficients over all columns, last entry is the rhs
    T = [[Fraction(0)] * (ncol + 1) for _ in range(p)]
    for i, (a, _b) in enumerate(rows):
        for k in range(d):
            T[k][i] = a[k]
        T[d][i] = Fraction(1)
    T[d][m] = Fraction(1)
    T[d][ncol] = Fraction(1)
    for k in range(d):
        T[k][q + k] = Fraction(1)
    cost = [b for (_a, b) in rows] + [Fraction(1)] + [Fraction(0)] * n_art
    basis = [q + k for k in range(d)] + [m]
    active_rows = list(range(p))

    def pivot(r: int, j: int) -> None:
        pr = T[r]
        inv = 1 / pr[j]
        T[r] = pr = [v * inv for v in pr]
        for i in active_rows:
            if i != r and T[i][j] != 0:
                f = T[i][j]
                T[i] = [a - f * b for a, b in zip(T[i], pr)]
        basis[r] = j

    # drive the artificials (all at level 0) out of the basis; a row with no real entry is redundant
    for r in range(d):
        j = next((j for j in range(q) if T[r][j] != 0), None)
        if j is None:
            active_rows.remove(r)
        else:
            pivot(r, j)
    # phase two, Bland's rule; artificial columns never enter
    while True:
        cb = {r: cost[basis[r]] for r in active_rows}
        entering = None
        for j in range(q):
            if j in basis:
                continue
            red = cost[j] - sum((cb[r] * T[r][j] for r in active_rows if T[r][j] != 0), Fraction(0))
            if red < 0:
                entering = j
                break
        if entering is None:
            break
        best = None
        for r in active_rows:
            if T[r][entering] > 0:
                ratio = T[r][ncol] / T[r][entering]
                key = (ratio, basis[r])
                if best is None or key < best[0]:
                    best = (key, r)
        if best is None:  # cannot happen: the objective is bounded below by duality
            raise ArithmeticError("exact simplex: unbounded dual, which is impossible here")
        pivot(best[1], entering)
    cb = {r: cost[basis[r]] for r in active_rows}
    value = sum((cb[r] * T[r][ncol] for r in active_rows), Fraction(0))
    # multipliers pi = c_B B^{-1}: read from the artificial columns (cost 0) and z's column
    pi = [Fraction(0)] * p
    # (a deleted redundant row keeps its artificial column e_r outside the active rows: pi_r = 0)
    for k in range(d):
        pi[k] = sum((cb[r] * T[r][q + k] for r in active_rows if T[r][q + k] != 0), Fraction(0))
    # pi_d from the z column: reduced cost r_z = 1 - pi_d - sum_k pi_k * 0 = 1 - (c_B B^-1 e_z)
    red_z = cost[m] - sum((cb[r] * T[r][m] for r in active_rows if T[r][m] != 0), Fraction(0))
    pi[d] = cost[m] - red_z
    return value, pi[:d]


def has_interior(rows: Optional[list[Row]], d: int) -> tuple[bool, Optional[list[Fraction]]]:
    """Does ``{x : a_i . x < b_i for all rows}`` have an interior point? Returns (answer, point)."""
    if rows is None:
        return False, None
    real = []
    for a, b in rows:
        if any(a):
            real.append((a, b))
        elif b < 0:           # 0 <= b < 0: no point at all
            return False, None
    if not real:
        return True, [Fraction(0)] * d
    t, x = max_margin(real, d)
    return (t > 0), (x if t > 0 else None)


def point_strictly_inside(rows: Optional[list[Row]], x: Sequence[float]) -> bool:
    """Exact check that a float point satisfies every (non-zero) row strictly."""
    if rows is None:
        return False
    xf = [Fraction(float(v)) for v in x]
    for a, b in rows:
        if not any(a):
            continue
        if not sum((ai * xi for ai, xi in zip(a, xf) if ai and xi), Fraction(0)) < b:
            return False
    return True


def fraction_point_to_float(x: Sequence[Fraction]) -> np.ndarray:
    return np.array([float(v) for v in x], dtype=np.float64)
