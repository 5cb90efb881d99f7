"""Peak memory against the number of regions: whole `lrenum enumerate` processes, one per network.

    python experiments/bench_memory.py [--quick] [--tag T]

The walk's memory is bounded by its batch and split budget, not by the regions it finds; what
does grow is the first layer's region count (the children of the root, one parent, all waiting
at once, kept compactly past the budget). Two families show both:

* larger domain: one 4-input 24-24-24 network on [-h, h]^4, h = 0.5, 1, 2, 4, 8: more regions, the same
  network and depth: the peak should not grow with the regions;
* deeper: 4 inputs, width 24, depth 2 / 3 / 4 (75,099 / 216,251 / 672,515 regions; depth 3 is
  the h = 1 network above): each layer adds one stack of waiting regions (at most the split
  budget of them);
* wider: 4 inputs, three layers of 32 or 48 (923,463 / 3,745,357 regions; 12,866 / 66,259 in the
  first layer): the root's children wait all at once, compactly past the budget.

Peak resident memory from ``/usr/bin/time`` (GNU time's %M). ``--quick`` leaves out the
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
]
QUICK_SKIP = {"d4-48x3", "d4-24x3-h4", "d4-24x3-h8"}


def save(case, path: str) -> None:
    name, _, d, widths, seed_name = case[:5]
    h = case[5] if len(case) > 5 else 1.0
    if seed_name is not None:
        net, _ = build((seed_name, d, widths))
    else:   # the networks of bench_ray.py (seed 7), so the two benchmarks share them
        from bench_ray import d4_net

        d4_net(widths[0])(path)
        return
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
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES:
            if (args.quick and case[0] in QUICK_SKIP) or (args.cases and case[0] not in args.cases):
                continue
            path = os.path.join(tmp, case[0] + ".npz")
            save(case, path)
            row = {"network": case[0], "family": case[1], "widths": case[3], **measure(path)}
            print(f"{case[0]}: {row['regions']} regions, peak {row['peak_mb']} MB, {row['wall_seconds']} s", flush=True)
            rows.append(row)
    device = device_name("cpu")
    stem = os.path.join(RESULTS, f"memory-cpu-{dt.date.today().isoformat()}" + (f"-{args.tag}" if args.tag else ""))
    write_results(stem, rows, "Peak memory against regions (`lrenum enumerate NET --json -q`)",
                  f"Device: {device}. Whole processes, one after another; peak resident memory by GNU time. "
                  "`experiments/bench_memory.py`.",
                  [("network", lambda r: r["network"]), ("family", lambda r: r["family"]),
                   ("regions", lambda r: f"{r['regions']:,}"), ("first layer", lambda r: f"{r['per_layer'][0]:,}"),
                   ("layers", lambda r: len(r["widths"])), ("peak MB", lambda r: r["peak_mb"]), ("wall s", lambda r: r["wall_seconds"])])
    print(f"wrote {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
