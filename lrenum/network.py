"""ReLU network model, validation and loaders (``.npz`` files and PyTorch modules)."""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .errors import InputError


@dataclass(frozen=True)
class Network:
    """A fully connected ReLU network ``x -> W_L relu(... relu(W_1 x + b_1) ...) + b_L``.

    ``weights[k]`` has the PyTorch ``Linear`` layout ``(out, in)``. All layers but the last
    are ReLU layers; the last is the affine output layer and is never split on.
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    extras: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def input_dim(self) -> int:
        return int(self.weights[0].shape[1])

    @property
    def hidden_widths(self) -> tuple[int, ...]:
        return tuple(int(w.shape[0]) for w in self.weights[:-1])

    @property
    def n_hidden(self) -> int:
        return len(self.weights) - 1

    @property
    def output_dim(self) -> int:
        return int(self.weights[-1].shape[0])

    def truncated(self, k: int) -> "Network":
        """The network up to hidden layer k, with layer k+1 as its (affine) output layer.

        Used to rebuild the maps of regions of an intermediate layer with the same code as
        for final regions.
        """
        if not 1 <= k <= self.n_hidden:
            raise ValueError(f"k must be in 1..{self.n_hidden}")
        return Network(self.weights[:k + 1], self.biases[:k + 1])

    @property
    def neuron_offsets(self) -> np.ndarray:
        """Where each hidden layer starts in a flat per-neuron array: layer l (0-based) is
        ``[offsets[l], offsets[l + 1])``."""
        return np.concatenate([[0], np.cumsum(self.hidden_widths)]).astype(int)

    def layers_covered(self, n_bits: int) -> int:
        """How many hidden layers a pattern of ``n_bits`` leading neurons spans."""
        return int(np.searchsorted(self.neuron_offsets[1:], n_bits) + 1)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Network output for points ``x`` of shape ``(..., d)``, in float64."""
        h = np.asarray(x, dtype=np.float64)
        for W, b in zip(self.weights[:-1], self.biases[:-1]):
            h = np.maximum(h @ W.T + b, 0.0)
        return h @ self.weights[-1].T + self.biases[-1]

    def pre_activations(self, x: np.ndarray) -> list[np.ndarray]:
        """Pre-activations of every hidden layer at points ``x`` (float64)."""
        h = np.asarray(x, dtype=np.float64)
        out = []
        for W, b in zip(self.weights[:-1], self.biases[:-1]):
            z = h @ W.T + b
            out.append(z)
            h = np.maximum(z, 0.0)
        return out

    def digest(self) -> str:
        """SHA-256 over the weight and bias arrays (shapes and float64 bytes)."""
        h = hashlib.sha256()
        for W, b in zip(self.weights, self.biases):
            for a in (W, b):
                h.update(str(a.shape).encode())
                h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
        return h.hexdigest()


def make_network(weights: Sequence, biases: Sequence) -> Network:
    """Validate and build a :class:`Network` from lists of arrays (PyTorch layout)."""
    if len(weights) == 0:
        raise InputError("network has no layers")
    if len(weights) != len(biases):
        raise InputError(f"network has {len(weights)} weight matrices but {len(biases)} bias vectors")
    if len(weights) < 2:
        raise InputError("network needs at least one hidden ReLU layer before the affine output layer")
    Ws, bs = [], []
    prev = None
    for k, (W, b) in enumerate(zip(weights, biases), start=1):
        try:
            W = np.array(W, dtype=np.float64)
            b = np.array(b, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InputError(f"layer {k}: weights are not numeric ({exc})") from None
        if W.ndim != 2:
            raise InputError(f"W{k} must be a 2-D (out, in) matrix, got shape {W.shape}")
        if b.ndim != 1 or b.shape[0] != W.shape[0]:
            raise InputError(f"b{k} must have shape ({W.shape[0]},) to match W{k} {W.shape}, got {b.shape}")
        if W.shape[0] == 0 or W.shape[1] == 0:
            raise InputError(f"W{k} has an empty dimension: shape {W.shape}")
        if prev is not None and W.shape[1] != prev:
            raise InputError(f"W{k} has {W.shape[1]} inputs but layer {k - 1} has {prev} outputs")
        if not (np.all(np.isfinite(W)) and np.all(np.isfinite(b))):
            raise InputError(f"layer {k} contains NaN or inf")
        prev = W.shape[0]
        Ws.append(W)
        bs.append(b)
    return Network(tuple(Ws), tuple(bs))


def load_npz(path: str | os.PathLike) -> tuple[Network, dict]:
    """Load ``W1, b1, ..., WL, bL`` (and optional domain arrays) from an ``.npz`` file.

    Returns the network and a dict of the optional domain arrays found
    (``lo``, ``hi``, ``domain_A``, ``domain_b``).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"network file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: np.array(data[k]) for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(f"cannot read network file {path}: {exc}") from None
    if "W1" not in arrays:
        raise InputError(f"{path}: no array 'W1' (expected W1, b1, ..., WL, bL)")
    weights, biases = [], []
    k = 1
    while f"W{k}" in arrays:
        if f"b{k}" not in arrays:
            raise InputError(f"{path}: W{k} has no matching b{k}")
        weights.append(arrays[f"W{k}"])
        biases.append(arrays[f"b{k}"])
        k += 1
    net = make_network(weights, biases)
    domain_arrays = {k: arrays[k] for k in ("lo", "hi", "domain_A", "domain_b") if k in arrays}
    return net, domain_arrays


def save_npz(path: str | os.PathLike, net: Network, **extra: np.ndarray) -> None:
    """Write a network (and optional extra arrays such as ``lo``/``hi``) in lrenum's format."""
    arrays = {}
    for k, (W, b) in enumerate(zip(net.weights, net.biases), start=1):
        arrays[f"W{k}"] = W
        arrays[f"b{k}"] = b
    arrays.update(extra)
    np.savez(path, **arrays)


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
