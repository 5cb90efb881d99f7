"""Residual networks and max pooling against plain networks with the same hidden units (issue 34).

Four models trained on scikit-learn's 8x8 digits (JAX + optax, full batch, as the zoo), each with
160 hidden units in five hidden layers of 32 (as lowered; the max-pool model: 64 conv units, 32
pool units, 2 x 32 dense):

* ``resnet``: stem Conv(1->2, 3x3, stride 2, pad 1) -> ReLU, then two residual blocks
  (Conv(2->2, 3x3, pad 1) -> ReLU -> Conv -> + input -> ReLU), Dense(10);
* ``cnn``: the same without the additions (the plain CNN);
* ``maxpool``: Conv(1->4, 3x3, stride 2, pad 1) -> ReLU -> MaxPool (1, 2) -> Dense(32) -> ReLU ->
  Dense(32) -> ReLU -> Dense(10);
* ``maxpool2x2``: Conv(1->4, 3x3, stride 2, pad 1) -> ReLU -> MaxPool 2x2 (a winner-take-all group
  of 3 units per window: 48 pool units) -> Dense(24) -> ReLU -> Dense(24) -> ReLU -> Dense(10);
* ``mlp``: five Dense(32) -> ReLU layers, Dense(10).

Each is lowered by lrenum's Lowerer (exact; checked against the JAX logits) and its regions are
enumerated exactly in the boxes of half-width r around test digits (clipped to [0, 1]^64), all
boxes in one batched walk (``lrenum.local_regions``). Reports per model and radius: counts
(mean, median, max), the mean rank after every layer, children per region, seconds.
Results: ``experiments/results/residual_vs_plain.{md,json,png}``.
``python experiments/residual_vs_plain.py [--quick]``
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

from common import RESULTS, device_name  # noqa: E402
from lrenum.counting.local import local_regions  # noqa: E402
from lrenum.model.lowering import Lowerer  # noqa: E402

MODELS = ("resnet", "cnn", "maxpool", "maxpool2x2", "mlp")


def _init(kind: str, key):
    import jax
    import jax.numpy as jnp

    k = list(jax.random.split(key, 8))
    he = lambda key, shape, fan: jax.random.normal(key, shape) * np.sqrt(2.0 / fan)
    if kind in ("resnet", "cnn"):
        p = {"s": he(k[0], (2, 1, 3, 3), 9), "sb": jnp.zeros(2)}
        for i in range(4):
            p[f"c{i}"] = he(k[1 + i], (2, 2, 3, 3), 18) * (0.5 if kind == "resnet" else 1.0)
            p[f"cb{i}"] = jnp.zeros(2)
        p["o"], p["ob"] = he(k[5], (10, 32), 32), jnp.zeros(10)
    elif kind == "maxpool":
        p = {"s": he(k[0], (4, 1, 3, 3), 9), "sb": jnp.zeros(4), "d1": he(k[1], (32, 32), 32), "b1": jnp.zeros(32),
             "d2": he(k[2], (32, 32), 32), "b2": jnp.zeros(32), "o": he(k[3], (10, 32), 32), "ob": jnp.zeros(10)}
    elif kind == "maxpool2x2":
        p = {"s": he(k[0], (4, 1, 3, 3), 9), "sb": jnp.zeros(4), "d1": he(k[1], (24, 16), 16), "b1": jnp.zeros(24),
             "d2": he(k[2], (24, 24), 24), "b2": jnp.zeros(24), "o": he(k[3], (10, 24), 24), "ob": jnp.zeros(10)}
    else:
        p = {"d0": he(k[0], (32, 64), 64), "b0": jnp.zeros(32)}
        for i in range(1, 5):
            p[f"d{i}"], p[f"b{i}"] = he(k[i], (32, 32), 32), jnp.zeros(32)
        p["o"], p["ob"] = he(k[5], (10, 32), 32), jnp.zeros(10)
    return p


def _logits(kind: str, p, X):
    import jax
    import jax.numpy as jnp

    conv = lambda h, w, b, s, pad: jax.lax.conv_general_dilated(
        h, w, (s, s), [(pad, pad), (pad, pad)], dimension_numbers=("NCHW", "OIHW", "NCHW")) + b[None, :, None, None]
    relu = jax.nn.relu
    if kind == "mlp":
        h = X
        for i in range(5):
            h = relu(h @ p[f"d{i}"].T + p[f"b{i}"])
        return h @ p["o"].T + p["ob"]
    img = X.reshape(-1, 1, 8, 8)
    if kind == "maxpool":
        h = relu(conv(img, p["s"], p["sb"], 2, 1))                        # (4, 4, 4)
        h = jnp.maximum(h[..., 0::2], h[..., 1::2]).reshape(X.shape[0], -1)  # windows (1, 2): (4, 4, 2)
        h = relu(h @ p["d1"].T + p["b1"])
        h = relu(h @ p["d2"].T + p["b2"])
        return h @ p["o"].T + p["ob"]
    if kind == "maxpool2x2":
        h = relu(conv(img, p["s"], p["sb"], 2, 1))                        # (4, 4, 4)
        h = h.reshape(X.shape[0], 4, 2, 2, 2, 2).max(axis=(3, 5)).reshape(X.shape[0], -1)   # 2x2 windows: (4, 2, 2)
        h = relu(h @ p["d1"].T + p["b1"])
        h = relu(h @ p["d2"].T + p["b2"])
        return h @ p["o"].T + p["ob"]
    h = relu(conv(img, p["s"], p["sb"], 2, 1))                            # (2, 4, 4)
    for blk in range(2):
        z = relu(conv(h, p[f"c{2 * blk}"], p[f"cb{2 * blk}"], 1, 1))
        z = conv(z, p[f"c{2 * blk + 1}"], p[f"cb{2 * blk + 1}"], 1, 1)
        h = relu(z + h) if kind == "resnet" else relu(z)
    return h.reshape(X.shape[0], -1) @ p["o"].T + p["ob"]


def _lower(kind: str, P: dict):
    """The trained model as lrenum's network, through the Lowerer's operations."""
    low = Lowerer((64,) if kind == "mlp" else (1, 8, 8))
    if kind == "mlp":
        for i in range(5):
            low.dense(P[f"d{i}"], P[f"b{i}"])
            low.activation(0.0, "relu")
    elif kind in ("maxpool", "maxpool2x2"):
        low.conv(P["s"], P["sb"], (2, 2), [(1, 1), (1, 1)], (1, 1), 1)
        low.activation(0.0, "relu")
        window = (1, 2) if kind == "maxpool" else (2, 2)
        low.max_pool(window, window, [(0, 0), (0, 0)], (1, 1))
        low.flatten()
        for i in (1, 2):
            low.dense(P[f"d{i}"], P[f"b{i}"])
            low.activation(0.0, "relu")
    else:
        low.conv(P["s"], P["sb"], (2, 2), [(1, 1), (1, 1)], (1, 1), 1)
        low.activation(0.0, "relu")
        for blk in range(2):
            skip = low.value
            low.conv(P[f"c{2 * blk}"], P[f"cb{2 * blk}"], (1, 1), [(1, 1), (1, 1)], (1, 1), 1)
            low.activation(0.0, "relu")
            low.conv(P[f"c{2 * blk + 1}"], P[f"cb{2 * blk + 1}"], (1, 1), [(1, 1), (1, 1)], (1, 1), 1)
            if kind == "resnet":
                low.add(skip)
            low.activation(0.0, "relu")
        low.flatten()
    low.dense(P["o"], P["ob"])
    return low.network()


def train(kind: str, seed: int = 0, epochs: int = 400):
    import jax
    import jax.numpy as jnp
    import optax
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    jax.config.update("jax_enable_x64", True)
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.25, random_state=seed, stratify=y)
    params = _init(kind, jax.random.PRNGKey(seed))
    opt = optax.adamw(1e-2, weight_decay=1e-4)
    state = opt.init(params)

    @jax.jit
    def step(p, s):
        loss = lambda q: optax.softmax_cross_entropy_with_integer_labels(_logits(kind, q, Xtr), ytr).mean()
        u, s = opt.update(jax.grad(loss)(p), s, p)
        return optax.apply_updates(p, u), s

    for _ in range(epochs):
        params, state = step(params, state)
    acc = float(jnp.mean(jnp.argmax(_logits(kind, params, Xte), 1) == yte))
    net = _lower(kind, {k: np.asarray(v, np.float64) for k, v in params.items()})
    gap = float(np.max(np.abs(net.forward(Xte) - np.asarray(_logits(kind, params, Xte)))))
    assert gap < 1e-9, f"{kind}: the lowered network differs from the JAX model by {gap}"
    return net, acc, Xte


def measure(kind: str, net, acc: float, Xte: np.ndarray, radius: float, n_points: int) -> dict:
    t = time.perf_counter()
    res = local_regions(net, Xte[:n_points], radius, domain=_unit_box(), clip=True)
    sec = time.perf_counter() - t
    counts = np.array(res.counts)
    L = net.n_hidden
    mean_rank = []
    for l in range(L):
        num = sum(sum(k * v for k, v in enumerate(p.rank_hist[l])) for p in res.points)
        den = sum(sum(p.rank_hist[l]) for p in res.points)
        mean_rank.append(round(num / den, 2) if den else None)
    children = [round(float(np.mean([p.mean_children[l] for p in res.points])), 3) for l in range(L)]
    # a check, outside the timing: 4,000 uniform samples per box never show more patterns than
    # the exact count (the first 10 boxes)
    chk = local_regions(net, Xte[:10], radius, domain=_unit_box(), clip=True, proxies=True, samples=4000)
    sampled = [p.proxies["sampled_patterns"] for p in chk.points]
    assert all(s <= p.regions for s, p in zip(sampled, chk.points)), (kind, radius, sampled)
    return {"model": kind, "test_accuracy": round(acc, 3), "widths": list(net.hidden_widths),
            "splitting_widths": list(net.splitting_widths), "radius": radius, "points": n_points,
            "mean": round(float(counts.mean()), 2), "median": float(np.median(counts)), "max": int(counts.max()),
            "total": int(counts.sum()), "mean_rank_after_layer": mean_rank, "mean_children_per_layer": children,
            "seconds": round(sec, 2), "regions_per_second": round(float(counts.sum()) / sec, 1),
            "sampled_patterns_first10": sampled, "exact_first10": [p.regions for p in chk.points]}


def _unit_box():
    import lrenum

    return lrenum.box_domain(0.0, 1.0, 64)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 digits, one small radius, short training (seconds)")
    ap.add_argument("--points", type=int, default=100)
    ap.add_argument("--radii", type=float, nargs="+", default=[0.002, 0.005, 0.01])
    ap.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS),
                    help="the models to run; rows of the others are kept from an earlier results file")
    ap.add_argument("--tag", default="", help="suffix of the results files")
    args = ap.parse_args(argv)
    n_points, radii = (3, [0.002]) if args.quick else (args.points, args.radii)
    stem = os.path.join(RESULTS, "residual_vs_plain" + ("-quick" if args.quick else "") + args.tag)
    rows = []
    if set(args.models) != set(MODELS) and os.path.exists(stem + ".json"):     # keep the other models' rows
        rows = [r for r in json.load(open(stem + ".json"))["rows"] if r["model"] not in args.models]
    for kind in args.models:
        net, acc, Xte = train(kind, epochs=50 if args.quick else 400)
        for r in radii:
            rows.append(measure(kind, net, acc, Xte, r, n_points))
            print(json.dumps(rows[-1]), flush=True)
    os.makedirs(RESULTS, exist_ok=True)
    rows.sort(key=lambda r: (MODELS.index(r["model"]), r["radius"]))
    dev = device_name()
    json.dump({"device": dev, "rows": rows}, open(stem + ".json", "w"), indent=1)
    write_md(stem + ".md", dev, rows, n_points)
    if not args.quick:
        plot(stem + ".png", rows)
    return 0


def write_md(path: str, dev: str, rows: list, n_points: int) -> None:
    with open(path, "w") as f:
        f.write("# Residual networks and max pooling against plain networks (8x8 digits)\n\n"
                f"Device: {dev}. `experiments/residual_vs_plain.py`: exact regions in the boxes of half-width r "
                f"(l-inf) around the first {n_points} test digits, clipped to [0, 1]^64, all boxes in one batched "
                "walk. Every model has 160 hidden units that can split (widths as lowered include the carried "
                "units of the residual connections and of the max pool's kept side, which never split).\n\n"
                "| model | test acc. | widths (lowered) | r | mean | median | max | mean rank after each layer "
                "| mean children per layer | s | regions/s |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
        for r in rows:
            f.write(f"| {r['model']} | {r['test_accuracy']} | {r['widths']} | {r['radius']} | {r['mean']} | "
                    f"{r['median']} | {r['max']} | {r['mean_rank_after_layer']} | {r['mean_children_per_layer']} | "
                    f"{r['seconds']} | {r['regions_per_second']} |\n")


def plot(path: str, rows: list) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    radii = sorted({r["radius"] for r in rows})
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for kind in MODELS:
        sel = [r for r in rows if r["model"] == kind]
        if not sel:
            continue
        axes[0].plot([r["radius"] for r in sel], [r["mean"] for r in sel], marker="o", label=kind)
        last = max(sel, key=lambda r: r["radius"])
        axes[1].plot(range(1, len(last["mean_rank_after_layer"]) + 1), last["mean_rank_after_layer"], marker="o",
                     label=kind)
    axes[0].set(xlabel="box half-width r", ylabel="mean regions per box", yscale="log", xticks=radii)
    axes[1].set(xlabel="hidden layer (as lowered)", ylabel=f"mean rank after layer (r = {radii[-1]})")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
