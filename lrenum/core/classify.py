"""Step 2 of a split: what each next-layer neuron does on each parent region, where it is cheap.

* **constant**: its pre-activation does not depend on x on the region (exact zero gradient);
  float64 decides this when the gradient's error bound allows, exact arithmetic otherwise
  (a gradient float64 sees as zero may be a genuine tiny hyperplane);
* **cuts**: the witness ball reaches across its hyperplane (geometric test);
* **one-signed**: its sign is constant over the whole domain box (a float64 dual certificate
  with the new row alone: the closed-form range of an affine function over a box, O(r d));
  or, exactly from the pattern, it reads a single unit of the previous layer, which is active
  there, and no bias (:func:`_single_active_input`: a max pool's comparison ``b - a`` where
  ``a`` is inactive).

What is left needs an LP (:mod:`lrenum.core.arrangement`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..certify import floatcert
from ..certify.decide import DecisionStats
from .frame import Frame
from .state import Hyperplanes, Regions


class Classes(NamedTuple):
    """Per (parent, neuron) of the next layer."""

    const: np.ndarray      # (B, n) bool: constant on the region (exact)
    const_bit: np.ndarray  # (B, n) bool: its activation when constant (constant 0 is inactive)
    cuts: np.ndarray       # (B, n) bool: proposed to cut the region (certified with the children)
    open: np.ndarray       # (B, n) bool: undecided: needs an LP
    sign: np.ndarray       # (B, n) int8: +1/-1 at the witness (the side of every non-cutting neuron)
    norms: np.ndarray      # (B, n) x-space 2-norms of the hyperplanes' normals
    dist: np.ndarray       # (B, n) distance from the witness to each hyperplane
    unreliable: np.ndarray  # (B,) a genuine hyperplane below float64's resolution: split exactly


def classify(frame: Frame, P: Regions, hyp: Hyperplanes, stats: DecisionStats, certify_empty=None) -> Classes:
    """``certify_empty(C, b, eC, eb, y)``: the dual bound to use (the run's :class:`Decider`'s,
    on the device where it runs there); default the host's."""
    geo = frame.geometry
    if certify_empty is None:
        certify_empty = lambda C, b, eC, eb, y: floatcert.certify_empty(C, b, eC, eb, y, geo)
    G1 = np.abs(hyp.G).sum(axis=2)
    nonconst = G1 > hyp.eG
    const = (G1 == 0) & (hyp.eG == 0)
    const_bit = hyp.g > hyp.eg
    const_sure = (np.abs(hyp.g) > hyp.eg) | ((hyp.g == 0) & (hyp.eg == 0))
    lin = frame.net.linear[P.layer]
    if lin.any():     # linear units never split: treated as constant and inactive (no row, bit 0)
        nonconst &= ~lin
        const |= lin
        const_bit &= ~lin
        const_sure |= lin
    _settle_unsure(frame, P, hyp, nonconst, const, const_bit, const_sure, stats)

    norms = geo.row_norms(hyp.G)
    img = geo.image(P.witness)
    val = np.einsum("bjr,br->bj", hyp.G, img) + hyp.g
    sign = np.where(val >= 0, 1, -1).astype(np.int8)
    with np.errstate(divide="ignore", invalid="ignore"):
        dist = np.where(nonconst & (norms > 0), np.abs(val) / np.where(norms > 0, norms, 1.0), np.inf)
    cuts = nonconst & (dist < frame.settings.geo_safety * P.radius[:, None])
    open_ = nonconst & ~cuts
    follower, follower_sign = _single_active_input(frame, P, nonconst)
    if follower.any():
        cuts &= ~follower
        open_ &= ~follower
        sign = np.where(follower, follower_sign, sign).astype(np.int8)
    # a hyperplane whose sign is constant over the whole box cannot cut: the new row alone,
    # oriented to the far side, is infeasible over the box (dual weight 1 on it)
    ci, cj = np.nonzero(open_)
    if ci.size and geo.box is not None:
        s = sign[ci, cj].astype(np.float64)
        C = (s[:, None] * hyp.G[ci, cj])[:, None, :]
        b = (-s * hyp.g[ci, cj])[:, None]
        stable = certify_empty(C, b, hyp.eG[ci, cj][:, None], hyp.eg[ci, cj][:, None], np.ones((ci.size, 1)))
        open_[ci[stable], cj[stable]] = False
    stats.avoided += int(nonconst.sum() - open_.sum())
    sign = np.where(const, np.where(const_bit, 1, -1), sign).astype(np.int8)
    # exact arithmetic said "not constant" where the float gradient is within its own error:
    # float64 cannot place this hyperplane (its float normal may even be zero), so no float LP may
    unreliable = np.any(nonconst & ~(G1 > hyp.eG), axis=1)
    return Classes(const, const_bit, cuts, open_, sign, norms, dist, unreliable)


def _settle_unsure(frame, P, hyp, nonconst, const, const_bit, const_sure, stats) -> None:
    """Neurons whose constancy or constant sign float64 cannot tell: decide exactly (rare)."""
    unsure = (~nonconst & ~const) | (const & ~const_sure)
    for p, j in zip(*np.nonzero(unsure)):
        stats.exact_other += 1
        bits = [P.bits[p][frame.offsets[q]:frame.offsets[q + 1]] for q in range(P.layer)]
        Gj, gj = frame.exact.pre_activation(bits, j)
        if any(Gj):
            nonconst[p, j] = True   # a genuine (tiny) hyperplane
            const[p, j] = False
        else:
            const[p, j] = True
            nonconst[p, j] = False
            const_bit[p, j] = gj > 0



def _single_active_input(frame: Frame, P: Regions, nonconst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(B, n) bool and sign: neurons whose pre-activation on the region is ``w z_i`` for one
    active ReLU unit i of the previous layer, decided exactly from the weights and the pattern.

    On a region every other input of the neuron is exactly 0 (an inactive ReLU unit; a zero
    weight) and its bias is exactly 0, so ``z = w h_i = w z_i``; unit i is active, so ``z_i > 0``
    on the whole region and z has the sign of w there: it cannot cut. Without this, the
    comparison ``relu(z_b) - relu(z_a)`` of a max pool over post-ReLU values, on a region where a
    is inactive, has the region's own facet ``z_b = 0`` as its hyperplane: a tangency that only
    exact arithmetic could settle, in every such region."""
    l = P.layer
    B, n = nonconst.shape
    if l == 0 or not nonconst.any():
        return np.zeros((B, n), bool), np.zeros((B, n), np.int8)
    net = frame.net
    W, bias = net.weights[l], net.biases[l]
    lo, hi = frame.offsets[l - 1], frame.offsets[l]
    active = P.bits[:, lo:hi] & ~P.const[:, lo:hi]
    # inputs that are not exactly 0 on the region: active units, leaky or linear ones
    alive = active | (net.slopes[l - 1] != 0)[None, :] | net.linear[l - 1][None, :] | P.const[:, lo:hi]
    nz = W != 0
    count = alive.astype(np.int32) @ nz.T.astype(np.int32)
    one = nonconst & (count == 1) & (bias == 0)[None, :]
    if not one.any():
        return one, np.zeros((B, n), np.int8)
    pi, pj = np.nonzero(one)
    i = np.argmax(alive[pi] & nz[pj], axis=1)          # the one live input of each
    ok = active[pi, i]                                 # an active ReLU unit (not leaky-inactive, linear, constant)
    out = np.zeros((B, n), bool)
    out[pi[ok], pj[ok]] = True
    sgn = np.zeros((B, n), np.int8)
    sgn[pi[ok], pj[ok]] = np.where(W[pj[ok], i[ok]] > 0, 1, -1)
    return out, sgn
