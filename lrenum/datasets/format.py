"""Constants and bit packing of the region dataset format (docs/format.md); no heavy imports,
so that reading a file does not load the enumerator."""

from __future__ import annotations

import numpy as np

FORMAT_NAME = "lrenum-regions"
FORMAT_VERSION = 2      # 2: witness_status per region, activation slopes, factored maps


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """(N, n) bool -> (N, ceil(n/8)) uint8; neuron j is bit j % 8 (little) of byte j // 8."""
    return np.packbits(bits.astype(bool), axis=1, bitorder="little")


def unpack_bits(packed: np.ndarray, n: int) -> np.ndarray:
    return np.unpackbits(packed, axis=1, count=n, bitorder="little").astype(bool)


