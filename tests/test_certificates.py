"""Every float64 certificate against a table of cases it must prove and cases it must not.

"Must not prove": the claim is false for some exact data within the stated error bounds (or
false outright): a certificate that proves it would let a wrong answer through. "Must prove":
clear cases, so that a certificate that proves nothing cannot pass either. Each case says why.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import lrenum
from lrenum.certify import floatcert, vertexcert
from lrenum.core.frame import Frame


def box_geometry(d: int, lo: float = -1.0, hi: float = 1.0):
    net = lrenum.make_network([np.eye(d), np.ones((1, d))], [np.zeros(d), np.zeros(1)])
    return Frame(net, lrenum.box_domain(lo, hi, d)).geometry


E1 = np.array([1.0, 0.0])
# certify_empty: (why, rows A (m, 2), b, eA (m,), eb (m,), y, proven?)
EMPTY_CASES = [
    ("x1 < -1/2 and x1 > 1/2", [E1, -E1], [-0.5, -0.5], [0, 0], [0, 0], [1, 1], True),
    ("outside the box: x1 > 2", [-E1], [-2.0], [0], [0], [1], True),
    ("empty by a margin far above the error bounds", [E1, -E1], [-0.5, -0.5], [1e-12, 1e-12], [1e-12, 1e-12], [1, 1], True),
    ("non-empty slab, any dual", [E1, -E1], [0.5, 0.5], [0, 0], [0, 0], [1, 1], False),
    ("non-empty slab, a huge dual", [E1, -E1], [0.5, 0.5], [0, 0], [0, 0], [1e300, 1e300], False),
    ("tangent: x1 < 0 and x1 > 0 (the value is 0, not < 0)", [E1, -E1], [0.0, 0.0], [0, 0], [0, 0], [1, 1], False),
    ("float-empty, but an offset error of 1e-11 may open it", [E1, -E1], [-1e-12, 0.0], [0, 0], [1e-11, 0], [1, 1], False),
    ("the same with a smaller offset error: empty", [E1, -E1], [-1e-12, 0.0], [0, 0], [1e-13, 0], [1, 1], True),
    ("float-empty, but a tilt of 1e-13 in a row may open it (x1 + e x2 < -1e-14, x1 > 0, x2 = -1)",
     [E1, -E1], [-1e-14, 0.0], [1e-13, 0], [0, 0], [1, 1], False),
    ("the same without the tilt's error: empty", [E1, -E1], [-1e-14, 0.0], [0, 0], [0, 0], [1, 1], True),
    ("empty by 1e-17 only: below the rounding bound of A^T y, so not provable in floats", [E1, -E1],
     [-1e-17, 0.0], [0, 0], [0, 0], [1, 1], False),
    ("a zero dual proves nothing", [E1, -E1], [-0.5, -0.5], [0, 0], [0, 0], [0, 0], False),
    ("products that underflow: rows of 1e-300 (ETA)", [1e-300 * E1, -1e-300 * E1], [-1e-310, 0.0], [0, 0], [0, 0],
     [1, 1], False),
]


@pytest.mark.parametrize("case", EMPTY_CASES, ids=[c[0] for c in EMPTY_CASES])
def test_certify_empty(case):
    _, A, b, eA, eb, y, proven = case
    geo = box_geometry(2)
    args = [np.asarray(v, np.float64)[None] for v in (A, b, eA, eb, y)]
    assert floatcert.certify_empty(*args[:4], args[4], geo)[0] == proven


# certify_points: (why, rows, b, eA, eb, x, inside?)
POINT_CASES = [
    ("the centre of a slab", [E1, -E1], [0.5, 0.5], [0, 0], [0, 0], [0.0, 0.0], True),
    ("on a row: slack 0", [E1, -E1], [0.5, 0.5], [0, 0], [0, 0], [0.5, 0.0], False),
    ("inside by 1e-12, within the row's offset error 1e-11", [E1], [0.5], [0], [1e-11], [0.5 - 1e-12, 0.0], False),
    ("inside by 1e-12, offset error 1e-13", [E1], [0.5], [0], [1e-13], [0.5 - 1e-12, 0.0], True),
    ("one ulp inside, exact rows: rounding of the dot product still counts", [np.array([3.0, 7.0])], [0.1],
     [0], [0], [0.1 / 3 - 1e-17, 0.0], False),
    ("inside by far more than every error", [E1], [0.5], [1e-12], [1e-12], [0.0, 0.0], True),
    ("a coefficient error times |x| may reach the slack", [E1], [0.5], [1e-9], [0], [0.5 - 1e-10, 0.9], False),
]


@pytest.mark.parametrize("case", POINT_CASES, ids=[c[0] for c in POINT_CASES])
def test_certify_points(case):
    _, A, b, eA, eb, x, inside = case
    geo = box_geometry(2)
    from lrenum.lp.problem import Rows

    A, b, eA, eb = (np.asarray(v, np.float64)[None] for v in (A, b, eA, eb))
    ok, radius = floatcert.certify_points(Rows(A, b, eA, eb, np.ones(b.shape, bool)), np.asarray(x, float)[None], geo)
    assert ok[0] == inside
    assert (radius[0] > 0) == inside


def test_certify_witnesses_table():
    """The forward-pass certificate: one neuron z = x1 - x2 on [-1, 1]^2 (active means z > 0)."""
    net = lrenum.make_network([np.array([[1.0, -1.0]]), np.ones((1, 1))], [np.zeros(1), np.zeros(1)])
    dom = lrenum.box_domain(-1.0, 1.0, 2)
    rows = [np.full((1, 1), np.sqrt(2.0))], [np.zeros((1, 1))]
    cases = [  # (why, x, claimed active, expected status: 0 proven, 1 certainly outside, 2 undecided)
        ("clearly active", [0.5, -0.5], True, 0),
        ("clearly inactive, claimed active", [-0.5, 0.5], True, 1),
        ("on the hyperplane", [0.25, 0.25], True, 2),
        ("on the hyperplane, claimed inactive (a pre-activation of exactly 0 is inactive, but not constant)",
         [0.25, 0.25], False, 2),
        ("z = 1.1e-16 > 0 exactly, but within its rounding bound: undecided", [0.5, 0.5 - 1e-16], True, 2),
        ("on the box's face", [1.0, -0.5], True, 2),
    ]
    for why, x, active, status in cases:
        got, radius = floatcert.certify_witnesses(net, dom, np.array([x]), [np.array([[active]])],
                                                  [np.zeros((1, 1), bool)], *rows)
        assert got[0] == status, why
        assert (radius[0] > 0) == (status == 0), why


def test_certify_empty_unbounded_table():
    """R^d: a Farkas vector enclosed in floats. x < 0 and -x < -1 (x > 1): empty; x < 1 and x > 0: not."""
    z = np.zeros((1, 2))
    cases = [  # (why, C (2, 1), b, eC, eb, y, proven)
        ("x < 0 and x > 1", [[1.0], [-1.0]], [0.0, -1.0], z, z, [0.5, 0.5], True),
        ("x < 1 and x > 0: non-empty", [[1.0], [-1.0]], [1.0, 0.0], z, z, [0.5, 0.5], False),
        ("x < 0 and x > 1 - 2e-16, with offset errors 1e-15", [[1.0], [-1.0]], [0.0, -(1 - 2e-16)], z,
         np.full((1, 2), 1e-15), [0.5, 0.5], True),
        ("x < 1e-17 and x > 0, with an offset error that may open it", [[1.0], [-1.0]], [-1e-17, 0.0], z,
         np.full((1, 2), 1e-16), [0.5, 0.5], False),
        ("rows 3x and -x could differ by the coefficient error 2", [[1.0], [-1.0]], [0.0, -1.0], np.full((1, 2), 2.0),
         z, [0.5, 0.5], False),
    ]
    for why, C, b, eC, eb, y, proven in cases:
        got = floatcert.certify_empty_unbounded(np.array(C, float)[None], np.array(b, float)[None], eC, eb,
                                                np.array(y, float)[None])
        assert got[0] == proven, why


def _exact_solution(A, c):
    """Cramer's rule in Fractions (d <= 3 here)."""
    A = [[Fraction(v) for v in row] for row in A]
    c = [Fraction(v) for v in c]

    def det(M):
        if len(M) == 1:
            return M[0][0]
        return sum((-1) ** j * M[0][j] * det([row[:j] + row[j + 1:] for row in M[1:]]) for j in range(len(M)))

    D = det(A)
    if D == 0:
        return None
    return [det([row[:j] + [c[i]] + row[j + 1:] for i, row in enumerate(A)]) / D for j in range(len(A))]


def test_solved_vertices_radii_hold_and_fail_safe():
    """Each radius bounds the distance to the exact solution (Fractions); a singular or nearly
    singular system gets an infinite radius instead of a wrong small one."""
    rng = np.random.default_rng(0)
    K, d = 200, 3
    A = rng.normal(size=(K, d, d))
    c = rng.normal(size=(K, d))
    A[0] = [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.0, 1.0, 1.0]]              # singular
    A[1] = [[1.0, 1.0, 0.0], [1.0, 1.0 + 1e-15, 0.0], [0.0, 0.0, 1.0]]      # condition ~1e15
    x, radius = vertexcert.solved_vertices(A, c, np.zeros((K, d)), np.zeros((K, d)))
    assert radius[0] == np.inf
    for k in range(K):
        exact = _exact_solution(A[k], c[k])
        if radius[k] == np.inf:
            continue
        assert exact is not None
        assert max(abs(Fraction(float(x[k, j])) - exact[j]) for j in range(d)) <= Fraction(float(radius[k]))
    assert np.isfinite(radius[2:]).mean() > 0.95                           # random systems are proven
    # rows known only within eA: the exact system may differ, and the radius must cover that
    _, wide = vertexcert.solved_vertices(A[2:3], c[2:3], np.full((1, d), 1e-6), np.full((1, d), 1e-6))
    _, tight = vertexcert.solved_vertices(A[2:3], c[2:3], np.zeros((1, d)), np.zeros((1, d)))
    assert wide[0] > 1e-7 > tight[0]


def test_vertex_sign_error_terms_cover_the_worst_case():
    """|float value - exact value| at a vertex within r of its exact point: the bound must cover a
    neuron whose exact row differs by eG (1-norm) and eg, evaluated at the far corner."""
    G = np.array([[0.3, -0.7]])
    g = np.array([0.2])
    eG, eg, r, reach = np.array([1e-9]), np.array([1e-9]), 1e-6, 1.0
    fixed, per_r = vertexcert.sign_error_terms(np.abs(G).sum(axis=1), eG, eg, g, 2, reach)
    bound = fixed + per_r * r
    worst = eg + np.abs(G).sum() * r + eG * (reach + r)     # the exact data's own worst deviation
    assert bound[0] >= worst[0]
    assert bound[0] < 2 * worst[0] + 1e-14                   # and not absurdly loose
