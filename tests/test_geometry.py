"""Region geometry: facets proven exactly, and the adjacency graph against closed forms."""

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
