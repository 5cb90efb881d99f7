"""The one door to every margin-LP back end (modelled on cvxpy's conic solver interface).

A *margin LP* asks how deep a cell can hold a ball:

    max t  s.t.  a_i . x + ||a_i||_2 t <= b_i   (the cell's rows),   x in the domain,

and ``t* > 0`` exactly when the cell has interior points. Every back end takes the same
:class:`MarginProblems` (formatted once by the caller), solves it its own way, and maps its
answer back to the same :class:`MarginSolutions`. Back ends: the small-d device IPM and the
box-bounded device IPM (:mod:`lrenum.lp.device`), Clarabel (:mod:`lrenum.lp.clarabel`); the exact
rational solver (:mod:`lrenum.lp.exact`) answers the same question on exact rows.

Rows are given in *basis coordinates*: ``a_i = C_i U`` with ``U`` (r x d) the frame's basis
(:class:`LPGeometry`). For most networks ``U`` is the identity; for wide inputs (784 pixels and
a 12-unit first layer) it is the first layer's weight matrix, so that a cell's rows cost r, not
d, numbers each.
"""

from __future__ import annotations

import enum
from typing import NamedTuple, Optional, Protocol

import numpy as np

ROW_BUCKET = 8   # rows are padded to a multiple of this: few distinct compiled (device) or canonicalised
                 # (Clarabel) problem shapes


def bucket_rows(m: int) -> int:
    """The padded row count for ``m`` rows (at least one bucket)."""
    return max(ROW_BUCKET, -(-m // ROW_BUCKET) * ROW_BUCKET)


class LPStatus(enum.IntEnum):
    """How a back end left one lane, mapped explicitly from each solver's own statuses."""

    CONVERGED = 0        # solved, or stopped early once the sign of t* was settled
    ITERATION_LIMIT = 1  # ran out of iterations: the iterate is a proposal, nothing more
    INFEASIBLE = 2       # the solver reports the LP infeasible (a margin LP never is: the domain's fault)
    FAILED = 3           # numerical trouble (non-finite step, solver error, inaccurate answer)


def norm2(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """2-norms along ``axis`` that neither underflow nor overflow: a row of size 1e-200 has norm
    1e-200, not 0 (``np.linalg.norm`` squares the entries first: 1e-400 rounds to 0)."""
    out = np.sqrt(np.einsum("...i,...i->...", a, a) if axis in (-1, a.ndim - 1) else np.sum(a * a, axis=axis))
    # squares are exact enough where the sum of squares is a normal float far from overflow; rescale the rest
    risky = ~((out > 1e-140) & (out < 1e140)) & (out != 0) | ((out == 0) & np.any(a != 0, axis=axis))
    if np.any(risky):
        big = np.max(np.abs(a), axis=axis, keepdims=True)
        safe = np.where(big > 0, big, 1.0)
        out = np.where(risky, np.squeeze(big, axis=axis) * np.sqrt(np.sum((a / safe) ** 2, axis=axis)), out)
    return out


class Rows(NamedTuple):
    """Constraint rows ``C_i . (U x) < b_i`` of a batch of cells (a region's, or a cell's under
    construction), with error bounds against the exact network: ``eC >= ||C~ - C||_1`` and
    ``eb >= |b~ - b|``. The one value rows travel in, from the enumerator to the certificates."""

    C: np.ndarray        # (B, m, r)
    b: np.ndarray        # (B, m)
    eC: np.ndarray       # (B, m)
    eb: np.ndarray       # (B, m)
    mask: np.ndarray     # (B, m) bool: row in use (False for neurons constant on the region)

    def one(self, i: int) -> "Rows":
        """Cell i alone, as a batch of one."""
        return Rows(*(a[i:i + 1] for a in self))


class LPGeometry(NamedTuple):
    """What every LP of one enumeration shares: the basis and the domain."""

    U: np.ndarray                    # (r, d) basis: rows are a = C U
    gram: np.ndarray                 # (r, r) U U^T, so that ||C U||_2 = sqrt(C gram C^T)
    identity_basis: bool             # U is the d x d identity
    box: Optional[tuple]             # (lo, hi) a box containing the domain; None for R^d
    dom_C: np.ndarray                # (m_dom, r) polytope domain rows in basis coordinates (box domains: empty)
    dom_b: np.ndarray                # (m_dom,)
    box_is_domain: bool              # the box is the domain itself (not just a bounding box)
    t_cap: float                     # cap on t: keeps LPs over unbounded cells bounded
    scale: float                     # a length scale of the domain
    u_row_1: float                   # max_q ||U_q||_1: an error e in C_i (1-norm) moves a_i by <= e * this (1-norm)
    u_row_2: float                   # max_q ||U_q||_2: the same in the 2-norm (radii)

    @property
    def dim(self) -> int:
        return int(self.U.shape[1])

    @property
    def rank(self) -> int:
        return int(self.U.shape[0])

    def row_norms(self, C: np.ndarray) -> np.ndarray:
        """x-space 2-norms of rows given in basis coordinates (any leading shape)."""
        if self.identity_basis:
            return norm2(C)
        big = np.max(np.abs(C), axis=-1)          # scaled first, so that tiny rows do not underflow
        Cs = C / np.where(big > 0, big, 1.0)[..., None]
        # (Cs G) . Cs: one BLAS product, then a row-wise dot (a three-operand einsum loops in C
        # without BLAS: 2.7x slower on 260,000 rows of 64, and a sixth of a local walk's time)
        return big * np.sqrt(np.maximum(np.einsum("...i,...i->...", Cs @ self.gram, Cs), 0.0))

    def to_x(self, C: np.ndarray) -> np.ndarray:
        """Rows in x-space (materialised: only for small d or a few rows)."""
        return C if self.identity_basis else C @ self.U

    def image(self, x: np.ndarray) -> np.ndarray:
        """Basis coordinates ``U x`` of points x (..., d)."""
        return x if self.identity_basis else x @ self.U.T


class MarginProblems(NamedTuple):
    """A batch of margin LPs (the domain is implied by the :class:`LPGeometry`)."""

    C: np.ndarray       # (K, m, r) cell rows in basis coordinates, unnormalised
    b: np.ndarray       # (K, m)
    mask: np.ndarray    # (K, m) bool, rows in use
    start: np.ndarray   # (K, d) a point of the domain to start from (need not be feasible)


class MarginSolutions(NamedTuple):
    """Answers, all proposals until certified (:mod:`lrenum.certify`)."""

    t: np.ndarray       # (K,) margin: > 0 proposes "the cell has interior points"
    x: np.ndarray       # (K, d) a point strictly inside the domain, deep in the cell when t > 0
    radius: np.ndarray  # (K,) estimated distance from x to the cell's boundary and the domain's (0 if t <= 0)
    y: np.ndarray       # (K, m) dual weights >= 0 of the *unnormalised* cell rows
    y_dom: np.ndarray   # (K, m_dom) dual weights >= 0 of the unnormalised polytope domain rows
    status: np.ndarray  # (K,) int8 LPStatus of each lane
    iterations: np.ndarray  # (K,) int32 iterations the lane took (pivots for the exact simplex)

    @staticmethod
    def empty(d: int, m: int, m_dom: int) -> "MarginSolutions":
        return MarginSolutions(np.zeros(0), np.zeros((0, d)), np.zeros(0), np.zeros((0, m)), np.zeros((0, m_dom)),
                               np.zeros(0, np.int8), np.zeros(0, np.int32))

    @staticmethod
    def concat(parts: list["MarginSolutions"]) -> "MarginSolutions":
        return MarginSolutions(*(np.concatenate(x) for x in zip(*parts)))


class MarginBackend(Protocol):
    """A margin-LP back end: formats the problems its own way, solves, maps the answer (and each
    solver status) back. Every back end answers the same question for the same rows, so any of
    them can stand in for another (tests compare them lane by lane with scipy's HiGHS)."""

    name: str
    solved: int          # problems solved so far

    def solve(self, problems: MarginProblems) -> MarginSolutions:
        """One answer per problem, in order; never raises for a hard lane (its status says so)."""
        ...
