"""PyTorch models in: any module built from linear pieces, (leaky) ReLUs, max pooling and residual additions.

Containers (``Sequential``, ``ModuleList`` used in order) are walked recursively; any other module
with children is traced with ``torch.fx`` so that its ``forward`` decides the order and which
tensor each operation reads (an addition of two branches is a residual connection, torchvision's
basic block among them: :mod:`lrenum.model.graph` carries the branch that skips). Each module
or function is lowered by :class:`lrenum.model.lowering.Lowerer`; anything it cannot lower exactly
is refused with one line naming it. torch is imported lazily: it is never a dependency of lrenum.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..errors import InputError
from .lowering import Lowerer
from .network import Network


def _np(t) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def _pairs(padding, nd: int) -> list[tuple[int, int]]:
    if isinstance(padding, str):
        raise InputError(f"padding='{padding}' is not supported; give explicit padding")
    p = (padding,) * nd if isinstance(padding, int) else tuple(padding)
    return [(int(v), int(v)) for v in p]


def _tuple(v, nd: int) -> tuple:
    return (int(v),) * nd if isinstance(v, int) else tuple(int(x) for x in v)


def from_torch(module, input_shape: Optional[Sequence[int]] = None) -> Network:
    """Lower a PyTorch module (in eval mode) to a :class:`Network`.

    ``input_shape``: one input's shape without the batch dimension, e.g. ``(1, 28, 28)`` for a
    convolutional network; inferred from the first ``Linear`` layer when omitted. A ``state_dict``
    cannot be lowered (it has no architecture): build the module and load it first.
    """
    try:
        import torch
        import torch.nn as nn
    except ImportError:  # pragma: no cover - depends on the environment
        raise InputError("from_torch needs PyTorch installed (pip install torch)") from None
    if isinstance(module, dict):
        raise InputError("got a state_dict (weights only, no architecture): build the model, call "
                         "model.load_state_dict(state) and pass the model")
    if not isinstance(module, nn.Module):
        raise InputError(f"expected a torch.nn.Module, got {type(module).__name__}")
    module.eval()
    if input_shape is None:
        shapeless = (nn.Flatten, nn.Dropout, nn.Identity)
        shapeless_names = {"Flatten", "Dropout", "Identity"}      # TorchScript modules keep only their class name
        first = next((m for m in module.modules() if not list(m.children()) and not isinstance(m, shapeless)
                      and getattr(m, "original_name", None) not in shapeless_names), None)
        if isinstance(first, nn.Linear):
            input_shape = (first.in_features,)
        elif getattr(first, "original_name", None) == "Linear":
            input_shape = (int(first.weight.shape[1]),)
        else:
            raise InputError("cannot infer the input shape (the model does not start with Linear): "
                             "pass input_shape (--input-shape on the command line)")
    low = Lowerer(input_shape)
    with torch.no_grad():
        _walk(module, low, torch, nn)
    return low.network()


def _walk(module, low: Lowerer, torch, nn) -> None:
    if isinstance(module, (nn.Sequential, nn.ModuleList)):
        for child in module:
            _walk(child, low, torch, nn)
        return
    if _lower_module(module, low, nn):
        return
    if type(module).__name__ == "RecursiveScriptModule":
        raise InputError(f"unsupported TorchScript module {module.original_name}; export the model to ONNX instead")
    if not list(module.children()):
        raise InputError(f"unsupported layer {type(module).__name__}: lrenum lowers Linear, Conv1d/2d, AvgPool, "
                         "AdaptiveAvg/MaxPool, MaxPool, BatchNorm (eval), Flatten, Dropout, "
                         "Identity, ZeroPad, ReLU, LeakyReLU, PReLU, residual additions, final Softmax")
    _trace(module, low, torch, nn)


def _lower_module(m, low: Lowerer, nn) -> bool:
    """Lower one leaf module; False if it is not a leaf lrenum knows."""
    name = type(m).__name__
    if name == "RecursiveScriptModule":     # TorchScript: the original class name and its parameters
        return _lower_script_module(m, low)
    if isinstance(m, nn.Linear):
        low.dense(_np(m.weight), None if m.bias is None else _np(m.bias), name)
    elif isinstance(m, (nn.Conv1d, nn.Conv2d)):
        nd = m.weight.ndim - 2
        if m.padding_mode != "zeros":
            raise InputError(f"{name} with padding_mode='{m.padding_mode}' is not supported (zeros only)")
        low.conv(_np(m.weight), None if m.bias is None else _np(m.bias), _tuple(m.stride, nd),
                 _pairs(m.padding, nd), _tuple(m.dilation, nd), m.groups, name)
    elif isinstance(m, (nn.AvgPool1d, nn.AvgPool2d)):
        nd = 1 if isinstance(m, nn.AvgPool1d) else 2
        if getattr(m, "ceil_mode", False) or getattr(m, "divisor_override", None):
            raise InputError(f"{name} with ceil_mode or divisor_override is not supported")
        k = _tuple(m.kernel_size, nd)
        low.avg_pool(k, _tuple(m.stride or k, nd), _pairs(m.padding, nd), bool(m.count_include_pad), name)
    elif isinstance(m, (nn.MaxPool1d, nn.MaxPool2d)):
        nd = 1 if isinstance(m, nn.MaxPool1d) else 2
        if m.ceil_mode or m.return_indices:
            raise InputError(f"{name} with ceil_mode or return_indices is not supported")
        k = _tuple(m.kernel_size, nd)
        low.max_pool(k, _tuple(m.stride or k, nd), _pairs(m.padding, nd), _tuple(m.dilation, nd), name)
    elif isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)):
        nd = 1 if isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveMaxPool1d)) else 2
        if getattr(m, "return_indices", False):
            raise InputError(f"{name} with return_indices is not supported")
        spatial = low.shape[1:]
        size = (m.output_size,) * nd if isinstance(m.output_size, int) else tuple(m.output_size)
        out = tuple(s if o is None else int(o) for o, s in zip(size, spatial))
        if len(spatial) != nd or any(s % o for s, o in zip(spatial, out)):
            raise InputError(f"{name}(output_size={m.output_size}) on a tensor of shape {low.shape}: only output sizes "
                             "that divide the input's are supported")
        k = tuple(s // o for s, o in zip(spatial, out))
        if isinstance(m, (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)):    # AdaptiveMaxPool2d(1): global max pooling
            low.max_pool(k, k, [(0, 0)] * nd, (1,) * nd, name)
        else:
            low.avg_pool(k, k, [(0, 0)] * nd, True, name)
    elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        if m.training or m.running_mean is None:
            raise InputError(f"{name} must be in eval mode with running statistics (call model.eval())")
        scale = (_np(m.weight) if m.affine else 1.0) / np.sqrt(_np(m.running_var) + m.eps)
        shift = (_np(m.bias) if m.affine else 0.0) - _np(m.running_mean) * scale
        low.channel_affine(scale * np.ones(m.num_features), shift * np.ones(m.num_features), name)
    elif isinstance(m, nn.Flatten):
        if m.start_dim not in (1, 0) or m.end_dim != -1:
            raise InputError(f"{name}(start_dim={m.start_dim}, end_dim={m.end_dim}): only full flattening is supported")
        low.flatten(name)
    elif isinstance(m, (nn.Dropout, nn.Identity)):
        pass
    elif isinstance(m, (nn.ZeroPad2d, nn.ConstantPad1d, nn.ConstantPad2d)):
        if getattr(m, "value", 0.0) != 0.0:
            raise InputError(f"{name} with a non-zero value is not supported")
        p = m.padding   # (left, right[, top, bottom]): last axis first
        pairs = [(0, 0)] + [(p[2 * i], p[2 * i + 1]) for i in range(len(p) // 2)][::-1]
        low.pad(pairs, name)
    elif isinstance(m, nn.ReLU):
        low.activation(0.0, name)
    elif isinstance(m, nn.LeakyReLU):
        low.activation(m.negative_slope, name)
    elif isinstance(m, nn.PReLU):
        low.activation(_np(m.weight), name)
    elif isinstance(m, (nn.Softmax, nn.LogSoftmax)):
        low.softmax(name)
    else:
        return False
    return True


def _lower_script_module(m, low: Lowerer) -> bool:
    kind = m.original_name
    if kind == "Sequential":
        for child in m.children():
            if not _lower_script_module(child, low):
                raise InputError(f"unsupported TorchScript layer {child.original_name}; export the model to ONNX instead")
        return True
    if kind == "Linear":
        low.dense(_np(m.weight), None if m.bias is None else _np(m.bias), kind)
    elif kind == "ReLU":
        low.activation(0.0, kind)
    elif kind == "LeakyReLU":
        low.activation(float(m.negative_slope), kind)
    elif kind == "Flatten":
        low.flatten(kind)
    elif kind in ("Dropout", "Identity"):
        pass
    elif kind in ("Softmax", "LogSoftmax"):
        low.softmax(kind)
    else:
        return False
    return True


def _trace(module, low: Lowerer, torch, nn) -> None:
    """A custom module: follow its forward through torch.fx, each operation on the tensor it reads
    (two for an addition of branches)."""
    import operator

    import torch.nn.functional as F
    from torch import fx

    try:
        graph = fx.symbolic_trace(module).graph
    except Exception as exc:   # fx raises many types for untraceable code
        raise InputError(f"cannot trace {type(module).__name__} with torch.fx ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:120]}); rewrite it as nn.Sequential") from None
    modules = dict(module.named_modules())
    relus = {torch.relu, F.relu}
    adds = {operator.add, operator.iadd, torch.add}
    values: dict = {}           # fx node -> its value (None: not a tensor, e.g. x.size(0))
    where = type(module).__name__ + ".forward"
    for node in graph.nodes:
        if node.op == "placeholder":
            values[node] = low.value
            continue
        if node.op == "output":
            out = node.args[0]
            if not isinstance(out, fx.Node) or values.get(out) is None:
                raise InputError(f"{where} must return one tensor")
            low.value = values[out]
            continue
        if node.op == "call_method" and node.target in ("size", "dim"):
            values[node] = None
            continue
        tensors = [a for a in node.args if isinstance(a, fx.Node) and values.get(a) is not None]
        if not tensors:
            raise InputError(f"unsupported operation {getattr(node.target, '__name__', node.target)} in {where}: "
                             "it reads no tensor of the model")
        is_add = (node.op == "call_function" and node.target in adds) or (node.op == "call_method" and node.target in ("add", "add_"))
        if is_add and len(tensors) == 2 and "alpha" not in node.kwargs:
            low.value = values[tensors[0]]
            low.add(values[tensors[1]], f"addition in {where}")
            values[node] = low.value
            continue
        if len(tensors) > 1:
            raise InputError(f"unsupported operation {getattr(node.target, '__name__', node.target)} ({node.op}) in "
                             f"{where}: it reads {len(tensors)} tensors (lrenum joins branches by addition only)")
        low.value = values[tensors[0]]
        _trace_op(node, modules, low, torch, nn, F, relus, where)
        values[node] = low.value


def _trace_op(node, modules, low: Lowerer, torch, nn, F, relus, where: str) -> None:
    """One traced operation on one tensor."""
    if node.op == "call_module":
        _walk(modules[node.target], low, torch, nn)
    elif node.op == "call_function" and node.target in relus:
        low.activation(0.0, "relu")
    elif node.op == "call_function" and node.target is F.leaky_relu:
        low.activation(node.kwargs.get("negative_slope", node.args[1] if len(node.args) > 1 else 0.01), "leaky_relu")
    elif (node.op == "call_function" and node.target is torch.flatten) or (node.op == "call_method" and node.target == "flatten"):
        low.flatten("flatten")
    elif node.op == "call_method" and node.target in ("view", "reshape"):
        shape = [a for a in node.args[1:] if isinstance(a, int)]
        low.reshape(shape[1:] if len(shape) > 1 else [-1], node.target)
    elif node.op == "call_method" and node.target == "relu":
        low.activation(0.0, "relu")
    elif node.op == "call_function" and node.target in (F.softmax, F.log_softmax, torch.softmax):
        low.softmax("softmax")
    elif node.op == "call_function" and node.target is F.dropout:
        pass
    else:
        target = getattr(node.target, "__name__", str(node.target))
        raise InputError(f"unsupported operation {target} ({node.op}) in {where}")
