"""Region geometry: facets proven exactly, and the adjacency graph against closed forms."""

import json
from math import comb

import numpy as np
import pytest
from scipy.sparse.csgraph import connected_components

import lrenum
from lrenum.cli import main
from lrenum.geometry import geometry_of
from nets import random_net


def _one_layer(d, n, seed):
    rng = np.random.default_rng(seed)
    W, b = rng.normal(size=(n, d)), rng.normal(size=n)
    return lrenum.make_network([W, np.ones((1, n))], [b, np.zeros(1)])


@pytest.mark.parametrize("d,n,seed", [(2, 6, 0), (3, 5, 1)])
def test_one_layer_arrangement_facets_and_edges(d, n, seed):
    """In general position on R^d every hyperplane is cut by the others into
    sum_{i<d} C(n-1, i) pieces, each shared by exactly two regions: that many edges."""
    net = _one_layer(d, n, seed)
    dom = lrenum.unbounded_domain(d)
    res = lrenum.enumerate_regions(net, dom, collect=True)
    geo = geometry_of(net, dom, res.patterns)
    assert geo["unresolved_neighbours"] == 0          # every interior facet has its one neighbour
    assert len(geo["edges"]) == n * sum(comb(n - 1, i) for i in range(d))
    m = len(res.patterns)
    from scipy import sparse
    e = geo["edges"]
    adj = sparse.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(m, m))
    assert connected_components(adj + adj.T)[0] == 1
    # neighbours differ exactly in the facet's neuron (one layer)
    for i, k, j in e:
        diff = np.nonzero(res.patterns[i] != res.patterns[k])[0]
        assert list(diff) == [j]


def test_facets_describe_the_region(tmp_path, capsys):
    rng = np.random.default_rng(4)
    Ws, bs = random_net(rng, 2, [5, 4])
    path = str(tmp_path / "net.npz")
    net = lrenum.make_network(Ws, bs)
    lrenum.save_npz(path, net)
    out = str(tmp_path / "r.h5")
    assert main(["enumerate", path, "-o", out, "-q", "--geometry"]) == 0
    X = rng.uniform(-1, 1, size=(4000, 2))
    pats = np.concatenate([z > 0 for z in net.pre_activations(X)], axis=1)
    with lrenum.open(out) as f:
        fin = f.final()
        G = f.to_networkx() if _has_networkx() else None
        adj = f.adjacency()
        for i in range(f.regions):
            A, b, neurons = f.polytope(i)
            inside = np.all(X @ A.T < b, axis=1)
            mine = np.all(pats == fin["pattern"][i], axis=1)
            assert np.array_equal(inside[mine], np.ones(mine.sum(), bool))     # region inside its facets
            assert not np.any(inside & ~mine & np.all(X @ A.T < b - 1e-9, axis=1))   # and nothing else
            assert len(b) >= 3                                                 # a 2-D polygon
    assert connected_components(adj)[0] == 1
    if G is not None:
        assert G.number_of_nodes() == fin["pattern"].shape[0]


def _has_networkx():
    try:
        import networkx  # noqa: F401
        return True
    except ImportError:
        return False


def test_volumes_tile_the_box(tmp_path, capsys):
    from lrenum.geometry import monte_carlo_volumes, region_volumes
    rng = np.random.default_rng(9)
    Ws, bs = random_net(rng, 2, [5, 3])
    net = lrenum.make_network(Ws, bs)
    path = str(tmp_path / "net.npz")
    lrenum.save_npz(path, net)
    out = str(tmp_path / "r.h5")
    assert main(["enumerate", path, "-o", out, "-q", "--geometry"]) == 0
    with lrenum.open(out) as f:
        vol = region_volumes(f)
        mc, se = monte_carlo_volumes(f, net, lrenum.box_domain(-1, 1, 2), samples=20000)
    assert np.all(vol > 0) and abs(vol.sum() - 4.0) < 1e-9          # the regions tile [-1, 1]^2
    assert np.all(np.abs(mc - vol) <= 5 * se + 1e-3)


# --- exact vertices and volumes (lrenum.geometry.polyhedron) -----------------------------------

def _q_rows(A, b):
    from lrenum.lp.exact import q
    return [[q(v) for v in row] for row in np.asarray(A, float)], [q(v) for v in b]


def _poly(A, b, start):
    from lrenum.geometry import exact_vertices, exact_volume
    from lrenum.lp.exact import q_vector
    Aq, bq = _q_rows(A, b)
    vx = exact_vertices(Aq, bq, q_vector(start))
    return vx, exact_volume(vx)


def test_polyhedron_closed_forms():
    from fractions import Fraction
    cube = np.r_[np.eye(3), -np.eye(3)]
    vx, vol = _poly(cube, np.r_[np.ones(3), np.zeros(3)], [0.5, 0.5, 0.5])
    assert len(vx.points) == 8 and vx.bounded and Fraction(str(vol)) == 1
    # octahedron |x|+|y|+|z| <= 1: every vertex has 4 tight facets (degenerate at d = 3)
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], float)
    vx, vol = _poly(signs, np.ones(8), [0.1, 0.0, 0.2])
    assert len(vx.points) == 6 and all(len(t) == 4 for t in vx.tight)
    assert Fraction(str(vol)) == Fraction(4, 3)
    from lrenum.geometry.polyhedron import _edge_directions, _Rows
    from flint import fmpq_mat
    Aq, bq = _q_rows(signs, np.ones(8))
    rows = _Rows(fmpq_mat(8, 3, [v for a in Aq for v in a]), bq, 3)
    at_x = sorted(vx.tight[next(k for k, p in enumerate(vx.points) if p[0] == 1)])
    dirs = _edge_directions(rows, at_x)                  # the four edges from (1, 0, 0), none twice
    assert len(dirs) == 4 and all(float(r[0]) < 0 for r in dirs)
    # square pyramid: base [-1,1]^2 at z = 0, apex (0, 0, 3) on four facets; volume 4 * 3 / 3
    A = np.array([[0, 0, -1], [3, 0, 1], [-3, 0, 1], [0, 3, 1], [0, -3, 1]], float)
    vx, vol = _poly(A, np.array([0, 3, 3, 3, 3.0]), [0.1, 0.2, 0.5])
    assert len(vx.points) == 5 and Fraction(str(vol)) == 4
    # a 4-simplex in R^4 with a start point on its boundary: volume 1/4!
    A4 = np.r_[-np.eye(4), np.ones((1, 4))]
    vx, vol = _poly(A4, np.r_[np.zeros(4), 1.0], [0.0, 0.25, 0.25, 0.25])
    assert len(vx.points) == 5 and Fraction(str(vol)) == Fraction(1, 24)


def test_polyhedron_unbounded_and_lines():
    # a wedge: x >= 0, y >= 0: one vertex, unbounded
    vx, vol = _poly(-np.eye(2), np.zeros(2), [1.0, 1.0])
    assert vx.points and not vx.bounded and vol is None
    # a slab 0 <= x <= 1 in R^2 holds a line: no vertex at all
    vx, vol = _poly(np.array([[1.0, 0], [-1.0, 0]]), np.array([1.0, 0]), [0.5, 7.0])
    assert vx.points == [] and not vx.bounded and vol is None


def _exact_geometry(net, dom):
    res = lrenum.enumerate_regions(net, dom, collect=True)
    return res, geometry_of(net, dom, res.patterns)


@pytest.mark.parametrize("d,widths,seed", [(2, [5, 3], 9), (3, [4, 3], 2), (4, [4], 3)])
def test_exact_volumes_tile_the_box_exactly(d, widths, seed):
    """Exact volumes of the regions add up to the box's volume, as rationals: a region missed,
    a vertex missed or a wrong triangulation changes the sum. Floats agree with qhull."""
    from fractions import Fraction
    from scipy.spatial import ConvexHull, HalfspaceIntersection
    rng = np.random.default_rng(seed)
    net = lrenum.make_network(*random_net(rng, d, widths))
    res, geo = _exact_geometry(net, lrenum.box_domain(-1, 1, d))
    vols = [Fraction(s) for s in geo["volume_exact"]]
    assert sum(vols) == 2 ** d and all(v > 0 for v in vols)
    for i in range(len(res.patterns)):
        s, e = geo["offsets"][i], geo["offsets"][i + 1]
        hs = HalfspaceIntersection(np.c_[geo["A"][s:e], -geo["b"][s:e]], res.witnesses[i])
        assert abs(ConvexHull(hs.intersections).volume - geo["volume"][i]) < 1e-9
        V = geo["vertices"][geo["vertex_offsets"][i]:geo["vertex_offsets"][i + 1]]
        assert np.all(V @ geo["A"][s:e].T <= geo["b"][s:e] + 1e-12)       # on the region's closure
        assert len(ConvexHull(V).vertices) == len(V)                      # each one a vertex


def test_exact_vertices_degenerate_planes_through_the_center():
    """Four planes through the center of [-1, 1]^3 (three independent): 14 regions (the central
    arrangement's count), every one meeting the degenerate vertex at the origin; volumes add up to 8."""
    from fractions import Fraction
    W = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], float)
    net = lrenum.make_network([W, np.ones((1, 4))], [np.zeros(4), np.zeros(1)])
    res, geo = _exact_geometry(net, lrenum.box_domain(-1, 1, 3))
    assert len(res.patterns) == 14
    assert sum(Fraction(s) for s in geo["volume_exact"]) == 8
    for i in range(14):
        V = geo["vertices"][geo["vertex_offsets"][i]:geo["vertex_offsets"][i + 1]]
        assert np.any(np.all(V == 0, axis=1))                             # the origin is a vertex of each


@pytest.mark.parametrize("d,n,seed", [(2, 6, 0), (3, 5, 1)])
def test_bounded_regions_of_an_arrangement_closed_form(d, n, seed):
    """n hyperplanes in general position in R^d: C(n-1, d) bounded regions; in R^2 the
    distinct vertices are the C(n, 2) crossings."""
    net = _one_layer(d, n, seed)
    _, geo = _exact_geometry(net, lrenum.unbounded_domain(d))
    assert int(np.isfinite(geo["volume"]).sum()) == comb(n - 1, d)
    if d == 2:
        assert len(np.unique(geo["vertices"], axis=0)) == comb(n, 2)


def test_vertices_and_exact_volumes_in_the_file(tmp_path, capsys):
    from fractions import Fraction
    from lrenum.geometry import region_volumes
    from lrenum.geometry.volumes import _qhull_volumes
    rng = np.random.default_rng(11)
    net = lrenum.make_network(*random_net(rng, 2, [4, 4]))
    path, out = str(tmp_path / "net.npz"), str(tmp_path / "r.h5")
    lrenum.save_npz(path, net)
    assert main(["enumerate", path, "-o", out, "-q", "--geometry", "exact"]) == 0
    capsys.readouterr()
    assert main(["verify", out, path, "-q", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["volumes_tile_domain"] is True
    # a region's volume changed (as a lost region would change the sum): verify must refuse
    import shutil
    import h5py
    bad = str(tmp_path / "bad.h5")
    shutil.copyfile(out, bad)
    with h5py.File(bad, "r+") as h:
        v = h["geometry/volume_exact"][:]
        v[0] = str(Fraction(v[0].decode()) / 2).encode()
        del h["geometry/volume_exact"]
        h["geometry/volume_exact"] = v
    assert main(["verify", bad, path, "-q"]) == 1
    assert "exact volumes add up" in capsys.readouterr().err
    with lrenum.open(out) as f:
        exact_vols = region_volumes(f, exact=True)
        assert sum(exact_vols) == Fraction(4) and all(isinstance(v, Fraction) for v in exact_vols)
        assert np.allclose(region_volumes(f), _qhull_volumes(f), atol=1e-12)
        for i in range(f.regions):
            A, b, _ = f.polytope(i)
            assert len(f.vertices(i)) == len(b)                           # a polygon: as many vertices as edges


@pytest.mark.parametrize("duplicate", [False, True])
def test_facets_from_vertices_equal_facets_from_lps(duplicate):
    """On a box, facets are read off the exact vertices; the LP path (a float LP and the exact
    simplex per row) is an independent oracle for the same facet sets, neurons and adjacency."""
    from lrenum.core.frame import Frame
    from lrenum.geometry.facets import region_geometry
    rng = np.random.default_rng(5)
    Ws, bs = random_net(rng, 3, [5, 4])
    if duplicate:                                   # neuron 5 repeats neuron 0: one facet, two neurons
        Ws[0], bs[0] = np.r_[Ws[0], Ws[0][:1]], np.r_[bs[0], bs[0][:1]]
        Ws[1] = np.c_[Ws[1], rng.normal(size=(Ws[1].shape[0], 1))]
    net = lrenum.make_network(Ws, bs)
    dom = lrenum.box_domain(-1, 1, 3)
    res = lrenum.enumerate_regions(net, dom, collect=True)
    ex = Frame(net, dom).exact
    for bits in res.patterns:
        by_lp, _ = region_geometry(ex, net, bits, dom.box, with_vertices=False)
        by_vx, vx = region_geometry(ex, net, bits, dom.box, with_vertices=True)
        assert sorted((f[3], tuple(f[0])) for f in by_lp) == sorted((f[3], tuple(f[0])) for f in by_vx)
        assert all(f[4] is not None for f in by_vx) and vx.bounded
    geo = geometry_of(net, dom, res.patterns)
    assert geo["unresolved_neighbours"] == 0
    if duplicate:
        assert any(len(f[0]) == 2 for bits in res.patterns for f in region_geometry(ex, net, bits, dom.box, True)[0])
