"""Hyperplane propagation: each region's next-layer pre-activation map, with error bounds.

On a region whose layer-l post-activation is ``h = M y + c`` (``y = U x``, basis coordinates),
layer l+1's pre-activation is ``z = G y + g`` with ``G = W M`` and ``g = W c + b``. The bounds
returned with them (``eG >= ||G~_j - G_j||_1`` and ``eg >= |g~_j - g_j|``) propagate the errors of
``M, c`` and add the rounding of the products (gamma bound) and, for every product of two nonzero
numbers, the absolute error ETA it makes if it underflows (a tiny genuine gradient that rounds to
0 must not look like an exact zero), and for a subnormal weight, which the device may read as zero,
ETA times the other factor; they must be computed in float64.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lrenum.tolerances import ETA, SAFETY, gamma


@jax.jit
def propagate(M, c, eM, ec, W, b, nzW, b_subnormal):
    """M: (B, n_in, r), c: (B, n_in), eM/ec: (B, n_in); W: (n, n_in), b: (n,); nzW: (n, n_in)
    1.0 where W is nonzero and b_subnormal: (n,) 1.0 where b is subnormal, both found on the host
    (the device may read a subnormal as zero, in comparisons too). M and c must hold no
    subnormal numbers (the host flushes them into eM, ec).

    Returns G (B, n, r), g (B, n), eG (B, n), eg (B, n).
    """
    gam = gamma(W.shape[1] + 1)
    aW = jnp.abs(W)
    G = jnp.einsum("ji,bik->bjk", W, M)
    g = jnp.einsum("ji,bi->bj", W, c) + b
    M1 = jnp.sum(jnp.abs(M), axis=2)
    # a product that flushes errs by ETA; a subnormal weight read as zero (XLA:CPU runs with
    # denormals-are-zero) by ETA times its partner, in the products and in the bounds' own sums
    nnzM = jnp.sum((M != 0).astype(M.dtype), axis=2)
    nzc = (c != 0).astype(M.dtype)
    under_G = ETA * jnp.einsum("ji,bi->bj", nzW, nnzM + M1 + eM)
    under_g = ETA * (jnp.einsum("ji,bi->bj", nzW, nzc + jnp.abs(c) + ec) + b_subnormal)
    eG = SAFETY * (jnp.einsum("ji,bi->bj", aW, eM) + gam * jnp.einsum("ji,bi->bj", aW, M1) + under_G)
    eg = SAFETY * (jnp.einsum("ji,bi->bj", aW, ec) + gam * (jnp.einsum("ji,bi->bj", aW, jnp.abs(c)) + jnp.abs(b)) + under_g)
    return G, g, eG, eg
