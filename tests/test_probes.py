"""The hyperplane-level Knuth estimator (counting/probes.py): unbiased on networks the suite can
enumerate (random, degenerate, leaky, closed forms), certain lower bounds that never exceed the
exact count, intervals that cover, and the CLI's stopping rules."""

from math import comb

import numpy as np
import pytest

import lrenum
from lrenum.cli import main
from lrenum.counting.probes import probe_estimate
from nets import random_net, tent_net


def _unbiased(net, dom, exact, probes=4000, seed=0):
    """The probes' mean lies within 4 standard errors of the exact count; the certain lower
    bound never exceeds it."""
    est = probe_estimate(net, dom, probes=probes, seed=seed)
    s = est.samples
    se = np.std(s, ddof=1) / np.sqrt(len(s))
    assert abs(np.mean(s) - exact) <= 4 * se + 1e-9, (np.mean(s), exact, se)
    assert est.lower_bound <= exact and est.ci_low >= est.lower_bound
    return est


@pytest.mark.parametrize("d, widths, seed", [(2, [6, 5], 0), (3, [8, 6, 4], 1), (5, [6, 4], 2)])
def test_unbiased_on_random_networks(d, widths, seed):
    Ws, bs = random_net(np.random.default_rng(seed), d, widths)
    net, dom = lrenum.make_network(Ws, bs), lrenum.box_domain(-1.0, 1.0, d)
    _unbiased(net, dom, lrenum.enumerate_regions(net, dom).regions)


def test_one_layer_matches_the_arrangement_closed_form():
    """n hyperplanes in general position with every crossing inside the box: sum_{i<=d} C(n, i)
    cells. Each probe's weight is 2^(hyperplanes that cut its cell); their mean is the count."""
    from itertools import combinations

    d, n = 3, 7
    rng = np.random.default_rng(3)
    W1, b1 = rng.normal(size=(n, d)), rng.normal(size=n)
    far = max(np.abs(np.linalg.solve(W1[list(S)], -b1[list(S)])).max() for S in combinations(range(n), d))
    net = lrenum.make_network([W1, np.ones((1, n))], [b1, np.zeros(1)])
    _unbiased(net, lrenum.box_domain(-2 * far, 2 * far, d), sum(comb(n, i) for i in range(d + 1)))


def test_degenerate_and_leaky_networks():
    # duplicated neurons (a hyperplane that never cuts the cell its twin made) and a tent map
    rng = np.random.default_rng(5)
    Ws, bs = random_net(rng, 2, [4, 3])
    Ws[0], bs[0] = np.r_[Ws[0], Ws[0][:2]], np.r_[bs[0], bs[0][:2]]
    Ws[1] = np.c_[Ws[1], rng.normal(size=(3, 2))]
    net, dom = lrenum.make_network(Ws, bs), lrenum.box_domain(-1.0, 1.0, 2)
    _unbiased(net, dom, lrenum.enumerate_regions(net, dom).regions)
    Ws, bs = tent_net(2, 2)
    net, dom = lrenum.make_network(Ws, bs), lrenum.box_domain(0.0, 1.0, 2)
    est = _unbiased(net, dom, 16)
    assert est.lower_bound == 16 or est.estimate == pytest.approx(16)
    Ws, bs = random_net(np.random.default_rng(6), 3, [6, 5])
    leaky = lrenum.make_network(Ws, bs, slopes=[0.1, 0.2])
    dom = lrenum.box_domain(-1.0, 1.0, 3)
    _unbiased(leaky, dom, lrenum.enumerate_regions(leaky, dom).regions)


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
