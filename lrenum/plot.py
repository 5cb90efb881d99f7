"""Pictures of partitions: every region of a 2-D (slice of a) domain as a filled polygon.

The regions come from the exact enumerator (on the slice, see :mod:`lrenum.slicing`); each
one's polygon is the slice domain clipped by its constraint rows (Sutherland-Hodgman), so
the picture is exact up to drawing. Needs matplotlib (``pip install 'lrenum[plot]'``).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .errors import InputError
from .model.domain import Domain
from .model.network import Network


def clip_polygon(poly: np.ndarray, a: np.ndarray, b: float) -> np.ndarray:
    """The part of convex polygon ``poly`` (k, 2) with ``a . x <= b``."""
    if len(poly) == 0:
        return poly
    out = []
    s = poly @ a - b
    for i in range(len(poly)):
        j = (i + 1) % len(poly)
        if s[i] <= 0:
            out.append(poly[i])
        if (s[i] < 0 < s[j]) or (s[j] < 0 < s[i]):
            t = s[i] / (s[i] - s[j])
            out.append(poly[i] + t * (poly[j] - poly[i]))
    return np.array(out).reshape(-1, 2)


def region_polygons(net: Network, domain: Domain, extent: float = 1e3) -> tuple[list, np.ndarray]:
    """Exact regions of a 2-input network as polygons, with their flat patterns."""
    from .core.frame import Frame
    from .core.walk import enumerate_regions

    if net.input_dim != 2:
        raise InputError("region_polygons needs a 2-input network (slice it first)")
    if domain.box is not None:
        lo, hi = domain.box
    else:
        lo, hi = np.full(2, -extent), np.full(2, extent)
    corners = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]], dtype=np.float64)
    polys, pats = [], []
    U = Frame(net, domain).geometry.U     # rows are stored in basis coordinates: a = C U

    def keep(layer, batch):
        if layer != net.n_hidden:
            return
        A = batch.rows.C @ U
        for i in range(len(batch)):
            P = corners
            for a, b in zip(domain.A, domain.b):
                P = clip_polygon(P, a, b)
            for k in np.nonzero(batch.rows.mask[i])[0]:
                if np.any(A[i, k]):
                    P = clip_polygon(P, A[i, k], batch.rows.b[i, k])
            polys.append(P)
            pats.append(batch.bits[i])

    enumerate_regions(net, domain, on_layer=keep)
    return polys, np.array(pats)


def plot_partition(net: Network, domain: Domain, path: str, *, point=None, u=None, v=None,
                   title: Optional[str] = None, seed: int = 0, dpi: int = 150) -> int:
    """Draw the partition of the slice (or of the 2-D domain) to ``path``; returns the region count."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.collections import PolyCollection
    except ImportError:
        raise InputError("lrenum plot needs matplotlib: pip install 'lrenum[plot]'") from None
    from .model.slicing import slice_network

    sub, dom2, (p, uu, vv) = slice_network(net, domain, point, u, v)
    polys, _ = region_polygons(sub, dom2)
    in_input_coords = net.input_dim == 2 and np.allclose(np.stack([uu, vv], 1), np.eye(2))
    if in_input_coords:   # the 2-D domain itself: draw in input coordinates
        polys = [q + p for q in polys]
    shapes = [q for q in polys if len(q) >= 3]
    rng = np.random.default_rng(seed)
    colors = rng.uniform(0.25, 0.95, size=(len(shapes), 3))
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.add_collection(PolyCollection(shapes, facecolors=colors, edgecolors="k", linewidths=0.4))
    allpts = np.concatenate(shapes) if shapes else np.zeros((1, 2))
    ax.set_xlim(allpts[:, 0].min(), allpts[:, 0].max())
    ax.set_ylim(allpts[:, 1].min(), allpts[:, 1].max())
    ax.set_xlabel("x1" if in_input_coords else "s (along u)")
    ax.set_ylabel("x2" if in_input_coords else "t (along v)")
    ax.set_title(title or f"{len(polys)} regions")
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return len(polys)
