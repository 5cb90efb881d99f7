"""Exact enumeration of the 784-input MNIST zoo: count, time, rate, peak memory, compile time.

    python experiments/bench_mnist.py [names ...] [--reference-budget SECONDS] [--device cpu|gpu]

Each network runs in its own process (so that its peak resident memory is its own) through the
public API, after which the parent records: regions per layer, seconds (compilation included and
reported apart), regions/s, peak RSS, LPs. With ``--reference-budget`` the sequential
one-LP-at-a-time reference enumerator of the test suite runs too (in-process, HiGHS) and must find
the same pattern set; its time gives the speed-up measured in the same run. Results:
``experiments/results/mnist-<device>-<date>.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

DEFAULT = ["mnist_6x6", "mnist_8x8", "mnist_6x6x6", "mnist_10x12", "mnist_11x11", "mnist_8x14", "mnist_8x8x6"]

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {here!r})
import numpy as np
import lrenum
from common import load_model
net, dom = load_model({name!r})
t = time.perf_counter()
res = lrenum.enumerate_regions(net, dom, lrenum.Settings(device={device!r}), progress=True, collect={collect!r})
wall = time.perf_counter() - t
out = res.summary()
out["wall_seconds"] = round(wall, 3)
out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
if {collect!r}:
    np.save({patterns!r}, res.patterns)
print("RESULT " + json.dumps(out), flush=True)
"""


def run_one(name: str, device, collect: bool, scratch: str) -> dict:
    patterns = os.path.join(scratch, f"{name}.patterns.npy")
    code = CHILD.format(here=HERE, name=name, device=device, collect=collect, patterns=patterns)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed: {proc.stderr[-2000:]}")
    sys.stderr.write(proc.stderr[-400:])
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def reference(name: str, budget: float):
    """(pattern set or None if over budget, seconds) of the test suite's reference enumerator."""
    import signal

    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from common import load_model
    from reference import reference_patterns

    net, dom = load_model(name)
    lo, hi = dom.box

    def stop(*_):
        raise TimeoutError

    signal.signal(signal.SIGALRM, stop)
    signal.alarm(int(budget))
    t = time.perf_counter()
    try:
        pats = reference_patterns(list(net.weights), list(net.biases), lo, hi)
    except TimeoutError:
        return None, time.perf_counter() - t
    finally:
        signal.alarm(0)
    return pats, time.perf_counter() - t


def main(argv=None) -> int:
    import numpy as np

    from common import device_name, model_meta

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", default=DEFAULT)
    ap.add_argument("--device", choices=["cpu", "gpu"])
    ap.add_argument("--reference-budget", type=float, default=0.0,
                    help="also run the reference enumerator for at most this many seconds per network")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--tag", default="", help="suffix for the result file names")
    args = ap.parse_args(argv)
    scratch = os.path.join(ROOT, ".scratch")
    os.makedirs(scratch, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)
    device = device_name(args.device)
    rows = []
    for name in args.names:
        meta = model_meta(name)
        collect = args.reference_budget > 0
        r = run_one(name, args.device, collect, scratch)
        row = {"network": name, "widths": meta.get("hidden_widths"), "test_accuracy": meta.get("test_accuracy"),
               "regions": r["regions"], "per_layer": r["per_layer"], "seconds": r["wall_seconds"],
               "compile_seconds": r["compile_seconds"], "compilations": r["compilations"],
               "regions_per_second": round(r["regions"] / r["wall_seconds"], 1),
               "regions_per_second_after_compile": round(r["regions"] / max(1e-9, r["wall_seconds"] - r["compile_seconds"]), 1),
               "lps": r["lps"], "peak_rss_mb": r["peak_rss_mb"], "exact_decisions": r["exact_decisions"],
               "device": r["device"]}
        if collect:
            pats, ref_sec = reference(name, args.reference_budget)
            row["reference_seconds"] = round(ref_sec, 2)
            if pats is None:
                row["reference"] = f"not finished in {args.reference_budget:g} s"
            else:
                mine = {tuple(int(v) for v in p) for p in np.load(os.path.join(scratch, f"{name}.patterns.npy"))}
                row["reference"] = "same pattern set" if mine == pats else f"MISMATCH ({len(pats)} patterns)"
                row["speedup_vs_reference"] = round(ref_sec / r["wall_seconds"], 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    stamp = dt.date.today().isoformat()
    kind = rows[0]["device"].split(":")[0] if rows else "cpu"
    base = os.path.join(args.out, f"mnist-{kind}-{stamp}{args.tag}")
    with open(base + ".json", "w") as f:
        json.dump({"device": device, "date": stamp, "rows": rows}, f, indent=1)
    with open(base + ".md", "w") as f:
        f.write(f"# Exact enumeration of the MNIST zoo (784 inputs, domain [0,1]^784)\n\nDevice: {device}. Date: {stamp}.\n"
                "Whole enumeration in a fresh process: compilation included in `seconds` (and shown apart).\n\n")
        f.write("| network | widths | test acc. | regions | seconds | compile s | regions/s | peak RSS MB | reference |\n|---|---|---|---|---|---|---|---|---|\n")
        for r in rows:
            ref = r.get("reference", "not run")
            if "speedup_vs_reference" in r:
                ref += f" in {r['reference_seconds']} s ({r['speedup_vs_reference']}x)"
            f.write(f"| {r['network']} | {r['widths']} | {r['test_accuracy']} | {r['regions']:,} | {r['seconds']} | "
                    f"{r['compile_seconds']} | {r['regions_per_second']:,} | {r['peak_rss_mb']} | {ref} |\n")
    print(f"written {base}.json and .md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
