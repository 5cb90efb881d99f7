"""Restrict a network and its domain to a 2-D affine slice ``x = p + s u + t v``.

The restricted network has the same hidden layers; only the first layer changes
(``W1 [u v]``, ``b1 + W1 p``), so enumerating it with the ordinary enumerator gives the
exact partition of the slice: a region of the slice is a full-dimensional (2-D) piece of the
slice with one activation pattern.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .domain import Domain, box_domain, polytope_domain, unbounded_domain
from ..errors import InputError
from .network import Network


def slice_network(net: Network, domain: Domain, point: Optional[np.ndarray] = None,
                  u: Optional[np.ndarray] = None, v: Optional[np.ndarray] = None) -> tuple[Network, Domain, tuple]:
    """The network on the plane through ``point`` (default: the domain's center) spanned by
    ``u, v`` (default: the first two axes). Returns (network, 2-D domain, (point, u, v))."""
    d = net.input_dim
    if d < 2:
        raise InputError("plotting needs at least 2 inputs")
    p = domain.center() if point is None else _vec(point, d, "--point")
    u = np.eye(d)[0] if u is None else _vec(u, d, "--u")
    v = np.eye(d)[1] if v is None else _vec(v, d, "--v")
    D = np.stack([u, v], axis=1)
    if np.linalg.matrix_rank(D) < 2:
        raise InputError("the two slice directions must be linearly independent")
    sub = net.with_first_layer(net.weights[0] @ D, net.biases[0] + net.weights[0] @ p)
    if d == 2 and point is None and domain.kind != "polytope" and np.allclose(D, np.eye(2)) and domain.box is not None:
        lo, hi = domain.box
        return sub, box_domain(lo - p, hi - p, 2), (p, u, v)
    if domain.box is None:
        return sub, unbounded_domain(2), (p, u, v)
    A, b = domain.A @ D, domain.b - domain.A @ p
    moving = np.linalg.norm(A, axis=1) > 0
    if np.any(b[~moving] <= 0):
        raise InputError("the slice point lies outside the domain (or on its boundary)")
    return sub, polytope_domain(A[moving], b[moving], 2), (p, u, v)


def _vec(x, d: int, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64).ravel()
    if arr.shape != (d,):
        raise InputError(f"{name} needs {d} numbers, got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} contains NaN or inf")
    return arr


def line_network(net: Network, a: np.ndarray, b: np.ndarray) -> tuple[Network, Domain]:
    """The network on the segment ``x = a + s (b - a)``, s in [0, 1]: a 1-input network whose
    regions are the pieces of the segment with one activation pattern."""
    d = net.input_dim
    a, b = _vec(a, d, "A"), _vec(b, d, "B")
    if np.array_equal(a, b):
        raise InputError("the two end points are equal: no segment")
    u = (b - a)[:, None]
    return net.with_first_layer(net.weights[0] @ u, net.biases[0] + net.weights[0] @ a), box_domain(0.0, 1.0, 1)
