"""A batch of regions of one layer, as a struct of arrays (what the splitter passes around)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np


@dataclass
class RegionBatch:
    """Regions of hidden layer ``layer`` (0 is the whole domain), one row per region.

    Constraint rows ``A x <= b`` hold the domain rows first, then one row per hidden neuron of
    layers 1..layer (``rmask`` False for neurons constant on the region). ``ea``/``eb`` bound
    the rows' rounding errors against the exact network (see :mod:`lrenum.certify`).
    ``M, c`` is the region's post-activation map of this layer (``h = M x + c``).
    """

    layer: int
    bits: np.ndarray      # (B, N) bool: active flags of all hidden neurons of layers 1..layer
    const: np.ndarray     # (B, N) bool: the neuron's pre-activation is constant on the region
    A: np.ndarray         # (B, m, d)
    b: np.ndarray         # (B, m)
    ea: np.ndarray        # (B, m)
    eb: np.ndarray        # (B, m)
    rmask: np.ndarray     # (B, m) bool
    M: np.ndarray         # (B, n_layer, d)
    c: np.ndarray         # (B, n_layer)
    eM: np.ndarray        # (B, n_layer)
    ec: np.ndarray        # (B, n_layer)
    witness: np.ndarray   # (B, d) certified interior point
    radius: np.ndarray    # (B,) certified lower bound on the distance to the boundary
    rank: np.ndarray      # (B, layer) rank of the post-activation map after each layer
    parent: np.ndarray    # (B,) index of the parent region in layer-1 (-1 for the root)
    ident: np.ndarray     # (B,) index of this region in its layer (-1 until numbered)

    def __len__(self) -> int:
        return int(self.witness.shape[0])

    def take(self, idx) -> "RegionBatch":
        """Rows ``idx`` (an index array, slice or boolean mask) as a new batch."""
        kw = {f.name: (getattr(self, f.name) if f.name == "layer" else getattr(self, f.name)[idx])
              for f in fields(self)}
        return RegionBatch(**kw)

    @staticmethod
    def concat(batches: list["RegionBatch"]) -> "RegionBatch":
        first = batches[0]
        if len(batches) == 1:
            return first
        kw = {f.name: (first.layer if f.name == "layer" else
                       np.concatenate([getattr(x, f.name) for x in batches], axis=0))
              for f in fields(first)}
        return RegionBatch(**kw)
