"""Max pooling over windows of three or more values: winner-take-all groups (issue 34).

Oracles: the regions straight from the model's definition (ReLU signs and each window's argmax,
:func:`reference.reference_maxpool_patterns`), and an independent twin: the same function lowered
to a plain ReLU network by a chain of pairwise comparisons, enumerated by lrenum's plain path,
whose (finer) regions collapse onto the argmax cells once each is named by its argmax.
"""

from __future__ import annotations

import numpy as np
import pytest

import lrenum
from lrenum.cli import main
from lrenum.model.npz import load_npz, save_npz
from lrenum.model.graph import graph_input
from reference import reference_maxpool_patterns


def pooled_network(W1, b1, windows, W2=None, b2=None):
    """``relu(W2 maxpool(relu(W1 x + b1)) + b2)`` summed to one output, through lrenum's graph."""
    g, x = graph_input((W1.shape[1],))
    h = g.activate(x.mapped(W1, b1, (W1.shape[0],)), np.zeros(W1.shape[0]))
    p = g.max_pool(h, windows, (len(windows),), "pool")
    if W2 is not None:
        p = g.activate(p.mapped(W2, b2, (W2.shape[0],)), np.zeros(W2.shape[0]))
    return g.assemble(p.mapped(np.ones((1, p.size)), None, (1,)))


def keys_of(net, patterns, windows, n1, with_layer2):
    """(layer-1 bits, argmax position per window, layer-2 bits) of lrenum's patterns: a window's
    argmax is its active gate's element, or its first element when no gate is active."""
    offs = net.neuron_offsets
    out = set()
    unit = 0
    gate_of = []                       # per window, the pool layer's units of elements 1..k-1
    for w in windows:
        gate_of.append(list(range(unit, unit + len(w) - 1)))
        unit += len(w) - 1
    for p in patterns:
        pool = p[offs[1]:offs[2]]
        wins = []
        for gates in gate_of:
            on = [t for t, u in enumerate(gates) if pool[u]]
            assert len(on) <= 1
            wins.append(on[0] + 1 if on else 0)
        l2 = tuple(int(v) for v in p[offs[2]:offs[3]][~net.linear[2]]) if with_layer2 else ()
        out.add((tuple(int(v) for v in p[:n1]), tuple(wins), l2))
    return out


def chain_twin(W1, b1, windows, W2=None, b2=None):
    """The same function as a plain ReLU network: max(y_1..y_k) = m_k with m_1 = y_1 and
    m_t = m_{t-1} + relu(y_t - m_{t-1}), one layer per step; m and y (both >= 0) are carried by
    identity ReLUs, which never split. ``F`` maps a layer's units to the logical state [m; y]."""
    n1, nw = W1.shape[0], len(windows)
    K = max(len(w) for w in windows)
    first = np.zeros((nw, n1))
    first[np.arange(nw), [w[0] for w in windows]] = 1
    Ws, bs = [W1, np.r_[first, np.eye(n1)]], [b1, np.zeros(nw + n1)]
    F = np.eye(nw + n1)
    for step in range(1, K):
        has = [i for i, w in enumerate(windows) if len(w) > step]
        D = np.zeros((len(has), nw + n1))
        for r, i in enumerate(has):
            D[r, i], D[r, nw + windows[i][step]] = -1, 1
        Ws.append(np.r_[D, np.eye(nw + n1)] @ F)
        bs.append(np.zeros(len(has) + nw + n1))
        F = np.zeros((nw + n1, len(has) + nw + n1))
        F[has, np.arange(len(has))] = 1
        F[np.arange(nw + n1), len(has) + np.arange(nw + n1)] = 1
    T = np.c_[np.eye(nw), np.zeros((nw, n1))] @ F
    if W2 is not None:
        Ws += [W2 @ T, np.ones((1, W2.shape[0]))]
        bs += [b2, np.zeros(1)]
    else:
        Ws.append(np.ones((1, nw)) @ T)
        bs.append(np.zeros(1))
    return lrenum.make_network(Ws, bs)


def random_case(seed, d, n1, windows, n2=0, dup=False):
    rng = np.random.default_rng(seed)
    W1, b1 = rng.normal(size=(n1, d)), rng.normal(size=n1) * 0.5
    if dup:                                  # two equal units in one window: ties everywhere they are
        W1[windows[0][2]], b1[windows[0][2]] = W1[windows[0][1]], b1[windows[0][1]]
    W2 = rng.normal(size=(n2, len(windows))) if n2 else None
    b2 = rng.normal(size=n2) * 0.5 if n2 else None
    return W1, b1, W2, b2


CASES = [
    (0, 2, 6, [[0, 1, 2], [3, 4, 5]], 0, False),
    (1, 3, 6, [[0, 1, 2], [3, 4, 5]], 3, False),
    (2, 3, 7, [[0, 1, 2, 3], [4, 5, 6]], 0, False),
    (3, 2, 5, [[0, 1, 2, 3], [1, 4], [2, 3, 4]], 2, False),      # overlapping windows, a window of two
    (4, 3, 6, [[0, 1, 2], [3, 4, 5]], 2, True),                   # a duplicated unit: exact ties
    (5, 4, 8, [[0, 1, 2, 3], [4, 5, 6, 7]], 3, False),
]


@pytest.mark.parametrize("seed,d,n1,windows,n2,dup", CASES)
def test_argmax_regions_equal_the_definition(seed, d, n1, windows, n2, dup):
    W1, b1, W2, b2 = random_case(seed, d, n1, windows, n2, dup)
    net = pooled_network(W1, b1, windows, W2, b2)
    assert net.has_groups
    X = np.random.default_rng(seed).uniform(-1, 1, size=(500, d))
    y = np.maximum(X @ W1.T + b1, 0)
    p = np.stack([y[:, w].max(axis=1) for w in windows], axis=1)
    if W2 is not None:
        p = np.maximum(p @ W2.T + b2, 0)
    np.testing.assert_allclose(net.forward(X)[:, 0], p.sum(axis=1), rtol=1e-12, atol=1e-12)
    res = lrenum.enumerate_regions(net, collect=True)
    got = keys_of(net, res.patterns, windows, n1, W2 is not None)
    assert len(got) == res.regions
    want = reference_maxpool_patterns(W1, b1, windows, W2, b2)
    assert got == want
    if not dup:     # exact zeros (dead units tied in a window) pass the float certificates as they are
        assert res.summary()["witness_repairs"] == 0, res.summary()
    # every sampled point's key is one of them (the definition at points, ties to the lower index)
    pats = net.patterns(X)
    assert keys_of(net, pats, windows, n1, W2 is not None) <= got


@pytest.mark.parametrize("seed,d,n1,windows,n2,dup", CASES[:4])
def test_argmax_regions_are_the_chain_twins_regions_merged(seed, d, n1, windows, n2, dup):
    """The chain of pairwise comparisons splits argmax cells further; merged by their argmax its
    regions give the same keys (two independent lowerings, both through lrenum's plain split)."""
    W1, b1, W2, b2 = random_case(seed, d, n1, windows, n2, dup)
    net = pooled_network(W1, b1, windows, W2, b2)
    twin = chain_twin(W1, b1, windows, W2, b2)
    X = np.random.default_rng(seed + 100).uniform(-1, 1, size=(300, d))
    np.testing.assert_allclose(twin.forward(X), net.forward(X), rtol=1e-12, atol=1e-12)
    res = lrenum.enumerate_regions(net, collect=True)
    tw = lrenum.enumerate_regions(twin, collect=True)
    # name each twin region by a forward pass at its witness through the grouped network
    keys = keys_of(net, net.patterns(tw.witnesses), windows, n1, W2 is not None)
    assert keys == keys_of(net, res.patterns, windows, n1, W2 is not None)
    assert tw.regions >= res.regions == len(keys)
    if seed == 1:                  # here the chain splits argmax cells: 163 regions for 133
        assert tw.regions > res.regions


def torch_lowered(torch, layers, seed):
    """A float64 torch model on (1, 3, 3) images, lowered; its forward pass checked on 200 inputs."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(*layers).double().eval()
    net = lrenum.from_torch(model, input_shape=(1, 3, 3))
    assert net.has_groups
    X = np.random.default_rng(seed + 1).uniform(-1, 1, size=(200, 1, 3, 3))
    with torch.no_grad():
        want = model(torch.tensor(X)).numpy()
    np.testing.assert_allclose(net.forward(X.reshape(200, -1)), want, rtol=1e-12, atol=1e-12)
    return net, X.reshape(200, -1)


def test_a_2x2_max_pool_from_torch_lowers_exactly_and_enumerates(tmp_path):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    net, _ = torch_lowered(torch, [nn.Conv2d(1, 2, 2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2, 3)], 0)
    # the conv as a dense layer: the regions from the definition over a small box
    W1 = net.weights[0]
    b1 = net.biases[0]
    windows = [[c * 4 + i for i in range(4)] for c in range(2)]
    x0 = np.random.default_rng(2).uniform(-0.5, 0.5, size=9)
    r = 0.3
    dom = lrenum.box_domain(x0 - r, x0 + r, 9)
    res = lrenum.enumerate_regions(net, dom, collect=True)
    # shift the box to the origin for the reference (x = x0 + u, u in [-r, r]^9)
    ref = reference_maxpool_patterns(W1, W1 @ x0 + b1, windows, lo=-r, hi=r)
    assert keys_of(net, res.patterns, windows, 8, False) == ref and res.regions == len(ref)


def test_torch_global_max_pooling_lowers_exactly():
    """AdaptiveMaxPool2d(1) (global max pooling over 4 values per channel) and a 3x3 MaxPool2d
    with stride 1, padding 1 and dilation 1 (overlapping windows, padding left out)."""
    torch = pytest.importorskip("torch")
    nn = torch.nn
    net, X = torch_lowered(torch, [nn.Conv2d(1, 2, 2), nn.ReLU(), nn.MaxPool2d(3, stride=1, padding=1),
                                   nn.Conv2d(2, 2, 1), nn.ReLU(), nn.AdaptiveMaxPool2d(1), nn.Flatten(),
                                   nn.Linear(2, 2)], 2)
    x0 = X[0]
    res = lrenum.enumerate_regions(net, lrenum.box_domain(x0 - 0.05, x0 + 0.05, 9), collect=True)
    # every sampled point's pattern is an enumerated one
    pts = x0 + np.random.default_rng(4).uniform(-0.05, 0.05, size=(20000, 9))
    have = {p.tobytes() for p in np.packbits(res.patterns, axis=1)}
    assert {p.tobytes() for p in np.packbits(net.patterns(pts), axis=1)} <= have


def test_group_files_verify_and_a_changed_winner_fails(tmp_path, capsys):
    W1, b1, W2, b2 = random_case(1, 3, 6, [[0, 1, 2], [3, 4, 5]], 3)
    net = pooled_network(W1, b1, [[0, 1, 2], [3, 4, 5]], W2, b2)
    npz = str(tmp_path / "net.npz")
    save_npz(npz, net)
    assert load_npz(npz)[0].digest() == net.digest()
    out = str(tmp_path / "r.h5")
    assert main(["enumerate", npz, "-o", out, "-q"]) == 0
    assert main(["verify", out, npz, "-q"]) == 0
    with lrenum.open(out) as f:
        assert f.regions == lrenum.enumerate_regions(net).regions
    import h5py

    with h5py.File(out, "r+") as f:          # the first window's winner moved from its gate 0 to gate 1
        pat = f["layer_2/pattern"][:]
        row = int(np.flatnonzero(pat[:, 0] & 1)[0])          # bit j % 8 (little) of byte j // 8
        pat[row, 0] = (pat[row, 0] & ~np.uint8(1)) | np.uint8(2)
        f["layer_2/pattern"][:] = pat
    capsys.readouterr()
    assert main(["verify", out, npz, "-q"]) == 1
    assert "layer 2" in capsys.readouterr().err
    with h5py.File(out, "r+") as f:          # both gates of the first window active
        pat = f["layer_2/pattern"][:]
        pat[row, 0] |= np.uint8(3)
        f["layer_2/pattern"][:] = pat
    assert main(["verify", out, npz, "-q"]) == 1
    assert "two winners" in capsys.readouterr().err


def test_group_units_must_be_relu_units():
    W = [np.ones((3, 2)), np.ones((1, 3))]
    b = [np.zeros(3), np.zeros(1)]
    with pytest.raises(lrenum.InputError, match="winner-take-all group units must be ReLU"):
        lrenum.make_network(W, b, slopes=[0.1], groups=[np.array([0, 0, -1])])
    with pytest.raises(lrenum.InputError, match="group ids of layer 1"):
        lrenum.make_network(W, b, groups=[np.array([0.5, 0, -1])])


def test_local_boxes_estimates_and_bounds_on_a_grouped_network():
    """The other tools on a grouped network: local walks equal a separate enumeration per box; the
    tree estimator's probes average near the count and its certain lower bound holds; the
    analytic bound holds."""
    from lrenum.counting.bounds import compute_bounds

    W1, b1, W2, b2 = random_case(1, 3, 6, [[0, 1, 2], [3, 4, 5]], 3)
    net = pooled_network(W1, b1, [[0, 1, 2], [3, 4, 5]], W2, b2)
    pts = np.array([[0.1, -0.2, 0.3], [-0.5, 0.5, 0.0], [0.1, -0.2, 0.3]])
    loc = lrenum.local_regions(net, pts, 0.3, proxies=True, samples=4000)
    for p, r in zip(pts, loc.points):
        assert r.regions == lrenum.enumerate_regions(net, lrenum.box_domain(p - 0.3, p + 0.3, 3)).regions
        # sampled patterns: the network's own (winners, not z > 0), so never more than the regions
        assert 0 < r.proxies["sampled_patterns"] <= r.regions
    exact = lrenum.enumerate_regions(net).regions
    from lrenum.counting.estimate import tree_estimate

    est = tree_estimate(net, probes=400, seed=0)
    assert est.lower_bound <= exact
    spread = np.std(est.samples) / np.sqrt(est.samples.size)
    assert abs(np.mean(est.samples) - exact) < 4 * spread + 1e-9
    rep = compute_bounds(net, lrenum.box_domain(-1.0, 1.0, 3))
    assert rep.bounds["product"] >= exact


@pytest.mark.parametrize("cmd", [["estimate", "--method", "probes", "--probes", "8"], ["mipbound", "--trials", "1"],
                                 ["enumerate", "--geometry", "-o", "OUT"]])
def test_tools_without_group_support_refuse_in_one_line(tmp_path, capsys, cmd):
    W1, b1, W2, b2 = random_case(1, 3, 6, [[0, 1, 2], [3, 4, 5]], 3)
    npz = str(tmp_path / "net.npz")
    save_npz(npz, pooled_network(W1, b1, [[0, 1, 2], [3, 4, 5]], W2, b2))
    out = str(tmp_path / "g.h5")
    args = [cmd[0], npz] + [out if a == "OUT" else a for a in cmd[1:]] + ["-q"]
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("lrenum: error: ") and len(err.strip().splitlines()) == 1 and "3 or more" in err
    assert not (tmp_path / "g.h5").exists()


def test_point_patterns_follow_every_unit_kind():
    """The points estimator's patterns are the network's own: leaky slopes, carried units (bit 0,
    value passed on) and winner-take-all groups (its kernel once treated all three as ReLUs), and
    its certain lower bound never exceeds the exact count."""
    from lrenum import runtime
    from lrenum.counting.estimate import point_patterns, points_estimate, unpack_patterns
    from lrenum.model.graph import residual_network

    rng = np.random.default_rng(5)
    W1, b1, W2, b2 = random_case(1, 3, 6, [[0, 1, 2], [3, 4, 5]], 3)
    grouped = pooled_network(W1, b1, [[0, 1, 2], [3, 4, 5]], W2, b2)
    leaky = lrenum.make_network([rng.normal(size=(5, 3)), rng.normal(size=(4, 5)), rng.normal(size=(1, 4))],
                                [rng.normal(size=5), rng.normal(size=4), np.zeros(1)], slopes=[0.2, -0.5])
    res = residual_network([{"W": rng.normal(size=(4, 3)), "b": rng.normal(size=4) * 0.5},
                            {"W": rng.normal(size=(4, 4)), "b": rng.normal(size=4) * 0.5},
                            {"W": rng.normal(size=(4, 4)), "b": rng.normal(size=4) * 0.5, "skip": {1: None}}],
                           {"W": rng.normal(size=(1, 4)), "b": np.zeros(1)})
    X = rng.uniform(-1, 1, size=(3000, 3))
    dev = runtime.select_device(None)
    for net in (grouped, leaky, res):
        np.testing.assert_array_equal(unpack_patterns(net, point_patterns(net, X, dev)), net.patterns(X))
        assert points_estimate(net, points=3000).lower_bound <= lrenum.enumerate_regions(net).regions
