"""Streaming, resumable HDF5 region datasets (format documented in docs/format.md).

HDF5 files are not crash-safe while being modified: a SIGKILL inside a write can damage
chunks that were already committed, and SWMR mode leaves a flag that blocks reopening. So no
file is ever modified in a way a kill could tear:

* ``FILE`` is written once at the start, atomically (tmp + rename): header, empty tables,
  ``complete = False``.
* Every commit (about once a second) writes the rows produced since the last one as a new
  segment ``FILE.parts/seg_NNNNNNNN.h5``, again tmp + rename: a segment exists whole or not.
* At the end the header and all segments are merged into ``FILE.tmp``, which is renamed over
  ``FILE`` (now ``complete = True``); then the segments are removed.

Resuming reads the committed segments, re-splits every region whose children are not all
committed (a split region always has at least one child) and continues, so the result is the
same set of regions as an uninterrupted run, none lost or repeated.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from typing import Optional

import h5py
import numpy as np

from ._version import __version__
from .errors import InputError
from .regions import RegionBatch

FORMAT_NAME = "lrenum-regions"
FORMAT_VERSION = 1
COMMIT_SECONDS = float(os.environ.get("LRENUM_COMMIT_SECONDS", "1.0"))  # seconds between commits
CHUNK_ROWS = 4096


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """(N, n) bool -> (N, ceil(n/8)) uint8; neuron j is bit j % 8 (little) of byte j // 8."""
    return np.packbits(bits.astype(bool), axis=1, bitorder="little")


def unpack_bits(packed: np.ndarray, n: int) -> np.ndarray:
    return np.unpackbits(packed, axis=1, count=n, bitorder="little").astype(bool)


def _append(ds: h5py.Dataset, rows: np.ndarray) -> None:
    n = ds.shape[0]
    ds.resize(n + rows.shape[0], axis=0)
    ds[n:] = rows


class RegionWriter:
    """Runs an enumeration and streams its regions into an HDF5 file."""

    def __init__(self, path: str, f: h5py.File, net, domain, maps: bool):
        self.path = path
        self.f = f
        self.net = net
        self.domain = domain
        self.maps = maps
        self.L = net.n_hidden
        self.widths = net.hidden_widths
        self.offsets = net.neuron_offsets
        self.buffer: dict = {}
        self.last_commit = time.perf_counter()

    # ------------------------------------------------------------------ creation / opening
    @classmethod
    def create(cls, path: str, net, domain, *, network_path: str = "", force: bool = False,
               resume: bool = False, maps: str = "all") -> "RegionWriter":
        """Open ``path`` for a new run, or for resuming (``resume=True``)."""
        exists = os.path.exists(path)
        if resume and exists:
            return cls._open_for_resume(path, net, domain, maps)
        if exists and not force:
            try:
                with h5py.File(path, "r") as f:
                    complete = bool(f.attrs.get("complete", False))
                    ours = f.attrs.get("format") == FORMAT_NAME
            except OSError:
                raise InputError(f"{path} exists and is not a readable HDF5 file; use --force to overwrite") from None
            if not ours:
                raise InputError(f"{path} exists and is not an lrenum file; use --force to overwrite")
            if complete:
                raise InputError(f"{path} is a complete region file; use --force to overwrite it")
            raise InputError(f"{path} is an incomplete region file; use --resume to continue or --force to overwrite")
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise InputError(f"output directory does not exist: {directory}")
        tmp = path + ".tmp"
        try:
            f = h5py.File(tmp, "w")
        except OSError as exc:
            raise InputError(f"cannot create {path}: {exc}") from None
        w = cls(path, f, net, domain, maps == "all")
        w._layout(network_path)
        f.flush()
        f.close()
        os.replace(tmp, path)   # an old file (with --force) is replaced only by a valid new one
        shutil.rmtree(path + ".parts", ignore_errors=True)
        w.f = h5py.File(path, "r+")
        return w

    def _layout(self, network_path: str) -> None:
        f, net, d = self.f, self.net, self.net.input_dim
        a = f.attrs
        a["format"] = FORMAT_NAME
        a["format_version"] = FORMAT_VERSION
        a["lrenum_version"] = __version__
        a["network_sha256"] = net.digest()
        a["network_path"] = network_path
        a["input_dim"] = d
        a["output_dim"] = net.output_dim
        a["layer_widths"] = np.array(self.widths, dtype=np.int64)
        a["domain"] = json.dumps(self.domain.describe())
        from .split import CUT_TOL, DECIDE_TOL
        a["tolerances"] = json.dumps({"cut_tol": CUT_TOL, "decide_tol": DECIDE_TOL,
                                      "certification": "float64 a priori bounds, Clarabel, exact rationals"})
        a["maps"] = "all" if self.maps else "none"
        a["complete"] = False
        a["committed"] = np.zeros(self.L + 1, dtype=np.int64)
        a["counts"] = np.zeros(self.L, dtype=np.int64)
        a["regions"] = 0
        opts = dict(compression="gzip", compression_opts=4, shuffle=True)
        for l in range(1, self.L + 1):
            g = f.create_group(f"layer_{l}")
            n = self.widths[l - 1]
            nb = (n + 7) // 8
            g.create_dataset("parent", (0,), np.int64, maxshape=(None,), chunks=(CHUNK_ROWS,), **opts)
            g.create_dataset("pattern", (0, nb), np.uint8, maxshape=(None, nb), chunks=(CHUNK_ROWS, nb), **opts)
            g.create_dataset("constant", (0, nb), np.uint8, maxshape=(None, nb), chunks=(CHUNK_ROWS, nb), **opts)
            g.create_dataset("rank", (0,), np.int16, maxshape=(None,), chunks=(CHUNK_ROWS,), **opts)
            g.create_dataset("witness", (0, d), np.float64, maxshape=(None, d), chunks=(CHUNK_ROWS, d), **opts)
            g.create_dataset("radius", (0,), np.float64, maxshape=(None,), chunks=(CHUNK_ROWS,), **opts)
            if l < self.L:
                g.create_dataset("n_children", (0,), np.int32, maxshape=(None,), chunks=(CHUNK_ROWS,), **opts)
        g = f.create_group("final")
        N = int(sum(self.widths))
        nb = (N + 7) // 8
        m = self.net.output_dim
        g.create_dataset("pattern", (0, nb), np.uint8, maxshape=(None, nb), chunks=(CHUNK_ROWS, nb), **opts)
        g.create_dataset("rank", (0, self.L), np.int16, maxshape=(None, self.L), chunks=(CHUNK_ROWS, self.L), **opts)
        if self.maps:
            rows = max(1, min(CHUNK_ROWS, 2 ** 20 // max(1, m * d)))
            g.create_dataset("A", (0, m, d), np.float64, maxshape=(None, m, d), chunks=(rows, m, d), **opts)
            g.create_dataset("c", (0, m), np.float64, maxshape=(None, m), chunks=(rows, m), **opts)

    @classmethod
    def _open_for_resume(cls, path, net, domain, maps) -> "RegionWriter":
        from .dataset import check_header

        try:
            f = h5py.File(path, "r+")
        except OSError as exc:
            raise InputError(f"cannot resume {path}: not a readable HDF5 file ({exc})") from None
        try:
            check_header(f, path)
        except InputError:
            f.close()
            raise
        if f.attrs["network_sha256"] != net.digest():
            f.close()
            raise InputError(f"cannot resume {path}: it was written for a different network")
        if json.loads(f.attrs["domain"]) != domain.describe():
            f.close()
            raise InputError(f"cannot resume {path}: it was written for a different domain")
        w = cls(path, f, net, domain, f.attrs["maps"] == "all")
        return w

    # ------------------------------------------------------------------ the run
    def run(self, *, batch_size: int = 512, device: Optional[str] = None, progress: bool = False):
        from .enumerate import enumerate_regions

        start = self._pending_state()
        result = enumerate_regions(self.net, self.domain, batch_size=batch_size, device=device,
                                   on_layer=self._on_layer, on_split=self._on_split, progress=progress,
                                   start=start)
        self.commit(force=True)
        a = self.f.attrs
        a["counts"] = np.array(result.per_layer, dtype=np.int64)
        a["regions"] = result.regions
        a["complete"] = True
        a["summary"] = json.dumps(result.summary())
        self._merge()
        return result

    def _on_layer(self, layer: int, regions: RegionBatch) -> None:
        """New regions from the walk: buffer them (written at the next commit)."""
        self.buffer.setdefault(layer, []).append(regions)

    def _on_split(self, layer: int, ident: np.ndarray, n_children: np.ndarray) -> None:
        """Regions were split and their children buffered: a safe point to commit."""
        self.commit()   # children and parents of one split always land in the same segment

    # ------------------------------------------------------------------ commits: atomic segments
    @property
    def parts_dir(self) -> str:
        return self.path + ".parts"

    def _segments(self) -> list[str]:
        if not os.path.isdir(self.parts_dir):
            return []
        return sorted(os.path.join(self.parts_dir, n) for n in os.listdir(self.parts_dir)
                      if n.startswith("seg_") and n.endswith(".h5"))

    def commit(self, force: bool = False) -> None:
        """Write everything buffered as one new segment file, atomically (tmp + rename)."""
        now = time.perf_counter()
        if not force and now - self.last_commit < COMMIT_SECONDS:
            return
        self.last_commit = now
        if not self.buffer:
            return
        os.makedirs(self.parts_dir, exist_ok=True)
        k = len(self._segments())
        final = os.path.join(self.parts_dir, f"seg_{k:08d}.h5")
        tmp = final + ".tmp"
        with h5py.File(tmp, "w") as seg:
            for layer in sorted(self.buffer):
                batch = RegionBatch.concat(self.buffer[layer])
                for name, rows in self._rows(layer, batch).items():
                    seg[f"layer_{layer}/{name}"] = rows
        os.replace(tmp, final)
        self.buffer.clear()

    def _rows(self, layer: int, batch: RegionBatch) -> dict:
        lo, hi = self.offsets[layer - 1], self.offsets[layer]
        rows = {"parent": batch.parent, "pattern": pack_bits(batch.bits[:, lo:hi]),
                "constant": pack_bits(batch.const[:, lo:hi]), "rank": batch.rank[:, -1].astype(np.int16),
                "witness": batch.witness, "radius": batch.radius}
        if layer == self.L:
            rows["final_pattern"] = pack_bits(batch.bits)
            rows["final_rank"] = batch.rank.astype(np.int16)
            if self.maps:
                Wout, bout = self.net.weights[-1], self.net.biases[-1]
                rows["final_A"] = np.einsum("oj,bjd->bod", Wout, batch.M)
                rows["final_c"] = batch.c @ Wout.T + bout
        return rows

    def _read_segments(self) -> dict:
        """All committed rows per layer, in id order."""
        rows: dict = {}
        for path in self._segments():
            try:
                with h5py.File(path, "r") as seg:
                    for l in range(1, self.L + 1):
                        if f"layer_{l}" in seg:
                            for name, ds in seg[f"layer_{l}"].items():
                                rows.setdefault(l, {}).setdefault(name, []).append(ds[:])
            except OSError as exc:
                raise InputError(f"cannot resume {self.path}: segment {path} is unreadable ({exc})") from None
        return {l: {n: np.concatenate(v) for n, v in d.items()} for l, d in rows.items()}

    def _merge(self) -> None:
        """Write the complete file (header layout plus every segment), then rename it into place."""
        tmp = self.path + ".tmp"
        attrs = dict(self.f.attrs)
        self.f.close()
        with h5py.File(tmp, "w") as out:
            self.f = out
            self._layout(attrs.get("network_path", ""))
            for key, value in attrs.items():
                out.attrs[key] = value
            for path in self._segments():
                with h5py.File(path, "r") as seg:
                    for l in range(1, self.L + 1):
                        if f"layer_{l}" not in seg:
                            continue
                        g, src = out[f"layer_{l}"], seg[f"layer_{l}"]
                        for name in ("parent", "pattern", "constant", "rank", "witness", "radius"):
                            _append(g[name], src[name][:])
                        if l == self.L:
                            fin = out["final"]
                            _append(fin["pattern"], src["final_pattern"][:])
                            _append(fin["rank"], src["final_rank"][:])
                            if self.maps:
                                _append(fin["A"], src["final_A"][:])
                                _append(fin["c"], src["final_c"][:])
            for l in range(1, self.L):   # children counted from the parents of the next layer
                n = out[f"layer_{l}/parent"].shape[0]
                par = out[f"layer_{l + 1}/parent"][:]
                _append(out[f"layer_{l}/n_children"], np.bincount(par, minlength=n)[:n].astype(np.int32))
            out.attrs["committed"] = np.array([1] + [out[f"layer_{l}/parent"].shape[0] for l in range(1, self.L + 1)],
                                              dtype=np.int64)
        os.replace(tmp, self.path)
        shutil.rmtree(self.parts_dir, ignore_errors=True)
        self.f = h5py.File(self.path, "r+")

    def _pending_state(self):
        """From the committed segments: the regions still to split and the id counters."""
        from .rebuild import rebuild_regions

        rows = self._read_segments()
        if not rows:
            return None
        counts = [len(rows.get(l, {}).get("parent", [])) for l in range(1, self.L + 1)]
        pending = []
        for l in range(1, self.L):
            n_rows = counts[l - 1]
            child_parent = rows.get(l + 1, {}).get("parent", np.zeros(0, np.int64))
            n_ch = np.bincount(child_parent, minlength=n_rows)[:n_rows]
            todo = np.nonzero(n_ch == 0)[0]      # every region has >= 1 child once split
            if todo.size:
                pending.append((l, self._load_regions(rows, l, todo, rebuild_regions)))
        return pending, [1] + counts

    def _load_regions(self, rows, layer, idx, rebuild):
        """Rebuild the splitter's state of layer-``layer`` rows ``idx`` from committed rows."""
        cur = idx
        bits, const, ranks = [None] * layer, [None] * layer, [None] * layer
        for l in range(layer, 0, -1):
            r, n = rows[l], self.widths[l - 1]
            bits[l - 1] = unpack_bits(r["pattern"][cur], n)
            const[l - 1] = unpack_bits(r["constant"][cur], n)
            ranks[l - 1] = r["rank"][cur].astype(np.int64)
            if l == layer:
                witness, radius, parent = r["witness"][cur], r["radius"][cur], r["parent"][cur]
            cur = r["parent"][cur]
        return rebuild(self.net, self.domain, np.concatenate(bits, axis=1), np.concatenate(const, axis=1),
                       witness, radius, np.stack(ranks, axis=1), parent, idx.astype(np.int64))

    def close(self) -> None:
        try:
            self.f.close()
        except Exception:  # closing twice or after an error: nothing to lose
            pass
