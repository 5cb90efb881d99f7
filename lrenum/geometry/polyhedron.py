"""Exact vertices and volumes of one region, from its exact H-representation.

Why hand-written: pycddlib's exact (GMP) double description needs a system libcdd and libgmp,
which pip cannot build here or on CI (``pycddlib-standalone`` bundles only the float variant).
The method is the textbook pivoting walk, small enough to read in one place, in FLINT rationals:

1. **A first vertex** (:func:`_first_vertex`): from an exact point of the region, move along a
   kernel direction of the rows tight there until one more row becomes tight (an exact ratio
   test), at most d times. Each step adds a row independent of the tight ones, so d steps reach a
   point whose tight rows have rank d: a vertex. If both directions of a kernel vector are
   unblocked, the region contains a line (rank of all rows < d): no vertex, unbounded.
2. **The vertex graph** (:func:`exact_vertices`): at a vertex v with tight rows T, the edges of
   the region leave v along the extreme rays of the tangent cone ``{r : A_T r <= 0}``: rays on
   which d - 1 independent rows of T stay tight (for a simple vertex, |T| = d, these are the
   columns of ``-A_T^{-1}``). Each is followed to its blocking row (the next vertex), or found
   unblocked (the region is unbounded). The graph of bounded edges of a pointed polyhedron is
   connected (the simplex method reaches any vertex w from any other along bounded improving
   edges of an objective that w alone maximises), so the walk from one vertex finds all of them.
3. **Volume** (:func:`exact_volume`): the pulling triangulation. The region is the union of the
   pyramids from its smallest vertex over the facets that miss it, recursively down to simplices
   whose volumes are exact determinants / d!. Faces are vertex sets: the facets of a face F are
   the inclusion-maximal proper sets ``{v in F : row j tight at v}``, so no rank is needed.

Every number here is an exact rational (the rows are the float64 weights' exact values, which
:class:`~lrenum.certify.exact_net.ExactNetwork` builds): vertices, tight sets and volumes are exact.
"""

from __future__ import annotations

from itertools import combinations
from math import factorial
from typing import NamedTuple, Optional, Sequence

from flint import fmpq, fmpq_mat

from ..lp import exact

ExactPoint = tuple          # a point as a tuple of fmpq


class ExactVertices(NamedTuple):
    """The vertex set of a polyhedron ``{x : a_i . x <= b_i}``, exactly."""
    points: list[ExactPoint]             # each vertex, exact
    tight: list[frozenset]               # the rows tight at each vertex (indices into the rows)
    bounded: bool                        # False: an unbounded edge, or a line, lies in the region


class _Rows(NamedTuple):
    A: fmpq_mat                          # (m, d)
    b: list                              # m fmpq
    d: int


def _slacks(rows: _Rows, x: Sequence) -> list:
    Ax = rows.A * fmpq_mat(rows.d, 1, list(x))
    return [rows.b[i] - Ax[i, 0] for i in range(len(rows.b))]


def _ratio_step(rows: _Rows, slack: list, skip: frozenset, r: Sequence) -> Optional[fmpq]:
    """The largest t >= 0 with ``x + t r`` in the region (x has ``slack``), or None if unblocked."""
    Ar = rows.A * fmpq_mat(rows.d, 1, list(r))
    best = None
    for i in range(len(slack)):
        if i in skip:
            continue
        rate = Ar[i, 0]
        if rate > 0:
            t = slack[i] / rate
            if best is None or t < best:
                best = t
    return best


def _tight(slack: list) -> frozenset:
    return frozenset(i for i, s in enumerate(slack) if s == 0)


def _submatrix(rows: _Rows, idx: Sequence[int]) -> fmpq_mat:
    return fmpq_mat(len(idx), rows.d, [rows.A[i, j] for i in idx for j in range(rows.d)])


def _first_vertex(rows: _Rows, start: Sequence) -> Optional[tuple[ExactPoint, list]]:
    """A vertex reached from the exact point ``start`` of the region, with its slacks; None when
    the region contains a line (then it has no vertex)."""
    x = list(start)
    slack = _slacks(rows, x)
    if any(s < 0 for s in slack):
        raise ValueError("the start point is not in the region")
    for _ in range(rows.d + 1):
        T = sorted(_tight(slack))
        if T and exact.rank(_submatrix(rows, T)) == rows.d:
            return tuple(x), slack
        if T:
            sol = exact.affine_solutions(_submatrix(rows, T), [exact.ZERO] * len(T))
            r = sol[1][0]                                     # rank < d: a kernel vector exists
        else:
            r = [exact.ONE] + [exact.ZERO] * (rows.d - 1)
        t = _ratio_step(rows, slack, frozenset(T), r)
        if t is None:
            r = [-v for v in r]
            t = _ratio_step(rows, slack, frozenset(T), r)
            if t is None:
                return None                                   # a line through x lies in the region
        x = [xi + t * ri for xi, ri in zip(x, r)]
        slack = _slacks(rows, x)
    raise AssertionError("no vertex after d steps: each step must add an independent tight row")


def _cross(M: fmpq_mat, d: int) -> list:
    """A kernel vector of a (d-1, d) matrix: the signed maximal minors (nonzero iff rank d-1)."""
    out = []
    for k in range(d):
        cols = [j for j in range(d) if j != k]
        minor = fmpq_mat(d - 1, d - 1, [M[i, j] for i in range(d - 1) for j in cols]) if d > 1 else None
        det = minor.det() if minor is not None else exact.ONE
        out.append(det if k % 2 == 0 else -det)
    return out


def _direction_key(r: Sequence) -> tuple:
    lead = next(abs(v) for v in r if v)
    return tuple(v / lead for v in r)


def _edge_directions(rows: _Rows, T: list) -> list[list]:
    """The extreme rays of the tangent cone ``{r : A_T r <= 0}`` at a vertex with tight rows T."""
    d = rows.d
    A_T = _submatrix(rows, T)
    if len(T) == d:                                           # simple vertex: the columns of -A_T^{-1}
        inv = A_T.inv()
        return [[-inv[i, k] for i in range(d)] for k in range(d)]
    seen, out = set(), []
    for S in combinations(range(len(T)), d - 1):
        r = _cross(fmpq_mat(d - 1, d, [A_T[i, j] for i in S for j in range(d)]), d)
        if not any(r):
            continue                                          # these d - 1 rows are dependent
        Ar = A_T * fmpq_mat(d, 1, r)
        vals = [Ar[i, 0] for i in range(len(T))]
        if all(v >= 0 for v in vals):
            r = [-v for v in r]
        elif not all(v <= 0 for v in vals):
            continue                                          # r leaves the cone both ways: not a ray
        key = _direction_key(r)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def exact_vertices(A: Sequence[Sequence], b: Sequence, start: Sequence) -> ExactVertices:
    """Every vertex of ``{x : A x <= b}`` (exact rows, fmpq), found by walking the vertex graph
    from the exact point ``start`` inside it."""
    d = len(start)
    rows = _Rows(fmpq_mat(len(b), d, [v for a in A for v in a]) if len(b) else fmpq_mat(0, d), list(b), d)
    if len(b) == 0 or exact.rank(rows.A) < d:
        return ExactVertices([], [], False)                   # the rows leave a line free
    first = _first_vertex(rows, start)
    if first is None:
        return ExactVertices([], [], False)
    index = {first[0]: 0}
    points, tights, queue = [first[0]], [_tight(first[1])], [(first[0], first[1])]
    bounded = True
    while queue:
        v, slack = queue.pop()
        T = sorted(_tight(slack))
        for r in _edge_directions(rows, T):
            t = _ratio_step(rows, slack, frozenset(T), r)
            if t is None:
                bounded = False
                continue
            w = tuple(vi + t * ri for vi, ri in zip(v, r))
            if w not in index:
                index[w] = len(points)
                w_slack = _slacks(rows, w)
                points.append(w)
                tights.append(_tight(w_slack))
                queue.append((w, w_slack))
    return ExactVertices(points, tights, bounded)


def _facets_of_face(face: frozenset, tight: list[frozenset]) -> list[frozenset]:
    """The facets of a face (a set of vertex indices) as vertex sets: the inclusion-maximal proper
    nonempty sets of its vertices that share one more tight row."""
    rows = set().union(*(tight[v] for v in face))
    cands = {frozenset(v for v in face if j in tight[v]) for j in rows}
    cands = {G for G in cands if G and G != face}
    return [G for G in cands if not any(G < H for H in cands)]


def _pulling_simplices(face: frozenset, dim: int, tight: list[frozenset], memo: dict) -> list[tuple]:
    """A triangulation of ``face`` (dimension ``dim``) by pulling its smallest vertex."""
    if face in memo:
        return memo[face]
    if dim == 0:
        if len(face) != 1:
            raise AssertionError("a 0-face with several vertices: the tight sets are inconsistent")
        out = [tuple(face)]
    else:
        apex = min(face)
        out = [(apex,) + s for G in _facets_of_face(face, tight) if apex not in G
               for s in _pulling_simplices(G, dim - 1, tight, memo)]
    memo[face] = out
    return out


def exact_volume(vertices: ExactVertices) -> Optional[fmpq]:
    """The exact volume of a bounded full-dimensional polyhedron from its exact vertices and
    tight sets; None when it is unbounded."""
    if not vertices.bounded or not vertices.points:
        return None
    d = len(vertices.points[0])
    total = exact.ZERO
    for simplex in _pulling_simplices(frozenset(range(len(vertices.points))), d, vertices.tight, {}):
        p0 = vertices.points[simplex[0]]
        M = fmpq_mat(d, d, [vertices.points[k][j] - p0[j] for k in simplex[1:] for j in range(d)])
        total += abs(M.det())
    return total / factorial(d)


def to_float(v: fmpq) -> float:
    """The float64 nearest to an exact rational (Python's int division rounds correctly)."""
    return int(v.p) / int(v.q)
