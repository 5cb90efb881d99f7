"""The certification pipeline for what the device proposed: each doubtful decision climbs the
ladder only as far as it must.

For an "empty" claim (a side of a hyperplane has no interior point in a cell):

1. the float64 dual bound with the device's dual vector (:func:`floatcert.certify_empty`); without
   a box (R^d), that dual's Farkas vector enclosed in floats (:func:`floatcert.certify_empty_unbounded`);
2. an exact certificate rebuilt on that dual vector's support (:func:`lp.exact.empty_by_dual_support`);
3. Clarabel in float64 (:mod:`lp.clarabel`), its answer certified again by 1, by 2, or, if it
   finds interior, by a point check;
4. the full exact simplex (:func:`lp.exact.has_interior`), the last resort.

Witnesses that fail their forward-pass certificate are repaired the same way. Every rung counts
how often it was needed (:class:`DecisionStats`, reported by ``--json``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from typing import Callable, NamedTuple

import numpy as np

from ..lp import exact
from ..lp.clarabel import ClarabelLP
from ..lp.problem import LPGeometry, LPStatus, MarginProblems, Rows
from ..settings import Settings
from . import floatcert
from .exact_net import ExactNetwork

SUPPORT_LIMIT = 96   # rung 2 rebuilds duals on at most this many rows: beyond, its rational solve costs more than Clarabel


class WitnessStatus(enum.IntEnum):
    """How a region's non-emptiness is proven (stored per region in the dataset)."""

    FLOAT = 0        # its witness passes the float64 forward-pass certificate (radius > 0)
    EXACT = 1        # its witness is strictly inside in exact arithmetic; float64 cannot tell (radius 0)
    EXACT_ONLY = 2   # proven non-empty by the exact simplex, but no float64 point strictly inside was found


@dataclass
class DecisionStats:
    """Counters reported in the summary (``--json``)."""

    lps: int = 0                  # margin LPs solved on the device
    lp_unfinished: int = 0        # of those: lanes that ended without converging (iteration limit or a failed
                                  # step); their answers went up the certification ladder like any other
    avoided: int = 0              # split decisions settled by cheap tests (no LP)
    vertex_decisions: int = 0     # split decisions settled on the vertex path (low d), all kinds
    vertex_duals: int = 0         # of those: one-sided cells certified by a dual read off a vertex (unproven vertex sets)
    float_certificates: int = 0   # "no interior" claims proven by the float64 dual bound (or, on R^d, the enclosed
                                  # Farkas vector) with the LP's own dual: rung 1 of the ladder
    float_redecisions: int = 0    # LP answers re-decided in float64 by Clarabel
    exact_certificates: int = 0   # decisions proven by an exact certificate rebuilt from a float answer
    exact_simplex: int = 0        # decisions that needed the full exact simplex (last resort)
    exact_other: int = 0          # constants and ranks settled in exact arithmetic
    witness_repairs: int = 0      # regions whose first witness failed its certificate
    exact_witnesses: int = 0      # regions whose witness is certified only in exact arithmetic

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def add(self, other: "DecisionStats") -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def exact_decisions(self) -> int:
        return self.exact_certificates + self.exact_simplex + self.exact_other


class CellSpec(NamedTuple):
    """What the exact path needs to rebuild a cell: its signs per layer (+1/-1, 0 = no row) and
    the flat neuron index of each float row in use, in float row order."""

    signs: list
    order: np.ndarray


SpecFn = Callable[[int], CellSpec]


class Decider:
    """Certifies emptiness claims and repairs witnesses, escalating only where needed."""

    def __init__(self, geometry: LPGeometry, exact_net: Callable[[], ExactNetwork], stats: DecisionStats, d: int,
                 settings: Settings, device_certs=None):
        """``device_certs``: a :class:`lrenum.certify.device_certs.DeviceCertificates` to run rung 1
        and the witness checks on the device (None: the host's numpy)."""
        self.geo = geometry
        self.device_certs = device_certs
        self._exact_net = exact_net
        self.stats = stats
        self.d = d
        self.clarabel = ClarabelLP(geometry, settings)

    def _clarabel(self, C, b, mask):
        """One cell's margin LP re-solved in float64 by Clarabel: (converged, t, x, y, y_dom), y
        in the layout of ``C``'s rows."""
        sol = self.clarabel.solve(MarginProblems(C[None], b[None], mask[None], np.zeros((1, self.d))))
        return sol.status[0] == LPStatus.CONVERGED, float(sol.t[0]), sol.x[0], sol.y[0], sol.y_dom[0]

    def _domain_rows(self, K: int):
        geo = self.geo
        m_dom = geo.dom_C.shape[0]
        return (np.broadcast_to(geo.dom_C, (K, m_dom, geo.rank)), np.broadcast_to(geo.dom_b, (K, m_dom)),
                np.zeros((K, m_dom)))

    def empty_claims(self, rows: Rows, y, y_dom, spec: SpecFn):
        """Settle claims "cell i has no interior point".

        rows: the cells' rows (without the domain's); y: (K, m) and y_dom:
        (K, m_dom) dual weights of the unnormalised rows; ``spec(i)`` describes claim i for the
        exact network. Returns (empty (K,), witness (K, d), radius (K,)), the last two
        for claims that turned out non-empty.
        """
        C, b, eC, eb, mask = rows
        K = C.shape[0]
        Cd, bd, zd = self._domain_rows(K)
        Ca = np.concatenate([C, Cd], axis=1)
        ba = np.concatenate([b, bd], axis=1)
        eCa = np.concatenate([eC, zd], axis=1)
        eba = np.concatenate([eb, zd], axis=1)
        ya = np.concatenate([np.where(mask, y, 0.0), y_dom], axis=1)
        empty = self.certify_empty(Ca, ba, eCa, eba, ya)
        if self.geo.box is None:          # R^d: a Farkas vector enclosed in floats, before the exact path
            empty |= floatcert.certify_empty_unbounded(Ca, ba, eCa, eba, ya)
        self.stats.float_certificates += int(empty.sum())
        witness = np.full((K, self.d), np.nan)
        radius = np.zeros(K)
        for i in np.nonzero(~empty)[0]:
            verdict, x, r = self._redecide(rows.one(i), y[i], y_dom[i], spec(i))
            empty[i] = verdict
            if not verdict:
                witness[i], radius[i] = x, r
        return empty, witness, radius

    def certify_empty(self, C, b, eC, eb, y) -> np.ndarray:
        """Rung 1 alone (:func:`floatcert.certify_empty`), on the device where this run says so."""
        if self.device_certs is not None:
            return self.device_certs.empty(C, b, eC, eb, y)
        return floatcert.certify_empty(C, b, eC, eb, y, self.geo)

    def _exact_rows(self, spec: CellSpec):
        return self._exact_net().region_rows(spec.signs, spec.order)

    def _support_certificate(self, rows_q, y, y_dom, mask) -> bool:
        """Rung 2: rebuild the dual exactly on its support (the domain's rows first, as in rows_q)."""
        if rows_q is None:
            return True                           # a constant neuron contradicts its sign: empty
        n_dom = len(rows_q) - int(mask.sum())
        if self.geo.box_is_domain:                # implied duals of the box faces: v = A^T y
            A = np.array([[float(v) for v in a] for a, _ in rows_q[n_dom:]])
            v = A.T @ y[mask] if A.size else np.zeros(self.d)
            yd = np.concatenate([np.maximum(-v, 0.0), np.maximum(v, 0.0)])   # rows x <= hi, then -x <= -lo
        else:
            yd = y_dom
        yfull = np.concatenate([yd, y[mask]])
        if np.count_nonzero(yfull > 1e-9 * max(yfull.max(initial=0.0), 1e-300)) > SUPPORT_LIMIT:
            return False
        return exact.empty_by_dual_support(rows_q, yfull)

    def _redecide(self, one: Rows, y, y_dom, spec: CellSpec):
        """One doubtful claim (``one``: its rows, a batch of one): rungs 2 to 4. Returns (empty,
        point, radius)."""
        C, b, eC, eb, mask = (a[0] for a in one)
        rows_q = self._exact_rows(spec)
        if self._support_certificate(rows_q, y, y_dom, mask):
            self.stats.exact_certificates += 1
            return True, None, 0.0
        self.stats.float_redecisions += 1
        ok, t, x, yy, y_dom_c = self._clarabel(C, b, mask)
        if ok:
            Cd, bd, zd = self._domain_rows(1)
            cert = floatcert.certify_empty(
                np.concatenate([C[None], Cd], axis=1), np.concatenate([b[None], bd], axis=1),
                np.concatenate([eC[None], zd], axis=1), np.concatenate([eb[None], zd], axis=1),
                np.concatenate([yy[None], y_dom_c[None]], axis=1), self.geo)[0]
            if cert:
                return True, None, 0.0
            if t > 0:
                inside, rad = floatcert.certify_points(one, x[None], self.geo)
                dom_ok, droom = self._in_domain(x)
                if inside[0] and dom_ok:
                    return False, x, float(min(rad[0], droom))
            elif self._support_certificate(rows_q, yy, y_dom_c, mask):
                self.stats.exact_certificates += 1
                return True, None, 0.0
        self.stats.exact_simplex += 1
        has, pt = exact.has_interior(rows_q, self.d)
        if not has:
            return True, None, 0.0
        return False, exact.to_float(pt), 0.0

    def _in_domain(self, x):
        from types import SimpleNamespace

        geo = self.geo
        if geo.box is None:
            return True, np.inf
        if geo.box_is_domain:
            dom = SimpleNamespace(kind="box", box=geo.box, A=np.zeros((1, self.d)))
        else:
            dom = SimpleNamespace(kind="polytope", A=geo.to_x(geo.dom_C), b=geo.dom_b)
        ok, room = floatcert.domain_slack(dom, x[None])
        return bool(ok[0]), float(room[0])

    def repair_witness(self, one: Rows, spec: CellSpec, check: Callable[[np.ndarray], tuple]):
        """A region whose witness failed (``one``: its rows, a batch of one): find and certify a
        new one, or prove it empty.

        ``check(x)`` runs the forward-pass certificate for one point, returning (status, radius).
        Returns (keep, witness, radius, WitnessStatus).
        """
        C, b, mask = one.C[0], one.b[0], one.mask[0]
        self.stats.witness_repairs += 1
        if mask.any():
            self.stats.float_redecisions += 1
            ok, t, x, _, _ = self._clarabel(C, b, mask)
            if ok and t > 0:
                status, radius = check(x)
                if status == 0:
                    return True, x, radius, WitnessStatus.FLOAT
        self.stats.exact_simplex += 1
        rows_q = self._exact_rows(spec)
        has, pt = exact.has_interior(rows_q, self.d)
        if not has:
            return False, None, 0.0, WitnessStatus.FLOAT
        xf = exact.to_float(pt)
        status, radius = check(xf)
        if status == 0:
            return True, xf, radius, WitnessStatus.FLOAT
        self.stats.exact_witnesses += 1
        if exact.point_strictly_inside(rows_q, xf):
            return True, xf, 0.0, WitnessStatus.EXACT
        return True, xf, 0.0, WitnessStatus.EXACT_ONLY

