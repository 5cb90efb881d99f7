"""Degenerate networks: ties, coincidences and collapsed layers must still be counted exactly."""

import numpy as np

from nets import patterns_of, random_net, run
from reference import reference_patterns


def check(Ws, bs, lo=-1.0, hi=1.0):
    ref = reference_patterns(Ws, bs, lo, hi)
    lp = run(Ws, bs, lo=lo, hi=hi, vertex_path=False)
    assert patterns_of(lp) == ref
    res = run(Ws, bs, lo=lo, hi=hi, vertex_path=True)   # the vertex path, on every degenerate case
    assert patterns_of(res) == ref
    return res


def test_duplicated_neurons():
    """Neurons 3 and 4 copy neurons 0 and 1: they are active exactly where their originals are,
    so the network has the regions of its twin with each copy merged into its original (the
    copies' outgoing weights added to the originals')."""
    rng = np.random.default_rng(1)
    Ws, bs = random_net(rng, 2, [3, 3])
    twin_Ws, twin_bs = [Ws[0].copy(), None, Ws[2]], list(bs)
    extra = rng.normal(size=(3, 2))
    Ws[0] = np.r_[Ws[0], Ws[0][:2]]
    bs[0] = np.r_[bs[0], bs[0][:2]]
    twin_Ws[1] = Ws[1].copy()
    twin_Ws[1][:, :2] += extra
    Ws[1] = np.c_[Ws[1], extra]
    res = check(Ws, bs)
    twin = run(twin_Ws, twin_bs, vertex_path=False)
    assert res.regions == twin.regions == len(reference_patterns(twin_Ws, twin_bs, -1.0, 1.0))


def test_opposite_and_parallel_hyperplanes():
    W1 = np.array([[1.0, 0.0], [-1.0, 0.0], [2.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    b1 = np.array([0.0, 0.0, 0.0, -0.5, 0.25])
    res = check([W1, np.ones((1, 5))], [b1, np.zeros(1)])
    assert res.regions == 3 * 2  # x in three slabs, y in two halves


def test_zero_rows_and_dead_layer():
    rng = np.random.default_rng(2)
    Ws, bs = random_net(rng, 3, [4, 3, 3])
    Ws[0][1] = 0.0                      # a zero row with positive bias: constant active
    bs[0][1] = 1.0
    Ws[0][2] = 0.0                      # a zero row with zero bias: constant 0, inactive
    bs[0][2] = 0.0
    Ws[1][:] = 0.0                      # a dead layer: everything after it is constant
    bs[1][:] = -1.0
    res = check(Ws, bs)
    one_layer = check(Ws[:1] + [np.ones((1, 4))], bs[:1] + [np.zeros(1)])
    assert res.regions == one_layer.regions


def test_neurons_constant_on_the_domain():
    W1 = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    b1 = np.array([5.0, -5.0, 0.0])     # first always active, second always inactive on [-1, 1]^2
    res = check([W1, np.ones((1, 3))], [b1, np.zeros(1)])
    assert res.regions == 2


def test_narrow_layer_collapses_rank():
    """A one-neuron first layer: everything after it is a function of u = w.x + b alone, so the
    regions are slabs, one per region of the one-input network u -> relu(u) -> ... on the range
    of u over the box (computed exactly here, |w|_1 + b and -|w|_1 + b)."""
    rng = np.random.default_rng(3)
    Ws, bs = random_net(rng, 4, [1, 6, 5])
    res = check(Ws, bs)
    w, b = Ws[0][0], bs[0][0]
    lo, hi = b - np.abs(w).sum(), b + np.abs(w).sum()
    line = reference_patterns([np.ones((1, 1))] + Ws[1:], [np.zeros(1)] + bs[1:], lo, hi)
    assert patterns_of(res) == line


def test_hyperplanes_through_domain_corners():
    W1 = np.array([[1.0, 1.0], [1.0, -1.0], [1.0, 0.0], [0.0, 1.0]])
    b1 = np.array([0.0, 0.0, -1.0, 1.0])   # diagonals through corners, two lines on the boundary
    res = check([W1, np.ones((1, 4))], [b1, np.zeros(1)])
    assert res.regions == 4


def test_deep_hyperplanes_touching_region_faces():
    # layer 2 repeats layer 1's hyperplanes exactly: nothing new may be counted
    W1 = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    b1 = np.array([0.0, 0.0, -0.5])
    W2 = np.eye(3)
    b2 = np.zeros(3)
    res = check([W1, W2, np.ones((1, 3))], [b1, b2, np.zeros(1)])
    assert res.regions == check([W1, np.ones((1, 3))], [b1, np.zeros(1)]).regions


def test_proportional_copies_in_every_layer():
    """Copies with positive and negative factors in layers 1 and 2, a copy of a dead neuron and a
    copy whose representative is constant on some regions: passengers of their representatives
    (lrenum.model.coincidences), counted exactly on both paths, and the vertex path does the
    work with no LP."""
    rng = np.random.default_rng(12)
    Ws, bs = random_net(rng, 3, [5, 4, 3])
    Ws[0] = np.r_[Ws[0], 2.0 * Ws[0][:1], -0.5 * Ws[0][1:2], np.zeros((1, 3)), 4.0 * np.zeros((1, 3))]
    bs[0] = np.r_[bs[0], 2.0 * bs[0][:1], -0.5 * bs[0][1:2], -1.0, -2.0]       # two dead neurons, one a copy
    Ws[1] = np.c_[Ws[1], rng.normal(size=(4, 4))]
    Ws[1] = np.r_[Ws[1], -4.0 * Ws[1][2:3]]       # powers of 2: exact copies (3 x w rounds: not a copy)
    bs[1] = np.r_[bs[1], -4.0 * bs[1][2:3]]
    Ws[2] = np.c_[Ws[2], rng.normal(size=(3, 1))]
    res = check(Ws, bs)
    assert res.stats.lps == 0


def test_copies_are_exact_not_decimal():
    """(0.3, 0.9) is not 3 x (0.1, 0.3) in binary: such rows are two hyperplanes a hair apart (the
    exact count has the sliver between them), not copies; (0.2, 0.6) and (-0.05, -0.15) are."""
    import lrenum
    from lrenum.model.coincidences import find_copies

    W = np.array([[0.1, 0.3], [0.3, 0.9], [0.2, 0.6], [-0.05, -0.15]])
    net = lrenum.make_network([W, np.ones((1, 4))], [np.zeros(4), np.zeros(1)])
    copies = find_copies(net)
    assert list(copies.rep[0]) == [0, 1, 0, 0] and list(copies.sign[0]) == [1, 1, 1, -1]
