"""The network model: a stack of affine layers with ReLU (or fixed-slope leaky ReLU) between them.

Everything lrenum enumerates is first lowered to this dense form (:mod:`lrenum.model.lowering`
turns convolutions, pooling, batch norm and friends into it, :mod:`lrenum.model.graph` residual
connections and max pooling). A hidden neuron's activation is ``z`` for ``z > 0`` and
``alpha * z`` otherwise; ``alpha = 0`` is the ReLU. The regions are the sign patterns either way;
only the affine maps (and so the ranks) depend on ``alpha``.

A hidden neuron may also be *linear*: its activation is the identity (slope 1) and it never
splits a region. Linear units carry values a later layer still needs past the layers between
(a residual connection's source, the input, one side of a max). They are never part of a
region's definition: their pattern bit is 0 and their constant bit 1 everywhere (they constrain
nothing, like a neuron constant on the region), and the rank after a layer counts only the
layer's other units (the real network's layer output; the carried values are not part of it).

Hidden ReLU units of one layer may form a *winner-take-all group* (``groups[l][j]``, the same
id >= 0; -1 is a plain unit): at most one unit of a group is active, the one with the largest
pre-activation, and only where that is positive (ties go to the lower index, and 0 ties go to
"none"). Its output is its pre-activation, every other unit of the group outputs 0. A max pool
over k values ``y_1..y_k`` is ``y_1`` (carried) plus a group of k - 1 units ``z_t = y_{t+1} -
y_1``: the active unit names the window's argmax (none: ``y_1``), so a region's pattern is its
argmax per window and a region is an argmax cell, as the definition asks. On a region a group's
rows are the argmax cell's: the active unit's ``z_t > 0`` and ``z_s < z_t`` for every other
unit (no active unit: ``z_s < 0`` for all), one row per unit (:meth:`Network.group_reference`). A group of
one unit is a plain ReLU unit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import Optional, Sequence

import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class Network:
    """``x -> W_L act(... act(W_1 x + b_1) ...) + b_L`` in PyTorch ``Linear`` layout ``(out, in)``.

    All layers but the last are hidden layers; the last is the affine output and is never
    split on. ``slopes[l]`` holds hidden layer l's negative-side slopes (zeros for ReLU).
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    slopes: tuple[np.ndarray, ...] = ()
    linear: tuple[np.ndarray, ...] = ()
    groups: tuple[np.ndarray, ...] = ()

    def __post_init__(self) -> None:
        if not self.slopes:   # plain ReLU network
            object.__setattr__(self, "slopes", tuple(np.zeros(W.shape[0]) for W in self.weights[:-1]))
        if not self.linear:   # no carried units
            object.__setattr__(self, "linear", tuple(np.zeros(W.shape[0], bool) for W in self.weights[:-1]))
        elif any(np.any(m & (a != 1.0)) for a, m in zip(self.slopes, self.linear)):
            object.__setattr__(self, "slopes", tuple(np.where(m, 1.0, a) for a, m in zip(self.slopes, self.linear)))
        if not self.groups:   # no winner-take-all groups
            object.__setattr__(self, "groups", tuple(np.full(W.shape[0], -1, np.int64) for W in self.weights[:-1]))

    @property
    def has_groups(self) -> bool:
        """True when some hidden layer has a winner-take-all group of two or more units (max pooling
        over windows of three or more values)."""
        return any(g.size and np.max(np.bincount(g[g >= 0], minlength=1), initial=0) > 1 for g in self.groups)

    @cached_property
    def group_members(self) -> tuple[tuple[np.ndarray, ...], ...]:
        """Per hidden layer, the unit indices of each group of two or more units (in unit order)."""
        out = []
        for g in self.groups:
            ids, counts = np.unique(g[g >= 0], return_counts=True)
            out.append(tuple(np.flatnonzero(g == i) for i, c in zip(ids, counts) if c > 1))
        return tuple(out)

    def active_units(self, layer: int, z: np.ndarray) -> np.ndarray:
        """Which units of hidden layer ``layer`` are active at pre-activations z (..., n): z > 0, and
        in a group only its winner (the largest z, the lowest index among ties, if positive)."""
        act = z > 0
        for members in self.group_members[layer]:
            zg = z[..., members]
            win = np.argmax(zg, axis=-1)
            top = np.take_along_axis(zg, win[..., None], axis=-1)[..., 0]
            onehot = (np.arange(members.size) == win[..., None]) & (top > 0)[..., None]
            act[..., members] = onehot
        return act

    def group_reference(self, layer: int, signs: np.ndarray) -> np.ndarray:
        """Per unit of hidden layer ``layer``, the unit its row is taken against (-1: its own row).

        ``signs`` (..., n): +1 active, -1 inactive, 0 undecided. In a group with an active unit t,
        every inactive unit j's row is ``z_j - z_t < 0`` (t beats j; on a tie the lower index
        wins, so a constant ``z_j - z_t`` is allowed to be 0 only when j > t); everywhere else a
        unit's row is its own pre-activation's. This rule makes a region's rows its argmax cell."""
        ref = np.full(np.shape(signs), -1, np.int64)
        for members in self.group_members[layer]:
            sg = np.asarray(signs)[..., members]
            won = sg > 0
            t = members[np.argmax(won, axis=-1)]
            ref[..., members] = np.where(won.any(axis=-1)[..., None] & (sg < 0), t[..., None], -1)
        return ref

    @property
    def has_linear(self) -> bool:
        """True when some hidden units are linear (carried values: residual sources, max pooling)."""
        return any(np.any(m) for m in self.linear)

    @cached_property
    def linear_flat(self) -> np.ndarray:
        """The linear units as one flat mask over every hidden neuron."""
        return np.concatenate(self.linear) if self.linear else np.zeros(0, bool)

    @property
    def splitting_widths(self) -> tuple[int, ...]:
        """Per hidden layer, the units that can split a region (all but the linear ones)."""
        return tuple(int((~m).sum()) for m in self.linear)

    @cached_property
    def copies(self):
        """Hidden neurons that are exact copies of another (:mod:`lrenum.model.coincidences`),
        found once per network object (every Frame of a run, the local walks' thousands included,
        shares it)."""
        from .coincidences import find_copies

        return find_copies(self)

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

    @property
    def is_relu(self) -> bool:
        """True when every hidden neuron is a plain ReLU (slope 0; linear units aside)."""
        return all(not np.any(np.where(m, 0.0, a)) for a, m in zip(self.slopes, self.linear))

    @property
    def neuron_offsets(self) -> np.ndarray:
        """Where each hidden layer starts in a flat per-neuron array: layer l (0-based) is
        ``[offsets[l], offsets[l + 1])``."""
        return np.concatenate([[0], np.cumsum(self.hidden_widths)]).astype(int)

    def layer_slices(self, flat: np.ndarray, n_layers: Optional[int] = None) -> list[np.ndarray]:
        """Split the last axis of a flat per-neuron array into its hidden layers' parts."""
        offs = self.neuron_offsets
        n_layers = self.layers_covered(flat.shape[-1]) if n_layers is None else n_layers
        return [flat[..., offs[l]:offs[l + 1]] for l in range(n_layers)]

    def layers_covered(self, n_bits: int) -> int:
        """How many hidden layers a pattern of ``n_bits`` leading neurons spans."""
        return int(np.searchsorted(self.neuron_offsets[1:], n_bits) + 1) if n_bits else 0

    def truncated(self, k: int) -> "Network":
        """The network up to hidden layer k, with layer k+1 as its (affine) output layer."""
        if not 1 <= k <= self.n_hidden:
            raise ValueError(f"k must be in 1..{self.n_hidden}")
        return Network(self.weights[:k + 1], self.biases[:k + 1], self.slopes[:k], self.linear[:k], self.groups[:k])

    def with_first_layer(self, W: np.ndarray, b: np.ndarray) -> "Network":
        """The same network with a new first layer (a slice or a line through the input space):
        slopes and carried units kept."""
        return Network((np.asarray(W, np.float64),) + self.weights[1:], (np.asarray(b, np.float64),) + self.biases[1:],
                       self.slopes, self.linear, self.groups)

    def activation_factors(self, layer: int, active: np.ndarray) -> np.ndarray:
        """Per-neuron factor of the map ``h = factor * z`` on a region: 1 where active, else the slope."""
        return np.where(active, 1.0, self.slopes[layer])

    def patterns(self, x: np.ndarray) -> np.ndarray:
        """Activation patterns (K, N) at points ``x`` (float64, uncertified; linear units 0)."""
        zs = self.pre_activations(np.atleast_2d(x))
        return np.concatenate([self.active_units(l, z) for l, z in enumerate(zs)], axis=1) & ~self.linear_flat

    def pre_activations(self, x: np.ndarray) -> list[np.ndarray]:
        """Pre-activations of every hidden layer at points ``x`` (float64)."""
        h = np.asarray(x, dtype=np.float64)
        out = []
        for l, (W, b, a) in enumerate(zip(self.weights[:-1], self.biases[:-1], self.slopes)):
            z = h @ W.T + b
            out.append(z)
            h = np.where(self.active_units(l, z), z, a * z)
        return out

    def affine_map(self, bits: np.ndarray, n_layers: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
        """Float64 map ``(A, c)`` of hidden layer ``n_layers``'s output (default: the network's
        output) on the region with full pattern ``bits`` (N,); for reading, not for certifying."""
        n_layers = self.n_hidden if n_layers is None else n_layers
        A, c = np.eye(self.input_dim), np.zeros(self.input_dim)
        for l, act in enumerate(self.layer_slices(np.asarray(bits, bool), n_layers)):
            f = self.activation_factors(l, act)
            A, c = f[:, None] * (self.weights[l] @ A), f * (self.weights[l] @ c + self.biases[l])
        if n_layers == self.n_hidden:
            A, c = self.weights[-1] @ A, self.weights[-1] @ c + self.biases[-1]
        return A, c

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Network output for points ``x`` of shape ``(..., d)``, in float64."""
        h = np.asarray(x, dtype=np.float64)
        for l, (W, b, a) in enumerate(zip(self.weights[:-1], self.biases[:-1], self.slopes)):
            z = h @ W.T + b
            h = np.where(self.active_units(l, z), z, a * z)
        return h @ self.weights[-1].T + self.biases[-1]

    def digest(self) -> str:
        """SHA-256 over the weight and bias arrays (shapes and float64 bytes), and the slopes
        where any is non-zero (so a ReLU network keeps the digest of format version 1)."""
        h = hashlib.sha256()
        for W, b in zip(self.weights, self.biases):
            for a in (W, b):
                h.update(str(a.shape).encode())
                h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
        if not self.is_relu or self.has_linear:
            for a in self.slopes:
                h.update(b"slopes")
                h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
        if self.has_linear:
            for m in self.linear:
                h.update(b"linear")
                h.update(np.ascontiguousarray(m, dtype=np.uint8).tobytes())
        if self.has_groups:
            for g in self.groups:
                h.update(b"groups")
                h.update(np.ascontiguousarray(g, dtype=np.int64).tobytes())
        return h.hexdigest()


def _as_real_array(value, what: str) -> np.ndarray:
    arr = np.asarray(value)
    if np.iscomplexobj(arr):
        raise InputError(f"{what} is complex-valued; lrenum needs real weights")
    try:
        return np.array(arr, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} is not numeric ({exc})") from None


def make_network(weights: Sequence, biases: Sequence, slopes: Optional[Sequence] = None,
                 linear: Optional[Sequence] = None, groups: Optional[Sequence] = None) -> Network:
    """Validate and build a :class:`Network` from lists of arrays (PyTorch layout).

    ``slopes``: per hidden layer, a scalar or a vector of negative-side slopes (leaky ReLU,
    PReLU); omitted for ReLU. ``linear``: per hidden layer, a boolean mask of linear (carried,
    never splitting) units, or None; their slope is 1 whatever ``slopes`` says. ``groups``: per
    hidden layer, integer group ids (-1: no group) of winner-take-all groups, or None (ReLU units
    only: slope 0, not linear).
    """
    if len(weights) == 0:
        raise InputError("network has no layers")
    if len(weights) != len(biases):
        raise InputError(f"network has {len(weights)} weight matrices but {len(biases)} bias vectors")
    if len(weights) < 2:
        raise InputError("network needs at least one hidden layer before the affine output layer")
    Ws, bs = [], []
    prev = None
    for k, (W, b) in enumerate(zip(weights, biases), start=1):
        W = _as_real_array(W, f"W{k}")
        b = _as_real_array(b, f"b{k}")
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
    alphas = []
    for k, W in enumerate(Ws[:-1], start=1):
        a = 0.0 if slopes is None else slopes[k - 1]
        a = _as_real_array(a, f"slope of layer {k}")
        try:
            a = np.broadcast_to(a, (W.shape[0],)).copy()
        except ValueError:
            raise InputError(f"slope of layer {k} must be a scalar or have {W.shape[0]} entries") from None
        if not np.all(np.isfinite(a)):
            raise InputError(f"slope of layer {k} contains NaN or inf")
        alphas.append(a)
    if slopes is not None and len(slopes) != len(Ws) - 1:
        raise InputError(f"{len(slopes)} slope entries for {len(Ws) - 1} hidden layers")
    masks = []
    if linear is not None:
        if len(linear) != len(Ws) - 1:
            raise InputError(f"{len(linear)} linear-unit masks for {len(Ws) - 1} hidden layers")
        for k, (W, m) in enumerate(zip(Ws[:-1], linear), start=1):
            m = np.zeros(W.shape[0], bool) if m is None else np.asarray(m)
            if m.shape != (W.shape[0],) or m.dtype != bool:
                raise InputError(f"linear-unit mask of layer {k} must be {W.shape[0]} booleans, got {m.dtype} {m.shape}")
            alphas[k - 1] = np.where(m, 1.0, alphas[k - 1])
            masks.append(m.copy())
    gids = []
    if groups is not None:
        if len(groups) != len(Ws) - 1:
            raise InputError(f"{len(groups)} group-id arrays for {len(Ws) - 1} hidden layers")
        for k, (W, g) in enumerate(zip(Ws[:-1], groups), start=1):
            g = np.full(W.shape[0], -1, np.int64) if g is None else np.asarray(g)
            if g.shape != (W.shape[0],) or not np.issubdtype(g.dtype, np.integer) or np.any(g < -1):
                raise InputError(f"group ids of layer {k} must be {W.shape[0]} integers >= -1, got {g.dtype} {g.shape}")
            grouped = g >= 0
            lin = masks[k - 1] if masks else np.zeros(W.shape[0], bool)
            if np.any(grouped & (lin | (alphas[k - 1] != 0))):
                raise InputError(f"layer {k}: winner-take-all group units must be ReLU units (slope 0, not linear)")
            gids.append(g.astype(np.int64))
    return Network(tuple(Ws), tuple(bs), tuple(alphas), tuple(masks), tuple(gids))
