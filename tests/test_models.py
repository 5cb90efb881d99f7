"""Real models in: ONNX graphs (built with onnx.helper, evaluated by onnx's reference evaluator as
the oracle), PyTorch modules (where torch is installed), leaky ReLU through the whole pipeline."""

import os
from math import comb

import numpy as np
import pytest

import lrenum
from lrenum.cli import main
from nets import patterns_of, random_net
from reference import reference_patterns

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _graph(nodes, inits, in_shape, out_shape, name="g"):
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [1] + list(in_shape))],
                          [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.DOUBLE, [1] + list(out_shape))],
                          [numpy_helper.from_array(v.astype(np.float64), k) for k, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def conv_model(rng):
    inits = {"cw": rng.normal(size=(3, 1, 3, 3)), "cb": rng.normal(size=3) * 0.1,
             "bs": rng.uniform(0.5, 2, 3), "bb": rng.normal(size=3), "bm": rng.normal(size=3) * 0.1,
             "bv": rng.uniform(0.5, 2, 3), "pr": rng.uniform(0.05, 0.3, (3, 1, 1)),
             "w1": rng.normal(size=(5, 12)), "b1": rng.normal(size=5),
             "w2": rng.normal(size=(4, 5)), "b2": rng.normal(size=4)}
    nodes = [helper.make_node("Pad", ["x", "pads"], ["p"], mode="constant"),
             helper.make_node("Conv", ["p", "cw", "cb"], ["c"], strides=[2, 2], pads=[1, 0, 0, 1], dilations=[1, 1]),
             helper.make_node("BatchNormalization", ["c", "bs", "bb", "bm", "bv"], ["n"], epsilon=1e-5),
             helper.make_node("PRelu", ["n", "pr"], ["r"]),
             helper.make_node("AveragePool", ["r"], ["a"], kernel_shape=[2, 2], strides=[1, 1]),
             helper.make_node("Flatten", ["a"], ["f"], axis=1),
             helper.make_node("Dropout", ["f"], ["f2"]),
             helper.make_node("Gemm", ["f2", "w1", "b1"], ["h"], transB=1),
             helper.make_node("LeakyRelu", ["h"], ["hr"], alpha=0.1),
             helper.make_node("MatMul", ["hr", "w2t"], ["o"]),
             helper.make_node("Add", ["o", "b2"], ["o2"]),
             helper.make_node("Softmax", ["o2"], ["y"])]
    inits["pads"] = np.array([0, 0, 1, 0, 0, 0, 0, 1])
    inits["w2t"] = inits.pop("w2").T
    model = _graph(nodes, inits, (1, 5, 5), (4,))
    model.graph.initializer[[t.name for t in model.graph.initializer].index("pads")].CopyFrom(
        numpy_helper.from_array(np.array([0, 0, 1, 0, 0, 0, 0, 1], np.int64), "pads"))
    return model


def _logits_oracle(model, X):
    """onnx's own reference evaluator, up to the logits (the final Softmax is dropped by lrenum)."""
    from onnx.reference import ReferenceEvaluator

    m = onnx.ModelProto()
    m.CopyFrom(model)
    nodes = list(m.graph.node)[:-1]
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    m.graph.output[0].name = nodes[-1].output[0]
    ev = ReferenceEvaluator(m)
    return np.concatenate([ev.run(None, {"x": x[None].reshape((1, 1, 5, 5))})[0] for x in X])


def test_onnx_conv_graph_lowers_exactly():
    rng = np.random.default_rng(0)
    model = conv_model(rng)
    net = lrenum.from_onnx(model)
    assert not net.is_relu and net.input_dim == 25
    X = rng.uniform(-1, 1, size=(50, 25))
    np.testing.assert_allclose(net.forward(X), _logits_oracle(model, X), rtol=1e-12, atol=1e-12)


def test_onnx_file_enumerates_and_verifies(tmp_path, capsys):
    rng = np.random.default_rng(1)
    model = conv_model(rng)
    path = str(tmp_path / "m.onnx")
    onnx.save(model, path)
    out = str(tmp_path / "r.h5")
    assert main(["enumerate", path, "-o", out, "-q", "--box", "0.2", "0.6"]) == 0
    npz = str(tmp_path / "m.npz")
    assert main(["convert", path, "-o", npz, "-q"]) == 0
    assert main(["verify", out, npz, "-q", "--box", "0.2", "0.6"]) == 0
    with lrenum.open(out) as f:
        assert f.regions > 1


def test_leaky_one_layer_count_does_not_depend_on_slope():
    rng = np.random.default_rng(2)
    d, n = 3, 7
    W, b = rng.normal(size=(n, d)), rng.normal(size=n)
    for slope in (0.0, 0.01, 0.5, -0.3):
        net = lrenum.make_network([W, np.ones((1, n))], [b, np.zeros(1)], slopes=[slope])
        assert lrenum.enumerate_regions(net, lrenum.unbounded_domain(d)).regions == sum(comb(n, i) for i in range(d + 1))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_leaky_deep_networks_match_reference(seed):
    rng = np.random.default_rng(seed)
    Ws, bs = random_net(rng, 2, [4, 4, 3])
    slopes = [rng.uniform(0.01, 0.4, size=4), 0.2, rng.uniform(-0.2, 0.2, size=3)]
    net = lrenum.make_network(Ws, bs, slopes=slopes)
    res = lrenum.enumerate_regions(net, collect=True)
    ref = reference_patterns(Ws, bs, -1.0, 1.0, slopes=[np.broadcast_to(s, (W.shape[0],)) for s, W in zip(slopes, Ws)])
    assert patterns_of(res) == ref


def test_leaky_file_round_trip_verifies(tmp_path, capsys):
    rng = np.random.default_rng(3)
    Ws, bs = random_net(rng, 3, [5, 4])
    net = lrenum.make_network(Ws, bs, slopes=[0.1, 0.05])
    path = str(tmp_path / "leaky.npz")
    lrenum.save_npz(path, net)
    out = str(tmp_path / "r.h5")
    assert main(["enumerate", path, "-o", out, "-q"]) == 0
    assert main(["verify", out, path, "-q"]) == 0
    with lrenum.open(out) as f:
        fin = f.final()
        i = int(np.nonzero(~fin["pattern"].all(axis=1))[0][0])     # a region with an inactive neuron
        A, c = f.affine_map(i)
    x = fin["witness"][i]
    np.testing.assert_allclose(A @ x + c, net.forward(x[None])[0], rtol=1e-10)
    # the map differs from the ReLU network's: slopes are carried into it
    relu = lrenum.make_network(Ws, bs)
    assert not np.allclose(A, relu.affine_map(fin["pattern"][i])[0])


@pytest.mark.parametrize("op", ["Tanh", "Sigmoid"])
def test_refused_onnx_op_is_one_line(tmp_path, capsys, op):
    nodes = [helper.make_node(op, ["x"], ["y"], name="bad")]
    path = str(tmp_path / "bad.onnx")
    onnx.save(_graph(nodes, {}, (1, 4, 4), (1, 3, 3)), path)
    code = main(["enumerate", path, "-q"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("lrenum: error: ") and len(err.strip().splitlines()) == 1 and op in err, err


@pytest.mark.parametrize("name,content", [("net.h5", b"\x89HDF\r\n"), ("net.onnx", b"garbage"), ("net.txt", b"1 2 3"),
                                          ("net.pt", b"garbage")])
def test_wrong_file_types_are_one_line(tmp_path, capsys, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    code = main(["enumerate", str(path), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("lrenum: error: ") and len(err.strip().splitlines()) == 1, err


# ---------------------------------------------------------------------------------- PyTorch
torch = pytest.importorskip("torch") if os.environ.get("LRENUM_TEST_TORCH", "1") == "1" else None


def _torch_models():
    nn = torch.nn
    torch.manual_seed(0)

    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(6, 5)
            self.b = nn.Sequential(nn.Dropout(0.3), nn.Linear(5, 4), nn.Identity())
            self.out = nn.Linear(4, 2)

        def forward(self, x):
            h = torch.relu(self.a(x))
            h = nn.functional.leaky_relu(self.b(h), 0.2)
            return self.out(h)

    bn = nn.BatchNorm1d(5)
    bn.running_mean.uniform_(-0.5, 0.5)
    bn.running_var.uniform_(0.5, 2.0)
    mlp = nn.Sequential(nn.Flatten(), nn.Sequential(nn.Linear(6, 5), bn, nn.ReLU()), nn.Dropout(0.1),
                        nn.Linear(5, 4), nn.PReLU(4, init=0.1), nn.Linear(4, 3), nn.Softmax(dim=1))
    conv = nn.Sequential(nn.ZeroPad2d((1, 0, 0, 1)), nn.Conv2d(1, 2, 3, stride=2, padding=1, dilation=1),
                         nn.BatchNorm2d(2), nn.LeakyReLU(0.05), nn.AvgPool2d(2, stride=1), nn.Flatten(),
                         nn.Linear(2 * 2 * 2, 3), nn.ReLU(), nn.Linear(3, 2))
    conv[2].running_mean.uniform_(-0.5, 0.5)
    return [("mlp", mlp, None, (6,)), ("custom", Custom(), None, (6,)), ("conv", conv, (1, 5, 5), (1, 5, 5))]


@pytest.mark.parametrize("which", [0, 1, 2])
def test_torch_models_lower_exactly(which):
    name, model, shape, in_shape = _torch_models()[which]
    model = model.double().eval()
    net = lrenum.from_torch(model, input_shape=shape)
    X = np.random.default_rng(which).uniform(-1, 1, size=(40,) + in_shape)
    with torch.no_grad():
        out = model(torch.tensor(X))
        if name == "mlp":   # lrenum drops the final softmax: compare logits
            out = model[:-1](torch.tensor(X))
    np.testing.assert_allclose(net.forward(X.reshape(40, -1)), out.numpy(), rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("layer", ["GELU", "SiLU"])
def test_torch_state_dict_and_smooth_activations_refused(layer):
    nn = torch.nn
    with pytest.raises(lrenum.InputError, match="state_dict"):
        lrenum.from_torch(nn.Sequential(nn.Linear(2, 2)).state_dict())
    with pytest.raises(lrenum.InputError, match=layer):
        lrenum.from_torch(nn.Sequential(nn.Conv2d(1, 1, 2), getattr(nn, layer)(), nn.Flatten(), nn.Linear(16, 1)),
                          input_shape=(1, 5, 5))


@pytest.mark.parametrize("which", [0, 1])   # the conv model's ZeroPad2d exports as a dynamic Pad subgraph
def test_torch_and_onnx_routes_give_the_same_regions(tmp_path, which):
    """The same model through from_torch and through torch's ONNX export and from_onnx."""
    import io
    import warnings

    name, model, shape, in_shape = _torch_models()[which]
    model = model.eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(model, torch.zeros((1,) + in_shape), buf, dynamo=False)
        except Exception as exc:   # the legacy exporter may be gone in a later torch
            pytest.skip(f"torch.onnx.export unavailable: {exc}")
    via_torch = lrenum.from_torch(model, input_shape=shape)
    via_onnx = lrenum.from_onnx(onnx.load_from_string(buf.getvalue()))
    d = via_torch.input_dim
    dom = lrenum.box_domain(-0.5, 0.5, d)
    a = lrenum.enumerate_regions(via_torch, dom, collect=True)
    b = lrenum.enumerate_regions(via_onnx, dom, collect=True)
    assert a.regions == b.regions > 1
    X = np.random.default_rng(0).uniform(-0.5, 0.5, size=(20, d))
    np.testing.assert_allclose(via_torch.forward(X), via_onnx.forward(X), rtol=1e-6, atol=1e-6)


def test_torchscript_file_through_the_command_line(tmp_path, capsys):
    nn = torch.nn
    torch.manual_seed(1)
    m = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Dropout(0.1), nn.Linear(5, 4), nn.LeakyReLU(0.1), nn.Linear(4, 2)).double()
    path = str(tmp_path / "m.pt")
    torch.jit.save(torch.jit.script(m.eval()), path)
    npz = str(tmp_path / "m.npz")
    assert main(["convert", path, "-o", npz, "-q"]) == 0
    net = lrenum.load_npz(npz)[0]
    X = np.random.default_rng(0).uniform(-1, 1, size=(10, 3))
    with torch.no_grad():
        np.testing.assert_allclose(net.forward(X), m(torch.tensor(X)).numpy(), rtol=1e-12, atol=1e-12)
    assert main(["enumerate", path, "-q"]) == 0
    pickled = str(tmp_path / "p.pt")
    torch.save(m, pickled)
    capsys.readouterr()
    assert main(["enumerate", pickled, "-q"]) == 2            # unpickling runs code: needs --unpickle
    assert "--unpickle" in capsys.readouterr().err
    assert main(["enumerate", pickled, "-q", "--unpickle"]) == 0
