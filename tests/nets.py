"""Network builders shared by the tests: random, closed-form and degenerate families."""

from __future__ import annotations

import numpy as np

import lrenum


def random_net(rng: np.random.Generator, d: int, widths: list[int], bias_scale: float = 0.5):
    dims = [d] + list(widths) + [1]
    Ws = [rng.normal(size=(dims[i + 1], dims[i])) for i in range(len(dims) - 1)]
    bs = [rng.normal(size=dims[i + 1]) * bias_scale for i in range(len(dims) - 1)]
    return Ws, bs


def tent_net(L: int, d: int):
    """Separable tent map t(x) = 2 relu(x) - 4 relu(x - 1/2) per coordinate, composed L times."""
    I = np.eye(d)
    up = np.kron(I, np.array([[1.0], [1.0]]))          # x -> (x, x)
    T = np.kron(I, np.array([[2.0, -4.0]]))            # (relu(x), relu(x - 1/2)) -> t(x)
    b = np.tile([0.0, -0.5], d)
    Ws, bs = [up], [b]
    for _ in range(L - 1):
        Ws.append(up @ T)
        bs.append(b.copy())
    Ws.append(T)
    bs.append(np.zeros(d))
    return Ws, bs


def patterns_of(result) -> set:
    return {tuple(int(v) for v in p) for p in result.patterns}


def run(Ws, bs, lo=-1.0, hi=1.0, **settings):
    """Enumerate (patterns collected); keyword arguments are settings (lrenum.Settings)."""
    net = lrenum.make_network(Ws, bs)
    dom = lrenum.unbounded_domain(net.input_dim) if lo is None else lrenum.box_domain(lo, hi, net.input_dim)
    return lrenum.enumerate_regions(net, dom, lrenum.Settings().replace(**settings), collect=True)
