"""Small dense SPD solves for one lane of a vmapped kernel.

Measured on the 2-core CPU (experiments/NOTES-gpu.md, v0.2), per batch of 256 margin LPs:
``jnp.linalg.cholesky`` + ``cho_solve`` ran 7.6 / 12 / 15 ms at d = 5 / 9 / 12 and compiled in
about 1 s; fully unrolled scalar code ran as fast but its compile time grows as n^3 (3 s at
n = 10); ``fori_loop`` and column-unrolled versions compiled in ~1.3 s but ran 3-5x slower. So
the library factorisation is used. (An XLA CPU hang seen once with it in a long run on
2026-11-21 did not reproduce in the stress test recorded in the same notes.)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def spd_factor(H: jax.Array) -> jax.Array:
    """Lower Cholesky factor of a symmetric positive definite ``H`` (callers regularise H)."""
    return jnp.linalg.cholesky(H)


def spd_solve(L: jax.Array, R: jax.Array) -> jax.Array:
    """``H^{-1} R`` for R (n,) or (n, q), with ``L`` from :func:`spd_factor`."""
    return jax.scipy.linalg.cho_solve((L, True), R)


def max_step(v: jax.Array, dv: jax.Array) -> jax.Array:
    """Largest alpha in [0, 1] with v + alpha * dv >= 0 (for v > 0)."""
    ratio = jnp.where(dv < 0, -v / jnp.where(dv < 0, dv, -1.0), jnp.inf)
    return jnp.minimum(1.0, jnp.min(ratio))
