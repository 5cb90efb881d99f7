"""Small dense SPD solves for one lane of a vmapped kernel.

Measured on the 2-core CPU (2026-11-22), per batch of 256 margin LPs:
``jnp.linalg.cholesky`` + ``cho_solve`` ran 7.6 / 12 / 15 ms at d = 5 / 9 / 12 and compiled in
about 1 s; fully unrolled scalar code ran as fast but its compile time grows as n^3 (3 s at
n = 10); ``fori_loop`` and column-unrolled versions compiled in ~1.3 s but ran 3-5x slower. So
the library factorisation is used above UNROLL_MAX. Below it (d <= 4 in the dense kernel), the
library call's per-lane overhead dominates: unrolled scalar code made family (a) of bench.py
5-10% faster (a-d4-n24 0.705 -> 0.672 s, a-d2-n64 1.30 -> 1.17 s) and compiles fast at n <= 5. (An XLA CPU
hang seen once with the library path in a long run on 2026-11-21 did not reproduce in the stress
test recorded in the same notes.)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


UNROLL_MAX = 5   # systems up to this size are factorised by unrolled scalar code (compile time grows as n^3)

# The interior-point kernels' own parameters (lp_dense, lp_box). They steer a proposal only: every
# answer is certified on the host, so no guarantee rests on them.
IPM_STEP = 0.99       # fraction of the step to the boundary (standard choice: keeps iterates strictly interior)
IPM_GAP_TOL = 1e-10   # relative gap at which a float64 lane counts as converged (sqrt(eps) * 1e-2 ~ 1.5e-10)
IPM_REG = 2.220446049250313e-16  # relative regularisation of normal matrices (one ulp of the trace): keeps Cholesky
                                 # defined as lanes converge; measured: 1e-13 already slowed convergence 3x

# Lane codes of a while loop under vmap: running, then the status it ends with (lrenum.lp.problem.LPStatus)
RUNNING, CONVERGED, ITERATION_LIMIT, FAILED = -1, 0, 1, 3


def lane_code(done: jax.Array, ok: jax.Array) -> jax.Array:
    """A lane's code after one step: converged (or decided) first, then a failed (non-finite) step."""
    return jnp.where(done, jnp.int8(CONVERGED), jnp.where(ok, jnp.int8(RUNNING), jnp.int8(FAILED)))


def final_status(code: jax.Array) -> jax.Array:
    """A lane still running when the loop ends has hit the iteration limit."""
    return jnp.where(code == RUNNING, jnp.int8(ITERATION_LIMIT), code)


def spd_factor(H: jax.Array) -> jax.Array:
    """Lower Cholesky factor of a symmetric positive definite ``H`` (callers regularise H)."""
    n = H.shape[-1]
    if n > UNROLL_MAX:
        return jnp.linalg.cholesky(H)
    L = [[None] * n for _ in range(n)]
    for j in range(n):
        diag = jnp.sqrt(H[j, j] - sum((L[j][k] * L[j][k] for k in range(j)), jnp.zeros((), H.dtype)))
        L[j][j] = diag
        for i in range(j + 1, n):
            L[i][j] = (H[i, j] - sum((L[i][k] * L[j][k] for k in range(j)), jnp.zeros((), H.dtype))) / diag
    zero = jnp.zeros((), H.dtype)
    return jnp.stack([jnp.stack([L[i][j] if j <= i else zero for j in range(n)]) for i in range(n)])


def spd_solve(L: jax.Array, R: jax.Array) -> jax.Array:
    """``H^{-1} R`` for R (n,) or (n, q), with ``L`` from :func:`spd_factor`."""
    n = L.shape[-1]
    if n > UNROLL_MAX:
        return jax.scipy.linalg.cho_solve((L, True), R)
    y = []
    for i in range(n):                       # L y = R
        acc = R[i] - sum((L[i, k] * y[k] for k in range(i)), jnp.zeros_like(R[i]))
        y.append(acc / L[i, i])
    x = [None] * n
    for i in reversed(range(n)):             # L^T x = y
        acc = y[i] - sum((L[k, i] * x[k] for k in range(i + 1, n)), jnp.zeros_like(y[i]))
        x[i] = acc / L[i, i]
    return jnp.stack(x)


def max_step(v: jax.Array, dv: jax.Array) -> jax.Array:
    """Largest alpha in [0, 1] with v + alpha * dv >= 0 (for v > 0)."""
    ratio = jnp.where(dv < 0, -v / jnp.where(dv < 0, dv, -1.0), jnp.inf)
    return jnp.minimum(1.0, jnp.min(ratio))
