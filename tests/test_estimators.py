"""Estimators and MIPBound against exact counts: certain bounds hold, intervals cover."""

import numpy as np
import pytest

import lrenum
from lrenum.counting import milp
from lrenum.counting.estimate import chao1, points_estimate, tree_estimate
from lrenum.counting.mipbound import level_bound, mipbound
from lrenum.counting.preact import preactivation_bounds
from nets import patterns_of, random_net, tent_net


@pytest.fixture(scope="module")
def deep_net():
    rng = np.random.default_rng(21)
    Ws, bs = random_net(rng, 2, [8, 8, 8])
    net = lrenum.make_network(Ws, bs)
    dom = lrenum.box_domain(-1, 1, 2)
    res = lrenum.enumerate_regions(net, dom, collect=True)
    return net, dom, res


def test_tree_estimator_interval_covers_exact_count_at_nominal_rate(deep_net):
    net, dom, res = deep_net
    seeds = range(20)
    covered, estimates = 0, []
    for seed in seeds:
        est = tree_estimate(net, dom, probes=48, seed=seed)
        assert est.lower_bound <= res.regions
        assert est.ci_low >= est.lower_bound
        covered += est.ci_low <= res.regions <= est.ci_high
        estimates.append(est.estimate)
    # nominal 95%: a biased estimator or a wrong interval falls well below 15 of 20
    assert covered >= 15, covered
    # unbiased: the mean of 20 x 48 probes lies within 4 standard errors of the truth
    assert abs(np.mean(estimates) - res.regions) < 4 * np.std(estimates, ddof=1) / np.sqrt(len(estimates)) + 1


def test_tree_estimator_branching_is_unbiased_and_tighter(deep_net):
    net, dom, res = deep_net
    widths = {}
    for branch in (1, 3):
        ests = [tree_estimate(net, dom, probes=32, branch=branch, seed=s) for s in range(8)]
        cover = sum(e.ci_low <= res.regions <= e.ci_high for e in ests)
        assert cover >= 6
        widths[branch] = np.mean([e.ci_high - e.ci_low for e in ests])
    assert widths[3] < widths[1]


def test_tree_estimator_is_exact_on_a_uniform_tree():
    # tent maps: every region at layer l has the same number of children, so every probe is exact
    Ws, bs = tent_net(3, 2)
    net = lrenum.make_network(Ws, bs)
    est = tree_estimate(net, lrenum.box_domain(0, 1, 2), probes=4, seed=1)
    assert est.estimate == 64 and est.ci_low == est.ci_high == 64


def test_point_sampling_lower_bound_is_certain(deep_net):
    net, dom, res = deep_net
    for seed in range(3):
        est = points_estimate(net, dom, points=20000, seed=seed)
        assert 0 < est.lower_bound <= res.regions
        assert est.details["distinct"] <= res.regions
        assert est.ci_low <= est.estimate <= est.ci_high


def test_point_sampling_finds_every_region_of_a_coarse_partition():
    rng = np.random.default_rng(3)
    Ws, bs = random_net(rng, 2, [3])
    net = lrenum.make_network(Ws, bs)
    dom = lrenum.box_domain(-1, 1, 2)
    exact = lrenum.enumerate_regions(net, dom).regions
    est = points_estimate(net, dom, points=200000, seed=0)
    assert est.lower_bound == exact   # 3 lines: no region is tiny at this sample size


def test_chao1_formula():
    # all species seen at least twice: nothing unseen is inferred
    assert chao1(np.array([2, 3, 5]), 10, 0.95) == (3.0, 3.0, 3.0)
    est, lo, hi = chao1(np.array([1, 1, 1, 1, 2, 2, 5]), 13, 0.95)
    k = 12 / 13
    assert est == pytest.approx(7 + k * 4 * 3 / (2 * 3))
    assert 7 <= lo < est < hi


@pytest.mark.parametrize("slopes", [None, [0.2, -0.4]])
def test_mipbound_is_below_exact_and_its_patterns_are_regions(slopes):
    rng = np.random.default_rng(4)
    for backend in milp.available_backends():
        Ws, bs = random_net(rng, 2, [6, 5])
        net = lrenum.make_network(Ws, bs, slopes=slopes)
        dom = lrenum.box_domain(-1, 1, 2)
        res = lrenum.enumerate_regions(net, dom, collect=True)
        out = mipbound(net, dom, trials=4, seed=1, backend=backend, time_limit=20)
        assert 1 <= out.verified_patterns <= out.lower_bound <= res.regions
        assert out.levels[0]["successes"] == 4   # s = 0: no XOR, the MILP is feasible


def _milp_net(kind: str, rng):
    if kind == "residual":                     # a skip from the input into layer 2: carried units in layer 1
        layers = [{"W": rng.normal(size=(3, 2)), "b": rng.normal(size=3) * 0.5},
                  {"W": rng.normal(size=(3, 3)), "b": rng.normal(size=3) * 0.5, "skip": {0: rng.normal(size=(3, 2))}}]
        net = lrenum.residual_network(layers, {"W": rng.normal(size=(1, 3)), "b": np.zeros(1)})
        assert net.has_linear
        return net
    Ws, bs = random_net(rng, 2, [4, 3])
    return lrenum.make_network(Ws, bs, slopes=[0.3, -0.5] if kind == "leaky" else None)


@pytest.mark.parametrize("kind", ["relu", "leaky", "residual"])
def test_milp_encoding_accepts_exactly_the_regions(kind):
    """Fixing the binaries to a pattern is feasible iff the pattern is a region (tiny margin);
    leaky units add h = s z + (1 - s) relu(z), carried units h = z without a binary."""
    rng = np.random.default_rng(8)
    net = _milp_net(kind, rng)
    dom = lrenum.box_domain(-1, 1, 2)
    regions = patterns_of(lrenum.enumerate_regions(net, dom, collect=True))
    pb = preactivation_bounds(net, dom)
    model = milp.encode(net, dom, pb, margin=1e-7)
    import itertools
    n = int(sum(net.hidden_widths))
    for bits in itertools.product([0, 1], repeat=n):
        bits = np.array(bits)
        fixed = model.fixed_bits
        if np.any((fixed >= 0) & (fixed != bits)):
            assert tuple(bits) not in regions   # contradicts a stable unit
            continue
        m = model.with_objective(model.c)
        lb, ub = m.lb.copy(), m.ub.copy()
        lb[m.binaries] = ub[m.binaries] = bits[m.neuron_of_binary]
        m.lb, m.ub = lb, ub
        feasible = milp.solve(m, backend="highs", time_limit=10).x is not None
        assert feasible == (tuple(bits) in regions), bits


def test_level_bound_closed_form():
    # all T trials succeed: the largest p with p^T <= delta is delta^(1/T)
    for T, s, delta in [(4, 5, 0.05), (10, 12, 0.01)]:
        b = level_bound(T, T, s, delta)
        assert b == int(np.ceil(delta ** (1 / T) * 2 ** s * (1 - 1e-12)))
    assert level_bound(0, 5, 3, 0.05) == 0
