"""Batched margin LP for small input dimension: ``max t  s.t.  a_i . x + t <= b_i`` (unit rows).

Inequality form: the unknowns are ``(x, t)`` and each Mehrotra predictor-corrector step solves
one ``(d+1) x (d+1)`` normal system, which is cheap while d is small. Every row (the domain's
box or polytope rows included) is a general row. For large d with few rows per region use the
box-bounded kernel (:mod:`lrenum.kernels.lp_box`), whose normal system is rows x rows.

The start is primal feasible by construction (``t`` far below every slack), so the current ``t``
is always a lower bound on ``t*`` and the duals give an upper bound; a lane stops as soon as the
sign of ``t*`` is settled (and, for a positive margin, ``x`` is within a factor 2 of the best
margin, a good witness). Lanes that stall are frozen, so late ill-conditioned steps cannot turn
a finished lane into NaNs. Answers are proposals, certified by the caller.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from .linalg import IPM_GAP_TOL, IPM_REG, IPM_STEP, RUNNING, final_status, lane_code, max_step, spd_factor, spd_solve


def _solve_one(A, b, mask, x0, t_cap, x_bound, decide_tol, iters: int):
    """One margin LP. A: (m, d) unit rows, b: (m,), mask: (m,) rows in use, x0: (d,)."""
    m, d = A.shape
    dtype = A.dtype
    eps = jnp.finfo(dtype).eps
    A = jnp.where(mask[:, None], A, 0.0)
    # Masked rows become copies of the cap row "t <= t_cap": harmless and keeps shapes fixed.
    F = jnp.concatenate([A, jnp.ones((m, 1), dtype)], axis=1)
    h = jnp.where(mask, b, t_cap)
    F = jnp.concatenate([F, jnp.zeros((1, d + 1), dtype).at[0, d].set(1.0)], axis=0)
    h = jnp.concatenate([h, jnp.full((1,), t_cap, dtype)])
    c = jnp.zeros(d + 1, dtype).at[d].set(-1.0)
    n_rows = m + 1

    slack0 = jnp.where(mask, b - A @ x0, jnp.inf)
    scale = jnp.maximum(1.0, jnp.max(jnp.abs(jnp.where(mask, b, 0.0))))
    t0 = jnp.minimum(jnp.min(slack0), t_cap) - scale
    u = jnp.concatenate([x0, t0[None]])
    s = h - F @ u
    lam = jnp.ones(n_rows, dtype)
    eye = jnp.eye(d + 1, dtype=dtype)
    tol = IPM_GAP_TOL if dtype == jnp.float64 else eps * 64

    def finish(du, D, rp, s, lam, rc):
        dlam = D * (F @ du + rp) - rc / s
        ds = -(rc + s * dlam) / lam
        return du, ds, dlam

    def body(state):
        u, s, lam, it, _ = state
        rd = F.T @ lam + c
        rp = F @ u + s - h
        mu = (s @ lam) / n_rows
        converged = (mu < tol * scale) & (jnp.max(jnp.abs(rd)) < tol)
        # the margin x really has is a lower bound on t* (whatever rounding did to the iterate);
        # weak duality with |x| <= x_bound gives an upper bound
        t_low = jnp.minimum(u[d], jnp.min(h - F @ u + u[d]))
        t_up = (h @ lam + jnp.sum(jnp.abs(rd[:d])) * x_bound) / jnp.maximum(1.0 + rd[d], 1e-3)
        decided = (decide_tol > 0) & (((t_low > decide_tol) & (t_low > 0.5 * t_up)) | (t_up < -decide_tol))
        done = converged | decided
        D = lam / s
        H = F.T @ (D[:, None] * F)
        H = H + eye * (IPM_REG * (1.0 + jnp.trace(H)))
        L = spd_factor(H)
        # predictor and corrector share the factor; the corrector's right-hand side is linear in rc, so its
        # two extra pieces are solved together with the predictor's
        rc_a = s * lam
        base = -rd - F.T @ (D * rp - rc_a / s)
        unit = F.T @ (1.0 / s)
        sol = spd_solve(L, jnp.stack([base, unit], axis=1))
        du_a, du_unit = sol[:, 0], sol[:, 1]
        du_a, ds_a, dl_a = finish(du_a, D, rp, s, lam, rc_a)
        ap = max_step(s, ds_a)
        ad = max_step(lam, dl_a)
        mu_aff = ((s + ap * ds_a) @ (lam + ad * dl_a)) / n_rows
        sigma = (mu_aff / mu) ** 3
        extra = ds_a * dl_a - sigma * mu
        du_cross = spd_solve(L, F.T @ (ds_a * dl_a / s))
        du = du_a + du_cross - sigma * mu * du_unit
        du, ds, dl = finish(du, D, rp, s, lam, rc_a + extra)
        ap = IPM_STEP * max_step(s, ds)
        ad = IPM_STEP * max_step(lam, dl)
        u_n, s_n, lam_n = u + ap * du, s + ap * ds, lam + ad * dl
        ok = jnp.all(jnp.isfinite(u_n)) & jnp.all(jnp.isfinite(lam_n)) & jnp.all(s_n > 0) & jnp.all(lam_n > 0)
        code = lane_code(done, ok)
        keep = code != RUNNING
        return (jnp.where(keep, u, u_n), jnp.where(keep, s, s_n), jnp.where(keep, lam, lam_n), it + 1, code)

    def cond(state):
        return (state[3] < iters) & (state[4] == RUNNING)

    # Under vmap the loop runs until every lane has converged (or stalled), at most ``iters``.
    state = (u, s, lam, jnp.zeros((), jnp.int32), jnp.full((), RUNNING, jnp.int8))
    u, s, lam, it, code = jax.lax.while_loop(cond, body, state)
    y = jnp.where(mask, lam[:m], 0.0)
    # report the margin x really has (rounding may have drifted the iterate off F u + s = h)
    t = jnp.minimum(u[d], jnp.min(jnp.where(mask, b - A @ u[:d], t_cap)))
    return t, u[:d], y, final_status(code), it


@partial(jax.jit, static_argnames=("iters",))
def margin_lp_dense(A: jax.Array, b: jax.Array, mask: jax.Array, x0: jax.Array, t_cap: jax.Array,
                    x_bound: jax.Array = 1e6, decide_tol: jax.Array = 0.0, iters: int = 40):
    """Solve a batch of margin LPs.

    Parameters
    ----------
    A : (B, m, d) unit-norm constraint rows; b : (B, m); mask : (B, m) bool, rows in use;
    x0 : (B, d) any starting point; t_cap : scalar cap on t (keeps LPs over unbounded regions
    bounded); x_bound : bound on |x_k| over the domain (early-stopping dual bound);
    decide_tol : a lane stops once t* is known to be above ``decide_tol`` (with a point within a
    factor 2 of the optimum) or below ``-decide_tol``; 0 solves every lane fully.

    Returns
    -------
    t : (B,) margin, x : (B, d) a max-margin point, y : (B, m) row duals (0 on masked rows),
    status : (B,) int8 (0 converged or decided, 1 iteration limit, 3 stalled on a non-finite
    step), iterations : (B,) int32.
    """
    t_cap = jnp.asarray(t_cap, A.dtype)
    x_bound = jnp.asarray(x_bound, A.dtype)
    decide_tol = jnp.asarray(decide_tol, A.dtype)
    return jax.vmap(lambda a, bb, mk, x: _solve_one(a, bb, mk, x, t_cap, x_bound, decide_tol, iters))(A, b, mask, x0)
