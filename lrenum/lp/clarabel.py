"""Clarabel through cvxpy: the float64 re-decision of margin LPs the cheap certificates left open.

The LP is built once per row count as a parametrized cvxpy problem (DPP: the rows, their norms
and right-hand sides are parameters), so a re-decision only refills parameters and calls the
solver; cvxpy's canonicalisation is cached. Clarabel's status is mapped explicitly: only
``optimal`` counts; ``optimal_inaccurate`` (Clarabel's AlmostSolved) and everything else is a
failure, and the caller moves on to the exact path. An answer from here is a proposal too; it is
certified by :mod:`lrenum.certify` or handed on to :mod:`lrenum.lp.exact`.
"""

from __future__ import annotations

import warnings

from typing import NamedTuple

import numpy as np

from ..tolerances import CLARABEL_MAX_ITER, CLARABEL_TOL
from .problem import LPGeometry, norm2

ROW_BUCKET = 8


class ClarabelAnswer(NamedTuple):
    ok: bool                  # Clarabel reported an optimal solution
    t: float
    x: np.ndarray             # (d,)
    y: np.ndarray             # (m,) duals of the unnormalised cell rows
    y_dom: np.ndarray         # (m_dom,) duals of the unnormalised polytope rows


class ClarabelLP:
    """One margin LP at a time, in float64: ``max t s.t. a_i.x + ||a_i|| t <= b_i``, x in the domain."""

    name = "clarabel"

    def __init__(self, geometry: LPGeometry):
        self.geo = geometry
        self._problems: dict = {}
        self.solved = 0

    def _problem(self, m: int):
        import cvxpy as cp

        if m in self._problems:
            return self._problems[m]
        geo = self.geo
        d = geo.dim
        x, t = cp.Variable(d), cp.Variable()
        A, nrm, b = cp.Parameter((m, d)), cp.Parameter(m, nonneg=True), cp.Parameter(m)
        rows = A @ x + cp.multiply(nrm, t) <= b
        cons = [rows, t <= geo.t_cap]
        dom = None
        if geo.box_is_domain:
            lo, hi = geo.box
            cons += [x + t <= hi, -x + t <= -lo]
        elif geo.dom_C.shape[0]:
            Ad = geo.to_x(geo.dom_C)
            dom = Ad @ x + norm2(Ad) * t <= geo.dom_b
            cons.append(dom)
        prob = cp.Problem(cp.Maximize(t), cons)
        entry = (prob, x, t, A, nrm, b, rows, dom)
        self._problems[m] = entry
        return entry

    def solve_one(self, C: np.ndarray, b: np.ndarray) -> ClarabelAnswer:
        """C: (m, r) rows in basis coordinates (rows not in use removed), b: (m,)."""
        import cvxpy as cp

        self.solved += 1
        geo = self.geo
        m = C.shape[0]
        mb = max(ROW_BUCKET, -(-m // ROW_BUCKET) * ROW_BUCKET)
        prob, x, t, Ap, nrmp, bp, rows, dom = self._problem(mb)
        A = np.zeros((mb, geo.dim))
        A[:m] = geo.to_x(C)
        bb = np.ones(mb)          # padded rows read 0 <= 1
        bb[:m] = b
        Ap.value, nrmp.value, bp.value = A, norm2(A), bb
        fail = ClarabelAnswer(False, np.nan, np.zeros(geo.dim), np.zeros(m), np.zeros(geo.dom_C.shape[0]))
        try:
            with warnings.catch_warnings():   # "may be inaccurate": that status is refused below anyway
                warnings.simplefilter("ignore", UserWarning)
                prob.solve(solver=cp.CLARABEL, tol_gap_abs=CLARABEL_TOL, tol_gap_rel=CLARABEL_TOL,
                           tol_feas=CLARABEL_TOL, max_iter=CLARABEL_MAX_ITER)
        except (cp.error.SolverError, ValueError, ArithmeticError):
            return fail
        if prob.status != cp.OPTIMAL or t.value is None:
            return fail
        y = np.maximum(np.asarray(rows.dual_value, float)[:m], 0.0)
        y_dom = np.maximum(np.asarray(dom.dual_value, float), 0.0) if dom is not None else np.zeros(0)
        return ClarabelAnswer(True, float(t.value), np.asarray(x.value, float), y, y_dom)
