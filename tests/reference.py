"""A small, slow, independent reference enumerator (float64, one LP at a time).

It shares no code with lrenum: plain numpy and scipy's HiGHS, neuron by neuron depth-first
search, a fixed tolerance. It is the oracle the fast path is compared against on small
networks whose degeneracies (if any) are exact, so that margins are either clearly positive
or zero up to rounding.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog

TOL = 1e-7
ZERO = 1e-12


def _margin(A: np.ndarray, b: np.ndarray, d: int) -> float:
    """max t s.t. a_i.x + ||a_i|| t <= b_i, t <= 1."""
    if A.shape[0] == 0:
        return 1.0
    norms = np.linalg.norm(A, axis=1)
    res = linprog(np.r_[np.zeros(d), -1.0], A_ub=np.c_[A, norms], b_ub=b,
                  bounds=[(None, None)] * d + [(None, 1.0)], method="highs")
    if res.status != 0:
        return -np.inf
    return -res.fun


def _layer_cells(G, g, W, A, b, d, carried=None):
    """Every nonempty cell of one layer inside {A x <= b}, neuron by neuron (depth first):
    yields (A, b, bits). ``carried``: units that never split (bit 0)."""
    n = G.shape[0]

    def neuron(j, A, b, bits):
        if j == n:
            yield A, b, bits
            return
        if carried is not None and carried[j]:
            yield from neuron(j + 1, A, b, bits + [0])
            return
        if np.max(np.abs(G[j])) <= ZERO * max(1.0, np.max(np.abs(W[j]))):
            yield from neuron(j + 1, A, b, bits + [1 if g[j] > ZERO else 0])
            return
        for s in (1, -1):
            A2 = np.r_[A, [-s * G[j]]]
            b2 = np.r_[b, s * g[j]]
            if _margin(A2, b2, d) > TOL:
                yield from neuron(j + 1, A2, b2, bits + [1 if s > 0 else 0])

    yield from neuron(0, A, b, [])


def reference_patterns(weights, biases, lo=None, hi=None, A_dom=None, b_dom=None, slopes=None, linear=None):
    """Set of activation patterns (tuples of 0/1 over all hidden neurons) of full-dim regions.

    ``lo``/``hi`` give a box domain; ``A_dom``/``b_dom`` a polytope ``A x <= b``; neither: R^d.
    """
    d = weights[0].shape[1]
    if A_dom is not None:
        A0, b0 = np.asarray(A_dom, float), np.asarray(b_dom, float)
    elif lo is None:
        A0, b0 = np.zeros((0, d)), np.zeros(0)
    else:
        lo = np.broadcast_to(lo, (d,)).astype(float)
        hi = np.broadcast_to(hi, (d,)).astype(float)
        A0 = np.r_[np.eye(d), -np.eye(d)]
        b0 = np.r_[hi, -lo]
    hidden = list(zip(weights[:-1], biases[:-1]))
    found = set()

    def layer(l, A, b, M, c, pattern):
        if l == len(hidden):
            found.add(tuple(pattern))
            return
        W, bias = hidden[l]
        G = W @ M
        g = W @ c + bias
        n = W.shape[0]
        for A2, b2, bits in _layer_cells(G, g, W, A, b, d, None if linear is None else linear[l]):
            act = np.array(bits, dtype=float)
            if slopes is not None:          # leaky ReLU: inactive neurons keep slope * z
                act = np.where(act > 0, 1.0, np.broadcast_to(slopes[l], (n,)))
            if linear is not None:          # linear (carried) units pass z on
                act = np.where(linear[l], 1.0, act)
            layer(l + 1, A2, b2, G * act[:, None], g * act, pattern + bits)

    layer(0, A0, b0, np.eye(d), np.zeros(d), [])
    return found


def reference_residual_patterns(layers, lo, hi):
    """Pattern set of a residual ReLU network over the box [lo, hi]^d, straight from its
    definition (no lowering): ``layers[k] = (W, b, skips)`` gives
    ``h_k = relu(W h_{k-1} + b + sum_j P_j h_j)`` with ``skips = {j: P_j}`` (h_0 the input)."""
    d = layers[0][0].shape[1]
    A0 = np.r_[np.eye(d), -np.eye(d)]
    b0 = np.r_[np.full(d, float(hi)), np.full(d, -float(lo))]
    found = set()

    def layer(l, A, b, maps, pattern):
        if l == len(layers):
            found.add(tuple(pattern))
            return
        W, bias, skips = layers[l]
        M, c = maps[-1]
        G, g = W @ M, W @ c + bias
        for j, P in skips.items():
            G, g = G + P @ maps[j][0], g + P @ maps[j][1]
        for A2, b2, bits in _layer_cells(G, g, W, A, b, d):
            act = np.array(bits, dtype=float)
            layer(l + 1, A2, b2, maps + [(G * act[:, None], g * act)], pattern + bits)

    layer(0, A0, b0, [(np.eye(d), np.zeros(d))], [])
    return found


def reference_maxpool_patterns(W1, b1, windows, W2=None, b2=None, lo=-1.0, hi=1.0):
    """Regions of ``x -> relu(W2 maxpool(relu(W1 x + b1)) + b2)`` over the box [lo, hi]^d, from the
    definition: a region is a set where every ReLU sign and every window's argmax is constant.
    Keys: (layer-1 bits, argmax position per window (ties: the lowest), layer-2 bits or ()).
    Without W2 the pooled values are the output."""
    d = W1.shape[1]
    A0 = np.r_[np.eye(d), -np.eye(d)]
    b0 = np.r_[np.full(d, float(hi)), np.full(d, -float(lo))]
    found = set()

    def argmax_cells(w, A, b, M, c, wins):
        if w == len(windows):
            yield A, b, wins
            return
        win = windows[w]
        for pos, i in enumerate(win):
            A2, b2, ok = A, b, True
            for q, j in enumerate(win):
                if q == pos:
                    continue
                G, g = M[j] - M[i], c[j] - c[i]          # y_j - y_i < 0 (or a tie won by the lower index)
                if np.max(np.abs(G)) <= ZERO:
                    if g > ZERO or (abs(g) <= ZERO and q < pos):
                        ok = False
                        break
                    continue
                A2, b2 = np.r_[A2, [G]], np.r_[b2, -g]
            if ok and _margin(A2, b2, d) > TOL:
                yield from argmax_cells(w + 1, A2, b2, M, c, wins + [pos])

    for A1, bb1, bits1 in _layer_cells(W1, b1, W1, A0, b0, d):
        act = np.array(bits1, float)
        M, c = W1 * act[:, None], b1 * act
        for A2, bb2, wins in argmax_cells(0, A1, bb1, M, c, []):
            if W2 is None:
                found.add((tuple(bits1), tuple(wins), ()))
                continue
            Mp = np.array([M[win[p]] for win, p in zip(windows, wins)])
            cp = np.array([c[win[p]] for win, p in zip(windows, wins)])
            G, g = W2 @ Mp, W2 @ cp + b2
            for _, _, bits2 in _layer_cells(G, g, W2, A2, bb2, d):
                found.add((tuple(bits1), tuple(wins), tuple(bits2)))
    return found
