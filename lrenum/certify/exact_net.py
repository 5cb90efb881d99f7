"""The network and its domain in exact rational arithmetic: rows and maps rebuilt from a pattern.

Used wherever float64 could not decide: exact emptiness, exact ranks, exact pre-activations of
neurons that float64 sees as zero. Maps of pattern prefixes are memoised, because the doubtful
decisions of one split share their parent's prefix.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Optional, Sequence

import numpy as np
from flint import fmpq, fmpq_mat

from ..lp.exact import ONE, ZERO, Row, q, q_matrix
from ..model.domain import Domain
from ..model.network import Network


class ExactNetwork:
    """Weights, biases, slopes and domain rows as exact rationals (built once per enumeration)."""

    def __init__(self, net: Network, domain: Domain):
        self.d = net.input_dim
        self.widths = net.hidden_widths
        self.W = [q_matrix(W) for W in net.weights]
        self.b = [q_matrix(b[:, None]) for b in net.biases]
        self.slopes = [[q(v) for v in a] for a in net.slopes]
        self.linear = [np.asarray(m, bool) for m in net.linear]     # carried units: no row, not in ranks
        self.net = net                                              # its winner-take-all groups' rule
        self.dom_rows: list[Row] = [([q(v) for v in domain.A[i]], q(domain.b[i])) for i in range(domain.A.shape[0])]
        self._map = lru_cache(maxsize=4096)(self._map_uncached)

    def _map_uncached(self, bits: tuple) -> tuple[fmpq_mat, fmpq_mat]:
        """Post-activation map ``h = M x + c`` after ``len(bits)`` layers (bits: tuple of 0/1 tuples)."""
        if not bits:
            eye = fmpq_mat(self.d, self.d, [ONE if i == k else ZERO for i in range(self.d) for k in range(self.d)])
            return eye, fmpq_mat(self.d, 1, [ZERO] * self.d)
        M, c = self._map(bits[:-1])
        l = len(bits) - 1
        G = self.W[l] * M
        g = self.W[l] * c + self.b[l]
        f = [ONE if bit else self.slopes[l][j] for j, bit in enumerate(bits[-1])]
        n, d = G.nrows(), G.ncols()
        Mn = fmpq_mat(n, d, [f[j] * G[j, k] for j in range(n) for k in range(d)])
        cn = fmpq_mat(n, 1, [f[j] * g[j, 0] for j in range(n)])
        return Mn, cn

    def affine_map(self, bits: Sequence[Sequence[bool]]) -> tuple[fmpq_mat, fmpq_mat]:
        """Exact post-activation map of the last given layer on the region of ``bits``."""
        return self._map(tuple(tuple(int(v) for v in layer) for layer in bits))

    def pre_activation(self, bits: Sequence[Sequence[bool]], j: int) -> tuple[list, fmpq]:
        """Exact ``(G, g)`` of neuron j of the layer after ``bits``: z = G . x + g on the region."""
        M, c = self.affine_map(bits)
        l = len(bits)
        G = self.W[l] * M
        g = self.W[l] * c + self.b[l]
        return [G[j, k] for k in range(self.d)], g[j, 0]

    def region_rows(self, signs: Sequence[Sequence[int]], order: Optional[Sequence[int]] = None
                    ) -> Optional[list[Row]]:
        """Exact rows ``a . x < b`` of the cell with the given signs, or None if it is empty.

        ``signs[l][j]`` is +1 (active), -1 (inactive) or 0 (no constraint) for neuron j of hidden
        layer l+1. A neuron whose exact pre-activation is constant on the cell gives no row; if
        its constant contradicts its sign (active needs > 0; constant 0 is inactive) the cell is
        empty. In a winner-take-all group with an active unit t, an inactive unit j's row is
        ``z_j - z_t < 0`` instead (:meth:`Network.group_reference`). The domain's rows come first;
        then one row per neuron, in neuron order, or in ``order`` (flat neuron indices) to line up
        with a float row layout.
        """
        by_neuron: dict = {}
        prefix: list = []
        offset = 0
        for l, s in enumerate(signs):
            M, c = self._map(tuple(prefix))
            G = self.W[l] * M
            g = self.W[l] * c + self.b[l]
            ref = self.net.group_reference(l, np.asarray(s))
            for j in range(G.nrows()):
                sj = int(s[j])
                if self.linear[l][j]:
                    by_neuron[offset + j] = ([ZERO] * self.d, ONE)       # a linear unit constrains nothing
                    continue
                a = [G[j, k] for k in range(self.d)]
                gj = g[j, 0]
                t = int(ref[j])
                if t >= 0:                        # a group's loser: z_j - z_t < 0
                    a = [v - G[t, k] for k, v in enumerate(a)]
                    gj = gj - g[t, 0]
                    if not any(a):
                        if gj > 0 or (gj == 0 and j < t):     # a tie goes to the lower index
                            return None
                        by_neuron[offset + j] = ([ZERO] * self.d, ONE)
                    else:
                        by_neuron[offset + j] = (a, -gj)
                    continue
                if not any(a):
                    if (sj > 0 and not gj > 0) or (sj < 0 and gj > 0):
                        return None
                    by_neuron[offset + j] = ([ZERO] * self.d, ONE)   # 0 < 1: no constraint
                elif sj > 0:
                    by_neuron[offset + j] = ([-v for v in a], gj)
                elif sj < 0:
                    by_neuron[offset + j] = (a, -gj)
            prefix.append(tuple(1 if v > 0 and not self.linear[l][j] else 0 for j, v in enumerate(s)))
            offset += len(s)
        keys = sorted(by_neuron) if order is None else [int(k) for k in order]
        return list(self.dom_rows) + [by_neuron[k] for k in keys]

    def rank_after(self, bits: Sequence[Sequence[bool]]) -> int:
        """Exact rank of the Jacobian of the last given layer's output on the region."""
        M, _ = self.affine_map(bits)
        real = np.flatnonzero(~self.linear[len(bits) - 1]) if bits else np.arange(M.nrows())
        if real.size < M.nrows():
            M = fmpq_mat(real.size, M.ncols(), [M[int(i), k] for i in real for k in range(M.ncols())])
        return int(M.rank())


def signs_from_bits(bits: np.ndarray, widths: Sequence[int]) -> list[np.ndarray]:
    """Per-layer sign lists (+1 active, -1 inactive) of a flat pattern covering whole layers."""
    out, off = [], 0
    for n in widths:
        if off + n > len(bits):
            break
        out.append(np.where(bits[off:off + n], 1, -1))
        off += n
    return out
