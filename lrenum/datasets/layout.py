"""The layout of a region file: the rows a batch of regions becomes, the tables and attributes a
file starts with, and the names segments and complete files use (docs/format.md). Shared by the
writer, the merge, the verifier and the Ray tasks' files."""

from __future__ import annotations

import h5py
import numpy as np

from ..core.frame import Frame
from ..core.state import Regions
from ..model.network import Network
from .format import pack_bits

CHUNK_ROWS = 4096   # rows per HDF5 chunk of a table (at most 1 MB per chunk: see _layout's table())
PARENT_SHIFT = "parent_shift"   # segment attribute (optional): per layer, added to its rows' parent ids
ROOT_OPEN = "root_split_open"   # segment attribute (optional, absent = False): when it was committed, the root's
                                # children were still being handed on in pieces (resume splits the root again)
SEGMENTS = "segments"           # complete files: (segments, L) int64, rows per layer of each merged segment


def table_filters(dtype) -> dict:
    """HDF5 filters of a region table. Ids, patterns, ranks and flags shrink 3-10x under shuffle +
    deflate; float64 witnesses, radii and maps only ~12% (their mantissas are noise), while
    deflating them was ~80% of the final merge's time (a serial step: the whole merge of a Ray
    run happens after the workers finish), so floats are stored as they are."""
    if np.dtype(dtype).kind == "f":
        return {}
    return dict(compression="gzip", compression_opts=4, shuffle=True)


def append_rows(ds: h5py.Dataset, rows: np.ndarray) -> None:
    n = ds.shape[0]
    ds.resize(n + rows.shape[0], axis=0)
    ds[n:] = rows


def region_rows(net: Network, frame: Frame, maps: str, layer: int, batch: Regions) -> dict:
    """The dataset rows of a batch of layer-``layer`` regions (a segment's layout, docs/format.md)."""
    offsets = net.neuron_offsets
    lo, hi = offsets[layer - 1], offsets[layer]
    rows = {"parent": batch.parent, "pattern": pack_bits(batch.bits[:, lo:hi]),
            "constant": pack_bits(batch.const[:, lo:hi]), "rank": batch.rank[:, -1].astype(np.int16),
            "witness": batch.witness, "radius": batch.radius, "witness_status": batch.wstatus.astype(np.int8)}
    if layer == net.n_hidden:
        rows["final_pattern"] = pack_bits(batch.bits)
        rows["final_rank"] = batch.rank.astype(np.int16)
        if maps != "none":
            A_basis, c = output_maps(net, batch.maps)
            if maps == "all":
                rows["final_A"] = A_basis if frame.geometry.identity_basis else A_basis @ frame.geometry.U
            else:
                rows["final_A_basis"] = A_basis
            rows["final_c"] = c
    return rows


def output_maps(net: Network, maps) -> tuple[np.ndarray, np.ndarray]:
    """The network output ``A (U x) + c`` on regions whose last hidden layer maps as ``maps``."""
    Wout, bout = net.weights[-1], net.biases[-1]
    return np.einsum("oj,bjr->bor", Wout, maps.M), maps.c @ Wout.T + bout


PER_LAYER = ("parent", "pattern", "constant", "rank", "witness", "radius", "witness_status")


def write_layout(f: h5py.File, attrs: dict, net: Network, frame: Frame, maps: str) -> None:
    """The header's attributes and the empty tables of a region file into ``f``."""
    d, L, widths = net.input_dim, net.n_hidden, net.hidden_widths
    for key, value in attrs.items():
        f.attrs[key] = value

    def table(g, name, dtype, shape=()):
        rows = max(1, min(CHUNK_ROWS, 2 ** 20 // max(1, int(np.prod(shape)) * np.dtype(dtype).itemsize)))
        g.create_dataset(name, (0,) + shape, dtype, maxshape=(None,) + shape, chunks=(rows,) + shape,
                         **table_filters(dtype))

    if not net.is_relu or net.has_linear:
        for l, s in enumerate(net.slopes):
            f.create_dataset(f"slopes/layer_{l + 1}", data=np.asarray(s, np.float64))
    if net.has_linear:
        for l, m in enumerate(net.linear):
            f.create_dataset(f"linear/layer_{l + 1}", data=np.asarray(m, np.uint8))
    if net.has_groups:
        for l, g in enumerate(net.groups):
            f.create_dataset(f"groups/layer_{l + 1}", data=np.asarray(g, np.int64))
    for l in range(1, L + 1):
        g = f.create_group(f"layer_{l}")
        nb = (widths[l - 1] + 7) // 8
        table(g, "parent", np.int64)
        table(g, "pattern", np.uint8, (nb,))
        table(g, "constant", np.uint8, (nb,))
        table(g, "rank", np.int16)
        table(g, "witness", np.float64, (d,))
        table(g, "radius", np.float64)
        table(g, "witness_status", np.int8)
        if l < L:
            table(g, "n_children", np.int32)
    g = f.create_group("final")
    nb = (int(sum(widths)) + 7) // 8
    m, r = net.output_dim, frame.r
    table(g, "pattern", np.uint8, (nb,))
    table(g, "rank", np.int16, (L,))
    if maps == "all":
        table(g, "A", np.float64, (m, d))
        table(g, "c", np.float64, (m,))
    elif maps == "factored":
        table(g, "A_basis", np.float64, (m, r))
        table(g, "c", np.float64, (m,))
        g.create_dataset("basis", data=frame.geometry.U)


def segment_rows(seg: h5py.File, layer: int, name: str) -> np.ndarray:
    """A segment's column, with parent ids shifted to global ids where the segment says so."""
    rows = seg[f"layer_{layer}/{name}"][:]
    if name == "parent" and PARENT_SHIFT in seg.attrs:
        rows = rows + seg.attrs[PARENT_SHIFT][layer]
    return rows
