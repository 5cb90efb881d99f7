"""Is a given activation pattern the pattern of a full-dimensional region?

Estimators and MIPBound find candidate patterns from points (sampled points, MILP solutions).
Before a pattern counts towards a *certain* lower bound it is checked here: first a float64
forward pass with rounding-error bounds at the candidate point (every pre-activation certainly
nonzero with the right sign, the point strictly inside the domain, so a ball around it lies in
the region), and where that cannot decide, an exact rational interior-point LP on the region's
rows rebuilt from the weights.
"""

from __future__ import annotations

import numpy as np

from ..lp import exact
from ..model.domain import Domain
from ..model.network import Network
from .exact_net import ExactNetwork, signs_from_bits
from .floatcert import certify_witnesses


def check_patterns(net: Network, domain: Domain, patterns: np.ndarray, points: np.ndarray,
                   exact_limit: int = 1000) -> np.ndarray:
    """(K,) bool: pattern k is certainly a region's pattern (certified at ``points[k]`` or exactly).

    Patterns whose point is not certified are decided exactly, at most ``exact_limit`` of them;
    the rest are reported False (never counted), which keeps any lower bound valid.
    """
    patterns = np.asarray(patterns, bool)
    K = patterns.shape[0]
    if K == 0:
        return np.zeros(0, bool)
    bits = net.layer_slices(patterns, net.n_hidden)
    zeros = [np.zeros(b.shape) for b in bits]
    const = [np.zeros(b.shape, bool) for b in bits]
    status, _ = certify_witnesses(net, domain, np.asarray(points, float), bits, const, zeros, zeros)
    ok = status == 0
    todo = np.nonzero(status != 0)[0][:exact_limit]
    if todo.size:
        xnet = ExactNetwork(net, domain)
        for k in todo:
            ok[k] = exact.has_interior(xnet.region_rows(signs_from_bits(patterns[k], net.hidden_widths)),
                                       net.input_dim)[0]
    return ok
