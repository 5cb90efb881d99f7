"""Step 5 of a split: turn finished cells into child regions, proven.

Each child gets its full pattern, rows and map; its witness is certified by a forward pass
through the network itself (independent of every row and LP used to find it); a witness that
fails is repaired or the cell is proven empty and dropped (:meth:`Decider.repair_witness`).
Ranks are proven (:mod:`lrenum.certify.rank`), exactly where the float bound cannot tell.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from ..certify import floatcert
from ..certify.decide import CellSpec, Decider, DecisionStats, WitnessStatus
from ..certify.rank import layer_ranks
from .frame import Frame
from .hyperplanes import against_winners, post_activation
from .state import Hyperplanes, Regions, Rows


class ChildCells(NamedTuple):
    """Finished cells: parent, complete signs of this layer's neurons, a proposed witness."""

    parent: np.ndarray    # (C,) index into the parent batch
    signs: np.ndarray     # (C, n) int8 +1/-1 (constant neurons: their constant's side)
    witness: np.ndarray   # (C, d)
    vertices: object = None   # VertexSets of the cells (low-dimensional path) or None


def assemble(frame: Frame, P: Regions, hyp: Hyperplanes, const: np.ndarray, cells: ChildCells,
             decider: Decider, stats: DecisionStats) -> tuple[Regions, np.ndarray]:
    """Child regions (in cell order) and the index of each one's parent in ``P``."""
    l, net = P.layer, frame.net
    p = cells.parent
    s = cells.signs.astype(np.float64)
    act = cells.signs > 0
    cst = const[p]
    hp = Hyperplanes(hyp.G[p], hyp.g[p], hyp.eG[p], hyp.eg[p])
    grouped = bool(net.group_members[l])
    # in a layer with winner-take-all groups a loser's row is taken against its group's winner
    hrow, cst = against_winners(hp, net.group_reference(l, cells.signs), cst) if grouped else (hp, cst)
    rows = extend_rows(Rows(*(a[p] for a in P.rows)), hrow, s, cst)
    bits = np.concatenate([P.bits[p], act], axis=1)
    constall = np.concatenate([P.const[p], cst], axis=1)
    maps = post_activation(hp, act, net.slopes[l])

    wit = cells.witness.copy()
    # row norms per parent, then gathered: a child's rows are its parent's and the parent's next
    # hyperplanes with signs, whose norms are the same bits (a 3-input 48-48-48 net: 0.7 -> 0.1 s)
    geo = frame.geometry
    here = geo.row_norms(hrow.G) if grouped else geo.row_norms(hyp.G)[p]
    norms = np.concatenate([geo.row_norms(P.rows.C)[p], here], axis=1)
    status, radius = certify_region_witnesses(frame, wit, bits, constall, rows, norms, decider.device_certs)
    wstatus = np.full(len(p), WitnessStatus.FLOAT, np.int8)
    keep = np.ones(len(p), bool)
    for i in np.nonzero(status != 0)[0]:
        spec = CellSpec(frame.layer_signs(bits[i], l + 1), np.nonzero(rows.mask[i])[0])
        ok, x, rr, ws = decider.repair_witness(
            rows.one(i), spec, lambda x, i=i: tuple(v[0] for v in certify_region_witnesses(
                frame, x[None], bits[i:i + 1], constall[i:i + 1], rows.one(i))))
        keep[i] = ok
        if ok:
            wit[i], radius[i], wstatus[i] = x, rr, ws

    prev = P.rank[p, -1] if l > 0 else np.full(len(p), frame.r)
    def exact_rank(i: int) -> int:
        if not keep[i]:
            return 0                     # a dropped cell: its rank is never used
        stats.exact_other += 1
        return frame.exact.rank_after(frame.net.layer_slices(bits[i], l + 1))

    rank = layer_ranks(net, l + 1, maps.M, maps.eM, prev, exact_rank, bits, constall)
    children = Regions(layer=l + 1, bits=bits, const=constall, rows=rows, maps=maps, witness=wit, radius=radius,
                       wstatus=wstatus, rank=np.concatenate([P.rank[p], rank[:, None]], axis=1),
                       parent=P.ident[p], ident=np.full(len(p), -1, np.int64), vertices=cells.vertices)
    if keep.all():                       # the common case: no copy
        return children, p
    return children.take(keep), p[keep]


def extend_rows(rows: Rows, hyp: Hyperplanes, s: np.ndarray, const: np.ndarray) -> Rows:
    """A region's rows plus one layer's: neuron j on side s_j (+1 active) gives ``-s G y < s g``;
    neurons constant on the region give no row (masked)."""
    return Rows(np.concatenate([rows.C, -s[:, :, None] * hyp.G], axis=1), np.concatenate([rows.b, s * hyp.g], axis=1),
                np.concatenate([rows.eC, hyp.eG], axis=1), np.concatenate([rows.eb, hyp.eg], axis=1),
                np.concatenate([rows.mask, ~const], axis=1))


def certify_region_witnesses(frame: Frame, x: np.ndarray, bits: np.ndarray, const: np.ndarray, rows: Rows,
                             norms: Optional[np.ndarray] = None, device_certs=None):
    """Forward-pass certificate of witnesses ``x`` against full patterns (status, radius);
    ``norms``: the rows' x-space norms where the caller has them; ``device_certs``: run it on the
    device (:mod:`lrenum.certify.device_certs`)."""
    geo = frame.geometry
    L = frame.net.layers_covered(bits.shape[1])
    split = lambda a: frame.net.layer_slices(a, L)
    if norms is None:
        norms = geo.row_norms(rows.C)
    errs = rows.eC * geo.u_row_2
    if device_certs is not None:
        return device_certs.witnesses(frame.domain, x, split(bits), split(const), split(norms), split(errs))
    return floatcert.certify_witnesses(frame.net, frame.domain, x, split(bits), split(const), split(norms), split(errs))
