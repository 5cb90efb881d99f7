"""Reading region datasets: ``lrenum.open("regions.h5")``."""

from __future__ import annotations

import json
import os
from typing import Iterator, Optional

import h5py
import numpy as np

from ..errors import InputError
from ..tolerances import U64
from .format import FORMAT_NAME, FORMAT_VERSION, unpack_bits


def check_header(f: h5py.File, path: str) -> None:
    """Raise InputError unless ``f`` is an lrenum region file this version can read."""
    if f.attrs.get("format") != FORMAT_NAME:
        raise InputError(f"{path} is not an lrenum region file")
    version = int(f.attrs.get("format_version", -1))
    if version > FORMAT_VERSION:
        raise InputError(f"{path} has format version {version}; this lrenum reads up to {FORMAT_VERSION} (upgrade lrenum)")
    if version < 1:
        raise InputError(f"{path} has an invalid format version {version}")


def open_h5(path: str, what: str) -> h5py.File:
    """``path`` opened read-only, or one :class:`InputError` line saying why not."""
    if not os.path.exists(path):
        raise InputError(f"{what} not found: {path}")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"cannot read {path}: not a valid HDF5 file, or truncated ({exc})") from None


def file_format(path: str) -> Optional[str]:
    """The ``format`` attribute of an HDF5 file (``lrenum-regions``, ``lrenum-local``), or None when
    ``path`` is missing, not HDF5 or has none: the readers then say what is wrong in one line."""
    try:
        with h5py.File(path, "r") as f:
            kind = f.attrs.get("format")
    except (OSError, ValueError):
        return None
    return str(kind) if kind is not None else None


class ReadOnlyFile:
    """What every lrenum file reader shares: the open HDF5 file ``f``, a context manager."""

    f: h5py.File

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.f.close()


class RegionFile(ReadOnlyFile):
    """A region dataset opened for reading (use as a context manager or call :meth:`close`)."""

    def __init__(self, path: str):
        self.f = open_h5(path, "region file")
        try:
            check_header(self.f, path)
            a = self.f.attrs
            self.path = path
            self.complete = bool(a["complete"])
            self.input_dim = int(a["input_dim"])
            self.widths = tuple(int(v) for v in a["layer_widths"])
            self.domain = json.loads(a["domain"])
            self.format_version = int(a["format_version"])
            self.maps = str(a["maps"])
            self.n_layers = len(self.widths)
            committed = a["committed"]
            self.counts = [int(v) for v in committed[1:]]
            for l in range(1, self.n_layers + 1):
                if self.f[f"layer_{l}/parent"].shape[0] < self.counts[l - 1]:
                    raise InputError(f"{path} is truncated: layer {l} has fewer rows than committed")
        except (KeyError, ValueError) as exc:
            self.f.close()
            raise InputError(f"{path} is not a valid lrenum region file (missing {exc})") from None
        except InputError:
            self.f.close()
            raise

    # -------------------------------------------------------------- summaries
    @property
    def regions(self) -> int:
        return self.counts[-1]

    def __repr__(self) -> str:
        state = "complete" if self.complete else "INCOMPLETE"
        return f"<RegionFile {self.path!r}: {self.regions} regions, per layer {self.counts}, {state}>"

    def _segment_paths(self) -> list[str]:
        parts = self.path + ".parts"
        if not os.path.isdir(parts):
            return []
        return sorted(os.path.join(parts, n) for n in os.listdir(parts) if n.startswith("seg_") and n.endswith(".h5"))

    def n_segments(self) -> int:
        """Committed segments of an interrupted run (0 for a complete file)."""
        return len(self._segment_paths())

    def committed_segments(self) -> list[int]:
        """Rows per layer committed so far by an interrupted run (what ``--resume`` starts from)."""
        counts = [0] * self.n_layers
        for path in self._segment_paths():
            try:
                with h5py.File(path, "r") as seg:
                    for l in range(1, self.n_layers + 1):
                        if f"layer_{l}/parent" in seg:
                            counts[l - 1] += seg[f"layer_{l}/parent"].shape[0]
            except OSError:
                continue   # a torn segment is ignored here; resume reports it
        return counts

    # -------------------------------------------------------------- tables
    def layer(self, l: int) -> dict:
        """Layer ``l`` (1-based) as numpy arrays; ``pattern`` is unpacked to bool (rows, n_l)."""
        if not 1 <= l <= self.n_layers:
            raise IndexError(f"layer must be in 1..{self.n_layers}")
        g = self.f[f"layer_{l}"]
        n = self.counts[l - 1]
        out = {name: g[name][:n] for name in g}
        out["pattern"] = unpack_bits(out["pattern"], self.widths[l - 1])
        out["constant"] = unpack_bits(out["constant"], self.widths[l - 1])
        if "witness_status" not in out:   # format version 1: every witness passed the float check
            out["witness_status"] = np.zeros(n, np.int8)
        return out

    def final(self) -> dict:
        """Final regions: full ``pattern`` (bool), ``rank`` after every layer, ``witness``, ``radius``,
        ``witness_status`` and, when stored, the output maps ``A`` (regions, m, d) and ``c``; a file
        with factored maps holds ``A_basis`` (regions, m, r) and ``basis`` (r, d): A = A_basis @ basis.
        Everything is loaded into memory: iterate (``for region in file``) for large files."""
        n = self.regions
        g = self.f["final"]
        out = {name: g[name][:n] for name in g if name != "basis"}
        if "basis" in g:
            out["basis"] = g["basis"][:]
        out["pattern"] = unpack_bits(out["pattern"], sum(self.widths))
        last = self.f[f"layer_{self.n_layers}"]
        out["witness"] = last["witness"][:n]
        out["radius"] = last["radius"][:n]
        out["parent"] = last["parent"][:n]
        out["witness_status"] = (last["witness_status"][:n] if "witness_status" in last else np.zeros(n, np.int8))
        return out

    def __iter__(self) -> Iterator[dict]:
        """Iterate over final regions (chunk by chunk), each as a dict of its fields."""
        g = self.f["final"]
        last = self.f[f"layer_{self.n_layers}"]
        N = sum(self.widths)
        step = 4096
        for start in range(0, self.regions, step):
            stop = min(self.regions, start + step)
            pat = unpack_bits(g["pattern"][start:stop], N)
            rank = g["rank"][start:stop]
            wit = last["witness"][start:stop]
            rad = last["radius"][start:stop]
            for i in range(stop - start):
                yield {"index": start + i, "pattern": pat[i], "rank": rank[i], "witness": wit[i], "radius": rad[i]}

    def affine_map(self, i: int, net=None) -> tuple[np.ndarray, np.ndarray]:
        """The network output's affine map ``(A, c)`` on final region ``i``.

        Read from the file, or rebuilt from the pattern when the file was written with
        ``--maps none`` (then ``net`` must be given).
        """
        if not 0 <= i < self.regions:
            raise IndexError(f"region index {i} out of range (0..{self.regions - 1})")
        g = self.f["final"]
        if "A" in g:
            return g["A"][i], g["c"][i]
        if "A_basis" in g:
            return g["A_basis"][i] @ g["basis"][:], g["c"][i]
        if net is None:
            raise ValueError("this file stores no maps (--maps none): pass the network to rebuild them")
        bits = unpack_bits(g["pattern"][i:i + 1], sum(self.widths))[0]
        return net.affine_map(bits)

    def _geometry(self):
        if "geometry" not in self.f:
            raise ValueError("this file stores no geometry: enumerate with --geometry (or lrenum.geometry.add_geometry)")
        return self.f["geometry"]

    def polytope(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Final region ``i`` as its irredundant H-representation ``A x <= b`` (facet rows only),
        with the neuron of each row (-1 - k for the domain's row k). Needs ``--geometry``."""
        g = self._geometry()
        s, e = g["offsets"][i], g["offsets"][i + 1]
        if "facet_plane" not in g:
            return g["A"][s:e], g["b"][s:e], g["neuron"][s:e]
        A, b = _signed_planes(g, g["facet_plane"][s:e])
        return A, b, g["neuron"][s:e]

    def facet_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Every region's facet rows at once (A (F, d), b (F,)), in ``offsets`` order."""
        g = self._geometry()
        if "facet_plane" not in g:
            return g["A"][:], g["b"][:]
        plane = g["facet_plane"][:]
        sign = np.sign(plane).astype(np.float64)
        return g["plane_A"][:][np.abs(plane) - 1] * sign[:, None], g["plane_b"][:][np.abs(plane) - 1] * sign

    def vertices(self, i: int) -> np.ndarray:
        """The vertices of final region ``i`` (V, d), each within ``vertex_radii(i)`` of its exact
        vertex (``--geometry exact``: the float64 nearest). Stored by ``--geometry`` at d <= 6."""
        return self._per_vertex(i, "vertices")

    def _per_vertex(self, i: int, name: str) -> np.ndarray:
        """Region i's rows of a per-vertex dataset: through ``vertex_index`` where vertices are
        stored once and shared by the regions around them (``--geometry``), else directly."""
        g = self._geometry()
        if "vertices" not in g:
            raise ValueError("this file stores no vertices (d > 6, or geometry written before vertices were stored)")
        s, e = g["vertex_offsets"][i], g["vertex_offsets"][i + 1]
        if "vertex_index" not in g:
            return g[name][s:e]
        idx = g["vertex_index"][s:e]
        have, back = np.unique(idx, return_inverse=True)          # h5py reads increasing indices
        return g[name][have][back.ravel()] if have.size else g[name][:0]

    def vertex_radii(self, i: int) -> np.ndarray:
        """(V,) certified distance (infinity norm) of each stored vertex of region ``i`` to its
        exact vertex (files from ``--geometry exact`` or before radii were stored: half an ulp)."""
        if "vertex_radius" in self._geometry():
            return self._per_vertex(i, "vertex_radius")
        return U64 * np.abs(self.vertices(i)).max(axis=1, initial=0.0)

    def volumes(self) -> np.ndarray:
        """(N,) float64 volume of every final region (inf: unbounded); ``volume_bounds()`` says
        how far each can be from the exact volume. Stored by ``--geometry`` at d <= 6."""
        g = self._geometry()
        if "volume" not in g:
            raise ValueError("this file stores no volumes (d > 6: use lrenum.geometry.monte_carlo_volumes)")
        return g["volume"][:]

    def volume_bounds(self) -> np.ndarray:
        """(N,) certified bound on |volumes()[i] - exact volume of region i|: from the vertices'
        radii and the rows' error bounds (``--geometry``), or the rounding of an exact volume
        to float64 (``--geometry exact``: half an ulp)."""
        g = self._geometry()
        if "volume_bound" in g:
            return g["volume_bound"][:]
        v = self.volumes()
        return np.where(np.isfinite(v), U64 * np.abs(v), 0.0)

    @property
    def geometry_mode(self) -> str:
        """"float" (certified float64 vertices and volumes) or "exact" (rational vertices and
        volumes; files written before the modes existed are exact)."""
        return str(self._geometry().attrs.get("mode", "exact"))

    def adjacency(self):
        """The partition graph as a symmetric ``scipy.sparse`` matrix (entry = 1 where two final
        regions share a facet). Needs ``--geometry``."""
        from scipy import sparse

        e = self._geometry()["edges"][:]
        pairs = np.unique(e[:, :2], axis=0) if len(e) else np.zeros((0, 2), np.int64)
        n = self.regions
        m = sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
        return (m + m.T).tocsr()

    def to_networkx(self):
        """The partition graph as a ``networkx.Graph`` (edge attribute ``neurons``: the neurons
        whose hyperplane the shared facet lies on). Needs networkx and ``--geometry``."""
        try:
            import networkx as nx
        except ImportError as exc:
            raise ImportError("to_networkx needs networkx: pip install networkx") from exc
        G = nx.Graph()
        G.add_nodes_from(range(self.regions))
        for i, k, neuron in self._geometry()["edges"][:]:
            if G.has_edge(int(i), int(k)):
                G[int(i)][int(k)]["neurons"].append(int(neuron))
            else:
                G.add_edge(int(i), int(k), neurons=[int(neuron)])
        return G

    def ancestors(self, i: int) -> list[int]:
        """Indices of final region ``i``'s ancestors: [i in layer L, its parent in L-1, ..., layer 1]."""
        chain = [int(i)]
        for l in range(self.n_layers, 1, -1):
            chain.append(int(self.f[f"layer_{l}/parent"][chain[-1]]))
        return chain

    def to_pandas(self, l: Optional[int] = None):
        """Layer ``l`` (default: the last) as a pandas DataFrame (pandas is optional)."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError("to_pandas needs pandas: pip install pandas") from exc
        l = self.n_layers if l is None else l
        t = self.layer(l)
        frame = {"parent": t["parent"], "rank": t["rank"], "radius": t["radius"]}
        if "n_children" in t:
            frame["n_children"] = t["n_children"]
        for k in range(self.input_dim):
            frame[f"witness_{k}"] = t["witness"][:, k]
        frame["pattern"] = ["".join("1" if v else "0" for v in row) for row in t["pattern"]]
        return pd.DataFrame(frame)


def open(path: str):  # noqa: A001 - mirrors h5py.File / builtins.open
    """Open a file written by ``lrenum enumerate -o`` (a :class:`RegionFile`) or by
    ``lrenum local -o`` (a :class:`lrenum.datasets.local_file.LocalFile`)."""
    path = os.fspath(path)
    from .local_file import LOCAL_FORMAT, LocalFile

    return LocalFile(path) if file_format(path) == LOCAL_FORMAT else RegionFile(path)


def _signed_planes(g, plane: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Facet rows from shared planes: entry j > 0 is plane j - 1, j < 0 that plane negated."""
    which = np.abs(plane) - 1
    have, back = np.unique(which, return_inverse=True)          # h5py reads increasing indices
    sign = np.sign(plane).astype(np.float64)
    if not have.size:
        return np.zeros((0, g["plane_A"].shape[1])), np.zeros(0)
    return g["plane_A"][have][back.ravel()] * sign[:, None], g["plane_b"][have][back.ravel()] * sign
