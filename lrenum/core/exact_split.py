"""Splitting in exact arithmetic, for parents float64 cannot handle at all.

A parent goes here when one of its next-layer hyperplanes is genuine but below float64's
resolution (exact arithmetic says "not constant" where the float gradient is within its error
bound, possibly exactly zero): no float LP can place such a hyperplane. Every cell of the
arrangement is then built with exact interior tests. Slow, and rare by design.
"""

from __future__ import annotations

import numpy as np

from ..certify.decide import DecisionStats
from ..lp import exact
from .children import ChildCells
from .classify import Classes
from .frame import Frame
from .state import Hyperplanes, Regions


def exact_cells(frame: Frame, P: Regions, hyp: Hyperplanes, cls: Classes, which: np.ndarray,
                stats: DecisionStats) -> ChildCells:
    n = hyp.G.shape[1]
    parents, signs, wits = [], [], []
    for p in which:
        prefix = frame.layer_signs(P.bits[p], P.layer)
        cells = [np.zeros(n, np.int64)]
        points = [P.witness[p]]
        for j in range(n):
            if cls.const[p, j]:
                for c in cells:
                    c[j] = 1 if cls.const_bit[p, j] else -1
                continue
            new_cells, new_points = [], []
            for c in cells:
                for side in (1, -1):
                    trial = c.copy()
                    trial[j] = side
                    stats.exact_simplex += 1
                    has, pt = exact.has_interior(frame.exact.region_rows(prefix + [trial]), frame.d)
                    if has:
                        new_cells.append(trial)
                        new_points.append(exact.to_float(pt))
            cells, points = new_cells, new_points
        parents += [p] * len(cells)
        signs += cells
        wits += points
    return ChildCells(np.array(parents, np.int64), np.array(signs, np.int8).reshape(-1, n),
                      np.array(wits, float).reshape(-1, frame.d))
