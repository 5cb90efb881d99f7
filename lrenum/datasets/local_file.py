"""Local-complexity files (``lrenum local -o``): per-point tables and, optionally, every region.

Layout (format ``lrenum-local``, version 1; ``docs/format.md`` documents each field):

* attributes: ``format``, ``format_version``, ``complete``, ``network_sha256``, ``input_dim``,
  ``layer_widths``, ``domain`` (JSON: the network's domain the boxes were clipped to, or null),
  ``clip``, ``regions_stored``;
* per point (row i is point i, in the input's order): ``points`` (n, d), ``radius`` (n,), ``lo``,
  ``hi`` (n, d) the box, ``count`` (n,), ``per_layer``, ``max_children``, ``mean_children``,
  ``switching`` (n, L), ``rank_hist`` (n, L, K); with proxies ``neurons_meeting`` (n, L),
  ``sampled_patterns``, ``samples_certified`` (n,);
* with regions, group ``regions``: ``domain`` (R,) the point each region belongs to, ``pattern``
  and ``constant`` (R, ceil(N/8)) packed bits, ``witness`` (R, d), ``radius`` (R,),
  ``witness_status`` (R,), ``rank`` (R, L).

The file is written whole or not at all (:func:`lrenum.datasets.storage.written`): a failed or
interrupted run leaves no file, never one that claims to be complete.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from typing import Optional

import numpy as np

from ..errors import InputError, WriteError
from .format import pack_bits, unpack_bits
from .reader import ReadOnlyFile, open_h5
from .storage import Storage, describe, written

LOCAL_FORMAT = "lrenum-local"
LOCAL_VERSION = 1

__all__ = ["LocalWriter", "LocalFile", "LOCAL_FORMAT"]


class LocalWriter:
    """Writes a local-complexity file as points finish (any order); ``close()`` completes it."""

    def __init__(self, path: str, net, points: np.ndarray, radius: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 domain: Optional[dict], clip: bool, regions: bool, proxies: bool,
                 storage: Optional[Storage] = None):
        self.path, self.L, self.N = path, net.n_hidden, int(sum(net.hidden_widths))
        self.keep_regions, self.proxies = regions, proxies
        self._stack = ExitStack()
        try:
            self.f = self._stack.enter_context(written(storage or Storage(), path))
            self._header(net, points, radius, lo, hi, domain, clip)
        except OSError as exc:
            self._stack.close()
            raise WriteError(f"cannot write {path}: {describe(exc)}") from None
        self.rank_cap = min(net.input_dim, max(net.hidden_widths)) + 1
        self.stored = 0

    def _header(self, net, points, radius, lo, hi, domain, clip) -> None:
        f, n, L = self.f, len(points), self.L
        f.attrs.update(format=LOCAL_FORMAT, format_version=LOCAL_VERSION, complete=False,
                       network_sha256=net.digest(), input_dim=net.input_dim,
                       layer_widths=np.asarray(net.hidden_widths, np.int64), domain=json.dumps(domain),
                       clip=bool(clip), regions_stored=bool(self.keep_regions))
        for name, arr in (("points", points), ("radius", radius), ("lo", lo), ("hi", hi)):
            f.create_dataset(name, data=np.asarray(arr, np.float64))
        f.create_dataset("count", data=np.full(n, -1, np.int64))
        for name in ("per_layer", "max_children", "switching"):
            f.create_dataset(name, data=np.full((n, L), -1, np.int64))
        f.create_dataset("mean_children", data=np.full((n, L), np.nan))
        f.create_dataset("rank_hist", data=np.zeros((n, L, min(net.input_dim, max(net.hidden_widths)) + 1), np.int64))
        if self.proxies:
            f.create_dataset("neurons_meeting", data=np.full((n, L), -1, np.int64))
            f.create_dataset("sampled_patterns", data=np.full(n, -1, np.int64))
            f.create_dataset("samples_certified", data=np.full(n, -1, np.int64))
        if self.keep_regions:
            g = f.create_group("regions")
            nb = -(-self.N // 8)
            g.create_dataset("domain", (0,), np.int64, maxshape=(None,), chunks=(4096,))
            for name in ("pattern", "constant"):
                g.create_dataset(name, (0, nb), np.uint8, maxshape=(None, nb), chunks=(4096, max(nb, 1)))
            g.create_dataset("witness", (0, net.input_dim), np.float64, maxshape=(None, net.input_dim),
                             chunks=(max(1, min(4096, 2 ** 20 // (8 * net.input_dim))), net.input_dim))
            g.create_dataset("radius", (0,), np.float64, maxshape=(None,), chunks=(4096,))
            g.create_dataset("witness_status", (0,), np.int8, maxshape=(None,), chunks=(4096,))
            g.create_dataset("rank", (0, L), np.int64, maxshape=(None, L), chunks=(4096, L))

    def add(self, p) -> None:
        """One point's result (a :class:`lrenum.counting.local.PointResult`)."""
        try:
            self._add(p)
        except OSError as exc:
            self.abort()
            raise WriteError(f"cannot write {self.path}: {describe(exc)} (no file was left)") from None

    def _add(self, p) -> None:
        f, i = self.f, p.index
        f["count"][i] = p.regions
        f["per_layer"][i] = p.per_layer
        f["max_children"][i] = p.max_children
        f["mean_children"][i] = p.mean_children
        f["switching"][i] = p.switching
        hist = np.zeros((self.L, self.rank_cap), np.int64)
        for l, row in enumerate(p.rank_hist):
            hist[l, :len(row)] = row
        f["rank_hist"][i] = hist
        if self.proxies and p.proxies is not None:
            f["neurons_meeting"][i] = p.proxies["neurons_meeting"]
            f["sampled_patterns"][i] = p.proxies["sampled_patterns"]
            f["samples_certified"][i] = p.proxies["samples_certified"]
        if self.keep_regions:
            g, k = f["regions"], p.regions
            start = g["domain"].shape[0]
            for name, data in (("domain", np.full(k, i, np.int64)), ("pattern", pack_bits(p.patterns)),
                               ("constant", pack_bits(p.constant)), ("witness", p.witnesses), ("radius", p.radii),
                               ("witness_status", p.wstatus), ("rank", p.ranks)):
                ds = g[name]
                ds.resize(start + k, axis=0)
                ds[start:start + k] = data
            self.stored += k

    def close(self) -> None:
        """Mark the file complete and put it in place (renamed over ``path``)."""
        try:
            if np.any(self.f["count"][:] < 0):
                raise WriteError(f"internal error: not every point of {self.path} was written")
            self.f.attrs["complete"] = True
            self._stack.close()
        except OSError as exc:
            raise WriteError(f"cannot write {self.path}: {describe(exc)} (no file was left)") from None

    def abort(self) -> None:
        """Drop the temporary file (the run failed): nothing is left at ``path``."""
        try:
            self._stack.__exit__(RuntimeError, RuntimeError("aborted"), None)
        except BaseException:
            pass


class LocalFile(ReadOnlyFile):
    """A local-complexity file opened for reading (``lrenum.open`` returns one for such files)."""

    def __init__(self, path: str):
        f = open_h5(path, "file")
        self.f, self.path = f, path
        try:
            a = f.attrs
            if a.get("format") != LOCAL_FORMAT:
                raise InputError(f"{path} is not an lrenum local-complexity file")
            if int(a["format_version"]) > LOCAL_VERSION:
                raise InputError(f"{path} has local format version {int(a['format_version'])}; this lrenum reads up to {LOCAL_VERSION}")
            self.complete = bool(a["complete"])
            self.input_dim = int(a["input_dim"])
            self.widths = tuple(int(v) for v in a["layer_widths"])
            self.domain = json.loads(a["domain"])
            self.clip = bool(a["clip"])
            self.regions_stored = bool(a["regions_stored"])
            self.n_layers = len(self.widths)
            self.points = f["points"][:]
            self.radius, self.lo, self.hi = f["radius"][:], f["lo"][:], f["hi"][:]
            self.counts = f["count"][:]
            self.per_layer = f["per_layer"][:]
        except (KeyError, ValueError) as exc:
            f.close()
            raise InputError(f"{path} is not a valid lrenum local-complexity file (missing {exc})") from None
        except InputError:
            f.close()
            raise

    def __len__(self) -> int:
        return len(self.points)

    @property
    def regions(self) -> int:
        return int(self.counts.sum())

    def __repr__(self) -> str:
        return f"<lrenum local file {self.path}: {len(self)} points, {self.regions} regions>"

    def table(self, name: str) -> np.ndarray:
        """A per-point table by name (``count``, ``per_layer``, ``rank_hist``, ``neurons_meeting``, ...)."""
        if name not in self.f:
            raise InputError(f"{self.path} has no table {name!r}")
        return self.f[name][:]

    def point_regions(self, i: int) -> dict:
        """Every stored region of point i: pattern, constant (unpacked), witness, radius,
        witness_status, rank."""
        if not self.regions_stored:
            raise InputError(f"{self.path} holds per-point tables only (written without --regions)")
        g = self.f["regions"]
        rows = np.nonzero(g["domain"][:] == i)[0]
        N = int(sum(self.widths))
        out = {name: g[name][rows] if rows.size else g[name][:0] for name in
               ("witness", "radius", "witness_status", "rank")}
        out["pattern"] = unpack_bits(g["pattern"][rows] if rows.size else g["pattern"][:0], N)
        out["constant"] = unpack_bits(g["constant"][rows] if rows.size else g["constant"][:0], N)
        return out

    def to_pandas(self):
        """One row per point: count, the per-layer counts and, where stored, the proxies."""
        import pandas as pd

        cols = {"count": self.counts, "radius": self.radius}
        for l in range(self.n_layers):
            cols[f"layer_{l + 1}"] = self.per_layer[:, l]
            cols[f"max_children_{l}"] = self.f["max_children"][:, l]
            cols[f"switching_{l + 1}"] = self.f["switching"][:, l]
        if "neurons_meeting" in self.f:
            nm = self.f["neurons_meeting"][:]
            for l in range(self.n_layers):
                cols[f"neurons_meeting_{l + 1}"] = nm[:, l]
            cols["sampled_patterns"] = self.f["sampled_patterns"][:]
        return pd.DataFrame(cols)
