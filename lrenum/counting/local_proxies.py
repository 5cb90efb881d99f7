"""The literature's cheap stand-ins for the number of regions in a box, beside the exact count.

* :func:`neurons_meeting_box`: neurons whose pre-activation may change sign in the box, by
  interval bound propagation with outward rounding. In the first layer this is the neurons whose
  hyperplane meets the box (up to rounding, counted when in doubt); deeper, it over-approximates
  the neurons that switch. What it guarantees: every neuron that changes sign on a
  full-dimensional part of the box is counted, so for a one-layer network with k counted neurons
  the box has at most sum_{i <= d} C(k, i) regions (Zaslavsky). It is not a bound deeper.
* :func:`sampled_patterns`: distinct patterns among K uniform samples of the box, each counted
  only when a float64 forward pass with error bounds (:func:`lrenum.certify.floatcert.forward_with_bounds`)
  proves every pre-activation's sign and the sample lies strictly inside the box. Such a sample
  has a neighbourhood of the same signs inside the box, so its pattern is a region's: the count
  never exceeds the exact one (it may fall far short: small regions are rarely hit).
"""

from __future__ import annotations

import numpy as np

from ..certify.floatcert import forward_with_bounds, group_margins
from ..core.state import pattern_keys
from ..model.network import Network
from .preact import activation_range, group_floor, interval_layer

__all__ = ["neurons_meeting_box", "sampled_patterns"]


def neurons_meeting_box(net: Network, lo: np.ndarray, hi: np.ndarray) -> list[int]:
    """Per hidden layer: neurons whose interval of pre-activations over ``[lo, hi]`` (outward
    rounded) has 0 strictly inside."""
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    counts = []
    for l, (W, b, a, lin) in enumerate(zip(net.weights[:-1], net.biases[:-1], net.slopes, net.linear)):
        z_lo, z_hi = interval_layer(W, b, lo, hi)                        # the pre-activation bounds' own
        counts.append(int(np.sum((z_lo < 0) & (z_hi > 0) & ~lin)))     # linear units never split
        lo, hi = group_floor(net, l, *activation_range(z_lo, z_hi, a))   # leaky slopes: not monotone
    return counts


def sampled_patterns(net: Network, lo: np.ndarray, hi: np.ndarray, samples: int,
                     rng: np.random.Generator) -> tuple[int, int]:
    """(distinct certified patterns, samples certified) among ``samples`` uniform points of the box."""
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    distinct, certified = set(), 0
    step = 4096      # samples per forward pass: memory bounded by the step, not by ``samples``
    for start in range(0, samples, step):
        k = min(step, samples - start)
        X = lo + rng.random((k, lo.size)) * (hi - lo)
        inside = np.all((X > lo) & (X < hi), axis=1)
        zs, ezs = forward_with_bounds(net, X, net.n_hidden)
        sure = inside.copy()
        acts = [net.active_units(l, z) for l, z in enumerate(zs)]
        for l, (z, ez, act, lin) in enumerate(zip(zs, ezs, acts, net.linear)):
            if net.group_members[l]:     # a max pool's losers are certain when they certainly lose
                z, ez, _ = group_margins(net, l, z, ez, act)
            sure &= np.all((np.abs(z) > ez) | lin, axis=1)
        bits = np.concatenate([act[sure] & ~lin for act, lin in zip(acts, net.linear)], axis=1)
        distinct.update(pattern_keys(bits))
        certified += int(sure.sum())
    return len(distinct), certified
