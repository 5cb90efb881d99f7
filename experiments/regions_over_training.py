"""Experiment 3: the number of regions across training epochs.

For each checkpointed model (experiments/models/checkpoints): the exact count where
enumeration finishes within the budget, and the tree estimate with its 95% interval at every
checkpoint (to show how the estimator tracks the truth). Writes
results/regions_over_training[-quick].{csv,png,md}.
``python experiments/regions_over_training.py [--quick] [--budget SECONDS]``
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402

import lrenum  # noqa: E402
from lrenum.counting.estimate import tree_estimate  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--budget", type=float, default=120.0, help="skip exact counts of a model after one took this long")
    ap.add_argument("--out", default=common.RESULTS)
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    files = sorted(glob.glob(os.path.join(common.MODELS, "checkpoints", "*.npz")))
    groups: dict[str, list] = {}
    for p in files:
        m = re.match(r"(.+)_epoch(\d+)\.npz", os.path.basename(p))
        groups.setdefault(m.group(1), []).append((int(m.group(2)), p))
    # the MNIST checkpoints are for local complexity (local_complexity.py): their whole-domain counts are out of reach
    groups = {k: v for k, v in groups.items() if not k.startswith("mnist")}
    if args.quick:
        groups = {k: v[::3] for k, v in list(groups.items())[:1]}
    rows = []
    for name, items in groups.items():
        exact_ok = True
        for epoch, path in sorted(items):
            net, dom = common.load_model(path)
            meta = common.model_meta(path)
            exact = ""
            if exact_ok:
                t = time.perf_counter()
                exact = lrenum.enumerate_regions(net, dom).regions
                exact_ok = time.perf_counter() - t < args.budget
            est = tree_estimate(net, dom, probes=64 if args.quick else 256, seed=epoch)
            rows.append({"network": name, "epoch": epoch, "test_accuracy": meta.get("test_accuracy", ""),
                         "exact": exact, "tree_estimate": round(est.estimate, 2), "ci_low": round(est.ci_low, 2),
                         "ci_high": round(est.ci_high, 2)})
            print(f"{name} epoch {epoch}: exact {exact}, estimate {est.estimate:.0f}", file=sys.stderr)
    stem = os.path.join(args.out, "regions_over_training" + ("-quick" if args.quick else ""))
    common.write_csv(rows, stem + ".csv")
    with open(stem + ".md", "w") as f:
        f.write(f"# Regions over training\n\nDevice: {common.device_name()}.\n\n| network | epoch | test accuracy | "
                "exact | tree estimate [95% interval] |\n|---|---|---|---|---|\n")
        for r in rows:
            f.write(f"| {r['network']} | {r['epoch']} | {r['test_accuracy']} | {r['exact']} | {r['tree_estimate']:.0f} "
                    f"[{r['ci_low']:.0f}, {r['ci_high']:.0f}] |\n")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    for i, name in enumerate(groups):
        sub = [r for r in rows if r["network"] == name]
        ep = [max(r["epoch"], 0.5) for r in sub]
        ax.errorbar(ep, [r["tree_estimate"] for r in sub],
                    # the interval's lower end is raised to the certain lower bound, which can exceed the estimate
                    yerr=[[max(0.0, r["tree_estimate"] - r["ci_low"]) for r in sub],
                          [max(0.0, r["ci_high"] - r["tree_estimate"]) for r in sub]],
                    fmt="o", color=f"C{i}", alpha=0.5, capsize=2)
        ex = [(e, r["exact"]) for e, r in zip(ep, sub) if r["exact"] != ""]
        ax.plot([e for e, _ in ex], [v for _, v in ex], "-s", color=f"C{i}", label=f"{name} (exact; dots: tree estimate)")
    ax.set_xscale("log")
    ax.set_xlabel("epoch (0 plotted at 0.5)")
    ax.set_ylabel("regions")
    ax.set_title("Regions over training")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(stem + ".png", dpi=120)
    return 0


if __name__ == "__main__":
    sys.exit(main())
