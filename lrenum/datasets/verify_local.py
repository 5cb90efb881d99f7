"""Re-check of a local-complexity file against its network (``lrenum verify`` on ``lrenum local -o``).

What it proves, per point: the box is the one the point and radius give (clipped as the file
says); the per-point tables agree with each other (the last layer's count is the count, the
regions stored for the point are as many); and, where regions are stored, every one is a region
of that box: no pattern twice, its witness certified strictly inside both the region and the box
(rebuilt from the pattern, the same float64 certificate as ``verify`` on region files; exact
witnesses in exact arithmetic), its ranks proven again. It does not re-prove that no region was
missed (that is the enumeration itself: ``lrenum enumerate --lo --hi`` on one box re-counts it).
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from .. import runtime
from ..certify.rank import layer_ranks
from ..core.children import certify_region_witnesses
from ..core.frame import Frame, choose_basis
from ..core.hyperplanes import Propagator
from ..core.rebuild import rebuild_regions
from ..model.domain import box_domain
from ..model.network import Network
from .format import pack_bits
from .local_file import LocalFile
from .verify import Mismatch, check_linear_units, check_witness

__all__ = ["verify_local_file"]


def verify_local_file(path: str, net: Network, *, device: Optional[str] = None,
                      progress: Optional[Callable[[int, int], None]] = None) -> dict:
    """Check every point (and every stored region) of a local file; raise :class:`Mismatch` at the
    first problem. Returns what was checked."""
    with LocalFile(path) as lf:
        f = lf.f
        if f.attrs["network_sha256"] != net.digest():
            raise Mismatch("the file was written for a different network (SHA-256 differs)")
        if not lf.complete:
            raise Mismatch("the file is incomplete")
        if tuple(net.hidden_widths) != lf.widths:
            raise Mismatch("layer widths differ from the network")
        _check_boxes(lf)
        counts, per_layer = lf.counts, lf.per_layer
        bad = np.nonzero(per_layer[:, -1] != counts)[0] if len(counts) else []
        if len(bad):
            raise Mismatch(f"point {int(bad[0])}: its last layer holds {per_layer[bad[0], -1]} regions but its count is {counts[bad[0]]}")
        if np.any(counts < 1):
            raise Mismatch(f"point {int(np.nonzero(counts < 1)[0][0])}: a box holds at least one region")
        out = {"points": len(lf), "regions": lf.regions, "regions_checked": 0}
        if not lf.regions_stored:
            return out
        dom = f["regions/domain"][:]
        stored = np.bincount(dom, minlength=len(lf)) if dom.size else np.zeros(len(lf), np.int64)
        if dom.size and (dom.min() < 0 or dom.max() >= len(lf)):
            raise Mismatch("a region's domain index is out of range")
        if np.any(stored != counts):
            i = int(np.nonzero(stored != counts)[0][0])
            raise Mismatch(f"point {i}: count {counts[i]} but {stored[i]} regions stored")
        dev = runtime.select_device(device)
        basis = choose_basis(net, box_domain(lf.lo[0], lf.hi[0], net.input_dim)) if len(lf) else None
        for i in range(len(lf)):
            _check_point(i, lf, net, basis, dev)
            out["regions_checked"] += int(counts[i])
            if progress is not None:
                progress(out["regions_checked"], lf.regions)
        return out


def _check_boxes(lf: LocalFile) -> None:
    """The stored boxes are ``[fl(p - r), fl(p + r)]``, clipped to the domain where the file says so."""
    lo, hi = lf.points - lf.radius[:, None], lf.points + lf.radius[:, None]
    if lf.domain is not None and lf.domain.get("kind") == "box":
        dlo, dhi = np.asarray(lf.domain["lo"]), np.asarray(lf.domain["hi"])
        if lf.clip:
            lo, hi = np.maximum(lo, dlo), np.minimum(hi, dhi)
        elif np.any(lo < dlo) or np.any(hi > dhi):
            raise Mismatch("a box leaves the domain but the file says it was not clipped")
    bad = np.nonzero(np.any(lo != lf.lo, axis=1) | np.any(hi != lf.hi, axis=1))[0]
    if bad.size:
        raise Mismatch(f"point {int(bad[0])}: the stored box is not the point's box of the stored radius")


def _check_point(i: int, lf: LocalFile, net: Network, basis, dev) -> None:
    """Every stored region of point i re-proven inside the point's box."""
    reg = lf.point_regions(i)
    bits, const = reg["pattern"], reg["constant"]
    wit, rad, ws, ranks = reg["witness"], reg["radius"], reg["witness_status"], reg["rank"]
    where = lambda j: f"point {i} region {j}"
    if np.unique(pack_bits(bits), axis=0).shape[0] != len(bits):
        raise Mismatch(f"point {i}: a pattern appears twice")
    check_linear_units(net, bits, const, f"point {i}")
    frame = Frame(net, box_domain(lf.lo[i], lf.hi[i], net.input_dim), basis=basis)
    propagator = Propagator(frame, dev)
    L, offs, n = net.n_hidden, net.neuron_offsets, len(bits)
    prev_rank = np.full(n, frame.r)
    for l in range(1, L + 1):
        cut = offs[l]
        with runtime.on_device(dev):
            R = rebuild_regions(frame, propagator, bits[:, :cut], const[:, :cut], wit, rad, ws,
                                np.zeros((n, l), np.int64), np.full(n, -1), np.arange(n))
        rank = layer_ranks(net, l, R.maps.M, R.maps.eM, prev_rank,
                           lambda j: frame.exact.rank_after(net.layer_slices(bits[j], l)), bits, const)
        bad = np.nonzero(rank != ranks[:, l - 1])[0]
        if bad.size:
            j = int(bad[0])
            raise Mismatch(f"{where(j)}: stored rank {ranks[j, l - 1]} after layer {l} but the Jacobian has rank {rank[j]}")
        prev_rank = rank
    status, radius = certify_region_witnesses(frame, wit, bits, const, R.rows)
    for j in range(n):    # the frame's domain is the point's box: "inside the region" means inside both
        check_witness(frame, L, bits[j], wit[j], rad[j], ws[j], status[j], radius[j], where(j))
