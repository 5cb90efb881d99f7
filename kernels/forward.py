"""Batched forward passes for point sampling: activation patterns of many points at once.

Weights are passed padded to one width so that a network compiles one shape per batch
bucket; padded neurons have zero weights and biases and are cut off by the caller.
Patterns come back bit-packed (8 neurons per byte), which cuts device-to-host traffic 8x.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


@jax.jit
def packed_patterns(X, Ws, bs, slopes, live):
    """X: (B, d); Ws: (L, n, n_in) zero-padded; bs, slopes: (L, n); live: (L, n) bool, False for
    linear (carried) units and padding. Returns (B, L * ceil(n/8)) uint8.

    Layer l's input is the previous layer's post-activation (padded with zeros to n_in): z where
    z > 0, else slope * z (0 for ReLU, 1 for a linear unit). Linear units' bits are 0.
    """
    n_in = Ws.shape[2]
    h = jnp.pad(X, [(0, 0), (0, n_in - X.shape[1])])

    def layer(h, wbs):
        W, b, a, on = wbs
        z = h @ W.T + b
        hn = jnp.where(z > 0, z, a * z)
        return jnp.pad(hn, [(0, 0), (0, n_in - hn.shape[1])]), jnp.packbits((z > 0) & on, axis=1, bitorder="little")

    _, bits = jax.lax.scan(layer, h, (Ws, bs, slopes, live))
    return jnp.transpose(bits, (1, 0, 2)).reshape(X.shape[0], -1)
