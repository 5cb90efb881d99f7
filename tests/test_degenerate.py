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
    rng = np.random.default_rng(1)
    Ws, bs = random_net(rng, 2, [3, 3])
    Ws[0] = np.r_[Ws[0], Ws[0][:2]]
    bs[0] = np.r_[bs[0], bs[0][:2]]
    Ws[1] = np.c_[Ws[1], rng.normal(size=(3, 2))]
    res = check(Ws, bs)
    assert res.regions > 0


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
    rng = np.random.default_rng(3)
    Ws, bs = random_net(rng, 4, [1, 6, 5])
    res = check(Ws, bs)
    assert res.regions >= 1


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
