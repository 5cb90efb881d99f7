"""Exact local complexity over training, beside the literature's two proxies (issue 33).

For each checkpoint of a 784-input MLP trained on the MNIST digits (train_digits.py's mnist_64x64,
epochs 0 to 200, and the final model at 300): the exact number of regions in the l-inf box of each
radius around each of the first --points test digits (clipped to [0, 1]^784), with

* neurons meeting the box (interval bounds; in the first layer, the hyperplanes that cross it), and
* distinct certified patterns among --samples uniform samples of the box (a lower bound),

both computed in the same run (``lrenum.local_regions(..., proxies=True)``). Also the regions along
the segment between two test digits of different classes at the first and last checkpoint.

    python experiments/local_complexity.py [--points 100] [--radii 0.0005 0.001 0.002] [--quick]

Results: results/local_complexity[-quick].{csv,md,png} (one CSV row per checkpoint, radius and point).
LP proposals in float32 (Settings.local_lp_dtype, the default of local walks); every answer is certified alike.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import io
import json
import os
import re
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402

import lrenum  # noqa: E402
from lrenum.cli import main as lrenum_main  # noqa: E402
from lrenum.counting.local import local_regions  # noqa: E402


def checkpoints(net: str) -> list[tuple[int, str]]:
    """(epoch, path) of every checkpoint of ``net``, then the final model (its epoch from its metadata)."""
    out = []
    for p in glob.glob(os.path.join(common.MODELS, "checkpoints", f"{net}_epoch*.npz")):
        out.append((int(re.search(r"epoch(\d+)", p).group(1)), p))
    final = os.path.join(common.MODELS, net + ".npz")
    out.append((int(common.model_meta(final).get("epochs", 300)), final))
    return sorted(out)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation (average ranks for ties); nan when either side is constant."""
    def ranks(x):
        order = np.argsort(x, kind="stable")
        r = np.empty(len(x))
        r[order] = np.arange(len(x))
        for v in np.unique(x):           # ties share their mean rank
            r[x == v] = r[x == v].mean()
        return r
    if np.all(a == a[0]) or np.all(b == b[0]):
        return float("nan")
    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def regions_on_line(path: str, a: np.ndarray, b: np.ndarray, tmp: str) -> int:
    """``lrenum line`` between two inputs, through its CLI (its JSON answer)."""
    np.save(os.path.join(tmp, "a.npy"), a)
    np.save(os.path.join(tmp, "b.npy"), b)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
        code = lrenum_main(["line", path, os.path.join(tmp, "a.npy"), os.path.join(tmp, "b.npy"), "--json", "-q"])
    if code != 0:
        raise RuntimeError("lrenum line failed")
    return int(json.loads(buf.getvalue())["regions"])


def main(argv=None) -> int:
    from train_digits import load_data

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--net", default="mnist_64x64")
    ap.add_argument("--points", type=int, default=100)
    ap.add_argument("--radii", type=float, nargs="+", default=[0.0005, 0.001, 0.002])
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--quick", action="store_true", help="5 points, one radius, first and last checkpoint")
    ap.add_argument("--out", default=common.RESULTS)
    args = ap.parse_args(argv)
    if args.quick:
        args.points, args.radii, args.samples = 5, args.radii[:1], 200
    os.makedirs(args.out, exist_ok=True)
    _, X_test, _, y_test, lo, hi = load_data("mnist")
    pts, labels = X_test[:args.points], y_test[:args.points]
    dom = lrenum.box_domain(lo, hi, 784)
    settings = lrenum.Settings()          # local walks propose in float32 (Settings.local_lp_dtype)
    cks = checkpoints(args.net)
    if args.quick:
        cks = [cks[0], cks[-1]]
    rows, summary = [], []
    for epoch, path in cks:
        net, _ = lrenum.load_network(path)
        acc = common.model_meta(path).get("test_accuracy", "")
        for r in args.radii:
            t = time.perf_counter()
            res = local_regions(net, pts, r, domain=dom, clip=True, settings=settings, proxies=True,
                                samples=args.samples, seed=epoch)
            secs = time.perf_counter() - t
            exact = np.array(res.counts)
            meet = np.array([p.proxies["neurons_meeting_total"] for p in res.points])
            sampled = np.array([p.proxies["sampled_patterns"] for p in res.points])
            for p, lab in zip(res.points, labels):
                rows.append({"epoch": epoch, "radius": r, "point": p.index, "label": int(lab), "exact": p.regions,
                             **{f"layer_{l + 1}": c for l, c in enumerate(p.per_layer)},
                             "switching": int(sum(p.switching)), "neurons_meeting": int(p.proxies["neurons_meeting_total"]),
                             "sampled_patterns": int(p.proxies["sampled_patterns"])})
            summary.append({"epoch": epoch, "test_accuracy": acc, "radius": r, "mean_exact": float(exact.mean()),
                            "median_exact": float(np.median(exact)), "max_exact": int(exact.max()),
                            "mean_neurons_meeting": float(meet.mean()), "mean_sampled": float(sampled.mean()),
                            "sampled_missed": float(np.mean(sampled < exact)),
                            "missed_share": float(1 - sampled.sum() / exact.sum()),
                            "rho_meeting": spearman(exact, meet), "rho_sampled": spearman(exact, sampled),
                            "seconds": round(secs, 1), "regions_per_second": round(exact.sum() / secs, 1)})
            print(f"epoch {epoch} r={r}: mean exact {exact.mean():.1f}, neurons meeting {meet.mean():.1f}, "
                  f"sampled {sampled.mean():.1f} ({secs:.0f} s)", file=sys.stderr, flush=True)
    # the segment between the first two test digits of different classes, at the first and last checkpoint
    j = int(np.nonzero(labels != labels[0])[0][0])
    lines = []
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        for epoch, path in (cks[0], cks[-1]):
            t = time.perf_counter()
            n = regions_on_line(path, pts[0], pts[j], tmp)
            lines.append({"epoch": epoch, "from": f"test digit 0 (a {labels[0]})", "to": f"test digit {j} (a {labels[j]})",
                          "regions": n, "seconds": round(time.perf_counter() - t, 1)})
    stem = os.path.join(args.out, "local_complexity" + ("-quick" if args.quick else ""))
    common.write_csv(rows, stem + ".csv")
    write_md(stem + ".md", args, summary, lines)
    plot(stem + ".png", args, summary)
    return 0


def write_md(path: str, args, summary: list[dict], lines: list[dict]) -> None:
    with open(path, "w") as f:
        f.write(f"# Exact local complexity over training ({args.net})\n\nDevice: {common.device_name()}. "
                f"`experiments/local_complexity.py`: boxes of half-width r (l-inf) around the first {args.points} "
                f"MNIST test digits, clipped to [0, 1]^784; proxies in the same run ({args.samples} samples per box).\n\n"
                "| epoch | test acc. | r | mean exact | median | max | mean neurons meeting | mean sampled patterns | "
                "boxes where sampling missed regions | share of regions sampling missed | rho(exact, meeting) | "
                "rho(exact, sampled) | s | regions/s |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
        for s in summary:
            acc = f"{s['test_accuracy']:.3f}" if isinstance(s["test_accuracy"], float) else s["test_accuracy"]
            f.write(f"| {s['epoch']} | {acc} | {s['radius']} | {s['mean_exact']:.2f} | {s['median_exact']:g} | {s['max_exact']} | "
                    f"{s['mean_neurons_meeting']:.2f} | {s['mean_sampled']:.2f} | {s['sampled_missed']:.0%} | "
                    f"{s['missed_share']:.0%} | {s['rho_meeting']:.2f} | {s['rho_sampled']:.2f} | {s['seconds']} | "
                    f"{s['regions_per_second']} |\n")
        f.write("\n## Along a line between two digits\n\n| epoch | from | to | regions on the segment | s |\n|---:|---|---|---:|---:|\n")
        for ln in lines:
            f.write(f"| {ln['epoch']} | {ln['from']} | {ln['to']} | {ln['regions']} | {ln['seconds']} |\n")


def plot(path: str, args, summary: list[dict]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(args.radii), figsize=(4.6 * len(args.radii), 3.8), squeeze=False)
    for ax, r in zip(axes[0], args.radii):
        rows = [s for s in summary if s["radius"] == r]
        ep = [max(s["epoch"], 0.5) for s in rows]          # epoch 0 drawn at 0.5 on the log axis
        ax.plot(ep, [s["mean_exact"] for s in rows], "o-", label="exact regions (lrenum)")
        ax.plot(ep, [s["mean_sampled"] for s in rows], "s--", label=f"distinct patterns of {args.samples} samples")
        ax.set_xscale("log")
        ax.set_xlabel("epoch (0 drawn at 0.5)")
        ax.set_ylabel("mean per box")
        ax.set_title(f"r = {r}")
        twin = ax.twinx()
        twin.plot(ep, [s["mean_neurons_meeting"] for s in rows], "^:", color="tab:green", label="neurons meeting the box")
        twin.set_ylabel("neurons meeting the box", color="tab:green")
        if r == args.radii[0]:
            h1, l1 = ax.get_legend_handles_labels()
            h2, l2 = twin.get_legend_handles_labels()
            ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper left")
    fig.suptitle(f"Local complexity over training: {args.net}, {args.points} test digits")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
