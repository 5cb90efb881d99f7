"""Box LPs of many concurrent walks, pooled into full device calls.

Counting the regions around many inputs (:mod:`lrenum.counting.local`) walks each input's box on
its own thread. One small box has few regions, so its walk alone makes calls of a few LPs, and a
call costs the same whatever its lanes hold (measured on the 2-core CPU, 784-64-64 network: a
64-lane call takes about 0.33 s, and one point's walk made 8 calls for 31 LPs). Every walk's back
end (:class:`PooledBoxLP`) hands its LPs to one :class:`LanePool` instead, which runs them in one
call (in lane chunks of the device's size) as soon as every live walk is waiting on an LP, or a
full chunk is pending. Lanes are independent (``vmap``), so a lane's answer does not depend on
which walks shared its call; and every answer is still a proposal that the walk certifies against
its own box, so pooling changes no decision's proof.

What walks pool must share the basis ``U`` and the compiled shapes (row width, dtype); each lane
brings its own box, cap on t and decision tolerance (:func:`lrenum.kernels.lp_box.margin_lp_box_lanes`).
"""

from __future__ import annotations

import threading
from typing import Optional

import numpy as np

from ..runtime import device_call
from ..settings import Settings
from .device import BoxDeviceLP
from .problem import LPGeometry, MarginProblems, MarginSolutions

__all__ = ["LanePool", "PooledBoxLP"]


class _Request:
    """One walk's LPs waiting in the pool (lane arrays not padded to a lane bucket)."""

    def __init__(self, lanes: tuple, box: tuple, t_cap: float, tol: float):
        self.lanes, self.box, self.t_cap, self.tol = lanes, box, t_cap, tol
        self.result: Optional[tuple] = None
        self.error: Optional[BaseException] = None

    @property
    def k(self) -> int:
        return int(self.lanes[0].shape[0])


class LanePool:
    """Gathers the box LPs of concurrent walks and runs them together.

    A walk calls :meth:`enter` before it makes LPs and :meth:`leave` when it is done; the pool
    runs what is pending once every entered walk waits on it (or a full chunk is there), so no
    walk waits on one that is still doing host work longer than that work takes.
    """

    def __init__(self, device, U: np.ndarray, buckets: list[int], iters: int, dtype):
        """``buckets``: the lane counts a call is padded to (each one compiled shape); the largest
        is the chunk size."""
        self.device, self.iters, self.dtype = device, int(iters), dtype
        self.buckets = sorted(int(b) for b in buckets)
        self.lanes = self.buckets[-1]
        self.U = np.asarray(U, dtype)
        self._cond = threading.Condition()
        self._pending: list[_Request] = []
        self._walkers = 0
        self._running = False
        self.calls = 0          # device calls made
        self.lps = 0            # lanes in use over all calls
        self.lane_slots = 0     # lanes paid for over all calls (lps / lane_slots: how full calls were)

    def enter(self) -> None:
        with self._cond:
            self._walkers += 1

    def leave(self) -> None:
        with self._cond:
            self._walkers -= 1
            self._cond.notify_all()

    def solve(self, lanes: tuple, box: tuple, t_cap: float, tol: float) -> tuple:
        """The kernel's raw answer (t, x, y, status, iterations) for one walk's lanes."""
        req = _Request(lanes, box, t_cap, tol)
        with self._cond:
            self._pending.append(req)
            self._cond.notify_all()
            while req.result is None and req.error is None:
                if not self._running and self._ready():
                    batch, self._pending = self._pending, []
                    self._running = True
                    self._cond.release()
                    try:
                        self._run(batch)
                    finally:
                        self._cond.acquire()
                        self._running = False
                        self._cond.notify_all()
                else:
                    self._cond.wait()
        if req.error is not None:
            raise req.error
        return req.result

    def _ready(self) -> bool:
        if not self._pending:
            return False
        return len(self._pending) >= self._walkers or sum(r.k for r in self._pending) >= self.lanes

    def _run(self, batch: list[_Request]) -> None:
        """Every request of ``batch`` answered (or given the error), in chunks of ``lanes`` lanes."""
        try:
            width = max(r.lanes[0].shape[1] for r in batch)
            C = np.concatenate([_pad_rows(r.lanes[0], width) for r in batch])
            b = np.concatenate([_pad_rows(r.lanes[1], width) for r in batch])
            mask = np.concatenate([_pad_rows(r.lanes[2], width) for r in batch])
            x0 = np.concatenate([r.lanes[3] for r in batch])
            lo = np.concatenate([np.broadcast_to(r.box[0], (r.k, x0.shape[1])) for r in batch])
            hi = np.concatenate([np.broadcast_to(r.box[1], (r.k, x0.shape[1])) for r in batch])
            t_cap = np.concatenate([np.full(r.k, r.t_cap) for r in batch])
            tol = np.concatenate([np.full(r.k, r.tol) for r in batch])
            outs = [self._call(*(a[s:s + self.lanes] for a in (C, b, mask, x0, lo, hi, t_cap, tol)))
                    for s in range(0, len(x0), self.lanes)]
            raw = [np.concatenate(parts) for parts in zip(*outs)]
            start = 0
            for r in batch:
                r.result = tuple(a[start:start + r.k] for a in raw)
                start += r.k
        except BaseException as exc:   # every waiting walk learns of it, not only this thread
            for r in batch:
                r.error = exc

    def _call(self, C, b, mask, x0, lo, hi, t_cap, tol) -> tuple:
        """One device call of at most ``lanes`` lanes, padded to the smallest lane bucket that holds
        them; padded lanes copy lane 0's box and have no rows."""
        from lrenum.kernels.lp_box import margin_lp_box_lanes

        k = len(x0)
        size = next(b for b in self.buckets if b >= k)
        pad = size - k
        fill = lambda a, value=None: np.concatenate(
            [a, np.broadcast_to(a[:1] if value is None else np.asarray(value, a.dtype), (pad,) + a.shape[1:])])
        args = (fill(C, 0), fill(b, 0), fill(mask, False), fill(x0), fill(lo), fill(hi), fill(t_cap), fill(tol))
        args = tuple(a.astype(self.dtype) if a.dtype != bool else a for a in args)
        with device_call(self.device):
            out = tuple(np.asarray(v)[:k] for v in margin_lp_box_lanes(
                *args[:4], self.U, *args[4:], iters=self.iters))
        self.calls += 1
        self.lps += k
        self.lane_slots += size
        return out


def _pad_rows(a: np.ndarray, width: int) -> np.ndarray:
    """Pad axis 1 (rows) with zeros (masked rows) to ``width``."""
    if a.shape[1] == width:
        return a
    return np.pad(a, [(0, 0), (0, width - a.shape[1])] + [(0, 0)] * (a.ndim - 2))


class PooledBoxLP(BoxDeviceLP):
    """The box-bounded device LP of one walk, its device calls made by a shared :class:`LanePool`."""

    name = "device-box-pooled"
    solve_certified = None    # the pool makes the device calls: its lanes' dual bounds stay a separate step

    def __init__(self, geometry: LPGeometry, device, settings: Settings, pool: LanePool, max_rows: int):
        super().__init__(geometry, device, settings, max_rows=max_rows)
        if geometry.U.shape != pool.U.shape:
            raise ValueError("pooled walks must share the basis")
        self.pool = pool
        self.lp_batch = 1 << 30   # no chunking here: the pool makes the calls, in its own chunks

    def _lanes(self, k: int) -> int:
        return k                  # no lane padding here: the pool pads whole calls

    def _solve_chunk(self, p: MarginProblems) -> MarginSolutions:
        lanes, scaled = self._lanes_in(p)
        raw = self.pool.solve(lanes, self.geo.box, self.geo.t_cap, self.decide_tol)
        return self._lanes_out(raw, p, scaled)
