"""Region geometry: irredundant H-representations (facets) and the adjacency graph of regions.

For a region with exact rows ``a_i . x < b_i`` (the domain's rows, then one per neuron), row j
is a *facet* exactly when some point violates row j while satisfying every other row strictly;
otherwise it is redundant. A float LP (HiGHS) proposes such a point, just across the facet's
deepest point; it is checked in exact rationals. When the proposal fails, the exact simplex
decides (:func:`lrenum.lp.exact.has_interior`), so every facet and every "redundant" is proven.

Adjacency: across every neuron facet, the point just beyond it lies in the neighbouring region;
its pattern is computed exactly (rational forward pass) and looked up among the file's regions.
Rows that are the same hyperplane (duplicated neurons) form one facet, listed once per neuron.

Vertices and volumes (d <= VERTEX_MAX_DIM): exact, from the facets' exact rows
(:mod:`lrenum.geometry.polyhedron`), started from a proven interior probe.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np
from flint import fmpq_mat

from ..certify.exact_net import ExactNetwork
from ..core.frame import Frame
from ..errors import InputError
from ..lp import exact
from ..lp.problem import norm2
from ..model.domain import Domain
from ..model.network import Network
from . import polyhedron

STEP_REL = 1e-3       # probes step this far to either side of a facet, relative to its room (the LP path: the facet's depth t; the vertex path: the nearest other row along the normal)
UNBOUNDED_BOX = 1e6   # R^d: LPs are solved inside this box (regions are unbounded; facets are not affected)
VERTEX_MAX_DIM = 6    # exact vertices and volumes up to this input dimension (vertex counts grow like n^(d/2))


def _key(a: list, b) -> tuple:
    """Exact key of the hyperplane ``a . x = b`` up to positive scaling."""
    lead = next(abs(v) for v in a if v)
    return tuple(v / lead for v in a) + (b / lead,)


def _grouped_rows(exact_net: ExactNetwork, net: Network, bits: np.ndarray) -> list[list]:
    """The region's exact rows, one per hyperplane: [[label, a, b, labels on it]] (a row that is
    constant on the region gives none; duplicated neurons share one entry)."""
    signs = [np.where(s, 1, -1) for s in net.layer_slices(bits)]
    rows = exact_net.region_rows(signs)
    if rows is None:
        raise InputError("the pattern is not a region (its exact rows are contradictory)")
    n_dom = len(exact_net.dom_rows)
    labels = [-1 - k for k in range(n_dom)] + list(range(len(rows) - n_dom))
    groups: dict = {}
    for lab, (a, b) in zip(labels, rows):
        if any(a):
            groups.setdefault(_key(a, b), [lab, a, b, []])[3].append(lab)
    return list(groups.values())


def _row_matrix(uniq: list, d: int) -> fmpq_mat:
    return fmpq_mat(len(uniq), d, [v for g in uniq for v in g[1]])


def _values(A: fmpq_mat, x: list) -> list:
    """Exact ``A x`` as a list (FLINT does the products in C)."""
    Ax = A * fmpq_mat(len(x), 1, list(x))
    return [Ax[i, 0] for i in range(A.nrows())]


def _float_rows(uniq: list, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Float64 copies of the exact rows (A, b), for the float LPs that only propose."""
    return (np.array([[float(v) for v in g[1]] for g in uniq]).reshape(-1, d), np.array([float(g[2]) for g in uniq]))


def _probe_ok(uniq: list, A: fmpq_mat, j: int, x_in: np.ndarray, x_out: np.ndarray) -> bool:
    """Exactly: x_out violates row j only, x_in satisfies every row strictly."""
    v_in, v_out = _values(A, exact.q_vector(x_in)), _values(A, exact.q_vector(x_out))
    if not (v_out[j] > uniq[j][2] and v_in[j] < uniq[j][2]):
        return False
    return all(v_in[k] < g[2] and v_out[k] < g[2] for k, g in enumerate(uniq) if k != j)


def _facet(uniq: list, j: int, probe) -> tuple:
    _, a_q, b_q, members = uniq[j]
    return (sorted(members), exact.to_float(a_q), float(b_q), _key(a_q, b_q), probe)


def _facets_by_lp(uniq: list, d: int, box) -> list[tuple]:
    """Each row decided by a float LP (its facet's deepest point, probes checked exactly), and by
    the exact simplex where the LP's answer is not proven."""
    from scipy.optimize import linprog

    A, bvec = _float_rows(uniq, d)
    norms = norm2(A)
    Aq = _row_matrix(uniq, d)
    lo, hi = box if box is not None else (np.full(d, -UNBOUNDED_BOX), np.full(d, UNBOUNDED_BOX))
    out = []
    for j, (_, a_q, b_q, _) in enumerate(uniq):
        others = [k for k in range(len(uniq)) if k != j]
        # deepest point of the facet: max t s.t. a_j x = b_j, a_i x + |a_i| t <= b_i
        res = linprog(np.r_[np.zeros(d), -1.0],
                      A_ub=np.c_[A[others], norms[others]] if others else None,
                      b_ub=bvec[others] if others else None,
                      A_eq=np.r_[A[j], 0.0][None, :], b_eq=[bvec[j]],
                      bounds=[(l, h) for l, h in zip(lo, hi)] + [(None, 1.0)], method="highs")
        probe = None
        if res.status == 0 and -res.fun > 0:
            p, t = res.x[:d], -res.fun
            step = STEP_REL * t * A[j] / norms[j]
            if _probe_ok(uniq, Aq, j, p - step, p + step):
                probe = (p - step, p + step)
        if probe is None:
            trial = [(uniq[k][1], uniq[k][2]) for k in others] + [([-v for v in a_q], -b_q)]
            has, _ = exact.has_interior(trial, d)
            if not has:
                continue            # redundant: proven exactly
        out.append(_facet(uniq, j, probe))
    return out


def _inner_point(uniq: list, d: int, box) -> list:
    """An exact point of the closed region: a float Chebyshev centre checked exactly, else the
    exact simplex's interior point."""
    from scipy.optimize import linprog

    A, bvec = _float_rows(uniq, d)
    lo, hi = box
    res = linprog(np.r_[np.zeros(d), -1.0], A_ub=np.c_[A, norm2(A)], b_ub=bvec,
                  bounds=[(l, h) for l, h in zip(lo, hi)] + [(None, 1.0)], method="highs")
    if res.status == 0:
        x = exact.q_vector(res.x[:d])
        if all(exact.dot(a, x) <= b for _, a, b, _ in uniq):
            return x
    return exact.has_interior([(g[1], g[2]) for g in uniq], d)[1]


def _facets_by_vertices(uniq: list, d: int, vx: polyhedron.ExactVertices) -> Optional[list[tuple]]:
    """Facets of a bounded region read off its exact vertices, without LPs: row j is a facet iff
    the vertices tight at j span a (d-1)-flat (a full-dimensional polytope is the intersection
    of its facets' halfspaces, so every other row is redundant). Probes sit on either side of the
    facet's vertex mean, which lies in the facet's relative interior, where every other row is
    strict. None when a probe fails its exact check after rounding (the LP path then decides)."""
    out = []
    A = _row_matrix(uniq, d)
    for j in range(len(uniq)):
        on = [vx.points[k] for k, t in enumerate(vx.tight) if j in t]
        if len(on) < d:
            continue
        p0 = on[0]
        diffs = fmpq_mat(len(on) - 1, d, [v[c] - p0[c] for v in on[1:] for c in range(d)]) if d > 1 else None
        if d > 1 and exact.rank(diffs) < d - 1:
            continue                                   # a lower face: redundant
        centre = [sum((v[c] for v in on), exact.ZERO) / len(on) for c in range(d)]
        a_j = uniq[j][1]
        step = None                                    # largest move along a_j that no other row notices
        for k, (rate, at_centre) in enumerate(zip(_values(A, a_j), _values(A, centre))):
            if k != j and rate:
                limit = (uniq[k][2] - at_centre) / abs(rate)
                step = limit if step is None or limit < step else step
        # a short step, like the LP path's: the neighbour's deeper rows (bent at this facet) are
        # not among this region's rows, so only a probe close to the facet lands in the neighbour
        step = exact.q(STEP_REL) * (exact.ONE / exact.dot(a_j, a_j) if step is None else step)
        x_in = exact.to_float([c - step * a for c, a in zip(centre, a_j)])
        x_out = exact.to_float([c + step * a for c, a in zip(centre, a_j)])
        if not _probe_ok(uniq, A, j, x_in, x_out):
            return None
        out.append(_facet(uniq, j, (x_in, x_out)))
    return out


def region_geometry(exact_net: ExactNetwork, net: Network, bits: np.ndarray, box, with_vertices: bool,
                    facets_by: str = "auto") -> tuple[list[tuple], Optional[polyhedron.ExactVertices]]:
    """Facets of the region with full pattern ``bits`` ([(neurons, a, b, key, probes or None)]) and,
    with ``with_vertices``, its exact vertices.

    ``neurons`` lists the flat neuron indices whose hyperplane is this facet (-1 - k for domain
    row k); a, b are float64 copies of the exact row, ``key`` its exact hyperplane; ``probes`` is
    (inside, beyond): two points at either side of the facet, proven to satisfy every other row
    strictly (None when only the exact path found the facet). On a bounded domain with vertices
    asked for, the facets come from the exact vertices of all rows (no LP per row), unless
    ``facets_by="lp"``.
    """
    d = net.input_dim
    uniq = _grouped_rows(exact_net, net, bits)
    if with_vertices and box is not None and facets_by != "lp":
        rows = [g[1] for g in uniq], [g[2] for g in uniq]
        vx = polyhedron.exact_vertices(*rows, _inner_point(uniq, d, box))
        facets = _facets_by_vertices(uniq, d, vx)
        if facets is not None:
            return facets, vx
        return _facets_by_lp(uniq, d, box), vx
    facets = _facets_by_lp(uniq, d, box)
    return facets, (region_vertices(facets, d) if with_vertices else None)


def region_facets(exact_net: ExactNetwork, net: Network, bits: np.ndarray, box) -> list[tuple]:
    """Facets of the region with full pattern ``bits`` (see :func:`region_geometry`), by LPs."""
    return region_geometry(exact_net, net, bits, box, with_vertices=False)[0]


def shares_facet(exact_net: ExactNetwork, net: Network, bits_k: np.ndarray, key: tuple, x_in: np.ndarray) -> bool:
    """Does region k (pattern ``bits_k``) hold ``x_in`` on the right side of every row but the
    facet's hyperplane? Then the segment from x_in (in region i) to the probe beyond (in region k)
    crosses only that hyperplane, at a point interior to a (d-1)-face both regions share."""
    signs = [np.where(s, 1, -1) for s in net.layer_slices(bits_k)]
    rows = exact_net.region_rows(signs)
    if rows is None:
        return False
    xq = exact.q_vector(x_in)
    flipped = tuple(-v for v in key)
    for a, b in rows:
        if not any(a):
            continue
        kk = _key(a, b)
        if kk == key or kk == flipped:
            continue
        if not exact.dot(a, xq) < b:
            return False
    return True


def exact_pattern(exact_net: ExactNetwork, net: Network, x: np.ndarray) -> Optional[np.ndarray]:
    """The activation pattern at ``x`` in exact arithmetic, or None if ``x`` lies on a hyperplane
    of a neuron that is not constant there (a probe that hit a boundary)."""
    h = [exact.q(v) for v in x]
    bits = []
    for l, W in enumerate(exact_net.W[:-1]):
        z = [sum((W[i, k] * h[k] for k in range(len(h)) if h[k] != 0), exact.ZERO) + exact_net.b[l][i, 0]
             for i in range(W.nrows())]
        lin = exact_net.linear[l]
        if any(v == 0 and not lin[i] for i, v in enumerate(z)):
            return None
        bits += [v > 0 and not lin[i] for i, v in enumerate(z)]
        h = [v if v > 0 else exact_net.slopes[l][i] * v for i, v in enumerate(z)]
    return np.array(bits, bool)


def region_vertices(facets: list[tuple], d: int) -> polyhedron.ExactVertices:
    """The exact vertices of a region from its facets (as :func:`region_facets` gives them)."""
    rows = [(list(key[:d]), key[d]) for _, _, _, key, _ in facets]
    start = next((exact.q_vector(probe[0]) for *_, probe in facets if probe is not None), None)
    if start is None:                       # every facet came from the exact path: ask it for a point
        _, start = exact.has_interior(rows, d)
    return polyhedron.exact_vertices([a for a, _ in rows], [b for _, b in rows], start)


def _neighbour(ex: ExactNetwork, net: Network, patterns: np.ndarray, index: dict, key: tuple, probe
               ) -> Optional[int]:
    """The region across a facet, proven by the facet's probes, or None."""
    nb = None if probe is None else exact_pattern(ex, net, probe[1])
    k = None if nb is None else index.get(np.packbits(nb).tobytes())
    if k is None or not shares_facet(ex, net, patterns[k], key, probe[0]):
        return None
    return k


class RegionRecord(NamedTuple):
    """One region's geometry as the file stores it: facet rows (one per neuron on the facet),
    neighbours, and at d <= 6 its vertices and volume."""

    A: list                  # facet rows, float64 copies of the exact rows
    b: list
    neuron: list             # the neuron of each row (-1 - k: the domain's row k)
    edges: list              # (i, k, neuron) with i < k
    vertices: list           # float64 nearest to each exact vertex (empty for d > 6)
    volume: Optional[object]  # exact volume (fmpq), or None (unbounded, or d > 6)
    unresolved: int          # facets whose neighbour could not be proven


def exact_region_record(ex: ExactNetwork, net: Network, domain: Domain, i: int, bits: np.ndarray,
                        patterns: np.ndarray, index: dict, facets_by: str = "auto") -> RegionRecord:
    """Region i's geometry in exact arithmetic (every facet, vertex and neighbour proven)."""
    with_vertices = net.input_dim <= VERTEX_MAX_DIM
    facets, vx = region_geometry(ex, net, bits, domain.box, with_vertices, facets_by)
    rec = RegionRecord([], [], [], [], [], None, 0)
    lp_probes = None
    if with_vertices:
        rec.vertices.extend([polyhedron.to_float(c) for c in p] for p in vx.points)
        rec = rec._replace(volume=polyhedron.exact_volume(vx))
    unresolved = 0
    for members, a, b, key, probe in facets:
        for lab in members:
            rec.A.append(a)
            rec.b.append(b)
            rec.neuron.append(lab)
        if members[0] < 0:
            continue                       # a domain facet: no neighbour
        k = _neighbour(ex, net, patterns, index, key, probe)
        if k is None and vx is not None and domain.box is not None:
            if lp_probes is None:          # the vertex path's probe missed: ask the LP path's
                lp_probes = {f[3]: f[4] for f in region_facets(ex, net, bits, domain.box)}
            k = _neighbour(ex, net, patterns, index, key, lp_probes.get(key))
        if k is None:
            unresolved += 1                # reported: never an unproven edge
            continue
        rec.edges.extend((min(i, k), max(i, k), lab) for lab in members if k != i)
    return rec._replace(unresolved=unresolved)


def pattern_index(patterns: np.ndarray) -> dict:
    """{packed pattern: region index} for the lookups of neighbours."""
    return {p.tobytes(): i for i, p in enumerate(np.packbits(patterns, axis=1))}


def geometry_of(net: Network, domain: Domain, patterns: np.ndarray, progress=None, facets_by: str = "auto") -> dict:
    """Facets of every region (ragged: offsets, A, b, neuron), the adjacency edge list
    (region, region, neuron), and for d <= VERTEX_MAX_DIM the exact vertices (ragged:
    vertex_offsets, vertices) and volumes (float64 nearest, and exact as "p/q" strings), for
    regions given by their full patterns (N, neurons), all in exact arithmetic.
    ``facets_by="lp"`` decides every row by the LP path even where vertices could (the
    benchmark's baseline)."""
    ex = Frame(net, domain).exact
    index = pattern_index(patterns)
    records = []
    for i, bits in enumerate(patterns):
        records.append(exact_region_record(ex, net, domain, i, bits, patterns, index, facets_by))
        if progress is not None:
            progress(i + 1, len(patterns))
    return records_to_arrays(records, net.input_dim)


def records_to_arrays(records: list[RegionRecord], d: int) -> dict:
    """The file's ragged arrays from per-region records (in region order)."""
    offsets = np.cumsum([0] + [len(r.b) for r in records])
    edges = sorted({e for r in records for e in r.edges})
    out = {"offsets": offsets.astype(np.int64),
           "A": np.array([a for r in records for a in r.A], float).reshape(-1, d),
           "b": np.array([b for r in records for b in r.b], float),
           "neuron": np.array([q for r in records for q in r.neuron], np.int64),
           "edges": np.array(edges, np.int64).reshape(-1, 3),
           "unresolved_neighbours": int(sum(r.unresolved for r in records))}
    if d <= VERTEX_MAX_DIM:
        vols = [r.volume for r in records]
        out.update(vertex_offsets=np.cumsum([0] + [len(r.vertices) for r in records]).astype(np.int64),
                   vertices=np.array([v for r in records for v in r.vertices], float).reshape(-1, d),
                   volume=np.array([np.inf if v is None else polyhedron.to_float(v) for v in vols], float),
                   volume_exact=np.array(["inf" if v is None else str(v) for v in vols], dtype=object))
    return out
