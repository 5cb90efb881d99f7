"""Region geometry: irredundant H-representations (facets) and the adjacency graph of regions.

For a region with exact rows ``a_i . x < b_i`` (the domain's rows, then one per neuron), row j
is a *facet* exactly when some point violates row j while satisfying every other row strictly;
otherwise it is redundant. A float LP (HiGHS) proposes such a point, just across the facet's
deepest point; it is checked in exact rationals. When the proposal fails, the exact simplex
decides (:func:`lrenum.lp.exact.has_interior`), so every facet and every "redundant" is proven.

Adjacency: across every neuron facet, the point just beyond it lies in the neighbouring region;
its pattern is computed exactly (rational forward pass) and looked up among the file's regions.
Rows that are the same hyperplane (duplicated neurons) form one facet, listed once per neuron.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .certify.exact_net import ExactNetwork
from .core.frame import Frame
from .errors import InputError
from .lp import exact
from .lp.problem import norm2
from .model.domain import Domain
from .model.network import Network

STEP_REL = 1e-3       # the probes step this far (relative to the facet's depth t) to either side of its deepest point
UNBOUNDED_BOX = 1e6   # R^d: LPs are solved inside this box (regions are unbounded; facets are not affected)


def _key(a: list, b) -> tuple:
    """Exact key of the hyperplane ``a . x = b`` up to positive scaling."""
    lead = next(abs(v) for v in a if v)
    return tuple(v / lead for v in a) + (b / lead,)


def region_facets(exact_net: ExactNetwork, net: Network, bits: np.ndarray, box) -> list[tuple]:
    """Facets of the region with full pattern ``bits``: [(neurons, a, b, key, probes or None)].

    ``neurons`` lists the flat neuron indices whose hyperplane is this facet (-1 - k for domain
    row k); a, b are float64 copies of the exact row, ``key`` its exact hyperplane; ``probes`` is
    (inside, beyond): two points at either side of the facet's deepest point, proven to satisfy
    every other row strictly (None when only the exact path found the facet).
    """
    from scipy.optimize import linprog

    d = net.input_dim
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
    uniq = list(groups.values())
    A = np.array([[float(v) for v in g[1]] for g in uniq]).reshape(-1, d)
    bvec = np.array([float(g[2]) for g in uniq])
    norms = norm2(A)
    lo, hi = box if box is not None else (np.full(d, -UNBOUNDED_BOX), np.full(d, UNBOUNDED_BOX))
    out = []
    for j, (_, a_q, b_q, members) in enumerate(uniq):
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
            x_in, x_out = p - step, p + step
            qi, qo = exact.q_vector(x_in), exact.q_vector(x_out)
            ok = exact.dot(a_q, qo) > b_q and exact.dot(a_q, qi) < b_q
            ok = ok and all(exact.dot(uniq[k][1], qq) < uniq[k][2] for k in others for qq in (qi, qo))
            if ok:
                probe = (x_in, x_out)
        if probe is None:
            trial = [(uniq[k][1], uniq[k][2]) for k in others] + [([-v for v in a_q], -b_q)]
            has, _ = exact.has_interior(trial, d)
            if not has:
                continue            # redundant: proven exactly
        out.append((sorted(members), A[j].copy(), float(bvec[j]), _key(a_q, b_q), probe))
    return out


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
        if any(v == 0 for v in z):
            return None
        bits += [v > 0 for v in z]
        h = [v if v > 0 else exact_net.slopes[l][i] * v for i, v in enumerate(z)]
    return np.array(bits, bool)


def geometry_of(net: Network, domain: Domain, patterns: np.ndarray, progress=None) -> dict:
    """Facets of every region (ragged: offsets, A, b, neuron) and the adjacency edge list
    (region, region, neuron), for regions given by their full patterns (N, neurons)."""
    frame = Frame(net, domain)
    ex = frame.exact
    index = {p.tobytes(): i for i, p in enumerate(np.packbits(patterns, axis=1))}
    offsets, As, bs, neurons, edges = [0], [], [], [], []
    unresolved = 0
    for i, bits in enumerate(patterns):
        facets = region_facets(ex, net, bits, domain.box)
        for members, a, b, key, probe in facets:
            for lab in members:
                As.append(a)
                bs.append(b)
                neurons.append(lab)
            if members[0] < 0:
                continue                       # a domain facet: no neighbour
            nb = None if probe is None else exact_pattern(ex, net, probe[1])
            k = None if nb is None else index.get(np.packbits(nb).tobytes())
            if k is None or not shares_facet(ex, net, patterns[k], key, probe[0]):
                unresolved += 1                # reported: never an unproven edge
                continue
            for lab in members:
                if i < k:
                    edges.append((i, k, lab))
                elif k < i:
                    edges.append((k, i, lab))
        offsets.append(len(As))
        if progress is not None:
            progress(i + 1, len(patterns))
    e = np.array(sorted(set(edges)), dtype=np.int64).reshape(-1, 3)
    return {"offsets": np.array(offsets, np.int64), "A": np.array(As, float).reshape(-1, net.input_dim),
            "b": np.array(bs, float), "neuron": np.array(neurons, np.int64), "edges": e,
            "unresolved_neighbours": unresolved}


def add_geometry(path: str, net: Network, domain: Domain, progress=None) -> dict:
    """Compute the geometry of every final region of a complete file and store it in the file
    (group ``geometry``, docs/format.md); written to a copy that replaces the file atomically."""
    import os
    import shutil

    import h5py

    from .datasets.reader import RegionFile

    with RegionFile(path) as f:
        if not f.complete:
            raise InputError(f"{path} is incomplete: finish it (--resume) before adding geometry")
        patterns = f.final()["pattern"]
    geo = geometry_of(net, domain, patterns, progress)
    tmp = path + ".geometry.tmp"
    shutil.copyfile(path, tmp)
    with h5py.File(tmp, "r+") as out:
        if "geometry" in out:
            del out["geometry"]
        g = out.create_group("geometry")
        for name in ("offsets", "A", "b", "neuron", "edges"):
            g.create_dataset(name, data=geo[name], compression="gzip", shuffle=True)
        g.attrs["unresolved_neighbours"] = geo["unresolved_neighbours"]
    os.replace(tmp, path)
    return {"facets": int(len(geo["b"])), "edges": int(len(geo["edges"])),
            "unresolved_neighbours": geo["unresolved_neighbours"]}


def region_volumes(f, max_dim: int = 6) -> np.ndarray:
    """Volumes of the final regions of a file written with ``--geometry`` (d <= ``max_dim``):
    the vertices of each H-representation (qhull's halfspace intersection from the witness) and
    their convex hull. Float64 geometry, not certified; unbounded regions get inf."""
    from scipy.spatial import ConvexHull, HalfspaceIntersection, QhullError

    d = f.input_dim
    if d > max_dim:
        raise InputError(f"exact-geometry volumes are for d <= {max_dim}; use monte_carlo_volumes for d = {d}")
    fin = f.final()
    out = np.full(f.regions, np.inf)
    for i in range(f.regions):
        A, b, _ = f.polytope(i)
        try:
            hs = HalfspaceIntersection(np.c_[A, -b], fin["witness"][i])
            out[i] = ConvexHull(hs.intersections).volume
        except (QhullError, ValueError):
            out[i] = np.inf if f.domain["kind"] == "unbounded" else np.nan
    return out


def monte_carlo_volumes(f, net: Network, domain: Domain, samples: int = 100_000, seed: int = 0):
    """(volume estimates (N,), standard errors (N,)) of the final regions of a box domain, from
    uniform samples: the share of samples whose pattern is the region's, times the box volume."""
    if domain.kind != "box":
        raise InputError("Monte Carlo volumes need a box domain")
    lo, hi = domain.box
    rng = np.random.default_rng(seed)
    X = lo + (hi - lo) * rng.random((samples, net.input_dim))
    pats = np.concatenate([z > 0 for z in net.pre_activations(X)], axis=1)
    index = {p.tobytes(): i for i, p in enumerate(np.packbits(f.final()["pattern"], axis=1))}
    hits = np.zeros(f.regions)
    for p in np.packbits(pats, axis=1):
        k = index.get(p.tobytes())
        if k is not None:
            hits[k] += 1
    share = hits / samples
    vol = float(np.prod(hi - lo))
    return share * vol, np.sqrt(share * (1 - share) / samples) * vol
