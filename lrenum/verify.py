"""Independent float64 re-check of a region file against its network (``lrenum verify``)."""

from __future__ import annotations

import numpy as np

from .certify import SAFETY, forward_with_bounds, gamma
from .dataset import RegionFile
from .rank import certified_ranks
from .rebuild import region_maps
from .store import unpack_bits


class Mismatch(Exception):
    """The first disagreement between the file and the network."""


def _check_patterns_and_radius(net, domain_rows, bits, witness, radius, const, what):
    """Pattern at the witness equals ``bits``; the ball of ``radius`` lies inside the region."""
    n_layers = net.layers_covered(bits.shape[1])
    zs, ezs = forward_with_bounds(net.weights[:n_layers], net.biases[:n_layers], witness)
    z = np.concatenate(zs, axis=1)
    ez = np.concatenate(ezs, axis=1)
    sure = np.abs(z) > ez
    wrong = sure & ((z > 0) != bits)
    zero_const = (z == 0) & (ez == 0) & const & ~bits
    unsure = ~sure & ~zero_const
    for name, bad in (("pattern at witness differs from stored pattern", wrong),
                      ("witness lies on a neuron's boundary", unsure)):
        rows = np.nonzero(np.any(bad, axis=1))[0]
        if rows.size:
            i = rows[0]
            raise Mismatch(f"{what} region {i}: {name} (neuron {int(np.nonzero(bad[i])[0][0])})")
    per_layer, _ = region_maps(net.truncated(n_layers), bits)
    G = np.concatenate([p[0] for p in per_layer], axis=1)
    eG = np.concatenate([p[2] for p in per_layer], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        room = (np.abs(z) - ez) / (np.linalg.norm(G, axis=2) * SAFETY + eG)
    room = np.where(const, np.inf, room)
    A, b = domain_rows
    if A.shape[0]:
        slack = b - witness @ A.T - gamma(A.shape[1] + 1) * (np.abs(witness) @ np.abs(A).T + np.abs(b))
        room = np.concatenate([room, slack / np.linalg.norm(A, axis=1)], axis=1)
    bad = radius > np.min(room, axis=1) * (1 + 1e-9) + 1e-300
    rows = np.nonzero(bad)[0]
    if rows.size:
        i = rows[0]
        raise Mismatch(f"{what} region {i}: the ball of the stored radius {radius[i]:.3g} leaves the region")


def verify_file(path: str, net, domain) -> dict:
    """Check every stored region; raise :class:`Mismatch` at the first problem. Returns counts."""
    rf = RegionFile(path)
    try:
        if rf.f.attrs["network_sha256"] != net.digest():
            raise Mismatch("the file was written for a different network (SHA-256 differs)")
        if not rf.complete:
            raise Mismatch("the file is incomplete (interrupted run; use enumerate --resume)")
        widths = net.hidden_widths
        if tuple(widths) != rf.widths:
            raise Mismatch("layer widths differ from the network")
        offsets = net.neuron_offsets
        rng = np.random.default_rng(0)
        full_bits_prev = None
        checked = 0
        for l in range(1, rf.n_layers + 1):
            t = rf.layer(l)
            n = len(t["parent"])
            if l == 1:
                bits = t["pattern"]
                const = t["constant"]
                if np.any(t["parent"] != 0):
                    raise Mismatch("layer 1 region with a parent other than the domain (0)")
            else:
                par = t["parent"]
                if n and (par.min() < 0 or par.max() >= len(full_bits_prev)):
                    raise Mismatch(f"layer {l}: parent index out of range")
                bits = np.concatenate([full_bits_prev[par], t["pattern"]], axis=1)
                const = np.concatenate([full_const_prev[par], t["constant"]], axis=1)
            _check_patterns_and_radius(net, (domain.A, domain.b), bits, t["witness"], t["radius"], const, f"layer {l}")
            # ranks
            _, (M, c, eM, _) = region_maps(net.truncated(l), bits)
            prev_rank = np.full(n, net.input_dim) if l == 1 else rank_prev[t["parent"]]
            rank, sure = certified_ranks(M, eM, prev_rank)
            bad = sure & (rank != t["rank"])
            if np.any(bad):
                i = int(np.nonzero(bad)[0][0])
                raise Mismatch(f"layer {l} region {i}: stored rank {t['rank'][i]} but the Jacobian has rank {rank[i]}")
            if np.any(~sure):
                from .exact import ExactNetwork, exact_rank
                ex = ExactNetwork(net, domain)
                for i in np.nonzero(~sure)[0]:
                    layer_bits = [bits[i][offsets[q]:offsets[q + 1]] for q in range(l)]
                    r = exact_rank(ex.post_activation_map(layer_bits))
                    if r != t["rank"][i]:
                        raise Mismatch(f"layer {l} region {i}: stored rank {t['rank'][i]} but exact rank {r}")
            # parents contain children, and child counts agree
            if l > 1:
                counts = np.bincount(t["parent"], minlength=len(full_bits_prev))
                if np.any(counts != nch_prev):
                    i = int(np.nonzero(counts != nch_prev)[0][0])
                    raise Mismatch(f"layer {l - 1} region {i}: n_children {nch_prev[i]} but {counts[i]} children stored")
            keys = [row.tobytes() for row in np.packbits(bits, axis=1)]
            if len(set(keys)) != len(keys):
                raise Mismatch(f"layer {l}: a pattern appears twice")
            full_bits_prev, full_const_prev, rank_prev = bits, const, t["rank"]
            nch_prev = t.get("n_children")
            checked += n
        fin = rf.final()
        if not np.array_equal(fin["pattern"], full_bits_prev):
            i = int(np.nonzero(np.any(fin["pattern"] != full_bits_prev, axis=1))[0][0])
            raise Mismatch(f"final region {i}: full pattern differs from the layer tables")
        if not np.array_equal(fin["rank"][:, -1], rank_prev):
            raise Mismatch("final ranks differ from the last layer's ranks")
        # affine maps: stored (or rebuilt) map equals the network at the witness and nearby points
        _, (M, c, _, _) = region_maps(net, full_bits_prev)
        W, b = net.weights[-1], net.biases[-1]
        A_net = np.einsum("oj,bjd->bod", W, M)
        c_net = c @ W.T + b
        if "A" in fin:
            A_st, c_st = fin["A"], fin["c"]
            scale = 1e-9 * (1 + np.abs(A_net).max() + np.abs(c_net).max())
            bad = np.any(np.abs(A_st - A_net) > scale, axis=(1, 2)) | np.any(np.abs(c_st - c_net) > scale, axis=1)
            if np.any(bad):
                raise Mismatch(f"final region {int(np.nonzero(bad)[0][0])}: stored affine map differs from the network's")
        else:
            A_st, c_st = A_net, c_net
        wit, rad = fin["witness"], fin["radius"]
        for _ in range(2):
            u = rng.normal(size=wit.shape)
            u /= np.linalg.norm(u, axis=1, keepdims=True)
            pts = wit + 0.5 * rad[:, None] * u
            out = net.forward(pts)
            pred = np.einsum("bod,bd->bo", A_st, pts) + c_st
            tol = 1e-8 * (1 + np.abs(out))
            bad = np.any(np.abs(out - pred) > tol, axis=1)
            if np.any(bad):
                raise Mismatch(f"final region {int(np.nonzero(bad)[0][0])}: affine map disagrees with the network near the witness")
        return {"regions": rf.regions, "rows_checked": checked, "per_layer": rf.counts}
    finally:
        rf.close()
