"""Batched margin LP for high input dimension: few general rows, the domain box as bounds.

    max t  s.t.  a_i . x + t <= b_i  (unit rows in x-space),  lo <= x <= hi,  t <= t_cap.

At d = 784 the box has 1568 faces but a region has only k <= (hidden units so far) rows of its
own. As general rows the faces make each inequality-form IPM step factorise a (d+1) x (d+1)
matrix. Here the LP is put in standard form with bounds,

    A x + t 1 + s = b,   x in [lo, hi],  t in [t_lo, t_cap],  s >= 0,

and a primal-dual Mehrotra method on that form solves a *rows x rows* normal system
``A Theta A^T + ...`` per step. Rows come factored as ``A = C U``: ``U`` (r x d, shared by all
lanes: the first layer's weights, see ``lrenum.core.frame``) and per-lane coefficients ``C``
(m x r), so a step costs O(r^2 d + m r^2 + m^3) and no lane ever holds an m x d matrix.

The box carries no margin: ``t* > 0`` still holds exactly when the region has interior points
(a point of the closed box with all rows strict can be moved into the open box), and the caller
moves the returned point slightly inward to get a witness with a positive radius.

The start is feasible (primal and dual), so ``t`` is a lower bound on ``t*`` throughout and the
row duals give an upper bound by weak duality over the box; a lane stops once the sign of ``t*``
is settled. Answers are proposals, certified by the caller.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from .linalg import IPM_GAP_TOL, IPM_REG, IPM_STEP, RUNNING, final_status, lane_code, max_step, spd_factor, spd_solve


def _solve_one(C, b, mask, x0, U, lo, hi, t_cap, decide_tol, iters: int):
    """One LP. C: (m, r) unit rows (||C_i U|| = 1), b: (m,), mask: (m,), x0: (d,) inside the box."""
    m, r = C.shape
    dtype = C.dtype
    n = mask.astype(dtype)                      # coefficient of t per row (0 on masked rows)
    C = jnp.where(mask[:, None], C, 0.0)
    b = jnp.where(mask, b, 1.0)                 # masked rows read s_i = 1 - 0: harmless
    width = hi - lo
    Ax = lambda x: C @ (U @ x)
    ATy = lambda y: U.T @ (C.T @ y)

    # ---- feasible, roughly centred start
    x = lo + jnp.clip((x0 - lo) / width, 0.05, 0.95) * width
    slack = jnp.where(mask, b - Ax(x), jnp.inf)
    scale = jnp.maximum(1.0, jnp.max(jnp.abs(jnp.where(mask, b, 0.0))))
    t = jnp.minimum(jnp.min(slack), t_cap) - 0.5 * scale
    t_lo = t - (t_cap - t) - scale
    s = b - Ax(x) - n * t
    m_eff = jnp.maximum(jnp.sum(n), 1.0)
    y = jnp.full(m, -1.0 / m_eff, dtype)
    g = ATy(y)
    a = 1.0 / width
    zl_x, zu_x = a + jnp.maximum(-g, 0.0), a + jnp.maximum(g, 0.0)     # zl - zu = -A^T y
    zt = 1.0 / (t_cap - t_lo)
    zl_t, zu_t = zt + jnp.maximum(-(1.0 + n @ y), 0.0), zt + jnp.maximum(1.0 + n @ y, 0.0)
    zl_s = -y
    n_comp = 2 * x.shape[0] + 2 + m
    tol = IPM_GAP_TOL if dtype == jnp.float64 else jnp.finfo(dtype).eps * 64

    def newton(state, Theta_x, Theta_t, Theta_s, L, rp, rd_x, rd_t, rd_s, rl, ru):
        """Direction for complementarity targets rl (lower bounds) and ru (upper bounds)."""
        x, t, s, y, zl_x, zu_x, zl_t, zu_t, zl_s = state
        rh_x = rd_x - rl[0] / (x - lo) + ru[0] / (hi - x)
        rh_t = rd_t - rl[1] / (t - t_lo) + ru[1] / (t_cap - t)
        rh_s = rd_s - rl[2] / s
        rhs = rp + C @ (U @ (Theta_x * rh_x)) + n * (Theta_t * rh_t) + Theta_s * rh_s
        dy = spd_solve(L, rhs)
        dx = Theta_x * (ATy(dy) - rh_x)
        dt = Theta_t * (n @ dy - rh_t)
        ds = Theta_s * (dy - rh_s)
        dzl_x = (rl[0] - zl_x * dx) / (x - lo)
        dzu_x = (ru[0] + zu_x * dx) / (hi - x)
        dzl_t = (rl[1] - zl_t * dt) / (t - t_lo)
        dzu_t = (ru[1] + zu_t * dt) / (t_cap - t)
        dzl_s = (rl[2] - zl_s * ds) / s
        return dx, dt, ds, dy, dzl_x, dzu_x, dzl_t, dzu_t, dzl_s

    def steps(state, d):
        x, t, s, y, zl_x, zu_x, zl_t, zu_t, zl_s = state
        dx, dt, ds, dy, dzl_x, dzu_x, dzl_t, dzu_t, dzl_s = d
        ap = jnp.minimum(jnp.minimum(max_step(x - lo, dx), max_step(hi - x, -dx)),
                         jnp.minimum(jnp.minimum(max_step((t - t_lo)[None], dt[None]), max_step((t_cap - t)[None], -dt[None])),
                                     max_step(s, ds)))
        ad = jnp.minimum(jnp.minimum(max_step(zl_x, dzl_x), max_step(zu_x, dzu_x)),
                         jnp.minimum(jnp.minimum(max_step(zl_t[None], dzl_t[None]), max_step(zu_t[None], dzu_t[None])),
                                     max_step(zl_s, dzl_s)))
        return ap, ad

    def body(carry):
        state, it, _code = carry
        x, t, s, y, zl_x, zu_x, zl_t, zu_t, zl_s = state
        Axx = Ax(x)
        rp = b - Axx - n * t - s
        rd_x = -ATy(y) - zl_x + zu_x
        rd_t = -1.0 - n @ y - zl_t + zu_t
        rd_s = -y - zl_s
        cl = ((x - lo) * zl_x, (t - t_lo) * zl_t, s * zl_s)
        cu = ((hi - x) * zu_x, (t_cap - t) * zu_t)
        mu = (jnp.sum(cl[0]) + cl[1] + jnp.sum(cl[2]) + jnp.sum(cu[0]) + cu[1]) / n_comp
        # Bounds that hold whatever rounding did to the iterate: the margin x really has (lower),
        # and weak duality over the box and t <= t_cap with lam = -y >= 0 scaled to sum(lam) <= 1 (upper)
        t_low = jnp.minimum(t, jnp.min(jnp.where(mask, b - Axx, jnp.inf)))
        lam = jnp.maximum(-y, 0.0) * n
        lam = lam / jnp.maximum(1.0, n @ lam)
        v = ATy(lam)
        t_up = lam @ b + jnp.sum(jnp.maximum(-v * lo, -v * hi)) + t_cap * (1.0 - n @ lam)
        decided = (decide_tol > 0) & (((t_low > decide_tol) & (t_low > 0.5 * t_up)) | (t_up < -decide_tol))
        # converged: the bounds meet, or complementarity is gone (late iterations only lose accuracy)
        converged = (t_up - t_low < tol * jnp.maximum(scale, jnp.abs(t_low))) | (mu < tol * tol * scale)
        Theta_x = 1.0 / (zl_x / (x - lo) + zu_x / (hi - x))
        Theta_t = 1.0 / (zl_t / (t - t_lo) + zu_t / (t_cap - t))
        Theta_s = s / zl_s
        K = (U * Theta_x[None, :]) @ U.T
        N = C @ K @ C.T + Theta_t * jnp.outer(n, n) + jnp.diag(Theta_s)
        N = N + jnp.eye(m, dtype=dtype) * (IPM_REG * (1.0 + jnp.trace(N)))
        L = spd_factor(N)
        aff = newton(state, Theta_x, Theta_t, Theta_s, L, rp, rd_x, rd_t, rd_s,
                     tuple(-c for c in cl), tuple(-c for c in cu))
        ap, ad = steps(state, aff)
        dx, dt, ds, _, dzl_x, dzu_x, dzl_t, dzu_t, dzl_s = aff
        mu_aff = (jnp.sum((x - lo + ap * dx) * (zl_x + ad * dzl_x)) + (t - t_lo + ap * dt) * (zl_t + ad * dzl_t)
                  + jnp.sum((s + ap * ds) * (zl_s + ad * dzl_s)) + jnp.sum((hi - x - ap * dx) * (zu_x + ad * dzu_x))
                  + (t_cap - t - ap * dt) * (zu_t + ad * dzu_t)) / n_comp
        sigma = jnp.clip((mu_aff / mu) ** 3, 0.0, 1.0)
        rl = (sigma * mu - cl[0] - dx * dzl_x, sigma * mu - cl[1] - dt * dzl_t, sigma * mu - cl[2] - ds * dzl_s)
        ru = (sigma * mu - cu[0] + dx * dzu_x, sigma * mu - cu[1] + dt * dzu_t)
        d = newton(state, Theta_x, Theta_t, Theta_s, L, rp, rd_x, rd_t, rd_s, rl, ru)
        ap, ad = steps(state, d)
        ap, ad = IPM_STEP * ap, IPM_STEP * ad
        dx, dt, ds, dy, dzl_x, dzu_x, dzl_t, dzu_t, dzl_s = d
        new = (x + ap * dx, t + ap * dt, s + ap * ds, y + ad * dy, zl_x + ad * dzl_x, zu_x + ad * dzu_x,
               zl_t + ad * dzl_t, zu_t + ad * dzu_t, zl_s + ad * dzl_s)
        ok = jnp.all(jnp.array([jnp.all(jnp.isfinite(v_)) for v_ in new]))
        code = lane_code(decided | converged, ok)
        keep = code != RUNNING
        state = tuple(jnp.where(keep, old, nw) for old, nw in zip(state, new))
        return state, it + 1, code

    def cond(carry):
        return (carry[1] < iters) & (carry[2] == RUNNING)

    state0 = (x, t, s, y, zl_x, zu_x, zl_t, zu_t, zl_s)
    state, it, code = jax.lax.while_loop(cond, body, (state0, jnp.zeros((), jnp.int32),
                                                      jnp.full((), RUNNING, jnp.int8)))
    x, t, s, y = state[:4]
    # report the margin x really has (rounding may have drifted the iterate off A x + t + s = b)
    t = jnp.minimum(t, jnp.min(jnp.where(mask, b - Ax(x), jnp.inf)))
    lam = jnp.maximum(-y, 0.0) * n
    lam = lam / jnp.maximum(1.0, n @ lam)
    return t, x, lam, final_status(code), it


@partial(jax.jit, static_argnames=("iters",))
def margin_lp_box(C: jax.Array, b: jax.Array, mask: jax.Array, x0: jax.Array, U: jax.Array, lo: jax.Array,
                  hi: jax.Array, t_cap: jax.Array, decide_tol: jax.Array = 0.0, iters: int = 40):
    """Solve a batch of box-bounded margin LPs.

    Parameters
    ----------
    C : (B, m, r) rows in basis coordinates, normalised so that ``||C_i U||_2 = 1``; b : (B, m);
    mask : (B, m) bool, rows in use; x0 : (B, d) a start inside the box (moved 5% inward);
    U : (r, d) the basis, shared; lo, hi : (d,) the box; t_cap : cap on t;
    decide_tol : a lane stops once t* is known to be above ``decide_tol`` (with a point within a
    factor 2 of the optimum) or below ``-decide_tol``; 0 solves every lane fully.

    Returns
    -------
    t : (B,) margin; x : (B, d) a point of the box with every row's slack >= t (not moved off
    the box faces); y : (B, m) row duals >= 0 (sum <= 1) for the normalised rows; status : (B,)
    int8 and iterations : (B,) int32 as in :func:`lrenum.kernels.lp_dense.margin_lp_dense`.
    """
    t_cap = jnp.asarray(t_cap, C.dtype)
    decide_tol = jnp.asarray(decide_tol, C.dtype)
    return jax.vmap(lambda c, bb, mk, x: _solve_one(c, bb, mk, x, U, lo, hi, t_cap, decide_tol, iters))(C, b, mask, x0)


@partial(jax.jit, static_argnames=("iters",))
def margin_lp_box_lanes(C: jax.Array, b: jax.Array, mask: jax.Array, x0: jax.Array, U: jax.Array, lo: jax.Array,
                        hi: jax.Array, t_cap: jax.Array, decide_tol: jax.Array, iters: int = 40):
    """:func:`margin_lp_box` with a box, cap and tolerance per lane: ``lo, hi`` (B, d), ``t_cap``
    and ``decide_tol`` (B,). Lanes of many small domains (the boxes around many inputs,
    :mod:`lrenum.lp.pool`) share one call; the basis ``U`` is still shared."""
    return jax.vmap(lambda c, bb, mk, x, l, h, tc, tol: _solve_one(c, bb, mk, x, U, l, h, tc, tol, iters))(
        C, b, mask, x0, lo, hi, t_cap, decide_tol)
