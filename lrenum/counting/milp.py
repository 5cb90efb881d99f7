"""The MILP encoding of a ReLU network over its domain, and two MILP back ends.

This is the only module of lrenum that calls a MILP solver (used by :mod:`lrenum.mipbound`
and for the largest number of simultaneously active units in :mod:`lrenum.bounds`); the
enumerator never imports it.

Encoding (variables x, h_l >= 0, one binary a_j per *unstable* neuron): with certified
bounds ``L_j <= z_j(x) <= U_j`` over the domain (:mod:`lrenum.preact`),

    h_j >= z_j,   h_j <= z_j - L_j (1 - a_j),   h_j <= U_j a_j,
    z_j >= L_j + (m_j - L_j) a_j,   z_j <= -m_j + (U_j + m_j) a_j.

For a_j = 1 these force h_j = z_j >= m_j; for a_j = 0, h_j = 0 and z_j <= -m_j; the other
side's constraint reduces to ``L_j <= z_j <= U_j``, which every domain point satisfies, so
the big-M constants cut off nothing. With margins m_j > 0 every solution x is strictly
inside the region of its pattern (all pre-activations nonzero), so each binary solution is
the pattern of a full-dimensional region. With m_j = -tol < 0 instead, the encoding is a
relaxation: every region's pattern is feasible (used for *upper* bounds).
Stable neurons get no binary: stably active ones have h = z, stably inactive ones h = 0.
Leaky and parametric units (slope s) keep r = relu(z) as above and add ``h = s z + (1 - s) r``;
a stably inactive one has h = s z; carried (linear) units have h = z and no binary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..model.domain import Domain
from ..errors import InputError
from ..model.network import Network
from .preact import PreactBounds, activation_range


@dataclass
class MilpModel:
    """A solver-neutral MILP: ``min c.v`` s.t. ``row_lo <= A v <= row_hi``, bounds, integrality,
    and XOR constraints ``sum_{i in S} v_i = parity (mod 2)`` on binaries."""

    c: np.ndarray
    A: np.ndarray
    row_lo: np.ndarray
    row_hi: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    integer: np.ndarray
    xors: list = field(default_factory=list)
    x_slice: slice = field(default_factory=lambda: slice(0))
    binaries: np.ndarray = field(default_factory=lambda: np.zeros(0, int))   # variable index per unstable neuron
    neuron_of_binary: np.ndarray = field(default_factory=lambda: np.zeros(0, int))  # flat neuron index
    fixed_bits: Optional[np.ndarray] = None   # flat pattern bits of stable neurons (-1 where unstable)

    def with_objective(self, c: np.ndarray) -> "MilpModel":
        return MilpModel(c, self.A, self.row_lo, self.row_hi, self.lb, self.ub, self.integer, list(self.xors),
                         self.x_slice, self.binaries, self.neuron_of_binary, self.fixed_bits)

    def pattern(self, v: np.ndarray) -> np.ndarray:
        """The full activation pattern (bool, all hidden neurons) of a solution vector."""
        bits = self.fixed_bits.copy()
        bits[self.neuron_of_binary] = np.round(v[self.binaries]).astype(np.int64)
        return bits.astype(bool)


def encode(net: Network, domain: Domain, pb: PreactBounds, margin: float, layers: Optional[int] = None) -> MilpModel:
    """Encode hidden layers 1..``layers`` (default all) with margin ``margin`` relative to each
    neuron's range (negative: a relaxation that keeps every region)."""
    if net.has_groups:
        raise InputError("the MILP encodings (mipbound, bounds' activation bound) do not support max pooling over "
                         "windows of 3 or more values")
    L = net.n_hidden if layers is None else layers
    d = net.input_dim
    # with a positive margin, x also keeps that margin from the domain's boundary
    shrink = max(margin, 0.0) * (domain.box[1] - domain.box[0])
    lb, ub, integer = list(domain.box[0] + shrink), list(domain.box[1] - shrink), [False] * d
    nvar = d

    def new_var(lo, hi, is_int):
        nonlocal nvar
        lb.append(lo); ub.append(hi); integer.append(is_int)
        nvar += 1
        return nvar - 1

    cons = []  # (dict var->coef, lo, hi)
    for i in range(domain.A.shape[0]):
        cut = float(np.max(shrink)) * np.linalg.norm(domain.A[i])   # the widest side's margin, along row i
        cons.append(({k: domain.A[i, k] for k in range(d) if domain.A[i, k]}, -np.inf, domain.b[i] - cut))
    prev = list(range(d))
    binaries, neuron_of_binary = [], []
    fixed = np.full(int(sum(net.hidden_widths[:L])), -1, np.int64)
    flat = 0
    for l in range(L):
        W, b = net.weights[l], net.biases[l]
        lo, hi = pb.lo[l], pb.hi[l]
        slope = net.slopes[l]                 # 1 for carried units (the network sets it)
        hlo, hhi = activation_range(lo, hi, slope)
        cur = []

        def scaled(zc: dict, s: float, r: Optional[int], j: int) -> int:
            """h = s z + (1 - s) r (r: the ReLU's variable, or none when z <= 0): a new variable."""
            h = new_var(hlo[j], hhi[j], False)
            e = {k: s * v for k, v in zc.items()}
            if r is not None:
                e[r] = e.get(r, 0.0) + (1.0 - s)
            e[h] = e.get(h, 0.0) - 1.0
            cons.append((e, -s * b[j], -s * b[j]))
            return h

        for j in range(len(b)):
            zc = {prev[k]: W[j, k] for k in range(len(prev)) if W[j, k] != 0 and prev[k] is not None}
            if net.linear[l][j]:                 # a carried unit: h = z, never split, bit 0
                cur.append(scaled(zc, 1.0, None, j))
                fixed[flat] = 0
            elif hi[j] <= 0:                     # stably inactive: h = s z (0 for a ReLU)
                cur.append(scaled(zc, float(slope[j]), None, j) if slope[j] else None)
                fixed[flat] = 0
            elif lo[j] > 0:                      # stably active: h = z
                h = new_var(0.0, hi[j], False)
                e = dict(zc); e[h] = e.get(h, 0.0) - 1.0
                cons.append((e, -b[j], -b[j]))
                cur.append(h)
                fixed[flat] = 1
            else:                                # h below is relu(z); leaky: h = s z + (1 - s) relu(z)
                h = new_var(0.0, hi[j], False)
                a = new_var(0.0, 1.0, True)
                m = margin * (hi[j] - lo[j])
                binaries.append(a)
                neuron_of_binary.append(flat)
                e = dict(zc); e[h] = -1.0                      # z - h <= -b
                cons.append((e, -np.inf, -b[j]))
                e = dict(zc); e[h] = -1.0; e[a] = lo[j]        # h <= z - L (1 - a)
                cons.append((e, lo[j] - b[j], np.inf))
                cons.append(({h: 1.0, a: -hi[j]}, -np.inf, 0.0))   # h <= U a
                e = dict(zc); e[a] = -(m - lo[j])              # z >= L + (m - L) a
                cons.append((e, lo[j] - b[j], np.inf))
                e = dict(zc); e[a] = -(hi[j] + m)              # z <= -m + (U + m) a
                cons.append((e, -np.inf, -m - b[j]))
                cur.append(scaled(zc, float(slope[j]), h, j) if slope[j] else h)
            flat += 1
        prev = cur
    A = np.zeros((len(cons), nvar))
    row_lo = np.empty(len(cons))
    row_hi = np.empty(len(cons))
    for i, (e, lo_, hi_) in enumerate(cons):
        for k, v in e.items():
            A[i, k] += v
        row_lo[i], row_hi[i] = lo_, hi_
    return MilpModel(np.zeros(nvar), A, row_lo, row_hi, np.array(lb, float), np.array(ub, float),
                     np.array(integer), [], slice(0, d), np.array(binaries, int), np.array(neuron_of_binary, int),
                     fixed)


@dataclass
class MilpResult:
    status: str                  # "optimal", "feasible", "infeasible", "timeout"
    x: Optional[np.ndarray]      # a solution vector when one was found
    dual_bound: float            # a bound on the optimum of min c.v (-inf when unknown)
    seconds: float


def available_backends() -> list[str]:
    out = []
    try:
        import pyscipopt  # noqa: F401
        out.append("scip")
    except ImportError:
        pass
    out.append("highs")   # scipy.optimize.milp, always there
    return out


def solve(model: MilpModel, backend: str = "auto", time_limit: float = 60.0) -> MilpResult:
    """Solve ``model`` (minimisation) with SCIP (native XOR constraints) or HiGHS (XOR as
    ``sum - 2k = parity`` with an integer k)."""
    if backend == "auto":
        backend = available_backends()[0]
    if backend == "scip":
        return _solve_scip(model, time_limit)
    if backend == "highs":
        return _solve_highs(model, time_limit)
    raise ValueError(f"unknown MILP backend {backend!r}")


def _solve_highs(model: MilpModel, time_limit: float) -> MilpResult:
    import time
    from scipy.optimize import Bounds, LinearConstraint, milp

    A, lo, hi = model.A, model.row_lo, model.row_hi
    c, lb, ub, integer = model.c, model.lb, model.ub, model.integer
    if model.xors:
        n = A.shape[1]
        k = len(model.xors)
        A = np.pad(A, [(0, k), (0, k)])
        lo = np.r_[lo, np.zeros(k)]
        hi = np.r_[hi, np.zeros(k)]
        lb = np.r_[lb, np.zeros(k)]
        ub = np.r_[ub, np.zeros(k)]
        for i, (vars_, parity) in enumerate(model.xors):
            A[len(model.row_lo) + i, vars_] = 1.0
            A[len(model.row_lo) + i, n + i] = -2.0
            lo[len(model.row_lo) + i] = hi[len(model.row_lo) + i] = float(parity)
            ub[n + i] = len(vars_) // 2
        c = np.r_[c, np.zeros(k)]
        integer = np.r_[integer, np.ones(k, bool)]
    t0 = time.perf_counter()
    res = milp(c, integrality=integer.astype(int), bounds=Bounds(lb, ub),
               constraints=LinearConstraint(A, lo, hi) if len(lo) else None,
               options={"time_limit": float(time_limit), "disp": False})
    sec = time.perf_counter() - t0
    dual = getattr(res, "mip_dual_bound", None)
    dual = -np.inf if dual is None or not np.isfinite(dual) else float(dual)
    if res.status == 0:
        return MilpResult("optimal", np.asarray(res.x)[:model.A.shape[1]], dual if dual > -np.inf else float(res.fun), sec)
    if res.status == 2:
        return MilpResult("infeasible", None, np.inf, sec)
    if res.x is not None:
        return MilpResult("feasible", np.asarray(res.x)[:model.A.shape[1]], dual, sec)
    return MilpResult("timeout", None, dual, sec)


def _solve_scip(model: MilpModel, time_limit: float) -> MilpResult:
    import time
    import pyscipopt

    m = pyscipopt.Model()
    m.hideOutput()
    m.setParam("limits/time", float(time_limit))
    # Measured here (SCIP 10 via pyscipopt 6.3): with pairwise XOR presolving on, 2 of 30
    # solves returned solutions that violate an XOR constraint; off, none of 120 did.
    m.setParam("constraints/xor/presolpairwise", False)
    v = [m.addVar(lb=float(model.lb[i]), ub=float(model.ub[i]), vtype="B" if model.integer[i] and model.lb[i] == 0
                  and model.ub[i] == 1 else ("I" if model.integer[i] else "C"), obj=float(model.c[i]))
         for i in range(len(model.c))]
    for i in range(model.A.shape[0]):
        nz = np.nonzero(model.A[i])[0]
        expr = pyscipopt.quicksum(float(model.A[i, k]) * v[k] for k in nz)
        lo, hi = model.row_lo[i], model.row_hi[i]
        if np.isfinite(lo) and np.isfinite(hi) and lo == hi:
            m.addCons(expr == float(lo))
        else:
            if np.isfinite(lo):
                m.addCons(expr >= float(lo))
            if np.isfinite(hi):
                m.addCons(expr <= float(hi))
    for vars_, parity in model.xors:
        if len(vars_) == 0:
            if parity:
                return MilpResult("infeasible", None, np.inf, 0.0)
            continue
        m.addConsXor([v[k] for k in vars_], bool(parity))
    t0 = time.perf_counter()
    m.optimize()
    sec = time.perf_counter() - t0
    status = m.getStatus()
    dual = float(m.getDualbound()) if status != "infeasible" else np.inf
    if m.getNSols() > 0:
        sol = m.getBestSol()
        x = np.array([m.getSolVal(sol, var) for var in v])
        return MilpResult("optimal" if status == "optimal" else "feasible", x, dual, sec)
    if status == "infeasible":
        return MilpResult("infeasible", None, np.inf, sec)
    return MilpResult("timeout", None, dual, sec)
