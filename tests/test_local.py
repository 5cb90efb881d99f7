"""Local complexity (issue #33): the regions in boxes around many inputs, in one run.

Oracles: a separate ``enumerate_regions`` on each point's box, the slow reference enumerator
(pattern sets), closed forms (hyperplanes through the point; a point deep inside one region),
and what the proxies can and cannot claim.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os

import h5py
import numpy as np
import pytest

import lrenum
from lrenum.cli import main
from lrenum.counting.local import local_regions
from lrenum.counting.local_proxies import neurons_meeting_box

from nets import random_net
from reference import reference_patterns


def _patterns(bits: np.ndarray) -> set:
    return {tuple(int(v) for v in row) for row in bits}


@pytest.mark.parametrize("d,widths,radius", [(2, [6, 5], 0.3), (3, [5, 4], 0.25), (5, [6, 4], 0.2),
                                             (8, [5, 4], 0.3), (64, [4, 3], 0.05)])
def test_each_box_equals_its_own_enumeration_and_the_reference(d, widths, radius):
    rng = np.random.default_rng(d)
    Ws, bs = random_net(rng, d, widths)
    net = lrenum.make_network(Ws, bs)
    domain = lrenum.box_domain(-1.0, 1.0, d)
    points = rng.uniform(-0.8, 0.8, size=(4, d))
    corner = np.full(d, 0.97)                      # its box leaves the domain: clipped
    points = np.vstack([points, corner, points[1]])  # and a duplicated point
    res = local_regions(net, points, radius, domain=domain, clip=True, keep_regions=True, walks=3)
    assert len(res.points) == len(points)
    for p in res.points:
        lo, hi = p.lo, p.hi
        assert np.all(lo >= -1.0) and np.all(hi <= 1.0)
        alone = lrenum.enumerate_regions(net, lrenum.box_domain(lo, hi, d), collect=True)
        assert p.regions == alone.regions and p.per_layer == alone.per_layer
        assert _patterns(p.patterns) == _patterns(alone.patterns)
        assert _patterns(p.patterns) == reference_patterns(Ws, bs, lo, hi)
        assert len(_patterns(p.patterns)) == p.regions
        # the witnesses lie in the point's box
        assert np.all(p.witnesses > lo) and np.all(p.witnesses < hi)
    clipped = res.points[len(points) - 2]
    assert np.all(clipped.hi[clipped.hi > 0.9] == 1.0)
    first, dup = res.points[1], res.points[-1]
    assert first.regions == dup.regions and _patterns(first.patterns) == _patterns(dup.patterns)
    assert first.rank_hist == dup.rank_hist and first.max_children == dup.max_children


def test_children_and_rank_statistics_match_the_patterns():
    rng = np.random.default_rng(3)
    Ws, bs = random_net(rng, 3, [6, 5])
    net = lrenum.make_network(Ws, bs)
    res = local_regions(net, rng.uniform(-0.5, 0.5, (3, 3)), 0.3, keep_regions=True, walks=2)
    for p in res.points:
        # layer-1 regions are the distinct first-layer patterns of the final regions; children of each
        first = [tuple(r) for r in p.patterns[:, :6].astype(int)]
        kids = {}
        for f in first:
            kids[f] = kids.get(f, 0) + 1
        assert p.per_layer[0] == len(kids) and p.max_children[1] == max(kids.values())
        assert p.max_children[0] == p.per_layer[0]
        assert math.isclose(p.mean_children[1], p.regions / p.per_layer[0])
        assert sum(p.rank_hist[1]) == p.regions
        ranks = np.bincount(p.ranks[:, 1])
        assert list(ranks[:len(p.rank_hist[1])]) == p.rank_hist[1]


def test_pooled_and_unpooled_walks_agree():
    rng = np.random.default_rng(11)
    Ws, bs = random_net(rng, 16, [8, 6])
    net = lrenum.make_network(Ws, bs)
    pts = rng.uniform(-0.5, 0.5, (6, 16))
    a = local_regions(net, pts, 0.08, walks=4)
    b = local_regions(net, pts, 0.08, walks=1, pooled=False)
    assert a.counts == b.counts
    assert a.lp_calls <= a.stats.lps     # pooled calls carry several LPs each when there are any


@pytest.mark.parametrize("n,d", [(2, 2), (3, 3), (3, 6), (4, 9)])
def test_hyperplanes_through_the_point_give_two_to_the_n(n, d):
    rng = np.random.default_rng(n * 10 + d)
    p = rng.uniform(-0.3, 0.3, d)
    W = rng.normal(size=(n, d))
    b = -W @ p                                    # every hyperplane through p (independent normals, n <= d)
    net = lrenum.make_network([W, rng.normal(size=(1, n))], [b, np.zeros(1)])
    for r in (1e-3, 0.05, 0.5):
        res = local_regions(net, p, r)
        assert res.counts == [2 ** n]


def test_a_point_deep_inside_one_region_has_one():
    rng = np.random.default_rng(5)
    d = 4
    Ws, bs = random_net(rng, d, [6, 5])
    net = lrenum.make_network(Ws, bs)
    p = rng.uniform(-0.5, 0.5, d)
    z1 = Ws[0] @ p + bs[0]
    on = z1 > 0
    J = Ws[1] @ (Ws[0] * on[:, None])             # layer 2's pre-activations on p's region: J x + c
    z2 = Ws[1] @ np.maximum(z1, 0) + bs[1]
    # the l-inf distance to a hyperplane w.x + c = 0 is |w.p + c| / ||w||_1
    dist = min(np.min(np.abs(z1) / np.abs(Ws[0]).sum(1)), np.min(np.abs(z2) / np.maximum(np.abs(J).sum(1), 1e-300)))
    res = local_regions(net, p, 0.9 * dist)
    assert res.counts == [1]
    assert local_regions(net, p, 3.0 * dist).counts[0] > 1     # the radius matters: not a constant answer


def test_proxies_bound_what_they_claim():
    rng = np.random.default_rng(8)
    for d, n in ((2, 7), (3, 6), (4, 8)):
        Ws, bs = random_net(rng, d, [n])
        net = lrenum.make_network(Ws, bs)
        pts = rng.uniform(-0.6, 0.6, (5, d))
        res = local_regions(net, pts, 0.3, proxies=True, samples=400)
        for p in res.points:
            k = p.proxies["neurons_meeting"][0]
            assert p.regions <= sum(math.comb(k, i) for i in range(min(k, d) + 1))
            assert p.proxies["sampled_patterns"] <= p.regions
            assert p.switching[0] == k        # one layer, general position: the interval test is exact
    Ws, bs = random_net(rng, 3, [6, 6, 5])
    net = lrenum.make_network(Ws, bs)
    res = local_regions(net, rng.uniform(-0.6, 0.6, (6, 3)), 0.25, proxies=True, samples=2000)
    for p in res.points:
        assert p.proxies["sampled_patterns"] <= p.regions
        assert all(s <= m for s, m in zip(p.switching, p.proxies["neurons_meeting"]))
    assert any(p.proxies["sampled_patterns"] > 1 for p in res.points)


def test_interval_proxy_counts_a_hyperplane_exactly_at_the_box_face():
    W = np.array([[1.0, 0.0], [0.0, 1.0]])
    net = lrenum.make_network([W, np.ones((1, 2))], [np.array([-0.5, 0.0]), np.zeros(1)])
    # x1 = 0.5 lies on the box's face: it does not cut the open box; x2 = 0 does
    assert neurons_meeting_box(net, np.array([-0.5, -0.5]), np.array([0.5, 0.5])) == [2]   # counted when in doubt
    assert neurons_meeting_box(net, np.array([-0.5, -0.5]), np.array([0.4, 0.5])) == [1]


# ------------------------------------------------------------------------------------------ CLI

def _net_file(tmp_path, d=3, widths=(5, 4), seed=0, box=True):
    rng = np.random.default_rng(seed)
    Ws, bs = random_net(rng, d, list(widths))
    arrays = {}
    for i, (W, b) in enumerate(zip(Ws, bs), 1):
        arrays[f"W{i}"], arrays[f"b{i}"] = W, b
    if box:
        arrays["lo"], arrays["hi"] = -np.ones(d), np.ones(d)
    path = str(tmp_path / "net.npz")
    np.savez(path, **arrays)
    return path, Ws, bs


def test_cli_json_file_csv_and_verify(tmp_path, capsys):
    net, Ws, bs = _net_file(tmp_path)
    pts = np.random.default_rng(1).uniform(-0.9, 0.9, (5, 3))
    np.save(tmp_path / "pts.npy", pts)
    out_h5, out_csv = str(tmp_path / "local.h5"), str(tmp_path / "local.csv")
    code = main(["local", net, str(tmp_path / "pts.npy"), "--radius", "0.2", "--clip", "--json", "-q",
                 "-o", out_h5, "--regions", "--csv", out_csv, "--proxies", "--samples", "300"])
    out, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads(out)
    assert len(summary["counts"]) == 5 and len(summary["per_layer"]) == 5 and summary["seconds"] > 0
    for i, c in enumerate(summary["counts"]):
        lo = np.maximum(pts[i] - 0.2, -1.0)
        hi = np.minimum(pts[i] + 0.2, 1.0)
        assert c == len(reference_patterns(Ws, bs, lo, hi))
    with lrenum.open(out_h5) as f:
        assert list(f.counts) == summary["counts"]
        assert f.point_regions(2)["pattern"].shape == (summary["counts"][2], 9)
        if importlib.util.find_spec("pandas") is not None:      # pandas is optional (the experiments extra)
            assert list(f.to_pandas()["count"]) == summary["counts"]
        assert list(f.table("count")) == summary["counts"]
    rows = open(out_csv).read().strip().splitlines()
    assert len(rows) == 6 and rows[0].startswith("point,count")
    assert main(["verify", out_h5, net, "-q"]) == 0
    capsys.readouterr()
    # a tampered file fails: a witness moved out of its region, or a count changed
    with h5py.File(out_h5, "r+") as f:
        f["regions/witness"][0] = f["regions/witness"][0] + 0.5
    assert main(["verify", out_h5, net, "-q"]) == 1
    assert "verify failed" in capsys.readouterr().err
    assert main(["local", net, str(tmp_path / "pts.npy"), "--radius", "0.2", "--clip", "-q", "-o", out_h5,
                 "--regions", "--force"]) == 0
    with h5py.File(out_h5, "r+") as f:
        f["count"][1] += 1
    assert main(["verify", out_h5, net, "-q"]) == 1


def test_cli_refuses_bad_input_in_one_line(tmp_path, capsys):
    net, _, _ = _net_file(tmp_path)
    good = tmp_path / "good.npy"
    np.save(good, np.zeros((2, 3)))
    cases = {
        "wrong dimension": (np.zeros((2, 4)), ["--radius", "0.1"]),
        "NaN": (np.array([[0.0, np.nan, 0.0]]), ["--radius", "0.1"]),
        "empty": (np.zeros((0, 3)), ["--radius", "0.1"]),
        "leaves the domain": (np.full((1, 3), 0.95), ["--radius", "0.1"]),
    }
    for name, (arr, extra) in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.npy"
        np.save(path, arr)
        code = main(["local", net, str(path), "-q"] + extra)
        err = capsys.readouterr().err
        assert code == 2, name
        assert len(err.strip().splitlines()) == 1 and err.startswith("lrenum: error:"), (name, err)
    for extra in (["--radius", "0"], ["--radius", "-1"], []):
        try:
            code = main(["local", net, str(good), "-q"] + extra)
        except SystemExit as exc:       # argparse's own errors exit (one line, code 2) from the parser
            code = exc.code
        assert code == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
    np.save(tmp_path / "radii.npy", np.array([0.1, -0.1]))
    assert main(["local", net, str(good), "-q", "--radii", str(tmp_path / "radii.npy")]) == 2
    (tmp_path / "junk.npy").write_text("not an array")
    assert main(["local", net, str(tmp_path / "junk.npy"), "--radius", "0.1", "-q"]) == 2
    assert main(["local", net, str(tmp_path / "missing.npy"), "--radius", "0.1", "-q"]) == 2
    err = capsys.readouterr().err
    assert all(line.startswith("lrenum: error:") for line in err.strip().splitlines())
    # an existing output is kept unless --force
    out = tmp_path / "keep.h5"
    out.write_bytes(b"earlier output")
    assert main(["local", net, str(good), "--radius", "0.1", "-q", "-o", str(out)]) == 2
    assert out.read_bytes() == b"earlier output"


def test_a_failed_run_leaves_no_file(tmp_path, monkeypatch):
    """A run that fails midway (here the walk itself) leaves neither the file nor its temporary."""
    net, _, _ = _net_file(tmp_path)
    np.save(tmp_path / "pts.npy", np.zeros((3, 3)))
    out = str(tmp_path / "local.h5")
    import lrenum.counting.local as local

    def broken(*a, **k):
        raise lrenum.WriteError("disk full (simulated)")

    monkeypatch.setattr(local, "_walk_point", broken)
    assert main(["local", net, str(tmp_path / "pts.npy"), "--radius", "0.1", "-q", "-o", out]) == 3
    assert not os.path.exists(out) and not os.path.exists(out + ".tmp")


def test_full_row_rank_proof_agrees_with_the_rational_rank():
    """The basis test (core/frame.py) proves full row rank modulo a prime first; it must agree with
    the exact rational rank, also where the rank is deficient (then the rational rank decides)."""
    from lrenum.lp.exact import has_full_row_rank, q_matrix

    rng = np.random.default_rng(2)
    cases = [rng.normal(size=(5, 9)), rng.normal(size=(12, 784)) * 1e-3, rng.integers(-3, 4, (6, 8)).astype(float)]
    low = rng.integers(-5, 6, (4, 7)) * 0.25
    dependent = np.vstack([low, low[0] + 0.5 * low[1]])     # a row in the span of others (exact in float)
    cases += [dependent, np.vstack([low, 2.0 ** -40 * low[2]]),   # a scaled copy: rank deficient
              rng.normal(size=(4, 7)), np.array([[1.0, 2.0 ** -60, 0.0], [1.0, 0.0, 2.0 ** 70]])]
    for a in cases:
        assert has_full_row_rank(a) == (q_matrix(a).rank() == a.shape[0])
    assert not has_full_row_rank(dependent) and has_full_row_rank(cases[0])
