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


def test_leaky_and_carried_networks_get_only_bounds_that_hold():
    """Leaky units keep an inactive unit's input alive, so the bounds that count active units
    (serra2018, the activation bound) can fall below the count; montufar2017 (widths only) and
    the carried networks' product bound must hold. The first case is one where serra2018 fails:
    2 inputs, widths 1-1, slope -0.7: 4 regions, serra2018 = 3."""
    from lrenum.counting.bounds import serra2018
    rng = np.random.default_rng(0)
    # h1 = leaky(x_1) is V-shaped, so h1 = 0.3 at two places: the strips x_1 < -0.3/0.7, .. < 0, .. < 0.3, > 0.3
    cases = [(lrenum.make_network([np.array([[1.0, 0.0]]), np.array([[1.0]]), np.array([[1.0]])],
                                  [np.zeros(1), np.array([-0.3]), np.zeros(1)], slopes=[-0.7, -0.7]),
              lrenum.box_domain(-1, 1, 2))]
    for _ in range(40):
        d = int(rng.integers(1, 3))
        widths = [int(rng.integers(1, 5)) for _ in range(int(rng.integers(2, 4)))]
        Ws, bs = random_net(rng, d, widths, bias_scale=1.0)
        cases.append((lrenum.make_network(Ws, bs, slopes=[float(rng.choice([-0.7, 0.2]))] * len(widths)),
                      lrenum.box_domain(-4, 4, d)))
    for k, (net, dom) in enumerate(cases):
        exact = lrenum.enumerate_regions(net, dom).regions
        rep = compute_bounds(net, dom, backend="highs")
        assert set(rep.bounds) == {"montufar2017"} and "leaky" in rep.details["montufar2017"]
        assert rep.best >= exact
        if k == 0:
            assert exact == 4 > serra2018(2, [1, 1]) == 3


@pytest.mark.parametrize("kind", ["leaky", "residual"])
def test_preactivation_bounds_hold_for_leaky_and_carried_units(kind):
    """Negative slopes make a unit's output range non-monotone in its input; carried units pass
    negative values on: the interval pass must follow both."""
    rng = np.random.default_rng(6)
    if kind == "leaky":
        Ws, bs = random_net(rng, 3, [8, 8, 8])
        net = lrenum.make_network(Ws, bs, slopes=[-0.6, 0.3, -1.5])
    else:
        layers = [{"W": rng.normal(size=(6, 3)), "b": rng.normal(size=6)},
                  {"W": rng.normal(size=(6, 6)), "b": rng.normal(size=6)},
                  {"W": rng.normal(size=(5, 6)), "b": rng.normal(size=5), "skip": {1: rng.normal(size=(5, 6))}}]
        net = lrenum.residual_network(layers, {"W": rng.normal(size=(1, 5)), "b": np.zeros(1)})
    dom = lrenum.box_domain(-1, 1, 3)
    pb = preactivation_bounds(net, dom)
    X = rng.uniform(-1, 1, size=(20000, 3))
    X[:8] = np.array(list(itertools.product([-1, 1], repeat=3)))
    for l, Z in enumerate(net.pre_activations(X)):
        assert np.all(Z >= pb.lo[l]) and np.all(Z <= pb.hi[l])
