"""MIPBound: a probabilistic lower bound on the number of regions from random parity constraints.

Serra and Ramalingam (AAAI 2020) apply the MBound argument of Gomes, Sabharwal and Selman
(2006) to the MILP encoding of the network (:mod:`lrenum.milp`). The guarantee we state and
implement:

    Let S be the set of patterns of full-dimensional regions and let one *trial* at level s
    add s random XOR constraints on the binaries of the unstable neurons (each binary in
    each XOR with probability 1/2, each parity bit fair). For any fixed pattern,
    P(it satisfies all s XORs) = 2^-s, so by Markov's inequality
    P(some pattern of S satisfies them) <= |S| 2^-s. A trial *succeeds* only if the solver
    returns a solution whose pattern satisfies the XORs and passes lrenum's exact check
    (:mod:`lrenum.patterncheck`); solver errors, time-outs and rejected patterns count as
    failures, so P(success) <= |S| 2^-s whatever the solver does.
    If |S| < B then, with k successes in T independent trials,
    P(K >= k) <= P(Binomial(T, B 2^-s) >= k). For each level s we report the largest B with
    that tail <= delta_s = (1 - confidence) / (number of levels that may be tried), so by a
    union bound, with probability >= confidence, *every* reported B_s is <= |S|; the result
    is ``max(max_s B_s, distinct verified patterns)`` (the latter is certain).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from ..model.domain import Domain, box_domain
from ..errors import InputError
from ..model.network import Network


@dataclass
class MipBoundResult:
    lower_bound: int
    confidence: float
    xors: int                        # the level s that gave the bound
    seconds: float
    verified_patterns: int           # distinct patterns found and checked: a certain lower bound
    levels: list = field(default_factory=list)   # per level: s, trials, successes, bound
    backend: str = ""
    workers: Optional[int] = None    # Ray workers that ran the trials (None: this process)

    def summary(self) -> dict:
        out = {"lower_bound": self.lower_bound, "confidence": self.confidence, "xors": self.xors,
               "seconds": round(self.seconds, 6), "verified_patterns": self.verified_patterns,
               "levels": self.levels, "backend": self.backend}
        if self.workers is not None:
            out["workers"] = self.workers
        return out


def level_bound(successes: int, trials: int, s: int, delta: float) -> int:
    """Largest integer B with P(Bin(trials, B 2^-s) >= successes) <= delta (0 if none)."""
    from scipy import stats

    if successes == 0:
        return 0
    # the tail grows with p; bisection for the largest p with tail <= delta
    tail = lambda p: float(stats.binom.sf(successes - 1, trials, p))
    if tail(1e-300) > delta:
        return 0
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if tail(mid) <= delta:
            lo = mid
        else:
            hi = mid
    # |S| >= lo * 2^s in exact terms; the integer bound is the ceiling (strictly: |S| >= B for
    # every B <= lo 2^s), rounded down a hair to stay on the safe side of the bisection
    return max(0, math.ceil(lo * 2.0 ** s * (1 - 1e-12)))


def run_trial(model, net: Network, domain: Domain, xors: list, backend: str, time_limit: float) -> Optional[bytes]:
    """One trial: the MILP with these XOR constraints; the packed pattern it found, verified (parity
    rechecked on the rounded binaries, the pattern checked at the MILP's point), or None."""
    from . import milp
    from ..certify.patterns import check_patterns

    m = model.with_objective(model.c)
    m.xors = xors
    res = milp.solve(m, backend=backend, time_limit=time_limit)
    if res.x is None:
        return None
    pattern = model.pattern(res.x)
    v = np.round(res.x).astype(np.int64)
    if not all(int(v[idx].sum()) % 2 == par for idx, par in xors):
        return None
    if not check_patterns(net, domain, pattern[None], res.x[model.x_slice][None])[0]:
        return None
    return np.packbits(pattern).tobytes()


def _run_sequentially(model, net, domain, trial_xors: list, backend: str, time_limit: float) -> list:
    return [run_trial(model, net, domain, xors, backend, time_limit) for xors in trial_xors]


def mipbound(net: Network, domain: Optional[Domain] = None, *, trials: int = 8, confidence: float = 0.95,
             time_limit: float = 30.0, seed: int = 0, backend: str = "auto", max_xors: Optional[int] = None,
             margin: float = 1e-5, progress: bool = False, run_trials: Callable = _run_sequentially) -> MipBoundResult:
    """Run MIPBound: levels s = 0, 1, 2, ... with ``trials`` random XOR sets each, until a
    level has no success (or ``max_xors``).

    ``run_trials(model, net, domain, trial_xors, backend, time_limit)`` runs one level's trials
    (independent MILPs) and returns their results in order; the default runs them here, and
    :func:`lrenum.distributed.mipbound_sharded` passes one that runs them on Ray workers. The XOR
    sets are drawn here, in the same order either way, so a seed gives the same bound."""
    import sys

    from . import milp
    from .preact import preactivation_bounds

    if domain is None:
        domain = box_domain(-1.0, 1.0, net.input_dim)
    if domain.box is None:
        raise InputError("mipbound needs a bounded domain (big-M constants come from pre-activation bounds)")
    if not 0.0 < confidence < 1.0:
        raise InputError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    if trials < 1:
        raise InputError("--trials must be at least 1")
    if time_limit <= 0:
        raise InputError("--time-limit must be positive")
    if backend == "auto":
        backend = milp.available_backends()[0]
    elif backend not in milp.available_backends():
        raise InputError(f"MILP backend {backend!r} is not installed (available: {milp.available_backends()}; "
                         "pip install 'lrenum[mipbound]' for SCIP)")
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    pb = preactivation_bounds(net, domain)
    model = milp.encode(net, domain, pb, margin=margin)
    nb = len(model.binaries)
    top = nb if max_xors is None else min(nb, max_xors)
    delta = (1.0 - confidence) / (top + 1)
    found: set = set()
    levels = []
    best, best_s = 0, 0
    for s in range(top + 1):
        trial_xors = []
        for _ in range(trials):
            xors = []
            for _ in range(s):
                pick = model.binaries[rng.random(nb) < 0.5]
                xors.append((pick, int(rng.integers(2))))
            trial_xors.append(xors)
        hits = [h for h in run_trials(model, net, domain, trial_xors, backend, time_limit) if h is not None]
        succ = len(hits)
        found.update(hits)
        bound = level_bound(succ, trials, s, delta)
        levels.append({"xors": s, "trials": trials, "successes": succ, "bound": bound})
        if progress:
            print(f"mipbound: {s} XORs: {succ}/{trials} feasible, bound {bound}", file=sys.stderr)
        if bound > best:
            best, best_s = bound, s
        if succ == 0:
            break
    return MipBoundResult(max(best, len(found)), confidence, best_s, time.perf_counter() - t0, len(found),
                          levels, backend)
