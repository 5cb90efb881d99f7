"""Shared helpers of the experiment scripts: the model zoo, random networks, device names."""

from __future__ import annotations

import csv
import json
import os
import platform

import numpy as np

import lrenum
from lrenum.model.domain import resolve_domain

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "models")
RESULTS = os.path.join(HERE, "results")


def random_network(d: int, widths: list, seed: int = 0, bias_scale: float = 0.5):
    """A Gaussian random network on [-1, 1]^d (the same family as the tests)."""
    rng = np.random.default_rng(seed)
    dims = [d] + list(widths) + [1]
    Ws = [rng.normal(size=(dims[i + 1], dims[i])) for i in range(len(dims) - 1)]
    bs = [rng.normal(size=dims[i + 1]) * bias_scale for i in range(len(dims) - 1)]
    return lrenum.make_network(Ws, bs), lrenum.box_domain(-1, 1, d)


def load_model(name_or_path: str):
    """A trained network from experiments/models (or a path) with its own input domain."""
    path = name_or_path if name_or_path.endswith(".npz") else os.path.join(MODELS, name_or_path + ".npz")
    net, arrays = lrenum.load_npz(path)
    return net, resolve_domain(net.input_dim, arrays)


def model_meta(name_or_path: str) -> dict:
    path = name_or_path if name_or_path.endswith(".npz") else os.path.join(MODELS, name_or_path + ".npz")
    with np.load(path) as data:
        return json.loads(str(data["meta_json"])) if "meta_json" in data.files else {}


def device_name(kind: str | None = None) -> str:
    """The JAX device plus the host CPU, for result files."""
    import jax

    dev = jax.devices(kind)[0] if kind else jax.devices()[0]
    desc = f"{dev.platform}:{getattr(dev, 'device_kind', '')}"
    cpu = platform.processor() or platform.machine()
    return f"{desc} (host {cpu}, {os.cpu_count()} cores)"


def write_csv(rows: list[dict], path: str) -> None:
    """Rows of one dict each, columns in the first row's order."""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def write_results(stem: str, rows: list[dict], title: str, intro: str, columns: list[tuple[str, object]]) -> None:
    """``stem.json`` (the rows) and ``stem.md``: a title, a paragraph, and a table whose columns
    are (header, row -> cell text) pairs."""
    os.makedirs(os.path.dirname(stem), exist_ok=True)
    with open(stem + ".json", "w") as f:
        json.dump(rows, f, indent=1)
    with open(stem + ".md", "w") as f:
        f.write(f"# {title}\n\n{intro}\n\n| " + " | ".join(h for h, _ in columns) + " |\n|"
                + "---|" * len(columns) + "\n")
        for r in rows:
            f.write("| " + " | ".join(str(cell(r)) for _, cell in columns) + " |\n")
