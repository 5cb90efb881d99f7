"""Streaming, resumable HDF5 region datasets (format documented in docs/format.md).

Writes happen only at *commits*: rows produced since the last commit are buffered in memory
(bounded by the walk's frontier), then appended, the per-layer committed counts are updated
and the file is flushed. Between commits nothing in the file is dirty, so a process killed at
any moment outside a commit leaves the file exactly as the last commit left it, marked
``complete = False``. Resuming truncates rows beyond the committed counts, recounts children
and re-splits every region whose children are not all on disk, so the result equals an
uninterrupted run: no region is lost or repeated.
"""

from __future__ import annotations

import json
import os
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
        self.offsets = np.concatenate([[0], np.cumsum(self.widths)]).astype(int)
        self.buffer: dict = {}
        self.child_updates: list = []
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

        start = self._pending_state() if self.f.attrs["committed"].any() else None
        if start is not None and not start[0]:
            result = self._finish_summary()
            return result
        self._base_counts = None if start is None else list(start[1])
        result = enumerate_regions(self.net, self.domain, batch_size=batch_size, device=device,
                                   on_layer=self._on_layer, on_split=self._on_split, progress=progress,
                                   start=start)
        self.commit(force=True)
        a = self.f.attrs
        a["counts"] = np.array(result.per_layer, dtype=np.int64)
        a["regions"] = result.regions
        a["complete"] = True
        a["summary"] = json.dumps(result.summary())
        self.f.flush()
        return result

    def _finish_summary(self):
        """Resuming a run that had already finished every split: just mark it complete."""
        from .decide import DecisionStats
        from .enumerate import EnumerationResult

        committed = self.f.attrs["committed"]
        counts = [int(c) for c in committed[1:]]
        a = self.f.attrs
        a["counts"] = np.array(counts, dtype=np.int64)
        a["regions"] = counts[-1]
        a["complete"] = True
        self.f.flush()
        return EnumerationResult(regions=counts[-1], per_layer=counts, seconds=0.0, device="none",
                                 stats=DecisionStats())

    def _on_layer(self, layer: int, regions: RegionBatch) -> None:
        """New regions from the walk: buffer them (written at the next commit)."""
        self.buffer.setdefault(layer, []).append(regions)

    def _on_split(self, layer: int, ident: np.ndarray, n_children: np.ndarray) -> None:
        """Regions that were split (their children were just buffered); maybe commit."""
        self.child_updates.append((layer, ident.copy(), n_children.astype(np.int32)))
        self.commit()

    def commit(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self.last_commit < COMMIT_SECONDS:
            return
        self.last_commit = now
        f = self.f
        committed = f.attrs["committed"].copy()
        for layer in sorted(self.buffer):
            for batch in self.buffer[layer]:
                self._write_rows(layer, batch)
                committed[layer] += len(batch)
        self.buffer.clear()
        for layer, ident, n_children in self.child_updates:
            ds = f[f"layer_{layer}/n_children"]
            order = np.argsort(ident)
            ds[ident[order]] = n_children[order]   # h5py needs increasing indices
        self.child_updates.clear()
        f.attrs["committed"] = committed
        f.flush()

    def _write_rows(self, layer: int, batch: RegionBatch) -> None:
        g = self.f[f"layer_{layer}"]
        lo, hi = self.offsets[layer - 1], self.offsets[layer]
        _append(g["parent"], batch.parent)
        _append(g["pattern"], pack_bits(batch.bits[:, lo:hi]))
        _append(g["constant"], pack_bits(batch.const[:, lo:hi]))
        _append(g["rank"], batch.rank[:, -1].astype(np.int16))
        _append(g["witness"], batch.witness)
        _append(g["radius"], batch.radius)
        if layer < self.L:
            _append(g["n_children"], np.full(len(batch), -1, np.int32))
        else:
            fin = self.f["final"]
            _append(fin["pattern"], pack_bits(batch.bits))
            _append(fin["rank"], batch.rank.astype(np.int16))
            if self.maps:
                Wout, bout = self.net.weights[-1], self.net.biases[-1]
                _append(fin["A"], np.einsum("oj,bjd->bod", Wout, batch.M))
                _append(fin["c"], batch.c @ Wout.T + bout)

    def _pending_state(self):
        """Truncate to the committed rows and rebuild the regions still to split."""
        from .rebuild import rebuild_regions

        f = self.f
        committed = f.attrs["committed"].copy()
        for l in range(1, self.L + 1):
            g = f[f"layer_{l}"]
            for name in g:
                g[name].resize(int(committed[l]), axis=0)
            if l == self.L:
                for name in f["final"]:
                    f["final"][name].resize(int(committed[l]), axis=0)
        pending = []
        for l in range(1, self.L):
            g = f[f"layer_{l}"]
            n_rows = int(committed[l])
            child_parent = f[f"layer_{l + 1}/parent"][:]
            counts = np.bincount(child_parent, minlength=n_rows)[:n_rows] if child_parent.size else np.zeros(n_rows, int)
            g["n_children"][:] = np.where(counts > 0, counts, -1).astype(np.int32)
            todo = np.nonzero(counts == 0)[0]
            if todo.size:
                pending.append((l, self._load_regions(l, todo, rebuild_regions)))
        f.attrs["committed"] = committed
        f.flush()
        next_id = [1] + [int(c) for c in committed[1:]]
        return pending, next_id

    def _load_regions(self, layer, idx, rebuild):
        """Rebuild the splitter's state of layer-``layer`` rows ``idx`` from the file."""
        # walk the ancestry to get the full patterns of layers 1..layer
        cur = idx
        full_bits = [None] * layer
        full_const = [None] * layer
        ranks = [None] * layer
        for l in range(layer, 0, -1):
            g = self.f[f"layer_{l}"]
            n = self.widths[l - 1]
            full_bits[l - 1] = unpack_bits(g["pattern"][:][cur], n)
            full_const[l - 1] = unpack_bits(g["constant"][:][cur], n)
            ranks[l - 1] = g["rank"][:][cur].astype(np.int64)
            if l == layer:
                witness = g["witness"][:][cur]
                radius = g["radius"][:][cur]
                parent = g["parent"][:][cur]
            cur = g["parent"][:][cur]
        return rebuild(self.net, self.domain, np.concatenate(full_bits, axis=1), np.concatenate(full_const, axis=1),
                       witness, radius, np.stack(ranks, axis=1), parent, idx.astype(np.int64))

    def close(self) -> None:
        try:
            self.f.close()
        except Exception:  # closing twice or after an error: nothing to lose
            pass
