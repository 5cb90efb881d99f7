"""Rebuild regions' splitter state (rows, maps, error bounds) from their stored patterns.

Resuming an interrupted run and verifying a file both need the state the splitter had: the same
propagation (:class:`lrenum.core.hyperplanes.Propagator`) applied layer by layer with the stored
activation bits, so a rebuilt region is bit-for-bit the region the walk would have produced.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .children import extend_rows
from .frame import Frame
from .hyperplanes import Propagator, against_winners, post_activation
from .state import AffineMaps, Regions, Rows


def rebuild_regions(frame: Frame, propagator: Propagator, bits: np.ndarray, const: np.ndarray,
                    witness: np.ndarray, radius: np.ndarray, wstatus: np.ndarray, ranks: np.ndarray,
                    parent: np.ndarray, ident: np.ndarray) -> Regions:
    """Regions of the layer that ``bits`` (B, N_l) covers, ready to be split again."""
    net = frame.net
    B, r = bits.shape[0], frame.r
    n_layers = net.layers_covered(bits.shape[1])
    z = np.zeros((B, 0))
    R = Rows(np.zeros((B, 0, r)), z, z, z, np.zeros((B, 0), bool))
    cur = Regions(layer=0, bits=np.zeros((B, 0), bool), const=np.zeros((B, 0), bool), rows=R,
                  maps=AffineMaps(np.zeros((B, 0, r)), z, z, z), witness=witness, radius=radius,
                  wstatus=wstatus, rank=np.zeros((B, 0), np.int64), parent=parent, ident=ident)
    offs = net.neuron_offsets
    for l in range(n_layers):
        hyp = propagator(cur)
        act = bits[:, offs[l]:offs[l + 1]]
        cst = const[:, offs[l]:offs[l + 1]]
        signs = np.where(act, 1.0, -1.0)
        # a winner-take-all group's losers have rows against their winner, as the split made them
        hrow = against_winners(hyp, net.group_reference(l, signs), cst)[0] if net.group_members[l] else hyp
        rows = extend_rows(cur.rows, hrow, signs, cst)
        cur = Regions(layer=l + 1, bits=bits[:, :offs[l + 1]], const=const[:, :offs[l + 1]], rows=rows,
                      maps=post_activation(hyp, act, net.slopes[l]), witness=witness, radius=radius,
                      wstatus=wstatus, rank=ranks[:, :l + 1].astype(np.int64), parent=parent, ident=ident)
    return cur


def rebuild_compact(frame: Frame, propagator: Propagator, batch: Regions) -> Regions:
    """Compact regions (:func:`lrenum.core.tree.compact`: rows and maps dropped) whole again, bit
    for bit what the split built; their vertex sets, which travelled along, are kept."""
    full = rebuild_regions(frame, propagator, batch.bits, batch.const, batch.witness, batch.radius, batch.wstatus,
                           batch.rank, batch.parent, batch.ident)
    return replace(full, vertices=batch.vertices)
