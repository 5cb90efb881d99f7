"""The hyperplane-level probe estimator against the exact count and the tree estimator, in one run.

    python experiments/bench_probes.py [--nets NAME ...] [--probes K] [--out DIR]

For each network (MNIST zoo names, or bench_lowd's random `b-dD-WxW...` networks): the exact count
and its time (where `--exact` names it), the probe estimate run in rounds (doubling up to
`--probes`) until its 95% interval is within +-10% or its time reaches 5% of the exact run's (120 s
where no exact count is run), and the tree estimator with 256 probes (`--no-tree`: not).
Results: results/probes-<device>-<date>.{json,md}. In process, one network after another; each
estimator's first call compiles its kernels (included: a user's first run pays it too).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import lrenum  # noqa: E402
from bench import build  # noqa: E402
from bench_enumerate import cpu_name  # noqa: E402
from lrenum.counting.estimate import tree_estimate  # noqa: E402
from lrenum.counting.probes import probe_estimate  # noqa: E402

MODELS = os.path.join(HERE, "models")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", nargs="*", default=["mnist_8x8", "mnist_8x14", "mnist_16x16", "mnist_32x32x32"])
    ap.add_argument("--exact", nargs="*", default=["mnist_8x8", "mnist_8x14"], help="networks counted exactly too")
    ap.add_argument("--probes", type=int, default=16384, help="most probes per round")
    ap.add_argument("--no-tree", action="store_true", help="skip the tree estimator")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--keep", action="store_true", help="keep today's rows of networks not run now")
    args = ap.parse_args()
    device = f"cpu / {cpu_name()}"
    rows = []
    earlier = os.path.join(args.out, f"probes-cpu-{dt.date.today().isoformat()}.json")
    if args.keep and os.path.exists(earlier):      # rows of another run today, for networks not rerun now
        rows = [r for r in json.load(open(earlier))["rows"] if r["network"] not in args.nets]
    for name in args.nets:
        if name.startswith("b-d"):          # bench_lowd's random networks on [-1, 1]^d
            d = int(name.split("-")[1][1:])
            net, dom = build((name, d, [int(w) for w in name.split("-")[2].split("x")]))
        else:
            net, arr = lrenum.load_network(os.path.join(MODELS, name + ".npz"))
            dom = lrenum.box_domain(arr["lo"], arr["hi"], net.input_dim)
        row = {"network": name, "widths": list(net.hidden_widths)}
        if name in args.exact:
            t = time.perf_counter()
            row["exact"] = lrenum.enumerate_regions(net, dom).regions
            row["exact_seconds"] = round(time.perf_counter() - t, 2)
        budget = 0.05 * row["exact_seconds"] if "exact_seconds" in row else 120.0
        e = probe_estimate(net, dom, probes=args.probes, seed=0, rel_width=0.1, seconds=budget)
        row["probes"] = {"estimate": e.estimate, "ci": [e.ci_low, e.ci_high], "certain": e.lower_bound,
                         "seconds": round(e.seconds, 2), "probes": e.details["probes"],
                         "half_width": round(e.details["relative_half_width"], 4), "lps": e.details["lps"],
                         "strata": e.details["strata"], "rounds": e.details["rounds"]}
        if not args.no_tree:
            t = tree_estimate(net, dom, probes=256, seed=0)
            row["tree"] = {"estimate": t.estimate, "ci": [t.ci_low, t.ci_high], "certain": t.lower_bound,
                           "seconds": round(t.seconds, 2)}
        rows.append(row)
        print(json.dumps(row), flush=True)
        write(args.out, device, rows)


def write(out: str, device: str, rows: list) -> None:
    stamp = dt.date.today().isoformat()
    os.makedirs(out, exist_ok=True)
    base = os.path.join(out, f"probes-cpu-{stamp}")
    with open(base + ".json", "w") as f:
        json.dump({"device": device, "date": stamp, "rows": rows}, f, indent=1)
    with open(base + ".md", "w") as f:
        f.write(f"# Probe estimator (`--method probes`) on {device}, {stamp}\n\n`experiments/bench_probes.py`: "
                "rounds of probes (stratified and guided) until the 95% t-interval is within +-10% or 5% of the "
                "exact run's time has passed (120 s without an exact run); the tree estimator with 256 probes "
                "beside it where it ran. Exact counts and estimates in one process, one network after another.\n\n")
        f.write("| network | exact | exact s | probes: estimate [95% interval] | half-width | covers | certain | "
                "probes (strata) | s | % of exact time | tree: estimate [interval] | tree s |\n|---|---|---|---|---|---|---|"
                "---|---|---|---|---|\n")
        for r in rows:
            p, t = r["probes"], r.get("tree", {})
            ex = r.get("exact")
            cover = "" if ex is None else str(p["ci"][0] <= ex <= p["ci"][1])
            share = f"{100 * p['seconds'] / r['exact_seconds']:.1f}%" if "exact_seconds" in r else ""
            tree = f"{t['estimate']:.4g} [{t['ci'][0]:.4g}, {t['ci'][1]:.4g}]" if t else ""
            f.write(f"| {r['network']} | {ex or ''} | {r.get('exact_seconds', '')} | {p['estimate']:.4g} "
                    f"[{p['ci'][0]:.4g}, {p['ci'][1]:.4g}] | {100 * p['half_width']:.1f}% | {cover} | {p['certain']} | "
                    f"{p['probes']} ({p.get('strata', '')}) | {p['seconds']} | {share} | {tree} | {t.get('seconds', '')} |\n")


if __name__ == "__main__":
    main()
