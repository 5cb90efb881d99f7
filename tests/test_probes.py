"""The hyperplane-level Knuth estimator (counting/probes.py): unbiased on networks the suite can
enumerate (random, degenerate, leaky, closed forms), with and without its strata and guide;
certain lower bounds that never exceed the exact count, intervals that cover, the guide's sorted
ranges against brute force, and the CLI's stopping rules."""

from math import comb

import numpy as np
import pytest

import lrenum
from lrenum.cli import main
from lrenum.counting.probes import probe_estimate
from nets import random_net, tent_net


def _unbiased(net, dom, exact, probes=4000, seed=0, **kw):
    """The estimate lies within 4 standard errors of the exact count (a frontier that reached the
    end is the count itself); the certain lower bound never exceeds it."""
    est = probe_estimate(net, dom, probes=probes, seed=seed, **kw)
    se = est.details["standard_error"]
    if est.details["exact"]:
        assert est.estimate == exact == est.lower_bound
    else:
        assert se > 0 and abs(est.estimate - exact) <= 4 * se, (est.estimate, exact, se)
    assert est.lower_bound <= exact and est.ci_low >= est.lower_bound
    return est


# the three ways to run it: one stratum with sides 1/2 (Knuth's plain walk), the guide alone,
# strata and guide (the default)
VARIANTS = [dict(strata=1, guide_points=0), dict(strata=1, guide_points=4096), dict(strata=32, guide_points=4096)]


@pytest.mark.parametrize("d, widths, seed", [(2, [6, 5], 0), (3, [8, 6, 4], 1), (5, [6, 4], 2)])
@pytest.mark.parametrize("variant", range(len(VARIANTS)))
def test_unbiased_on_random_networks(d, widths, seed, variant):
    Ws, bs = random_net(np.random.default_rng(seed), d, widths)
    net, dom = lrenum.make_network(Ws, bs), lrenum.box_domain(-1.0, 1.0, d)
    _unbiased(net, dom, lrenum.enumerate_regions(net, dom).regions, **VARIANTS[variant])


def test_guide_ranges_match_brute_force():
    """Every cell of the binary tree is a contiguous range of the sorted samples; split and
    regions_in against filtering the samples by their pattern prefix."""
    from lrenum.counting.probe_guide import build_guide

    Ws, bs = random_net(np.random.default_rng(8), 3, [5, 4])
    net, dom = lrenum.make_network(Ws, bs), lrenum.box_domain(-1.0, 1.0, 3)
    g = build_guide(net, dom, 3000, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    for _ in range(30):
        prefix = rng.random(net.n_hidden) < 0.5
        depth = int(rng.integers(0, net.n_hidden))
        lo, hi = np.zeros(1, np.int64), np.full(1, g.size, np.int64)
        for j in range(depth):
            mid = g.split(lo, hi, j)
            lo, hi = (mid, hi) if prefix[j] else (lo, mid)
        rows = g.bits[lo[0]:hi[0]]
        inside = np.all(g.bits[:, :depth] == prefix[:depth], axis=1)
        assert inside.sum() == len(rows) and np.all(rows[:, :depth] == prefix[:depth])
        assert g.regions_in(lo, hi)[0] == len({r.tobytes() for r in rows})
    p = g.probability(np.array([0.0, 10.0, 1e9]), np.array([1e9, 10.0, 0.0]))
    assert np.all(p >= g.mix / 2) and np.all(p <= 1 - g.mix / 2) and p[1] == pytest.approx(0.5)


def test_a_guide_that_misses_the_strata_is_dropped():
    """Four sample points cannot reach half of 32 strata: the probes then take sides 1/2 and the
    strata share the probes by a plain walk's chances; the estimate stays unbiased."""
    from lrenum.counting.probes import ProbeSampler

    Ws, bs = random_net(np.random.default_rng(1), 3, [8, 6, 4])
    net, dom = lrenum.make_network(Ws, bs), lrenum.box_domain(-1.0, 1.0, 3)
    sparse = ProbeSampler(net, dom, lrenum.Settings.build(), strata=32, guide_points=4)
    assert sparse.guide is None and sparse.guide_reach < 0.5
    assert np.isclose(sparse.proxy().sum(), 1.0)          # 2^-cuts over a depth of the tree sums to 1
    dense = ProbeSampler(net, dom, lrenum.Settings.build(), strata=32, guide_points=8192)
    assert dense.guide is not None and dense.guide_reach >= 0.5
    exact = lrenum.enumerate_regions(net, dom).regions
    for sampler in (sparse, dense):
        est = probe_estimate(net, dom, probes=4000, sampler=sampler)
        assert abs(est.estimate - exact) <= 4 * est.details["standard_error"], (est.estimate, exact)


def test_a_small_tree_is_walked_exactly():
    """Below the strata cap the frontier reaches the leaves: the count is exact, with no probe."""
    Ws, bs = random_net(np.random.default_rng(0), 2, [6, 5])
    net, dom = lrenum.make_network(Ws, bs), lrenum.box_domain(-1.0, 1.0, 2)
    exact = lrenum.enumerate_regions(net, dom).regions
    est = probe_estimate(net, dom, probes=4096, strata=4 * exact)
    assert est.details["exact"] and est.estimate == est.ci_low == est.ci_high == est.lower_bound == exact


def test_one_layer_matches_the_arrangement_closed_form():
    """n hyperplanes in general position with every crossing inside the box: sum_{i<=d} C(n, i)
    cells. Each probe's weight is 2^(hyperplanes that cut its cell); their mean is the count."""
    from itertools import combinations

    d, n = 3, 7
    rng = np.random.default_rng(3)
    W1, b1 = rng.normal(size=(n, d)), rng.normal(size=n)
    far = max(np.abs(np.linalg.solve(W1[list(S)], -b1[list(S)])).max() for S in combinations(range(n), d))
    net = lrenum.make_network([W1, np.ones((1, n))], [b1, np.zeros(1)])
    for v in VARIANTS:     # few strata: the probes, not the frontier, must reach the leaves
        est = _unbiased(net, lrenum.box_domain(-2 * far, 2 * far, d), sum(comb(n, i) for i in range(d + 1)),
                        **dict(v, strata=min(v["strata"], 4)))
        assert not est.details["exact"]


def test_degenerate_and_leaky_networks():
    # duplicated neurons (a hyperplane that never cuts the cell its twin made) and a tent map
    rng = np.random.default_rng(5)
    Ws, bs = random_net(rng, 2, [4, 3])
    Ws[0], bs[0] = np.r_[Ws[0], Ws[0][:2]], np.r_[bs[0], bs[0][:2]]
    Ws[1] = np.c_[Ws[1], rng.normal(size=(3, 2))]
    net, dom = lrenum.make_network(Ws, bs), lrenum.box_domain(-1.0, 1.0, 2)
    for v in VARIANTS:
        _unbiased(net, dom, lrenum.enumerate_regions(net, dom).regions, **v)
    Ws, bs = tent_net(2, 2)
    net, dom = lrenum.make_network(Ws, bs), lrenum.box_domain(0.0, 1.0, 2)
    est = _unbiased(net, dom, 16)
    assert est.lower_bound == 16 or est.estimate == pytest.approx(16)
    Ws, bs = random_net(np.random.default_rng(6), 3, [6, 5])
    leaky = lrenum.make_network(Ws, bs, slopes=[0.1, 0.2])
    dom = lrenum.box_domain(-1.0, 1.0, 3)
    for v in VARIANTS:
        _unbiased(leaky, dom, lrenum.enumerate_regions(leaky, dom).regions, **v)


def test_intervals_cover_at_nominal_rate():
    Ws, bs = random_net(np.random.default_rng(1), 3, [8, 6, 4])
    net, dom = lrenum.make_network(Ws, bs), lrenum.box_domain(-1.0, 1.0, 3)
    exact = lrenum.enumerate_regions(net, dom).regions
    covered = sum(e.ci_low <= exact <= e.ci_high for e in (probe_estimate(net, dom, probes=256, seed=50 + s)
                                                          for s in range(20)))
    assert covered >= 16, covered          # nominal 95%: a biased estimator or a wrong interval falls below


def test_cli_rounds_stop_at_the_width_asked(capsys):
    import json
    import os

    net = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "net_2_16_16.npz")
    assert main(["estimate", net, "--method", "probes", "--probes", "256", "--rel-width", "0.1", "--seconds", "60",
                 "--json", "-q"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "probes" and out["relative_half_width"] <= 0.1 and out["rounds"] >= 1
    assert out["lower_bound"] <= 219 and out["ci_low"] <= 219 <= out["ci_high"]
    assert main(["estimate", net, "--rel-width", "0.1", "-q"]) == 2             # only with --method probes
    assert main(["estimate", net, "--strata", "4", "-q"]) == 2
    assert main(["estimate", net, "--method", "probes", "--interval", "log", "-q"]) == 2
    assert main(["estimate", net, "--method", "probes", "--guide-points", "-1", "-q"]) == 2
