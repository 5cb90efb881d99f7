"""Input domains: a box, a polytope ``{x : A x <= b}`` or all of R^d."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np

from ..errors import InputError
from ..lp.polytope import PolytopeError, certified_bounding_box, interior_point


@dataclass(frozen=True)
class Domain:
    """A convex input domain given by rows ``A x <= b`` (no rows for R^d).

    ``box`` is a box ``(lo, hi)`` proven to contain the domain (the domain itself for a box
    domain); certificates of emptiness need it. It is ``None`` only for R^d, where emptiness
    is decided exactly instead. ``inside`` is a point strictly inside the domain.
    """

    kind: str  # "box", "polytope" or "unbounded"
    A: np.ndarray
    b: np.ndarray
    box: Optional[tuple[np.ndarray, np.ndarray]]
    inside: Optional[np.ndarray] = None

    @property
    def dim(self) -> int:
        return int(self.A.shape[1])

    def describe(self) -> dict:
        """JSON-friendly description (for summaries and file attributes)."""
        out: dict = {"kind": self.kind}
        if self.kind == "box":
            out["lo"] = self.box[0].tolist()
            out["hi"] = self.box[1].tolist()
        elif self.kind == "polytope":
            out["A"] = self.A.tolist()
            out["b"] = self.b.tolist()
        return out

    def center(self) -> np.ndarray:
        """A point strictly inside: the box centre, the polytope's Chebyshev centre, or 0 in R^d."""
        if self.inside is not None:
            return self.inside
        if self.box is None:
            return np.zeros(self.dim)
        return 0.5 * (self.box[0] + self.box[1])

    def scale(self) -> float:
        """A length scale of the domain (1 for R^d)."""
        if self.box is None:
            return 1.0
        return float(max(1e-300, np.max(self.box[1] - self.box[0]) / 2))


def box_domain(lo, hi, dim: int) -> Domain:
    """The box ``lo <= x <= hi``; scalars are broadcast to ``dim`` coordinates."""
    try:
        lo = np.broadcast_to(np.asarray(lo, dtype=np.float64), (dim,)).copy()
        hi = np.broadcast_to(np.asarray(hi, dtype=np.float64), (dim,)).copy()
    except (ValueError, TypeError) as exc:
        raise InputError(f"box bounds must be scalars or length-{dim} vectors ({exc})") from None
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise InputError("box bounds contain NaN or inf (use --domain unbounded for R^d)")
    bad = np.nonzero(lo >= hi)[0]
    if bad.size:
        i = int(bad[0])
        raise InputError(f"empty or inverted box: lo[{i}] = {lo[i]:g} >= hi[{i}] = {hi[i]:g}")
    b = np.concatenate([hi, -lo])
    return Domain("box", _box_rows(dim), b, (lo, hi))


@lru_cache(maxsize=8)
def _box_rows(dim: int) -> np.ndarray:
    """``[I; -I]``, one read-only copy per dimension shared by every box: at d = 784 it is 9.8 MB,
    and the walks around many inputs (:mod:`lrenum.counting.local`) hold one box each."""
    eye = np.eye(dim)
    A = np.concatenate([eye, -eye])
    A.setflags(write=False)
    return A


def polytope_domain(A, b, dim: int) -> Domain:
    """The polytope ``{x : A x <= b}``; it must be bounded and full-dimensional."""
    try:
        A = np.array(A, dtype=np.float64)
        b = np.array(b, dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise InputError(f"domain_A/domain_b are not numeric ({exc})") from None
    if A.ndim != 2 or A.shape[1] != dim or b.shape != (A.shape[0],):
        raise InputError(f"domain_A must be (k, {dim}) and domain_b (k,), got {A.shape} and {b.shape}")
    if not (np.all(np.isfinite(A)) and np.all(np.isfinite(b))):
        raise InputError("domain_A/domain_b contain NaN or inf")
    keep = np.any(A != 0, axis=1)
    if np.any(b[~keep] < 0):
        raise InputError("the polytope domain is empty (a row reads 0 <= negative)")
    A, b = A[keep], b[keep]
    try:
        inside = interior_point(A, b)
        if inside is None:
            raise InputError("the polytope domain is not full-dimensional (it has no interior point)")
        box = certified_bounding_box(A, b)
    except PolytopeError as exc:
        raise InputError(str(exc)) from None
    return Domain("polytope", A, b, box, inside)


def unbounded_domain(dim: int) -> Domain:
    """All of R^d."""
    return Domain("unbounded", np.zeros((0, dim)), np.zeros(0), None)


def resolve_domain(dim: int, file_arrays: dict, box=None, unbounded: bool = False) -> Domain:
    """Pick the domain: command-line choice first, then arrays from the file, else [-1, 1]^d."""
    if unbounded:
        return unbounded_domain(dim)
    if box is not None:
        return box_domain(box[0], box[1], dim)
    if "domain_A" in file_arrays or "domain_b" in file_arrays:
        if not ("domain_A" in file_arrays and "domain_b" in file_arrays):
            raise InputError("network file has only one of domain_A / domain_b")
        return polytope_domain(file_arrays["domain_A"], file_arrays["domain_b"], dim)
    if "lo" in file_arrays or "hi" in file_arrays:
        if not ("lo" in file_arrays and "hi" in file_arrays):
            raise InputError("network file has only one of lo / hi")
        return box_domain(file_arrays["lo"], file_arrays["hi"], dim)
    return box_domain(-1.0, 1.0, dim)
