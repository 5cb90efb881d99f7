"""The estimators' Ray wrappers: tree probes and MIPBound trials spread over workers."""

from __future__ import annotations

import time
from typing import Optional

import numpy as np

from ..model.domain import Domain
from ..model.network import Network
from ..settings import Settings
from .ray_runtime import start_ray, stdout_to_stderr


def tree_estimate_sharded(net: Network, domain: Domain, *, workers: int, address: Optional[str] = None,
                          probes: int = 256, branch: int = 1, seed: int = 0, confidence: float = 0.95,
                          interval: str = "union", settings: Optional[Settings] = None):
    """The tree estimator with its probes spread over Ray workers (independent seeds per task),
    pooled into one estimate: the same estimator as one process with the same number of probes."""
    from ..counting.estimate import tree_estimate, tree_result

    settings = settings or Settings.build()
    with stdout_to_stderr():
        ray = start_ray(workers, address)
        t0 = time.perf_counter()
        tasks = min(probes, workers * 2)
        sizes = [probes // tasks + (1 if i < probes % tasks else 0) for i in range(tasks)]
        remote = ray.remote(max_retries=settings.task_retries)(tree_estimate)
        futures = [remote.remote(net, domain, probes=n, branch=branch,
                                 seed=int(np.random.SeedSequence([seed, i]).generate_state(1)[0]),
                                 confidence=confidence, interval=interval, settings=settings)
                   for i, n in enumerate(sizes)]
        parts = ray.get(futures)
    samples = np.concatenate([p.samples for p in parts])
    lower = max(p.lower_bound for p in parts)
    return tree_result(samples, lower, confidence, interval, time.perf_counter() - t0,
                       {"probes": probes, "branch": branch, "seed": seed, "workers": workers, "tasks": tasks,
                        "lps": sum(p.details["lps"] for p in parts), "device": f"ray:{workers} workers"})


def mipbound_sharded(net: Network, domain: Domain, *, workers: int, address: Optional[str] = None,
                     settings: Optional[Settings] = None, **kw):
    """MIPBound with each level's trials (independent MILPs) run as Ray tasks. The driver draws the
    XOR sets in the same order as one process, so a seed gives the same bound; the MILP encoding
    goes to Ray's object store once per level and is shared by that level's tasks."""
    from ..counting.mipbound import mipbound, run_trial

    settings = settings or Settings.build()
    with stdout_to_stderr():
        ray = start_ray(workers, address)
        remote = ray.remote(max_retries=settings.task_retries)(run_trial)

        def run_trials(model, net_, domain_, trial_xors, backend, time_limit):
            refs = [ray.put(v) for v in (model, net_, domain_)]
            return ray.get([remote.remote(*refs, xors, backend, time_limit) for xors in trial_xors])

        res = mipbound(net, domain, run_trials=run_trials, **kw)
    res.workers = workers
    return res
