"""lrenum's network file: an ``.npz`` with ``W1, b1, ..., WL, bL`` (PyTorch ``Linear`` layout).

Optional arrays: ``a1 .. a{L-1}`` negative-side slopes of the hidden layers (leaky ReLU; absent
means ReLU), ``linear1 .. linear{L-1}`` boolean masks of linear carried units (residual
connections and max pooling lowered to plain layers, :mod:`lrenum.model.graph`), ``groups1 ..
groups{L-1}`` integer winner-take-all group ids (-1: none; max pooling over 3+ values), ``lo``/``hi`` a box domain, ``domain_A``/``domain_b`` a polytope ``{x : A x <= b}``,
``meta_json`` free-form metadata.
"""

from __future__ import annotations

import os
import re
import zipfile

import numpy as np

from ..errors import InputError
from .network import Network, make_network

DOMAIN_KEYS = ("lo", "hi", "domain_A", "domain_b")


def _numbered(arrays: dict, prefix: str) -> dict[int, np.ndarray]:
    pat = re.compile(rf"^{prefix}(\d+)$")
    return {int(m.group(1)): v for k, v in arrays.items() if (m := pat.match(k))}


def network_from_arrays(arrays: dict, source: str) -> Network:
    """Build the network from the numbered arrays of an npz file (``source`` names it in errors)."""
    Ws, bs, alphas = _numbered(arrays, "W"), _numbered(arrays, "b"), _numbered(arrays, "a")
    if 1 not in Ws:
        raise InputError(f"{source}: no array 'W1' (expected W1, b1, ..., WL, bL)")
    L = max(Ws)
    missing = [k for k in range(1, L + 1) if k not in Ws]
    if missing:
        raise InputError(f"{source}: W{L} is present but W{missing[0]} is missing (layers must be numbered 1..L)")
    for k in range(1, L + 1):
        if k not in bs:
            raise InputError(f"{source}: W{k} has no matching b{k}")
    extra_b = sorted(k for k in bs if k > L)
    if extra_b:
        raise InputError(f"{source}: b{extra_b[0]} has no matching W{extra_b[0]}")
    bad_a = sorted(k for k in alphas if k >= L)
    if bad_a:
        raise InputError(f"{source}: slope a{bad_a[0]} given for a layer that is not hidden (hidden layers are 1..{L - 1})")
    slopes = None
    if alphas:
        slopes = [alphas.get(k, 0.0) for k in range(1, L)]
    masks = _numbered(arrays, "linear")
    bad = sorted(k for k in masks if k >= L)
    if bad:
        raise InputError(f"{source}: linear{bad[0]} given for a layer that is not hidden (hidden layers are 1..{L - 1})")
    linear = None
    if masks:
        linear = [np.asarray(masks[k], bool) if k in masks else None for k in range(1, L)]
    gids = _numbered(arrays, "groups")
    bad = sorted(k for k in gids if k >= L)
    if bad:
        raise InputError(f"{source}: groups{bad[0]} given for a layer that is not hidden (hidden layers are 1..{L - 1})")
    groups = [gids.get(k) for k in range(1, L)] if gids else None
    return make_network([Ws[k] for k in range(1, L + 1)], [bs[k] for k in range(1, L + 1)], slopes, linear, groups)


def load_npz(path: str | os.PathLike) -> tuple[Network, dict]:
    """Load a network (and its optional domain arrays) from an ``.npz`` file.

    Returns the network and a dict of the domain arrays found (``lo``, ``hi``, ``domain_A``,
    ``domain_b``).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"network file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            if not hasattr(data, "files"):
                raise InputError(f"{path} is a single numpy array, not an .npz of W1, b1, ..., WL, bL")
            arrays = {k: np.array(data[k]) for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(f"cannot read network file {path}: expected an .npz with W1, b1, ..., WL, bL ({exc})") from None
    net = network_from_arrays(arrays, path)
    return net, {k: arrays[k] for k in DOMAIN_KEYS if k in arrays}


def save_npz(path: str | os.PathLike, net: Network, **extra: np.ndarray) -> None:
    """Write a network (and optional extra arrays such as ``lo``/``hi``) in lrenum's format."""
    arrays = {}
    for k, (W, b) in enumerate(zip(net.weights, net.biases), start=1):
        arrays[f"W{k}"] = W
        arrays[f"b{k}"] = b
    if not net.is_relu:
        for k, a in enumerate(net.slopes, start=1):
            arrays[f"a{k}"] = a
    if net.has_linear:
        for k, m in enumerate(net.linear, start=1):
            arrays[f"linear{k}"] = m
    if net.has_groups:
        for k, g in enumerate(net.groups, start=1):
            arrays[f"groups{k}"] = g
    arrays.update(extra)
    np.savez(path, **arrays)
