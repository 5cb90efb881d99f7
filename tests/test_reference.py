"""Both splitting paths against the independent reference enumerator: equal sets of patterns."""

import numpy as np
import pytest

from nets import patterns_of, random_net, run
from reference import reference_patterns

CASES = [(d, depth, seed) for d in range(1, 7) for depth in range(1, 5) for seed in range(2)
         if not (d >= 5 and depth >= 3)]


@pytest.mark.parametrize("d,depth,seed", CASES)
def test_random_deep_networks_match_reference(d, depth, seed):
    rng = np.random.default_rng(1000 * d + 10 * depth + seed)
    widths = [int(rng.integers(2, 6 if d <= 4 else 5)) for _ in range(depth)]
    Ws, bs = random_net(rng, d, widths)
    ref = reference_patterns(Ws, bs, -1.0, 1.0)
    for vertex_path in (True, False):        # both ways of splitting: vertices (d <= 6 boxes) and LPs
        res = run(Ws, bs, vertex_path=vertex_path)
        assert patterns_of(res) == ref
        assert res.regions == len(ref)
        assert res.per_layer[-1] == res.regions


def test_unbounded_domain_matches_reference():
    rng = np.random.default_rng(7)
    Ws, bs = random_net(rng, 2, [4, 3])
    res = run(Ws, bs, lo=None)
    assert patterns_of(res) == reference_patterns(Ws, bs)
