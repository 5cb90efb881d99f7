"""``enumerate -o --geometry``: the sink that gathers geometry during the run, and the step after it."""

from __future__ import annotations

from typing import Optional

from .common import _start, _Ticker


def sink(args, net, domain) -> Optional[object]:
    """A :class:`~lrenum.geometry.collect.GeometrySink` for the run, where the regions are found in
    this process from the start (with --resume or --workers the geometry step walks them again)."""
    if not args.geometry or args.resume or args.workers is not None:
        return None
    from ..geometry.collect import GeometrySink

    return GeometrySink(net, domain)


def run(args, net, domain, geometry_sink) -> dict:
    """The ``geometry`` group of the file just written (docs/format.md), with progress."""
    from ..geometry import add_geometry

    exact = args.geometry == "exact"
    _start(args, "geometry: facets, neighbours, vertices and volumes of every region " +
           ("in exact arithmetic" if exact else "(certified float64; the exact path where vertex sets are not proven)"))
    tick = _Ticker(args, "geometry", " regions" if exact else " regions on the exact path")   # float: only those
    try:
        return add_geometry(args.output, net, domain, progress=tick, mode=args.geometry, sink=geometry_sink)
    finally:
        tick.close()
