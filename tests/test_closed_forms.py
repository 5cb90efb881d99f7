"""Counts that are known in closed form."""

from math import comb

import numpy as np
import pytest

from nets import run, tent_net


@pytest.mark.parametrize("d,n,seed", [(1, 4, 0), (2, 6, 1), (3, 7, 2), (4, 8, 3), (2, 12, 4)])
def test_one_layer_general_position_on_Rd(d, n, seed):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(n, d))
    b = rng.normal(size=n)
    res = run([W, np.ones((1, n))], [b, np.zeros(1)], lo=None)
    assert res.regions == sum(comb(n, i) for i in range(d + 1))


@pytest.mark.parametrize("d,n,seed", [(2, 6, 5), (3, 6, 6)])
def test_one_layer_on_box_containing_every_vertex(d, n, seed):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(n, d))
    b = rng.normal(size=n)
    from itertools import combinations
    far = max(np.abs(np.linalg.solve(W[list(S)], -b[list(S)])).max() for S in combinations(range(n), d))
    for vertex_path in (True, False):
        res = run([W, np.ones((1, n))], [b, np.zeros(1)], lo=-2 * far, hi=2 * far, vertex_path=vertex_path)
        assert res.regions == sum(comb(n, i) for i in range(d + 1))


@pytest.mark.parametrize("L,d", [(1, 1), (2, 1), (4, 1), (1, 2), (2, 2), (3, 2), (2, 3)])
def test_tent_map_regions(L, d):
    Ws, bs = tent_net(L, d)
    for vertex_path in (True, False):
        res = run(Ws, bs, lo=0.0, hi=1.0, vertex_path=vertex_path)
        assert res.regions == (2 ** L) ** d
        assert len({tuple(p) for p in res.patterns}) == res.regions
