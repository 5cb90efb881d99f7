"""Exact counts next to every estimate and bound lrenum gives, on random and trained networks.

For each network: exact enumeration (where it finishes here), the hyperplane-level probe estimator
(rounds until +-10% or 5% of the exact run's time, 120 s where there is none), the tree estimator,
point sampling (Chao1), MIPBound and the analytic upper bounds, each with its interval and its time.
Writes ``results/compare_counts[-mnist][-quick].{csv,md,png}`` (with ``--nets``, ``-<first name>``
added), rewritten after each network. ``python experiments/compare_counts.py [--quick] [--mnist]
[--nets NAME ...]``. Beyond enumeration MIPBound runs with 3 trials of at most 5 s per MILP and at
most 20 XOR constraints (so its bound is at most about 2^20; without the cap a 3.9e8-region network
took more than 10 minutes of MILPs).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402

import lrenum  # noqa: E402
from lrenum.counting.bounds import compute_bounds  # noqa: E402
from lrenum.counting.estimate import points_estimate, tree_estimate  # noqa: E402
from lrenum.counting.mipbound import mipbound  # noqa: E402
from lrenum.counting.probes import probe_estimate  # noqa: E402

RANDOM = [("rand_2_8x8x8", 2, [8, 8, 8]), ("rand_3_10x10", 3, [10, 10]), ("rand_4_8x8", 4, [8, 8])]
TRAINED = ["pca2_8x8x8", "pca4_8x8", "pca8_8x8", "pca16_6x6", "full64_4x4"]
MNIST = ["mnist_6x6", "mnist_6x6x6", "mnist_8x8", "mnist_8x14",   # 784 inputs on [0,1]^784, the MIPBound paper's
         "mnist_16x16", "mnist_32x32x32"]                          # setting (8x14: 22 units, its size)
BEYOND = {"mnist_16x16", "mnist_32x32x32"}   # no exact count or tree estimate here (hours; > 10 minutes)
FIELDS = ["network", "input_dim", "widths", "method", "value", "ci_low", "ci_high", "certain_lower", "seconds"]


def networks(quick: bool, mnist: bool = False):
    if mnist:
        for name in (MNIST[:1] if quick else MNIST):
            net, dom = common.load_model(name)
            yield name, net, dom
        return
    rand = RANDOM[:1] if quick else RANDOM
    for name, d, widths in rand:
        net, dom = common.random_network(d, widths, seed=0)
        yield name, net, dom
    for name in (TRAINED[:1] if quick else TRAINED):
        net, dom = common.load_model(name)
        yield name, net, dom


def run(quick: bool, mnist: bool = False, only=None, emit=None) -> list[dict]:
    rows = []
    probes, points, trials = (64, 20000, 3) if quick else (256, 100000, 5)
    for name, net, dom in networks(quick, mnist):
        if only and name not in only:
            continue
        base = {"network": name, "input_dim": net.input_dim, "widths": "x".join(map(str, net.hidden_widths))}
        exact, budget = None, 120.0
        if name not in BEYOND:
            t = time.perf_counter()
            exact = lrenum.enumerate_regions(net, dom).regions
            budget = 0.05 * (time.perf_counter() - t)
            rows.append(dict(base, method="exact", value=exact, ci_low=exact, ci_high=exact, certain_lower=exact,
                             seconds=time.perf_counter() - t))
        e = probe_estimate(net, dom, probes=4096, seed=1, rel_width=0.1, seconds=budget)
        rows.append(dict(base, method=f"probes ({e.details['probes']}, {e.details['strata']} strata)", value=e.estimate,
                         ci_low=e.ci_low, ci_high=e.ci_high, certain_lower=e.lower_bound, seconds=e.seconds))
        if name not in BEYOND:
            e = tree_estimate(net, dom, probes=probes, seed=1)
            rows.append(dict(base, method=f"tree ({probes} probes)", value=e.estimate, ci_low=e.ci_low,
                             ci_high=e.ci_high, certain_lower=e.lower_bound, seconds=e.seconds))
        e = points_estimate(net, dom, points=points, seed=1)
        rows.append(dict(base, method=f"points+Chao1 ({points})", value=e.estimate, ci_low=e.ci_low,
                         ci_high=e.ci_high, certain_lower=e.lower_bound, seconds=e.seconds))
        if name in BEYOND:
            m = mipbound(net, dom, trials=3, time_limit=5.0, max_xors=20, seed=1)
            what = "3 trials, <= 20 XORs"
        else:
            m = mipbound(net, dom, trials=trials, time_limit=10.0, seed=1)
            what = f"{trials} trials"
        rows.append(dict(base, method=f"MIPBound ({what}, p>={m.confidence})", value=m.lower_bound,
                         ci_low=m.lower_bound, ci_high="", certain_lower=m.verified_patterns, seconds=m.seconds))
        rep = compute_bounds(net, dom, time_limit=10.0)
        for bname, value in rep.bounds.items():
            rows.append(dict(base, method=f"upper: {bname}", value=value, ci_low="", ci_high=value, certain_lower="",
                             seconds=rep.seconds[bname]))
        print(f"{name}: exact {exact}, mipbound {m.lower_bound}, serra2018 {rep.bounds['serra2018']}, "
              f"activation {rep.bounds['activation']}", file=sys.stderr)
        if emit is not None:
            emit(rows)
    return rows


def write(rows: list[dict], stem: str, device: str) -> None:
    with open(stem + ".csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k]) for k in FIELDS})
    fmt = lambda v: "" if v == "" else (f"{v:.4g}" if isinstance(v, float) else (f"{v:.3e}" if v > 10**7 else str(v)))
    lines = ["# Region counts: exact, estimates and bounds\n", f"Device: {device}. Generated by "
             f"`experiments/compare_counts.py`. `certain` is the lower bound each method proves with no "
             f"probability involved (probes and tree: distinct regions seen; points: distinct certified patterns; "
             f"MIPBound: distinct verified patterns). Probes: rounds until the 95% interval is within +-10% or 5% "
             f"of the exact run's time has passed (120 s without one).\n",
             "| network | d | widths | method | value | interval | certain | seconds |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        interval = "" if r["ci_low"] == "" and r["ci_high"] == "" else f"[{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]"
        lines.append(f"| {r['network']} | {r['input_dim']} | {r['widths']} | {r['method']} | {fmt(r['value'])} | "
                     f"{interval} | {fmt(r['certain_lower'])} | {r['seconds']:.3g} |")
    open(stem + ".md", "w").write("\n".join(lines) + "\n")
    plot(rows, stem + ".png")


def plot(rows: list[dict], path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nets = list(dict.fromkeys(r["network"] for r in rows))
    styles = {"exact": ("k", "s"), "probes": ("C6", "D"), "tree": ("C0", "o"), "points": ("C1", "v"), "MIPBound": ("C2", "^"),
              "upper: serra2018": ("C3", "_"), "upper: montufar2017": ("C4", "_"), "upper: activation": ("C5", "x")}
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(nets)), 4.5))
    for key, (color, marker) in styles.items():
        xs, ys, lo, hi = [], [], [], []
        for i, n in enumerate(nets):
            for r in rows:
                if r["network"] == n and r["method"].startswith(key):
                    xs.append(i + 0.08 * list(styles).index(key) - 0.25)
                    ys.append(float(r["value"]))
                    lo.append(float(r["value"]) - float(r["ci_low"]) if r["ci_low"] != "" and key in ("probes", "tree", "points") else 0)
                    hi.append(float(r["ci_high"]) - float(r["value"]) if r["ci_high"] != "" and key in ("probes", "tree", "points") else 0)
        if xs:
            ax.errorbar(xs, ys, yerr=[np.maximum(lo, 0), np.maximum(hi, 0)], fmt=marker, color=color, label=key,
                        capsize=3, markersize=7)
    ax.set_yscale("log")
    ax.set_xticks(range(len(nets)))
    ax.set_xticklabels(nets, rotation=30, ha="right")
    ax.set_ylabel("number of regions")
    ax.set_title("Exact count, estimates (95% intervals), MIPBound and upper bounds")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--mnist", action="store_true", help="the 784-input MNIST zoo instead (train_digits.py --mnist)")
    ap.add_argument("--nets", nargs="*", help="only these networks (the file's name gets the first)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    stem = ("compare_counts" + ("-mnist" if args.mnist else "") + ("-quick" if args.quick else "")
            + (f"-{args.nets[0]}" if args.nets else ""))
    run(args.quick, args.mnist, args.nets, lambda rows: write(rows, os.path.join(args.out, stem), common.device_name()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
