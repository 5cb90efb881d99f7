"""ONNX models in, through the ``onnx`` package alone (the graph is parsed; nothing is run).

Each node reads one earlier tensor (plus initializers), except ``Add``, which may join two
branches (a residual connection, :mod:`lrenum.model.graph`). Supported: Gemm, MatMul (+ Add),
Add, Relu, LeakyRelu, PRelu, Conv, BatchNormalization, Flatten, Reshape, AveragePool,
GlobalAveragePool, MaxPool and GlobalMaxPool (any window), Pad (constant 0),
Dropout, Identity, and a final Softmax / LogSoftmax. Any other operation is refused with one
line naming the op and the node.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .lowering import Lowerer
from .network import Network


def load_onnx_model(path: str):
    """The ``onnx.ModelProto`` in a file (one-line errors for a missing package or a bad file)."""
    try:
        import onnx
    except ImportError:
        raise InputError("reading .onnx files needs the onnx package: pip install 'lrenum[onnx]'") from None
    try:
        model = onnx.load(path)
    except Exception as exc:   # protobuf raises several types on a bad file
        raise InputError(f"cannot read {path} as an ONNX model ({type(exc).__name__})") from None
    return model


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _pool_window(a: dict, where: str) -> tuple[list, list, list]:
    """A pooling node's kernel, strides and (begin, end) pads per spatial axis."""
    k = list(a["kernel_shape"])
    nd = len(k)
    pads = a.get("pads", [0] * (2 * nd))
    if a.get("ceil_mode", 0):
        raise InputError(f"{where}: ceil_mode is not supported")
    return k, list(a.get("strides", [1] * nd)), [(pads[i], pads[i + nd]) for i in range(nd)]


def from_onnx(model, input_shape=None) -> Network:
    """Lower an ``onnx.ModelProto`` (or its graph) to a :class:`Network`."""
    from onnx import numpy_helper

    graph = getattr(model, "graph", model)
    init = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in graph.initializer}
    consts = {}
    inputs = [i for i in graph.input if i.name not in init]
    if len(inputs) != 1:
        raise InputError(f"the ONNX graph has {len(inputs)} inputs; lrenum needs exactly one")
    if input_shape is None:
        dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim]
        if len(dims) >= 2 and dims[0] in (None, 1):
            dims = dims[1:]                   # the batch dimension
        if not dims or any(v is None or v < 1 for v in dims):
            raise InputError(f"the ONNX input '{inputs[0].name}' has no fixed shape ({dims}); give input_shape")
        input_shape = dims
    low = Lowerer(input_shape)
    values = {inputs[0].name: low.value}      # tensor name -> its value (branches may be read again)
    for node in graph.node:
        op, a = node.op_type, _attrs(node)
        where = f"{op} node '{node.name or node.output[0]}'"
        if op == "Constant":
            from onnx import numpy_helper as nh
            consts[node.output[0]] = nh.to_array(a["value"]).astype(np.float64) if "value" in a else None
            continue
        data = [x for x in node.input if x and x not in init and x not in consts]
        unknown = [x for x in data if x not in values]
        if unknown or not data or (len(data) > 1 and op != "Add") or len(data) > 2:
            raise InputError(f"{where}: reads {list(node.input)}; lrenum needs one earlier tensor per node "
                             "(two for an Add of branches)")
        low.value = values[data[0]]
        param = lambda k: (init.get(node.input[k], consts.get(node.input[k])) if len(node.input) > k and node.input[k] else None)
        if op == "Gemm":
            if a.get("transA", 0):
                raise InputError(f"{where}: transA=1 is not supported")
            B = param(1)
            W = B.T if not a.get("transB", 0) else B
            C = param(2)
            low.dense(a.get("alpha", 1.0) * W, None if C is None else a.get("beta", 1.0) * np.broadcast_to(C, (W.shape[0],)), where)
        elif op == "MatMul":
            B = param(1)
            if B is None or B.ndim != 2:
                raise InputError(f"{where}: only a 2-D constant right operand is supported")
            low.dense(B.T, None, where)
        elif op == "Add" and len(data) == 2:
            low.add(values[data[1]], where)
        elif op == "Add":
            bias = param(1) if param(1) is not None else param(0)
            if bias is None:
                raise InputError(f"{where}: only adding a constant is supported")
            low.affine(np.eye(low.size), np.broadcast_to(bias, low.shape).ravel(), low.shape, where)
        elif op == "Relu":
            low.activation(0.0, where)
        elif op == "LeakyRelu":
            low.activation(a.get("alpha", 0.01), where)
        elif op == "PRelu":   # numpy broadcasting against the (unbatched) tensor, as ONNX specifies
            slope = param(1)
            try:
                slope = np.broadcast_to(slope, (1,) + tuple(low.shape))[0] if slope.ndim > len(low.shape) else np.broadcast_to(slope, low.shape)
            except ValueError:
                raise InputError(f"{where}: slope of shape {slope.shape} does not broadcast to {low.shape}") from None
            low.activation(slope.ravel(), where)
        elif op == "Conv":
            w = param(1)
            nd = w.ndim - 2
            pads = a.get("pads", [0] * (2 * nd))
            if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
                raise InputError(f"{where}: auto_pad is not supported; export with explicit pads")
            low.conv(w, param(2), a.get("strides", [1] * nd), [(pads[i], pads[i + nd]) for i in range(nd)],
                     a.get("dilations", [1] * nd), int(a.get("group", 1)), where)
        elif op == "BatchNormalization":
            scale, bias, mean, var = param(1), param(2), param(3), param(4)
            s = scale / np.sqrt(var + a.get("epsilon", 1e-5))
            low.channel_affine(s, bias - mean * s, where)
        elif op == "Flatten":
            if a.get("axis", 1) != 1:
                raise InputError(f"{where}: only axis=1 is supported")
            low.flatten(where)
        elif op == "Reshape":
            shape = param(1)
            if shape is None:
                raise InputError(f"{where}: the target shape must be a constant")
            shape = [int(v) for v in shape]
            low.reshape(shape[1:] if len(shape) > 1 else shape, where)
        elif op == "AveragePool":
            k, strides, pairs = _pool_window(a, where)
            low.avg_pool(k, strides, pairs, bool(a.get("count_include_pad", 0)), where)
        elif op == "GlobalAveragePool":
            spatial = low.shape[1:]
            low.avg_pool(spatial, spatial, [(0, 0)] * len(spatial), True, where)
        elif op == "MaxPool":
            if len(node.output) > 1 and node.output[1]:
                raise InputError(f"{where}: the Indices output is not supported")
            k, strides, pairs = _pool_window(a, where)
            low.max_pool(k, strides, pairs, a.get("dilations", [1] * len(k)), where)
        elif op == "GlobalMaxPool":
            low.global_max_pool(where)
        elif op == "Pad":
            mode = a.get("mode", b"constant")
            if mode not in (b"constant", "constant"):
                raise InputError(f"{where}: only constant (zero) padding is supported")
            pads = param(1) if param(1) is not None else a.get("pads")
            value = param(2)
            if value is not None and np.any(value != 0):
                raise InputError(f"{where}: only zero padding is supported")
            pads = [int(v) for v in pads]
            n = len(pads) // 2
            pairs = [(pads[i], pads[i + n]) for i in range(n)][1:]      # drop the batch axis
            low.pad(pairs, where)
        elif op in ("Dropout", "Identity"):
            pass
        elif op in ("Softmax", "LogSoftmax"):
            low.softmax(where)
        else:
            raise InputError(f"unsupported ONNX op {where}: lrenum lowers Gemm, MatMul, Add, Relu, LeakyRelu, "
                             "PRelu, Conv, BatchNormalization, Flatten, Reshape, AveragePool, GlobalAveragePool, "
                             "MaxPool, GlobalMaxPool, Pad, Dropout, Identity and a final Softmax")
        values[node.output[0]] = low.value
    outputs = [o.name for o in graph.output]
    if len(outputs) != 1 or outputs[0] not in values:
        raise InputError(f"the ONNX graph has outputs {outputs}; lrenum needs exactly one, computed by the graph")
    low.value = values[outputs[0]]
    return low.network()
