"""Counting regions without listing them: the tree (Knuth) estimator and point sampling.

Tree estimator
    The regions after layer L are the leaves of the layer-by-layer region tree, all at
    depth L (every region has at least one child). A probe walks from the root, splits the
    region it is in with the exact splitter, and moves to a child chosen uniformly at random,
    multiplying its weight by the number of children. The leaf weight is an unbiased
    estimate of the number of leaves (Knuth 1975). With ``branch = b > 1`` a probe follows
    ``min(b, n)`` children drawn without replacement, each weighted ``n / min(b, n)``
    (Horvitz-Thompson), which is still unbiased and cuts the variance. Probes that sit in
    the same region are split once, so the device sees one batch per layer. Every child
    found is a certified region, so the largest number of distinct regions seen at one
    layer is a *certain* lower bound (layer-l regions each have at least one descendant).

Point sampling
    Uniform points of the domain, their patterns by batched forward passes on the device.
    Distinct patterns whose point is certified (or whose region is checked exactly) are a
    certain lower bound; Chao1 (Chao 1984, bias-corrected, log-normal interval of Chao 1987)
    estimates the number of patterns including those not seen. Small regions are rarely hit,
    so Chao1 itself tends to stay below the true count when region volumes vary widely.

The two estimators share the Estimate type, interval helpers and input checks.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .. import runtime
from ..certify.decide import DecisionStats
from ..core.frame import Frame
from ..core.split import Splitter
from ..core.tree import Tree
from ..errors import InputError
from ..model.domain import Domain, box_domain
from ..model.network import Network
from ..settings import Settings


@dataclass
class Estimate:
    """One estimate of the number of regions; ``summary()`` is the ``--json`` object."""

    method: str
    estimate: float
    ci_low: float
    ci_high: float
    confidence: float
    lower_bound: Optional[int]      # certain (every counted region is certified)
    seconds: float
    details: dict = field(default_factory=dict)
    samples: Optional[np.ndarray] = None   # per-probe estimates (tree), for other intervals; not in the summary

    def summary(self) -> dict:
        out = {"method": self.method, "estimate": self.estimate, "ci_low": self.ci_low, "ci_high": self.ci_high,
               "confidence": self.confidence, "lower_bound": self.lower_bound, "seconds": round(self.seconds, 6)}
        out.update(self.details)
        return out


def _check_common(net: Network, domain: Optional[Domain], confidence: float) -> Domain:
    if domain is None:
        domain = box_domain(-1.0, 1.0, net.input_dim)
    if domain.dim != net.input_dim:
        raise InputError(f"domain has dimension {domain.dim} but the network has {net.input_dim} inputs")
    if not 0.0 < confidence < 1.0:
        raise InputError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    return domain


def mean_interval(values: np.ndarray, confidence: float) -> tuple[float, float, float]:
    """Mean and Student-t interval of i.i.d. unbiased estimates."""
    from scipy import stats

    k = len(values)
    mean = float(np.mean(values))
    if k < 2:
        return mean, -math.inf, math.inf
    half = float(stats.t.ppf(0.5 + confidence / 2, k - 1) * np.std(values, ddof=1) / math.sqrt(k))
    return mean, mean - half, mean + half


def log_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """Cox's interval for the mean of log-normal data, on the per-probe estimates.

    A Knuth probe's estimate is a product of branching factors along a random path, so its
    logarithm is a sum over layers and close to normal, while the estimate itself is heavy-tailed
    to the right: a symmetric Student-t interval on it misses the true count too often (83% at a
    nominal 95% on a training run). Cox: exp(ybar + s^2/2 +- z sqrt(s^2/k + s^4 / (2 (k-1)))).
    Zero estimates (a probe that cannot happen) are absent in Knuth's scheme: every region has a child.
    """
    from scipy import stats

    v = np.asarray(values, dtype=np.float64)
    k = len(v)
    if k < 2 or np.any(v <= 0):
        return -math.inf, math.inf
    if np.all(v == v[0]):          # every probe agrees (a uniform tree): exp(log(v)) would round
        return float(v[0]), float(v[0])
    y = np.log(v)
    ybar, s2 = float(np.mean(y)), float(np.var(y, ddof=1))
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    half = z * math.sqrt(s2 / k + s2 * s2 / (2 * (k - 1)))
    centre = ybar + s2 / 2
    return math.exp(centre - half), math.exp(centre + half)


INTERVALS = ("t", "log", "union")


def tree_estimate(net: Network, domain: Optional[Domain] = None, *, probes: int = 256, branch: int = 1,
                  seed: int = 0, confidence: float = 0.95, interval: str = "union",
                  settings: Optional[Settings] = None, max_particles: int = 1_000_000) -> Estimate:
    """Knuth's tree-size estimator over the exact region tree (see the module docstring).

    ``interval``: 't' (Student-t on the mean), 'log' (Cox's log-normal interval, see
    :func:`log_interval`) or 'union' (the hull of both); their coverage is measured in
    experiments/estimator_coverage.py and the default follows that measurement.
    """
    domain = _check_common(net, domain, confidence)
    if interval not in INTERVALS:
        raise InputError(f"interval must be one of {INTERVALS}, not {interval!r}")
    if probes < 1 or branch < 1:
        raise InputError("--probes and --branch must be at least 1")
    settings = settings or Settings.build()
    dev = runtime.select_device(settings.device)
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    stats = DecisionStats()
    frame = Frame(net, domain, settings)
    splitter = Splitter(frame, dev, stats)
    tree = Tree(frame, splitter, [])
    batch_size = settings.parents_per_split(splitter.vertex is not None)
    regions = tree.root()
    at = np.zeros(probes, np.int64)          # each particle's region (index into `regions`)
    weight = np.ones(probes)
    probe = np.arange(probes)
    seen = [1]
    splits = 0
    for level in range(net.n_hidden):
        children, n_children = tree.split_all(regions.with_ids(np.arange(len(regions))), batch_size)
        splits += len(regions)
        seen.append(len(children))
        first = np.concatenate([[0], np.cumsum(n_children)[:-1]])   # children are grouped by parent
        n_here = n_children[at]
        take = np.minimum(branch, n_here)
        # draw `take` distinct children per particle: random keys, smallest first
        width = int(n_here.max())
        keys = rng.random((len(at), width))
        keys[np.arange(width)[None, :] >= n_here[:, None]] = np.inf
        order = np.argsort(keys, axis=1)[:, :int(take.max())]
        keep = np.arange(order.shape[1])[None, :] < take[:, None]
        rows, cols = np.nonzero(keep)
        chosen = first[at[rows]] + order[rows, cols]
        weight = (weight * n_here / take)[rows]
        probe = probe[rows]
        if len(chosen) > max_particles:
            raise InputError(f"branch {branch} needs more than {max_particles} particles; use a smaller --branch")
        uniq, at = np.unique(chosen, return_inverse=True)
        regions = children.take(uniq)
    per_probe = np.bincount(probe, weights=weight, minlength=probes)
    return tree_result(per_probe, int(max(seen)), confidence, interval, time.perf_counter() - t0,
                       {"probes": probes, "branch": branch, "seed": seed, "regions_split": splits,
                        "distinct_per_layer": seen[1:], "device": runtime.describe_device(dev), "lps": stats.lps})


def tree_result(per_probe: np.ndarray, lower: int, confidence: float, interval: str, seconds: float,
                details: dict) -> Estimate:
    """The estimate, its interval and the certain lower bound from per-probe estimates (also used
    to pool probes run by several workers)."""
    est, lo, hi = mean_interval(per_probe, confidence)
    if interval == "log":
        lo, hi = log_interval(per_probe, confidence)
    elif interval == "union":     # both intervals' ends: covers whenever either does
        llo, lhi = log_interval(per_probe, confidence)
        lo, hi = min(lo, llo), max(hi, lhi)
    details = dict(details, interval=interval,
                   std_per_probe=float(np.std(per_probe, ddof=1)) if len(per_probe) > 1 else None)
    # the certain lower bound raises both ends: an interval never reaches below what was found
    return Estimate("tree", est, max(lo, lower), max(hi, lower), confidence, lower, seconds, details,
                    samples=per_probe)


def sample_domain(domain: Domain, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points uniform in the domain (rejection from the bounding box for a polytope)."""
    if domain.box is None:
        raise InputError("point sampling needs a bounded domain (there is no uniform distribution on R^d)")
    lo, hi = domain.box
    if domain.kind == "box":
        return lo + (hi - lo) * rng.random((n, domain.dim))
    out, got, tries = [], 0, 0
    while got < n:
        X = lo + (hi - lo) * rng.random((max(1024, 2 * (n - got)), domain.dim))
        X = X[np.all(X @ domain.A.T < domain.b, axis=1)]
        out.append(X)
        got += len(X)
        tries += 1
        if tries > 1000:
            raise InputError("polytope domain fills too little of its bounding box to sample it")
    return np.concatenate(out)[:n]


def chao1(freq: np.ndarray, n: int, confidence: float) -> tuple[float, float, float]:
    """Bias-corrected Chao1 and its log-normal interval, from per-pattern hit counts."""
    from scipy import stats

    s_obs = len(freq)
    f1 = int(np.sum(freq == 1))
    f2 = int(np.sum(freq == 2))
    k = (n - 1) / n if n > 0 else 1.0
    extra = k * f1 * (f1 - 1) / (2 * (f2 + 1))
    est = s_obs + extra
    if f1 == 0 or extra == 0:
        return float(est), float(s_obs), float(est)
    var = (k * f1 * (f1 - 1) / (2 * (f2 + 1)) + k * k * f1 * (2 * f1 - 1) ** 2 / (4 * (f2 + 1) ** 2)
           + k * k * f1 * f1 * f2 * (f1 - 1) ** 2 / (4 * (f2 + 1) ** 4))
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    C = math.exp(z * math.sqrt(math.log(1 + var / extra ** 2)))
    return float(est), float(s_obs + extra / C), float(s_obs + extra * C)


def point_patterns(net: Network, X: np.ndarray, device, chunk: int = 65536) -> np.ndarray:
    """Packed activation patterns of points X (one row of bytes per point), on the device (on the
    host for max pools over 3+ values: the kernel knows no winner-take-all groups)."""
    from lrenum.kernels.forward import packed_patterns

    hidden = net.hidden_widths
    n = max(hidden)
    per = -(-n // 8)
    if net.has_groups:
        out = []
        for s in range(0, len(X), chunk):
            bits = net.layer_slices(net.patterns(X[s:s + chunk]), net.n_hidden)
            out.append(np.concatenate([np.packbits(np.pad(b, [(0, 0), (0, 8 * per - b.shape[1])]), axis=1,
                                                   bitorder="little") for b in bits], axis=1))
        return np.concatenate(out)
    n_in = max(n, net.input_dim)
    Ws = np.stack([np.pad(W, [(0, n - W.shape[0]), (0, n_in - W.shape[1])]) for W in net.weights[:-1]])
    bs = np.stack([np.pad(b, (0, n - len(b))) for b in net.biases[:-1]])
    slopes = np.stack([np.pad(a, (0, n - len(a))) for a in net.slopes])
    live = np.stack([np.pad(~m, (0, n - len(m))) for m in net.linear])
    out = []
    for s in range(0, len(X), chunk):
        part = X[s:s + chunk]
        k = len(part)
        size = chunk if k > 1024 else 1024
        with runtime.on_device(device):
            bits = packed_patterns(np.pad(part, [(0, size - k), (0, 0)]), Ws, bs, slopes, live)
        out.append(np.asarray(bits)[:k])
    return np.concatenate(out)


def unpack_patterns(net: Network, packed: np.ndarray) -> np.ndarray:
    """Packed rows from :func:`point_patterns` -> (K, N) bool flat patterns."""
    n = max(net.hidden_widths)
    per = -(-n // 8)
    parts = []
    for l, w in enumerate(net.hidden_widths):
        parts.append(np.unpackbits(packed[:, l * per:(l + 1) * per], axis=1, bitorder="little")[:, :w])
    return np.concatenate(parts, axis=1).astype(bool)


def points_estimate(net: Network, domain: Optional[Domain] = None, *, points: int = 100_000, seed: int = 0,
                    confidence: float = 0.95, settings: Optional[Settings] = None, exact_limit: int = 1000) -> Estimate:
    """Distinct patterns of uniform points (certain lower bound) and the Chao1 estimate."""
    from ..certify.patterns import check_patterns

    domain = _check_common(net, domain, confidence)
    if points < 1:
        raise InputError("--points must be at least 1")
    dev = runtime.select_device((settings or Settings.build()).device)
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    X = sample_domain(domain, points, rng)
    packed = point_patterns(net, X, dev)
    uniq, first, freq = np.unique(packed, axis=0, return_index=True, return_counts=True)
    ok = check_patterns(net, domain, unpack_patterns(net, uniq), X[first], exact_limit=exact_limit)
    est, lo, hi = chao1(freq, points, confidence)
    lower = int(ok.sum())
    return Estimate("points", est, max(lo, lower), max(hi, lower), confidence, lower, time.perf_counter() - t0,
                    {"points": points, "seed": seed, "distinct": int(len(uniq)), "singletons": int(np.sum(freq == 1)),
                     "doubletons": int(np.sum(freq == 2)), "device": runtime.describe_device(dev)})
