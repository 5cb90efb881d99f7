"""Peak memory against the number of regions: whole `lrenum enumerate` processes, one per network.

    python experiments/bench_memory.py [--quick] [--tag T] [--repeat N] [--cases NAME ...]

The walk's memory is bounded by its batch, its split budget and the pieces in which one parent's
children are built (the root's: bounded by the network, not the batch), not by the regions it
finds; a small run stays below those bounds, so its peak is lower. The families:

* larger domain: one 4-input 24-24-24 network on [-h, h]^4, h = 0.5, 1, 2, 4, 8: more regions, the same
  network and depth: the peak should not grow with the regions;
* deeper: 4 inputs, width 24, depth 2 / 3 / 4 (75,099 / 216,251 / 672,515 regions; depth 3 is
  the h = 1 network above): each layer adds one stack of waiting regions (at most the split
  budget of them);
* wider: 4 inputs, three layers of 32 or 48 (923,463 / 3,745,357 regions; 12,866 / 66,259 in the
  first layer): the root's children come in pieces of at most 2,048 (``split.PIECE_CELLS``), each
  piece's subtree walked before the next;
* wide first layer: 2 inputs, 256-256 (75,601 regions, 256 first-layer hyperplanes);
* larger domain, 48 wide: the 4-input 48-48-48 network on [-h, h]^4, h = 0.2, 0.3 (70,605 /
  198,599 regions) against h = 1 (3,745,357, the "wider" case): 19-53x more regions.

Peak resident memory from ``/usr/bin/time`` (GNU time's %M); ``--repeat N`` runs each network N
times, round-robin, and reports the median and range. ``--quick`` leaves out the
3.7-million-region network (about 3.5 minutes on the 2-core CPU), h = 4 and h = 8. Results:
``results/memory-<device>-<date>[-tag].{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

import lrenum  # noqa: E402
from bench import build  # noqa: E402
from common import RESULTS, device_name, write_results  # noqa: E402

TIME = shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time") else None)

CASES = [  # (name, family, d, widths, builder seed name, box half-width)
    ("d4-24x3-h0.5", "larger domain", 4, [24, 24, 24], "mem", 0.5),
    ("d4-24x3-h1", "larger domain", 4, [24, 24, 24], "mem", 1.0),
    ("d4-24x3-h2", "larger domain", 4, [24, 24, 24], "mem", 2.0),
    ("d4-24x3-h4", "larger domain", 4, [24, 24, 24], "mem", 4.0),
    ("d4-24x3-h8", "larger domain", 4, [24, 24, 24], "mem", 8.0),
    ("d4-24x2", "deeper", 4, [24, 24], "mem"),
    ("d4-24x4", "deeper", 4, [24, 24, 24, 24], "mem"),
    ("d4-32x3", "wider", 4, [32, 32, 32], None),
    ("d4-48x3", "wider", 4, [48, 48, 48], None),
    ("d4-48x3-h0.2", "larger domain, 48 wide", 4, [48, 48, 48], None, 0.2),
    ("d4-48x3-h0.3", "larger domain, 48 wide", 4, [48, 48, 48], None, 0.3),
    ("d2-256x2", "wide first layer", 2, [256, 256], "b-d2-256x256"),   # bench_lowd.py's network: 75,601 regions
]
QUICK_SKIP = {"d4-48x3", "d4-24x3-h4", "d4-24x3-h8", "d4-48x3-h0.2", "d4-48x3-h0.3"}


def save(case, path: str) -> None:
    name, _, d, widths, seed_name = case[:5]
    h = case[5] if len(case) > 5 else 1.0
    if seed_name is not None:
        net, _ = build((seed_name, d, widths))
    else:   # the networks of bench_ray.py (seed 7, on [-1, 1]^4 there), so the two benchmarks share them
        from bench_ray import d4_net

        d4_net(widths[0])(path)
        net, _ = lrenum.load_npz(path)
    lrenum.save_npz(path, net, lo=-h * np.ones(d), hi=h * np.ones(d))


def measure(path: str) -> dict:
    cmd = [sys.executable, "-m", "lrenum", "enumerate", path, "--json", "-q"]
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        t0 = time.perf_counter()
        proc = subprocess.run(([TIME, "-f", "%M", "-o", tf.name] if TIME else []) + cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-2000:])
        peak_kb = tf.read().strip().splitlines()[-1] if TIME else ""
    out = json.loads(proc.stdout)
    return {"regions": out["regions"], "per_layer": out["per_layer"], "wall_seconds": round(wall, 2),
            "peak_mb": round(int(peak_kb) / 1024, 1) if peak_kb.isdigit() else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tag", default="")
    ap.add_argument("--cases", nargs="*", help="names of the cases to run (default: all)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per network, round-robin over the networks (resident peaks vary by some 10 MB from run "
                         "to run: the median and range are reported)")
    args = ap.parse_args(argv)
    cases = [c for c in CASES if not (args.quick and c[0] in QUICK_SKIP) and not (args.cases and c[0] not in args.cases)]
    runs = {c[0]: [] for c in cases}
    with tempfile.TemporaryDirectory() as tmp:
        for c in cases:
            save(c, os.path.join(tmp, c[0] + ".npz"))
        for _ in range(max(1, args.repeat)):
            for c in cases:
                run = measure(os.path.join(tmp, c[0] + ".npz"))
                print(f"{c[0]}: {run['regions']} regions, peak {run['peak_mb']} MB, {run['wall_seconds']} s", flush=True)
                runs[c[0]].append(run)
    rows = []
    for c in cases:
        got = runs[c[0]]
        peaks = [r["peak_mb"] for r in got if r["peak_mb"] is not None]
        rows.append({"network": c[0], "family": c[1], "widths": c[3], "regions": got[0]["regions"],
                     "per_layer": got[0]["per_layer"], "runs": got,
                     "peak_mb": round(float(np.median(peaks)), 1) if peaks else None,
                     "peak_range": f"{min(peaks):.0f}-{max(peaks):.0f}" if peaks else "",
                     "wall_seconds": round(float(np.median([r["wall_seconds"] for r in got])), 2)})
    device = device_name("cpu")
    stem = os.path.join(RESULTS, f"memory-cpu-{dt.date.today().isoformat()}" + (f"-{args.tag}" if args.tag else ""))
    write_results(stem, rows, "Peak memory against regions (`lrenum enumerate NET --json -q`)",
                  f"Device: {device}. Whole processes, {max(1, args.repeat)} per network, round-robin; peak resident "
                  "memory by GNU time (median, and the range over the runs). `experiments/bench_memory.py`.",
                  [("network", lambda r: r["network"]), ("family", lambda r: r["family"]),
                   ("regions", lambda r: f"{r['regions']:,}"), ("first layer", lambda r: f"{r['per_layer'][0]:,}"),
                   ("layers", lambda r: len(r["widths"])), ("peak MB", lambda r: r["peak_mb"]),
                   ("range MB", lambda r: r["peak_range"]), ("wall s", lambda r: r["wall_seconds"])])
    print(f"wrote {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
