"""Midpoint-radius ("ball") arithmetic in float64: every value carries a certified radius.

A :class:`Ball` ``(mid, rad)`` stands for an unknown exact real within ``rad`` of ``mid``. Each
operation returns a ball that contains every exact result of its inputs' exact values: the
textbook midpoint-radius rules (Rump, "Fast and parallel interval arithmetic", BIT 39, 1999) plus
the rounding of the midpoint (one unit roundoff ``U64`` of its size) and, for products, ``ETA``
for underflow. The radius is itself computed in float64 with a few roundings of relative size
``U64`` each; ``SAFETY`` (1 + 1e-6) inflates it far beyond them. That is the whole argument, so
code written with balls (the certified volumes of :mod:`lrenum.geometry.simple_polytopes`) needs
no error analysis of its own: a ball with a finite radius at the end is a proof.

Radii are non-negative and may be ``inf`` (nothing known); a division by a ball that may hold 0
gives ``inf``. A radius may also become ``nan`` (``0 * inf``): it means "unknown" too, and is
never accepted, since every test here and in callers asks ``mid > rad`` or ``isfinite(rad)``,
which ``nan`` fails.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..tolerances import ETA, SAFETY, U64, gamma


class Ball(NamedTuple):
    """Exact values within ``rad`` of ``mid`` (arrays of one shape, or broadcastable)."""

    mid: np.ndarray
    rad: np.ndarray


def exact(x) -> Ball:
    """Float64 values that are exact (weights, box bounds, chosen constants)."""
    x = np.asarray(x, np.float64)
    return Ball(x, np.zeros_like(x))


def add(a: Ball, b: Ball) -> Ball:
    m = a.mid + b.mid
    return Ball(m, SAFETY * (a.rad + b.rad + U64 * np.abs(m)))


def sub(a: Ball, b: Ball) -> Ball:
    m = a.mid - b.mid
    return Ball(m, SAFETY * (a.rad + b.rad + U64 * np.abs(m)))


def mul(a: Ball, b: Ball) -> Ball:
    with np.errstate(invalid="ignore"):            # 0 * inf gives a nan radius: unknown (see the module's note)
        m = a.mid * b.mid
        r = np.abs(a.mid) * b.rad + a.rad * (np.abs(b.mid) + b.rad) + (U64 * np.abs(m) + ETA)
    return Ball(m, SAFETY * r)


def recip(a: Ball) -> Ball:
    """1/a where |mid| > 2 rad: then 1/a lies within rad / (|mid| (|mid| - rad)) of 1/mid, and
    |mid| - rad >= |mid| / 2 is computed to a relative 2 U64 (no cancellation). Elsewhere inf."""
    size = np.abs(a.mid)
    ok = size > 2.0 * a.rad
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        m = np.where(ok, 1.0 / np.where(ok, a.mid, 1.0), 0.0)
        r = a.rad / (size * (size - a.rad)) + U64 * np.abs(m) + ETA
    return Ball(m, np.where(ok, SAFETY * SAFETY * r, np.inf))


def power(a: Ball, k: int) -> Ball:
    """a ** k for a small integer k >= 1 (repeated products)."""
    out = a
    for _ in range(k - 1):
        out = mul(out, a)
    return out


def certain_sign(a: Ball) -> np.ndarray:
    """+1 / -1 where the exact value's sign is certain, 0 where the ball holds 0."""
    return np.where(a.mid > a.rad, 1, np.where(a.mid < -a.rad, -1, 0)).astype(np.int8)


def abs_(a: Ball) -> Ball:
    """|a|, meant where the sign is certain (elsewhere it still contains |exact|)."""
    return Ball(np.abs(a.mid), a.rad)


def dot(a: Ball, b: Ball, axis: int = -1) -> Ball:
    """Sum over ``axis`` of a * b: the products' balls, summed with the sum's rounding
    (gamma_n of the sum of magnitudes)."""
    p = mul(a, b)
    return total(p, axis)


def total(a: Ball, axis: int = -1) -> Ball:
    """Sum over ``axis`` (recursive summation of n terms errs by at most gamma_{n-1} sum |x|)."""
    n = a.mid.shape[axis]
    m = a.mid.sum(axis=axis)
    return Ball(m, SAFETY * (a.rad.sum(axis=axis) + gamma(max(n - 1, 1)) * np.abs(a.mid).sum(axis=axis)))


def grouped_total(a: Ball, group: np.ndarray, n_groups: int, longest: int) -> Ball:
    """Sums of the (K,) entries of ``a`` by ``group`` (K,) into (n_groups,); ``longest`` bounds the
    terms per group (for the summation's gamma). Grouped sums run in numpy's bincount order, a
    recursive sum, so gamma_{longest - 1} of the magnitudes bounds their rounding."""
    m = np.bincount(group, weights=a.mid, minlength=n_groups)
    mag = np.bincount(group, weights=np.abs(a.mid), minlength=n_groups)
    with np.errstate(invalid="ignore"):
        r = np.bincount(group, weights=a.rad, minlength=n_groups)
    r = np.nan_to_num(r, nan=np.inf)
    return Ball(m, SAFETY * (r + gamma(max(longest - 1, 1)) * mag))


def det(A: Ball) -> Ball:
    """Determinants of a batch of small matrices (..., d, d) by Laplace expansion with shared
    minors: the minors on the last k rows are indexed by their column sets, each built from the
    (k-1)-minors below it, d 2^(d-1) ball products in all (192 at d = 6). No pivoting, no
    division: the balls carry every rounding and every entry's radius."""
    d = A.mid.shape[-1]
    # minors[cols] for column sets (bitmasks) of size k, on rows d-k .. d-1
    minors = {0: exact(np.ones(A.mid.shape[:-2]))}
    for k in range(1, d + 1):
        row = d - k
        nxt = {}
        for cols, _ in _subsets_of_size(d, k):
            acc = None
            sign = 1
            for j in range(d):                     # expand along `row` over the set's columns in order
                if not cols >> j & 1:
                    continue
                term = mul(Ball(A.mid[..., row, j], A.rad[..., row, j]), minors[cols & ~(1 << j)])
                if sign < 0:
                    term = Ball(-term.mid, term.rad)
                acc = term if acc is None else add(acc, term)
                sign = -sign
            nxt[cols] = acc
        minors = nxt
    return minors[(1 << d) - 1]


def _subsets_of_size(d: int, k: int):
    for cols in range(1 << d):
        if bin(cols).count("1") == k:
            yield cols, k
