"""Split a batch of layer-l regions into their layer-(l+1) children.

For every parent the next layer's hyperplanes come from its affine map (device kernel).
Each hyperplane is then classified per parent: constant on the region, certainly not
cutting (one side has no interior point), or cutting. The cutting ones are added one at a
time, each step over all current cells of all parents at once (the incremental
construction of an arrangement restricted to a polytope):

1. cheap geometry: a hyperplane closer to a cell's witness than its radius cuts the cell;
2. cheap dual bound: a hyperplane whose sign is constant over the domain box cannot cut;
3. otherwise one interior-margin LP for the side without the witness, batched on the device.

Claims of "no interior point" are certified at once (:class:`lrenum.decide.Decider`);
claims of "interior point" are certified at the end of the layer by a forward pass through
the network at each child's witness. A cell wrongly proposed non-empty only ever produces
children that fail that check and are removed, so no decision is trusted uncertified.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import jax

from . import _jax  # noqa: F401  (float64 and the compilation cache)
from . import certify, exact
from .decide import Decider, DecisionStats
from .rank import certified_ranks
from .regions import RegionBatch
from lrenum.kernels.lp import margin_lp
from lrenum.kernels.propagate import propagate

CUT_TOL = 1e-9        # LP margins above CUT_TOL * scale are proposed as cuts
GEO_SAFETY = 0.999    # geometric cut test: distance < GEO_SAFETY * radius
SMALL = 64            # the small batch bucket (LPs and propagation)
DECIDE_TOL = 1e-6     # LP lanes stop once |t*| is known to exceed DECIDE_TOL * scale


class Splitter:
    """Holds per-network constants; :meth:`split` does one layer for one batch."""

    def __init__(self, net, domain, device, stats: DecisionStats, lp_batch: Optional[int] = None,
                 lp_dtype=np.float64, lp_iters: int = 40, batch_size: int = 512):
        self.net = net
        self.domain = domain
        self.device = device
        self.stats = stats
        self.d = net.input_dim
        self.widths = net.hidden_widths
        self.offsets = net.neuron_offsets
        self.m_dom = domain.A.shape[0]
        self.scale = domain.scale()
        self.t_cap = self.scale if domain.box is not None else 1.0
        self.x_bound = float(np.max(np.abs(domain.box))) if domain.box is not None else 1e6
        # LPs per device call: a GPU needs ~10^4 lanes to amortise its launches
        self.lp_batch = lp_batch or (16384 if device.platform == "gpu" else 1024)
        self.lp_dtype = lp_dtype
        self.lp_iters = lp_iters
        # one LP row count for every layer so that jit compiles one shape per batch bucket
        m_max = self.m_dom + int(sum(self.widths)) + 1
        self.m_lp = int(-(-m_max // 8) * 8)
        self.decider = Decider(net, domain, stats, self.t_cap)
        # Shapes are bucketed so that a whole run compiles (or loads from the persistent cache)
        # only two LP shapes and two propagation shapes: every layer's weights are zero-padded to
        # the widest layer, batches are padded to SMALL or to the full batch size.
        self.batch_size = max(batch_size, SMALL)
        n_max = max(self.widths)
        self.W_pad = [np.pad(W, [(0, n_max - W.shape[0]), (0, max(n_max, self.d) - W.shape[1])])
                      for W in net.weights[:-1]]
        self.b_pad = [np.pad(bb, (0, n_max - bb.shape[0])) for bb in net.biases[:-1]]
        self.n_in_max = max(n_max, self.d)

    # ------------------------------------------------------------------ device calls
    def _propagate(self, P: RegionBatch):
        W = self.net.weights[P.layer]
        bias = self.net.biases[P.layer]
        B, n = len(P), W.shape[0]
        if P.layer == 0:  # the first layer's hyperplanes are the weights themselves, exactly
            G = np.broadcast_to(W, (B, n, self.d)).copy()
            g = np.broadcast_to(bias, (B, n)).copy()
            return G, g, np.zeros((B, n)), np.zeros((B, n))
        out = []
        for start in range(0, B, self.batch_size):
            stop = min(B, start + self.batch_size)
            k = stop - start
            size = SMALL if k <= SMALL else self.batch_size
            pad_in = self.n_in_max - P.M.shape[1]
            M = np.pad(P.M[start:stop], [(0, size - k), (0, pad_in), (0, 0)])
            rest = [np.pad(a[start:stop], [(0, size - k), (0, pad_in)]) for a in (P.c, P.eM, P.ec)]
            with jax.default_device(self.device):
                res = propagate(M, *rest, self.W_pad[P.layer], self.b_pad[P.layer])
            out.append([np.asarray(o)[:k, :n] for o in res])
        return tuple(np.concatenate(parts) for parts in zip(*out))

    def _lp(self, A, b, mask, x0):
        """Batched margin LPs on normalised rows, padded to bucketed shapes."""
        K = A.shape[0]
        self.stats.lps += K
        t_all = np.empty(K)
        x_all = np.empty((K, self.d))
        y_all = np.empty((K, A.shape[1]))
        for start in range(0, K, self.lp_batch):
            stop = min(K, start + self.lp_batch)
            k = stop - start
            size = SMALL if k <= SMALL else self.lp_batch
            pad_b = size - k
            pad_m = self.m_lp - A.shape[1]
            Ap = np.pad(A[start:stop], [(0, pad_b), (0, pad_m), (0, 0)]).astype(self.lp_dtype)
            bp = np.pad(b[start:stop], [(0, pad_b), (0, pad_m)]).astype(self.lp_dtype)
            mp = np.pad(mask[start:stop], [(0, pad_b), (0, pad_m)])
            xp = np.pad(x0[start:stop], [(0, pad_b), (0, 0)]).astype(self.lp_dtype)
            with jax.default_device(self.device):
                # numpy inputs go straight to the jitted kernel (no eager device_put per array)
                t, x, y = margin_lp(Ap, bp, mp, xp, self.t_cap, self.x_bound, DECIDE_TOL * self.scale,
                                    iters=self.lp_iters)
            t_all[start:stop] = np.asarray(t)[:k]
            x_all[start:stop] = np.asarray(x)[:k]
            y_all[start:stop] = np.asarray(y)[:k, :A.shape[1]]
        return t_all, x_all, y_all

    # ------------------------------------------------------------------ helpers
    def _layer_signs(self, bits: np.ndarray, n_layers: int) -> list:
        """Per-layer sign lists (+1 active, -1 inactive) of one full pattern, for the exact path."""
        return [np.where(bits[self.offsets[l]:self.offsets[l + 1]], 1, -1) for l in range(n_layers)]

    def _signs(self, P: RegionBatch, p: int, layer_signs: np.ndarray) -> list:
        """Sign lists (+1/-1/0 per neuron) of a cell: parent's full pattern, then this layer's."""
        return self._layer_signs(P.bits[p], P.layer) + [layer_signs]

    def _cell_rows(self, P, p, G, g, eG, eg, nonconst_cut, sgn, k=None, side=None):
        """Unnormalised rows of cells: parent rows, decided cutting rows of this layer, and
        optionally the row ``side * z_k <= 0`` (the side of neuron k to test)."""
        K = len(p)
        n = G.shape[1]
        dec = nonconst_cut[p] & (sgn != 0)
        s = sgn.astype(np.float64)
        A_l = -s[:, :, None] * G[p]
        b_l = s * g[p]
        parts_A = [P.A[p], A_l]
        parts_b = [P.b[p], b_l]
        parts_ea = [P.ea[p], eG[p]]
        parts_eb = [P.eb[p], eg[p]]
        parts_m = [P.rmask[p], dec]
        if k is not None:
            parts_A.append((side[:, None] * G[p, k])[:, None, :])
            parts_b.append((-side * g[p, k])[:, None])
            parts_ea.append(eG[p, k][:, None])
            parts_eb.append(eg[p, k][:, None])
            parts_m.append(np.ones((K, 1), bool))
        cat = lambda xs: np.concatenate(xs, axis=1)
        return cat(parts_A), cat(parts_b), cat(parts_ea), cat(parts_eb), cat(parts_m)

    def _test_side(self, P, p, G, g, eG, eg, cutmask, sgn, k, side, x0, exact_signs):
        """Does the side ``side * z_k < 0`` of each cell have an interior point?

        Returns (nonempty (K,) bool, witness (K, d), radius (K,)). Solves device LPs,
        certifies "empty" answers and re-decides the rest.
        """
        A, b, ea, eb, mask = self._cell_rows(P, p, G, g, eG, eg, cutmask, sgn, k, side)
        norms = np.linalg.norm(A, axis=2)
        safe = np.where(mask & (norms > 0), norms, 1.0)
        An = A / safe[:, :, None]
        bn = b / safe
        t, x, y = self._lp(An, bn, mask & (norms > 0), x0)
        nonempty = t > CUT_TOL * self.scale
        witness, radius = x.copy(), np.maximum(t, 0.0)
        claims = np.nonzero(~nonempty)[0]
        if claims.size:
            yc = y[claims] / safe[claims]
            empty, wit = self.decider.empty_claims(
                A[claims], b[claims], ea[claims], eb[claims], mask[claims], yc,
                lambda i: exact_signs(claims[i]))
            flip = claims[~empty]
            nonempty[flip] = True
            witness[flip] = wit[~empty]
            radius[flip] = 0.0
        return nonempty, witness, radius

    # ------------------------------------------------------------------ the split
    def split(self, P: RegionBatch) -> tuple[RegionBatch, np.ndarray]:
        """Children of every region in ``P`` and the number of children of each parent."""
        B, d, l = len(P), self.d, P.layer
        G, g, eG, eg = self._propagate(P)
        n = G.shape[1]
        G1 = np.abs(G).sum(axis=2)
        Gn = np.linalg.norm(G, axis=2)
        nonconst = G1 > eG
        const = (G1 == 0) & (eG == 0)
        const_bit = g > eg
        const_sure = (np.abs(g) > eg) | ((g == 0) & (eg == 0))
        self._settle_unsure_constants(P, G, g, nonconst, const, const_bit, const_sure)

        fixed = np.where(const, np.where(const_bit, 1, -1), 0).astype(np.int8)
        w, r = P.witness, P.radius
        val = np.einsum("bjd,bd->bj", G, w) + g
        sigma = np.where(val >= 0, 1.0, -1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            delta = np.where(nonconst, np.abs(val) / np.where(Gn > 0, Gn, 1.0), np.inf)
        cuts = nonconst & (delta < GEO_SAFETY * r[:, None])
        cand = nonconst & ~cuts

        # cheap dual bound with the new row alone: sign of z constant over the domain box
        ci, cj = np.nonzero(cand)
        if ci.size and self.domain.box is not None:
            s = sigma[ci, cj]
            stable = certify.certify_empty(
                (s[:, None] * G[ci, cj])[:, None, :], (-s * g[ci, cj])[:, None],
                eG[ci, cj][:, None], eg[ci, cj][:, None], np.ones((ci.size, 1)), *self.domain.box)
            ci, cj = ci[~stable], cj[~stable]
        self.stats.avoided += int(nonconst.sum()) - ci.size

        # one LP per remaining (parent, hyperplane): does the far side have an interior point?
        if ci.size:
            sgn0 = np.zeros((ci.size, n), np.int8)
            side = sigma[ci, cj]
            cutmask0 = np.zeros_like(nonconst)
            nonempty, _, _ = self._test_side(
                P, ci, G, g, eG, eg, cutmask0, sgn0, cj, side, w[ci],
                lambda i: self._signs(P, ci[i], _one_sign(n, cj[i], -side[i])))
            cuts[ci[nonempty], cj[nonempty]] = True
        fixed = np.where(nonconst & ~cuts, sigma, fixed).astype(np.int8)

        cell_p, sgn, wit, rad = self._arrangement(P, G, g, eG, eg, Gn, cuts, fixed)
        children = self._build_children(P, cell_p, sgn, wit, rad, G, g, eG, eg, const)
        n_children = np.bincount(children.parent_local, minlength=B) if len(children) else np.zeros(B, int)
        return children.batch, n_children

    def _settle_unsure_constants(self, P, G, g, nonconst, const, const_bit, const_sure):
        """Neurons whose constancy or constant sign float64 cannot tell: decide exactly (rare)."""
        unsure = (~nonconst & ~const) | (const & ~const_sure)
        for p, j in zip(*np.nonzero(unsure)):
            self.stats.exact += 1
            bits = [P.bits[p][self.offsets[q]:self.offsets[q + 1]] for q in range(P.layer)]
            Gj, gj = self.decider.exact_net.pre_activation(bits, j)
            if any(Gj):
                nonconst[p, j] = True   # a genuine (tiny) hyperplane; its decisions get certified
                const[p, j] = False
            else:
                const[p, j] = True
                nonconst[p, j] = False
                const_bit[p, j] = gj > 0

    def _arrangement(self, P, G, g, eG, eg, Gn, cuts, fixed):
        """Add the cutting hyperplanes one by one to every cell of every parent."""
        B, n = cuts.shape
        cell_p = np.arange(B)
        sgn = fixed.copy()
        wit = P.witness.copy()
        rad = P.radius.copy()
        for k in range(n):
            sel = np.nonzero(cuts[cell_p, k])[0]
            if sel.size == 0:
                continue
            p = cell_p[sel]
            val = np.einsum("kd,kd->k", G[p, k], wit[sel]) + g[p, k]
            sig = np.where(val >= 0, 1.0, -1.0)
            unit = G[p, k] / Gn[p, k][:, None]
            delta = np.abs(val) / Gn[p, k]
            r_eff = np.minimum(rad[sel], delta + 2.0 * self.scale)
            geo = delta < GEO_SAFETY * r_eff
            self.stats.avoided += int(geo.sum())
            new_p, new_w, new_r, new_from = [], [], [], []
            # geometric split: both half-balls of the witness ball are inside the cell
            gi = np.nonzero(geo)[0]
            if gi.size:
                s, dl, re = sig[gi, None], delta[gi, None], r_eff[gi, None]
                new_w.append(wit[sel[gi]] - s * unit[gi] * (dl + re) / 2)
                new_r.append(((re - dl) / 2)[:, 0])
                wit[sel[gi]] = wit[sel[gi]] + s * unit[gi] * (re - dl) / 2
                rad[sel[gi]] = ((re + dl) / 2)[:, 0]
                new_p.append(p[gi])
                new_from.append(sel[gi])
            li = np.nonzero(~geo)[0]
            if li.size:
                cs = sel[li]
                side = sig[li]
                nonempty, x, t = self._test_side(
                    P, p[li], G, g, eG, eg, cuts, sgn[cs], np.full(li.size, k), side, wit[cs],
                    lambda i: self._signs(P, p[li][i], _with_sign(sgn[cs[i]], k, -side[i])))
                ne = np.nonzero(nonempty)[0]
                new_w.append(x[ne])
                new_r.append(t[ne])
                new_p.append(p[li][ne])
                new_from.append(cs[ne])
                rad[cs[ne]] = np.minimum(rad[cs[ne]], delta[li][ne])
            sgn[sel, k] = sig.astype(np.int8)
            if new_p:
                src = np.concatenate(new_from)
                child_sgn = sgn[src].copy()
                child_sgn[:, k] = -sgn[src, k]
                cell_p = np.concatenate([cell_p, np.concatenate(new_p)])
                sgn = np.concatenate([sgn, child_sgn])
                wit = np.concatenate([wit] + new_w)
                rad = np.concatenate([rad] + new_r)
        return cell_p, sgn, wit, rad

    def _build_children(self, P, cell_p, sgn, wit, rad, G, g, eG, eg, const):
        """Assemble children, certify their witnesses by forward pass, compute ranks."""
        l, d = P.layer, self.d
        act = sgn > 0
        cst = const[cell_p]
        s = sgn.astype(np.float64)
        Gc, gc = G[cell_p], g[cell_p]
        A = np.concatenate([P.A[cell_p], -s[:, :, None] * Gc], axis=1)
        b = np.concatenate([P.b[cell_p], s * gc], axis=1)
        ea = np.concatenate([P.ea[cell_p], eG[cell_p]], axis=1)
        eb = np.concatenate([P.eb[cell_p], eg[cell_p]], axis=1)
        rmask = np.concatenate([P.rmask[cell_p], ~cst], axis=1)
        bits = np.concatenate([P.bits[cell_p], act], axis=1)
        constall = np.concatenate([P.const[cell_p], cst], axis=1)
        M = Gc * act[:, :, None]
        c = gc * act
        eM = eG[cell_p] * act
        ec = eg[cell_p] * act

        status, radius = self._certify(wit, bits, constall, A, ea)
        keep = np.ones(len(cell_p), bool)
        for i in np.nonzero(status != 0)[0]:
            signs = self._layer_signs(bits[i], l + 1)
            ok, x, rr = self.decider.repair_witness(
                A[i], b[i], ea[i], eb[i], rmask[i], signs,
                lambda x, i=i: tuple(v[0] for v in self._certify(x[None], bits[i:i + 1], constall[i:i + 1],
                                                                 A[i:i + 1], ea[i:i + 1])))
            keep[i] = ok
            if ok:
                wit[i] = x
                radius[i] = rr

        prev = P.rank[cell_p, -1] if l > 0 else np.full(len(cell_p), d)
        rank, sure = certified_ranks(M, eM, prev)
        for i in np.nonzero(~sure)[0]:
            self.stats.exact += 1
            layer_bits = [bits[i][self.offsets[q]:self.offsets[q + 1]] for q in range(l + 1)]
            rank[i] = exact.exact_rank(self.decider.exact_net.post_activation_map(layer_bits))
        ranks = np.concatenate([P.rank[cell_p], rank[:, None]], axis=1)
        batch = RegionBatch(layer=l + 1, bits=bits, const=constall, A=A, b=b, ea=ea, eb=eb, rmask=rmask,
                            M=M, c=c, eM=eM, ec=ec, witness=wit, radius=radius, rank=ranks,
                            parent=P.ident[cell_p], ident=np.full(len(cell_p), -1, np.int64))
        return _Children(batch.take(keep), cell_p[keep])

    def _certify(self, x, bits, const, A, ea):
        """Forward-pass certificate of witnesses ``x`` against full patterns ``bits``."""
        L = bits.shape[1]
        layers = [l for l in range(len(self.widths)) if self.offsets[l + 1] <= L]
        split = lambda a: [a[:, self.offsets[q]:self.offsets[q + 1]] for q in layers]
        rows = A[:, self.m_dom:, :]
        norms = np.linalg.norm(rows, axis=2)
        errs = ea[:, self.m_dom:]
        return certify.certify_witnesses(self.net, self.domain, x, split(bits), split(const),
                                         split(norms), split(errs))


class _Children:
    def __init__(self, batch: RegionBatch, parent_local: np.ndarray):
        self.batch = batch
        self.parent_local = parent_local

    def __len__(self) -> int:
        return len(self.batch)


def _one_sign(n: int, j: int, s: float) -> np.ndarray:
    out = np.zeros(n, np.int8)
    out[j] = int(s)
    return out


def _with_sign(sgn: np.ndarray, k: int, s: float) -> np.ndarray:
    out = sgn.copy()
    out[k] = int(s)
    return out
