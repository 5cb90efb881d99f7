"""Whole-process speed of a sharded run (Ray workers) against one process, measured in one run.

    python experiments/bench_ray.py [--workers 2] [--net PATH] [--tasks-per-worker 8]

Runs ``lrenum enumerate NET -o FILE --json -q`` as a fresh process without and with
``--workers N`` (Ray start-up, worker start-up and compilation included), checks that both files
hold the same pattern set, and records wall times, their ratio and the driver's cost per task
(merge and commit). Results: ``experiments/results/bench_ray-<date>.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

import lrenum  # noqa: E402
from common import RESULTS, device_name  # noqa: E402


def default_net(path: str) -> None:
    """A random 4-input network with widths 14, 14, 10 on [-1, 1]^4 (~1.5e5 regions)."""
    rng = np.random.default_rng(2026)
    dims = [4, 14, 14, 10, 1]
    Ws = [rng.normal(size=(dims[i + 1], dims[i])) / np.sqrt(dims[i]) * 1.5 for i in range(len(dims) - 1)]
    bs = [rng.normal(size=dims[i + 1]) * 0.5 for i in range(len(dims) - 1)]
    lrenum.save_npz(path, lrenum.make_network(Ws, bs))


def run(args_list: list[str]) -> tuple[dict, float]:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "lrenum"] + args_list, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout), wall


def patterns(path: str) -> set:
    with lrenum.open(path) as f:
        return {p.tobytes() for p in np.packbits(f.final()["pattern"], axis=1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--net", help="network file (default: a seeded random 4-14-14-10 network)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        net = args.net or os.path.join(tmp, "net.npz")
        if not args.net:
            default_net(net)
        one, one_wall = run(["enumerate", net, "-o", os.path.join(tmp, "one.h5"), "--json", "-q"])
        many, many_wall = run(["enumerate", net, "-o", os.path.join(tmp, "many.h5"), "--json", "-q",
                               "--workers", str(args.workers)])
        same = patterns(os.path.join(tmp, "one.h5")) == patterns(os.path.join(tmp, "many.h5"))
    row = {"network": args.net or "random 4-14-14-10 (seed 2026)", "regions": one["regions"],
           "one_process_seconds": round(one_wall, 2), "workers": args.workers,
           "sharded_seconds": round(many_wall, 2), "speedup": round(one_wall / many_wall, 2),
           "same_pattern_set": same, "sharded_regions": many["regions"], "device": device_name(),
           "cpu_cores": os.cpu_count(),
           **{k: many.get(k) for k in ("tasks", "ray_start_seconds", "top_split_seconds", "driver_commit_seconds",
                                       "task_file_bytes", "worker_seconds")}}
    print(json.dumps(row))
    os.makedirs(RESULTS, exist_ok=True)
    stem = os.path.join(RESULTS, f"bench_ray-{dt.date.today().isoformat()}")
    json.dump(row, open(stem + ".json", "w"), indent=1)
    with open(stem + ".md", "w") as f:
        f.write(f"# Sharded enumeration (Ray) against one process\n\nDevice: {row['device']}. Whole processes "
                f"(`lrenum enumerate -o ... --json -q`), Ray and worker start-up included.\n\n"
                f"| network | regions | one process s | {args.workers} workers s | speed-up | same set |\n|---|---|---|---|---|---|\n"
                f"| {row['network']} | {row['regions']:,} | {row['one_process_seconds']} | {row['sharded_seconds']} | "
                f"{row['speedup']}x | {same} |\n\n"
                f"Driver: Ray start {row['ray_start_seconds']} s, in-process top split {row['top_split_seconds']} s, "
                f"{row['tasks']} tasks, commits {row['driver_commit_seconds']} s for {row['task_file_bytes']:,} bytes of "
                f"task files; workers busy {row['worker_seconds']} s in all.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
