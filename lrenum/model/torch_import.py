"""PyTorch models in (placeholder; rewritten for issue #15)."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .network import Network, make_network


def from_torch(module) -> Network:
    """Build a :class:`Network` from a PyTorch ``nn.Sequential`` of ``Linear`` and ``ReLU``.

    ``Linear`` layers must alternate with ``ReLU`` and the last module must be ``Linear``.
    torch is imported lazily: it is never a dependency of lrenum.
    """
    try:
        import torch.nn as nn
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise InputError("from_torch needs PyTorch installed") from exc
    layers = list(module.children()) if isinstance(module, nn.Sequential) else [module]
    weights, biases = [], []
    expect_linear = True
    for layer in layers:
        if isinstance(layer, nn.Linear) and expect_linear:
            W = layer.weight.detach().cpu().double().numpy()
            b = (layer.bias.detach().cpu().double().numpy() if layer.bias is not None
                 else np.zeros(W.shape[0]))
            weights.append(W)
            biases.append(b)
            expect_linear = False
        elif isinstance(layer, nn.ReLU) and not expect_linear:
            expect_linear = True
        else:
            raise InputError(f"unsupported module {type(layer).__name__} at this position: expected "
                             f"{'Linear' if expect_linear else 'ReLU'} (Sequential of Linear/ReLU only)")
    if expect_linear:
        raise InputError("the last module must be a Linear output layer")
    return make_network(weights, biases)
