"""``lrenum verify`` on a file's ``geometry`` group: what the stored geometry must satisfy as a whole.

* **Volumes tile the box**: the regions' closures have disjoint interiors and cover the box, so
  their volumes add up to the box's volume: exactly for exact volumes (``--geometry exact``);
  within the sum of the certified bounds for float volumes (``--geometry``), the sum taken with
  ``math.fsum`` (correctly rounded) so that the comparison itself is exact up to one rounding.
  A missing region, or a volume wrong by more than its bound, breaks the sum.
* **Adjacency is consistent**: every edge (i, k, q) names a facet on neuron q of both regions,
  and (when no neighbour was left unresolved) every facet on a neuron that is not also a box face
  has an edge, i.e. a neighbour; the graph is symmetric by construction (one row per pair).
"""

from __future__ import annotations

import math

import numpy as np

from ..lp import exact
from ..model.domain import Domain
from ..tolerances import SAFETY, U64
from .reader import RegionFile
from .verify import Mismatch

VOLUME_CHUNK = 1024   # exact volumes read per piece (memory: they run to thousands of digits each)


def check_geometry(rf: RegionFile, domain: Domain) -> dict:
    """Check the ``geometry`` group (raises Mismatch); returns what was checked."""
    out = {"adjacency_consistent": _adjacency_consistent(rf, domain)}
    if domain.kind == "box" and "volume" in rf.f["geometry"]:
        out["volumes_tile_domain"] = (_exact_volumes_tile(rf, domain) if "volume_exact" in rf.f["geometry"]
                                      else _float_volumes_tile(rf, domain))
    return out


def _box_volume(domain: Domain):
    lo, hi = domain.box
    box = exact.ONE
    for a, b in zip(lo, hi):
        box *= exact.q(b) - exact.q(a)
    return box


def _exact_volumes_tile(rf: RegionFile, domain: Domain) -> bool:
    ds = rf.f["geometry/volume_exact"]
    total = exact.ZERO
    for s in range(0, ds.shape[0], VOLUME_CHUNK):            # in chunks: one value can be ~35 KB
        for v in ds[s:s + VOLUME_CHUNK]:
            total += exact.parse_rational(v.decode())
    box = _box_volume(domain)
    if total != box:
        raise Mismatch(f"the regions' exact volumes add up to {float(total):.17g}, not the box's {float(box):.17g}")
    return True


def _float_volumes_tile(rf: RegionFile, domain: Domain) -> bool:
    vol, bound = rf.volumes(), rf.volume_bounds()
    if not (np.all(np.isfinite(vol)) and np.all(vol > 0) and np.all(bound >= 0)):
        raise Mismatch("a stored volume is not a positive number, or a bound is negative")
    total = math.fsum(vol.tolist())                      # within U64 |sum| of the exact sum of the stored floats
    slack = math.fsum(bound.tolist())
    box = float(_box_volume(domain))                    # within U64 |box| of the exact box volume
    if abs(total - box) > SAFETY * (slack + 2 * U64 * (abs(total) + abs(box))):
        raise Mismatch(f"the regions' volumes add up to {total:.17g}, not the box's {box:.17g} within their "
                       f"certified bounds (sum {slack:.3g})")
    return True


def _adjacency_consistent(rf: RegionFile, domain: Domain) -> bool:
    g = rf.f["geometry"]
    offsets, neuron = g["offsets"][:], g["neuron"][:]
    A, b = rf.facet_rows()
    edges = g["edges"][:]
    region = np.repeat(np.arange(offsets.size - 1), np.diff(offsets))
    n_neurons = int(sum(rf.widths)) + 1
    facet = set((region * n_neurons + neuron)[neuron >= 0].tolist())
    if len(edges):
        ends = np.concatenate([edges[:, 0] * n_neurons + edges[:, 2], edges[:, 1] * n_neurons + edges[:, 2]])
        if np.any(edges[:, 0] >= edges[:, 1]):
            raise Mismatch("an adjacency edge is not stored as (i, k) with i < k")
        missing = [int(e) for e in ends if int(e) not in facet]
        if missing:
            i, q = divmod(missing[0], n_neurons)
            raise Mismatch(f"an edge names neuron {q}'s facet of region {i}, which region {i} does not have")
    else:
        ends = np.zeros(0, np.int64)
    if int(g.attrs.get("unresolved_neighbours", 0)) == 0:
        key = region * n_neurons + neuron
        lonely = np.nonzero((neuron >= 0) & ~np.isin(key, ends))[0]
        lonely = [j for j in lonely.tolist() if not _on_a_domain_row(j, region, neuron, A, b, offsets)]
        if lonely:
            i, q = int(region[lonely[0]]), int(neuron[lonely[0]])
            raise Mismatch(f"region {i}'s facet on neuron {q} has no neighbour in the adjacency graph")
    return True


def _on_a_domain_row(j: int, region, neuron, A, b, offsets) -> bool:
    """Is stored row j (a neuron's) the same row as one of its region's domain rows? Then that
    facet lies on the domain's boundary and has no neighbour."""
    s, e = offsets[region[j]], offsets[region[j] + 1]
    return any(neuron[t] < 0 and np.array_equal(A[t], A[j]) and b[t] == b[j] for t in range(s, e))
