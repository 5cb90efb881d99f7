"""Everything fixed for one enumeration: the network, the domain, the basis and the settings.

The *basis* ``U`` (r x d): every hyperplane any layer can produce is a combination of the first
layer's weight rows, so when the input is wide and the first layer narrow (MNIST: 784 pixels,
10-16 units) lrenum works in the coordinates ``U x`` with ``U = W1`` (its zero rows dropped):
rows, maps and propagation cost r numbers instead of d, and the box-bounded LP kernel solves
rows x rows systems. Polytope domain rows join the basis. The reduction needs ``U`` to have full
row rank *exactly* (then the rank of ``M U`` is the rank of ``M``); otherwise, and whenever r is
not smaller than d, ``U`` is the identity.
"""

from __future__ import annotations

from functools import cached_property
from typing import Optional

import numpy as np

from ..certify.exact_net import ExactNetwork
from ..lp.exact import has_full_row_rank
from ..lp.problem import LPGeometry
from ..model.coincidences import Copies
from ..model.domain import Domain
from ..model.network import Network
from ..settings import DEFAULT, Settings


def choose_basis(net: Network, domain: Domain) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(U, layer-1 rows in basis coordinates, polytope rows in basis coordinates)."""
    d = net.input_dim
    W1 = net.weights[0]
    nonzero = np.any(W1 != 0, axis=1)
    dom = domain.A if domain.kind == "polytope" else np.zeros((0, d))
    U = np.concatenate([W1[nonzero], dom])
    if U.shape[0] < d and has_full_row_rank(U):
        r, n_w = U.shape[0], int(nonzero.sum())
        layer1 = np.zeros((W1.shape[0], r))
        layer1[np.nonzero(nonzero)[0], np.arange(n_w)] = 1.0
        dom_C = np.zeros((dom.shape[0], r))
        dom_C[np.arange(dom.shape[0]), n_w + np.arange(dom.shape[0])] = 1.0
        return U, layer1, dom_C
    return np.eye(d), W1.copy(), dom.copy()


class Frame:
    """Per-enumeration constants (network, domain, geometry, settings); the exact network is made
    on demand."""

    def __init__(self, net: Network, domain: Domain, settings: Settings = DEFAULT,
                 basis: Optional[tuple[np.ndarray, np.ndarray, np.ndarray]] = None):
        """``basis``: :func:`choose_basis`'s answer for this network and domain, when the caller
        has it already: the local walks around many inputs share one instead of proving the same
        rank once per box (28 ms each at 784 x 64, 280 s over 10,000 boxes)."""
        self.net = net
        self.domain = domain
        self.settings = settings
        self.d = net.input_dim
        self.widths = net.hidden_widths
        self.offsets = net.neuron_offsets
        U, self.layer1, dom_C = choose_basis(net, domain) if basis is None else basis
        identity = U.shape[0] == U.shape[1] and np.array_equal(U, np.eye(U.shape[0]))
        scale = domain.scale()
        self.geometry = LPGeometry(
            U=U, gram=U @ U.T, identity_basis=identity, box=domain.box, dom_C=dom_C,
            dom_b=domain.b if domain.kind == "polytope" else np.zeros(0),
            box_is_domain=domain.kind == "box", t_cap=scale if domain.box is not None else 1.0, scale=scale,
            u_row_1=1.0 if identity else float(np.abs(U).sum(axis=1).max()),
            u_row_2=1.0 if identity else float(np.linalg.norm(U, axis=1).max()))
        self.r = U.shape[0]

    @property
    def copies(self) -> Copies:
        """Neurons that are exact copies of another (proportional rows), per layer: found once per
        network (:mod:`lrenum.model.coincidences`), passengers of their representative in the split."""
        return self.net.copies

    @cached_property
    def exact(self) -> ExactNetwork:
        """The network and domain in exact rationals (built on first use: most runs never need it)."""
        return ExactNetwork(self.net, self.domain)

    def layer_signs(self, bits: np.ndarray, n_layers: int, current: Optional[np.ndarray] = None) -> list:
        """Sign lists (+1/-1) of a pattern's first ``n_layers`` layers, then ``current`` (+1/-1/0)."""
        out = [np.where(bits[self.offsets[l]:self.offsets[l + 1]], 1, -1) for l in range(n_layers)]
        if current is not None:
            out.append(np.asarray(current))
        return out
