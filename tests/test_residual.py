"""Residual connections and max pooling (issue 34): lowered with linear carried units
(lrenum.model.graph), checked against the residual definition itself (tests/reference.py's
reference_residual_patterns, native forward passes and Jacobians), against plain-network twins,
against onnx's reference evaluator, and through files, verify and bad input."""

import numpy as np
import pytest

import lrenum
from lrenum.cli import main
from lrenum.model.graph import residual_network
from lrenum.model.npz import load_npz, save_npz
from reference import reference_patterns, reference_residual_patterns


def _residual_layers(rng, d, widths=(5, 4, 4), out=2):
    """Three residual layers with skips from the input and from hidden layer 1, and an output
    that reads hidden layer 1 again: (layers as (W, b, skips), output (W, b, skips))."""
    n1, n2, n3 = widths
    L1 = (rng.normal(size=(n1, d)), rng.normal(size=n1) * 0.5, {})
    L2 = (rng.normal(size=(n2, n1)), rng.normal(size=n2) * 0.5, {0: rng.normal(size=(n2, d))})
    L3 = (rng.normal(size=(n3, n2)), rng.normal(size=n3) * 0.5, {1: rng.normal(size=(n3, n1)), 0: np.eye(n3, d)})
    O = (rng.normal(size=(out, n3)), np.zeros(out), {1: rng.normal(size=(out, n1))})
    return [L1, L2, L3], O


def _spec(t):
    return {"W": t[0], "b": t[1], "skip": t[2]}


def _native(layers, O, X):
    """Forward pass and per-point Jacobian ranks after every layer, from the definition."""
    hs, Js = [X], [np.broadcast_to(np.eye(X.shape[1]), (len(X), X.shape[1], X.shape[1]))]
    ranks = []
    for W, b, skips in layers:
        z = hs[-1] @ W.T + b + sum(hs[j] @ P.T for j, P in skips.items())
        J = np.einsum("nk,bkd->bnd", W, Js[-1]) + sum(np.einsum("nk,bkd->bnd", P, Js[j]) for j, P in skips.items())
        act = (z > 0).astype(float)
        hs.append(z * act)
        Js.append(J * act[:, :, None])
        ranks.append([np.linalg.matrix_rank(m, tol=1e-9) for m in Js[-1]])
    W, b, skips = O
    y = hs[-1] @ W.T + b + sum(hs[j] @ P.T for j, P in skips.items())
    return y, np.array(ranks).T


@pytest.mark.parametrize("seed,d", [(0, 2), (1, 2), (2, 3), (3, 3), (4, 4)])
@pytest.mark.parametrize("vertex_path", [None, False])
def test_residual_regions_equal_the_definitions(seed, d, vertex_path):
    rng = np.random.default_rng(seed)
    layers, O = _residual_layers(rng, d)
    net = residual_network([_spec(t) for t in layers], _spec(O))
    assert net.has_linear and net.splitting_widths == (5, 4, 4)
    X = rng.uniform(-1, 1, size=(200, d))
    y, _ = _native(layers, O, X)
    np.testing.assert_allclose(net.forward(X), y, rtol=1e-12, atol=1e-12)
    res = lrenum.enumerate_regions(net, lrenum.box_domain(-1.0, 1.0, d),
                                   lrenum.Settings().replace(vertex_path=vertex_path), collect=True)
    real = ~net.linear_flat
    assert not res.patterns[:, ~real].any()          # carried units are never part of a pattern
    got = {tuple(int(v) for v in p[real]) for p in res.patterns}
    assert len(got) == res.regions
    assert got == reference_residual_patterns(layers, -1.0, 1.0)


def test_residual_ranks_are_the_jacobians_ranks(tmp_path):
    """A one-unit first layer caps its rank at 1; the skip from the input raises it again after
    layer 2, which a plain network cannot do (so no bound from the previous rank may be used)."""
    rng = np.random.default_rng(5)
    d = 3
    layers = [(rng.normal(size=(1, d)), np.array([0.2]), {}),
              (rng.normal(size=(4, 1)), rng.normal(size=4) * 0.3, {0: rng.normal(size=(4, d))})]
    O = (rng.normal(size=(2, 4)), np.zeros(2), {})
    net = residual_network([_spec(t) for t in layers], _spec(O))
    path = str(tmp_path / "r.npz")
    save_npz(path, net)
    out = str(tmp_path / "r.h5")
    assert main(["enumerate", path, "-o", out, "-q"]) == 0
    with lrenum.open(out) as f:
        fin = f.final()
        wit, ranks = fin["witness"], fin["rank"]
    _, native = _native(layers, O, wit)
    np.testing.assert_array_equal(ranks, native)
    assert ranks[:, 0].max() == 1 and ranks[:, 1].max() == 3
    assert main(["verify", out, path, "-q"]) == 0


def test_post_relu_skips_on_a_nonnegative_box_equal_the_identity_relu_twin():
    """On [0, 1]^d with skips from hidden layers and the input, a plain ReLU network that carries
    the skipped values through identity ReLU units (exact there: the values are >= 0, and such a
    unit never splits) has as many regions as the residual network."""
    rng = np.random.default_rng(6)
    d, n1, n2 = 3, 5, 4
    W1, b1 = rng.normal(size=(n1, d)), rng.normal(size=n1) * 0.5
    W2, b2, P0 = rng.normal(size=(n2, n1)), rng.normal(size=n2) * 0.5, rng.normal(size=(n2, d))
    W3, b3, P1 = rng.normal(size=(3, n2)), rng.normal(size=3) * 0.5, rng.normal(size=(3, n1))
    Wo = rng.normal(size=(2, 3))
    res = residual_network([{"W": W1, "b": b1}, {"W": W2, "b": b2, "skip": {0: P0}}, {"W": W3, "b": b3, "skip": {1: P1}}],
                           {"W": Wo, "b": np.zeros(2)})
    I_d, I_1 = np.eye(d), np.eye(n1)
    twin_W = [np.r_[W1, I_d],                                                  # [h1; x]
              np.r_[np.c_[W2, P0], np.c_[I_1, np.zeros((n1, d))]],                # [h2; h1]
              np.c_[W3, P1],                                                      # h3
              Wo]
    twin_b = [np.r_[b1, np.zeros(d)], np.r_[b2, np.zeros(n1)], b3, np.zeros(2)]
    twin = lrenum.make_network(twin_W, twin_b)
    dom = lrenum.box_domain(0.0, 1.0, d)
    X = rng.uniform(0, 1, size=(100, d))
    np.testing.assert_allclose(res.forward(X), twin.forward(X), rtol=1e-12, atol=1e-12)
    a = lrenum.enumerate_regions(res, dom).regions
    b = lrenum.enumerate_regions(twin, dom).regions
    assert a == b == len(reference_patterns(twin_W, twin_b, lo=0.0, hi=1.0)) > 5


def _pool_onnx(rng, in_shape=(1, 3, 4), window=(1, 2), tail="GlobalAveragePool"):
    """Conv -> ReLU -> Conv -> Add (the ReLU's output: a residual block) -> ReLU -> MaxPool ->
    tail (a global pool) -> Flatten -> Gemm, on one input of ``in_shape``."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    inits = {"c1": rng.normal(size=(2, 1, 3, 3)), "b1": rng.normal(size=2) * 0.2,
             "c2": rng.normal(size=(2, 2, 3, 3)) * 0.5, "b2": rng.normal(size=2) * 0.2,
             "w": rng.normal(size=(3, 2)), "b": rng.normal(size=3)}
    nodes = [helper.make_node("Conv", ["x", "c1", "b1"], ["r0"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["r0"], ["r1"]),
             helper.make_node("Conv", ["r1", "c2", "b2"], ["z2"], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["z2", "r1"], ["s"]),
             helper.make_node("Relu", ["s"], ["r2"]),
             helper.make_node("MaxPool", ["r2"], ["m"], kernel_shape=list(window), strides=list(window)),
             helper.make_node(tail, ["m"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "w", "b"], ["y"], transB=1)]
    g = helper.make_graph(nodes, "res", [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [1] + list(in_shape))],
                          [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [1, 3])],
                          [numpy_helper.from_array(v.astype(np.float64), k) for k, v in inits.items()])
    return onnx, helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("in_shape,tail", [((1, 3, 4), "GlobalAveragePool"), ((1, 1, 4), "GlobalMaxPool")])
def test_onnx_residual_block_with_max_pooling_lowers_exactly(in_shape, tail):
    rng = np.random.default_rng(7)
    onnx, model = _pool_onnx(rng, in_shape, tail=tail)
    from onnx.reference import ReferenceEvaluator

    net = lrenum.from_onnx(model)
    assert net.has_linear
    d = int(np.prod(in_shape))
    X = rng.uniform(-1, 1, size=(30, d))
    ev = ReferenceEvaluator(model)
    want = np.concatenate([ev.run(None, {"x": x.reshape((1,) + in_shape)})[0] for x in X])
    np.testing.assert_allclose(net.forward(X), want, rtol=1e-12, atol=1e-12)


def test_a_global_max_pool_over_six_values_lowers_enumerates_and_verifies(tmp_path, capsys):
    """GlobalMaxPool over 6 values (a winner-take-all group of 5): forward equal to
    onnx.reference, and a file that verifies (issue 34; the argmax oracles are in
    tests/test_maxpool_groups.py)."""
    onnx, model = _pool_onnx(np.random.default_rng(7), (1, 3, 4), tail="GlobalMaxPool")
    from onnx.reference import ReferenceEvaluator

    net = lrenum.from_onnx(model)
    assert net.has_groups and max(len(m) for g in net.group_members for m in g) == 5
    X = np.random.default_rng(8).uniform(-1, 1, size=(30, 12))
    ev = ReferenceEvaluator(model)
    want = np.concatenate([ev.run(None, {"x": x.reshape(1, 1, 3, 4)})[0] for x in X])
    np.testing.assert_allclose(net.forward(X), want, rtol=1e-12, atol=1e-12)
    path = str(tmp_path / "m.onnx")
    onnx.save(model, path)
    out = str(tmp_path / "m.h5")
    assert main(["enumerate", path, "-o", out, "-q", "--box", "0.2", "0.4"]) == 0
    assert main(["verify", out, path, "-q", "--box", "0.2", "0.4"]) == 0


def test_two_window_max_pool_equals_its_relu_twin_and_the_reference():
    """max(a, b) of post-ReLU values against a plain network with max(a, b) = a + ReLU(b - a),
    a carried by an identity ReLU unit (a >= 0): same function, same number of regions; and the
    lowered pool's patterns equal the reference's on its own (plain) lowering."""
    rng = np.random.default_rng(8)
    d, n = 2, 4
    W1, b1 = rng.normal(size=(n, d)), rng.normal(size=n) * 0.5
    Wo, bo = rng.normal(size=(2, 2)), np.zeros(2)
    low = lrenum.model.lowering.Lowerer((d,))
    low.dense(W1, b1)
    low.activation(0.0, "relu")
    low.reshape((1, n))
    low.max_pool((2,), (2,), [(0, 0)], (1,), "MaxPool1d")
    low.flatten()
    low.dense(Wo, bo)
    pooled = low.network()
    assert pooled.hidden_widths == (4, 4)      # the pool layer: 2 comparisons, and only the 2 kept sides carried
    D = np.array([[-1, 1, 0, 0], [0, 0, -1, 1.0]])
    S = np.array([[1, 0, 0, 0], [0, 0, 1, 0.0]])
    twin_W = [W1, np.r_[D, S], Wo @ np.c_[np.eye(2), np.eye(2)]]
    twin_b = [b1, np.zeros(4), bo]
    twin = lrenum.make_network(twin_W, twin_b)
    X = rng.uniform(-1, 1, size=(100, d))
    h = np.maximum(X @ W1.T + b1, 0)
    np.testing.assert_allclose(pooled.forward(X), np.c_[h[:, :2].max(1), h[:, 2:].max(1)] @ Wo.T + bo, atol=1e-12)
    np.testing.assert_allclose(twin.forward(X), pooled.forward(X), atol=1e-12)
    dom = lrenum.box_domain(-1.0, 1.0, d)
    a = lrenum.enumerate_regions(pooled, dom, collect=True)
    b = lrenum.enumerate_regions(twin, dom)
    assert a.regions == b.regions
    real = ~pooled.linear_flat
    got = {tuple(int(v) for v in p[real]) for p in a.patterns}
    assert got == reference_residual_patterns([(W1, b1, {}), (D, np.zeros(2), {})], -1.0, 1.0)


def test_onnx_residual_file_enumerates_verifies_and_tampering_fails(tmp_path, capsys):
    rng = np.random.default_rng(9)
    onnx, model = _pool_onnx(rng)
    path = str(tmp_path / "res.onnx")
    onnx.save(model, path)
    npz = str(tmp_path / "res.npz")
    assert main(["convert", path, "-o", npz, "-q"]) == 0
    net, _ = load_npz(npz)
    assert net.has_linear and net.digest() == lrenum.from_onnx(model).digest()
    out = str(tmp_path / "res.h5")
    assert main(["enumerate", npz, "-o", out, "-q", "--box", "0.3", "0.32"]) == 0
    assert main(["verify", out, npz, "-q", "--box", "0.3", "0.32"]) == 0
    import h5py

    with lrenum.open(out) as f:
        assert f.regions > 1
    layer = next(l for l, m in enumerate(net.linear, start=1) if m.any())
    lin = int(np.flatnonzero(net.linear[layer - 1])[0])
    with h5py.File(out, "r+") as f:                       # a carried unit stored active
        pat = f[f"layer_{layer}/pattern"][:]
        pat[0, lin // 8] |= np.uint8(1 << (lin % 8))       # bit j % 8 (little) of byte j // 8
        f[f"layer_{layer}/pattern"][:] = pat
    capsys.readouterr()
    assert main(["verify", out, npz, "-q", "--box", "0.3", "0.32"]) == 1
    assert "linear" in capsys.readouterr().err


def test_linear_units_in_files_and_bad_masks(tmp_path, capsys):
    rng = np.random.default_rng(10)
    layers, O = _residual_layers(rng, 2)
    net = residual_network([_spec(t) for t in layers], _spec(O))
    plain = lrenum.make_network(net.weights, net.biases, [np.where(m, 1.0, 0.0) for m in net.linear])
    assert plain.digest() != net.digest()              # the same weights without carried units split more
    path = str(tmp_path / "n.npz")
    save_npz(path, net)
    back, _ = load_npz(path)
    assert [np.array_equal(a, b) for a, b in zip(back.linear, net.linear)] == [True] * 3
    with pytest.raises(lrenum.InputError, match="linear-unit mask of layer 1"):
        lrenum.make_network(net.weights, net.biases, None, [np.ones(2, bool), None, None])
    arrays = dict(np.load(path))
    arrays["linear7"] = np.ones(3, bool)
    np.savez(str(tmp_path / "bad.npz"), **arrays)
    assert main(["enumerate", str(tmp_path / "bad.npz"), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lrenum: error: ") and len(err.strip().splitlines()) == 1 and "linear7" in err


def test_bounds_and_mipbound_of_a_residual_network_hold():
    rng = np.random.default_rng(11)
    layers, O = _residual_layers(rng, 2)
    net = residual_network([_spec(t) for t in layers], _spec(O))
    dom = lrenum.box_domain(-1.0, 1.0, 2)
    from lrenum.counting.bounds import compute_bounds
    from lrenum.counting.mipbound import mipbound

    rep = compute_bounds(net, dom)
    assert set(rep.bounds) == {"product"}
    exact = lrenum.enumerate_regions(net, dom).regions
    assert rep.best >= exact
    out = mipbound(net, dom, trials=2, seed=0, time_limit=20)    # carried units: h = z, no binary
    assert 1 <= out.verified_patterns <= out.lower_bound <= exact


def test_local_regions_of_a_residual_network_match_separate_runs():
    rng = np.random.default_rng(12)
    layers, O = _residual_layers(rng, 3)
    net = residual_network([_spec(t) for t in layers], _spec(O))
    pts = rng.uniform(-0.5, 0.5, size=(4, 3))
    loc = lrenum.local_regions(net, pts, 0.2)
    for i, p in enumerate(pts):
        one = lrenum.enumerate_regions(net, lrenum.box_domain(p - 0.2, p + 0.2, 3))
        assert loc.counts[i] == one.regions


def _torch_resnet(torch):
    """A torchvision-style basic block (conv, BN, ReLU, conv, BN, add, ReLU), a projected
    shortcut (1x1 conv), max pooling over (1, 2) windows and adaptive average pooling."""
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, c_in, c_out):
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(c_out)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(c_out)
            self.down = None if c_in == c_out else nn.Sequential(nn.Conv2d(c_in, c_out, 1), nn.BatchNorm2d(c_out))

        def forward(self, x):
            identity = x if self.down is None else self.down(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            out += identity
            return self.relu(out)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU())
            self.block1 = Block(2, 2)
            self.block2 = Block(2, 3)
            self.pool = nn.MaxPool2d((1, 2))
            self.avg = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            x = self.block2(self.block1(self.stem(x)))
            x = self.avg(self.pool(x))
            return self.fc(torch.flatten(x, 1))

    torch.manual_seed(3)
    net = Net()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return net.double().eval()


def test_torch_residual_blocks_and_pools_lower_exactly():
    torch = pytest.importorskip("torch")
    model = _torch_resnet(torch)
    net = lrenum.from_torch(model, input_shape=(1, 3, 4))
    assert net.has_linear
    X = np.random.default_rng(13).uniform(-1, 1, size=(40, 1, 3, 4))
    with torch.no_grad():
        want = model(torch.tensor(X)).numpy()
    np.testing.assert_allclose(net.forward(X.reshape(40, -1)), want, rtol=1e-11, atol=1e-12)
    res = lrenum.enumerate_regions(net, lrenum.box_domain(0.2, 0.23, 12))
    assert res.regions >= 1


def test_torch_unsupported_join_is_one_line():
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class Mul(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(3, 3), nn.Linear(3, 3)

        def forward(self, x):
            return torch.relu(self.a(x)) * self.b(x)

    with pytest.raises(lrenum.InputError, match="joins branches by addition only"):
        lrenum.from_torch(Mul())


def test_a_line_through_a_residual_network_keeps_its_carried_units():
    """`lrenum line` restricts the first layer; the carried units must stay carried (else they
    would split the segment as ReLUs)."""
    from lrenum.model.slicing import line_network

    rng = np.random.default_rng(14)
    layers, O = _residual_layers(rng, 3)
    net = residual_network([_spec(t) for t in layers], _spec(O))
    a, b = rng.uniform(-1, 1, 3), rng.uniform(-1, 1, 3)
    sub, dom = line_network(net, a, b)
    assert [np.array_equal(x, y) for x, y in zip(sub.linear, net.linear)] == [True] * 3
    s = np.linspace(0, 1, 7)[:, None]
    np.testing.assert_allclose(sub.forward(s), net.forward(a + s * (b - a)), rtol=1e-12, atol=1e-12)
    res = lrenum.enumerate_regions(sub, dom, collect=True)
    # the segment's pieces, from the definition: sign changes of the real units along a fine grid
    t = np.linspace(0, 1, 200001)[:, None]
    pats = net.patterns(a + t * (b - a))
    assert res.regions == 1 + int(np.any(pats[1:] != pats[:-1], axis=1).sum())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_max_pool_after_relu_matches_the_reference_without_witness_repairs(seed):
    """A comparison relu(b) - relu(a) where a is dead is relu(b)'s own facet on the region: the
    classifier settles it from the pattern (one active input, no bias); a dead pair's difference
    is an exact 0 that the witness check accepts, so no witness needs repairing. Patterns
    against the reference enumerator on the lowered network."""
    rng = np.random.default_rng(seed)
    d = 3
    low = lrenum.model.lowering.Lowerer((d,))
    low.dense(rng.normal(size=(6, d)), rng.normal(size=6) * 0.5)
    low.activation(0.0, "relu")
    low.reshape((1, 6))
    low.max_pool((2,), (2,), [(0, 0)], (1,))
    low.flatten()
    low.dense(rng.normal(size=(4, 3)), rng.normal(size=4) * 0.5)
    low.activation(0.0, "relu")
    low.dense(rng.normal(size=(2, 4)), np.zeros(2))
    net = low.network()
    res = lrenum.enumerate_regions(net, lrenum.box_domain(-1.0, 1.0, d), collect=True)
    got = {tuple(int(v) for v in p) for p in res.patterns}
    lo, hi = -np.ones(d), np.ones(d)
    ref = reference_patterns(list(net.weights), list(net.biases), A_dom=np.r_[np.eye(d), -np.eye(d)],
                             b_dom=np.r_[hi, -lo], linear=list(net.linear))
    assert got == ref
    s = res.summary()
    # (exact decisions may remain: z_b - z_a = 0 passes through the meeting of z_a = 0 and z_b = 0,
    # a non-simple vertex of every region around it; that degeneracy is issue 30's)
    assert s["witness_repairs"] == 0 and s["exact_witnesses"] == 0, s
