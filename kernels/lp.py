"""Batched interior-margin LP: ``max t  s.t.  a_i . x + t <= b_i`` (rows normalised).

Why an interior-point method: a dense primal-dual IPM needs a small, nearly
constant number of iterations, so a fixed-count loop under ``vmap`` wastes little
work on fast lanes, unlike first-order methods whose lanes run as long as the
slowest one. Each iteration solves one ``(d+1) x (d+1)`` normal system.

The start is primal feasible by construction (``t`` is chosen far below every
slack), so only dual feasibility and the gap have to be driven to zero. Lanes that
have converged are frozen, which keeps ill-conditioned late steps from producing
NaNs in lanes that are already done.

Answers are *proposals*: ``t`` says which side of zero the margin is, ``x`` is a
max-margin point and ``y`` (>= 0) is a dual vector usable in a safe dual bound.
The caller certifies them in float64 (:mod:`lrenum.certify`).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp


def _max_step(v: jax.Array, dv: jax.Array) -> jax.Array:
    """Largest alpha in [0, 1] with v + alpha * dv >= 0 (v > 0)."""
    ratio = jnp.where(dv < 0, -v / jnp.where(dv < 0, dv, -1.0), jnp.inf)
    return jnp.minimum(1.0, jnp.min(ratio))


UNROLL_MAX = 12  # up to this size the normal equations are factorised by unrolled scalar code


def _spd_solve(H: jax.Array, rhs_list: list) -> list:
    """Solve ``H v = rhs`` for each rhs with H symmetric positive definite.

    For small systems an unrolled Cholesky factorisation is used: under vmap every scalar
    operation becomes one elementwise operation over the whole batch, which XLA runs far
    faster than a batch of tiny LAPACK calls. Larger systems use jnp.linalg.
    """
    n = H.shape[0]
    if n > UNROLL_MAX:
        L = jnp.linalg.cholesky(H)
        return [jax.scipy.linalg.cho_solve((L, True), r) for r in rhs_list]
    Lm = [[None] * n for _ in range(n)]
    for j in range(n):
        diag = H[j, j] - sum(Lm[j][k] * Lm[j][k] for k in range(j)) if j else H[j, j]
        Lm[j][j] = jnp.sqrt(jnp.maximum(diag, jnp.finfo(H.dtype).tiny))
        for i in range(j + 1, n):
            off = H[i, j] - sum(Lm[i][k] * Lm[j][k] for k in range(j)) if j else H[i, j]
            Lm[i][j] = off / Lm[j][j]
    out = []
    for r in rhs_list:
        y = [None] * n
        for i in range(n):
            acc = r[i] - sum(Lm[i][k] * y[k] for k in range(i)) if i else r[i]
            y[i] = acc / Lm[i][i]
        x = [None] * n
        for i in reversed(range(n)):
            acc = y[i] - sum(Lm[k][i] * x[k] for k in range(i + 1, n)) if i < n - 1 else y[i]
            x[i] = acc / Lm[i][i]
        out.append(jnp.stack(x))
    return out


def _solve_one(A, b, mask, x0, t_cap, x_bound, decide_tol, iters: int):
    """Solve one margin LP. A: (m, d) unit rows, b: (m,), mask: (m,) bool, x0: (d,)."""
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
    tol = jnp.sqrt(eps) * 1e-2 if dtype == jnp.float64 else eps * 64

    def finish(du, D, rp, s, lam, rc):
        dlam = D * (F @ du + rp) - rc / s
        ds = -(rc + s * dlam) / lam
        return du, ds, dlam

    def rhs_of(D, rp, rd, s, rc):
        return -rd - F.T @ (D * rp - rc / s)

    def body(state):
        u, s, lam, it, _ = state
        rd = F.T @ lam + c
        rp = F @ u + s - h
        mu = (s @ lam) / n_rows
        converged = (mu < tol * scale) & (jnp.max(jnp.abs(rd)) < tol)
        # The iterates stay primal feasible, so t = u[d] is a lower bound on t*; weak duality with
        # |x| <= x_bound gives an upper bound. Stop once the sign of t* is settled and, for a
        # positive margin, x is within a factor 2 of the best margin (a good witness).
        t_low = u[d]
        t_up = (h @ lam + jnp.sum(jnp.abs(rd[:d])) * x_bound) / jnp.maximum(1.0 + rd[d], 1e-3)
        decided = (decide_tol > 0) & (((t_low > decide_tol) & (t_low > 0.5 * t_up)) | (t_up < -decide_tol))
        done = converged | decided
        D = lam / s
        H = F.T @ (D[:, None] * F)
        H = H + eye * (eps * (1.0 + jnp.trace(H)))
        # predictor and corrector share H; the corrector's right-hand side is linear in rc, so
        # solve for the two pieces it is made of together with the predictor's
        rc_a = s * lam
        base = rhs_of(D, rp, rd, s, rc_a)
        unit = F.T @ (1.0 / s)
        du_a, du_unit = _spd_solve(H, [base, unit])
        du_a, ds_a, dl_a = finish(du_a, D, rp, s, lam, rc_a)
        ap = _max_step(s, ds_a)
        ad = _max_step(lam, dl_a)
        mu_aff = ((s + ap * ds_a) @ (lam + ad * dl_a)) / n_rows
        sigma = (mu_aff / mu) ** 3
        extra = ds_a * dl_a - sigma * mu
        # rhs(rc_a + extra) = base + F^T (extra / s); split extra into its two parts
        cross = F.T @ (ds_a * dl_a / s)
        du_cross = _spd_solve(H, [cross])[0]
        du = du_a + du_cross - sigma * mu * du_unit
        du, ds, dl = finish(du, D, rp, s, lam, rc_a + extra)
        ap = 0.99 * _max_step(s, ds)
        ad = 0.99 * _max_step(lam, dl)
        u_n, s_n, lam_n = u + ap * du, s + ap * ds, lam + ad * dl
        ok = jnp.all(jnp.isfinite(u_n)) & jnp.all(jnp.isfinite(lam_n)) & jnp.all(s_n > 0) & jnp.all(lam_n > 0)
        keep = done | ~ok
        return (jnp.where(keep, u, u_n), jnp.where(keep, s, s_n), jnp.where(keep, lam, lam_n), it + 1, keep)

    def cond(state):
        return (state[3] < iters) & ~state[4]

    # Under vmap the loop runs until every lane has converged (or stalled), at most ``iters``.
    state = (u, s, lam, jnp.zeros((), jnp.int32), jnp.zeros((), bool))
    u, s, lam, _, _ = jax.lax.while_loop(cond, body, state)
    y = jnp.where(mask, lam[:m], 0.0)
    return u[d], u[:d], y


@partial(jax.jit, static_argnames=("iters",))
def margin_lp(A: jax.Array, b: jax.Array, mask: jax.Array, x0: jax.Array, t_cap: jax.Array,
              x_bound: jax.Array = 1e6, decide_tol: jax.Array = 0.0, iters: int = 40):
    """Solve a batch of margin LPs.

    Parameters
    ----------
    A : (B, m, d) unit-norm constraint rows; b : (B, m); mask : (B, m) bool, rows in use;
    x0 : (B, d) any starting point (feasibility is not needed); t_cap : scalar upper cap on t,
    which keeps LPs over unbounded regions bounded; x_bound : bound on |x_k| over the domain
    (for the early-stopping dual bound); decide_tol : a lane stops early once t* is known to be
    above ``decide_tol`` (with a point within a factor 2 of the optimum) or below ``-decide_tol``;
    0 solves every lane to full accuracy.

    Returns
    -------
    t : (B,) proposed optimal margin, x : (B, d) a max-margin point, y : (B, m) dual weights
    of the rows (0 on masked rows).
    """
    t_cap = jnp.asarray(t_cap, A.dtype)
    x_bound = jnp.asarray(x_bound, A.dtype)
    decide_tol = jnp.asarray(decide_tol, A.dtype)
    return jax.vmap(lambda a, bb, mk, x: _solve_one(a, bb, mk, x, t_cap, x_bound, decide_tol, iters))(A, b, mask, x0)
