"""Wide inputs (64 to 784, the MNIST size): the reduced basis and the box-bounded LP.

Oracles: the reference enumerator (pattern sets), the closed form 2^n for n hyperplanes through
the box centre with independent normals (d >= n), and exact rational LPs for the back ends.
"""

import numpy as np
import pytest

import lrenum
from lrenum.certify import floatcert
from lrenum.core.frame import Frame
from lrenum.lp import exact
from lrenum.lp.device import BoxDeviceLP, DenseDeviceLP
from lrenum.lp.problem import MarginProblems, Rows
from lrenum.runtime import select_device
from nets import patterns_of, random_net
from reference import reference_patterns


def _enumerate(Ws, bs, domain):
    return lrenum.enumerate_regions(lrenum.make_network(Ws, bs), domain, collect=True)


@pytest.mark.parametrize("d,widths,seed", [(64, [5, 4], 0), (256, [4, 4], 1), (784, [3, 4], 2)])
def test_wide_box_matches_reference(d, widths, seed):
    rng = np.random.default_rng(seed)
    Ws, bs = random_net(rng, d, widths)
    Ws[0] /= np.sqrt(d)                       # pixel-like scale: hyperplanes cross [0, 1]^d
    bs[0] = -Ws[0] @ np.full(d, 0.5) + 0.05 * rng.normal(size=widths[0])
    res = _enumerate(Ws, bs, lrenum.box_domain(0.0, 1.0, d))
    ref = reference_patterns(Ws, bs, 0.0, 1.0)
    assert patterns_of(res) == ref
    assert res.regions == len(ref) > 2 ** widths[0]


def test_wide_polytope_matches_reference():
    rng = np.random.default_rng(5)
    d, widths = 64, [4, 3]
    Ws, bs = random_net(rng, d, widths)
    # a simplex-like polytope: the box plus two oblique cuts through it
    A = np.concatenate([np.eye(d), -np.eye(d), rng.normal(size=(2, d)) / np.sqrt(d)])
    b = np.concatenate([np.ones(d), np.ones(d), [0.2, 0.3]])
    res = _enumerate(Ws, bs, lrenum.polytope_domain(A, b, d))
    ref = reference_patterns(Ws, bs, A_dom=A, b_dom=b)
    assert patterns_of(res) == ref and len(ref) > 1


@pytest.mark.parametrize("d,n", [(784, 9), (64, 10), (12, 12)])
def test_hyperplanes_through_centre_give_2_to_n(d, n):
    rng = np.random.default_rng(d + n)
    W = rng.normal(size=(n, d))               # independent normals with probability 1
    centre = np.full(d, 0.5)
    res = lrenum.enumerate_regions(lrenum.make_network([W, np.ones((1, n))], [-W @ centre, np.zeros(1)]),
                                   lrenum.box_domain(0.0, 1.0, d))
    assert res.regions == 2 ** n


def test_wide_network_uses_reduced_basis():
    rng = np.random.default_rng(3)
    Ws, bs = random_net(rng, 300, [6, 4])
    frame = Frame(lrenum.make_network(Ws, bs), lrenum.box_domain(-1.0, 1.0, 300))
    assert frame.r == 6 and not frame.geometry.identity_basis


def _instances(rng, K, d, m):
    """Random cells in [-1, 1]^d: generic ones, empty ones (two opposed rows), tangent ones (a
    row that only touches the box at a face, so the interior is empty but the closure is not)."""
    C = rng.normal(size=(K, m, d))
    b = rng.uniform(-0.3, 1.0, size=(K, m))
    kind = np.arange(K) % 3
    for k in np.nonzero(kind == 1)[0]:        # x_0 > 0.3 and x_0 < 0.1
        C[k, 0] = 0.0
        C[k, 0, 0] = -1.0
        b[k, 0] = -0.3
        C[k, 1] = 0.0
        C[k, 1, 0] = 1.0
        b[k, 1] = 0.1
    for k in np.nonzero(kind == 2)[0]:        # x_0 < -1: the face x_0 = -1 only
        C[k, 0] = 0.0
        C[k, 0, 0] = 1.0
        b[k, 0] = -1.0
    return C, b


def _certified_decisions(backend, frame, C, b):
    """Interior yes/no per cell: float certificates on the back end's answer, exact where they fail."""
    K, m, _ = C.shape
    z = np.zeros((K, m))
    mask = np.ones((K, m), bool)
    sol = backend.solve(MarginProblems(C, b, mask, np.zeros((K, frame.d))))
    inside, _ = floatcert.certify_points(Rows(C, b, z, z, mask), sol.x, frame.geometry)
    in_box, _ = floatcert.domain_slack(frame.domain, sol.x)
    yes = inside & in_box & (sol.t > 0)
    no = floatcert.certify_empty(C, b, z, z, sol.y, frame.geometry) & ~yes
    out, fallback = np.zeros(K, bool), 0
    for k in range(K):
        if yes[k] or no[k]:
            out[k] = yes[k]
        else:
            fallback += 1
            out[k] = _exact(frame, C[k], b[k])
    return out, fallback


def _exact(frame, C, b):
    rows = list(frame.exact.dom_rows) + [(exact.q_vector(c), exact.q(v)) for c, v in zip(C, b)]
    return exact.has_interior(rows, frame.d)[0]


@pytest.mark.parametrize("d", [6, 24])
def test_box_lp_and_dense_lp_reach_the_same_certified_decisions(d):
    rng = np.random.default_rng(d)
    K, m = 48, 5
    Ws, bs = random_net(rng, d, [d + 1])      # wider than d: identity basis, plain x-space rows
    frame = Frame(lrenum.make_network(Ws, bs), lrenum.box_domain(-1.0, 1.0, d))
    assert frame.geometry.identity_basis
    C, b = _instances(rng, K, d, m)
    dev = select_device("cpu")
    box, fb_box = _certified_decisions(BoxDeviceLP(frame.geometry, dev, lrenum.Settings(lp_batch=64)), frame, C, b)
    dense, fb_dense = _certified_decisions(DenseDeviceLP(frame.geometry, dev, lrenum.Settings(lp_batch=64)), frame, C, b)
    truth = np.array([_exact(frame, C[k], b[k]) for k in range(K)])
    assert np.array_equal(box, truth) and np.array_equal(dense, truth)
    assert not truth[1::3].any() and not truth[2::3].any() and truth.any()
    # the float certificates must settle the generic and the empty cells themselves: only tangent
    # cells (a third) may need the exact fallback
    assert fb_box <= K // 3 + 2 and fb_dense <= K // 3 + 2
