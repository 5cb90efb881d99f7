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
    from .core.walk import LayerCallback, enumerate_regions

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

    enumerate_regions(net, domain, sink=LayerCallback(keep))
    return polys, np.array(pats)


def class_pieces(net: Network, poly: np.ndarray, bits: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """The parts of a region's polygon where each class wins (the network is affine there, so
    each part is the polygon clipped by ``logit_k >= logit_j`` for every j)."""
    A, c = net.affine_map(bits)
    out = []
    for k in range(A.shape[0]):
        P = poly
        for j in range(A.shape[0]):
            if j != k and len(P):
                P = clip_polygon(P, A[j] - A[k], c[k] - c[j])
        if len(P) >= 3:
            out.append((k, P))
    return out


def to_geojson(polys: list, patterns: np.ndarray, classes: Optional[list] = None) -> dict:
    """A GeoJSON FeatureCollection: one polygon per region, with its index and pattern."""
    features = []
    for i, (P, bits) in enumerate(zip(polys, patterns)):
        if len(P) < 3:
            continue
        ring = [[float(x), float(y)] for x, y in P] + [[float(P[0][0]), float(P[0][1])]]
        props = {"region": i, "pattern": "".join("1" if b else "0" for b in bits)}
        if classes is not None:
            props["classes"] = classes[i]
        features.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]}, "properties": props})
    return {"type": "FeatureCollection", "features": features}


def plot_partition(net: Network, domain: Domain, path: Optional[str], *, point=None, u=None, v=None,
                   title: Optional[str] = None, seed: int = 0, dpi: int = 150, boundary: bool = False,
                   geojson: Optional[str] = None) -> int:
    """Draw the partition of the slice (or of the 2-D domain) to ``path``; returns the region count.

    ``boundary``: colour by predicted class and draw the decision boundary (where the argmax
    changes, inside regions and across them) in black. ``geojson``: also write the polygons.
    """
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.collections import PolyCollection
    except ImportError:
        raise InputError("lrenum plot needs matplotlib: pip install 'lrenum[plot]'") from None
    from .model.slicing import slice_network

    sub, dom2, (p, uu, vv) = slice_network(net, domain, point, u, v)
    polys, pats = region_polygons(sub, dom2)
    in_input_coords = net.input_dim == 2 and np.allclose(np.stack([uu, vv], 1), np.eye(2))
    shift = p if in_input_coords else np.zeros(2)   # the 2-D domain itself: draw in input coordinates
    pieces = [class_pieces(sub, q, b) if len(q) >= 3 else [] for q, b in zip(polys, pats)] if boundary else None
    if geojson:
        import json

        with open(geojson, "w") as f:
            json.dump(to_geojson([q + shift for q in polys], pats,
                                 None if pieces is None else [[k for k, _ in pc] for pc in pieces]), f)
    if path is None:
        return len(polys)
    polys = [q + shift for q in polys]
    shapes = [q for q in polys if len(q) >= 3]
    rng = np.random.default_rng(seed)
    fig, ax = plt.subplots(figsize=(6, 6))
    if boundary:
        cmap = plt.get_cmap("tab10")
        parts = [(k, P + shift) for pc in pieces for k, P in pc]
        ax.add_collection(PolyCollection([P for _, P in parts], facecolors=[cmap(k % 10) for k, _ in parts],
                                         edgecolors="none", alpha=0.55))
        ax.add_collection(PolyCollection(shapes, facecolors="none", edgecolors="0.3", linewidths=0.3))
        for k, P in parts:   # edges between parts of different classes are the decision boundary
            for a, b in zip(P, np.roll(P, -1, axis=0)):
                mid = 0.5 * (a + b) - shift
                here = [kk for pc in pieces for kk, Q in pc if _near_edge(mid, Q)]
                if len(set(here)) > 1:
                    ax.plot([a[0], b[0]], [a[1], b[1]], color="k", linewidth=1.6)
    else:
        colors = rng.uniform(0.25, 0.95, size=(len(shapes), 3))
        ax.add_collection(PolyCollection(shapes, facecolors=colors, edgecolors="k", linewidths=0.4))
    allpts = np.concatenate(shapes) if shapes else np.zeros((1, 2))
    ax.set_xlim(allpts[:, 0].min(), allpts[:, 0].max())
    ax.set_ylim(allpts[:, 1].min(), allpts[:, 1].max())
    ax.set_xlabel("x1" if in_input_coords else "s (along u)")
    ax.set_ylabel("x2" if in_input_coords else "t (along v)")
    ax.set_title(title or f"{len(polys)} regions" + (" and the decision boundary" if boundary else ""), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return len(polys)


def _near_edge(x: np.ndarray, P: np.ndarray, tol: float = 1e-9) -> bool:
    """Is x on the boundary of convex polygon P (within tol, relative to P's size)?"""
    scale = tol * (1.0 + float(np.abs(P).max()))
    for a, b in zip(P, np.roll(P, -1, axis=0)):
        e = b - a
        L = float(np.hypot(*e))
        if L == 0:
            continue
        t = float(np.dot(x - a, e)) / (L * L)
        if -1e-9 <= t <= 1 + 1e-9 and abs(e[0] * (x - a)[1] - e[1] * (x - a)[0]) / L <= scale:
            return True
    return False
