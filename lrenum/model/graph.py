"""Models with branches lowered to plain layers: residual connections, max pooling, carried values.

A tensor of a model is an affine function of its *sources*: the input (source 0) and the output
of every activation so far (source k is the k-th activation's output). A :class:`Value` holds that
function, ``v = sum_s A_s h_s + c``; linear operations map it, an addition of two branches sums
two of them, and an activation makes a new source. This is exact: only matrix products, no
sampling.

:func:`assemble` turns the sources into the plain layers lrenum enumerates. Hidden layer k's units
are the k-th activation's units followed by *carried* units: one linear unit (identity, never
splitting, :class:`lrenum.model.network.Network`) per entry of every earlier source that a later
layer or the output still reads. A chain (no branches) carries nothing and lowers exactly as
before. On every region each carried value is an affine function of the input, so the regions,
maps and ranks are the model's own: the carried units add width, not hyperplanes.

Max pooling: the max over a window ``y_1..y_k`` is ``y_1`` (carried) plus a winner-take-all group
of k - 1 units ``z_t = y_{t+1} - y_1`` (:class:`lrenum.model.network.Network`): its active unit
names the window's argmax, so regions are exactly the sets where every ReLU sign and every
window's argmax is constant (ties are lower-dimensional). For k = 2 the group is one ReLU unit,
``max(a, b) = a + relu(b - a)``. (A chain of pairwise ReLU comparisons would compute the same
function but split argmax cells: ``max(a, b, c)`` with c largest split again by ``a < b``.)
"""

from __future__ import annotations

import itertools
from typing import Optional, Sequence

import numpy as np

from ..errors import InputError
from .network import Network, make_network


class Value:
    """``v = sum_s terms[s] @ h_s + c`` on a tensor of ``shape`` (flattened row-major)."""

    def __init__(self, shape: Sequence[int], terms: dict, c: np.ndarray):
        self.shape, self.terms, self.c = tuple(int(v) for v in shape), terms, np.asarray(c, np.float64)

    @classmethod
    def source(cls, s: int, shape: Sequence[int]) -> "Value":
        n = int(np.prod(shape))
        return cls(shape, {s: np.eye(n)}, np.zeros(n))

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def mapped(self, W: np.ndarray, b, out_shape: Sequence[int]) -> "Value":
        """``W v + b`` (b None for none)."""
        c = W @ self.c + (0.0 if b is None else np.asarray(b, np.float64))
        return Value(out_shape, {s: W @ A for s, A in self.terms.items()}, np.broadcast_to(c, (W.shape[0],)).copy())

    def scaled(self, s: np.ndarray, t: np.ndarray) -> "Value":
        """Per-entry ``s * v + t``."""
        return Value(self.shape, {k: s[:, None] * A for k, A in self.terms.items()}, s * self.c + t)

    def reshaped(self, shape: Sequence[int]) -> "Value":
        return Value(shape, self.terms, self.c)

    def plus(self, other: "Value", what: str) -> "Value":
        if other.size != self.size:
            raise InputError(f"{what} adds tensors of shapes {self.shape} and {other.shape}")
        terms = dict(self.terms)
        for s, A in other.terms.items():
            terms[s] = terms[s] + A if s in terms else A
        return Value(self.shape, terms, self.c + other.c)


def max_pool_windows(shape: Sequence[int], kernel, stride, padding, dilation, what: str) -> tuple[list, tuple]:
    """Each output entry's window (flat input indices, padding left out) and the output shape of a
    max pool on an unbatched ``(C, *spatial)`` tensor."""
    C, spatial = int(shape[0]), tuple(int(v) for v in shape[1:])
    nd = len(kernel)
    if len(spatial) != nd:
        raise InputError(f"{what} with a {nd}-d window needs a (channels, {nd} spatial) input, got shape {tuple(shape)}")
    out_sp = tuple((spatial[a] + padding[a][0] + padding[a][1] - dilation[a] * (kernel[a] - 1) - 1) // stride[a] + 1
                   for a in range(nd))
    if any(v < 1 for v in out_sp):
        raise InputError(f"{what}: window {tuple(kernel)} does not fit the padded input {spatial}")
    index = np.arange(int(np.prod(shape))).reshape(shape)
    windows = []
    for ch in range(C):
        for pos in itertools.product(*[range(v) for v in out_sp]):
            win = []
            for tap in itertools.product(*[range(k) for k in kernel]):
                p = [pos[a] * stride[a] - padding[a][0] + tap[a] * dilation[a] for a in range(nd)]
                if all(0 <= p[a] < spatial[a] for a in range(nd)):
                    win.append(int(index[(ch,) + tuple(p)]))
            windows.append(win)
    return windows, (C,) + out_sp


class Graph:
    """The sources and activations of one model, in the order they were made."""

    def __init__(self, input_shape: Sequence[int]):
        self.source_sizes = [int(np.prod(input_shape))]
        self.layers: list[tuple[Value, np.ndarray, np.ndarray]] = []     # (pre-activation, slopes, group ids)

    def activate(self, pre: Value, slopes: np.ndarray, groups: Optional[np.ndarray] = None) -> Value:
        """A hidden layer on ``pre`` (slopes per unit; winner-take-all group ids, -1 for none); its
        output as a new source."""
        gid = np.full(pre.size, -1, np.int64) if groups is None else np.asarray(groups, np.int64)
        self.layers.append((pre, np.asarray(slopes, np.float64), gid))
        self.source_sizes.append(pre.size)
        return Value.source(len(self.source_sizes) - 1, pre.shape)

    def max_pool(self, v: Value, windows: list, out_shape, what: str) -> Value:
        """The max over each window of ``v`` (see the module docstring): one group per window of
        two or more values, its units ``v[w_t] - v[w_0]``."""
        n = len(windows)
        first = np.zeros((n, v.size))
        first[np.arange(n), [w[0] for w in windows]] = 1.0
        units = [(i, t) for i, w in enumerate(windows) for t in range(1, len(w))]   # (window, element)
        if not units:
            return v.mapped(first, None, out_shape)
        diff = np.zeros((len(units), v.size))
        rows = np.arange(len(units))
        diff[rows, [windows[i][t] for i, t in units]] = 1.0
        diff[rows, [windows[i][0] for i, _ in units]] -= 1.0
        window_of = np.array([i for i, _ in units])
        sizes = np.bincount(window_of, minlength=n)
        gid = np.where(sizes[window_of] > 1, window_of, -1)       # a window of two is a plain ReLU unit
        h = self.activate(v.mapped(diff, None, (len(units),)), np.zeros(len(units)), gid)
        place = np.zeros((n, len(units)))
        place[window_of, rows] = 1.0
        return v.mapped(first, None, out_shape).plus(h.mapped(place, None, out_shape), what)

    def assemble(self, output: Value) -> Network:
        """The plain network: hidden layer k = activation k's units, then the carried entries
        (see the module docstring). Only the entries of a source that a later reader uses are
        carried (a max pool keeps one side of each window: half its input)."""
        K = len(self.layers)
        if K == 0:
            raise InputError("the model has no activation (ReLU, LeakyReLU, PReLU or max pooling): nothing to enumerate")
        readers = [value.terms for value, _, _ in self.layers] + [output.terms]    # reader k + 1 reads layer k's output
        # read_after[k][s]: the entries of source s read by readers k + 1 .. K + 1 (layer k must carry them)
        read_after: list[dict] = [dict() for _ in range(K + 2)]
        for k in range(K, -1, -1):
            read_after[k] = {s: c.copy() for s, c in read_after[k + 1].items()}
            for s, A in readers[k].items():
                used = np.any(A != 0, axis=0)
                read_after[k][s] = read_after[k].get(s, np.zeros(used.size, bool)) | used
        where_prev = {0: np.arange(self.source_sizes[0])}   # source -> row of each entry in the previous layer (-1: absent)
        n_prev = self.source_sizes[0]
        weights, biases, slopes, linear, groups = [], [], [], [], []
        for k in range(1, K + 1):
            pre, slope, gid = self.layers[k - 1]
            carried = {s: np.flatnonzero(m) for s, m in read_after[k].items() if s < k and m.any()}
            n_real = pre.size
            n_out = n_real + sum(c.size for c in carried.values())
            W = np.zeros((n_out, n_prev))
            b = np.zeros(n_out)
            self._place(W[:n_real], pre, where_prev, k)
            b[:n_real] = pre.c
            where, row = {k: np.arange(n_real)}, n_real
            for s in sorted(carried):
                cols = carried[s]
                src = where_prev[s][cols]
                if np.any(src < 0):        # cannot happen: what is read later was carried this far
                    raise AssertionError(f"source {s} is not available to layer {k}")
                W[row + np.arange(cols.size), src] = 1.0
                where[s] = np.full(self.source_sizes[s], -1)
                where[s][cols] = row + np.arange(cols.size)
                row += cols.size
            weights.append(W)
            biases.append(b)
            slopes.append(np.concatenate([slope, np.ones(n_out - n_real)]))
            linear.append(np.arange(n_out) >= n_real)
            groups.append(np.concatenate([gid, np.full(n_out - n_real, -1, np.int64)]))
            where_prev, n_prev = where, n_out
        Wout = np.zeros((output.size, n_prev))
        self._place(Wout, output, where_prev, K + 1)
        leaky = any(np.any(np.where(m, 0.0, a)) for a, m in zip(slopes, linear))
        return make_network(weights + [Wout], biases + [output.c], slopes if leaky else None,
                            linear if any(m.any() for m in linear) else None,
                            groups if any(np.any(g >= 0) for g in groups) else None)

    def _place(self, W: np.ndarray, value: Value, where_prev: dict, reader: int) -> None:
        """Add ``value``'s terms into W's columns where the previous layer holds each entry."""
        for s, A in value.terms.items():
            used = np.flatnonzero(np.any(A != 0, axis=0))
            if used.size == 0:
                continue
            rows = where_prev.get(s, np.full(A.shape[1], -1))[used]
            if np.any(rows < 0):            # cannot happen: every entry read later is carried
                raise AssertionError(f"source {s} is not available to reader {reader}")
            W[:, rows] += A[:, used]


def graph_input(input_shape: Sequence[int]) -> tuple[Graph, Value]:
    """A new graph and its input value."""
    shape = tuple(int(v) for v in input_shape)
    if not shape or any(v < 1 for v in shape):
        raise InputError(f"invalid input shape {shape}")
    return Graph(shape), Value.source(0, shape)


def residual_network(layers: Sequence[dict], output: dict, slopes: Optional[Sequence] = None) -> Network:
    """A residual MLP from plain arrays: ``layers[k] = {"W": (n, n_prev), "b": (n,), "skip": {j: P}}``
    gives ``h_k = relu(W h_{k-1} + b + sum_j P_j h_j)`` (h_0 the input; P_j of shape (n, n_j), the
    identity when given as None); ``output`` the same keys without the activation."""
    d = np.asarray(layers[0]["W"]).shape[1]
    g, x = graph_input((d,))
    hs = [x]

    def pre_of(spec: dict, what: str) -> Value:
        W = np.asarray(spec["W"], np.float64)
        v = hs[-1].mapped(W, spec.get("b"), (W.shape[0],))
        for j, P in spec.get("skip", {}).items():
            if not 0 <= j < len(hs) - 1:
                raise InputError(f"{what}: skip source {j} is not an earlier layer (0 .. {len(hs) - 2})")
            P = np.eye(hs[j].size) if P is None else np.asarray(P, np.float64)
            v = v.plus(hs[j].mapped(P, None, (P.shape[0],)), what)
        return v

    for k, spec in enumerate(layers, start=1):
        pre = pre_of(spec, f"layer {k}")
        a = 0.0 if slopes is None else slopes[k - 1]
        hs.append(g.activate(pre, np.broadcast_to(np.asarray(a, np.float64), (pre.size,))))
    return g.assemble(pre_of(output, "the output layer"))
