"""Analytic upper bounds: formulas against brute force, and every bound >= the exact count."""

import itertools
from math import comb

import numpy as np
import pytest

import lrenum
from lrenum.counting.bounds import activation_bound, compute_bounds, montufar2017, serra2018
from lrenum.counting.preact import preactivation_bounds
from nets import random_net


def serra_brute_force(n0, widths):
    """Theorem 1 of Serra et al. (2018) summed literally over the index set J."""
    total = 0
    for js in itertools.product(*[range(n + 1) for n in widths]):
        ok, running = True, n0
        for j, n in zip(js, widths):
            if j > min(running, n):
                ok = False
                break
            running = min(running, n - j)
        if ok:
            total += int(np.prod([comb(n, j) for n, j in zip(widths, js)]))
    return total


@pytest.mark.parametrize("n0,widths", [(1, [3]), (2, [4, 4]), (3, [2, 5, 3]), (4, [3, 3, 3]), (2, [6, 1, 6])])
def test_serra2018_matches_its_index_set(n0, widths):
    assert serra2018(n0, widths) == serra_brute_force(n0, widths)


def test_one_layer_bounds_equal_the_arrangement_count():
    for d, n in [(1, 5), (2, 7), (3, 4), (5, 3)]:
        closed = sum(comb(n, i) for i in range(min(d, n) + 1))
        assert serra2018(d, [n]) == montufar2017(d, [n]) == closed


def test_activation_bound_reduces_to_serra_without_stable_units():
    for n0, widths in [(2, [4, 4]), (3, [5, 2, 5]), (4, [3, 6, 3, 2])]:
        assert activation_bound(n0, widths, [0] * len(widths), widths) == serra2018(n0, widths)
        # fewer unstable units or a smaller cap can only lower it
        assert activation_bound(n0, [w - 1 for w in widths], [1] * len(widths), widths) <= serra2018(n0, widths)


def _nets(count=14):
    rng = np.random.default_rng(11)
    for i in range(count):
        d = int(rng.integers(1, 4))
        widths = [int(w) for w in rng.integers(2, 7, size=int(rng.integers(1, 4)))]
        # larger biases make some units stable over the box, which the activation bound uses
        Ws, bs = random_net(rng, d, widths, bias_scale=float(rng.choice([0.5, 2.0])))
        yield lrenum.make_network(Ws, bs), lrenum.box_domain(-1, 1, d)


def test_every_upper_bound_is_at_least_the_exact_count():
    saw_stable = False
    for net, dom in _nets():
        res = lrenum.enumerate_regions(net, dom, collect=True)
        rep = compute_bounds(net, dom, backend="highs")
        for name, value in rep.bounds.items():
            assert value >= res.regions, (name, value, res.regions)
        assert rep.bounds["activation"] <= rep.bounds["serra2018"]
        det = rep.details["activation"]
        saw_stable |= sum(det["stably_active"]) + sum(det["stably_inactive"]) > 0
        # the cap on simultaneously active units must hold for every region found exactly
        offs = net.neuron_offsets
        for l in range(net.n_hidden):
            most = int(res.patterns[:, offs[l]:offs[l + 1]].sum(axis=1).max())
            assert det["max_active"][l] >= most
    assert saw_stable, "the network family should exercise stable units"


def test_preactivation_bounds_hold_at_sampled_points():
    rng = np.random.default_rng(5)
    Ws, bs = random_net(rng, 3, [8, 8, 8])
    net = lrenum.make_network(Ws, bs)
    dom = lrenum.box_domain(-1, 1, 3)
    pb = preactivation_bounds(net, dom)
    X = rng.uniform(-1, 1, size=(20000, 3))
    X[:8] = np.array(list(itertools.product([-1, 1], repeat=3)))   # the box's corners
    for l, Z in enumerate(net.pre_activations(X)):
        assert np.all(Z >= pb.lo[l]) and np.all(Z <= pb.hi[l])
    # the LP refinement is never looser than plain intervals
    raw = preactivation_bounds(net, dom, refine=False)
    for l in range(3):
        assert np.all(pb.hi[l] <= raw.hi[l]) and np.all(pb.lo[l] >= raw.lo[l])


def test_polytope_domain_bounds():
    rng = np.random.default_rng(2)
    Ws, bs = random_net(rng, 2, [5, 5])
    net = lrenum.make_network(Ws, bs)
    dom = lrenum.polytope_domain([[1, 1], [-1, 0], [0, -1]], [1, 0, 0], 2)   # a triangle
    exact = lrenum.enumerate_regions(net, dom).regions
    rep = compute_bounds(net, dom, backend="highs")
    assert all(v >= exact for v in rep.bounds.values())
