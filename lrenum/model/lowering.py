"""Lowering real models to the dense form the enumerator uses.

A model is read as operations on its tensors (batch dimension dropped). Linear
operations (dense layers, convolutions, average pooling, zero padding, batch norm in eval mode,
reshapes) are composed exactly into one affine map on the flattened tensor (row-major, the layout
of both PyTorch and ONNX); an activation (ReLU, leaky ReLU, PReLU with fixed slopes) closes a
hidden layer; max pooling and the addition of branches (residual connections) go through
:mod:`lrenum.model.graph`. Operations that change nothing about the regions (dropout, identity) are skipped, and
a final softmax is dropped: the output map is then the logits. Anything else is refused with one
line naming it, never approximated.

Convolutions are unrolled by index arithmetic (each output position gathers its kernel taps), not
by sampling the operation, so the matrices are exact copies of the weights.
"""

from __future__ import annotations

import itertools
from typing import Optional, Sequence

import numpy as np

from ..errors import InputError
from .graph import Value, graph_input, max_pool_windows
from .network import Network


class Lowerer:
    """Collects operations in order; :meth:`network` returns the lowered :class:`Network`.

    The operations apply to the *current* tensor (:attr:`value`); a model with branches sets
    :attr:`value` to the branch it continues and joins branches with :meth:`add`
    (:mod:`lrenum.model.graph` carries what a later layer still reads)."""

    def __init__(self, input_shape: Sequence[int]):
        self.input_shape = tuple(int(v) for v in input_shape)
        self.graph, self.value = graph_input(self.input_shape)
        self.finished = False

    @property
    def shape(self) -> tuple:
        return self.value.shape

    @property
    def size(self) -> int:
        return self.value.size

    def _check_open(self, what: str) -> None:
        if self.finished:
            raise InputError(f"{what} after the final softmax: only a softmax at the very end can be dropped")

    # ------------------------------------------------------------------ linear operations
    def affine(self, W: np.ndarray, b: Optional[np.ndarray], out_shape: Sequence[int], what: str) -> None:
        """Apply ``x -> W x + b`` to the flattened tensor."""
        self._check_open(what)
        W = np.asarray(W, dtype=np.float64)
        if W.shape[1] != self.size:
            raise InputError(f"{what} expects {W.shape[1]} inputs but receives a tensor of shape {self.shape}")
        self.value = self.value.mapped(W, b, out_shape)

    def dense(self, W, b, what: str = "Linear") -> None:
        W = np.asarray(W, dtype=np.float64)
        self.affine(W, b, (W.shape[0],), what)

    def reshape(self, shape: Sequence[int], what: str = "Reshape") -> None:
        shape = [int(v) for v in shape]
        if -1 in shape:
            known = int(np.prod([v for v in shape if v != -1]))
            shape[shape.index(-1)] = self.size // max(1, known)
        if int(np.prod(shape)) != self.size:
            raise InputError(f"{what} to shape {tuple(shape)} does not match a tensor of shape {self.shape}")
        self._check_open(what)
        self.value = self.value.reshaped(shape)

    def flatten(self, what: str = "Flatten") -> None:
        self.reshape((self.size,), what)

    def channel_affine(self, scale: np.ndarray, shift: np.ndarray, what: str) -> None:
        """Per-channel ``x -> scale * x + shift`` (batch norm in eval mode), channel = first axis."""
        C = self.shape[0]
        scale, shift = np.asarray(scale, float).ravel(), np.asarray(shift, float).ravel()
        if scale.size != C or shift.size != C:
            raise InputError(f"{what} has {scale.size} channels but the tensor has shape {self.shape}")
        per = self.size // C
        s, t = np.repeat(scale, per), np.repeat(shift, per)
        self._check_open(what)
        self.value = self.value.scaled(s, t)

    def conv(self, weight: np.ndarray, bias: Optional[np.ndarray], stride, padding, dilation, groups: int,
             what: str = "Conv") -> None:
        """N-d convolution (cross-correlation, as in PyTorch and ONNX); padding per side: (begin, end)."""
        weight = np.asarray(weight, dtype=np.float64)
        W, out_shape = conv_matrix(self.shape, weight, stride, padding, dilation, groups, what)
        self.affine(W, None if bias is None else np.repeat(np.asarray(bias, float), int(np.prod(out_shape[1:]))),
                    out_shape, what)

    def avg_pool(self, kernel, stride, padding, count_include_pad: bool, what: str = "AvgPool") -> None:
        C = self.shape[0]
        k = tuple(int(v) for v in kernel)
        weight = np.zeros((C, 1) + k)
        weight[...] = 1.0 / float(np.prod(k))
        W, out_shape = conv_matrix(self.shape, weight, stride, padding, (1,) * len(k), C, what)
        if not count_include_pad and any(p for pair in padding for p in pair):
            # divide by the taps that fall inside the input, not by the kernel size
            ones = np.ones(self.size)
            inside = (W != 0).astype(float) @ ones
            W = (W != 0).astype(float) / np.where(inside > 0, inside, 1.0)[:, None]
        self.affine(W, None, out_shape, what)

    def pad(self, pads: Sequence[tuple], what: str = "Pad") -> None:
        """Zero padding: pads[i] = (begin, end) for axis i of the (unbatched) tensor."""
        src = np.arange(self.size).reshape(self.shape)
        out_shape = tuple(s + b + e for s, (b, e) in zip(self.shape, pads))
        if any(b < 0 or e < 0 for b, e in pads):
            raise InputError(f"{what} with negative padding (cropping) is not supported")
        idx = np.full(out_shape, -1)
        idx[tuple(slice(b, b + s) for s, (b, _) in zip(self.shape, pads))] = src
        flat = idx.ravel()
        W = np.zeros((flat.size, self.size))
        rows = np.nonzero(flat >= 0)[0]
        W[rows, flat[rows]] = 1.0
        self.affine(W, None, out_shape, what)

    # ------------------------------------------------------------------ activations
    def activation(self, slope, what: str) -> None:
        """Close a hidden layer: ``slope`` 0 (ReLU), a scalar (leaky ReLU) or per channel (PReLU)."""
        self._check_open(what)
        slope = np.asarray(slope, dtype=np.float64).ravel()
        if slope.size == 1:
            per_neuron = np.full(self.size, float(slope[0]))
        elif slope.size == self.shape[0]:
            per_neuron = np.repeat(slope, self.size // self.shape[0])
        elif slope.size == self.size:
            per_neuron = slope
        else:
            raise InputError(f"{what} has {slope.size} slopes for a tensor of shape {self.shape}")
        self.value = self.graph.activate(self.value, per_neuron)

    def max_pool(self, kernel, stride, padding, dilation, what: str = "MaxPool") -> None:
        """Max over each window (padding never wins: padded taps are left out of the window)."""
        self._check_open(what)
        windows, out_shape = max_pool_windows(self.shape, kernel, stride, padding, dilation, what)
        self.value = self.graph.max_pool(self.value, windows, out_shape, what)

    def global_max_pool(self, what: str = "GlobalMaxPool") -> None:
        """Max over each channel's whole extent; output ``(C, 1, ..., 1)``."""
        spatial = self.shape[1:]
        self.max_pool(spatial, spatial, [(0, 0)] * len(spatial), (1,) * len(spatial), what)

    def add(self, other: Value, what: str = "Add") -> None:
        """The current tensor plus another branch's (a residual connection)."""
        self._check_open(what)
        self.value = self.value.plus(other, what)

    def softmax(self, what: str = "Softmax") -> None:
        """Dropped: it is monotone per output and does not change the regions; the output map is
        then the logits. Only allowed last (checked by the next operation, if any)."""
        self.finished = True

    def network(self) -> Network:
        return self.graph.assemble(self.value)


def conv_matrix(in_shape: Sequence[int], weight: np.ndarray, stride, padding, dilation, groups: int,
                what: str = "Conv") -> tuple[np.ndarray, tuple]:
    """The dense matrix of an N-d convolution on an unbatched input of shape (C_in, *spatial).

    weight: (C_out, C_in / groups, *kernel); stride, dilation: per spatial axis; padding: per
    spatial axis (begin, end). Returns (matrix (out_size, in_size), output shape).
    """
    in_shape = tuple(int(v) for v in in_shape)
    nd = weight.ndim - 2
    if len(in_shape) != nd + 1:
        raise InputError(f"{what} with a {nd}-d kernel needs a (channels, {nd} spatial) input, got shape {in_shape}")
    C_in, spatial = in_shape[0], in_shape[1:]
    C_out, C_per = weight.shape[0], weight.shape[1]
    kernel = weight.shape[2:]
    if C_in != C_per * groups or C_out % groups:
        raise InputError(f"{what}: weight {weight.shape} with groups={groups} does not fit {C_in} input channels")
    stride, dilation = tuple(int(v) for v in stride), tuple(int(v) for v in dilation)
    out_sp = tuple((spatial[a] + padding[a][0] + padding[a][1] - dilation[a] * (kernel[a] - 1) - 1) // stride[a] + 1
                   for a in range(nd))
    if any(v < 1 for v in out_sp):
        raise InputError(f"{what}: kernel {kernel} does not fit the padded input {spatial}")
    out_shape = (C_out,) + out_sp
    M = np.zeros((int(np.prod(out_shape)), int(np.prod(in_shape))))
    in_index = np.arange(int(np.prod(in_shape))).reshape(in_shape)
    out_pos = np.stack(np.meshgrid(*[np.arange(v) for v in out_sp], indexing="ij"), axis=-1).reshape(-1, nd)
    out_per = int(np.prod(out_sp))
    for o in range(C_out):
        g = o // (C_out // groups)
        for ci in range(C_per):
            cin = g * C_per + ci
            for tap in itertools.product(*[range(k) for k in kernel]):
                w = weight[(o, ci) + tap]
                if w == 0:
                    continue
                pos = out_pos * np.array(stride) - np.array([p[0] for p in padding]) + np.array(tap) * np.array(dilation)
                ok = np.all((pos >= 0) & (pos < np.array(spatial)), axis=1)
                rows = o * out_per + np.nonzero(ok)[0]
                cols = in_index[(cin,) + tuple(pos[ok].T)]
                M[rows, cols] += w
    return M, out_shape
