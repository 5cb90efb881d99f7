"""Float64 certificates on the device: the forward-pass witness check and the dual (Farkas) bound.

These are :mod:`lrenum.certify.floatcert`'s two hot certificates written as jitted JAX, so that a
batch is proven where it was proposed and only the lanes the device cannot prove go back to the
host's exact ladder. They are bounds, not estimates, on any device XLA targets, because every
error term is an a priori bound that holds whatever the device does with its freedoms:

* **Summation order and FMA.** Higham's gamma_n bound for an n-term dot product (Accuracy and
  Stability, 3.1) holds for every order of summation and for blocked or tree reductions; a fused
  multiply-add rounds once where a product and a sum would round twice, so it only tightens it.
  The bounds' own sums have nonnegative terms; ``SAFETY`` (1 + 1e-6) absorbs their few roundings.
* **Flushed subnormals.** XLA:CPU runs with flush-to-zero *and* denormals-are-zero (measured with
  jax 0.10.2: ``1e-310 * 1e10`` gives 0 in a jitted product; numpy gives 1e-300), and GPUs may
  flush too. A flushed result errs by at most ``ETA`` (2^-1022) absolutely, and a subnormal input
  read as zero makes a product ``a * b`` err by up to ``ETA * |b|``. The witness check gets both
  (an ``ETA`` per product and sum, and ``ETA`` times the operands' 1-norms); the dual bound gets
  inputs with no subnormals (the host door flushes them and moves what it removed into the rows'
  error bounds, :mod:`lrenum.certify.device_certs`) and an ``ETA`` per product and sum.
  ``tests/test_device_certs.py`` has subnormal inputs where dropping these terms fails.
* **No fast-math.** JAX compiles without reassociation or approximate division (XLA's defaults);
  directed rounding is not used at all, only round-to-nearest bounds.

``drop`` names an error term to leave out: a mutation switch for the tests only (each term must
be needed by some adversarial input); it is static, so normal calls compile once per shape.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from lrenum.tolerances import ETA, SAFETY

WITNESS_TERMS = ("propagated", "rounding", "underflow")
EMPTY_TERMS = ("b", "rows", "rounding", "underflow")


@partial(jax.jit, static_argnames=("drop",))
def witness_certificate(x, Ws, bs, slopes, W1, gam, n_in, on, check, bits, const, denom, drop: str = ""):
    """Forward pass with error bounds through padded layers, each neuron's sign checked.

    x: (K, p) witnesses padded with zeros to the widest layer input p; Ws: (L, n, p) and bs:
    (L, n) zero-padded; slopes: (L, n) (leaky ReLU; 0 for ReLU); W1: (L, n) row 1-norms of |W|; gam: (L,) gamma(n_in + 1);
    n_in: (L,) true input widths; on: (L, n) real neurons (padding and layers beyond the
    pattern off); check: (L, n) the neurons whose sign is checked (on, linear units off); bits, const: (K, L, n) bool; denom: (K, L, n) >= 0 (the row's norm bound, for
    the radius; 0 gives an infinite radius). Returns (status (K,) int8: 0 proven, 1 certainly
    outside, 2 undecided; radius (K,): the certified distance to the nearest row, before the
    domain). Same decisions as :func:`lrenum.certify.floatcert.certify_witnesses`.
    """
    K = x.shape[0]
    keep = lambda name: 0.0 if drop == name else 1.0

    def layer(carry, per_layer):
        h, eh, status, radius = carry
        W, b, a, w1, g, m, on_l, chk, bit, cst, den = per_layer
        aW = jnp.abs(W)
        z = h @ W.T + b
        h1 = jnp.sum(jnp.abs(h), axis=1, keepdims=True)
        e1 = jnp.sum(eh, axis=1, keepdims=True)
        ez = SAFETY * (keep("propagated") * (eh @ aW.T)
                       + keep("rounding") * g * (jnp.abs(h) @ aW.T + jnp.abs(b))
                       + keep("underflow") * ETA * (w1 + h1 + e1 + 4.0 * (m + 1.0)))
        certain = (jnp.abs(z) > ez) | ~chk
        wrong = certain & chk & ((z > 0) != bit)
        status = jnp.maximum(status, jnp.any(wrong, axis=1).astype(jnp.int8))
        status = jnp.where(jnp.any(~certain, axis=1) & (status == 0), jnp.int8(2), status)
        r = jnp.where(den > 0, (jnp.abs(z) - ez) / jnp.where(den > 0, den, 1.0), jnp.inf)
        r = jnp.where(cst | ~chk, jnp.inf, r)
        radius = jnp.minimum(radius, jnp.min(r, axis=1))
        h = jnp.where(z > 0, z, a * z)
        # the activation is max(1, |a|)-Lipschitz. Rounding a * z (U64 |a z|, or ETA if it flushes,
        # or |a z| <= ETA |z| for a flushed slope) needs no term of its own: ez >= gamma_2 |z| and
        # ez >= 8 ETA, so max(1, |a|) ez exceeds it (the host's version adds it anyway)
        eh = SAFETY * jnp.maximum(1.0, jnp.abs(a)) * ez
        eh = jnp.where((z < -ez) & (a == 0), 0.0, eh)     # a certainly dead ReLU outputs exactly 0
        eh = jnp.where(on_l, eh, 0.0)
        h = jnp.where(on_l, h, 0.0)
        return (_pad_to(h, x.shape[1]), _pad_to(eh, x.shape[1]), status, radius), None

    init = (x, jnp.zeros_like(x), jnp.zeros(K, jnp.int8), jnp.full(K, jnp.inf, x.dtype))
    per_layer = (Ws, bs, slopes, W1, gam, n_in.astype(x.dtype), on, check, jnp.swapaxes(bits, 0, 1),
                 jnp.swapaxes(const, 0, 1), jnp.swapaxes(denom, 0, 1))
    (_, _, status, radius), _ = jax.lax.scan(layer, init, per_layer)
    return status, radius


def _pad_to(h, p):
    """A layer's output (K, n) as the next layer's input (K, p): zero columns, or cut (n > p
    happens only for padding neurons, which are zero)."""
    n = h.shape[1]
    return jnp.pad(h, [(0, 0), (0, p - n)]) if n < p else h[:, :p]


@partial(jax.jit, static_argnames=("identity", "drop"))
def empty_certificate(C, b, eC, eb, y, U, lo, hi, g_all, uX, eta_count, identity: bool, drop: str = ""):
    """The dual bound of :func:`lrenum.certify.floatcert.certify_empty`: is
    ``y.b + max_{x in box} (-(A^T y).x) + err < 0`` (then no point of the box satisfies every row
    strictly)? C: (K, m, r); b, eC, eb, y: (K, m), y >= 0, zero on rows not in use; U: (r, d);
    lo, hi: (d,); g_all: gamma(m + r + d + 2) for the true sizes; uX: the rows' error factor
    (``u_row_1 * max|x|``); eta_count: products and sums that may flush. Returns (K,) bool.

    The rounding is one term: C^T y (m terms), U^T w (r), the products with lo or hi (1) and the
    last sum (d + 1) each err by at most their gamma times the sum of magnitudes, which are at
    most ``spread . X`` (spread = |U|^T |C|^T y >= |v|) and ``y . |b|``; gamma_a + gamma_b <=
    gamma_{a+b}. (The host's version splits it in four; one term is as tight to first order and
    each part of it is needed: tests/test_device_certs.py.)"""
    keep = lambda name: 0.0 if drop == name else 1.0
    y = jnp.maximum(y, 0.0)
    X = jnp.maximum(jnp.abs(lo), jnp.abs(hi))
    w = jnp.einsum("kmr,km->kr", C, y)
    v = w if identity else w @ U
    val = jnp.sum(y * b, axis=1) + jnp.sum(jnp.maximum(-v * lo, -v * hi), axis=1)
    wabs = jnp.einsum("kmr,km->kr", jnp.abs(C), y)
    spread = wabs if identity else wabs @ jnp.abs(U)
    err = (keep("b") * jnp.sum(y * eb, axis=1)
           + keep("rows") * jnp.sum(y * eC, axis=1) * uX
           + keep("rounding") * g_all * (spread @ X + jnp.sum(y * jnp.abs(b), axis=1))
           + keep("underflow") * ETA * eta_count)     # results that flush (the host flushed subnormal inputs)
    return val + SAFETY * err < 0.0


@partial(jax.jit, static_argnames=("iters", "identity"))
def box_lp_certified(Cn, bn, use, x0, U_lp, lo_lp, hi_lp, t_cap, decide_tol, safe, C, b, eC, eb, U, lo, hi, cut,
                     g_all, uX, eta_count, iters: int, identity: bool):
    """The box-bounded margin LP (:func:`lrenum.kernels.lp_box.margin_lp_box`, on the normalised
    rows ``Cn, bn`` in the LP's dtype) and, in the same call, the dual bound of every lane that
    proposes "no interior" (t <= cut), on the float64 rows ``C, b`` with their error bounds and
    the LP's duals mapped back to them (y / safe, 0 on rows not in use). Returns the LP's
    (t, x, y, status, iterations) and proven (B,) bool: the lanes whose emptiness is certified
    here, which never go back to the host's ladder."""
    from .lp_box import margin_lp_box

    t, x, y, status, its = margin_lp_box(Cn, bn, use, x0, U_lp, lo_lp, hi_lp, t_cap, decide_tol, iters=iters)
    y64 = jnp.where(use, y.astype(C.dtype) / safe, 0.0)
    proven = empty_certificate(C, b, eC, eb, y64, U, lo, hi, g_all, uX, eta_count, identity=identity)
    return t, x, y, status, its, proven & (t.astype(C.dtype) <= cut)


@partial(jax.jit, static_argnames=("iters", "identity"))
def dense_lp_certified(An, bn, use, x0, t_cap, x_bound, decide_tol, safe, cert_rows, C, b, eC, eb, U, lo, hi, cut,
                       g_all, uX, eta_count, iters: int, identity: bool):
    """:func:`box_lp_certified` for the inequality-form LP (:func:`lrenum.kernels.lp_dense.margin_lp_dense`),
    whose rows are in x-space with the box faces appended: the certificate takes the rows marked
    in ``cert_rows`` (the cell's and a polytope domain's, in basis coordinates ``C``; the box is
    the certificate's own)."""
    from .lp_dense import margin_lp_dense

    t, x, y, status, its = margin_lp_dense(An, bn, use, x0, t_cap, x_bound, decide_tol, iters=iters)
    y64 = jnp.where(cert_rows, y.astype(C.dtype) / safe, 0.0)
    proven = empty_certificate(C, b, eC, eb, y64, U, lo, hi, g_all, uX, eta_count, identity=identity)
    return t, x, y, status, its, proven & (t.astype(C.dtype) <= cut)
