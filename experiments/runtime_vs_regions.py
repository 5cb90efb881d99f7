"""Experiment 2: enumeration time against the number of regions across the model zoo.

Every trained model and a ladder of random networks is enumerated twice on one device: the
first run pays for compilation, the second is timed. Log-log plot with a least-squares slope
(time ~ regions^slope). Writes results/runtime_vs_regions-<device>[-quick].{csv,png,md}.
``python experiments/runtime_vs_regions.py [--quick] [--device cpu|gpu]``
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402

import lrenum  # noqa: E402

RANDOM = [(2, [8, 8]), (2, [16, 16]), (2, [16, 16, 16]), (3, [12, 12]), (3, [16, 16]), (4, [12, 12]),
          (4, [16, 12]), (5, [12, 6, 6]), (6, [12, 12])]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", choices=["cpu", "gpu"])
    ap.add_argument("--out", default=common.RESULTS)
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    models = sorted(glob.glob(os.path.join(common.MODELS, "*.npz")))
    nets = [(os.path.basename(p)[:-4], *common.load_model(p)) for p in models]
    nets += [(f"rand_{d}_{'x'.join(map(str, w))}", *common.random_network(d, w, seed=3)) for d, w in RANDOM]
    if args.quick:
        nets = [n for n in nets if n[0] in ("pca2_8x8x8", "pca4_8x8", "rand_2_8x8", "rand_3_12x12")]
    rows = []
    for name, net, dom in nets:
        lrenum.enumerate_regions(net, dom, lrenum.Settings(device=args.device))          # warm-up: compile or load kernels
        t = time.perf_counter()
        res = lrenum.enumerate_regions(net, dom, lrenum.Settings(device=args.device))
        sec = time.perf_counter() - t
        rows.append({"network": name, "input_dim": net.input_dim, "widths": "x".join(map(str, net.hidden_widths)),
                     "regions": res.regions, "seconds": round(sec, 4), "regions_per_second": round(res.regions / sec, 1),
                     "lps": res.stats.lps, "device": res.device})
        print(f"{name}: {res.regions} regions in {sec:.3f} s", file=sys.stderr)
    dev = common.device_name(args.device)
    tag = rows[0]["device"].split(":")[0]
    stem = os.path.join(args.out, f"runtime_vs_regions-{tag}" + ("-quick" if args.quick else ""))
    common.write_csv(rows, stem + ".csv")
    x = np.log10([r["regions"] for r in rows])
    y = np.log10([r["seconds"] for r in rows])
    slope, icpt = np.polyfit(x, y, 1)
    with open(stem + ".md", "w") as f:
        f.write(f"# Enumeration time against regions\n\nDevice: {dev}. Timed second run (compilation excluded). "
                f"Least-squares fit: seconds ~ 10^{icpt:.2f} x regions^{slope:.2f}.\n\n"
                "| network | d | widths | regions | seconds | regions/s | LPs |\n|---|---|---|---|---|---|---|\n")
        for r in sorted(rows, key=lambda r: r["regions"]):
            f.write(f"| {r['network']} | {r['input_dim']} | {r['widths']} | {r['regions']} | {r['seconds']} | "
                    f"{r['regions_per_second']} | {r['lps']} |\n")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for r in rows:
        trained = not r["network"].startswith("rand")
        ax.loglog(r["regions"], r["seconds"], "o" if trained else "s", color="C0" if trained else "C1", alpha=0.8)
        ax.annotate(r["network"], (r["regions"], r["seconds"]), fontsize=5)
    xs = np.logspace(x.min(), x.max(), 20)
    ax.loglog(xs, 10 ** icpt * xs ** slope, "k--", label=f"fit: slope {slope:.2f}")
    ax.plot([], [], "o", color="C0", label="trained (digits)")
    ax.plot([], [], "s", color="C1", label="random")
    ax.set_xlabel("regions")
    ax.set_ylabel("seconds (compilation excluded)")
    ax.set_title(f"Runtime against regions on {tag}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(stem + ".png", dpi=120)
    print(f"slope {slope:.3f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
