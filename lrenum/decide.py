"""The certification pipeline for decisions the device proposed: float64 first, then
Clarabel, then exact rationals. Counts how often each level was needed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from . import certify, exact
from .refine import margin_lp_clarabel


@dataclass
class DecisionStats:
    """Counters reported in the summary."""

    lps: int = 0                 # margin LPs solved on the device
    avoided: int = 0             # split decisions settled by cheap tests (no LP)
    certified_f64: int = 0       # decisions re-decided in float64 by Clarabel
    exact: int = 0               # decisions settled in exact rational arithmetic
    witness_repairs: int = 0     # emitted regions whose first witness failed certification
    dropped: int = 0             # cells proposed non-empty that certification removed
    uncertified_witnesses: int = 0  # regions proven exactly whose float64 witness is not certified

    def as_dict(self) -> dict:
        return dict(self.__dict__)


SignsFn = Callable[[int], list]


class Decider:
    """Certifies emptiness claims and repairs witnesses, escalating only where needed."""

    def __init__(self, net, domain, stats: DecisionStats, t_cap: float):
        self.net = net
        self.domain = domain
        self.stats = stats
        self.t_cap = t_cap
        self._exact: Optional[exact.ExactNetwork] = None
        self.lo, self.hi = domain.box if domain.box is not None else (None, None)

    @property
    def exact_net(self) -> exact.ExactNetwork:
        if self._exact is None:
            self._exact = exact.ExactNetwork(self.net, self.domain)
        return self._exact

    def empty_claims(self, A, b, ea, eb, mask, y, signs: SignsFn):
        """Settle claims "cell i has no interior point".

        A..mask: the cells' rows (K, m, d) / (K, m); y: (K, m) dual weights for the
        unnormalised rows; ``signs(i)`` gives claim i's sign lists for the exact check.
        Returns (empty (K,) bool, witness (K, d) for the claims that turned out non-empty).
        """
        K, m, d = A.shape
        empty = certify.certify_empty(A, b, ea, eb, np.where(mask, y, 0.0), self.lo, self.hi)
        witness = np.full((K, d), np.nan)
        for i in np.nonzero(~empty)[0]:
            verdict, x = self._redecide(A[i], b[i], ea[i], eb[i], mask[i], signs(i))
            empty[i] = verdict
            if not verdict:
                witness[i] = x
        return empty, witness

    def _redecide(self, A, b, ea, eb, mask, signs):
        """One doubtful cell: Clarabel in float64, certified; else exact. Returns (empty, point)."""
        self.stats.certified_f64 += 1
        rows = np.nonzero(mask)[0]
        if rows.size:
            t, x, y = margin_lp_clarabel(A[rows], b[rows], self.t_cap)
        else:  # no constraints at all: all of R^d
            t, x, y = self.t_cap, np.zeros(A.shape[1]), None
        if t is not None:
            if y is not None:
                yy = np.zeros(A.shape[0])
                yy[rows] = y
                if certify.certify_empty(A[None], b[None], ea[None], eb[None], yy[None], self.lo, self.hi)[0]:
                    return True, None
            if t > 0:
                inside, _ = certify.certify_points(A[None], b[None], ea[None], eb[None], mask[None], x[None])
                if inside[0]:
                    return False, x
        self.stats.exact += 1
        rows_q = self.exact_net.region_rows(signs)
        has, pt = exact.has_interior(rows_q, self.net.input_dim)
        if not has:
            return True, None
        return False, exact.fraction_point_to_float(pt)

    def repair_witness(self, A, b, ea, eb, mask, signs, check: Callable[[np.ndarray], tuple]):
        """A region whose witness failed: find and certify a new one, or prove it empty.

        ``check(x)`` runs the forward-pass certificate for one point, returning (status, radius).
        Returns (keep, witness, radius).
        """
        self.stats.witness_repairs += 1
        self.stats.certified_f64 += 1
        rows = np.nonzero(mask)[0]
        t, x, _y = margin_lp_clarabel(A[rows], b[rows], self.t_cap) if rows.size else (None, None, None)
        if t is not None and t > 0:
            status, radius = check(x)
            if status == 0:
                return True, x, radius
        self.stats.exact += 1
        rows_q = self.exact_net.region_rows(signs)
        has, pt = exact.has_interior(rows_q, self.net.input_dim)
        if not has:
            self.stats.dropped += 1
            return False, None, 0.0
        xf = exact.fraction_point_to_float(pt)
        status, radius = check(xf)
        if status != 0 and not exact.point_strictly_inside(rows_q, xf):
            self.stats.uncertified_witnesses += 1
        return True, xf, radius
