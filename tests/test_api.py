"""Python API: list-of-arrays input, PyTorch loader, polytope domains, witnesses."""

import numpy as np
import pytest

import lrenum
from nets import patterns_of, random_net
from reference import reference_patterns


def test_witnesses_have_their_patterns():
    rng = np.random.default_rng(4)
    Ws, bs = random_net(rng, 3, [5, 4])
    net = lrenum.make_network(Ws, bs)
    res = lrenum.enumerate_regions(net, collect=True)
    pre = net.pre_activations(res.witnesses)
    bits = np.concatenate([z > 0 for z in pre], axis=1)
    assert np.array_equal(bits, res.patterns)
    assert np.all(np.abs(res.witnesses) < 1)


def test_polytope_domain_equals_box():
    rng = np.random.default_rng(5)
    Ws, bs = random_net(rng, 2, [5, 3])
    net = lrenum.make_network(Ws, bs)
    A = np.r_[np.eye(2), -np.eye(2)]
    b = np.ones(4)
    poly = lrenum.enumerate_regions(net, lrenum.polytope_domain(A, b, 2), collect=True)
    box = lrenum.enumerate_regions(net, lrenum.box_domain(-1, 1, 2), collect=True)
    assert patterns_of(poly) == patterns_of(box)


def test_triangle_domain_against_reference_on_a_box_cut():
    # the triangle x >= 0, y >= 0, x + y <= 1 with one hyperplane x = y through its corner
    W1 = np.array([[1.0, -1.0], [1.0, 1.0]])
    b1 = np.array([0.0, -0.5])
    net = lrenum.make_network([W1, np.ones((1, 2))], [b1, np.zeros(1)])
    dom = lrenum.polytope_domain(np.array([[-1.0, 0.0], [0.0, -1.0], [1.0, 1.0]]), np.array([0.0, 0.0, 1.0]), 2)
    assert lrenum.enumerate_regions(net, dom).regions == 4


def test_domain_dimension_mismatch():
    net = lrenum.make_network([np.ones((2, 3)), np.ones((1, 2))], [np.zeros(2), np.zeros(1)])
    with pytest.raises(lrenum.InputError):
        lrenum.enumerate_regions(net, lrenum.box_domain(-1, 1, 2))


def test_from_torch_matches_arrays():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3), torch.nn.ReLU(),
                                torch.nn.Linear(3, 1))
    net = lrenum.from_torch(model)
    Ws = [m.weight.detach().double().numpy() for m in model if isinstance(m, torch.nn.Linear)]
    bs = [m.bias.detach().double().numpy() for m in model if isinstance(m, torch.nn.Linear)]
    res = lrenum.enumerate_regions(net, collect=True)
    assert patterns_of(res) == reference_patterns(Ws, bs, -1.0, 1.0)
    with pytest.raises(lrenum.InputError):
        lrenum.from_torch(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Tanh(), torch.nn.Linear(2, 1)))


def test_most_children_is_the_general_position_count():
    from math import comb

    from lrenum.core.walk import most_children

    assert most_children(16, 12) == sum(comb(16, i) for i in range(13)) == 64839
    assert most_children(3, 5) == 8          # fewer hyperplanes than dimensions: every sign vector
    assert most_children(64, 2) == 1 + 64 + comb(64, 2)


def _budget(vertex_path: bool, children: int) -> lrenum.Settings:
    """Settings with a split budget of ``children`` on the path asked for (a CPU run)."""
    return lrenum.Settings(vertex_path=vertex_path, split_children_cpu=children, split_children_cpu_vertex=children)


@pytest.mark.parametrize("vertex_path", [False, True])
def test_first_probe_of_a_level_respects_the_split_budget(vertex_path):
    """Before a level's children per parent are known, a split takes no more parents than the
    budget allows at the general-position bound (a 12-input 16-16 network peaked at 2.8 GB when
    16 probing parents had 12x the budget in children); the regions are the same."""
    from lrenum.core.walk import LayerCallback

    rng = np.random.default_rng(5)
    Ws, bs = random_net(rng, 3, [8, 8])
    net, dom = lrenum.make_network(Ws, bs), lrenum.box_domain(-1.0, 1.0, 3)
    expected = patterns_of(lrenum.enumerate_regions(net, dom, lrenum.Settings(vertex_path=vertex_path), collect=True))
    taken = []
    res = lrenum.enumerate_regions(net, dom, _budget(vertex_path, 40), collect=True,     # bound at level 2: 93 children
                                   sink=LayerCallback(on_split=lambda layer, ident, n: taken.append(len(ident))))
    assert taken[0] == 1
    assert patterns_of(res) == expected
    lo, hi = dom.box
    assert expected == reference_patterns(Ws, bs, lo, hi)


@pytest.mark.parametrize("vertex_path", [False, True])
def test_waiting_regions_past_the_budget_are_kept_compact_and_rebuilt_exactly(vertex_path):
    """Regions waiting past the split budget are stored without rows and maps and rebuilt from
    their patterns when split: the rebuilt rows and maps equal the split's bit for bit, and a run
    that compacts most of its frontier finds the reference regions."""
    from lrenum import runtime
    from lrenum.certify.decide import DecisionStats
    from lrenum.core.frame import Frame
    from lrenum.core.rebuild import rebuild_compact
    from lrenum.core.split import Splitter
    from lrenum.core.tree import Tree, compact

    rng = np.random.default_rng(9)
    Ws, bs = random_net(rng, 3, [8, 6, 4])
    net, dom = lrenum.make_network(Ws, bs), lrenum.box_domain(-1.0, 1.0, 3)
    frame = Frame(net, dom, lrenum.Settings(vertex_path=vertex_path))
    splitter = Splitter(frame, runtime.select_device("cpu"), DecisionStats())
    root = Tree(frame, splitter, []).root()
    layer2 = splitter.split(splitter.split(root).children.take(slice(0, 4))).children
    back = rebuild_compact(frame, splitter.propagate, compact(layer2))
    for name in ("rows", "maps"):
        for a, b in zip(getattr(layer2, name), getattr(back, name)):
            np.testing.assert_array_equal(a, b)

    res = lrenum.enumerate_regions(net, dom, _budget(vertex_path, 24), collect=True)
    assert res.extra["compacted_regions"] > res.per_layer[0]       # every layer waited compacted at some point
    lo, hi = dom.box
    assert patterns_of(res) == reference_patterns(Ws, bs, lo, hi)
