"""The two device back ends for margin LPs (JAX kernels in ``lrenum.kernels``).

* :class:`DenseDeviceLP`: every row (the domain's box or polytope rows included) is a general row
  of an inequality-form IPM with a (d+1) x (d+1) normal system. Best while d is small.
* :class:`BoxDeviceLP`: the domain box as bounds, a rows x rows normal system in standard form,
  rows in basis coordinates. Best when d is large and a cell has few rows.

:func:`choose_backend` picks one by the cost of a step. Both pad a call to one of a few lane counts
(one on a CPU, a factor 4 apart on a GPU) and the rows to a multiple of 8, so that a run compiles
each kernel at a few shapes only.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..runtime import device_call
from ..tolerances import ETA
from ..settings import Settings
from .problem import LPGeometry, MarginProblems, MarginSolutions, bucket_rows, norm2

SMALL_BATCH = 32         # box LP on a GPU, d <= SMALL_BATCH_MAX_DIM: calls of at most this many LPs run at this
SMALL_BATCH_MAX_DIM = 256  # lane count. Small wide networks make many small calls (on the 2-core CPU, padding
                         # each to 256 lanes had cost ~7 ms at d = 64: family (d) 0.073 -> 0.025 s per run), and
                         # at d = 784 the extra compilation (1.7 s cold) outweighs what it saves. Not for the
                         # dense kernel: its several row buckets would each compile twice (5-12-6-6: 2.6 -> 5.0 s cold)
BOX_CPU_LANES = 64       # the box LP on a CPU: one lane bucket of 64, no small bucket. Measured on the 2-core
                         # CPU (2026-11-23), second runs against 256 + 32 lanes: full64_6x4 0.085 vs 0.083 s,
                         # pca16_6x6 0.12 vs 0.20 s, mnist_6x6 0.84 vs 2.6 s, mnist_8x8 9.6-13.2 vs 16.5-18.2 s
                         # (lanes of d = 784 vectors stay in cache), with one compilation instead of two
                         # (cold start 3.7-4.0 -> 1.6-2.4 s)


LANE_STEP = 4            # lane buckets: lp_batch, lp_batch / 4, ... down to MIN_LANES. Measured on an H100
MIN_LANES = 256          # (2026-11-23): the low-d LP path makes ~250 LPs per call, and padding each call to
                         # 16,384 lanes spent more time in np.pad/astype and transfers than in the IPM; a
                         # factor 4 between buckets bounds the padding at 4x for log4(lp_batch/256) + 1
                         # compiled shapes (4 on a GPU, 1 on a CPU, where lp_batch = 256)


def flush_subnormals(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a with subnormal entries set to 0, |what was removed|): what goes to a device that may read
    a subnormal as zero (:mod:`lrenum.certify.device_certs` moves the removed part into the rows'
    error bounds)."""
    tiny = (a != 0) & (np.abs(a) < ETA)
    if not tiny.any():
        return a, np.zeros_like(a)
    return np.where(tiny, 0.0, a), np.where(tiny, np.abs(a), 0.0)


def default_lp_batch(device) -> int:
    """LPs per device call: a GPU needs ~10^4 lanes to amortise its launches; a 2-core CPU is as
    fast at 256 (measured) and pads less."""
    return 16384 if device.platform == "gpu" else 256


class _DeviceLP:
    """Shared batching: chunks of ``lp_batch`` lanes, each padded to a lane bucket."""

    def __init__(self, geometry: LPGeometry, device, settings: Settings):
        self.geo = geometry
        self.device = device
        self.lp_batch = settings.lp_batch or self.default_lanes(device)
        self.dtype = settings.lp_numpy_dtype()
        self.iters = settings.lp_iters
        self.decide_tol = settings.decide_tol * geometry.scale
        self.solved = 0
        self.calls = 0           # device calls made (one per chunk)

    def solve(self, problems: MarginProblems) -> MarginSolutions:
        K = problems.C.shape[0]
        self.solved += K
        parts = []
        for start in range(0, K, self.lp_batch):
            stop = min(K, start + self.lp_batch)
            chunk = MarginProblems(*(a[start:stop] for a in problems))
            parts.append(self._solve_chunk(chunk))
            self.calls += 1
        if not parts:
            return MarginSolutions.empty(self.geo.dim, problems.C.shape[1], self.geo.dom_C.shape[0])
        return MarginSolutions.concat(parts)

    def solve_certified(self, problems: MarginProblems, eC, eb, certs, cut: float):
        """:meth:`solve`, and in the same device call the dual bound of every lane proposing "no
        interior" (t <= ``cut``) on the problems' float64 rows with their error bounds ``eC, eb``
        (``certs``: the run's :class:`lrenum.certify.device_certs.DeviceCertificates`). Returns
        (solutions, proven (K,) bool): proven lanes are certified empty and skip the host's ladder."""
        K = problems.C.shape[0]
        self.solved += K
        parts, proven = [], []
        for start in range(0, K, self.lp_batch):
            stop = min(K, start + self.lp_batch)
            chunk = MarginProblems(*(a[start:stop] for a in problems))
            sol, ok = self._solve_chunk_certified(chunk, eC[start:stop], eb[start:stop], certs, cut)
            parts.append(sol)
            proven.append(ok)
            self.calls += 1
        if not parts:
            return MarginSolutions.empty(self.geo.dim, problems.C.shape[1], self.geo.dom_C.shape[0]), np.zeros(0, bool)
        return MarginSolutions.concat(parts), np.concatenate(proven)

    small_batch = 0          # a second, small lane bucket (0: none); costs one more compilation

    def default_lanes(self, device) -> int:
        return default_lp_batch(device)

    def _lanes(self, k: int) -> int:
        """The lane bucket for a call of ``k`` LPs (k <= lp_batch)."""
        if k <= self.small_batch < self.lp_batch:
            return self.small_batch
        lanes = self.lp_batch
        while lanes // LANE_STEP >= max(k, MIN_LANES):
            lanes //= LANE_STEP
        return lanes

    def _lane_array(self, values: np.ndarray, k: int, width: Optional[int] = None, dtype=None,
                    scale: Optional[np.ndarray] = None) -> np.ndarray:
        """``values`` (k, m, ...) / ``scale`` (k, m) written once into zeros of (lanes, width, ...):
        one pass instead of a chain of divide, pad, pad and astype copies."""
        m = values.shape[1]
        out = np.zeros((self._lanes(k), width or m) + values.shape[2:], dtype or values.dtype)
        if scale is None:
            out[:k, :m] = values
        else:
            np.divide(values, scale.reshape(scale.shape + (1,) * (values.ndim - 2)), out=out[:k, :m],
                      casting="same_kind")
        return out


class DenseDeviceLP(_DeviceLP):
    """Inequality-form device IPM over x-space rows (the domain's rows appended)."""

    name = "device-dense"

    def __init__(self, geometry: LPGeometry, device, settings: Settings):
        super().__init__(geometry, device, settings)
        d = geometry.dim
        if geometry.box_is_domain:
            lo, hi = geometry.box
            self.dom_A = np.concatenate([np.eye(d), -np.eye(d)])
            self.dom_b = np.concatenate([hi, -lo])
        else:
            self.dom_A = geometry.to_x(geometry.dom_C)
            self.dom_b = geometry.dom_b
        self.x_bound = float(np.max(np.abs(geometry.box))) if geometry.box is not None else 1e6

    def _solve_chunk(self, p: MarginProblems) -> MarginSolutions:
        from lrenum.kernels.lp_dense import margin_lp_dense

        k, m = p.C.shape[:2]
        lanes, use, safe = self._lanes_in(p)
        with device_call(self.device):
            t, x, y, status, its = (np.asarray(v) for v in margin_lp_dense(
                *lanes, self.geo.t_cap, self.x_bound, self.decide_tol, iters=self.iters))
        return self._answer((t, x, y, status, its), k, m, safe)

    def _lanes_in(self, p: MarginProblems):
        """The kernel's lane arrays (x-space rows with the domain's appended, normalised, padded to
        the row and lane buckets), the rows in use and their norms (1 where not in use)."""
        k = p.C.shape[0]
        m_dom = self.dom_A.shape[0]
        A = np.concatenate([self.geo.to_x(p.C), np.broadcast_to(self.dom_A, (k,) + self.dom_A.shape)], axis=1)
        b = np.concatenate([p.b, np.broadcast_to(self.dom_b, (k, m_dom))], axis=1)
        mask = np.concatenate([p.mask, np.ones((k, m_dom), bool)], axis=1)
        norms = norm2(A)
        use = mask & (norms > 0)
        safe = np.where(use, norms, 1.0)
        width = bucket_rows(A.shape[1])
        lanes = (self._lane_array(A, k, width, self.dtype, scale=safe), self._lane_array(b, k, width, self.dtype, scale=safe),
                 self._lane_array(use, k, width), self._lane_array(p.start, k, dtype=self.dtype))
        return lanes, use, safe

    def _answer(self, raw, k: int, m: int, safe) -> MarginSolutions:
        """The kernel's answer (padded lanes and rows) as solutions of the k problems of m rows."""
        t, x, y, status, its = raw
        t, x = np.asarray(t, np.float64)[:k], np.asarray(x, np.float64)[:k]
        y = np.asarray(y, np.float64)[:k, :safe.shape[1]] / safe
        y_dom = y[:, m:] if not self.geo.box_is_domain else np.zeros((k, 0))
        return MarginSolutions(t, x, np.maximum(t, 0.0), y[:, :m], y_dom, np.asarray(status, np.int8)[:k],
                               np.asarray(its, np.int32)[:k])

    def _solve_chunk_certified(self, p: MarginProblems, eC, eb, certs, cut: float):
        from lrenum.kernels.certify import dense_lp_certified

        geo = self.geo
        k, m = p.C.shape[:2]
        lanes, use, safe = self._lanes_in(p)
        width = lanes[0].shape[1]
        # the certificate's rows: the cell's, then a polytope domain's (basis coordinates); a box
        # domain's faces are the certificate's own box
        mc = m + geo.dom_C.shape[0]
        zeros = np.zeros((k, geo.dom_C.shape[0]))
        Cc = np.concatenate([p.C, np.broadcast_to(geo.dom_C, (k,) + geo.dom_C.shape)], axis=1)
        bc = np.concatenate([p.b, np.broadcast_to(geo.dom_b, (k, geo.dom_C.shape[0]))], axis=1)
        Cf, bf, eCf, ebf, consts = certs.prepare_empty(Cc, bc, np.concatenate([eC, zeros], axis=1),
                                                       np.concatenate([eb, zeros], axis=1))
        cert_rows = use.copy()
        cert_rows[:, mc:] = False
        pad = lambda a, dt=np.float64: self._lane_array(a, k, width, dt)
        with device_call(self.device):
            raw = tuple(np.asarray(v) for v in dense_lp_certified(
                *lanes, geo.t_cap, self.x_bound, self.decide_tol,
                pad(flush_subnormals(safe)[0]), self._lane_array(cert_rows, k, width), pad(Cf), pad(bf), pad(eCf),
                pad(ebf), geo.U, certs.lo, certs.hi, cut, *consts, iters=self.iters,
                identity=bool(geo.identity_basis)))
        return self._answer(raw[:5], k, m, safe), raw[5][:k]


class BoxDeviceLP(_DeviceLP):
    """Standard-form device IPM with the box as bounds and rows in basis coordinates.

    All calls use one row bucket (``max_rows``, the most rows a cell of the run can have): a step
    costs O(r^2 d) for forming U Theta U^T, which dwarfs the O(m^3) of extra padded rows, while
    every extra bucket is another ~2 s compilation (measured: 3.4 s -> 1.9 s cold at MNIST size).
    """

    name = "device-box"

    def __init__(self, geometry: LPGeometry, device, settings: Settings, max_rows: Optional[int] = None):
        super().__init__(geometry, device, settings)
        self.width = None if max_rows is None else bucket_rows(max_rows + geometry.dom_C.shape[0])
        on_cpu = device.platform == "cpu"
        self.small_batch = SMALL_BATCH if geometry.dim <= SMALL_BATCH_MAX_DIM and not on_cpu else 0
        if geometry.box is None:
            raise ValueError("the box-bounded LP needs a bounded domain")
        lo, hi = geometry.box
        self.center = 0.5 * (lo + hi)
        self.half = 0.5 * (hi - lo)
        self.center_image = geometry.image(self.center)

    def default_lanes(self, device) -> int:
        return BOX_CPU_LANES if device.platform == "cpu" else default_lp_batch(device)

    def _solve_chunk(self, p: MarginProblems) -> MarginSolutions:
        from lrenum.kernels.lp_box import margin_lp_box

        lanes, scaled = self._lanes_in(p)
        lo, hi = self.geo.box
        with device_call(self.device):
            raw = tuple(np.asarray(v) for v in margin_lp_box(
                *lanes, self.geo.U.astype(self.dtype), lo.astype(self.dtype), hi.astype(self.dtype), self.geo.t_cap,
                self.decide_tol, iters=self.iters))
        return self._lanes_out(raw, p, scaled)

    def _solve_chunk_certified(self, p: MarginProblems, eC, eb, certs, cut: float):
        from lrenum.kernels.certify import box_lp_certified

        geo = self.geo
        lanes, scaled = self._lanes_in(p)
        C, use, safe = scaled
        k = p.C.shape[0]
        m_dom = geo.dom_C.shape[0]
        zeros = np.zeros((k, m_dom))
        b = np.concatenate([p.b, np.broadcast_to(geo.dom_b, (k, m_dom))], axis=1)
        Cf, bf, eCf, ebf, consts = certs.prepare_empty(C, b, np.concatenate([eC, zeros], axis=1),
                                                       np.concatenate([eb, zeros], axis=1))
        width = lanes[0].shape[1]
        pad = lambda a: self._lane_array(a, k, width, np.float64)
        lo, hi = geo.box
        with device_call(self.device):
            raw = tuple(np.asarray(v) for v in box_lp_certified(
                *lanes, geo.U.astype(self.dtype), lo.astype(self.dtype), hi.astype(self.dtype), geo.t_cap,
                self.decide_tol, pad(flush_subnormals(safe)[0]), pad(Cf), pad(bf), pad(eCf), pad(ebf), geo.U,
                certs.lo, certs.hi, cut, *consts, iters=self.iters, identity=bool(geo.identity_basis)))
        return self._lanes_out(raw[:5], p, scaled), raw[5][:k]

    def _lanes_in(self, p: MarginProblems) -> tuple[tuple, tuple]:
        """The kernel's lane arrays (rows normalised in x-space, padded to the row and lane buckets)
        and what :meth:`_lanes_out` needs to map the answer back (rows with the domain's, row use,
        norms)."""
        geo = self.geo
        k = p.C.shape[0]
        m_dom = geo.dom_C.shape[0]
        C = np.concatenate([p.C, np.broadcast_to(geo.dom_C, (k,) + geo.dom_C.shape)], axis=1)
        b = np.concatenate([p.b, np.broadcast_to(geo.dom_b, (k, m_dom))], axis=1)
        mask = np.concatenate([p.mask, np.ones((k, m_dom), bool)], axis=1)
        norms = geo.row_norms(C)
        use = mask & (norms > 0)
        safe = np.where(use, norms, 1.0)
        width = max(self.width or 0, bucket_rows(C.shape[1]))
        lanes = (self._lane_array(C, k, width, self.dtype, scale=safe), self._lane_array(b, k, width, self.dtype, scale=safe),
                 self._lane_array(use, k, width), self._lane_array(p.start, k, dtype=self.dtype))
        return lanes, (C, use, safe)

    def _lanes_out(self, raw: tuple, p: MarginProblems, scaled: tuple) -> MarginSolutions:
        """The kernel's answer (t, x, y, status, iterations; padded lanes and rows) as solutions of ``p``."""
        C, use, safe = scaled
        t, x, y, status, its = raw
        k, m = p.C.shape[:2]
        t, x = np.asarray(t, np.float64)[:k], np.asarray(x, np.float64)[:k]
        y = np.asarray(y, np.float64)[:k, :C.shape[1]] / safe
        x, radius = self._move_inward(C / safe[:, :, None], use, x, t)
        y_dom = y[:, m:] if self.geo.dom_C.shape[0] else np.zeros((k, 0))
        return MarginSolutions(t, x, radius, y[:, :m], y_dom, np.asarray(status, np.int8)[:k],
                               np.asarray(its, np.int32)[:k])

    def _move_inward(self, Cn, use, x, t):
        """Move each point toward the box centre until it is off the box faces, keeping at least
        half of its margin t from the rows; returns the points and their estimated radii."""
        towards = self.center_image[None, :] - self.geo.image(x)                # U (c - x)
        drift = np.abs(np.einsum("kmr,kr->km", Cn, towards))
        drift = np.max(np.where(use, drift, 0.0), axis=1)
        theta = np.where(t > 0, np.minimum(0.5, 0.5 * t / np.maximum(drift, 1e-300)), 0.0)
        x = x + theta[:, None] * (self.center[None, :] - x)
        to_faces = np.min(np.minimum(x - self.geo.box[0], self.geo.box[1] - x), axis=1)
        radius = np.where(t > 0, np.minimum(0.5 * t, to_faces), 0.0)
        return x, radius


def choose_backend(geometry: LPGeometry, rows: int, device, settings: Settings):
    """The cheaper device back end for cells with about ``rows`` rows of their own.

    A dense step factorises (d+1)^2 from m + 2d rows: ~ (m + 2d) d^2 flops. A box step forms
    U Theta U^T and a rows x rows system: ~ r^2 d + m r^2 + m^3 / 3. Unbounded domains always use
    the dense form (the box form needs bounds).
    """
    d, r = geometry.dim, geometry.rank
    m = rows + geometry.dom_C.shape[0]
    dense_cost = (m + 2 * d) * (d + 1) ** 2
    box_cost = r * r * d + m * r * r + m ** 3 / 3 + 8 * r * d
    if geometry.box is None or dense_cost <= box_cost:
        return DenseDeviceLP(geometry, device, settings)
    return BoxDeviceLP(geometry, device, settings, max_rows=rows)
