"""Coverage of the tree estimator's intervals: how often they contain the exact count.

    python experiments/estimator_coverage.py [--seeds 100] [--probes 256]

For trained networks of the digits zoo (and checkpoints along training) and random networks,
the exact count comes from enumeration; then the tree estimator runs with ``--seeds`` different
seeds and both intervals (Cox's log-normal, Student-t) are checked against it. Written to
``experiments/results/estimator_coverage.{md,json}`` with the device.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

import lrenum  # noqa: E402
from common import MODELS, RESULTS, device_name, load_model, random_network  # noqa: E402
from lrenum.counting.estimate import log_interval, mean_interval, tree_estimate  # noqa: E402

CASES = [("pca2_16x16", None), ("pca4_8x8", None), ("pca2_8x8x8", None), ("pca8_10x6", None),
         ("checkpoints/pca2_16x16_epoch0025", None), ("checkpoints/pca4_8x8_epoch0010", None),
         ("random 3-[8,8,8]", (3, [8, 8, 8], 1)), ("random 4-[10,10]", (4, [10, 10], 2)),
         ("random 2-[12,12,12]", (2, [12, 12, 12], 3))]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--probes", type=int, default=256)
    ap.add_argument("--confidence", type=float, default=0.95)
    args = ap.parse_args(argv)
    rows = []
    for name, spec in CASES:
        if spec is None:
            if not os.path.exists(os.path.join(MODELS, name + ".npz")):
                continue
            net, dom = load_model(name)
        else:
            net, dom = random_network(*spec)
        exact = lrenum.enumerate_regions(net, dom).regions
        hit = {"log": 0, "t": 0, "union": 0}
        width = {"log": [], "t": [], "union": []}
        t0 = time.perf_counter()
        for seed in range(args.seeds):
            est = tree_estimate(net, dom, probes=args.probes, seed=seed, confidence=args.confidence)
            lower = est.lower_bound
            both = {"log": log_interval(est.samples, args.confidence),
                    "t": mean_interval(est.samples, args.confidence)[1:]}
            both["union"] = (min(both["log"][0], both["t"][0]), max(both["log"][1], both["t"][1]))
            for kind in ("log", "t", "union"):
                lo, hi = both[kind]
                lo, hi = max(lo, lower), max(hi, lower)       # as tree_estimate reports them
                hit[kind] += int(lo <= exact <= hi)
                width[kind].append((hi - lo) / exact)
        rows.append({"network": name, "exact": exact, "seeds": args.seeds, "probes": args.probes,
                     "coverage_log": hit["log"] / args.seeds, "coverage_t": hit["t"] / args.seeds,
                     "coverage_union": hit["union"] / args.seeds,
                     "median_rel_width_log": round(float(np.median(width["log"])), 3),
                     "median_rel_width_t": round(float(np.median(width["t"])), 3),
                     "median_rel_width_union": round(float(np.median(width["union"])), 3),
                     "seconds": round(time.perf_counter() - t0, 1)})
        print(json.dumps(rows[-1]), flush=True)
    dev = device_name()
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "estimator_coverage.json"), "w") as f:
        json.dump({"device": dev, "confidence": args.confidence, "rows": rows}, f, indent=1)
    total = sum(r["seeds"] for r in rows)
    with open(os.path.join(RESULTS, "estimator_coverage.md"), "w") as f:
        f.write(f"# Coverage of the tree estimator's {100 * args.confidence:g}% intervals\n\n"
                f"Device: {dev}. {args.probes} probes per estimate, {args.seeds} seeds per network; "
                "`coverage` = fraction of seeds whose interval contains the exact count (from enumeration); "
                "`width` = median interval width relative to the exact count.\n\n"
                "| network | exact regions | coverage, Student-t | coverage, log (Cox) | coverage, union | "
                "width, t | width, log | width, union |\n|---|---|---|---|---|---|---|---|\n")
        for r in rows:
            f.write(f"| {r['network']} | {r['exact']:,} | {r['coverage_t']:.2f} | {r['coverage_log']:.2f} | "
                    f"{r['coverage_union']:.2f} | {r['median_rel_width_t']} | {r['median_rel_width_log']} | "
                    f"{r['median_rel_width_union']} |\n")
        cov = {k: sum(r[f"coverage_{k}"] * r["seeds"] for r in rows) / total for k in ("t", "log", "union")}
        f.write(f"| **all** | | **{cov['t']:.3f}** | **{cov['log']:.3f}** | **{cov['union']:.3f}** | | | |\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
