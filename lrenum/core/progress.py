"""Progress lines on stderr: regions found per layer and the rate, at most a few a second."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, n_layers: int, enabled: bool = True, every: float = 1.0):
        self.enabled = enabled
        self.every = every
        self.start = self.last = time.perf_counter()
        self.n_layers = n_layers

    def _line(self, counts, pending=None) -> str:
        elapsed = time.perf_counter() - self.start
        rate = counts[-1] / elapsed if elapsed > 0 else 0.0
        layers = " ".join(f"L{i + 1}={c}" for i, c in enumerate(counts))
        tail = f" pending={sum(pending)}" if pending else ""
        return f"[lrenum] {elapsed:7.1f}s  {layers}  final={counts[-1]} ({rate:,.0f}/s){tail}"

    def update(self, counts, pending=None) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.last >= self.every:
            self.last = now
            print(self._line(counts, pending), file=sys.stderr, flush=True)

    def close(self, counts) -> None:
        if self.enabled:
            print(self._line(counts), file=sys.stderr, flush=True)
