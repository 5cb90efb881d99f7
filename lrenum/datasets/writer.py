"""Streaming, resumable HDF5 region datasets (format documented in docs/format.md).

HDF5 files are not crash-safe while being modified: a SIGKILL inside a write can damage
chunks that were already committed, and SWMR mode leaves a flag that blocks reopening. So no
file is ever modified in a way a kill or a fault could tear; every file is written through
:func:`lrenum.datasets.storage.written` (tmp, fsync, rename, fsync of the directory):

* ``FILE`` is written once at the start: header, empty tables, ``complete = False``; the run
  never opens it again for writing.
* Every commit (about once a second) writes the rows produced since the last one as a new
  segment ``FILE.parts/seg_NNNNNNNN.h5``: a segment exists whole or not.
* At the end the header and all segments are merged into a new file; ``complete = True`` is its
  last write, and only then is it synced and renamed over ``FILE``; then the segments go.

A failed write (a full disk, an I/O error) ends the run with :class:`lrenum.errors.WriteError`
and leaves ``FILE`` incomplete with every segment committed before the fault. Resuming reads the
committed segments, re-splits every region whose children are not all committed (a split region
always has at least one child) and continues, so the result is the same set of regions as an
uninterrupted run, none lost or repeated.

The crash-safety invariants live in :mod:`.storage` (tmp, fsync, rename); the layout of rows and
tables in :mod:`.layout`; the final merge in :mod:`.merge`. This module is the writer's
protocol: create, commit segments, resume, finish.
"""

from __future__ import annotations

import errno
import json
import os
import time
from typing import Optional

import h5py
import numpy as np

from .._version import __version__
from ..core.frame import Frame
from ..core.state import Regions
from ..core.tree import ResumeState
from ..core.walk import EnumerationResult, enumerate_regions
from ..errors import InputError, LrenumError, WriteError
from ..model.domain import Domain
from ..model.network import Network
from ..settings import Settings
from .format import FORMAT_NAME, FORMAT_VERSION
from .layout import PARENT_SHIFT, ROOT_OPEN, region_rows, segment_rows, write_layout
from .merge import merge_segments
from .storage import Storage, describe, write_error, written


class RegionWriter:
    """Runs an enumeration and streams its regions into an HDF5 file (it is the walk's sink)."""

    def __init__(self, path: str, attrs: dict, net: Network, domain: Domain, maps: str, settings: Settings,
                 storage: Storage):
        self.path = path
        self.attrs = attrs                 # the header's attributes (the file itself is not kept open)
        self.net = net
        self.domain = domain
        self.settings = settings
        self.storage = storage
        self.frame = Frame(net, domain, settings)
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
        self.committed = [0] * (self.L + 1)   # rows per layer (index l = layer l) in committed segments

    # ------------------------------------------------------------------ creation / opening
    @classmethod
    def create(cls, path: str, net: Network, domain: Domain, *, network_path: str = "", force: bool = False,
               resume: bool = False, maps: Optional[str] = None, settings: Optional[Settings] = None,
               storage: Optional[Storage] = None) -> "RegionWriter":
        """Open ``path`` for a new run, or for resuming (``resume=True``). Everything that can be
        checked before the run (the directory, the file's state, writing the header) is: bad
        output paths fail here, in one line, before any work.

        ``maps``: 'all' (default), 'none'; on resume it must match the file (or be None).
        """
        settings = settings or Settings.build()
        storage = storage or Storage()
        if maps not in (None, "all", "none"):
            raise InputError(f"maps must be 'all' or 'none', not {maps!r}")
        exists = os.path.exists(path)
        if resume and exists:
            return cls._open_for_resume(path, net, domain, maps, settings, storage)
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
        if not os.access(directory, os.W_OK | os.X_OK):
            raise InputError(f"output directory is not writable: {directory}")
        w = cls(path, {}, net, domain, maps or "all", settings, storage)
        w.attrs = w._header_attrs(network_path)
        try:
            with written(storage, path) as f:     # an old file (with --force) is replaced only by a valid new one
                w._layout(f)
        except OSError as exc:
            raise WriteError(f"cannot create {path}: {describe(exc)}") from None
        storage.remove_tree(path + ".parts")
        return w

    def _header_attrs(self, network_path: str) -> dict:
        net = self.net
        return {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "lrenum_version": __version__,
                "network_sha256": net.digest(), "network_path": network_path, "input_dim": net.input_dim,
                "output_dim": net.output_dim, "layer_widths": np.array(self.widths, dtype=np.int64),
                "activation": "relu" if net.is_relu else "leaky_relu", "domain": json.dumps(self.domain.describe()),
                "tolerances": json.dumps({"cut_tol": self.settings.cut_tol, "decide_tol": self.settings.decide_tol,
                                          "certification": "float64 a priori bounds, Clarabel, exact rationals"}),
                "maps": self.maps, "complete": False, "committed": np.zeros(self.L + 1, dtype=np.int64),
                "counts": np.zeros(self.L, dtype=np.int64), "regions": 0}

    def _layout(self, f: h5py.File) -> None:
        """The header's attributes and empty tables into ``f``."""
        write_layout(f, self.attrs, self.net, self.frame, self.maps)

    @classmethod
    def _open_for_resume(cls, path: str, net: Network, domain: Domain, maps: Optional[str], settings: Settings,
                         storage: Storage) -> "RegionWriter":
        from .reader import check_header

        try:
            f = h5py.File(path, "r")
        except OSError as exc:
            raise InputError(f"cannot resume {path}: not a readable HDF5 file ({exc})") from None
        with f:
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
            attrs = dict(f.attrs)
        if bool(attrs.get("complete", False)):
            left = _leftover_parts(path)
            if left:   # the merge finished, then the run stopped before removing its segments
                storage.remove_tree(path + ".parts")
            raise InputError(f"{path} is already complete ({int(attrs.get('regions', 0))} regions): nothing to resume"
                             + (f" (removed {left} leftover segment files of its merge)" if left else ""))
        w = cls(path, attrs, net, domain, stored, settings, storage)
        w.removed_orphans = w._remove_torn_segments()
        return w

    def _remove_torn_segments(self) -> int:
        """Temporary files a fault left in the parts folder (a segment that never committed: its
        rows are redone by the resume rule). Returns how many were removed."""
        if not os.path.isdir(self.parts_dir):
            return 0
        torn = [n for n in os.listdir(self.parts_dir) if n.endswith(".tmp")]
        for n in torn:
            self.storage.remove(os.path.join(self.parts_dir, n))
        return len(torn)

    # ------------------------------------------------------------------ the run
    def run(self, *, progress: bool = False, also=None) -> EnumerationResult:
        """Enumerate (or finish enumerating) into the file; ``also``: another sink that sees every
        batch after the file (the geometry gathered during the run)."""
        resume = self.resume_state()
        self.root_open = resume is not None and resume.root_given is not None   # open until split again
        sinks = [self] if also is None else [self, also]
        result = enumerate_regions(self.net, self.domain, self.settings, sink=sinks, progress=progress, resume=resume)
        self.finish(result)
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

    @property
    def committed_regions(self) -> int:
        """Final regions in committed segments (what a fault leaves for --resume)."""
        return self.committed[self.L]

    def _segments(self) -> list[str]:
        if not os.path.isdir(self.parts_dir):
            return []
        return sorted(os.path.join(self.parts_dir, n) for n in os.listdir(self.parts_dir)
                      if n.startswith("seg_") and n.endswith(".h5"))

    def _failed(self, exc: BaseException) -> WriteError:
        return write_error(self.path, exc, self.committed_regions)

    def commit(self, force: bool = False) -> None:
        """Write everything buffered as one new segment file, atomically (tmp + rename)."""
        now = time.perf_counter()
        if not force and now - self.last_commit < self.settings.commit_seconds:
            return
        self.last_commit = now
        if not self.buffer:
            return
        try:
            self.storage.makedirs(self.parts_dir)
            final = os.path.join(self.parts_dir, f"seg_{len(self._segments()):08d}.h5")
            rows = [0] * (self.L + 1)
            with written(self.storage, final) as seg:
                seg.attrs[ROOT_OPEN] = self.root_open
                for layer in sorted(self.buffer):
                    parts = self.buffer[layer]
                    for name in parts[0]:
                        seg[f"layer_{layer}/{name}"] = np.concatenate([p[name] for p in parts])
                    rows[layer] = sum(len(p["parent"]) for p in parts)
        except OSError as exc:
            raise self._failed(exc) from None
        self.committed = [a + b for a, b in zip(self.committed, rows)]
        self.buffer.clear()

    def commit_file(self, path: str, parent_shift: list[int]) -> None:
        """Commit a finished file of rows (a Ray task's, with ids local to it) as the next segment,
        by rename: ``parent_shift[l]`` is added to the parent ids of its layer-l rows when segments
        are read, so the rows themselves are not copied. The rename is the commit point."""
        self.commit(force=True)             # rows buffered before it keep their ids
        try:
            with h5py.File(path, "r+") as f:    # not yet a segment: a fault here loses only a task file
                f.attrs[PARENT_SHIFT] = np.asarray(parent_shift, dtype=np.int64)
                rows = [0] + [f[f"layer_{l}/parent"].shape[0] if f"layer_{l}/parent" in f else 0
                              for l in range(1, self.L + 1)]
            self.storage.makedirs(self.parts_dir)
            final = os.path.join(self.parts_dir, f"seg_{len(self._segments()):08d}.h5")
            try:
                self.storage.replace(path, final)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                self.storage.copy(path, final + ".tmp")     # another file system: copy next to it, then rename
                self.storage.replace(final + ".tmp", final)
                self.storage.remove(path)
            self.storage.sync_dir(self.parts_dir)
        except OSError as exc:
            raise self._failed(exc) from None
        self.committed = [a + b for a, b in zip(self.committed, rows)]

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

    def read_segments(self) -> dict:
        """All committed rows per layer, in id order (and the committed counts updated)."""
        rows: dict = {}
        for path in self._segments():
            try:
                with h5py.File(path, "r") as seg:
                    for l in range(1, self.L + 1):
                        if f"layer_{l}" in seg:
                            for name in seg[f"layer_{l}"]:
                                rows.setdefault(l, {}).setdefault(name, []).append(segment_rows(seg, l, name))
            except OSError as exc:
                raise InputError(f"cannot resume {self.path}: segment {path} is unreadable ({exc})") from None
        out = {l: {n: np.concatenate(v) for n, v in d.items()} for l, d in rows.items()}
        self.committed = [0] + [len(out.get(l, {}).get("parent", ())) for l in range(1, self.L + 1)]
        return out

    def resume_state(self) -> Optional[ResumeState]:
        """From the committed segments: the regions still to split and the id counters (None:
        nothing committed, start afresh)."""
        from .resume import pending_state

        return pending_state(self)

    # ------------------------------------------------------------------ the end: merge and completion mark
    def finish(self, result: EnumerationResult) -> None:
        """Commit what is buffered, then merge header and segments into the complete file."""
        self.commit(force=True)
        a = dict(self.attrs)
        a["counts"] = np.array(result.per_layer, dtype=np.int64)
        a["regions"] = result.regions
        a["summary"] = json.dumps(result.summary())
        try:
            self.attrs = self._merge(a)
        except OSError as exc:
            raise self._failed(exc) from None
        self.storage.remove_tree(self.parts_dir)
        if self.settings.verify_written:
            from .verify import Mismatch, verify_file   # verify reads what this module writes

            try:
                verify_file(self.path, self.net, self.domain, device=self.settings.device)
            except Mismatch as exc:
                raise LrenumError(f"{self.path} was written but fails verification: {exc}") from None

    def _merge(self, attrs: dict) -> dict:
        """The complete file from the header and every segment (:func:`merge_segments`)."""
        return merge_segments(self.storage, self.path, self._segments(), self.L, attrs, self._layout)

    def close(self) -> None:
        """Nothing stays open between commits; kept so that callers can close in ``finally``."""


def _leftover_parts(path: str) -> int:
    """Segment files left beside a file (0 when there is no parts folder)."""
    parts = path + ".parts"
    return len(os.listdir(parts)) if os.path.isdir(parts) else 0
