"""Experiment 1: how the rank of a region's affine map limits how the next layer splits it.

For every region at hidden layer l < L (trained and random networks), the rank of its map
after layer l against its number of children at layer l+1, with the largest possible number
for that rank, sum_{i <= rank} C(n_{l+1}, i) (an arrangement of n_{l+1} hyperplanes in a
rank-dimensional space). Writes results/rank_vs_children[-quick].{csv,png,md}.
``python experiments/rank_vs_children.py [--quick]``
"""

from __future__ import annotations

import argparse
import os
import sys
from math import comb

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402

import lrenum  # noqa: E402

TRAINED = ["pca2_8x8x8", "pca2_6x6x6x6", "pca4_8x8", "pca8_8x8", "pca16_8x4", "full64_4x4"]
RANDOM = [("rand_3_6x8x8", 3, [6, 8, 8], 0), ("rand_4_3x10", 4, [3, 10], 1), ("rand_5_12x6x6", 5, [12, 6, 6], 2)]
QUICK_TRAINED, QUICK_RANDOM = ["pca2_8x8x8"], RANDOM[:1]
MNIST = ["mnist_6x6", "mnist_6x6x6", "mnist_8x8"]   # 784 inputs (train_digits.py --mnist)


def rank_children(net, domain) -> list[tuple[int, int, int]]:
    """(layer l, rank after l, children at l+1) for every region of layers 1..L-1."""
    ranks: dict[int, dict[int, int]] = {}
    out = []

    def on_layer(l, batch):
        ranks.setdefault(l, {}).update(zip(batch.ident.tolist(), batch.rank[:, -1].tolist()))

    def on_split(l, ident, n_children):
        r = ranks[l]
        out.extend((l, r.pop(int(i)), int(n)) for i, n in zip(ident, n_children))

    lrenum.enumerate_regions(net, domain, sink=lrenum.LayerCallback(on_layer, on_split))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--mnist", action="store_true", help="the 784-input MNIST zoo instead")
    ap.add_argument("--out", default=common.RESULTS)
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    if args.mnist:
        nets = [(n, *common.load_model(n)) for n in (MNIST[:1] if args.quick else MNIST)]
    else:
        nets = [(n, *common.load_model(n)) for n in (QUICK_TRAINED if args.quick else TRAINED)]
        nets += [(n, *common.random_network(d, w, seed=s)) for n, d, w, s in (QUICK_RANDOM if args.quick else RANDOM)]
    rows = []
    for name, net, dom in nets:
        for l, r, k in rank_children(net, dom):
            n_next = net.hidden_widths[l]
            rows.append({"network": name, "layer": l, "rank": r, "children": k, "next_width": n_next,
                         "max_possible": sum(comb(n_next, i) for i in range(r + 1))})
        print(f"{name}: {sum(1 for x in rows if x['network'] == name)} split regions", file=sys.stderr)
    stem = os.path.join(args.out, "rank_vs_children" + ("-mnist" if args.mnist else "") + ("-quick" if args.quick else ""))
    common.write_csv(rows, stem + ".csv")
    summary = summarise(rows)
    with open(stem + ".md", "w") as f:
        f.write(f"# Rank after layer l against children at layer l+1\n\nDevice: {common.device_name()}.\n\n"
                "| network | layer | rank | regions | mean children | max children | max possible | "
                "share at the maximum |\n|---|---|---|---|---|---|---|---|\n")
        for s in summary:
            f.write(f"| {s['network']} | {s['layer']} | {s['rank']} | {s['count']} | {s['mean']:.2f} | {s['max']} | "
                    f"{s['bound']} | {s['at_bound']:.2f} |\n")
    plot(rows, stem + ".png")
    return 0


def summarise(rows):
    keys = sorted({(r["network"], r["layer"], r["rank"]) for r in rows})
    out = []
    for net, l, rk in keys:
        ch = np.array([r["children"] for r in rows if (r["network"], r["layer"], r["rank"]) == (net, l, rk)])
        bound = next(r["max_possible"] for r in rows if (r["network"], r["layer"], r["rank"]) == (net, l, rk))
        out.append({"network": net, "layer": l, "rank": rk, "count": len(ch), "mean": float(ch.mean()),
                    "max": int(ch.max()), "bound": bound, "at_bound": float(np.mean(ch == bound))})
    return out


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    nets = list(dict.fromkeys(r["network"] for r in rows))
    cols = min(3, len(nets))
    fig, axes = plt.subplots(-(-len(nets) // cols), cols, figsize=(4.2 * cols, 3.4 * -(-len(nets) // cols)),
                             squeeze=False)
    for ax, name in zip(axes.flat, nets):
        sub = [r for r in rows if r["network"] == name]
        layers = sorted({r["layer"] for r in sub})
        for li, l in enumerate(layers):
            rs = sorted({r["rank"] for r in sub if r["layer"] == l})
            data = [[r["children"] for r in sub if r["layer"] == l and r["rank"] == rk] for rk in rs]
            pos = np.array(rs) + 0.25 * (li - (len(layers) - 1) / 2)
            parts = ax.violinplot(data, positions=pos, widths=0.22, showmeans=True)
            for b in parts["bodies"]:
                b.set_facecolor(f"C{li}")
            bounds = [next(r["max_possible"] for r in sub if r["layer"] == l and r["rank"] == rk) for rk in rs]
            ax.plot(pos, bounds, "_", color=f"C{li}", markersize=12, label=f"l={l}: max sum C(n_(l+1), i<=rank)")
        ax.set_yscale("log")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("rank after layer l")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))   # ranks are integers
        ax.set_ylabel("children at layer l+1")
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(nets):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
