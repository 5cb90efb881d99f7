"""The low-dimensional vertex path (lrenum.core.vertices) against the LP path and independent oracles.

Every test forces the path it means (``vertex_path=True`` or False) and checks, through the
decision counters, that the forced path really did the work: a test of the vertex path that
silently fell back to LPs would prove nothing.
"""

from math import comb

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import lrenum
from lrenum.errors import InputError
from nets import patterns_of, random_net, run, tent_net
from reference import reference_patterns


def both_paths(Ws, bs, lo=-1.0, hi=1.0):
    v = run(Ws, bs, lo=lo, hi=hi, vertex_path=True)
    p = run(Ws, bs, lo=lo, hi=hi, vertex_path=False)
    assert patterns_of(v) == patterns_of(p)
    return v, p


def vertex_only(res):
    """The vertex path settled every cut: no margin LP was solved."""
    assert res.stats.lps == 0 and res.stats.vertex_decisions > 0
    return res


@settings(max_examples=25, deadline=None)
@given(d=st.integers(1, 4), widths=st.lists(st.integers(1, 7), min_size=1, max_size=3), seed=st.integers(0, 10 ** 6),
       bias=st.sampled_from([0.0, 0.5, 2.0]))
def test_both_paths_find_the_same_pattern_sets(d, widths, seed, bias):
    Ws, bs = random_net(np.random.default_rng(seed), d, widths, bias_scale=bias)
    v, _ = both_paths(Ws, bs)
    assert v.stats.lps == 0 or v.stats.exact_decisions > 0 or v.stats.float_redecisions > 0


@pytest.mark.parametrize("d,widths,seed", [(2, [6, 5], 0), (3, [5, 4, 3], 1), (4, [7, 5], 2), (5, [6, 4], 3)])
def test_vertex_path_matches_the_reference_enumerator(d, widths, seed):
    Ws, bs = random_net(np.random.default_rng(seed), d, widths)
    res = vertex_only(run(Ws, bs, vertex_path=True))
    assert patterns_of(res) == reference_patterns(Ws, bs, -1.0, 1.0)


@pytest.mark.parametrize("d,n", [(2, 9), (3, 8), (4, 7)])
def test_one_layer_closed_form(d, n):
    from itertools import combinations

    rng = np.random.default_rng(d * 10 + n)
    W1 = rng.normal(size=(n, d))
    b1 = rng.normal(size=n)
    # general position, on a box holding every vertex of the arrangement
    far = max(np.abs(np.linalg.solve(W1[list(S)], -b1[list(S)])).max() for S in combinations(range(n), d))
    res = vertex_only(run([W1, np.ones((1, n))], [b1, np.zeros(1)], lo=-2 * far, hi=2 * far, vertex_path=True))
    assert res.regions == sum(comb(n, i) for i in range(d + 1))


@pytest.mark.parametrize("L,d", [(2, 1), (3, 1), (2, 2), (3, 2)])
def test_tent_maps(L, d):
    Ws, bs = tent_net(L, d)
    res = run(Ws, bs, lo=0.0, hi=1.0, vertex_path=True)
    assert res.regions == (2 ** L) ** d
    assert res.stats.vertex_decisions > 0


def test_lines_through_one_point():
    # n lines through the box centre (three or more through one vertex): 2n sectors
    n = 6
    ang = np.pi * np.arange(n) / n + 0.1
    W1 = np.stack([np.cos(ang), np.sin(ang)], axis=1)
    res = run([W1, np.ones((1, n))], [np.zeros(n), np.zeros(1)], vertex_path=True)
    assert res.regions == 2 * n
    assert patterns_of(res) == reference_patterns([W1, np.ones((1, n))], [np.zeros(n), np.zeros(1)], -1.0, 1.0)


def test_planes_through_one_point_in_3d():
    # 3 planes with independent normals through the centre, d >= n: 2^n; then a fourth through it too
    W1 = np.array([[1.0, 0.2, 0.0], [0.0, 1.0, 0.3], [0.4, 0.0, 1.0], [1.0, 1.0, 1.0]])
    for n, expected in ((3, 8), (4, None)):
        Ws, bs = [W1[:n], np.ones((1, n))], [np.zeros(n), np.zeros(1)]
        res = run(Ws, bs, vertex_path=True)
        assert patterns_of(res) == reference_patterns(Ws, bs, -1.0, 1.0)
        if expected:
            assert res.regions == expected


def test_hyperplanes_through_domain_corners():
    W1 = np.array([[1.0, 1.0], [1.0, -1.0], [1.0, 0.0], [0.0, 1.0]])
    b1 = np.array([0.0, 0.0, -1.0, 1.0])   # both diagonals through corners, two lines on the boundary
    v, _ = both_paths([W1, np.ones((1, 4))], [b1, np.zeros(1)])
    assert v.regions == 4


def test_duplicated_neurons():
    # the vertex-based peer counts 8 here (each duplicate cuts again); the exact answer is 6
    W1 = np.array([[1.0, 0.3], [1.0, 0.3], [-0.2, 1.0], [0.5, -1.0]])
    b1 = np.array([0.1, 0.1, 0.2, -0.1])
    Ws, bs = [W1, np.ones((1, 4))], [b1, np.zeros(1)]
    res = run(Ws, bs, vertex_path=True)
    ref = reference_patterns(Ws, bs, -1.0, 1.0)
    assert patterns_of(res) == ref
    rng = np.random.default_rng(1)
    Ws, bs = random_net(rng, 2, [3, 3])
    Ws[0] = np.r_[Ws[0], Ws[0][:2]]
    bs[0] = np.r_[bs[0], bs[0][:2]]
    Ws[1] = np.c_[Ws[1], rng.normal(size=(3, 2))]
    both_paths(Ws, bs)


def test_deep_layer_repeating_the_first():
    W1 = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    b1 = np.array([0.0, 0.0, -0.5])
    v, _ = both_paths([W1, np.eye(3), np.ones((1, 3))], [b1, np.zeros(3), np.zeros(1)])
    assert v.regions == run([W1, np.ones((1, 3))], [b1, np.zeros(1)], vertex_path=True).regions


def test_nearly_concurrent_lines():
    # six lines through points 1e-13 apart: float64 cannot prove the vertex signs, the exact count
    # (tiny triangles included) must still come out, the same on both paths. The lines are in
    # general position (distinct directions; three exact float lines meet in one point only on a
    # set of offsets of measure zero) and every crossing lies in the box: 1 + n + C(n, 2) regions
    n = 6
    ang = np.pi * np.arange(n) / n + 0.1
    W1 = np.stack([np.cos(ang), np.sin(ang)], axis=1)
    b1 = 1e-13 * np.random.default_rng(3).normal(size=n)
    v, _ = both_paths([W1, np.ones((1, n))], [b1, np.zeros(1)])
    assert v.regions == 1 + n + n * (n - 1) // 2


def test_general_position_needs_no_certificate_beyond_vertex_signs():
    Ws, bs = random_net(np.random.default_rng(4), 3, [8, 6, 5])
    res = vertex_only(run(Ws, bs, vertex_path=True))
    assert res.stats.vertex_duals < 0.01 * res.stats.vertex_decisions


def test_a_wrong_vertex_set_falls_back_to_lps():
    # a band wider than the box puts every vertex "on" every hyperplane: the vertex path must
    # give up on those parents, and the LP path must still find every region
    Ws, bs = random_net(np.random.default_rng(5), 3, [6, 5])
    # vertex_proofs off: no vertex sign is taken as proven, proposals only
    res = run(Ws, bs, vertex_path=True, vertex_band=1e3, vertex_proofs=False)
    assert res.stats.lps > 0
    assert patterns_of(res) == reference_patterns(Ws, bs, -1.0, 1.0)


def test_a_tiny_cap_sends_big_parents_to_lps():
    Ws, bs = random_net(np.random.default_rng(6), 3, [6, 5, 4])
    res = run(Ws, bs, vertex_path=True, vertex_cap=12)
    assert res.stats.lps > 0 and res.stats.vertex_decisions > 0
    assert patterns_of(res) == reference_patterns(Ws, bs, -1.0, 1.0)


def test_vertex_path_refuses_what_it_cannot_do():
    Ws, bs = random_net(np.random.default_rng(7), 2, [3])
    with pytest.raises(InputError, match="vertex path"):
        run(Ws, bs, lo=None, vertex_path=True)
    net = lrenum.make_network(Ws, bs)
    poly = lrenum.polytope_domain(np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]), np.array([1.0, 1.0, 1.0]), 2)
    with pytest.raises(InputError, match="vertex path"):
        lrenum.enumerate_regions(net, poly, lrenum.Settings(vertex_path=True))


def test_default_uses_vertices_at_low_d_only():
    Ws, bs = random_net(np.random.default_rng(8), 3, [5, 4])
    assert run(Ws, bs).stats.lps == 0
    Ws, bs = random_net(np.random.default_rng(8), 9, [5, 4])
    assert run(Ws, bs).stats.vertex_decisions == 0


def test_vertex_sets_rebuilt_from_rows_match_the_split_and_resume_on_vertices():
    # regions read back (resume, Ray tasks) get their vertex sets from their rows (qhull)
    from dataclasses import replace

    from lrenum import runtime
    from lrenum.certify.decide import DecisionStats
    from lrenum.core.frame import Frame
    from lrenum.core.split import Splitter
    from lrenum.core.tree import ResumeState, root_region

    Ws, bs = random_net(np.random.default_rng(9), 3, [7, 6])
    net = lrenum.make_network(Ws, bs)
    frame = Frame(net, lrenum.box_domain(-1.0, 1.0, 3), lrenum.Settings(vertex_path=True))
    splitter = Splitter(frame, runtime.select_device("cpu"), DecisionStats())
    kids, _ = splitter.split(splitter.vertex.with_root_vertices(root_region(frame)))
    rebuilt = splitter.vertex.with_vertices(replace(kids, vertices=None)).vertices
    split_sets = kids.vertices
    assert np.array_equal(rebuilt.count, split_sets.count)
    for a, b in zip(np.split(np.arange(rebuilt.x.shape[0]), np.cumsum(rebuilt.count)[:-1]),
                    np.split(np.arange(split_sets.x.shape[0]), np.cumsum(split_sets.count)[:-1])):
        dist = np.abs(rebuilt.x[a][:, None, :] - split_sets.x[b][None, :, :]).max(axis=2)
        match = dist.argmin(axis=1)
        assert dist.min(axis=1).max() < 1e-9 and len(set(match)) == len(b)
        assert np.array_equal(rebuilt.tight[a], split_sets.tight[b][match])
    kids = kids.with_ids(np.arange(len(kids)))
    resumed = lrenum.enumerate_regions(net, None, lrenum.Settings(vertex_path=True), collect=True,
                                       resume=ResumeState([(1, replace(kids, vertices=None))], [1, len(kids), 0]))
    assert resumed.stats.lps == 0 and resumed.stats.vertex_decisions > 0
    assert patterns_of(resumed) == reference_patterns(Ws, bs, -1.0, 1.0)


@pytest.mark.parametrize("d,widths,seed", [(2, [6, 6, 3], 11), (3, [5, 5, 3], 12)])
def test_proven_vertices_lie_within_their_radius_of_the_exact_vertices(d, widths, seed):
    # the oracle: every vertex of a proven set, recomputed in rationals from its tight rows
    from flint import fmpq, fmpq_mat

    from lrenum import runtime
    from lrenum.certify.decide import DecisionStats
    from lrenum.core.frame import Frame
    from lrenum.core.split import Splitter
    from lrenum.core.tree import root_region
    from lrenum.lp.exact import q

    Ws, bs = random_net(np.random.default_rng(seed), d, widths)
    net = lrenum.make_network(Ws, bs)
    frame = Frame(net, lrenum.box_domain(-1.0, 1.0, d), lrenum.Settings(vertex_path=True))
    splitter = Splitter(frame, runtime.select_device("cpu"), DecisionStats())
    layer1, _ = splitter.split(splitter.vertex.with_root_vertices(root_region(frame)))
    layer2, _ = splitter.split(layer1)
    V = layer2.vertices
    assert V.proven.mean() > 0.9                         # general position: nearly every set is proven
    exact = frame.exact
    offsets = frame.offsets
    checked = 0
    starts = np.cumsum(V.count) - V.count
    for i in np.nonzero(V.proven)[0][:60]:
        bits = layer2.bits[i]
        for v in range(starts[i], starts[i] + V.count[i]):
            ids = [t for t in range(2 * d + int(offsets[-1])) if int(V.tight[v, t // 64]) >> (t % 64) & 1]
            assert len(ids) == d                           # proven sets are simple
            rows, rhs = [], []
            for t in ids:
                if t < 2 * d:                              # box face: x_j = lo_j or hi_j
                    rows.append([fmpq(1) if c == t // 2 else fmpq(0) for c in range(d)])
                    rhs.append(q(1.0 if t % 2 else -1.0))
                else:
                    flat = t - 2 * d
                    layer = int(np.searchsorted(offsets, flat, side="right")) - 1
                    prefix = [bits[offsets[m]:offsets[m + 1]] for m in range(layer)]
                    G, g = exact.pre_activation(prefix, flat - offsets[layer])
                    rows.append(list(G))
                    rhs.append(-g)
            x_exact = fmpq_mat(d, d, [c for r in rows for c in r]).solve(fmpq_mat(d, 1, rhs))
            radius = q(float(V.radius[v]))
            for c in range(d):
                assert abs(q(float(V.x[v, c])) - x_exact[c, 0]) <= radius
            checked += 1
    assert checked > 50


def test_edge_search_in_small_chunks():
    Ws, bs = random_net(np.random.default_rng(10), 4, [7, 6])
    res = vertex_only(run(Ws, bs, vertex_path=True, pair_chunk=5))
    assert patterns_of(res) == reference_patterns(Ws, bs, -1.0, 1.0)
