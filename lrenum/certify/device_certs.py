"""The one door to the device-side certificates (:mod:`lrenum.kernels.certify`).

:class:`DeviceCertificates` answers exactly what :func:`floatcert.certify_witnesses` and
:func:`floatcert.certify_empty` answer, with the arithmetic on the device: a lane comes back
proven or not, and only lanes the device could not prove go on to the host's exact ladder. It
packs the ragged host arrays into a few padded shapes (lanes in powers of two, rows in multiples
of 8, the network's layers padded to one width once), so that a run compiles each kernel a few
times only, and it keeps the inputs of the dual bound free of subnormal numbers (the device may
read them as zero): a subnormal entry of C or b is flushed here and its size moved into the row's
error bound eC or eb, which is exactly what those bounds are for; a subnormal dual weight is
flushed (the bound holds for any y >= 0); a subnormal box bound is widened to 0 or ETA (a bound
over a larger box holds for the smaller).

Used where :meth:`Settings.certify_on_device` says so: by default on a GPU only, because on a
CPU the host's numpy is as fast (measured: ``experiments/results/devicecert-cpu-2026-12-03.md``).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..lp.device import flush_subnormals
from ..lp.problem import LPGeometry, bucket_rows
from ..model.network import Network
from ..runtime import device_call
from ..tolerances import ETA, SAFETY, gamma
from . import floatcert

MIN_LANES = 128         # lane buckets 128, 512, 2,048, 8,192: at most 4 compiled shapes per kernel and 4x padding;
MAX_LANES = 8192        # 2,048 is the assemble chunk (most witness calls). Powers of 2 from 64 compiled 6
LANE_STEP = 4           # witness shapes and 3 dual-bound shapes on one 3-input run (11 compilations, 1.4 s cold)


def lane_bucket(k: int) -> int:
    """Lanes for a call of ``k`` <= MAX_LANES items: the smallest bucket that holds them."""
    lanes = MIN_LANES
    while lanes < k:
        lanes *= LANE_STEP
    return min(lanes, MAX_LANES)


def _up_to_normal(e: np.ndarray) -> np.ndarray:
    """Error bounds with no subnormal entries: a positive subnormal bound becomes ETA (larger)."""
    return np.where((e > 0) & (e < ETA), ETA, e)


class DeviceCertificates:
    """The float64 certificates of one enumeration (network, geometry) on ``device``."""

    def __init__(self, net: Network, geometry: LPGeometry, device):
        self.net, self.geo, self.device = net, geometry, device
        self.calls = 0
        L = net.n_hidden
        widths = [W.shape[0] for W in net.weights[:L]]
        inputs = [W.shape[1] for W in net.weights[:L]]
        self.n, self.p = max(widths), max(max(inputs), max(widths))
        self.Ws = np.zeros((L, self.n, self.p))
        self.bs = np.zeros((L, self.n))
        self.W1 = np.zeros((L, self.n))
        self.on = np.zeros((L, self.n), bool)
        self.linear = np.zeros((L, self.n), bool)    # linear units: propagated, never checked
        for l in range(L):
            W, b = net.weights[l], net.biases[l]
            self.Ws[l, :W.shape[0], :W.shape[1]] = W
            self.bs[l, :W.shape[0]] = b
            self.W1[l, :W.shape[0]] = np.abs(W).sum(axis=1) * (1 + 2 * gamma(W.shape[1]))   # rounded up
            self.on[l, :W.shape[0]] = True
            self.linear[l, :W.shape[0]] = net.linear[l]
        self.slopes = np.zeros((L, self.n))          # per neuron (a scalar slope broadcasts)
        for l in range(L):
            self.slopes[l, :widths[l]] = np.broadcast_to(np.asarray(net.slopes[l], np.float64), (widths[l],))
        self.gam = np.array([gamma(n + 1) for n in inputs])
        self.n_in = np.array(inputs, np.float64)
        self.widths = widths
        # a subnormal basis entry would be read as 0 on the device, changing every row: such a
        # (vanishingly rare) geometry keeps its dual bounds on the host
        self.empty_on_device = geometry.box is not None and not np.any((geometry.U != 0) & (np.abs(geometry.U) < ETA))
        if geometry.box is not None:
            lo, hi = (np.broadcast_to(np.asarray(v, np.float64), (geometry.dim,)) for v in geometry.box)
            self.lo = np.where((lo != 0) & (np.abs(lo) < ETA), np.where(lo > 0, 0.0, -ETA), lo)
            self.hi = np.where((hi != 0) & (np.abs(hi) < ETA), np.where(hi > 0, ETA, 0.0), hi)

    # ------------------------------------------------------------------ witnesses
    def witnesses(self, domain, x, bits, const_mask, row_norms, row_errs):
        """:func:`floatcert.certify_witnesses` on the device (same arguments but the network,
        same (status, radius)); the domain's own check stays on the host (O(K d))."""
        from lrenum.kernels.certify import witness_certificate

        K = x.shape[0]
        status = np.zeros(K, np.int8)
        radius = np.full(K, np.inf)
        for s in range(0, K, MAX_LANES):
            t = min(K, s + MAX_LANES)
            status[s:t], radius[s:t] = self._witness_chunk(witness_certificate, x[s:t], [a[s:t] for a in bits],
                                                           [a[s:t] for a in const_mask], [a[s:t] for a in row_norms],
                                                           [a[s:t] for a in row_errs])
        inside, droom = floatcert.domain_slack(domain, x)
        status[~inside & (status == 0)] = 2
        radius = np.minimum(radius, droom)
        return status, np.where(status == 0, np.maximum(radius, 0.0), 0.0)

    def _witness_chunk(self, kernel, x, bits, const_mask, row_norms, row_errs, drop: str = ""):
        K, d = x.shape
        lanes = lane_bucket(K)
        L_all = self.Ws.shape[0]
        X = np.zeros((lanes, self.p))
        X[:K, :d] = x
        B = np.zeros((lanes, L_all, self.n), bool)
        Cm = np.zeros((lanes, L_all, self.n), bool)
        D = np.zeros((lanes, L_all, self.n))
        on = np.zeros_like(self.on)
        check = np.zeros_like(self.on)
        for l in range(len(bits)):
            w = self.widths[l]
            B[:K, l, :w], Cm[:K, l, :w] = bits[l], const_mask[l]
            D[:K, l, :w] = row_norms[l] * SAFETY + row_errs[l]
            on[l] = self.on[l]
            check[l] = self.on[l] & ~self.linear[l]
        with device_call(self.device):
            st, rad = kernel(X, self.Ws, self.bs, self.slopes, self.W1, self.gam, self.n_in, on, check, B, Cm, D,
                             drop=drop)
            st, rad = np.asarray(st)[:K], np.asarray(rad)[:K]
        self.calls += 1
        return st, rad

    # ------------------------------------------------------------------ empty cells
    def empty(self, C, b, eC, eb, y, drop: str = "") -> np.ndarray:
        """:func:`floatcert.certify_empty` on the device (same arguments but the geometry, which
        is this door's), (K,) bool."""
        geo = self.geo
        K, m = b.shape
        if K == 0 or not self.empty_on_device:
            return floatcert.certify_empty(C, b, eC, eb, y, geo)
        from lrenum.kernels.certify import empty_certificate

        C, b, eC, eb, consts = self.prepare_empty(C, b, eC, eb)
        y, _ = flush_subnormals(np.maximum(np.asarray(y, np.float64), 0.0))
        out = np.zeros(K, bool)
        mp = bucket_rows(m)
        for s in range(0, K, MAX_LANES):
            t = min(K, s + MAX_LANES)
            k = t - s
            lanes = lane_bucket(k)
            Cp = np.zeros((lanes, mp, C.shape[2]))
            Cp[:k, :m] = C[s:t]
            pads = []
            for a in (b, eC, eb, y):
                ap = np.zeros((lanes, mp))
                ap[:k, :m] = a[s:t]
                pads.append(ap)
            with device_call(self.device):
                res = empty_certificate(Cp, *pads, geo.U, self.lo, self.hi, *consts,
                                        identity=bool(geo.identity_basis), drop=drop)
                out[s:t] = np.asarray(res)[:k]
            self.calls += 1
        return out

    def prepare_empty(self, C, b, eC, eb):
        """The dual bound's float64 inputs with no subnormal numbers (C and b flushed into their
        error bounds eC, eb), and its constants for m rows (gamma, the rows' error factor, the
        count of results that may flush): (C, b, eC, eb, (g_all, uX, eta_count))."""
        geo = self.geo
        m, r, d = b.shape[1], C.shape[2], geo.dim
        C, movedC = flush_subnormals(np.asarray(C, np.float64))
        b, movedb = flush_subnormals(np.asarray(b, np.float64))
        eC = _up_to_normal(np.asarray(eC, np.float64) + movedC.sum(axis=2) * (1 + 4 * gamma(r)))
        eb = _up_to_normal(np.asarray(eb, np.float64) + movedb)
        X = np.maximum(np.abs(self.lo), np.abs(self.hi))
        consts = (gamma(m + r + d + 2), geo.u_row_1 * X.max(), 2.0 * (2 * m * r + 2 * r * d + 4 * m + 5 * d + 8))
        return C, b, eC, eb, consts


def for_run(net: Network, geometry: LPGeometry, device, enabled: Optional[bool]) -> Optional[DeviceCertificates]:
    """The device certificates for a run, or None for the host's (``enabled``: the setting;
    None means on a GPU only)."""
    if enabled is None:
        enabled = device is not None and device.platform == "gpu"
    if net.has_groups:     # the device kernel's forward pass knows no winner-take-all groups: the host's
        return None
    return DeviceCertificates(net, geometry, device) if enabled else None
