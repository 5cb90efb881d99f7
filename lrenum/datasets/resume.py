"""Resuming an interrupted run: which committed regions still need splitting, rebuilt from their
stored patterns (the rule: a split region always has at least one child, so a region without
committed children has not been split, or its split was not committed). The root is the one
region whose children are committed in pieces (:func:`lrenum.core.walk.enumerate_regions`): the
last segment says whether it was still open, and then it is split again, without the children
already committed."""

from __future__ import annotations

from typing import Optional

import numpy as np

from .. import runtime
from ..core.hyperplanes import Propagator
from ..core.rebuild import rebuild_regions
from ..core.state import Regions
from ..core.tree import ResumeState, root_region
from .format import unpack_bits

CHUNK_ROWS = 4096   # pending regions are rebuilt this many at a time: bounded memory per step


def pending_state(writer) -> Optional[ResumeState]:
    """From the committed segments: the regions still to split and the id counters."""
    rows = writer.read_segments()
    if not rows:
        return None
    dev = runtime.select_device(writer.settings.device)
    propagator = Propagator(writer.frame, dev)
    counts = [len(rows.get(l, {}).get("parent", [])) for l in range(1, writer.L + 1)]
    pending = []
    for l in range(1, writer.L):
        n_rows = counts[l - 1]
        child_parent = rows.get(l + 1, {}).get("parent", np.zeros(0, np.int64))
        n_ch = np.bincount(child_parent, minlength=n_rows)[:n_rows]
        todo = np.nonzero(n_ch == 0)[0]      # every region has >= 1 child once split
        for start in range(0, todo.size, CHUNK_ROWS):   # rebuilt in chunks: bounded memory per step
            pending.append((l, load_regions(writer, rows, l, todo[start:start + CHUNK_ROWS], propagator)))
    given = None
    if writer.root_open_at_last_commit():   # the root's children were still coming in pieces: split it again,
        given = unpack_bits(rows[1]["pattern"], writer.widths[0]) if 1 in rows else np.zeros((0, writer.widths[0]), bool)
        pending.insert(0, (0, root_region(writer.frame)))       # without the children already committed
    return ResumeState(pending, [1] + counts, given)


def load_regions(writer, rows: dict, layer: int, idx: np.ndarray, propagator: Propagator) -> Regions:
    """Rebuild the splitter's state of layer-``layer`` rows ``idx`` from committed rows."""
    cur = idx
    bits, const, ranks = [None] * layer, [None] * layer, [None] * layer
    for l in range(layer, 0, -1):
        r, n = rows[l], writer.widths[l - 1]
        bits[l - 1] = unpack_bits(r["pattern"][cur], n)
        const[l - 1] = unpack_bits(r["constant"][cur], n)
        ranks[l - 1] = r["rank"][cur].astype(np.int64)
        if l == layer:
            witness, radius, parent = r["witness"][cur], r["radius"][cur], r["parent"][cur]
            wstatus = r["witness_status"][cur]
        cur = r["parent"][cur]
    with runtime.on_device(propagator.device):
        return rebuild_regions(writer.frame, propagator, np.concatenate(bits, axis=1),
                               np.concatenate(const, axis=1), witness, radius, wstatus,
                               np.stack(ranks, axis=1), parent, idx.astype(np.int64))
