"""Whole-process speed of a sharded run (Ray workers) against one process, measured in one run.

    python experiments/bench_ray.py [--workers 2] [--net PATH ...] [--task-seconds S] [--repeat K] [--tag T]

Runs ``lrenum enumerate NET -o FILE --json -q`` as a fresh process without and with
``--workers N`` (Ray start-up, worker start-up and compilation included), alternately ``--repeat``
times, checks that both files hold the same pattern set, and records wall times, the ratio of the
medians and the driver's cost (top split, commits). ``--net d4-32`` / ``d4-40`` / ``d4-48`` are seeded random 4-input
networks with three hidden layers of 32 (923,463 regions), 40 (1,583,789) or 48 (3,745,357; the vertex path). Results:
``experiments/results/bench_ray-<date>[-tag].{json,md}``.
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
from common import RESULTS, device_name, write_results  # noqa: E402


def default_net(path: str) -> None:
    """A random 4-input network with widths 14, 14, 10 on [-1, 1]^4 (~1.5e5 regions)."""
    rng = np.random.default_rng(2026)
    dims = [4, 14, 14, 10, 1]
    Ws = [rng.normal(size=(dims[i + 1], dims[i])) / np.sqrt(dims[i]) * 1.5 for i in range(len(dims) - 1)]
    bs = [rng.normal(size=dims[i + 1]) * 0.5 for i in range(len(dims) - 1)]
    lrenum.save_npz(path, lrenum.make_network(Ws, bs))


def d4_net(width: int):
    """A random 4-input network with three hidden layers of ``width`` on [-1, 1]^4 (seed 7)."""
    def build(path: str) -> None:
        rng = np.random.default_rng(7)
        dims = [4, width, width, width, 1]
        Ws = [rng.normal(size=(dims[i + 1], dims[i])) / np.sqrt(dims[i]) * 1.5 for i in range(len(dims) - 1)]
        bs = [rng.normal(size=dims[i + 1]) * 0.5 for i in range(len(dims) - 1)]
        lrenum.save_npz(path, lrenum.make_network(Ws, bs))
    return build


BUILT = {"default": ("random 4-14-14-10 (seed 2026)", default_net),
         "d4-32": ("random 4-32-32-32 (seed 7)", d4_net(32)), "d4-40": ("random 4-40-40-40 (seed 7)", d4_net(40)),
         "d4-48": ("random 4-48-48-48 (seed 7)", d4_net(48))}


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
    ap.add_argument("--net", nargs="+", default=["default"],
                    help="network files, or 'default' / 'd4-32' for the seeded random networks")
    ap.add_argument("--task-seconds", type=float, default=None, help="passed to lrenum (default: lrenum's)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--tag", default="")
    args = ap.parse_args(argv)
    rows = []
    for spec in args.net:
        with tempfile.TemporaryDirectory() as tmp:
            if spec in BUILT:
                name, build = BUILT[spec]
                net = os.path.join(tmp, "net.npz")
                build(net)
            else:
                name, net = spec, spec
            extra = [] if args.task_seconds is None else ["--task-seconds", str(args.task_seconds)]
            ones, manys = [], []
            for _ in range(args.repeat):   # alternate, so that a slow spell of the machine hits both
                one, wall = run(["enumerate", net, "-o", os.path.join(tmp, "one.h5"), "--json", "-q", "--force"])
                ones.append(wall)
                many, wall = run(["enumerate", net, "-o", os.path.join(tmp, "many.h5"), "--json", "-q", "--force",
                                  "--workers", str(args.workers)] + extra)
                manys.append(wall)
                print(f"{name}: one {ones[-1]:.1f} s, {args.workers} workers {manys[-1]:.1f} s", file=sys.stderr)
            same = patterns(os.path.join(tmp, "one.h5")) == patterns(os.path.join(tmp, "many.h5"))
        one_wall, many_wall = float(np.median(ones)), float(np.median(manys))
        row = {"network": name, "regions": one["regions"], "one_process_seconds": round(one_wall, 2),
               "one_process_runs": [round(t, 2) for t in ones], "workers": args.workers,
               "sharded_seconds": round(many_wall, 2), "sharded_runs": [round(t, 2) for t in manys],
               "speedup": round(one_wall / many_wall, 2), "same_pattern_set": same,
               "pair_speedups": [round(a / b, 2) for a, b in zip(ones, manys)],
               "sharded_regions": many["regions"], "task_seconds": args.task_seconds, "device": device_name(),
               "cpu_cores": os.cpu_count(),
               **{k: many.get(k) for k in ("tasks", "tasks_handed_back", "ray_start_seconds", "top_split_seconds",
                                           "driver_commit_seconds", "task_file_bytes", "worker_seconds",
                                           "first_task_start_seconds", "tail_idle_seconds", "merge_seconds")}}
        print(json.dumps(row))
        rows.append(row)
    stem = os.path.join(RESULTS, f"bench_ray-{dt.date.today().isoformat()}" + (f"-{args.tag}" if args.tag else ""))
    write_results(stem, rows, "Sharded enumeration (Ray) against one process",
                  f"Device: {rows[0]['device']}. Whole processes (`lrenum enumerate -o ... --json -q`), Ray and worker "
                  f"start-up included; medians of {args.repeat} alternating run(s).",
                  [("network", lambda r: r["network"]), ("regions", lambda r: f"{r['regions']:,}"),
                   ("one process s", lambda r: r["one_process_seconds"]),
                   (f"{args.workers} workers s", lambda r: r["sharded_seconds"]), ("speed-up", lambda r: f"{r['speedup']}x"),
                   ("pairs", lambda r: ", ".join(f"{x}x" for x in r["pair_speedups"])),
                   ("same set", lambda r: r["same_pattern_set"]),
                   ("tasks (handed back)", lambda r: f"{r['tasks']} ({r['tasks_handed_back']})"),
                   ("top split s", lambda r: r["top_split_seconds"]), ("first task at s", lambda r: r["first_task_start_seconds"]),
                   ("driver commits s", lambda r: r["driver_commit_seconds"]), ("workers busy s", lambda r: r["worker_seconds"]),
                   ("idle at the end s", lambda r: r["tail_idle_seconds"]), ("merge s", lambda r: r["merge_seconds"])])
    return 0


if __name__ == "__main__":
    sys.exit(main())
