"""The state the enumeration passes around, as NamedTuples of arrays (one row per region).

Geometry is kept in *basis coordinates* (:class:`lrenum.lp.problem.LPGeometry`): a row or map
``C`` acts on inputs as ``C . (U x)``. ``U`` is the identity unless the input is wide and the
first layer narrow (784 pixels into 12 units), where ``U`` is the first layer's weight matrix
and every row costs r (12) numbers instead of d (784).

Every float row, hyperplane and map carries error bounds against the exact network:
``e* >= ||float - exact||_1`` for the coefficient part and ``|float - exact|`` for the offset.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, NamedTuple

import numpy as np

from ..lp.problem import Rows

__all__ = ["Rows", "Hyperplanes", "AffineMaps", "Regions", "SplitResult", "pattern_keys"]


class Hyperplanes(NamedTuple):
    """The next layer's pre-activations on each region: ``z = G . (U x) + g``."""

    G: np.ndarray        # (B, n, r)
    g: np.ndarray        # (B, n)
    eG: np.ndarray       # (B, n)
    eg: np.ndarray       # (B, n)


class AffineMaps(NamedTuple):
    """A layer's post-activation on each region: ``h = M . (U x) + c``."""

    M: np.ndarray        # (B, n, r)
    c: np.ndarray        # (B, n)
    eM: np.ndarray       # (B, n)
    ec: np.ndarray       # (B, n)


@dataclass(frozen=True)
class Regions:
    """Regions of hidden layer ``layer`` (0 is the whole domain), one row each.

    A frozen dataclass rather than a NamedTuple only so that ``len()`` counts regions.
    """

    layer: int
    bits: np.ndarray       # (B, N) bool: activation of every neuron of layers 1..layer
    const: np.ndarray      # (B, N) bool: the neuron's pre-activation is constant on the region
    rows: Rows             # one row per neuron of layers 1..layer (masked where constant)
    maps: AffineMaps       # this layer's post-activation map
    witness: np.ndarray    # (B, d) certified interior point
    radius: np.ndarray     # (B,) certified lower bound on the witness's distance to the boundary
    wstatus: np.ndarray    # (B,) int8 WitnessStatus: how the region's non-emptiness is proven
    rank: np.ndarray       # (B, layer) rank of the Jacobian after each layer
    parent: np.ndarray     # (B,) index of the parent in layer-1 (-1 for the root)
    ident: np.ndarray      # (B,) index of this region in its layer (-1 until numbered)
    vertices: Any = None   # VertexSets (low-dimensional path) or None

    def __len__(self) -> int:
        return int(self.witness.shape[0])

    def take(self, idx) -> "Regions":
        """Rows ``idx`` (index array, slice or boolean mask) as a new batch."""
        return _take(self, idx)

    def with_ids(self, ident: np.ndarray) -> "Regions":
        return replace(self, ident=ident)

    @staticmethod
    def concat(batches: list["Regions"]) -> "Regions":
        return _concat(batches)


def pattern_keys(bits: np.ndarray) -> list[bytes]:
    """One hashable key per row of a (n, neurons) bool pattern array: a region's pattern names it."""
    return [row.tobytes() for row in np.packbits(bits, axis=1)]


def _take(obj, idx):
    if obj is None or isinstance(obj, (int, np.integer)):
        return obj
    if isinstance(obj, np.ndarray):
        return obj[idx]
    if isinstance(obj, tuple):                     # NamedTuples of arrays
        return type(obj)(*(_take(v, idx) for v in obj))
    if isinstance(obj, Regions):
        return Regions(**{f.name: _take(getattr(obj, f.name), idx) for f in fields(obj)})
    return obj.take(idx)                           # e.g. vertex sets


def _concat(items: list):
    first = items[0]
    if len(items) == 1:
        return first
    if first is None or isinstance(first, (int, np.integer)):
        return first
    if isinstance(first, np.ndarray):
        return np.concatenate(items, axis=0)
    if isinstance(first, tuple):
        return type(first)(*(_concat([x[i] for x in items]) for i in range(len(first))))
    if isinstance(first, Regions):
        return Regions(**{f.name: _concat([getattr(x, f.name) for x in items]) for f in fields(first)})
    return type(first).concat(items)


class SplitResult(NamedTuple):
    """Children of a batch of parents: grouped by parent, in parent order."""

    children: Regions
    n_children: np.ndarray        # (B_parents,)

