"""The ``geometry`` group of a region file: computed for every final region, written atomically.

One door for both modes (docs/format.md, "Geometry"): ``float`` reads facets, vertices and
certified volumes off the enumeration's vertex sets (:mod:`lrenum.geometry.collect`), ``exact``
computes them in rationals (from the same proven vertex sets where there are some, else by the
vertex walk of :mod:`lrenum.geometry.facets`).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..model.domain import Domain
from ..model.network import Network
from .collect import GeometrySink, fast_path_applies
from .facets import geometry_of
from .sharing import shared_planes

GEOMETRY_MODES = ("float", "exact")


def add_geometry(path: str, net: Network, domain: Domain, progress=None, mode: str = "float", sink=None) -> dict:
    """Compute the geometry of every final region of a complete file and store it in the file
    (group ``geometry``, docs/format.md); written to a copy that replaces the file atomically
    (a failed write leaves the file as it was and ends in WriteError).

    ``mode="float"``: vertices and volumes as float64 with certified bounds, read off the vertex
    path's final vertex sets (``sink``: the :class:`~lrenum.geometry.collect.GeometrySink` that
    watched the enumeration; without one the regions are enumerated again in memory), the exact
    path only where those are not proven. ``mode="exact"``: vertices and volumes in exact
    rationals (the volumes also as ``"p/q"`` strings), from the same proven vertex sets where
    there are some, else by the exact vertex walk."""
    from ..datasets.reader import RegionFile
    from ..datasets.storage import Storage, rewritten, write_error

    if mode not in GEOMETRY_MODES:
        raise InputError(f"geometry mode must be one of {', '.join(GEOMETRY_MODES)}, not {mode!r}")
    with RegionFile(path) as f:
        if not f.complete:
            raise InputError(f"{path} is incomplete: finish it (--resume) before adding geometry")
        patterns = f.final()["pattern"]
    if sink is None:
        sink = GeometrySink(net, domain)
        if fast_path_applies(net, domain, sink.frame):
            from ..core.walk import enumerate_regions
            from ..settings import Settings

            enumerate_regions(net, domain, Settings.build().replace(final_vertices=True), sink=sink)
    if mode == "exact" and not sink.fast:
        geo = geometry_of(net, domain, patterns, progress)
    else:
        geo = sink.assemble(patterns, progress, exact=mode == "exact")
    if mode == "float":                   # facet rows once per hyperplane (docs/format.md)
        geo["plane_A"], geo["plane_b"], geo["facet_plane"] = shared_planes(geo.pop("A"), geo.pop("b"))
    for name in ("neuron", "edges"):      # int32 where it fits: half the bytes
        if len(geo[name]) and np.abs(geo[name]).max() < 2 ** 31:
            geo[name] = geo[name].astype(np.int32)
    names = ("offsets", "A", "b", "plane_A", "plane_b", "facet_plane", "neuron", "edges", "vertex_offsets",
             "vertex_index", "vertices", "vertex_radius", "volume", "volume_bound")
    try:
        with rewritten(Storage(), path) as out:
            if "geometry" in out:
                del out["geometry"]
            g = out.create_group("geometry")
            for name in names:
                if name in geo:
                    g.create_dataset(name, data=geo[name], compression="gzip", shuffle=True)
            if "volume_exact" in geo:
                g.create_dataset("volume_exact", data=geo["volume_exact"].astype(bytes), compression="gzip")
            g.attrs["unresolved_neighbours"] = geo["unresolved_neighbours"]
            g.attrs["mode"] = mode
    except OSError as exc:
        raise write_error(path, exc) from None
    summary = {"mode": mode, "facets": int(len(geo["neuron"])), "edges": int(len(geo["edges"])),
               "unresolved_neighbours": geo["unresolved_neighbours"]}
    if "vertices" in geo:
        summary["vertices"] = int(len(geo["vertices"]))          # distinct vertices where they are shared
        if "vertex_index" in geo:
            summary["vertex_copies"] = int(len(geo["vertex_index"]))
    if "fast_regions" in geo:
        summary.update(fast_regions=geo["fast_regions"], exact_regions=geo["exact_regions"])
    return summary
