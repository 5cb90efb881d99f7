"""Analytic upper bounds on the number of activation regions.

* :func:`serra2018` -- Serra, Tjandraatmadja and Ramalingam (ICML 2018), Theorem 1.
* :func:`montufar2017` -- Montufar (2017): ``prod_l sum_{j <= d_l} C(n_l, j)``.
* :func:`activation_bound` -- the activation-based bound in the spirit of Serra and
  Ramalingam (AAAI 2020): only units that are not stable over the domain can split a
  region, and the rank after a layer is capped by the number of units that can be active
  at once. The proof of the form implemented here is in ``docs/bounds.md``.

All values are exact Python integers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache
import math
from math import comb
from typing import Sequence

from ..model.domain import Domain
from ..tolerances import MILP_INT_TOL
from ..model.network import Network


def serra2018(n0: int, widths: Sequence[int]) -> int:
    """``sum_{(j_1..j_L) in J} prod_l C(n_l, j_l)`` with
    ``J = {0 <= j_l <= min(n_0, n_1 - j_1, ..., n_{l-1} - j_{l-1}, n_l)}``.

    Summed layer by layer: the state is the running minimum ``min(n_0, n_1 - j_1, ...)``.
    """
    widths = tuple(int(n) for n in widths)

    @lru_cache(maxsize=None)
    def rest(l: int, running_min: int) -> int:
        if l == len(widths):
            return 1
        n = widths[l]
        return sum(comb(n, j) * rest(l + 1, min(running_min, n - j)) for j in range(min(running_min, n) + 1))

    return rest(0, int(n0))


def montufar2017(n0: int, widths: Sequence[int]) -> int:
    """``prod_l sum_{j <= d_l} C(n_l, j)`` with ``d_l = min(n_0, n_1, ..., n_l)``."""
    out, d = 1, int(n0)
    for n in widths:
        d = min(d, int(n))
        out *= sum(comb(int(n), j) for j in range(d + 1))
    return out


def activation_bound(n0: int, unstable: Sequence[int], stably_active: Sequence[int],
                     max_active: Sequence[int]) -> int:
    """``B_1(n_0)`` with ``B_{L+1}(r) = 1`` and

        B_l(r) = sum_{j=0}^{min(r, u_l)} C(u_l, j) * B_{l+1}(min(r, a_l + u_l - j, K_l)),

    u_l unstable units of layer l, a_l stably active ones, K_l a cap on the number of
    units of layer l active at once. With no stable units and ``K_l = n_l`` this is
    :func:`serra2018`. Proof in ``docs/bounds.md``.
    """
    u = tuple(int(v) for v in unstable)
    a = tuple(int(v) for v in stably_active)
    K = tuple(int(v) for v in max_active)

    @lru_cache(maxsize=None)
    def rest(l: int, r: int) -> int:
        if l == len(u):
            return 1
        return sum(comb(u[l], j) * rest(l + 1, min(r, a[l] + u[l] - j, K[l])) for j in range(min(r, u[l]) + 1))

    return rest(0, int(n0))


@dataclass
class BoundsReport:
    bounds: dict                     # name -> int
    details: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)

    @property
    def best(self) -> int:
        """The smallest (tightest) of the bounds."""
        return min(self.bounds.values())

    def summary(self) -> dict:
        return {"bounds": dict(self.bounds), "best": self.best, "details": self.details, "seconds": self.seconds}


def max_active_units(net: Network, domain: Domain, pb, layer: int, backend: str = "auto",
                     time_limit: float = 10.0, tol: float = 1e-6) -> tuple[int, str]:
    """An upper bound on the number of units of hidden layer ``layer`` (0-based) active at once.

    Maximises the number of active binaries over the relaxed MILP encoding (every region's
    interior points are feasible, with slack ``tol`` beyond the solver's tolerances) and
    takes the solver's dual bound, valid even on a time-out. Returns (bound, solver status).
    """
    from . import milp  # the only import of a MILP solver, kept out of the enumerator

    active = int(pb.stably_active(layer).sum())
    unstable = int(pb.unstable(layer).sum())
    if unstable == 0:
        return active, "trivial"
    model = milp.encode(net, domain, pb, margin=-tol, layers=layer + 1)
    offs = net.neuron_offsets[layer]
    c = model.c.copy()
    in_layer = model.neuron_of_binary >= offs
    c[model.binaries[in_layer]] = -1.0
    res = milp.solve(model.with_objective(c), backend=backend, time_limit=time_limit)
    if res.status == "infeasible" or not (res.dual_bound > -float("inf")):
        return active + unstable, res.status
    # The dual bound ub is a float from a solver with tolerances: round *up* after removing
    # MILP_INT_TOL (4.9999997 -> 5, 5.0000003 -> 5), so a true 5 reported as 4.99 still gives 5.
    # Only an error of a whole unit in the solver's bound could make this wrong: the ingredient is
    # reported as float-based ("max_active_status").
    best = int(min(unstable, max(0, math.ceil(-res.dual_bound - MILP_INT_TOL))))
    return active + best, res.status


def compute_bounds(net: Network, domain: Domain, *, use_milp: bool = True, backend: str = "auto",
                   time_limit: float = 10.0) -> BoundsReport:
    """Every analytic upper bound for ``net`` over ``domain``, with what each one used."""
    n0, widths = net.input_dim, list(net.hidden_widths)
    rep = BoundsReport(bounds={})
    if net.has_linear or net.has_groups:
        return _carried_bound(net, rep)
    t = time.perf_counter()
    rep.bounds["montufar2017"] = montufar2017(n0, widths)
    rep.seconds["montufar2017"] = time.perf_counter() - t
    if not net.is_relu:
        rep.details["montufar2017"] = LEAKY_NOTE
        return rep
    t = time.perf_counter()
    rep.bounds["serra2018"] = serra2018(n0, widths)
    rep.seconds["serra2018"] = time.perf_counter() - t

    t = time.perf_counter()
    if domain.box is None:
        unstable, active, K = widths, [0] * len(widths), widths
        rep.details["activation"] = "unbounded domain: no unit is stable, so this equals serra2018"
    else:
        from .preact import preactivation_bounds

        pb = preactivation_bounds(net, domain)
        unstable = [int(pb.unstable(l).sum()) for l in range(len(widths))]
        active = [int(pb.stably_active(l).sum()) for l in range(len(widths))]
        inactive = [int(pb.stably_inactive(l).sum()) for l in range(len(widths))]
        K, status = [], []
        for l in range(len(widths)):
            if use_milp:
                k, st = max_active_units(net, domain, pb, l, backend=backend, time_limit=time_limit)
            else:
                k, st = active[l] + unstable[l], "skipped"
            K.append(k)
            status.append(st)
        rep.details["activation"] = {"stably_active": active, "stably_inactive": inactive, "unstable": unstable,
                                     "max_active": K, "max_active_status": status, "bound_lps": pb.lps,
                                     "max_active_certification": "float MILP dual bound, rounded up (not exact)"}
    rep.bounds["activation"] = activation_bound(n0, unstable, active, K)
    rep.seconds["activation"] = time.perf_counter() - t
    return rep


LEAKY_NOTE = ("leaky or parametric ReLU units: an inactive unit still passes its input on (times its slope), "
              "so the rank after a layer is capped only by the widths, not by the active units: serra2018 and "
              "the activation bound do not hold (a 2-input 1-1 network with slope -0.7 has 4 regions, serra2018 "
              "says 3); montufar2017 rests on the widths alone")


def _carried_bound(net: Network, rep: BoundsReport) -> BoundsReport:
    """A network with linear carried units (residual connections, max pooling): the bounds above
    cap the rank after a layer by the layer before's, which a skip connection breaks. What holds:
    each region is split by layer l's u_l splitting units, hyperplanes in an n_0-dimensional
    region, into at most sum_{j <= n_0} C(u_l, j) pieces."""
    t = time.perf_counter()
    out = 1
    for u, members in zip(net.splitting_widths, net.group_members):
        # a group of m units (a max pool over m + 1 values): its argmax cells are unions of the
        # cells of its m hyperplanes and their C(m, 2) differences, so those count as hyperplanes
        u += sum(comb(m.size, 2) for m in members)
        out *= sum(comb(u, j) for j in range(min(u, net.input_dim) + 1))
    rep.bounds["product"] = out
    rep.seconds["product"] = time.perf_counter() - t
    rep.details["product"] = ("residual connections or max pooling (linear carried units): the rank bottleneck "
                              "of serra2018, montufar2017 and the activation bound does not hold; "
                              "prod_l sum_{j <= n_0} C(u_l, j) over each layer's splitting units u_l "
                              "(with the pairwise differences of a max pool's group among them)")
    return rep
