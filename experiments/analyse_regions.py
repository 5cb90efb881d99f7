"""Start here to analyse a region dataset: per-layer tables and three standard plots (five with --geometry).

    lrenum enumerate experiments/models/pca4_8x8.npz -o regions.h5
    python experiments/analyse_regions.py regions.h5 [--out DIR]

Builds one table per layer (a pandas DataFrame when pandas is installed, else a dict of
numpy arrays) and plots, in one PNG: the histogram of ranks per layer, the mean number of
children per rank, and the distribution of the certified witness radii (how far each
region's witness is from the region's boundary: a proxy for region size). Also writes the
per-layer tables as CSV. Copy and adapt.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

import lrenum


def layer_tables(rf: "lrenum.RegionFile") -> dict:
    """{layer: table} with columns parent, rank, radius, n_children (if split), n_active."""
    tables = {}
    for l in range(1, rf.n_layers + 1):
        t = rf.layer(l)
        cols = {"parent": t["parent"], "rank": t["rank"], "radius": t["radius"],
                "n_active": t["pattern"].sum(axis=1)}
        if "n_children" in t:
            cols["n_children"] = t["n_children"]
        try:
            import pandas as pd
            tables[l] = pd.DataFrame(cols)
        except ImportError:
            tables[l] = cols
    return tables


def layer_volumes_and_degrees(rf: "lrenum.RegionFile", vol: np.ndarray) -> tuple[dict, dict]:
    """Volumes and adjacency degrees of every layer's regions, from the final regions' geometry.

    A layer-l region is the union of its final descendants, so its volume is theirs summed. Two
    layer-l regions share a facet exactly when final descendants of each share a facet on a
    neuron of layers 1..l (deeper neurons only cut inside a layer-l region), so the layer-l
    graph is the final graph's edges on such neurons, mapped to their layer-l ancestors."""
    L = rf.n_layers
    ancestor = {L: np.arange(rf.regions)}
    for l in range(L - 1, 0, -1):
        ancestor[l] = rf.layer(l + 1)["parent"][ancestor[l + 1]]
    edges = rf.f["geometry/edges"][:]
    first_of_layer = np.cumsum([0] + list(rf.widths))
    volumes, degrees = {}, {}
    for l in range(1, L + 1):
        volumes[l] = np.bincount(ancestor[l], weights=vol, minlength=rf.counts[l - 1])
        e = edges[edges[:, 2] < first_of_layer[l]]
        pairs = np.unique(np.sort(np.c_[ancestor[l][e[:, 0]], ancestor[l][e[:, 1]]], axis=1), axis=0)
        pairs = pairs[pairs[:, 0] != pairs[:, 1]]
        degrees[l] = np.bincount(pairs.ravel(), minlength=rf.counts[l - 1])
    return volumes, degrees


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", help="a regions.h5 written by lrenum enumerate -o")
    ap.add_argument("--out", default=".", help="folder for the PNG and CSV files")
    args = ap.parse_args(argv)
    try:
        rf = lrenum.open(args.file)
    except lrenum.InputError as exc:
        print(f"analyse_regions: error: {exc}", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, os.path.splitext(os.path.basename(args.file))[0])
    with rf:
        print(rf)
        tables = layer_tables(rf)
        for l, t in tables.items():
            cols = t if isinstance(t, dict) else {c: t[c].to_numpy() for c in t.columns}
            np.savetxt(f"{stem}_layer{l}.csv", np.column_stack(list(cols.values())), delimiter=",",
                       header=",".join(cols), comments="", fmt="%.10g")
            r = cols["rank"]
            ks, cs = np.unique(r, return_counts=True)
            print(f"layer {l}: {len(r)} regions, ranks {dict(zip(ks.tolist(), cs.tolist()))}")
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
        for l, t in tables.items():
            get = (lambda c: t[c]) if isinstance(t, dict) else (lambda c: t[c].to_numpy())
            ranks = get("rank")
            ks, counts = np.unique(ranks, return_counts=True)
            axes[0].bar(ks + 0.8 * (l - 1) / rf.n_layers, counts, width=0.8 / rf.n_layers, label=f"layer {l}")
            if "n_children" in (t if isinstance(t, dict) else t.columns):
                ch = get("n_children")
                axes[1].plot(ks, [ch[ranks == k].mean() for k in ks], "o-", label=f"layer {l} -> {l + 1}")
            rad = get("radius")
            axes[2].hist(np.log10(rad[rad > 0]), bins=40, histtype="step", label=f"layer {l}")
        axes[0].set(xlabel="rank after the layer", ylabel="regions", title="rank histogram")
        axes[1].set(xlabel="rank after layer l", ylabel="mean children at l+1", title="children per rank")
        axes[2].set(xlabel="log10 certified witness radius", ylabel="regions", title="witness radii")
        for ax in axes:
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(stem + "_analysis.png", dpi=110)
        if "geometry" in rf.f and rf.input_dim <= 6:   # written with --geometry: volumes and degrees
            from lrenum.geometry import region_volumes

            vol = region_volumes(rf)
            fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
            ok = np.isfinite(vol) & (vol > 0)
            volumes, degrees = layer_volumes_and_degrees(rf, vol)
            for l in sorted(volumes):
                good = np.isfinite(volumes[l]) & (volumes[l] > 0)
                axes[0].hist(np.log10(volumes[l][good]), bins=40, histtype="step", label=f"layer {l}")
                axes[1].hist(degrees[l], bins=np.arange(degrees[l].max(initial=0) + 2) - 0.5, histtype="step",
                             label=f"layer {l}")
            axes[0].set(xlabel="log10 region volume", ylabel="regions", title="region volumes per layer")
            axes[1].set(xlabel="neighbours (regions sharing a facet)", ylabel="regions", title="degree per layer")
            for ax in axes:
                ax.legend(fontsize=7)
            fig.tight_layout()
            fig.savefig(stem + "_geometry.png", dpi=110)
            bound = rf.volume_bounds()
            print(f"volumes: total {vol[ok].sum():.6g} (certified within {bound[ok].sum():.2g}); mean degree "
                  + ", ".join(f"layer {l} {degrees[l].mean():.2f}" for l in sorted(degrees)))
    print(f"wrote {stem}_analysis.png and {stem}_layer*.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
