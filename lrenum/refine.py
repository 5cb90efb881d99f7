"""Float64 re-decisions with Clarabel, for the answers the cheap certificates could not settle.

Clarabel's own API with a direct KKT solver is used rather than cvxpy: building a cvxpy
problem costs several milliseconds per LP, and this path must not dominate a run.
An answer from here is a proposal too; it is certified by :mod:`lrenum.certify` or
handed on to :mod:`lrenum.exact`.
"""

from __future__ import annotations

import numpy as np


def margin_lp_clarabel(A: np.ndarray, b: np.ndarray, t_cap: float):
    """Solve ``max t s.t. a_i . x + ||a_i|| t <= b_i, t <= t_cap`` in float64.

    A: (m, d) rows (zero rows must be removed), b: (m,). Returns (t, x, y) with ``y`` the
    dual weights of the *unnormalised* rows, or (None, None, None) if Clarabel failed.
    """
    import clarabel
    from scipy import sparse

    m, d = A.shape
    norms = np.linalg.norm(A, axis=1)
    F = np.zeros((m + 1, d + 1))
    F[:m, :d] = A / norms[:, None]
    F[:m, d] = 1.0
    F[m, d] = 1.0
    h = np.r_[b / norms, t_cap]
    q = np.zeros(d + 1)
    q[d] = -1.0
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    settings.tol_gap_abs = 1e-12
    settings.tol_gap_rel = 1e-12
    settings.tol_feas = 1e-12
    settings.max_iter = 200
    solver = clarabel.DefaultSolver(sparse.csc_matrix((d + 1, d + 1)), q, sparse.csc_matrix(F), h,
                                    [clarabel.NonnegativeConeT(m + 1)], settings)
    sol = solver.solve()
    status = str(sol.status)
    if "Solved" not in status:
        return None, None, None
    x = np.asarray(sol.x)
    z = np.maximum(np.asarray(sol.z)[:m], 0.0)
    return float(x[d]), x[:d].copy(), z / norms
