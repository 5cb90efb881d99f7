"""Rebuild a region's splitter state (rows, maps, error bounds) from its stored pattern.

Used to resume an interrupted run and to verify files: the same propagation as the splitter
(the layer-1 hyperplanes are the weights, later ones come from the device kernel) applied with
the stored activation bits.
"""

from __future__ import annotations

import numpy as np

from . import _jax  # noqa: F401
from .regions import RegionBatch
from lrenum.kernels.propagate import propagate


def region_maps(net, bits: np.ndarray):
    """Per-layer pre-activation maps of regions with full patterns ``bits`` (B, N).

    Returns a list over hidden layers of (G, g, eG, eg) and the last post-activation (M, c, eM, ec).
    """
    B, d = bits.shape[0], net.input_dim
    M, c = np.broadcast_to(np.eye(d), (B, d, d)).copy(), np.zeros((B, d))
    eM, ec = np.zeros((B, d)), np.zeros((B, d))
    out, off = [], 0
    for l, (W, b) in enumerate(zip(net.weights[:-1], net.biases[:-1])):
        n = W.shape[0]
        if l == 0:
            G, g = np.broadcast_to(W, (B, n, d)).copy(), np.broadcast_to(b, (B, n)).copy()
            eG, eg = np.zeros((B, n)), np.zeros((B, n))
        else:
            G, g, eG, eg = (np.asarray(a) for a in propagate(M, c, eM, ec, W, b))
        out.append((G, g, eG, eg))
        act = bits[:, off:off + n]
        M, c, eM, ec = G * act[:, :, None], g * act, eG * act, eg * act
        off += n
    return out, (M, c, eM, ec)


def rebuild_regions(net, domain, bits, const, witness, radius, ranks, parent, ident) -> RegionBatch:
    """A :class:`RegionBatch` of layer ``L_l`` (the number of layers the patterns cover)."""
    B = bits.shape[0]
    n_layers = net.layers_covered(bits.shape[1])
    per_layer, (M, c, eM, ec) = region_maps(net.truncated(n_layers), bits)
    s = np.where(bits, 1.0, -1.0)
    G = np.concatenate([p[0] for p in per_layer], axis=1)
    g = np.concatenate([p[1] for p in per_layer], axis=1)
    eG = np.concatenate([p[2] for p in per_layer], axis=1)
    eg = np.concatenate([p[3] for p in per_layer], axis=1)
    m = domain.A.shape[0]
    A = np.concatenate([np.broadcast_to(domain.A, (B, m, net.input_dim)), -s[:, :, None] * G], axis=1)
    b = np.concatenate([np.broadcast_to(domain.b, (B, m)), s * g], axis=1)
    ea = np.concatenate([np.zeros((B, m)), eG], axis=1)
    eb = np.concatenate([np.zeros((B, m)), eg], axis=1)
    rmask = np.concatenate([np.ones((B, m), bool), ~const], axis=1)
    return RegionBatch(layer=n_layers, bits=bits, const=const, A=A, b=b, ea=ea, eb=eb, rmask=rmask,
                       M=M, c=c, eM=eM, ec=ec, witness=witness, radius=radius, rank=ranks,
                       parent=parent, ident=ident)
