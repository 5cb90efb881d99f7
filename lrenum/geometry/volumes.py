"""Region volumes read back from a file: exact (d <= 6, stored by ``--geometry``) or Monte Carlo."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from ..errors import InputError
from ..lp import exact as exact_lp
from ..model.domain import Domain
from ..model.network import Network


def region_volumes(f, exact: bool = False):
    """Volumes of the final regions of a file written with ``--geometry`` at d <= 6: float64 (each
    within ``f.volume_bounds()`` of the exact volume; inf for an unbounded region), or with
    ``exact=True`` (files from ``--geometry exact``) a list of :class:`fractions.Fraction` (None
    for unbounded). Files written before exact volumes existed
    (no ``geometry/volume``) fall back to qhull from the H-representation: float, not certified."""
    g = f._geometry()
    if exact and "volume" in g and "volume_exact" not in g:
        raise InputError("this file has certified float64 volumes (--geometry): for exact ones write its geometry "
                         "with --geometry exact (or lrenum.geometry.add_geometry(..., mode='exact'))")
    if "volume" in g:
        if exact:
            return [None if text == "inf" else _fraction(exact_lp.parse_rational(text))
                    for text in map(bytes.decode, g["volume_exact"][:])]
        return g["volume"][:]
    if exact:
        raise InputError("this file has no exact volumes: write its geometry again (lrenum.geometry.add_geometry)")
    return _qhull_volumes(f)


def _fraction(v) -> Fraction:
    return Fraction(int(v.p), int(v.q))


def _qhull_volumes(f, max_dim: int = 6) -> np.ndarray:
    from scipy.spatial import ConvexHull, HalfspaceIntersection, QhullError

    d = f.input_dim
    if d > max_dim:
        raise InputError(f"region volumes from vertices are for d <= {max_dim}; use monte_carlo_volumes for d = {d}")
    fin = f.final()
    out = np.full(f.regions, np.inf)
    for i in range(f.regions):
        A, b, _ = f.polytope(i)
        try:
            hs = HalfspaceIntersection(np.c_[A, -b], fin["witness"][i])
            out[i] = ConvexHull(hs.intersections).volume
        except (QhullError, ValueError):
            out[i] = np.inf if f.domain["kind"] == "unbounded" else np.nan
    return out


def monte_carlo_volumes(f, net: Network, domain: Domain, samples: int = 100_000, seed: int = 0):
    """(volume estimates (N,), standard errors (N,)) of the final regions of a box domain, from
    uniform samples: the share of samples whose pattern is the region's, times the box volume."""
    if domain.kind != "box":
        raise InputError("Monte Carlo volumes need a box domain")
    lo, hi = domain.box
    rng = np.random.default_rng(seed)
    X = lo + (hi - lo) * rng.random((samples, net.input_dim))
    pats = net.patterns(X)
    index = {p.tobytes(): i for i, p in enumerate(np.packbits(f.final()["pattern"], axis=1))}
    hits = np.zeros(f.regions)
    for p in np.packbits(pats, axis=1):
        k = index.get(p.tobytes())
        if k is not None:
            hits[k] += 1
    share = hits / samples
    vol = float(np.prod(hi - lo))
    return share * vol, np.sqrt(share * (1 - share) / samples) * vol
