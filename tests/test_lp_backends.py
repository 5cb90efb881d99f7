"""Every margin-LP back end behind the one door (lp/problem.py: solve(MarginProblems) ->
MarginSolutions) against scipy's HiGHS, lane by lane, on random, tangent, empty and degenerate
cells; statuses mapped explicitly; the duals of empty cells certify emptiness.

The LPs: ``max t  s.t.  a_i . x + ||a_i|| t <= b_i`` over the box. The dense device kernel and
Clarabel give the box faces a margin too (x_j + t <= hi_j); the box kernel keeps x in the box as
bounds with no margin; the exact back end solves the unnormalised LP. All agree on the sign of t*,
which is the question; values are compared where the formulations coincide."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

import lrenum
from lrenum import runtime
from lrenum.certify.floatcert import certify_empty
from lrenum.core.frame import Frame
from lrenum.lp.clarabel import ClarabelLP, status_of
from lrenum.lp.device import BoxDeviceLP, DenseDeviceLP
from lrenum.lp.exact import ExactLP
from lrenum.lp.problem import LPStatus, MarginProblems

D = 3
SOLVED = lrenum.Settings(decide_tol=0.0, lp_iters=80)     # every lane solved to optimality (no early stop)


def geometry(d=D):
    net = lrenum.make_network([np.eye(d), np.ones((1, d))], [np.zeros(d), np.zeros(1)])
    return Frame(net, lrenum.box_domain(-1.0, 1.0, d)).geometry


def highs_margin(C, b, mask, geo, box_margin: bool) -> float:
    """The reference optimum by HiGHS (t capped at the geometry's t_cap)."""
    A, bb = C[mask], b[mask]
    lo, hi = geo.box
    d = A.shape[1]
    norms = np.linalg.norm(A, axis=1)
    rows, rhs = [np.c_[A, norms]], [bb]
    if box_margin:                                        # the box's faces are rows with a margin
        rows += [np.c_[np.eye(d), np.ones(d)], np.c_[-np.eye(d), np.ones(d)]]
        rhs += [hi, -lo]
        bounds = [(None, None)] * d
    else:                                                 # the box as bounds on x
        bounds = list(zip(lo, hi))
    res = linprog(np.r_[np.zeros(d), -1.0], A_ub=np.concatenate(rows), b_ub=np.concatenate(rhs),
                  bounds=bounds + [(None, geo.t_cap)], method="highs")
    assert res.status == 0
    return -res.fun


def cases(rng, d=D):
    """(name, C (m, d), b (m,), expected sign of t*: 1, 0 or -1)."""
    out = []
    for k in range(12):                                   # random cells around the origin: interior
        A = rng.normal(size=(5, d))
        out.append((f"random{k}", A, np.abs(rng.normal(size=5)) * 0.5 + 0.05, 1))
    e = np.eye(d)[0]
    out.append(("slab", np.array([e, -e]), np.array([0.3, 0.3]), 1))
    out.append(("tangent", np.array([e, -e]), np.array([0.0, 0.0]), 0))            # x1 < 0 and x1 > 0
    out.append(("tangent to a face", np.array([-e]), np.array([-1.0]), 0))          # x1 > 1: the box face
    out.append(("empty", np.array([e, -e]), np.array([-0.5, -0.5]), -1))           # x1 < -0.5 and x1 > 0.5
    out.append(("outside the box", np.array([-e]), np.array([-1.5]), -1))           # x1 > 1.5
    A = rng.normal(size=(4, d))                             # degenerate: rows through one point, duplicated
    p = rng.uniform(-0.3, 0.3, size=d)
    A = np.r_[A, A[:2], 2.0 * A[:1]]
    out.append(("degenerate vertex", A, A @ p, 1 if np.linalg.matrix_rank(A) == d else 0))
    out.append(("duplicated empty", np.array([e, e, -e, -e]), np.array([-0.5, -0.5, -0.5, -0.5]), -1))
    return out


def problems(case_list, d=D, pad=8):
    K = len(case_list)
    C = np.zeros((K, pad, d))
    b = np.ones((K, pad))
    mask = np.zeros((K, pad), bool)
    for k, (_, A, bb, _) in enumerate(case_list):
        C[k, :len(A)], b[k, :len(A)], mask[k, :len(A)] = A, bb, True
    return MarginProblems(C, b, mask, np.zeros((K, d)))


BACKENDS = {
    "device-dense": lambda geo: DenseDeviceLP(geo, runtime.select_device("cpu"), SOLVED),
    "device-box": lambda geo: BoxDeviceLP(geo, runtime.select_device("cpu"), SOLVED),
    "clarabel": lambda geo: ClarabelLP(geo, SOLVED),
    "exact": lambda geo: ExactLP(geo),
}


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_each_back_end_agrees_with_highs(name):
    geo = geometry()
    cs = cases(np.random.default_rng(0))
    backend = BACKENDS[name](geo)
    sol = backend.solve(problems(cs))
    assert backend.solved == len(cs)
    assert sol.t.shape == (len(cs),) and sol.status.dtype == np.int8 and sol.iterations.shape == (len(cs),)
    box_margin = name in ("device-dense", "clarabel")
    for k, (what, A, bb, sign) in enumerate(cs):
        assert sol.status[k] == LPStatus.CONVERGED, (name, what, sol.status[k])
        one = problems([cs[k]])
        ref = highs_margin(one.C[0], one.b[0], one.mask[0], geo, box_margin)
        assert np.sign(round(ref, 9)) == sign, (what, ref)
        t = sol.t[k]
        if name == "exact":                                 # exact: the sign of t* itself
            assert np.sign(t) == sign, (what, t)
            continue
        if sign == 0:
            assert abs(t) < 1e-7, (name, what, t)           # never a proposal of interior on a tangent cell
        else:
            assert np.sign(t) == sign and abs(t - ref) < 1e-6 * max(1.0, abs(ref)), (name, what, t, ref)
        if sign > 0:                                        # the point is as deep as the radius says
            x, r = sol.x[k], sol.radius[k]
            assert r > 0 and np.all(A @ x + np.linalg.norm(A, axis=1) * r <= bb + 1e-7)
            assert np.all(np.abs(x) + r <= 1.0 + 1e-12)


@pytest.mark.parametrize("name", ["device-dense", "device-box", "clarabel"])
def test_duals_of_empty_cells_certify_their_emptiness(name):
    """The answer the ladder relies on: for clearly empty cells the back end's dual weights make
    the float64 certificate prove emptiness (never for a cell with interior)."""
    geo = geometry()
    cs = [c for c in cases(np.random.default_rng(1)) if c[3] != 0]
    p = problems(cs)
    sol = BACKENDS[name](geo).solve(p)
    zero = np.zeros_like(p.b)
    proven = certify_empty(np.where(p.mask[:, :, None], p.C, 0.0), p.b, zero, zero, np.where(p.mask, sol.y, 0.0), geo)
    for k, (what, _, _, sign) in enumerate(cs):
        if sign > 0:
            assert not proven[k], (name, what)
        else:
            assert proven[k], (name, what)


def test_an_iteration_limit_is_reported_not_hidden():
    """One iteration cannot solve a random cell: the lane says so instead of looking converged."""
    geo = geometry()
    cs = cases(np.random.default_rng(2))[:6]
    for make in (DenseDeviceLP, BoxDeviceLP):
        sol = make(geo, runtime.select_device("cpu"), lrenum.Settings(decide_tol=0.0, lp_iters=1)).solve(problems(cs))
        assert (sol.status == LPStatus.ITERATION_LIMIT).all() and (sol.iterations == 1).all()


def test_clarabel_statuses_are_mapped_explicitly():
    import cvxpy as cp

    assert status_of(cp.OPTIMAL) == LPStatus.CONVERGED
    assert status_of(cp.OPTIMAL_INACCURATE) == LPStatus.FAILED            # refused, like a failure
    assert status_of(cp.INFEASIBLE) == status_of(cp.INFEASIBLE_INACCURATE) == LPStatus.INFEASIBLE
    assert status_of(cp.USER_LIMIT) == LPStatus.ITERATION_LIMIT
    assert status_of(cp.SOLVER_ERROR) == status_of(cp.UNBOUNDED) == LPStatus.FAILED


def test_row_buckets_are_one_rule():
    from lrenum.lp import clarabel, device
    from lrenum.lp.problem import bucket_rows

    assert [bucket_rows(m) for m in (0, 1, 8, 9, 16, 17)] == [8, 8, 8, 16, 16, 24]
    assert not hasattr(device, "_pad_rows") and not hasattr(clarabel, "ROW_BUCKET")
