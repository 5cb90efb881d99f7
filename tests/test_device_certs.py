"""The device-side certificates (kernels/certify.py through lrenum.certify.device_certs) against
exact arithmetic and the host's: never "proven" where exact arithmetic says otherwise, on random
and adversarial inputs (near cancellation, subnormal products); each error term needed (a
mutation check: the kernel with that term dropped proves something false on these inputs);
enumerations with the device certificates equal to the reference enumerator's."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import lrenum
from lrenum.certify import floatcert
from lrenum.certify.device_certs import DeviceCertificates, flush_subnormals
from lrenum.core.frame import Frame
from lrenum.kernels.certify import EMPTY_TERMS, WITNESS_TERMS, witness_certificate
from lrenum.runtime import select_device
from reference import reference_patterns

CPU = select_device("cpu")


def exact_forward_signs(net, x):
    """Signs (+1, 0, -1) of every hidden pre-activation at x, in exact rationals."""
    h = [Fraction(float(v)) for v in x]
    out = []
    for W, b, a in zip(net.weights[:net.n_hidden], net.biases[:net.n_hidden], net.slopes[:net.n_hidden]):
        a = np.broadcast_to(np.asarray(a, float), (W.shape[0],))
        z = [sum((Fraction(float(W[j, i])) * h[i] for i in range(W.shape[1])), Fraction(float(b[j])))
             for j in range(W.shape[0])]
        out.append(np.array([(v > 0) - (v < 0) for v in z]))
        h = [v if v > 0 else Fraction(float(a[j])) * v for j, v in enumerate(z)]
    return out


def device_witnesses(net, x, bits, drop=""):
    """(status, radius) of the device kernel for full patterns ``bits`` (list per layer)."""
    certs = DeviceCertificates(net, Frame(net, lrenum.box_domain(-1e300, 1e300, net.input_dim)).geometry, CPU)
    zeros = [np.zeros(b.shape) for b in bits]
    return certs._witness_chunk(witness_certificate, np.asarray(x, float), bits, [np.zeros_like(b) for b in bits],
                                zeros, zeros, drop=drop)


def wrongly_proven(net, x, bits, status) -> int:
    """Lanes proven (status 0) whose exact signs do not all match ``bits`` strictly."""
    bad = 0
    for i in np.nonzero(status == 0)[0]:
        signs = exact_forward_signs(net, x[i])
        if any(np.any((s > 0) != b[i]) or np.any(s == 0) for s, b in zip(signs, bits)):
            bad += 1
    return bad


# ---------------------------------------------------------------- adversarial witness inputs, one per term
def test_rounding_term_needed():
    """Pre-activations that are pure rounding noise: input d cancels the rest (x_d = -fl(x . w)),
    bits are the float signs; exact signs are the noise's."""
    rng = np.random.default_rng(1)
    d, K = 3, 300
    x = rng.normal(size=(K, d)) * 10.0 ** rng.integers(-6, 7, size=(K, d))
    w = rng.normal(size=d)
    xs = np.concatenate([x, -(x @ w)[:, None]], axis=1)
    net = lrenum.make_network([np.concatenate([w, [1.0]])[None], np.ones((1, 1))], [np.zeros(1), np.zeros(1)])
    bits = [xs @ net.weights[0].T > 0]
    assert wrongly_proven(net, xs, bits, device_witnesses(net, xs, bits)[0]) == 0
    dropped = device_witnesses(net, xs, bits, drop="rounding")[0]
    assert wrongly_proven(net, xs, bits, dropped) > 0, "dropping the rounding term proved nothing false"


def test_propagated_term_needed():
    """Layer 1 is certain but inexact: z1 = (1 + t) - 1 with t a few dozen ulps (its float value
    errs by up to half an ulp of 1); layer 2 compares h1 with (1 - 1e-6) fl(h1), far above its own
    rounding, so only layer 1's error, carried forward, can keep it from a false proof."""
    rng = np.random.default_rng(2)
    wrong_full = wrong_drop = 0
    W1 = np.array([[1.0, 1.0]])
    for t in rng.uniform(10, 100, size=24) * 2.0 ** -52:
        x = np.array([[1.0, t]])
        h1 = float((x @ W1.T)[0, 0] - 1.0)
        net = lrenum.make_network([W1, np.array([[1.0]]), np.ones((1, 1))],
                                  [np.array([-1.0]), np.array([-(1 - 1e-6) * h1]), np.zeros(1)])
        bits = [np.array([[True]]), np.array([[True]])]
        wrong_full += wrongly_proven(net, x, bits, device_witnesses(net, x, bits)[0])
        wrong_drop += wrongly_proven(net, x, bits, device_witnesses(net, x, bits, drop="propagated")[0])
    assert wrong_full == 0
    assert wrong_drop > 0, "dropping the propagated term proved nothing false"


@pytest.mark.parametrize("case", ["flushed products", "subnormal input"])
def test_underflow_term_needed(case):
    """Products that flush to zero (FTZ) and a subnormal input read as zero (DAZ), as XLA:CPU does;
    the normal terms are large enough that no partial sum is subnormal, whatever the order."""
    if case == "flushed products":      # 300 products of 1.1e-309: exact z = 3e-307 - 3.3e-307 < 0
        W = np.full((1, 301), -1.1e-154)
        W[0, 0] = 3e-307
        x = np.full((1, 301), 1e-155)
        x[0, 0] = 1.0
    else:                               # x_1 = 1e-310 read as 0: exact z = 5e-301 - 1e-300 < 0
        W = np.array([[5e-301, -1e10]])
        x = np.array([[1.0, 1e-310]])
    net = lrenum.make_network([W, np.ones((1, 1))], [np.zeros(1), np.zeros(1)])
    bits = [np.array([[True]])]
    assert exact_forward_signs(net, x[0])[0][0] < 0
    assert device_witnesses(net, x, bits)[0][0] != 0
    if device_witnesses(net, x, bits, drop="underflow")[0][0] != 0:
        pytest.skip("this device does not flush subnormals: the underflow term is not exercised here")
    assert wrongly_proven(net, x, bits, device_witnesses(net, x, bits, drop="underflow")[0]) == 1


def test_every_witness_term_has_a_mutation_test():
    assert set(WITNESS_TERMS) == {"propagated", "rounding", "underflow"}


# ---------------------------------------------------------------- random witnesses against the host
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_witnesses_agree_with_host_and_exact(seed):
    rng = np.random.default_rng(seed)
    d = int(rng.integers(1, 6))
    widths = [int(v) for v in rng.integers(2, 9, size=int(rng.integers(1, 4)))]
    dims = [d] + widths + [1]
    Ws = [rng.normal(size=(dims[i + 1], dims[i])) for i in range(len(dims) - 1)]
    bs = [rng.normal(size=dims[i + 1]) * 0.3 for i in range(len(dims) - 1)]
    net = lrenum.make_network(Ws, bs, slopes=[0.1] * len(widths) if seed == 2 else None)   # seed 2: leaky
    x = rng.uniform(-1, 1, size=(300, d))
    # nearly tangent points: moved onto a first-layer hyperplane, up to rounding
    j = rng.integers(0, widths[0], size=100)
    w = Ws[0][j]
    x[:100] -= ((np.einsum("kd,kd->k", x[:100], w) + bs[0][j]) / np.einsum("kd,kd->k", w, w))[:, None] * w
    zs, _ = floatcert.forward_with_bounds(net, x, len(widths))
    bits = [z > 0 for z in zs]
    flip = rng.random(300) < 0.1
    bits[-1][flip, 0] = ~bits[-1][flip, 0]
    frame = Frame(net, lrenum.box_domain(-2, 2, d))
    norms = [np.abs(b).astype(float) + 1.0 for b in bits]
    errs = [np.zeros(b.shape) for b in bits]
    const = [np.zeros_like(b) for b in bits]
    certs = DeviceCertificates(net, frame.geometry, CPU)
    st_d, r_d = certs.witnesses(frame.domain, x, bits, const, norms, errs)
    st_h, r_h = floatcert.certify_witnesses(net, frame.domain, x, bits, const, norms, errs)
    assert wrongly_proven(net, x, bits, st_d) == 0
    assert np.mean(st_d == st_h) > 0.97            # the same decisions but at the thresholds
    both = (st_d == 0) & (st_h == 0)
    np.testing.assert_allclose(r_d[both], r_h[both], rtol=1e-9, atol=1e-300)
    assert (st_d[flip] == 1).mean() > 0.5          # flipped bits are seen as wrong


# ---------------------------------------------------------------- the dual bound
def exact_certificate_value(C, b, y, lo, hi):
    """y.b + sum_j max(-v_j lo_j, -v_j hi_j), v = C^T y, in exact rationals (identity basis)."""
    F = Fraction
    m, r = C.shape
    v = [sum((F(float(C[i, j])) * F(float(y[i])) for i in range(m)), F(0)) for j in range(r)]
    yb = sum((F(float(y[i])) * F(float(b[i])) for i in range(m)), F(0))
    return yb + sum(max(-v[j] * F(float(lo[j])), -v[j] * F(float(hi[j]))) for j in range(r))


def box_certs(d, lo=-1.0, hi=1.0):
    net = lrenum.make_network([np.eye(d), np.ones((1, d))], [np.zeros(d), np.zeros(1)])
    frame = Frame(net, lrenum.box_domain(lo, hi, d))
    return DeviceCertificates(net, frame.geometry, CPU), frame.geometry


def near_zero_certificates(rng, K, m, d, big, which):
    """Certificates whose exact value is rounding noise around -1e-9 * scale: ``which`` says where
    the cancellation happens ('product': in C^T y, 'dot_b': in y.b)."""
    C = rng.normal(size=(K, m, d))
    y = rng.uniform(0.5, 2.0, size=(K, m))
    b = np.zeros((K, m))
    if which == "product":
        C[:, :-1] *= big
        C[:, -1] = -np.einsum("kmd,km->kd", C[:, :-1], y[:, :-1]) / y[:, -1:]
        b[:, 0] = -1e-9 / y[:, 0]
    else:
        C[:] = 0.0
        b = rng.normal(size=(K, m)) * big
        b[:, -1] = -(np.einsum("km,km->k", b[:, :-1], y[:, :-1]) + 1e-9) / y[:, -1]
    return C, b, y


@pytest.mark.parametrize("where", ["product", "dot_b"])
def test_rounding_term_of_the_dual_bound_needed(where):
    """Cancellation in C^T y or in y.b: exact value noise around -1e-9."""
    rng = np.random.default_rng(7)
    d, m, K = 2, 4, 256
    certs, geo = box_certs(d)
    C, b, y = near_zero_certificates(rng, K, m, d, 1e8, where)
    zeros = np.zeros((K, m))
    full = certs.empty(C, b, zeros, zeros, y)
    dropped = certs.empty(C, b, zeros, zeros, y, drop="rounding")
    lo, hi = -np.ones(d), np.ones(d)
    exact_ok = np.array([exact_certificate_value(C[k], b[k], y[k], lo, hi) < 0 for k in range(K)])
    assert not np.any(full & ~exact_ok)
    assert np.any(dropped & ~exact_ok), f"dropping the rounding term proved nothing false ({where})"
    host = floatcert.certify_empty(C, b, zeros, zeros, y, geo)
    assert not np.any(host & ~exact_ok)


def test_error_bound_terms_of_the_dual_bound_needed():
    """eb and eC: the exact rows differ from the float ones by up to these."""
    certs, geo = box_certs(1)
    d = 1
    delta = 1e-3
    # "b": 0.x < -1e-3, but the exact b may be 1e-3
    C = np.zeros((1, 1, 1))
    b = np.array([[-delta]])
    y = np.ones((1, 1))
    eb = np.array([[2 * delta]])
    assert not certs.empty(C, b, np.zeros((1, 1)), eb, y)[0]
    assert certs.empty(C, b, np.zeros((1, 1)), eb, y, drop="b")[0]
    # exact b = b + eb = 1e-3 > 0: the cell 0 < 1e-3 is the whole box, not empty
    assert exact_certificate_value(C[0], b[0] + eb[0], y[0], -np.ones(d), np.ones(d)) > 0
    # "rows": x < 0.5 - delta and -x < -0.5 - delta; the exact first row may be (1 - 3 delta) x
    C = np.array([[[1.0], [-1.0]]])
    b = np.array([[0.5 - delta, -0.5 - delta]])
    y = np.ones((1, 2))
    eC = np.array([[3 * delta, 0.0]])
    assert not certs.empty(C, b, eC, np.zeros((1, 2)), y)[0]
    assert certs.empty(C, b, eC, np.zeros((1, 2)), y, drop="rows")[0]
    C_exact = C.copy()
    C_exact[0, 0, 0] = 1 - 3 * delta
    assert exact_certificate_value(C_exact[0], b[0], y[0], -np.ones(d), np.ones(d)) > 0


def test_underflow_term_of_the_dual_bound_needed():
    """63 products of 2.1e-308 flush to zero on the device: exact value 1.02e-306 > 0, flushed -3e-307."""
    certs, _ = box_certs(1)
    C = np.zeros((1, 64, 1))
    b = np.full((1, 64), 1.5e-154)
    y = np.full((1, 64), 1.4e-154)
    b[0, 0], y[0, 0] = -3e-307, 1.0
    z = np.zeros((1, 64))
    assert exact_certificate_value(C[0], b[0], y[0], -np.ones(1), np.ones(1)) > 0
    assert not certs.empty(C, b, z, z, y)[0]
    if not certs.empty(C, b, z, z, y, drop="underflow")[0]:
        pytest.skip("this device does not flush subnormal results")


def test_every_dual_term_has_a_mutation_test():
    assert set(EMPTY_TERMS) == {"b", "rows", "rounding", "underflow"}


def test_subnormal_inputs_are_flushed_into_the_error_bounds():
    a = np.array([1.0, 1e-310, -2e-320, 0.0])
    out, moved = flush_subnormals(a)
    assert np.array_equal(out, [1.0, 0.0, 0.0, 0.0]) and moved[1] == 1e-310 and moved[2] == 2e-320


def test_random_dual_bounds_agree_with_host():
    rng = np.random.default_rng(3)
    d, m, K = 3, 6, 500
    certs, geo = box_certs(d)
    C = rng.normal(size=(K, m, d))
    y = rng.uniform(0, 1, size=(K, m))
    v = np.einsum("kmd,km->kd", C, y)
    b = rng.normal(size=(K, m))
    b[:, 0] += (-(y * b).sum(axis=1) - np.abs(v).sum(axis=1) + rng.normal(size=K) * 1e-12) / y[:, 0]
    eC, eb = np.full((K, m), 1e-15), np.full((K, m), 1e-15)
    dev = certs.empty(C, b, eC, eb, y)
    host = floatcert.certify_empty(C, b, eC, eb, y, geo)
    assert np.mean(dev == host) > 0.97
    worst_b = b + eb
    exact_ok = np.array([exact_certificate_value(C[k], worst_b[k], y[k], -np.ones(d), np.ones(d)) < 0
                         for k in np.nonzero(dev)[0]])
    assert exact_ok.all()


# ---------------------------------------------------------------- whole enumerations
def _small_net(rng, d: int, n1: int, n2: int):
    """Weights and biases of a random d-n1-n2-1 network (the draws in this order)."""
    return ([rng.normal(size=(n1, d)), rng.normal(size=(n2, n1)), rng.normal(size=(1, n2))],
            [rng.normal(size=n1) * 0.3, rng.normal(size=n2) * 0.3, np.zeros(1)])


def _domain_and_reference(Ws, bs, d: int, polytope: bool, cut: float):
    """[-1, 1]^d, or that box cut by sum(x) <= cut, and the reference's patterns on it."""
    if polytope:
        A = np.concatenate([np.eye(d), -np.eye(d), [[1.0] * d]])
        b = np.concatenate([np.ones(d), np.ones(d), [cut]])
        return lrenum.polytope_domain(A, b, d), reference_patterns(Ws, bs, A_dom=A, b_dom=b)
    return lrenum.box_domain(-1, 1, d), reference_patterns(Ws, bs, -1.0, 1.0)


@pytest.mark.parametrize("case", ["general", "degenerate", "polytope"])
def test_enumeration_with_device_certificates_matches_reference(case):
    d = 3
    Ws, bs = _small_net(np.random.default_rng(5), d, 6, 5)
    if case == "degenerate":
        bs[0][:] = 0.0                      # every first-layer hyperplane through the origin
        Ws[0][3] = Ws[0][0]                 # a duplicated neuron
    net = lrenum.make_network(Ws, bs)
    dom, want = _domain_and_reference(Ws, bs, d, case == "polytope", 1.0)
    for vertex_path in (None, False):
        settings = lrenum.Settings().replace(certify_on_device=True, vertex_path=vertex_path)
        res = lrenum.enumerate_regions(net, dom, settings=settings, collect=True)
        assert {tuple(int(v) for v in row) for row in res.patterns} == want


def count_calls(monkeypatch, cls, name: str) -> dict:
    """Wrap ``cls.name`` with a counter (``["n"]``): proves a test went down the path it is about."""
    calls = {"n": 0}
    original = getattr(cls, name)

    def counted(self, *a, **k):
        calls["n"] += 1
        return original(self, *a, **k)

    monkeypatch.setattr(cls, name, counted)
    return calls


def test_box_lp_with_its_dual_bounds_in_one_call_matches_reference(monkeypatch):
    """Wide inputs take the box-bounded LP; with device certificates its "no interior" lanes are
    certified in the LP's own call (BoxDeviceLP.solve_certified): same patterns as the reference,
    and the fused path did the proving."""
    from lrenum.lp.device import BoxDeviceLP

    calls = count_calls(monkeypatch, BoxDeviceLP, "solve_certified")
    rng = np.random.default_rng(8)
    d = 40
    Ws = [rng.normal(size=(5, d)), rng.normal(size=(4, 5)), rng.normal(size=(1, 4))]
    bs = [rng.normal(size=5) * 0.3, rng.normal(size=4) * 0.3, np.zeros(1)]
    net = lrenum.make_network(Ws, bs)
    dom = lrenum.box_domain(0.0, 1.0, d)
    got = {}
    for on in (False, True):
        res = lrenum.enumerate_regions(net, dom, settings=lrenum.Settings().replace(certify_on_device=on),
                                       collect=True)
        got[on] = ({tuple(int(v) for v in row) for row in res.patterns}, res.stats.float_certificates)
    assert calls["n"] > 0
    assert got[True][0] == got[False][0] == reference_patterns(Ws, bs, 0.0, 1.0)
    assert got[True][1] == got[False][1] > 0


@pytest.mark.parametrize("domain", ["box", "polytope"])
def test_dense_lp_with_its_dual_bounds_in_one_call_matches_reference(monkeypatch, domain):
    """The inequality-form LP (small d, the LP path) with its dual bounds in the same call: the
    certificate takes the cell's rows and a polytope domain's, not the box faces the LP carries."""
    from lrenum.lp.device import DenseDeviceLP

    calls = count_calls(monkeypatch, DenseDeviceLP, "_solve_chunk_certified")
    d = 3
    Ws, bs = _small_net(np.random.default_rng(9), d, 7, 5)
    net = lrenum.make_network(Ws, bs)
    dom, want = _domain_and_reference(Ws, bs, d, domain == "polytope", 0.5)
    settings = lrenum.Settings().replace(certify_on_device=True, vertex_path=False)
    res = lrenum.enumerate_regions(net, dom, settings=settings, collect=True)
    assert calls["n"] > 0 and res.stats.float_certificates > 0
    assert {tuple(int(v) for v in row) for row in res.patterns} == want
