"""Exactness where floats fail: unbounded domains, thin polytopes with badly scaled rows,
gradients that underflow, rank deficiency hidden by rounding. Oracles: closed forms, the
reference enumerator, exact rational arithmetic (fractions, independent of lrenum's FLINT code)."""

from fractions import Fraction
from math import comb

import numpy as np
import pytest

import lrenum
from nets import patterns_of, random_net
from reference import reference_patterns


@pytest.mark.parametrize("d,n,seed", [(5, 9, 0), (6, 9, 1)])
def test_one_layer_on_Rd_closed_form(d, n, seed):
    rng = np.random.default_rng(seed)
    W, b = rng.normal(size=(n, d)), rng.normal(size=n)
    res = lrenum.enumerate_regions(lrenum.make_network([W, np.ones((1, n))], [b, np.zeros(1)]),
                                   lrenum.unbounded_domain(d))
    assert res.regions == sum(comb(n, i) for i in range(d + 1))


@pytest.mark.parametrize("d,widths,seed", [(3, [5, 4], 0), (4, [4, 4], 1), (2, [4, 3, 3], 2)])
def test_deep_networks_on_Rd_match_reference(d, widths, seed):
    rng = np.random.default_rng(seed)
    Ws, bs = random_net(rng, d, widths)
    res = lrenum.enumerate_regions(lrenum.make_network(Ws, bs), lrenum.unbounded_domain(d), collect=True)
    assert patterns_of(res) == reference_patterns(Ws, bs)


@pytest.mark.parametrize("n", [3, 6])
def test_thin_polytope_with_badly_scaled_rows(n):
    """The triangle 0 <= y <= 1e-7 x, x <= 1, its rows scaled by 1e-5, 1 and 1e5; vertical lines
    x = c_i and the line y = 0.5e-7 x through its apex: exactly 2 (n + 1) regions."""
    A = np.array([[0.0, -1e-5], [-1e-7, 1.0], [1e5, 0.0]])
    b = np.array([0.0, 0.0, 1e5])
    c = np.linspace(0.1, 0.9, n)
    W = np.concatenate([np.stack([np.ones(n), np.zeros(n)], axis=1), [[-0.5e-7, 1.0]]])
    bias = np.concatenate([-c, [0.0]])
    net = lrenum.make_network([W, np.ones((1, n + 1))], [bias, np.zeros(1)])
    res = lrenum.enumerate_regions(net, lrenum.polytope_domain(A, b, 2))
    assert res.regions == 2 * (n + 1)


def test_second_layer_gradient_that_underflows():
    """z = 1e-200 relu(1e-200 x1) - 1e-200 relu(1e-200 x2): its gradient 1e-400 underflows to 0
    in float64, yet it splits the positive quadrant along x1 = x2: 5 regions, not 4."""
    W1 = np.array([[1e-200, 0.0], [0.0, 1e-200]])
    W2 = np.array([[1e-200, -1e-200]])
    net = lrenum.make_network([W1, W2, np.ones((1, 1))], [np.zeros(2), np.zeros(1), np.zeros(1)])
    res = lrenum.enumerate_regions(net, lrenum.box_domain(-1.0, 1.0, 2), collect=True)
    assert res.regions == 5
    assert patterns_of(res) == {(0, 0, 0), (1, 0, 1), (0, 1, 0), (1, 1, 1), (1, 1, 0)}


def _exact_rank(rows) -> int:
    """Rank by fraction-free Gaussian elimination over Fractions (independent of lrenum)."""
    M = [[v if isinstance(v, Fraction) else Fraction(float(v)) for v in row] for row in rows]
    rank, cols = 0, len(M[0]) if M else 0
    for c in range(cols):
        piv = next((r for r in range(rank, len(M)) if M[r][c] != 0), None)
        if piv is None:
            continue
        M[rank], M[piv] = M[piv], M[rank]
        for r in range(len(M)):
            if r != rank and M[r][c] != 0:
                f = M[r][c] / M[rank][c]
                M[r] = [a - f * b for a, b in zip(M[r], M[rank])]
        rank += 1
    return rank


def _exact_map(net, bits):
    """The Jacobian of the last hidden layer on a region, in Fractions."""
    d = net.input_dim
    J = [[Fraction(int(i == j)) for j in range(d)] for i in range(d)]
    for W, act in zip(net.weights[:-1], net.layer_slices(np.asarray(bits, bool))):
        J = [[sum((Fraction(float(W[i, k])) * J[k][j] for k in range(len(J))), Fraction(0)) if act[i] else Fraction(0)
              for j in range(d)] for i in range(W.shape[0])]
    return J


def test_rank_deficiency_hidden_by_rounding():
    """W2 = 2^-3 A B with integer A (6x2), B (2x6): rank 2, exactly representable; W1 has
    non-dyadic entries, so the float product W2 W1 carries rounding noise that looks full rank."""
    rng = np.random.default_rng(4)
    W1 = rng.normal(size=(6, 4)) * 0.1
    A, B = rng.integers(-3, 4, size=(6, 2)), rng.integers(-3, 4, size=(2, 6))
    W2 = (A @ B).astype(np.float64) / 8.0
    net = lrenum.make_network([W1, W2, np.ones((1, 6))], [rng.normal(size=6) * 0.1, rng.normal(size=6) * 0.1, np.zeros(1)])
    dom = lrenum.box_domain(-1.0, 1.0, 4)
    res = lrenum.enumerate_regions(net, dom, collect=True)
    import tempfile, os
    with tempfile.TemporaryDirectory() as tmp:
        from lrenum.datasets.writer import RegionWriter
        path = os.path.join(tmp, "r.h5")
        w = RegionWriter.create(path, net, dom)
        try:
            w.run()
        finally:
            w.close()
        with lrenum.open(path) as f:
            fin = f.final()
    assert len(fin["pattern"]) == res.regions
    for bits, ranks in zip(fin["pattern"], fin["rank"]):
        assert ranks[1] <= 2
        assert ranks[1] == _exact_rank(_exact_map(net, bits))
        assert ranks[0] == _exact_rank(_exact_map(net.truncated(1), bits[:6]))


def test_dual_certificate_tries_the_heaviest_basis_first():
    """x < 0 and x > 1 (empty), with a redundant x < 5. An interior-point dual spreads weight over
    all three rows; on that whole support the nearest exact dual has b.y > 0 (no proof), while
    the d + 1 = 2 heaviest rows give the Farkas vector (1/2, 1/2, 0) exactly."""
    import numpy as np
    from lrenum.lp import exact
    rows = [([exact.q(1.0)], exact.q(0.0)), ([exact.q(-1.0)], exact.q(-1.0)), ([exact.q(1.0)], exact.q(5.0))]
    y = np.array([0.35, 0.5, 0.15])
    assert not exact._empty_on_support(rows, y, np.arange(3), 1)
    assert exact.empty_by_dual_support(rows, y)


def test_float_farkas_enclosure_never_proves_a_nonempty_cell():
    """R^d certificate in floats (floatcert.certify_empty_unbounded): on random cells that hold a
    known point (exact rows = float rows), with random and with nearly-Farkas duals, it must never
    claim emptiness; on x < 0, x > 1 it must, and not once the row errors allow a gap."""
    from lrenum.certify.floatcert import certify_empty_unbounded
    rng = np.random.default_rng(0)
    for r in (1, 2, 3, 5):
        K, m = 400, r + 4
        C = rng.normal(size=(K, m, r))
        x0 = rng.normal(size=(K, r))
        b = np.einsum("kmr,kr->km", C, x0) + rng.uniform(1e-9, 1.0, size=(K, m))
        zeros = np.zeros((K, m))
        y = rng.uniform(0, 1, size=(K, m)) ** 4
        assert not certify_empty_unbounded(C, b, zeros, zeros, y).any()
        # duals that nearly balance the rows (C^T y ~ 0), the adversarial case
        for k in range(K):
            null = np.linalg.svd(np.r_[C[k, :r + 1].T, np.ones((1, r + 1))])[2][-1]
            y[k, :r + 1] = np.abs(null)
        assert not certify_empty_unbounded(C, b, zeros, zeros, y).any()
    C = np.array([[[1.0], [-1.0]]])
    b = np.array([[0.0, -1.0]])
    y = np.array([[0.5, 0.5]])
    assert certify_empty_unbounded(C, b, np.zeros((1, 2)), np.zeros((1, 2)), y).all()
    assert not certify_empty_unbounded(C, b, np.zeros((1, 2)), np.full((1, 2), 0.6), y).any()   # x < 0.6, x > 0.4 could hold
    assert not certify_empty_unbounded(C, b, np.full((1, 2), 2.0), np.zeros((1, 2)), y).any()   # rows could be 3x, -(-1)x


def test_unbounded_runs_prove_most_claims_in_floats():
    """On R^3 (no box: only the float Farkas enclosure can prove a claim in floats) the float
    rung takes most "empty" claims off the exact path, with the reference regions."""
    rng = np.random.default_rng(3)
    Ws, bs = random_net(rng, 3, [6, 5])
    net = lrenum.make_network(Ws, bs)
    res = lrenum.enumerate_regions(net, lrenum.unbounded_domain(3), collect=True)
    s = res.stats
    assert s.float_certificates > 2 * s.exact_certificates and s.float_certificates > 0
    assert res.regions == len(patterns_of(res))


def test_exact_rationals_past_pythons_digit_limit():
    """Exact volumes of deep regions run to thousands of digits (5,229 on the bundled 5-input
    example): reading them back must not hit int(str)'s 4,300-digit limit."""
    from flint import fmpq, fmpz
    from lrenum.lp import exact
    big = "7" * 6000
    assert exact.parse_rational(big + "/3") == fmpq(fmpz(big), 3)
    assert exact.parse_rational("-5") == fmpq(-5)


def test_rank_proofs_never_claim_more_than_the_exact_rank():
    """Rank lower bounds (partial pivoting first, QR with column pivoting for the rest): on exactly
    rank-deficient maps, nudged within their stated error bounds, no proof may claim full rank;
    on random well-conditioned maps every full rank is proven by the partial-pivoting rows alone;
    lower bounds below full rank (QR with column pivoting) prove the true rank."""
    from fractions import Fraction

    from lrenum.certify import rank as R

    rng = np.random.default_rng(4)
    B, n, r = 300, 7, 3
    good = rng.normal(size=(B, n, r))
    eM = np.full((B, n), 1e-12)
    assert R.proven_rank_at_least(good, eM, np.full(B, r)).all()
    rows, _ = R.rows_by_partial_pivoting(good)
    assert R._submatrix_regular(good, eM, rows, np.broadcast_to(np.arange(r), (B, r))).all()
    # rank r - 1 exactly (integer entries: the product is exact), then moved by up to the error bound
    low = rng.integers(-5, 6, size=(B, n, r - 1)) @ rng.integers(-5, 6, size=(B, r - 1, r))
    low = low.astype(np.float64)
    for M in (low, low + rng.uniform(-1e-12, 1e-12, size=low.shape)):
        claimed = R.proven_rank_at_least(M, eM, np.full(B, r))
        assert not claimed.any()
        assert R.proven_rank_at_least(M, eM, np.full(B, r - 1)).sum() > B // 2   # the true rank is provable
    exact_rank = _exact_rank([[Fraction(int(v)) for v in row] for row in low[0]])
    assert exact_rank <= r - 1
    # below full column rank with exactly k live rows (the others exactly zero, as inactive units'
    # rows are): the live rows themselves prove rank k when independent, and never when they are not
    k, r2 = 3, 6
    live = np.zeros((B, n, r2))
    live[:, 1:1 + k] = rng.normal(size=(B, k, r2))
    eM2 = np.where(np.any(live != 0, axis=2), 1e-12, 0.0)
    assert R._rank_of_all_live_rows(live, eM2, np.full(B, k), np.zeros(B, bool)).all()
    dependent = live.copy()
    dependent[:, 1 + k - 1] = rng.integers(-3, 4, size=(B, 1)) * np.round(live[:, 1] * 64) / 64   # row 3 = c * row 1
    dependent[:, 1] = np.round(live[:, 1] * 64) / 64
    assert not R._rank_of_all_live_rows(dependent, eM2, np.full(B, k), np.zeros(B, bool)).any()
    assert not R.proven_rank_at_least(dependent, eM2, np.full(B, k)).any()
