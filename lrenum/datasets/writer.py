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

One module because creation, commits and the final merge share the crash-safety invariants
(tmp + rename, one segment per commit): split apart, each piece would have to restate them.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import h5py
import numpy as np

from .. import tolerances
from .._version import __version__
from ..core.frame import Frame
from ..core.state import Regions
from ..core.walk import EnumerationResult, ResumeState, enumerate_regions
from ..errors import InputError
from ..model.domain import Domain
from ..model.network import Network
from .chunks import ChunkedAppender, merge_threads
from .format import FORMAT_NAME, FORMAT_VERSION, pack_bits

COMMIT_SECONDS = float(os.environ.get("LRENUM_COMMIT_SECONDS", "1.0"))  # seconds between commits
CHUNK_ROWS = 4096
PARENT_SHIFT = "parent_shift"   # segment attribute (optional): per layer, added to its rows' parent ids
ROOT_OPEN = "root_split_open"   # segment attribute (optional, absent = False): when it was committed, the root's
                                # children were still being handed on in pieces (resume splits the root again)


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


def _add_counts(acc: Optional[np.ndarray], ids: np.ndarray) -> np.ndarray:
    """``acc`` plus the occurrences of each id in ``ids`` (the longer of the two lengths)."""
    c = np.bincount(ids)
    if acc is None:
        return c
    if c.size > acc.size:
        c[:acc.size] += acc
        return c
    acc[:c.size] += c
    return acc


class RegionWriter:
    """Runs an enumeration and streams its regions into an HDF5 file (it is the walk's sink)."""

    def __init__(self, path: str, f: h5py.File, net: Network, domain: Domain, maps: str):
        self.path = path
        self.f = f
        self.net = net
        self.domain = domain
        self.frame = Frame(net, domain)
        # 'all' stores x-space maps; with a reduced basis (wide inputs) that would be m x d floats per
        # region (62 KB at MNIST size), so 'all' becomes 'factored': m x r per region plus the basis once
        if maps == "all" and not self.frame.geometry.identity_basis:
            maps = "factored"
        self.maps = maps
        self.L = net.n_hidden
        self.widths = net.hidden_widths
        self.offsets = net.neuron_offsets
        self.buffer: dict = {}
        self.last_commit = time.perf_counter()
        self.root_open = False

    # ------------------------------------------------------------------ creation / opening
    @classmethod
    def create(cls, path: str, net: Network, domain: Domain, *, network_path: str = "", force: bool = False,
               resume: bool = False, maps: Optional[str] = None) -> "RegionWriter":
        """Open ``path`` for a new run, or for resuming (``resume=True``).

        ``maps``: 'all' (default), 'none'; on resume it must match the file (or be None).
        """
        if maps not in (None, "all", "none"):
            raise InputError(f"maps must be 'all' or 'none', not {maps!r}")
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
        w = cls(path, f, net, domain, maps or "all")
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
        a["activation"] = "relu" if net.is_relu else "leaky_relu"
        a["domain"] = json.dumps(self.domain.describe())
        a["tolerances"] = json.dumps({"cut_tol": tolerances.CUT_TOL, "decide_tol": tolerances.DECIDE_TOL,
                                      "certification": "float64 a priori bounds, Clarabel, exact rationals"})
        a["maps"] = self.maps
        a["complete"] = False
        a["committed"] = np.zeros(self.L + 1, dtype=np.int64)
        a["counts"] = np.zeros(self.L, dtype=np.int64)
        a["regions"] = 0
        def table(g, name, dtype, shape=()):
            rows = max(1, min(CHUNK_ROWS, 2 ** 20 // max(1, int(np.prod(shape)) * np.dtype(dtype).itemsize)))
            g.create_dataset(name, (0,) + shape, dtype, maxshape=(None,) + shape, chunks=(rows,) + shape,
                             **table_filters(dtype))

        if not net.is_relu:
            for l, s in enumerate(net.slopes):
                f.create_dataset(f"slopes/layer_{l + 1}", data=np.asarray(s, np.float64))
        for l in range(1, self.L + 1):
            g = f.create_group(f"layer_{l}")
            nb = (self.widths[l - 1] + 7) // 8
            table(g, "parent", np.int64)
            table(g, "pattern", np.uint8, (nb,))
            table(g, "constant", np.uint8, (nb,))
            table(g, "rank", np.int16)
            table(g, "witness", np.float64, (d,))
            table(g, "radius", np.float64)
            table(g, "witness_status", np.int8)
            if l < self.L:
                table(g, "n_children", np.int32)
        g = f.create_group("final")
        nb = (int(sum(self.widths)) + 7) // 8
        m, r = net.output_dim, self.frame.r
        table(g, "pattern", np.uint8, (nb,))
        table(g, "rank", np.int16, (self.L,))
        if self.maps == "all":
            table(g, "A", np.float64, (m, d))
            table(g, "c", np.float64, (m,))
        elif self.maps == "factored":
            table(g, "A_basis", np.float64, (m, r))
            table(g, "c", np.float64, (m,))
            g.create_dataset("basis", data=self.frame.geometry.U)

    @classmethod
    def _open_for_resume(cls, path: str, net: Network, domain: Domain, maps: Optional[str]) -> "RegionWriter":
        from .reader import check_header

        try:
            f = h5py.File(path, "r+")
        except OSError as exc:
            raise InputError(f"cannot resume {path}: not a readable HDF5 file ({exc})") from None
        try:
            check_header(f, path)
            if int(f.attrs["format_version"]) != FORMAT_VERSION:
                raise InputError(f"cannot resume {path}: written in format version {int(f.attrs['format_version'])}")
            if f.attrs["network_sha256"] != net.digest():
                raise InputError(f"cannot resume {path}: it was written for a different network")
            if json.loads(f.attrs["domain"]) != domain.describe():
                raise InputError(f"cannot resume {path}: it was written for a different domain")
            stored = str(f.attrs["maps"])
            if maps is not None and (maps == "none") != (stored == "none"):
                raise InputError(f"cannot resume {path} with --maps {maps}: it was started with --maps "
                                 f"{'none' if stored == 'none' else 'all'}")
        except InputError:
            f.close()
            raise
        return cls(path, f, net, domain, stored)

    # ------------------------------------------------------------------ the run
    def run(self, *, batch_size: Optional[int] = None, device: Optional[str] = None, progress: bool = False,
            **options) -> EnumerationResult:
        """Enumerate (or finish enumerating) into the file; ``options`` go to :func:`enumerate_regions`."""
        resume = self._pending_state(device)
        self.root_open = resume is not None and resume.root_given is not None   # open until split again
        result = enumerate_regions(self.net, self.domain, batch_size=batch_size, device=device, sink=self,
                                   progress=progress, resume=resume, **options)
        self.commit(force=True)
        a = self.f.attrs
        a["counts"] = np.array(result.per_layer, dtype=np.int64)
        a["regions"] = result.regions
        a["complete"] = True
        a["summary"] = json.dumps(result.summary())
        self._merge()
        return result

    def regions(self, layer: int, batch: Regions) -> None:
        """New regions from the walk: buffer them (written at the next commit)."""
        self.buffer.setdefault(layer, []).append(self._rows(layer, batch))

    def split_done(self, layer: int, ident: np.ndarray, n_children: np.ndarray) -> None:
        """Regions were split and their children buffered: a safe point to commit."""
        self.commit()   # children and parents of one split always land in the same segment

    def root_split(self, is_open: bool) -> None:
        """The root's children come in pieces, with commits in between: each segment records
        whether the root was still open, so that a resume knows to split it again."""
        self.root_open = is_open

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
            seg.attrs[ROOT_OPEN] = self.root_open
            for layer in sorted(self.buffer):
                parts = self.buffer[layer]
                for name in parts[0]:
                    seg[f"layer_{layer}/{name}"] = np.concatenate([p[name] for p in parts])
        os.replace(tmp, final)
        self.buffer.clear()

    def commit_file(self, path: str, parent_shift: list[int]) -> None:
        """Commit a finished file of rows (a Ray task's, with ids local to it) as the next segment,
        by rename: ``parent_shift[l]`` is added to the parent ids of its layer-l rows when segments
        are read, so the rows themselves are not copied. The rename is the commit point."""
        self.commit(force=True)             # rows buffered before it keep their ids
        with h5py.File(path, "r+") as f:    # not yet a segment: a crash here loses only a task file
            f.attrs[PARENT_SHIFT] = np.asarray(parent_shift, dtype=np.int64)
        os.makedirs(self.parts_dir, exist_ok=True)
        final = os.path.join(self.parts_dir, f"seg_{len(self._segments()):08d}.h5")
        try:
            os.replace(path, final)
        except OSError:                     # another file system: copy next to it, then rename
            shutil.copyfile(path, final + ".tmp")
            os.replace(final + ".tmp", final)
            os.remove(path)

    @staticmethod
    def _segment_rows(seg: h5py.File, layer: int, name: str) -> np.ndarray:
        """A segment's column, with parent ids shifted to global ids where it says so."""
        rows = seg[f"layer_{layer}/{name}"][:]
        if name == "parent" and PARENT_SHIFT in seg.attrs:
            rows = rows + seg.attrs[PARENT_SHIFT][layer]
        return rows

    def _rows(self, layer: int, batch: Regions) -> dict:
        return region_rows(self.net, self.frame, self.maps, layer, batch)

    def root_open_at_last_commit(self) -> bool:
        """Whether the last committed segment was written while the root's split was still open."""
        segments = self._segments()
        if not segments:
            return False
        try:
            with h5py.File(segments[-1], "r") as seg:
                return bool(seg.attrs.get(ROOT_OPEN, False))
        except OSError as exc:
            raise InputError(f"cannot resume {self.path}: segment {segments[-1]} is unreadable ({exc})") from None

    def _read_segments(self) -> dict:
        """All committed rows per layer, in id order."""
        rows: dict = {}
        for path in self._segments():
            try:
                with h5py.File(path, "r") as seg:
                    for l in range(1, self.L + 1):
                        if f"layer_{l}" in seg:
                            for name in seg[f"layer_{l}"]:
                                rows.setdefault(l, {}).setdefault(name, []).append(self._segment_rows(seg, l, name))
            except OSError as exc:
                raise InputError(f"cannot resume {self.path}: segment {path} is unreadable ({exc})") from None
        return {l: {n: np.concatenate(v) for n, v in d.items()} for l, d in rows.items()}

    def _merge(self) -> None:
        """Write the complete file (header layout plus every segment), then rename it into place."""
        tmp = self.path + ".tmp"
        attrs = dict(self.f.attrs)
        self.f.close()
        final_names = {"final_pattern": "pattern", "final_rank": "rank", "final_A": "A",
                       "final_A_basis": "A_basis", "final_c": "c"}
        threads = merge_threads()
        with h5py.File(tmp, "w") as out, ThreadPoolExecutor(threads) as pool:
            self.f = out
            self._layout(attrs.get("network_path", ""))
            for key, value in attrs.items():
                out.attrs[key] = value
            tables: dict = {}
            children: dict = {}      # layer l -> children per region, counted from layer l + 1's parents as they pass

            def table(key: str) -> ChunkedAppender:
                if key not in tables:
                    tables[key] = ChunkedAppender(out[key], pool, threads)
                return tables[key]

            for path in self._segments():
                with h5py.File(path, "r") as seg:
                    for l in range(1, self.L + 1):
                        if f"layer_{l}" not in seg:
                            continue
                        src = seg[f"layer_{l}"]
                        for name in PER_LAYER:
                            rows = self._segment_rows(seg, l, name)
                            table(f"layer_{l}/{name}").append(rows)
                            if name == "parent" and l > 1:
                                children[l - 1] = _add_counts(children.get(l - 1), rows)
                        if l == self.L:
                            for name, target in final_names.items():
                                if name in src:
                                    table(f"final/{target}").append(src[name][:])
            for appender in tables.values():
                appender.close()
            for l in range(1, self.L):   # children counted from the parents of the next layer
                n = out[f"layer_{l}/parent"].shape[0]
                counts = np.zeros(n, np.int64)
                seen = children.get(l, counts)[:n]
                counts[:seen.size] = seen
                n_children = table(f"layer_{l}/n_children")
                n_children.append(counts.astype(np.int32))
                n_children.close()
            out.attrs["committed"] = np.array([1] + [out[f"layer_{l}/parent"].shape[0] for l in range(1, self.L + 1)],
                                              dtype=np.int64)
        os.replace(tmp, self.path)
        shutil.rmtree(self.parts_dir, ignore_errors=True)
        self.f = h5py.File(self.path, "r+")

    def _pending_state(self, device: Optional[str]) -> Optional[ResumeState]:
        """From the committed segments: the regions still to split and the id counters."""
        from .resume import pending_state

        return pending_state(self, device)

    def close(self) -> None:
        try:
            self.f.close()
        except Exception:  # closing twice or after an error: nothing to lose
            pass
