"""Independent re-check of a region file against its network (``lrenum verify``).

Every stored region is rebuilt from its pattern (the same float64 propagation with error bounds
the writer used) and checked again: its witness is certified inside it, by the forward pass for
float witnesses and in exact arithmetic for the regions whose non-emptiness only the exact path
could prove (``witness_status`` 1 and 2); its rank is proven again; the tree is consistent
(parents exist, children counted, no pattern twice); the stored maps equal the network's.

Memory: the packed patterns and ranks of one layer at a time (N/8 + 2 bytes per region); the
rebuilt rows and maps only for one chunk of rows.
"""

from __future__ import annotations

import json
import os
from typing import Callable, Optional

import h5py
import numpy as np

from .. import runtime
from ..certify.decide import WitnessStatus
from ..certify.rank import layer_ranks
from ..core.children import certify_region_witnesses
from ..core.frame import Frame
from ..core.hyperplanes import Propagator
from ..core.rebuild import rebuild_regions
from ..lp import exact
from ..model.domain import Domain
from ..model.network import Network
from ..tolerances import FORWARD_REL_TOL, MAP_REL_TOL
from .format import pack_bits
from .reader import RegionFile, check_header
from .layout import SEGMENTS, output_maps

CHUNK = 4096   # rows rebuilt at once: bounds verify's memory




class Mismatch(Exception):
    """The first disagreement between the file and the network."""


def check_linear_units(net: Network, bits: np.ndarray, const: np.ndarray, where: str) -> None:
    """Linear (carried) units are never part of a region's definition: bit 0, constant 1; a
    winner-take-all group has at most one active unit."""
    lin = net.linear_flat[:bits.shape[1]]
    if lin.any() and (np.any(bits[:, lin]) or not np.all(const[:, lin])):
        raise Mismatch(f"{where}: a linear (carried) unit is stored active or not constant")
    offs = net.neuron_offsets
    for l in range(net.layers_covered(bits.shape[1])):          # a winner-take-all group has one winner at most
        for members in net.group_members[l]:
            if np.any(bits[:, offs[l] + members].sum(axis=1) > 1):
                raise Mismatch(f"{where}: a max pool's group (layer {l + 1}) is stored with two winners")


def verify_file(path: str, net: Network, domain: Domain, *, device: Optional[str] = None,
                progress: Optional[Callable[[int, int], None]] = None) -> dict:
    """Check every stored region; raise :class:`Mismatch` at the first problem. Returns counts.

    First what the file claims about itself (:func:`check_structure`: counts, rows, children,
    segments), then every region against the network. ``progress(rows_checked, rows_total)`` is
    called after every chunk.
    """
    notes = check_structure(path)
    with RegionFile(path) as rf:
        if rf.f.attrs["network_sha256"] != net.digest():
            raise Mismatch("the file was written for a different network (SHA-256 differs)")
        if rf.domain != domain.describe():
            raise Mismatch(f"the file was written for a different domain ({json.dumps(rf.domain)[:120]})")
        if not rf.complete:
            raise Mismatch("the file is incomplete (interrupted run; use enumerate --resume)")
        if tuple(net.hidden_widths) != rf.widths:
            raise Mismatch("layer widths differ from the network")
        out = _Verifier(rf, net, domain, device, progress).run()
        if "geometry" in rf.f:
            from .verify_geometry import check_geometry      # imports Mismatch from here

            out.update(check_geometry(rf, domain))
        out.update(notes)
        return out


def check_structure(path: str) -> dict:
    """What a complete file claims about itself, checked against its rows (raises Mismatch):
    every table of a layer has one row per region; the per-layer counts, the committed counts,
    the merged segments' rows and the tables agree; each layer has exactly as many rows as its
    parents' ``n_children`` add up to (the root's children for layer 1) and at least one (a
    non-empty domain has a region); the final tables match the last layer; segment files left
    beside the file are those it merged. Returns notes for the summary."""
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise Mismatch(f"{path} is not a readable HDF5 file ({str(exc).splitlines()[0][:120]})") from None
    notes: dict = {}
    with f:
        check_header(f, path)
        a = f.attrs
        if not bool(a.get("complete", False)):
            raise Mismatch("the file is incomplete (interrupted run; use enumerate --resume)")
        try:
            L = len(a["layer_widths"])
            counts = [int(v) for v in a["counts"]]
            committed = [int(v) for v in a["committed"]]
            rows = []
            for l in range(1, L + 1):
                g = f[f"layer_{l}"]
                sizes = {name: g[name].shape[0] for name in g if name != "n_children"}
                if len(set(sizes.values())) > 1:
                    raise Mismatch(f"layer {l}: its tables have different row counts {sizes}")
                rows.append(next(iter(sizes.values())))
        except KeyError as exc:
            raise Mismatch(f"the file lacks {exc} (not written by a complete run)") from None
        if len(counts) != L or counts != rows:
            raise Mismatch(f"per-layer counts {counts} in the metadata but {rows} rows in the tables")
        if committed[1:] != rows:
            raise Mismatch(f"committed counts {committed[1:]} in the metadata but {rows} rows in the tables")
        if int(a["regions"]) != rows[-1]:
            raise Mismatch(f"the metadata says {int(a['regions'])} regions but the last layer has {rows[-1]} rows")
        if rows[0] < 1:
            raise Mismatch("the file holds no region, but a non-empty domain always has at least one")
        if "root_children" in a and int(a["root_children"]) != rows[0]:
            raise Mismatch(f"the root has {int(a['root_children'])} children but layer 1 has {rows[0]} rows")
        for l in range(1, L):
            nch = f[f"layer_{l}/n_children"]
            if nch.shape[0] != rows[l - 1]:
                raise Mismatch(f"layer {l}: n_children has {nch.shape[0]} entries for {rows[l - 1]} regions")
            total = int(np.sum(nch[:], dtype=np.int64))
            if total != rows[l]:
                raise Mismatch(f"layer {l + 1} has {rows[l]} rows but its parents' n_children add up to {total}")
        fin = f["final"]
        for name in fin:
            if name != "basis" and fin[name].shape[0] != rows[-1]:
                raise Mismatch(f"final/{name} has {fin[name].shape[0]} rows for {rows[-1]} final regions")
        merged = f[SEGMENTS][:] if SEGMENTS in f else None
        if merged is not None:
            if merged.shape[1:] != (L,) or list(merged.sum(axis=0)) != rows:
                raise Mismatch(f"the merged segments hold {list(merged.sum(axis=0))} rows per layer "
                               f"but the tables {rows}")
    left = _leftover_segments(path, merged)
    if left is not None:
        notes["leftover_segments"] = left
    return notes


def _leftover_segments(path: str, merged) -> Optional[int]:
    """Segment files beside a complete file: those of its own merge (a run stopped between the
    final rename and removing them: harmless) are reported; any other means regions committed
    by a run that never reached this file (raises Mismatch)."""
    parts = path + ".parts"
    if not os.path.isdir(parts):
        return None
    names = sorted(n for n in os.listdir(parts) if n.startswith("seg_") and n.endswith(".h5"))
    if not names:
        return None
    if merged is None or len(names) > len(merged):
        raise Mismatch(f"{parts} holds {len(names)} segment files that are not part of the file "
                       f"(regions committed by an interrupted run are missing from it)")
    for i, name in enumerate(names):
        try:
            with h5py.File(os.path.join(parts, name), "r") as seg:
                have = [seg[f"layer_{l}/parent"].shape[0] if f"layer_{l}/parent" in seg else 0
                        for l in range(1, merged.shape[1] + 1)]
        except OSError:
            raise Mismatch(f"{parts}/{name} is an unreadable segment beside a complete file") from None
        if name != f"seg_{i:08d}.h5" or have != list(merged[i]):
            raise Mismatch(f"{parts}/{name} holds rows {have} that the file did not merge")
    return len(names)


def check_witness(frame: Frame, l: int, bits: np.ndarray, wit: np.ndarray, rad: float, ws: int, status: int,
                  radius: float, where: str) -> None:
    """One stored witness against its region (first ``l`` layers of pattern ``bits``): a float
    witness by its forward-pass certificate (``status``, ``radius`` from
    :func:`certify_region_witnesses`), an exact one in exact arithmetic."""
    if ws == WitnessStatus.FLOAT:
        if status != 0:
            raise Mismatch(f"{where}: the witness is not certified inside the region")
        if rad > radius * (1 + 1e-9):
            raise Mismatch(f"{where}: the ball of the stored radius {rad:.3g} leaves the region")
        return
    if rad != 0:
        raise Mismatch(f"{where}: an exact-only witness must have radius 0")
    rows = frame.exact.region_rows(frame.layer_signs(bits, l))
    if rows is None:
        raise Mismatch(f"{where}: the region is empty in exact arithmetic")
    if ws == WitnessStatus.EXACT:
        if not exact.point_strictly_inside(rows, wit):
            raise Mismatch(f"{where}: the witness is not strictly inside in exact arithmetic")
    elif not exact.has_interior(rows, frame.net.input_dim)[0]:
        raise Mismatch(f"{where}: the region has no interior in exact arithmetic")


class _Verifier:
    def __init__(self, rf: RegionFile, net: Network, domain: Domain, device, progress):
        self.rf, self.net, self.domain = rf, net, domain
        self.frame = Frame(net, domain)
        self.device = runtime.select_device(device)
        self.propagator = Propagator(self.frame, self.device)
        self.progress = progress
        self.total = int(sum(rf.counts))
        self.checked = 0

    def run(self) -> dict:
        rf = self.rf
        prev_bits = np.zeros((1, 0), bool)       # layer 0: the domain
        prev_const = np.zeros((1, 0), bool)
        prev_rank = np.full(1, self.frame.r)
        prev_children = None
        counts = {int(s): 0 for s in WitnessStatus}
        for l in range(1, rf.n_layers + 1):
            t = rf.layer(l)
            n = len(t["parent"])
            par = t["parent"]
            if n and (par.min() < 0 or par.max() >= len(prev_bits)):
                raise Mismatch(f"layer {l}: parent index out of range")
            if prev_children is not None:
                got = np.bincount(par, minlength=len(prev_bits))
                if np.any(got != prev_children):
                    i = int(np.nonzero(got != prev_children)[0][0])
                    raise Mismatch(f"layer {l - 1} region {i}: n_children {prev_children[i]} but {got[i]} children stored")
            bits = np.concatenate([prev_bits[par], t["pattern"]], axis=1)
            const = np.concatenate([prev_const[par], t["constant"]], axis=1)
            keys = np.unique(pack_bits(bits), axis=0)
            if keys.shape[0] != n:
                raise Mismatch(f"layer {l}: a pattern appears twice")
            for start in range(0, n, CHUNK):
                sl = slice(start, min(n, start + CHUNK))
                self._check_chunk(l, t, sl, bits[sl], const[sl], prev_rank[par[sl]], counts)
                self.checked += sl.stop - sl.start
                if self.progress is not None:
                    self.progress(self.checked, self.total)
            prev_bits, prev_const, prev_rank = bits, const, t["rank"].astype(np.int64)
            prev_children = t.get("n_children")
        fin = rf.final()
        if not np.array_equal(fin["pattern"], prev_bits):
            i = int(np.nonzero(np.any(fin["pattern"] != prev_bits, axis=1))[0][0])
            raise Mismatch(f"final region {i}: full pattern differs from the layer tables")
        if fin["rank"].shape[0] and not np.array_equal(fin["rank"][:, -1], prev_rank):
            raise Mismatch("final ranks differ from the last layer's ranks")
        return {"regions": rf.regions, "rows_checked": self.checked, "per_layer": rf.counts,
                "witnesses_float": counts[0], "witnesses_exact": counts[1] + counts[2]}

    def _check_chunk(self, l: int, t: dict, sl: slice, bits, const, prev_rank, counts) -> None:
        frame, net = self.frame, self.net
        check_linear_units(net, bits, const, f"layer {l} rows {sl.start}..{sl.stop - 1}")
        wit, rad, ws = t["witness"][sl], t["radius"][sl], t["witness_status"][sl]
        with runtime.on_device(self.device):
            R = rebuild_regions(frame, self.propagator, bits, const, wit, rad, ws,
                                np.zeros((len(wit), l), np.int64), t["parent"][sl], np.arange(sl.start, sl.stop))
        status, radius = certify_region_witnesses(frame, wit, bits, const, R.rows)
        for i in range(len(wit)):
            counts[int(ws[i])] = counts.get(int(ws[i]), 0) + 1
            check_witness(frame, l, bits[i], wit[i], rad[i], ws[i], status[i], radius[i], f"layer {l} region {sl.start + i}")
        rank = layer_ranks(net, l, R.maps.M, R.maps.eM, prev_rank,
                           lambda i: frame.exact.rank_after(net.layer_slices(bits[i], l)), bits, const)
        bad = rank != t["rank"][sl]
        if np.any(bad):
            i = int(np.nonzero(bad)[0][0])
            raise Mismatch(f"layer {l} region {sl.start + i}: stored rank {t['rank'][sl][i]} but the Jacobian has rank {rank[i]}")
        if l == self.rf.n_layers:
            self._check_maps(sl, R, wit, rad, ws)

    def _check_maps(self, sl: slice, R, wit, rad, ws) -> None:
        """Stored maps equal the rebuilt ones; the map agrees with the network near each witness."""
        net, geo = self.net, self.frame.geometry
        A_basis, c_net = output_maps(net, R.maps)
        A_net = A_basis if geo.identity_basis else A_basis @ geo.U
        g = self.rf.f["final"]
        if "A" in g or "A_basis" in g:
            if "A" in g:
                A_st = g["A"][sl]
            else:
                A_st = g["A_basis"][sl] @ g["basis"][:]
            c_st = g["c"][sl]
            scale = MAP_REL_TOL * (1 + np.abs(A_net).max(initial=0) + np.abs(c_net).max(initial=0))
            bad = np.any(np.abs(A_st - A_net) > scale, axis=(1, 2)) | np.any(np.abs(c_st - c_net) > scale, axis=1)
            if np.any(bad):
                raise Mismatch(f"final region {sl.start + int(np.nonzero(bad)[0][0])}: stored affine map differs from the network's")
        rng = np.random.default_rng(sl.start)
        u = rng.normal(size=wit.shape)
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        step = np.minimum(np.where(ws == WitnessStatus.FLOAT, rad, 0.0), geo.scale)   # an unbounded region has radius inf
        pts = wit + 0.5 * step[:, None] * u
        out = net.forward(pts)
        pred = np.einsum("bod,bd->bo", A_net, pts) + c_net
        bad = np.any(np.abs(out - pred) > FORWARD_REL_TOL * (1 + np.abs(out) + np.abs(A_net).sum(axis=2) * np.abs(pts).max()),
                     axis=1)
        if np.any(bad):
            raise Mismatch(f"final region {sl.start + int(np.nonzero(bad)[0][0])}: affine map disagrees with the network near the witness")
