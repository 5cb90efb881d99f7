"""Step 1 of a split: each region's next-layer hyperplanes (from its affine map) and, once its
children's signs are known, their post-activation maps.

Shapes are bucketed so that a run compiles one propagation shape: every layer's weights are
zero-padded to the widest layer and batches to the device bucket.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..lp.device import flush_subnormals
from ..runtime import device_call
from ..tolerances import ETA, SAFETY, U64
from .frame import Frame
from .state import AffineMaps, Hyperplanes, Regions


class Propagator:
    """Next-layer hyperplanes of region batches, on the device."""

    def __init__(self, frame: Frame, device, batch: Optional[int] = None):
        """``batch``: regions per device call (every call is padded to it); default the LP batch.
        Many concurrent walks of few regions each (:mod:`lrenum.counting.local`) take a small one:
        64 walks padding to 256 regions held ~1 GB of padded maps at MNIST size."""
        from ..lp.device import default_lp_batch

        self.frame = frame
        self.device = device
        self.batch = batch or frame.settings.lp_batch or default_lp_batch(device)
        net = frame.net
        n_max = max(frame.widths)
        self.n_in = max(n_max, frame.r)
        # layer 1 is special-cased (its hyperplanes are its weights), so only layers 2.. are padded
        self.W = [None] + [np.pad(W, [(0, n_max - W.shape[0]), (0, self.n_in - W.shape[1])])
                           for W in net.weights[1:-1]]
        self.b = [None] + [np.pad(b, (0, n_max - b.shape[0])) for b in net.biases[1:-1]]
        # found here, not on the device, which may read a subnormal weight as zero even in a comparison
        self.nzW = [None] + [(W != 0).astype(np.float64) for W in self.W[1:]]
        self.b_subnormal = [None] + [((b != 0) & (np.abs(b) < ETA)).astype(np.float64) for b in self.b[1:]]

    def __call__(self, P: Regions) -> Hyperplanes:
        from lrenum.kernels.propagate import propagate

        frame = self.frame
        l, B = P.layer, len(P)
        n = frame.widths[l]
        if l == 0:   # the first layer's hyperplanes are its weights, exactly (in basis coordinates)
            G = np.broadcast_to(frame.layer1, (B, n, frame.r)).copy()
            g = np.broadcast_to(frame.net.biases[0], (B, n)).copy()
            return Hyperplanes(G, g, np.zeros((B, n)), np.zeros((B, n)))
        parts = []
        M = P.maps
        pad_in = self.n_in - M.M.shape[1]
        for start in range(0, B, self.batch):
            stop = min(B, start + self.batch)
            k = stop - start
            pad = [(0, self.batch - k), (0, pad_in)]
            # no subnormal numbers go to the device: what is flushed moves into the maps' bounds
            Mk, movedM = flush_subnormals(M.M[start:stop])
            ck, movedc = flush_subnormals(M.c[start:stop])
            eMk = M.eM[start:stop] + movedM.sum(axis=2) * (1 + 4 * U64 * Mk.shape[2]) if movedM.any() else M.eM[start:stop]
            eck = M.ec[start:stop] + movedc if movedc.any() else M.ec[start:stop]
            args = (np.pad(Mk, pad + [(0, 0)]),) + tuple(np.pad(a, pad) for a in (ck, eMk, eck))
            with device_call(self.device):
                res = [np.asarray(o) for o in propagate(*args, self.W[l], self.b[l], self.nzW[l], self.b_subnormal[l])]
            parts.append([o[:k, :n] for o in res])
        return Hyperplanes(*(np.concatenate(p) for p in zip(*parts)))


def post_activation(hyp: Hyperplanes, active: np.ndarray, slopes: np.ndarray) -> AffineMaps:
    """The layer's map ``h = f * z`` on each region: f = 1 where active, else the neuron's slope.

    Multiplying by a slope other than 0 or 1 rounds once: one more ulp of |f G| in the bound.
    """
    f = np.where(active, 1.0, slopes[None, :])
    exact_f = (f == 0.0) | (f == 1.0)
    M = hyp.G * f[:, :, None]
    c = hyp.g * f
    eM = np.abs(f) * hyp.eG + np.where(exact_f, 0.0, U64 * np.abs(M).sum(axis=2))
    ec = np.abs(f) * hyp.eg + np.where(exact_f, 0.0, U64 * np.abs(c))
    return AffineMaps(M, c, eM, ec)


def against_winners(hyp: Hyperplanes, ref: np.ndarray, const: np.ndarray) -> tuple[Hyperplanes, np.ndarray]:
    """The hyperplanes a region's rows use in a layer with winner-take-all groups: unit j's own,
    or ``z_j - z_t`` where ``ref[c, j] = t >= 0`` (:meth:`lrenum.model.network.Network.group_reference`),
    with ``const`` (C, n) of the units recomputed for the differences.

    ``hyp`` is per cell (C, n, r). The difference of two floats rounds once, by at most
    ``u |difference|`` (an exact subtraction where it underflows): the bounds add the two
    operands' bounds and that ulp. A difference counts as constant (no row) only where it is
    exactly zero with no error, a tie (allowed only against a lower-index winner:
    :func:`tied_against_later`); else it gets a row, perhaps with a zero normal, whose value then
    decides it like any row's."""
    pick = ref >= 0
    if not pick.any():
        return hyp, const
    C = np.arange(ref.shape[0])[:, None]
    t = np.where(pick, ref, 0)
    Gt, gt, eGt, egt = hyp.G[C, t], hyp.g[C, t], hyp.eG[C, t], hyp.eg[C, t]
    Gd = hyp.G - Gt
    gd = hyp.g - gt
    eGd = (hyp.eG + eGt + U64 * np.abs(Gd).sum(axis=2)) * SAFETY
    egd = (hyp.eg + egt + U64 * np.abs(gd)) * SAFETY
    out = Hyperplanes(np.where(pick[:, :, None], Gd, hyp.G), np.where(pick, gd, hyp.g),
                      np.where(pick, eGd, hyp.eG), np.where(pick, egd, hyp.eg))
    tie = ~np.any(Gd != 0, axis=2) & (eGd == 0) & (gd == 0) & (egd == 0)
    return out, np.where(pick, tie, const)


def tied_against_later(ref: np.ndarray, const: np.ndarray) -> np.ndarray:
    """(C,) cells where a group's loser ties exactly with a winner of higher index: on a tie the
    lower index wins, so no such cell exists (``const`` as :func:`against_winners` returns it)."""
    j = np.arange(ref.shape[1])[None, :]
    return np.any((ref > j) & const, axis=1)
