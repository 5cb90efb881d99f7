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

import numpy as np

from ..settings import Settings
from .problem import LPGeometry, LPStatus, MarginProblems, MarginSolutions, bucket_rows, norm2


def status_of(cvxpy_status: str) -> LPStatus:
    """cvxpy's status for Clarabel, mapped explicitly (cvxpy maps Clarabel's own: Solved ->
    optimal, AlmostSolved -> optimal_inaccurate, PrimalInfeasible -> infeasible, MaxIterations
    and MaxTime -> user_limit, NumericalError and InsufficientProgress -> solver_error). Only an
    optimal answer counts as converged: an inaccurate one is refused like a failure."""
    import cvxpy as cp

    if cvxpy_status == cp.OPTIMAL:
        return LPStatus.CONVERGED
    if cvxpy_status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
        return LPStatus.INFEASIBLE
    if cvxpy_status == cp.USER_LIMIT:
        return LPStatus.ITERATION_LIMIT
    return LPStatus.FAILED


class ClarabelLP:
    """Margin LPs one at a time, in float64: ``max t s.t. a_i.x + ||a_i|| t <= b_i``, x in the domain."""

    name = "clarabel"

    def __init__(self, geometry: LPGeometry, settings: Settings):
        self.geo = geometry
        self.tol, self.max_iter = settings.clarabel_tol, settings.clarabel_max_iter
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

    def solve(self, problems: MarginProblems) -> MarginSolutions:
        """Each problem on its own (rows not in use dropped); statuses as :func:`status_of` says."""
        K, m = problems.mask.shape
        geo = self.geo
        out = MarginSolutions(np.full(K, np.nan), problems.start.astype(np.float64).copy(), np.zeros(K),
                              np.zeros((K, m)), np.zeros((K, geo.dom_C.shape[0])), np.full(K, LPStatus.FAILED, np.int8),
                              np.zeros(K, np.int32))
        for k in range(K):
            use = np.nonzero(problems.mask[k])[0]
            status, t, x, y, y_dom, its = self._solve_one(problems.C[k, use], problems.b[k, use])
            out.status[k], out.iterations[k] = status, its
            if status == LPStatus.CONVERGED:
                out.t[k], out.x[k], out.radius[k] = t, x, max(t, 0.0)
                out.y[k, use], out.y_dom[k] = y, y_dom
        return out

    def _solve_one(self, C: np.ndarray, b: np.ndarray):
        """C: (m, r) rows in basis coordinates (rows in use only), b: (m,):
        (status, t, x, y of the unnormalised rows, y_dom, iterations)."""
        import cvxpy as cp

        self.solved += 1
        geo = self.geo
        m = C.shape[0]
        mb = bucket_rows(m)
        prob, x, t, Ap, nrmp, bp, rows, dom = self._problem(mb)
        A = np.zeros((mb, geo.dim))
        A[:m] = geo.to_x(C)
        bb = np.ones(mb)          # padded rows read 0 <= 1
        bb[:m] = b
        Ap.value, nrmp.value, bp.value = A, norm2(A), bb
        nothing = (np.zeros(geo.dim), np.zeros(m), np.zeros(geo.dom_C.shape[0]))
        try:
            with warnings.catch_warnings():   # "may be inaccurate": that status is refused below anyway
                warnings.simplefilter("ignore", UserWarning)
                prob.solve(solver=cp.CLARABEL, tol_gap_abs=self.tol, tol_gap_rel=self.tol,
                           tol_feas=self.tol, max_iter=self.max_iter)
        except (cp.error.SolverError, ValueError, ArithmeticError):
            return (LPStatus.FAILED, np.nan) + nothing + (0,)
        its = int(getattr(prob.solver_stats, "num_iters", 0) or 0)
        status = status_of(prob.status)
        if status != LPStatus.CONVERGED or t.value is None:
            return (status if status != LPStatus.CONVERGED else LPStatus.FAILED, np.nan) + nothing + (its,)
        y = np.maximum(np.asarray(rows.dual_value, float)[:m], 0.0)
        y_dom = np.maximum(np.asarray(dom.dual_value, float), 0.0) if dom is not None else np.zeros(0)
        return LPStatus.CONVERGED, float(t.value), np.asarray(x.value, float), y, y_dom, its
