"""Regions per second of lrenum against the reference enumerator, measured in one run.

    python experiments/bench_enumerate.py [--quick] [--out experiments/results]

For a fixed, seeded family of networks it runs lrenum in-process (after one warm-up call,
so that compilation is reported separately) and the sequential one-LP-at-a-time float64
reference enumerator from the test suite, checks that both find the same patterns, and
prints regions per second and their ratio. For the 5-12-6-6 target network it also times
the whole process ``lrenum enumerate --json`` (start-up and compilation included) with a
cold and a warm persistent compilation cache. Results are written as JSON and markdown
named after the device and the date.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))

import lrenum  # noqa: E402
from reference import reference_patterns  # noqa: E402

FAMILY = [  # (name, input dim, hidden widths, seed)
    ("2-8-8", 2, [8, 8], 1),
    ("3-10-8", 3, [10, 8], 2),
    ("4-8-8-8", 4, [8, 8, 8], 3),
    ("5-12-6-6", 5, [12, 6, 6], 2026),
]


def make_net(d, widths, seed):
    rng = np.random.default_rng(seed)
    dims = [d] + widths + [1]
    Ws = [rng.normal(size=(dims[i + 1], dims[i])) / np.sqrt(dims[i]) * 1.5 for i in range(len(dims) - 1)]
    bs = [rng.normal(size=dims[i + 1]) * 0.5 for i in range(len(dims) - 1)]
    return Ws, bs


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} cores)"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def whole_process(path: str, cache_dir: str) -> tuple[float, dict]:
    env = dict(os.environ, LRENUM_CACHE_DIR=cache_dir)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "lrenum", "enumerate", path, "--json", "-q", "--device", "cpu"],
                         capture_output=True, text=True, env=env, check=True)
    return time.perf_counter() - t0, json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the largest case")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args()
    cases = FAMILY[:-1] if args.quick else FAMILY
    device = lrenum.enumerate_regions(lrenum.make_network(*make_net(2, [3], 0)), None, lrenum.Settings(device="cpu")).device
    device_name = f"{device} / {cpu_name()}"
    rows = []
    for name, d, widths, seed in cases:
        Ws, bs = make_net(d, widths, seed)
        net = lrenum.make_network(Ws, bs)
        t0 = time.perf_counter()
        lrenum.enumerate_regions(net, None, lrenum.Settings(device="cpu"))          # warm-up: compilation
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = lrenum.enumerate_regions(net, None, lrenum.Settings(device="cpu"), collect=True)
        fast = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref = reference_patterns(Ws, bs, -1.0, 1.0)
        slow = time.perf_counter() - t0
        same = {tuple(int(v) for v in p) for p in res.patterns} == ref
        row = dict(network=name, regions=res.regions, lrenum_s=round(fast, 4), first_call_s=round(first, 4),
                   reference_s=round(slow, 3), lrenum_rps=round(res.regions / fast, 1),
                   reference_rps=round(len(ref) / slow, 1), speedup=round(slow / fast, 1), patterns_equal=same,
                   lps=res.stats.lps, lps_avoided=res.stats.avoided, clarabel_redecisions=res.stats.float_redecisions,
                   exact=res.stats.exact_decisions)
        rows.append(row)
        print(json.dumps(row), flush=True)
    whole = None
    if not args.quick:
        Ws, bs = make_net(5, [12, 6, 6], 2026)
        ref_s = next(r["reference_s"] for r in rows if r["network"] == "5-12-6-6")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "net.npz")
            lrenum.save_npz(path, lrenum.make_network(Ws, bs))
            cold, s1 = whole_process(path, os.path.join(tmp, "cache"))
            warm, s2 = whole_process(path, os.path.join(tmp, "cache"))
        whole = dict(network="5-12-6-6", regions=s2["regions"], cold_cache_s=round(cold, 3), warm_cache_s=round(warm, 3),
                     reference_s=ref_s, speedup_cold=round(ref_s / cold, 1), speedup_warm=round(ref_s / warm, 1))
        print(json.dumps(whole), flush=True)
    stamp = dt.date.today().isoformat()
    os.makedirs(args.out, exist_ok=True)
    base = os.path.join(args.out, f"bench_enumerate-cpu-{stamp}")
    with open(base + ".json", "w") as f:
        json.dump(dict(device=device_name, date=stamp, cases=rows, whole_process=whole), f, indent=1)
    with open(base + ".md", "w") as f:
        f.write(f"# bench_enumerate on {device_name}, {stamp}\n\n")
        f.write("In-process, after a warm-up call (compilation excluded, shown as first call).\n\n")
        f.write("| network | regions | lrenum s | first call s | reference s | lrenum regions/s | reference regions/s | ratio | same patterns | LPs | avoided | float64 re-decisions | exact |\n")
        f.write("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
        for r in rows:
            f.write(f"| {r['network']} | {r['regions']} | {r['lrenum_s']} | {r['first_call_s']} | {r['reference_s']} | "
                    f"{r['lrenum_rps']} | {r['reference_rps']} | {r['speedup']}x | {r['patterns_equal']} | {r['lps']} | "
                    f"{r['lps_avoided']} | {r['certified']} | {r['exact']} |\n")
        if whole:
            f.write("\nWhole process `lrenum enumerate --json` (Python start-up, import, compilation or cache load included):\n\n")
            f.write("| network | regions | cold cache s | warm cache s | reference s | ratio cold | ratio warm |\n|---|---|---|---|---|---|---|\n")
            f.write(f"| {whole['network']} | {whole['regions']} | {whole['cold_cache_s']} | {whole['warm_cache_s']} | "
                    f"{whole['reference_s']} | {whole['speedup_cold']}x | {whole['speedup_warm']}x |\n")
    print(f"wrote {base}.json and .md")


if __name__ == "__main__":
    main()
