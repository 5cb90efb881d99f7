"""Where a probe should go: side probabilities from the patterns of uniform sample points.

Knuth's estimator is unbiased for any side probabilities that are positive on every non-empty
side, and its variance vanishes when each side is taken with probability proportional to the
number of final regions below it. The uniform choice (1/2) is far from that: a probe is as likely
to enter a sliver holding one region as the half of the domain holding millions, and the weights
2^cuts then spread over orders of magnitude (b-d5-32x32, 1.1e6 regions: one probe's standard
deviation was 27x the count over 8 seeds of 1024 probes).

The guide estimates the regions below each side from N uniform points of the domain, whose exact
float patterns cost one forward pass each. Sorted lexicographically in the order the probe adds
hyperplanes (layer by layer, neuron by neuron), the points of any cell of the probe's binary tree
(a pattern prefix) are one contiguous range of rows, a hyperplane splits a range at one index
(its bit is sorted within the range), and the number of *distinct final patterns* in a range is a
difference of one prefix sum. That count is the side's proxy for its regions below; the side's
probability is

    p_side = (1 - mix) * (count_side + prior) / (count_near + count_far + 2 prior) + mix / 2,

where ``prior`` keeps a side that holds no sample point possible and ``mix`` (a defensive mixture,
Hesterberg 1995) caps any step's weight at 2 / mix, so that a poor proxy costs variance, never an
unbounded tail. The probabilities depend only on the probe's cell (its pattern prefix), never on
the answers to come, so the weights 1 / prod p stay unbiased (docs/bounds.md). A point's float
pattern may disagree with its exact one within rounding of a hyperplane: that moves the proxy,
not the estimate's expectation.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from ..model.domain import Domain
from ..model.network import Network

PRIOR = 1.0   # pseudo-count per side: a side without sample points keeps a share of its own
MIX = 0.2     # defensive share of the uniform choice: any step's weight is at most 2 / MIX = 10
SATURATED = 0.01   # a chunk of samples adding new patterns for under 1% of its points ends the guide


class SampleGuide(NamedTuple):
    """Sorted sample patterns: rows of every cell are contiguous."""

    bits: np.ndarray       # (N, H) bool, rows in lexicographic order of the flat pattern
    distinct: np.ndarray   # (N,) int64: distinct rows among rows[:i + 1]
    prior: float
    mix: float

    @property
    def size(self) -> int:
        return int(self.bits.shape[0])

    def split(self, lo: np.ndarray, hi: np.ndarray, neuron: int) -> np.ndarray:
        """Where neuron's bit turns from 0 to 1 inside each range [lo, hi) (rows agree before it)."""
        ones = np.concatenate([[0], np.cumsum(self.bits[:, neuron], dtype=np.int64)])
        return hi - (ones[hi] - ones[lo])

    def regions_in(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Distinct final patterns among rows [lo, hi)."""
        full = hi > lo
        a, b = np.where(full, lo, 0), np.where(full, hi - 1, 0)
        return np.where(full, self.distinct[b] - self.distinct[a] + 1, 0)

    def probability(self, count: np.ndarray, other: np.ndarray) -> np.ndarray:
        """The probability of the side holding ``count`` distinct patterns against ``other``."""
        share = (count + self.prior) / (count + other + 2.0 * self.prior)
        return (1.0 - self.mix) * share + 0.5 * self.mix


def build_guide(net: Network, domain: Domain, points: int, rng: np.random.Generator,
                prior: float = PRIOR, mix: float = MIX, chunk: int = 8192) -> Optional[SampleGuide]:
    """The guide from up to ``points`` uniform points of the domain, drawn in chunks until a chunk
    brings almost no new pattern (under ``SATURATED`` of its points): in 784 dimensions uniform
    points fall into a few hundred regions (158 distinct patterns among 65,536 on mnist_8x14, 2.8 s
    of forward passes), and more of them would cost without informing. None where the domain has
    no uniform distribution (R^d) or ``points`` is 0 (the probes then choose sides uniformly)."""
    from .estimate import sample_domain

    if points <= 0 or domain.box is None:
        return None
    parts, seen = [], set()
    drawn = 0
    while drawn < points:
        X = sample_domain(domain, min(chunk, points - drawn), rng)
        bits = net.patterns(X)
        before = len(seen)
        seen.update(row.tobytes() for row in np.packbits(bits, axis=1))
        parts.append(bits)
        drawn += len(X)
        if drawn < points and len(seen) - before < SATURATED * len(X):
            break
    bits = np.concatenate(parts)
    order = np.lexsort(bits.T[::-1])            # the first neuron is the primary key
    bits = np.ascontiguousarray(bits[order])
    new = np.ones(len(bits), np.int64)
    new[1:] = np.any(bits[1:] != bits[:-1], axis=1)
    return SampleGuide(bits, np.cumsum(new), float(prior), float(mix))
