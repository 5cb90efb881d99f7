"""Certified-float geometry read off the vertex path (``--geometry``), against the exact path.

The oracle is the exact geometry (:func:`lrenum.geometry.geometry_of`: rational vertices, exact
volumes, facets proven by the exact simplex, neighbours by exact probes); ball arithmetic is
checked against rationals; closed forms for the arrangement's adjacency; degenerate networks
must come out the same (there the fast path hands regions to the exact path).
"""

import json
import shutil
from fractions import Fraction
from math import comb

import h5py
import numpy as np
import pytest

import lrenum
from lrenum.certify import balls
from lrenum.cli import main
from lrenum.geometry import geometry_of
from lrenum.geometry.collect import GeometrySink
from nets import random_net


def _fast_and_exact(net, dom):
    sink = GeometrySink(net, dom)
    res = lrenum.enumerate_regions(net, dom, lrenum.Settings.build().replace(final_vertices=True), sink=sink,
                                   collect=True)
    return res, sink.assemble(res.patterns), geometry_of(net, dom, res.patterns)


def _rational(text):
    """An exact volume string as a Fraction (through FLINT: Python caps int() at 4,300 digits)."""
    from lrenum.lp.exact import parse_rational
    v = parse_rational(text)
    return Fraction(int(v.p), int(v.q))


def _facets(geo, i):
    s, e = geo["offsets"][i], geo["offsets"][i + 1]
    return sorted(geo["neuron"][s:e].tolist())


def _vertices(geo, i):
    s, e = geo["vertex_offsets"][i], geo["vertex_offsets"][i + 1]
    rows = geo["vertex_index"][s:e] if "vertex_index" in geo else np.arange(s, e)    # shared vertices: by index
    return geo["vertices"][rows], (geo["vertex_radius"][rows] if "vertex_radius" in geo else None)


@pytest.mark.parametrize("d,widths,seed", [(2, [6, 4], 0), (3, [5, 4], 1), (4, [6, 3], 2), (5, [5, 3], 3),
                                           (6, [6], 4)])
def test_fast_geometry_equals_exact_geometry(d, widths, seed):
    rng = np.random.default_rng(seed)
    net = lrenum.make_network(*random_net(rng, d, widths))
    dom = lrenum.box_domain(-1, 1, d)
    res, fast, ex = _fast_and_exact(net, dom)
    n = len(res.patterns)
    assert fast["fast_regions"] == n and fast["exact_regions"] == 0     # general position: no exact fallback
    assert fast["unresolved_neighbours"] == 0 == ex["unresolved_neighbours"]
    assert np.array_equal(fast["edges"], ex["edges"])                    # the same adjacency graph
    exact_volumes = [_rational(s) for s in ex["volume_exact"]]
    for i in range(n):
        assert _facets(fast, i) == _facets(ex, i)
        s, e = fast["offsets"][i], fast["offsets"][i + 1]
        s2 = ex["offsets"][i]
        order = np.argsort(fast["neuron"][s:e], kind="stable")
        order2 = np.argsort(ex["neuron"][s2:s2 + e - s], kind="stable")
        assert np.allclose(fast["A"][s:e][order], ex["A"][s2:s2 + e - s][order2], atol=1e-12)
        # volumes within their certified bounds of the exact ones (compared in rationals)
        err = abs(Fraction(float(fast["volume"][i])) - exact_volumes[i])
        assert err <= Fraction(float(fast["volume_bound"][i]))
        assert fast["volume_bound"][i] < 1e-4 * fast["volume"][i]        # and useful
        # vertices: one to one, each within its radius of the exact vertex
        X, rad = _vertices(fast, i)
        Xe, _ = _vertices(ex, i)
        assert len(X) == len(Xe)
        dist = np.abs(X[:, None, :] - Xe[None, :, :]).max(axis=2)
        nearest = dist.argmin(axis=1)
        assert len(set(nearest.tolist())) == len(X)
        assert np.all(dist[np.arange(len(X)), nearest] <= rad + 4e-16 * (1 + np.abs(Xe[nearest]).max(axis=1)))
    assert abs(fast["volume"].sum() - 2 ** d) <= fast["volume_bound"].sum() + 1e-12
    assert len(fast["vertices"]) < len(fast["vertex_index"])      # vertices shared by the regions around them


@pytest.mark.parametrize("d,n,seed", [(2, 7, 5), (3, 6, 6)])
def test_arrangement_adjacency_closed_form(d, n, seed):
    """n hyperplanes in general position with every crossing inside the box: each hyperplane is
    cut into sum_{i<d} C(n-1, i) facets, each shared by two regions."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(n, d))
    W /= np.linalg.norm(W, axis=1, keepdims=True)
    b = rng.uniform(-0.05, 0.05, size=n)                      # all through a small ball around 0
    net = lrenum.make_network([W, np.ones((1, n))], [b, np.zeros(1)])
    dom = lrenum.box_domain(-10, 10, d)
    sink = GeometrySink(net, dom)
    res = lrenum.enumerate_regions(net, dom, lrenum.Settings.build().replace(final_vertices=True), sink=sink,
                                   collect=True)
    geo = sink.assemble(res.patterns)
    assert len(res.patterns) == sum(comb(n, i) for i in range(d + 1))
    assert len(geo["edges"]) == n * sum(comb(n - 1, i) for i in range(d))
    assert geo["exact_regions"] == 0
    assert abs(geo["volume"].sum() - 20.0 ** d) <= geo["volume_bound"].sum() + 1e-9


@pytest.mark.parametrize("case", ["duplicate", "through_centre"])
def test_degenerate_networks_match_the_exact_path(case):
    """Hyperplanes through one point, a duplicated neuron: the vertex sets there are not simple
    (or the flipped pattern is not a region), so those regions go to the exact path; the file's
    geometry is the exact path's all the same."""
    rng = np.random.default_rng(7)
    if case == "duplicate":
        Ws, bs = random_net(rng, 3, [5, 4])
        Ws[0], bs[0] = np.r_[Ws[0], Ws[0][:1]], np.r_[bs[0], bs[0][:1]]
        Ws[1] = np.c_[Ws[1], rng.normal(size=(Ws[1].shape[0], 1))]
    else:
        W = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1], [1, -1, 0.5]], float)
        Ws, bs = [W, rng.normal(size=(3, 5)), np.ones((1, 3))], [np.zeros(5), rng.normal(size=3) * 0.3, np.zeros(1)]
    net = lrenum.make_network(Ws, bs)
    dom = lrenum.box_domain(-1, 1, 3)
    res, fast, ex = _fast_and_exact(net, dom)
    assert fast["exact_regions"] > 0
    if case == "duplicate":                 # the regions away from the duplicated hyperplane stay fast
        assert fast["fast_regions"] > 0
    assert np.array_equal(fast["edges"], ex["edges"])
    for i in range(len(res.patterns)):
        assert _facets(fast, i) == _facets(ex, i)
        assert abs(Fraction(float(fast["volume"][i])) - _rational(ex["volume_exact"][i])) <= \
            Fraction(float(fast["volume_bound"][i]))


def test_balls_contain_the_exact_results():
    """Every ball operation contains the exact result of exact inputs drawn inside its inputs."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        m = rng.normal(size=2) * 10.0 ** rng.integers(-8, 8, size=2)
        r = np.abs(m) * 10.0 ** rng.integers(-16, -2, size=2)
        a, b = balls.Ball(m[0:1], r[0:1]), balls.Ball(m[1:2], r[1:2])
        xa = Fraction(float(m[0])) + Fraction(float(r[0])) * Fraction(int(rng.integers(-8, 9)), 8)
        xb = Fraction(float(m[1])) + Fraction(float(r[1])) * Fraction(int(rng.integers(-8, 9)), 8)
        for op, exact in ((balls.add, xa + xb), (balls.sub, xa - xb), (balls.mul, xa * xb)):
            out = op(a, b)
            assert abs(Fraction(float(out.mid[0])) - exact) <= Fraction(float(out.rad[0]))
        inv = balls.recip(b)
        if np.isfinite(inv.rad[0]):
            assert abs(Fraction(float(inv.mid[0])) - 1 / xb) <= Fraction(float(inv.rad[0]))
        else:
            assert abs(m[1]) <= 2 * r[1]
    M = rng.normal(size=(30, 5, 5))
    D = balls.det(balls.exact(M))
    for k in range(30):
        from flint import fmpq_mat, fmpq
        exact = fmpq_mat(5, 5, [fmpq(*Fraction(float(v)).as_integer_ratio()) for v in M[k].ravel()]).det()
        assert abs(Fraction(float(D.mid[k])) - Fraction(int(exact.p), int(exact.q))) <= Fraction(float(D.rad[k]))


def _cli_file(tmp_path, seed=11, d=2, widths=(4, 4), *extra):
    rng = np.random.default_rng(seed)
    net = lrenum.make_network(*random_net(rng, d, list(widths)))
    path, out = str(tmp_path / "net.npz"), str(tmp_path / "r.h5")
    lrenum.save_npz(path, net)
    assert main(["enumerate", path, "-o", out, "-q", "--geometry", *extra]) == 0
    return path, out


def test_cli_float_geometry_verifies_and_tampering_is_caught(tmp_path, capsys):
    path, out = _cli_file(tmp_path, 11, 3, (5, 4))
    capsys.readouterr()
    assert main(["verify", out, path, "-q", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["volumes_tile_domain"] is True and report["adjacency_consistent"] is True
    with lrenum.open(out) as f:
        assert f.geometry_mode == "float"
        vol, bound = f.volumes(), f.volume_bounds()
        assert np.all(bound < 1e-9) and abs(vol.sum() - 8) < 1e-9
        assert f.adjacency().nnz == 2 * len(f.f["geometry/edges"])
        assert len(f.vertex_radii(0)) == len(f.vertices(0))
        with pytest.raises(lrenum.InputError, match="--geometry exact"):
            lrenum.geometry.region_volumes(f, exact=True)
    # a volume off by more than its bound, and an edge removed: verify refuses each
    for name, change in (("volume", lambda v: v * np.r_[1.001, np.ones(len(v) - 1)]),
                         ("edges", lambda e: e[1:])):
        bad = str(tmp_path / f"bad_{name}.h5")
        shutil.copyfile(out, bad)
        with h5py.File(bad, "r+") as h:
            v = change(h[f"geometry/{name}"][:])
            del h[f"geometry/{name}"]
            h[f"geometry/{name}"] = v
        assert main(["verify", bad, path, "-q"]) == 1
        assert ("add up" if name == "volume" else "no neighbour") in capsys.readouterr().err


def test_cli_exact_geometry_mode(tmp_path, capsys):
    path, out = _cli_file(tmp_path, 12, 2, (4, 3), "exact")
    capsys.readouterr()
    assert main(["verify", out, path, "-q", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["volumes_tile_domain"] is True
    with lrenum.open(out) as f:
        assert f.geometry_mode == "exact"
        assert sum(lrenum.geometry.region_volumes(f, exact=True)) == 4
        assert np.all(f.volume_bounds() <= 1.2e-16 * f.volumes())


def test_add_geometry_to_an_existing_file_enumerates_again(tmp_path, capsys):
    """A file written without --geometry gets float geometry later (the regions are walked again
    in memory for their vertex sets) and verifies."""
    rng = np.random.default_rng(13)
    net = lrenum.make_network(*random_net(rng, 3, [4, 3]))
    path, out = str(tmp_path / "net.npz"), str(tmp_path / "r.h5")
    lrenum.save_npz(path, net)
    assert main(["enumerate", path, "-o", out, "-q"]) == 0
    summary = lrenum.geometry.add_geometry(out, net, lrenum.box_domain(-1, 1, 3))
    assert summary["mode"] == "float" and summary["exact_regions"] == 0
    capsys.readouterr()
    assert main(["verify", out, path, "-q"]) == 0


def test_regions_from_the_lp_path_are_proven_from_qhull_proposals():
    """With the vertex path off, no region arrives with a vertex set: qhull proposes one per
    region and the same proof (certified solves, strict rows, closure under edges) accepts it."""
    rng = np.random.default_rng(21)
    net = lrenum.make_network(*random_net(rng, 3, [5, 4]))
    dom = lrenum.box_domain(-1, 1, 3)
    sink = GeometrySink(net, dom)
    res = lrenum.enumerate_regions(net, dom, lrenum.Settings.build().replace(final_vertices=True, vertex_path=False),
                                   sink=sink, collect=True)
    fast = sink.assemble(res.patterns)
    ex = geometry_of(net, dom, res.patterns)
    assert fast["fast_regions"] == len(res.patterns)
    assert np.array_equal(fast["edges"], ex["edges"])
    assert all(_facets(fast, i) == _facets(ex, i) for i in range(len(res.patterns)))


def test_an_incomplete_or_wrong_vertex_set_is_not_accepted():
    """The proof must fail when a vertex is missing (an edge ends nowhere), when a vertex is
    listed twice, and when a vertex is moved off its rows beyond its radius (a row no longer
    strict, or the wrong point)."""
    from lrenum.core.state import Regions
    from lrenum.core.vertex_sets import VertexSets
    from lrenum.geometry.simple_polytopes import batch_geometry
    rng = np.random.default_rng(22)
    net = lrenum.make_network(*random_net(rng, 3, [5, 4]))
    dom = lrenum.box_domain(-1, 1, 3)
    out = []
    lrenum.enumerate_regions(net, dom, lrenum.Settings.build().replace(final_vertices=True),
                             sink=lrenum.LayerCallback(lambda l, b: out.append(b) if l == 2 else None))
    B = Regions.concat(out)
    lo, hi = dom.box
    V = B.vertices
    assert batch_geometry(V, B.rows, lo, hi).done.all()
    first = int(V.count[0])
    keep = np.ones(len(V.x), bool)
    keep[0] = False                                            # region 0 loses a vertex
    count = V.count.copy()
    count[0] -= 1
    missing = VertexSets(V.x[keep], V.tight[keep], count, V.radius[keep], V.proven)
    g = batch_geometry(missing, B.rows, lo, hi)
    assert not g.done[0] and g.done[1:].all()
    twice = np.r_[0, np.arange(len(V.x))]                      # region 0 lists its first vertex twice
    count = V.count.copy()
    count[0] += 1
    g = batch_geometry(VertexSets(V.x[twice], V.tight[twice], count, V.radius[twice], V.proven), B.rows, lo, hi)
    assert not g.done[0] and g.done[1:].all()
    tight = V.tight.copy()                                     # region 0's first vertex claims another vertex's rows
    tight[0] = V.tight[first - 1] if first > 1 else tight[0]
    g = batch_geometry(VertexSets(V.x, tight, V.count, V.radius, V.proven), B.rows, lo, hi)
    assert not g.done[0]


@pytest.mark.parametrize("d,widths,seed", [(2, [6, 4], 30), (3, [5, 4], 31), (5, [5, 3], 32)])
def test_exact_mode_from_vertex_sets_equals_the_exact_walk(d, widths, seed):
    """--geometry exact computes vertices by rational solves of the proven tight rows and volumes
    by Lawrence's formula in rationals: the same numbers, exactly, as the vertex walk and the
    pulling triangulation."""
    rng = np.random.default_rng(seed)
    net = lrenum.make_network(*random_net(rng, d, widths))
    dom = lrenum.box_domain(-1, 1, d)
    sink = GeometrySink(net, dom)
    res = lrenum.enumerate_regions(net, dom, lrenum.Settings.build().replace(final_vertices=True), sink=sink,
                                   collect=True)
    fast = sink.assemble(res.patterns, exact=True)
    ex = geometry_of(net, dom, res.patterns)
    assert fast["exact_regions"] == 0 and "vertex_index" not in fast and "volume_bound" not in fast
    assert [_rational(v) for v in fast["volume_exact"]] == [_rational(v) for v in ex["volume_exact"]]
    assert np.array_equal(fast["volume"], ex["volume"]) and np.array_equal(fast["edges"], ex["edges"])
    for i in range(len(res.patterns)):
        X, _ = _vertices(fast, i)
        Xe, _ = _vertices(ex, i)
        assert sorted(map(tuple, X)) == sorted(map(tuple, Xe))                  # the same nearest float64s
        s, e = fast["offsets"][i], fast["offsets"][i + 1]
        mine = sorted(zip(fast["neuron"][s:e], map(tuple, fast["A"][s:e]), fast["b"][s:e]))
        s, e = ex["offsets"][i], ex["offsets"][i + 1]
        assert mine == sorted(zip(ex["neuron"][s:e], map(tuple, ex["A"][s:e]), ex["b"][s:e]))


def test_layer_graph_from_the_final_graph_matches_the_first_layer_alone(tmp_path):
    """experiments/analyse_regions derives each layer's volumes and adjacency from the final
    regions' geometry; for layer 1 the oracle is the first layer enumerated on its own."""
    import os
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "experiments"))
    from analyse_regions import layer_volumes_and_degrees
    rng = np.random.default_rng(40)
    Ws, bs = random_net(rng, 3, [6, 4])
    nets = {"two": lrenum.make_network(Ws, bs),
            "first": lrenum.make_network([Ws[0], np.ones((1, 6))], [bs[0], np.zeros(1)])}
    files = {}
    for name, net in nets.items():
        path, out = str(tmp_path / f"{name}.npz"), str(tmp_path / f"{name}.h5")
        lrenum.save_npz(path, net)
        assert main(["enumerate", path, "-o", out, "-q", "--geometry"]) == 0
        files[name] = out
    with lrenum.open(files["two"]) as f, lrenum.open(files["first"]) as g:
        volumes, degrees = layer_volumes_and_degrees(f, f.volumes())
        order = {p.tobytes(): i for i, p in enumerate(g.final()["pattern"])}
        mine = [order[p.tobytes()] for p in f.layer(1)["pattern"]]
        alone = np.asarray(g.adjacency().sum(axis=1)).ravel()
        assert np.array_equal(degrees[1], alone[mine])
        assert np.allclose(volumes[1], g.volumes()[mine], rtol=1e-9)
        assert np.array_equal(degrees[2], np.asarray(f.adjacency().sum(axis=1)).ravel())


def test_files_written_before_the_modes_still_read(tmp_path, capsys):
    """A geometry group from before this format (A and b per row, exact volumes, no mode, no
    radii or bounds) still reads: polytope, vertices with half-ulp radii, volumes and bounds."""
    path, out = _cli_file(tmp_path, 14, 2, (4, 3), "exact")
    with h5py.File(out, "r+") as h:
        del h["geometry"].attrs["mode"]
    with lrenum.open(out) as f:
        assert f.geometry_mode == "exact"
        A, b, neurons = f.polytope(0)
        assert len(A) == len(b) == len(neurons) >= 3
        assert np.all(f.vertex_radii(0) <= 2.3e-16) and len(f.vertex_radii(0)) == len(f.vertices(0))
        assert abs(f.volumes().sum() - 4) < 1e-12 and np.all(f.volume_bounds() < 1e-15)
    capsys.readouterr()
    assert main(["verify", out, path, "-q"]) == 0


@pytest.mark.parametrize("kind", ["leaky", "residual"])
def test_leaky_and_carried_units_match_the_exact_path(kind):
    """Leaky slopes bend the deeper rows differently, and carried (linear) units give no rows:
    the fast geometry still equals the exact one, in both modes."""
    rng = np.random.default_rng(50)
    if kind == "leaky":
        Ws, bs = random_net(rng, 3, [5, 4])
        net = lrenum.make_network(Ws, bs, slopes=[0.1, 0.3])
    else:
        layers = [{"W": rng.normal(size=(4, 3)), "b": rng.normal(size=4) * 0.5},
                  {"W": rng.normal(size=(4, 4)), "b": rng.normal(size=4) * 0.5},
                  {"W": rng.normal(size=(3, 4)), "b": rng.normal(size=3) * 0.5, "skip": {1: rng.normal(size=(3, 4))}}]
        net = lrenum.residual_network(layers, {"W": rng.normal(size=(1, 3)), "b": np.zeros(1)})
        assert net.has_linear
    dom = lrenum.box_domain(-1, 1, 3)
    res, fast, ex = _fast_and_exact(net, dom)
    assert fast["exact_regions"] == 0
    assert np.array_equal(fast["edges"], ex["edges"])
    for i in range(len(res.patterns)):
        assert _facets(fast, i) == _facets(ex, i)
        assert abs(Fraction(float(fast["volume"][i])) - _rational(ex["volume_exact"][i])) <= \
            Fraction(float(fast["volume_bound"][i]))


def test_sharing_stays_exact_when_every_hash_collides(monkeypatch):
    """Hashes only propose: with every hash equal, pattern lookups still find exactly the right
    region, facet rows are shared only when equal up to sign, and a merged vertex's radius
    covers every copy."""
    from lrenum.geometry import sharing
    rng = np.random.default_rng(60)
    packed = np.unique(rng.integers(0, 256, size=(200, 3), dtype=np.uint8), axis=0)
    queries = np.concatenate([packed[::3], rng.integers(0, 256, size=(50, 3), dtype=np.uint8)])
    honest = sharing.PatternLookup(packed).find(queries)
    A = rng.normal(size=(30, 3))
    b = rng.normal(size=30)
    A, b = np.concatenate([A, -A[:10]]), np.concatenate([b, -b[:10]])      # 10 rows negated: shared planes
    assert len(sharing.shared_planes(A, b)[1]) == 30
    monkeypatch.setattr(sharing, "hash_columns", lambda words: np.zeros(words.shape[0], np.uint64))
    assert np.array_equal(sharing.PatternLookup(packed).find(queries), honest)
    assert np.all(honest[:len(packed[::3])] == np.arange(0, len(packed), 3))
    PA, Pb, which = sharing.shared_planes(A, b)           # colliding: less sharing, every row still exact
    sign = np.sign(which)[:, None]
    assert np.array_equal(PA[np.abs(which) - 1] * sign, A) and np.array_equal(Pb[np.abs(which) - 1] * sign[:, 0], b)
    X = rng.normal(size=(40, 3))
    rad = np.full(40, 1e-12)
    V, R, idx = sharing.shared_vertices(X, rad, np.zeros(40, np.uint64))   # one key for all: one vertex
    assert len(V) == 1 and np.all(np.abs(X - V[idx]).max(axis=1) + rad <= R[idx])
