"""Partition pictures: the slice is enumerated exactly and the polygons tile the domain."""

import numpy as np
import pytest

import lrenum
from lrenum.plot import region_polygons
from lrenum.model.slicing import slice_network
from nets import random_net


def area(poly):
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))


def test_polygons_tile_a_2d_domain_and_match_the_count():
    rng = np.random.default_rng(0)
    Ws, bs = random_net(rng, 2, [7, 7])
    net = lrenum.make_network(Ws, bs)
    dom = lrenum.box_domain(-1, 2, 2)
    polys, pats = region_polygons(net, dom)
    assert len(polys) == lrenum.enumerate_regions(net, dom).regions
    assert all(area(p) > 0 for p in polys)
    assert sum(area(p) for p in polys) == pytest.approx(9.0, rel=1e-9)


def test_slice_regions_agree_with_the_full_network_at_sampled_points():
    rng = np.random.default_rng(1)
    Ws, bs = random_net(rng, 4, [6, 5])
    net = lrenum.make_network(Ws, bs)
    dom = lrenum.box_domain(-1, 1, 4)
    p = np.array([0.1, -0.2, 0.3, 0.0])
    u, v = np.array([1.0, 0.5, 0, 0]), np.array([0, 0.2, 1.0, -0.5])
    sub, dom2, _ = slice_network(net, dom, p, u, v)
    polys, pats = region_polygons(sub, dom2)
    # the polygons tile the slice of the domain
    from lrenum.plot import clip_polygon
    lo, hi = dom2.box
    frame = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])
    for a, b in zip(dom2.A, dom2.b):
        frame = clip_polygon(frame, a, b)
    assert sum(area(q) for q in polys) == pytest.approx(area(frame), rel=1e-9)
    # every sampled point of the slice: the polygon containing it has the full network's pattern there
    st = rng.uniform(dom2.box[0], dom2.box[1], size=(400, 2))
    inside = np.all(st @ dom2.A.T < dom2.b, axis=1)
    X = p + st[inside, :1] * u + st[inside, 1:] * v
    truth = np.concatenate([z > 0 for z in net.pre_activations(X)], axis=1)
    from matplotlib.path import Path
    for s, want in zip(st[inside], truth):
        hits = [k for k, q in enumerate(polys) if len(q) >= 3 and Path(q).contains_point(s)]
        assert len(hits) <= 1 or all(np.array_equal(pats[h], want) for h in hits)
        if hits:
            assert np.array_equal(pats[hits[0]], want)


def test_plot_command_writes_an_image(tmp_path, capsys):
    from lrenum.cli import main
    rng = np.random.default_rng(2)
    Ws, bs = random_net(rng, 3, [5])
    path = tmp_path / "net.npz"
    lrenum.save_npz(path, lrenum.make_network(Ws, bs))
    out = tmp_path / "p.png"
    assert main(["plot", str(path), "-o", str(out)]) == 0
    assert out.stat().st_size > 1000
    assert main(["plot", str(path), "-o", str(out), "--u", "1", "1"]) == 2   # wrong length
    assert main(["plot", str(path), "-o", str(out), "--u", "1", "0", "0", "--v", "2", "0", "0"]) == 2  # parallel
    err = capsys.readouterr().err
    assert err.count("lrenum: error:") == 2


def test_boundary_geojson_and_through(tmp_path, capsys):
    import json

    from lrenum.cli import main
    rng = np.random.default_rng(3)
    net = lrenum.make_network([rng.normal(size=(6, 3)), rng.normal(size=(3, 6))], [rng.normal(size=6), rng.normal(size=3)])
    path = str(tmp_path / "net.npz")
    lrenum.save_npz(path, net)
    pts = []
    for i in range(3):
        np.save(tmp_path / f"x{i}.npy", rng.uniform(-0.5, 0.5, size=3))
        pts.append(str(tmp_path / f"x{i}.npy"))
    gj = str(tmp_path / "r.json")
    png = str(tmp_path / "b.png")
    assert main(["plot", path, "-o", png, "--boundary", "--geojson", gj, "--through", *pts, "-q"]) == 0
    data = json.load(open(gj))
    n = len(data["features"])
    assert n >= 1 and (tmp_path / "b.png").stat().st_size > 1000
    for feat in data["features"]:
        ring = feat["geometry"]["coordinates"][0]
        assert ring[0] == ring[-1] and len(ring) >= 4 and feat["properties"]["classes"]
    # every class claimed for a region really wins at some point of its polygon
    feat = max(data["features"], key=lambda f: len(f["properties"]["classes"]))
    assert set(feat["properties"]["classes"]) <= {0, 1, 2}


def test_line_counts_pieces_of_a_segment(tmp_path, capsys):
    import json

    from lrenum.cli import main
    Ws, bs = tent_like()
    path = str(tmp_path / "net.npz")
    lrenum.save_npz(path, lrenum.make_network(Ws, bs))
    # along the x1 axis from 0 to 1 (x2 = 0.3): the tent map of depth 2 folds x1 into 4 pieces
    assert main(["line", path, "0,0.3", "1,0.3", "--json", "-q"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["regions"] == 4
    np.testing.assert_allclose(out["breakpoints"], [0.25, 0.5, 0.75], atol=1e-9)


def tent_like():
    """Two tent maps on x1 composed (x2 passes through a unit kept active): breaks at 1/4, 1/2, 3/4."""
    W1 = np.array([[1.0, 0.0], [1.0, 0.0]])
    b1 = np.array([0.0, -0.5])
    W2 = np.array([[2.0, -4.0], [2.0, -4.0]])
    b2 = np.array([0.0, -0.5])
    W3 = np.array([[2.0, -4.0]])
    return [W1, W2, W3], [b1, b2, np.zeros(1)]
