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


def _solve_one(A, b, mask, x0, t_cap, iters: int):
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

    def direction(L, D, rp, rd, s, lam, rc):
        rhs = -rd - F.T @ (D * rp - rc / s)
        du = jax.scipy.linalg.cho_solve((L, True), rhs)
        dlam = D * (F @ du + rp) - rc / s
        ds = -(rc + s * dlam) / lam
        return du, ds, dlam

    def body(_, state):
        u, s, lam = state
        rd = F.T @ lam + c
        rp = F @ u + s - h
        mu = (s @ lam) / n_rows
        done = (mu < tol * scale) & (jnp.max(jnp.abs(rd)) < tol)
        D = lam / s
        H = F.T @ (D[:, None] * F)
        H = H + eye * (eps * (1.0 + jnp.trace(H)))
        L = jnp.linalg.cholesky(H)
        du_a, ds_a, dl_a = direction(L, D, rp, rd, s, lam, s * lam)
        ap = _max_step(s, ds_a)
        ad = _max_step(lam, dl_a)
        mu_aff = ((s + ap * ds_a) @ (lam + ad * dl_a)) / n_rows
        sigma = (mu_aff / mu) ** 3
        rc = s * lam + ds_a * dl_a - sigma * mu
        du, ds, dl = direction(L, D, rp, rd, s, lam, rc)
        ap = 0.99 * _max_step(s, ds)
        ad = 0.99 * _max_step(lam, dl)
        u_n, s_n, lam_n = u + ap * du, s + ap * ds, lam + ad * dl
        ok = jnp.all(jnp.isfinite(u_n)) & jnp.all(jnp.isfinite(lam_n)) & jnp.all(s_n > 0) & jnp.all(lam_n > 0)
        keep = done | ~ok
        return (jnp.where(keep, u, u_n), jnp.where(keep, s, s_n), jnp.where(keep, lam, lam_n))

    u, s, lam = jax.lax.fori_loop(0, iters, body, (u, s, lam))
    y = jnp.where(mask, lam[:m], 0.0)
    return u[d], u[:d], y


@partial(jax.jit, static_argnames=("iters",))
def margin_lp(A: jax.Array, b: jax.Array, mask: jax.Array, x0: jax.Array, t_cap: jax.Array,
              iters: int = 40):
    """Solve a batch of margin LPs.

    Parameters
    ----------
    A : (B, m, d) unit-norm constraint rows; b : (B, m); mask : (B, m) bool, rows in use;
    x0 : (B, d) any starting point (feasibility is not needed); t_cap : scalar upper cap on t,
    which keeps LPs over unbounded regions bounded.

    Returns
    -------
    t : (B,) proposed optimal margin, x : (B, d) a max-margin point, y : (B, m) dual weights
    of the rows (0 on masked rows).
    """
    t_cap = jnp.asarray(t_cap, A.dtype)
    return jax.vmap(lambda a, bb, mk, x: _solve_one(a, bb, mk, x, t_cap, iters))(A, b, mask, x0)
