"""Progress lines on stderr: regions found per layer and the rate, at most a few a second; also
from inside one long split (its layer, hyperplanes added, cells so far), so that a run whose root
split alone takes minutes shows progress from its first second."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, n_layers: int, enabled: bool = True, every: float = 1.0):
        self.enabled = enabled
        self.every = every
        self.start = self.last = time.perf_counter()
        self.n_layers = n_layers
        self.counts = [0] * n_layers

    def _line(self, counts, pending=None) -> str:
        elapsed = time.perf_counter() - self.start
        rate = counts[-1] / elapsed if elapsed > 0 else 0.0
        layers = " ".join(f"L{i + 1}={c}" for i, c in enumerate(counts))
        tail = f" pending={sum(pending)}" if pending else ""
        return f"[lrenum] {elapsed:7.1f}s  {layers}  final={counts[-1]} ({rate:,.0f}/s){tail}"

    def update(self, counts, pending=None) -> None:
        self.counts = list(counts)
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.last >= self.every:
            self.last = now
            print(self._line(counts, pending), file=sys.stderr, flush=True)

    def inside(self, layer: int, step: int, steps: int, cells: int) -> None:
        """From inside a split of layer-``layer`` parents: ``step`` of ``steps`` hyperplanes added,
        ``cells`` cells so far (the split's own arrays)."""
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.last >= self.every:
            self.last = now
            print(f"{self._line(self.counts)}  splitting layer {layer + 1}: hyperplane {step}/{steps}, "
                  f"{cells:,} cells", file=sys.stderr, flush=True)

    def close(self, counts) -> None:
        if self.enabled:
            print(self._line(counts), file=sys.stderr, flush=True)
