"""Property tests (hypothesis): invariances that any correct enumerator has."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import lrenum
from nets import patterns_of, random_net

SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(seed=st.integers(0, 10_000), d=st.integers(1, 3), depth=st.integers(1, 3))
def test_positive_rescaling_of_a_neuron_changes_nothing(seed, d, depth):
    rng = np.random.default_rng(seed)
    widths = [int(rng.integers(2, 5)) for _ in range(depth)]
    Ws, bs = random_net(rng, d, widths)
    net = lrenum.make_network(Ws, bs)
    scale = rng.uniform(0.1, 10.0, size=widths[0])
    Ws2 = [Ws[0] * scale[:, None]] + [Ws[1] / scale[None, :]] + Ws[2:]
    bs2 = [bs[0] * scale] + bs[1:]
    a = lrenum.enumerate_regions(net, collect=True)
    b = lrenum.enumerate_regions(lrenum.make_network(Ws2, bs2), collect=True)
    assert patterns_of(a) == patterns_of(b)


@SETTINGS
@given(seed=st.integers(0, 10_000), d=st.integers(1, 3))
def test_permuting_neurons_permutes_patterns(seed, d):
    rng = np.random.default_rng(seed)
    Ws, bs = random_net(rng, d, [4, 3])
    perm = rng.permutation(4)
    Ws2 = [Ws[0][perm], Ws[1][:, perm], Ws[2]]
    bs2 = [bs[0][perm], bs[1], bs[2]]
    a = lrenum.enumerate_regions(lrenum.make_network(Ws, bs), collect=True)
    b = lrenum.enumerate_regions(lrenum.make_network(Ws2, bs2), collect=True)
    pa = {tuple(p[np.r_[perm, 4:7]].astype(int)) for p in a.patterns}
    assert pa == patterns_of(b)


@SETTINGS
@given(seed=st.integers(0, 10_000), batch=st.integers(1, 7))
def test_batch_size_does_not_change_the_answer(seed, batch):
    rng = np.random.default_rng(seed)
    Ws, bs = random_net(rng, 2, [5, 4, 3])
    net = lrenum.make_network(Ws, bs)
    a = lrenum.enumerate_regions(net, collect=True)
    b = lrenum.enumerate_regions(net, None, lrenum.Settings(batch_size=batch), collect=True)
    assert patterns_of(a) == patterns_of(b) and a.regions == b.regions


@SETTINGS
@given(seed=st.integers(0, 10_000))
def test_every_sampled_point_lies_in_an_enumerated_region(seed):
    rng = np.random.default_rng(seed)
    Ws, bs = random_net(rng, 2, [6, 4])
    net = lrenum.make_network(Ws, bs)
    x = rng.uniform(-1, 1, size=(2000, 2))
    seen = {tuple(np.concatenate([z > 0 for z in net.pre_activations(p[None])], axis=1)[0].astype(int)) for p in x}
    for vertex_path in (True, False):
        assert seen <= patterns_of(lrenum.enumerate_regions(net, None, lrenum.Settings(vertex_path=vertex_path), collect=True))


@pytest.mark.parametrize("seed", [0, 1])
def test_float32_lp_path_gives_the_same_regions(seed):
    """lp_dtype float32 only changes the proposals: certification stays float64 and exact."""
    rng = np.random.default_rng(100 + seed)
    Ws, bs = random_net(rng, 3, [6, 5, 4])
    net = lrenum.make_network(Ws, bs)
    a = lrenum.enumerate_regions(net, collect=True)
    b = lrenum.enumerate_regions(net, None, lrenum.Settings(lp_dtype="float32", vertex_path=False), collect=True)   # LPs, not vertices
    assert b.stats.lps > 0
    assert {tuple(p) for p in a.patterns.tolist()} == {tuple(p) for p in b.patterns.tolist()}
