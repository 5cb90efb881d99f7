"""Certified bounds on every hidden neuron's pre-activation over the domain.

Used by the analytic upper bounds (which units are stably active or inactive) and by the
MILP encoding (big-M constants). Two passes, both sound:

1. interval arithmetic layer by layer, widened by an a priori float64 rounding bound;
2. for neurons the intervals leave unstable, an LP over the "triangle" relaxation of the
   earlier layers (scipy HiGHS). The LP's answer is not trusted: its dual vector ``y >= 0``
   is turned into a bound by weak duality, ``g.v <= y.c + max_{v in box} (g - A^T y).v``,
   evaluated with a rounding margin, which holds for *any* ``y >= 0``.

So a neuron reported stable is stable for every point of the domain, whatever the LP
solver's tolerances did.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..tolerances import ETA, gamma
from ..model.domain import Domain
from ..errors import InputError
from ..model.network import Network


@dataclass
class PreactBounds:
    """``lo[l][j] <= z_j(x) <= hi[l][j]`` for all x in the domain, hidden layer l (0-based)."""

    lo: list[np.ndarray]
    hi: list[np.ndarray]
    lps: int = 0

    def stably_active(self, l: int) -> np.ndarray:
        return self.lo[l] > 0

    def stably_inactive(self, l: int) -> np.ndarray:
        return self.hi[l] <= 0

    def unstable(self, l: int) -> np.ndarray:
        return ~(self.stably_active(l) | self.stably_inactive(l))


def interval_layer(W, b, hl, hu):
    """Sound interval image of ``W h + b`` for ``hl <= h <= hu`` (Higham's gamma on the summed
    magnitudes, doubled for the two sums of each end; ETA per product that may underflow)."""
    Wp, Wn = np.maximum(W, 0.0), np.minimum(W, 0.0)
    lo = Wp @ hl + Wn @ hu + b
    hi = Wp @ hu + Wn @ hl + b
    mag = np.abs(W) @ np.maximum(np.abs(hl), np.abs(hu)) + np.abs(b)
    err = 2.0 * gamma(W.shape[1] + 2) * mag + ETA * (W.shape[1] + 1)
    return lo - err, hi + err


def preactivation_bounds(net: Network, domain: Domain, refine: bool = True) -> PreactBounds:
    """Certified pre-activation bounds of all hidden neurons over a bounded domain."""
    if domain.box is None:
        raise InputError("pre-activation bounds need a bounded domain (a box or a polytope)")
    xl, xu = domain.box
    los, his = [], []
    hl, hu = xl, xu
    lps = 0
    # the triangle relaxation below describes a plain ReLU (h = 0 below 0); leaky slopes and
    # carried (linear) units are bounded by intervals alone
    relax = refine and net.is_relu and not net.has_linear and not net.has_groups
    for l in range(net.n_hidden):
        W, b = net.weights[l], net.biases[l]
        lo, hi = interval_layer(W, b, hl, hu)
        if relax and (l > 0 or domain.kind == "polytope"):
            unsure = np.nonzero((lo <= 0) & (hi > 0))[0]
            if unsure.size:
                lp = _TriangleLP(net, domain, los, his, l)
                for j in unsure:
                    hi[j] = min(hi[j], lp.max_bound(W[j], b[j]))
                    lo[j] = max(lo[j], -lp.max_bound(-W[j], -b[j]))
                    lps += 2
        los.append(lo)
        his.append(hi)
        hl, hu = group_floor(net, l, *activation_range(lo, hi, net.slopes[l]))
    return PreactBounds(los, his, lps)


def group_floor(net: Network, l: int, hl: np.ndarray, hu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A winner-take-all unit outputs 0 when another unit of its group wins, even where its own z
    is positive: its output's lower bound is 0, not its ReLU's."""
    if net.group_members[l]:
        hl = hl.copy()
        for m in net.group_members[l]:
            hl[m] = np.minimum(hl[m], 0.0)
    return hl, hu


def activation_range(lo: np.ndarray, hi: np.ndarray, slope: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The range of ``f(z) = max(z, 0) + s min(z, 0)`` over ``lo <= z <= hi`` (s the unit's
    negative-side slope: 0 for ReLU, 1 for a carried unit, possibly negative for a PReLU, where
    f is not monotone): the extremes lie among f(lo), f(hi) and f(0) = 0 when 0 is inside.
    Products by the slope round (or underflow): widened by one unit roundoff of their size and ETA."""
    s = np.broadcast_to(np.asarray(slope, np.float64), np.shape(lo))

    def f(z, side: float):                       # one of the two terms is 0, so only the product rounds
        neg = s * np.minimum(z, 0.0)
        return np.maximum(z, 0.0) + neg + side * (gamma(1) * np.abs(neg) + ETA)

    inside = (lo < 0) & (hi > 0)
    low = np.minimum(f(lo, -1.0), f(hi, -1.0))
    high = np.maximum(f(lo, 1.0), f(hi, 1.0))
    return np.where(inside, np.minimum(low, 0.0), low), np.where(inside, np.maximum(high, 0.0), high)


class _TriangleLP:
    """The LP relaxation of layers 1..l-1 over v = (x, h_1, ..., h_{l-1}), with a safe dual bound."""

    def __init__(self, net: Network, domain: Domain, los, his, l: int):
        d = net.input_dim
        sizes = [d] + [net.hidden_widths[k] for k in range(l)]
        offs = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        nv = int(offs[-1])
        rows, rhs = [], []
        for i in range(domain.A.shape[0]):
            r = np.zeros(nv)
            r[:d] = domain.A[i]
            rows.append(r)
            rhs.append(domain.b[i])
        vlo = [domain.box[0]]
        vhi = [domain.box[1]]
        for k in range(l):
            W, b = net.weights[k], net.biases[k]
            lo, hi = los[k], his[k]
            vlo.append(np.zeros(len(b)))
            vhi.append(np.maximum(hi, 0.0))
            for j in range(len(b)):
                hj = offs[k + 1] + j
                z = np.zeros(nv)
                z[offs[k]:offs[k + 1]] = W[j]
                if lo[j] > 0:      # stably active: h = z, i.e. z - h <= -b and h - z <= b
                    r1 = z.copy(); r1[hj] -= 1.0
                    rows += [r1, -r1]
                    rhs += [-b[j], b[j]]
                elif hi[j] <= 0:   # stably inactive: h = 0 (its box is [0, 0])
                    pass
                else:              # h >= z and h <= s (z - lo), s = hi / (hi - lo)
                    r1 = z.copy(); r1[hj] -= 1.0
                    s = hi[j] / (hi[j] - lo[j])
                    r2 = -s * z; r2[hj] += 1.0
                    rows += [r1, r2]
                    rhs += [-b[j], s * (b[j] - lo[j])]
        self.nv = nv
        self.k, self.kend = int(offs[l]), int(offs[l + 1])   # the block of h_{l-1} (x when l = 0)
        self.A = np.array(rows).reshape(-1, nv)
        self.c = np.array(rhs)
        self.vlo = np.concatenate(vlo)
        self.vhi = np.concatenate(vhi)

    def max_bound(self, w: np.ndarray, bias: float) -> float:
        """A certified upper bound of ``w . h_{l-1} + bias`` over the relaxation."""
        from scipy.optimize import linprog

        g = np.zeros(self.nv)
        g[self.k:self.kend] = w
        res = linprog(-g, A_ub=self.A if len(self.c) else None, b_ub=self.c if len(self.c) else None,
                      bounds=list(zip(self.vlo, self.vhi)), method="highs")
        y = np.zeros(len(self.c))
        if res.status == 0 and len(self.c):
            y = np.maximum(-np.asarray(res.ineqlin.marginals), 0.0)
        return safe_dual_bound(g, self.A, self.c, y, self.vlo, self.vhi) + bias


def safe_dual_bound(g, A, c, y, vlo, vhi) -> float:
    """Weak duality with rounding margin: ``max {g.v : A v <= c, vlo <= v <= vhi} <= result``.

    Holds for any ``y >= 0`` (a poor ``y`` gives a poor but valid bound).
    """
    r = g - (A.T @ y if len(c) else 0.0)
    val = float(y @ c) + float(np.sum(np.maximum(r * vlo, r * vhi)))
    vmax = np.maximum(np.abs(vlo), np.abs(vhi))
    mag = float(np.abs(y) @ np.abs(c)) + float((np.abs(A).T @ np.abs(y) + np.abs(g)) @ vmax if len(c)
                                               else np.abs(g) @ vmax)
    return val + 4.0 * gamma(len(c) + len(g) + 2) * mag
