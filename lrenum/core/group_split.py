"""Step 3-4 of a split for a layer with winner-take-all groups (max pooling over 3+ values): argmax cells.

A group's units ``z_1..z_m`` (``m = k - 1`` for a window of k values) cut a region into at most
m + 1 argmax cells: "none" (every ``z < 0``) and "t" (``z_t > 0`` and ``z_s < z_t`` for every
other s). These are not the cells of a hyperplane arrangement in the z (the hyperplanes
``z_s = z_t`` would cut them again), so the layer is split group by group:

    every group's options against the whole parent, all in one batch of LPs
    for each group:
        a cell that is still its whole parent: its options are those found for the parent
        any other cell, for each option its parent allows:
            the cell's witness's own option needs no LP (a proposal, certified with the children);
            every other option gets one margin LP; "no interior" is certified at once
        the new cells are the options with interior

(The parent-level batch saves a third of the LPs and of the time on a 2x2-pool network around
digits: most groups have one option in a small box, and those never cut.)

Options are ruled out for free where step 2 (:mod:`lrenum.core.classify`) proved a unit's sign
over the whole parent: t needs ``z_t > 0``, "none" needs every ``z < 0``; and where a loser ties
exactly with a later winner (ties go to the lower index). Plain units of the layer are groups of
one (options: inactive, active). Nothing here is trusted uncertified, as on the LP path: every
emptiness claim goes through the :class:`lrenum.certify.decide.Decider`, every cell's interior
through the forward-pass certificate of :func:`lrenum.core.children.assemble`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..certify.decide import CellSpec, Decider, DecisionStats
from ..lp.problem import MarginProblems
from . import memory
from .children import ChildCells
from .classify import Classes
from .frame import Frame
from .hyperplanes import against_winners, tied_against_later
from .state import Hyperplanes, Regions, Rows


def takes(frame: Frame, layer: int) -> bool:
    """True when the units of hidden layer ``layer + 1`` (0-based ``layer``) include a group of two or more."""
    return bool(frame.net.group_members[layer])


def unit_groups(frame: Frame, layer: int) -> list[np.ndarray]:
    """The layer's groups in unit order: every group of two or more, and each plain unit alone."""
    net = frame.net
    members = net.group_members[layer]
    grouped = np.zeros(net.hidden_widths[layer], bool)
    for m in members:
        grouped[m] = True
    alone = [np.array([j]) for j in np.flatnonzero(~grouped & ~net.linear[layer])]
    return sorted(list(members) + alone, key=lambda m: int(m[0]))


def with_option(signs: np.ndarray, members: np.ndarray, option: np.ndarray) -> np.ndarray:
    """Signs with a group decided: option 0 is "none" (all -1), option i >= 1 makes unit members[i-1] the winner."""
    out = signs.copy()
    out[:, members] = -1
    won = option > 0
    out[np.flatnonzero(won), members[option[won] - 1]] = 1
    return out


class GroupSplitter:
    """Argmax cells of a batch of parents, group by group (module docstring)."""

    def __init__(self, frame: Frame, backend, decider: Decider, stats: DecisionStats):
        self.frame, self.backend, self.decider, self.stats = frame, backend, decider, stats

    def split(self, P: Regions, hyp: Hyperplanes, cls: Classes,
              report: Callable[[int, int, int], None]) -> ChildCells:
        """The children's cells (grouped by parent, in parent order), every unit signed.

        First every group's options against the parent alone, all groups in one batch of LPs:
        an option without interior in the parent has none in any part of it, and a cell that is
        still its whole parent (every group so far had one option) needs no LP at all. Then the
        groups one by one, LPs only for cells already cut by an earlier group."""
        frame, l = self.frame, P.layer
        B, n = cls.sign.shape
        signs = np.zeros((B, n), np.int8)
        signs[:, frame.net.linear[l]] = -1             # carried units: constant, inactive
        groups = unit_groups(frame, l)
        allowed, found, found_x = self._parent_options(P, hyp, cls, groups, signs)
        parent, witness = np.arange(B), P.witness.copy()
        whole = np.ones(B, bool)                       # the cell is its whole parent
        for gi, members in enumerate(groups):
            C, m = len(parent), members.size
            memory.check_cells(frame.settings, C * (m + 1), int(frame.offsets[l + 1]), l + 1, B)
            ok_g = allowed[gi][parent]
            # cells that are their whole parent: every option with interior in the parent, found already
            wi, wo = np.nonzero(ok_g & whole[:, None])
            # the others: the witness's own option without an LP, every other possible one with one
            own = self._own_option(P, hyp, parent, witness, members)
            cut = np.flatnonzero(~whole)
            own_ok = cut[ok_g[cut, own[cut]]]
            test = ok_g & ~whole[:, None]
            test[own_ok, own[own_ok]] = False
            ci, oi = np.nonzero(test)
            ok, x = self._test(P, hyp, cls, parent[ci], with_option(signs[ci], members, oi), witness[ci])
            n_opts = np.bincount(wi, minlength=C)
            at = found[gi][parent[wi], wo]
            whole_x = P.witness[parent[wi]]
            if np.any(at >= 0):
                whole_x[at >= 0] = found_x[at[at >= 0]]
            witness = np.concatenate([whole_x, witness[own_ok], x[ok]])
            parent = np.concatenate([parent[wi], parent[own_ok], parent[ci[ok]]])
            signs = np.concatenate([with_option(signs[wi], members, wo), with_option(signs[own_ok], members, own[own_ok]),
                                    with_option(signs[ci[ok]], members, oi[ok])])
            whole = np.concatenate([n_opts[wi] == 1, np.zeros(own_ok.size + int(ok.sum()), bool)])
            report(gi + 1, len(groups), len(parent))
        order = np.argsort(parent, kind="stable")
        return ChildCells(parent[order], signs[order], witness[order])

    def _parent_options(self, P: Regions, hyp: Hyperplanes, cls: Classes, groups, signs):
        """Per group, which options have interior in each parent (B, m + 1), and where a point of
        each lies (B, m + 1): its row of the returned points, -1 for the parent's witness (its own
        option, proven with the children). The rule-outs of step 2, then one LP for each other
        option, all groups in one batch; points are kept once, not per option (d = 784)."""
        B = len(P)
        fixed = ~cls.cuts & ~cls.open                  # proven one-signed over the parent (or constant)
        pos, neg = fixed & (cls.sign > 0), fixed & (cls.sign < 0)
        rows = np.arange(B)
        allowed, tests = [], []
        for members in groups:
            ok = np.concatenate([~np.any(pos[:, members], axis=1)[:, None], ~neg[:, members]], axis=1)
            own = self._own_option(P, hyp, rows, P.witness, members)
            test = ok.copy()
            test[rows, own] = False
            allowed.append(ok & ~test)                 # the own option where possible; tests add the rest
            tests.append(np.nonzero(test))
        pi = np.concatenate([t[0] for t in tests])
        oi = np.concatenate([t[1] for t in tests])
        gi = np.concatenate([np.full(t[0].size, g) for g, t in enumerate(tests)])
        trial = signs[pi].copy()
        for g, members in enumerate(groups):
            sel = np.flatnonzero(gi == g)
            trial[sel] = with_option(trial[sel], members, oi[sel])
        ok, x = self._test(P, hyp, cls, pi, trial, P.witness[pi])
        found = []                                     # per group: row of x holding each option's point (-1: the witness)
        for g, members in enumerate(groups):
            at = np.full((B, members.size + 1), -1)
            sel = np.flatnonzero((gi == g) & ok)
            allowed[g][pi[sel], oi[sel]] = True
            at[pi[sel], oi[sel]] = sel
            found.append(at)
        return allowed, found, x

    def _own_option(self, P: Regions, hyp: Hyperplanes, parent, witness, members) -> np.ndarray:
        """The option each cell's witness is in, by its float pre-activations (a proposal)."""
        img = self.frame.geometry.image(witness)
        z = np.einsum("cmr,cr->cm", hyp.G[parent][:, members], img) + hyp.g[parent][:, members]
        best = np.argmax(z, axis=1)
        return np.where(z[np.arange(len(parent)), best] > 0, best + 1, 0)

    def _test(self, P: Regions, hyp: Hyperplanes, cls: Classes, parent, signs, start):
        """Has each cell (its parent, this layer's signs so far) interior? (proven-empty ones False,
        a point in each other), in chunks within the LP memory budget."""
        K = parent.size
        frame = self.frame
        if K == 0:
            return np.zeros(0, bool), np.zeros((0, frame.d))
        step = memory.lp_chunk(frame.settings, P.rows.C.shape[1] + signs.shape[1], frame.r)
        if K > step:
            parts = [self._test(P, hyp, cls, parent[s:s + step], signs[s:s + step], start[s:s + step])
                     for s in range(0, K, step)]
            return tuple(np.concatenate(p) for p in zip(*parts))
        rows, tie = self.cell_rows(P, hyp, cls, parent, signs)
        sol = self.backend.solve(MarginProblems(rows.C, rows.b, rows.mask, start))
        self.stats.lps += K
        self.stats.lp_unfinished += int(np.sum(sol.status != 0))
        nonempty = (sol.t > frame.settings.cut_tol * frame.geometry.scale) & ~tie
        x = sol.x.copy()
        claims = np.flatnonzero(~nonempty & ~tie)
        if claims.size:
            off = frame.offsets[P.layer]
            spec = lambda i: CellSpec(frame.layer_signs(P.bits[parent[claims[i]]], P.layer, signs[claims[i]]),
                                      np.concatenate([np.flatnonzero(P.rows.mask[parent[claims[i]]]),
                                                      off + np.flatnonzero(rows.mask[claims[i], P.rows.C.shape[1]:])]))
            sub = Rows(*(a[claims] for a in rows))
            empty, wit, _ = self.decider.empty_claims(sub, sol.y[claims], sol.y_dom[claims], spec)
            flip = claims[~empty]
            nonempty[flip] = True
            x[flip] = wit[~empty]
        return nonempty, x

    def cell_rows(self, P: Regions, hyp: Hyperplanes, cls: Classes, parent, signs) -> tuple[Rows, np.ndarray]:
        """The rows of cells (the parent's, then one per unit of this layer by the group rule,
        masked where undecided or an allowed tie) and which cells are impossible ties."""
        ref = self.frame.net.group_reference(P.layer, signs)
        hp = Hyperplanes(hyp.G[parent], hyp.g[parent], hyp.eG[parent], hyp.eg[parent])
        H, const = against_winners(hp, ref, cls.const[parent])
        s = signs.astype(np.float64)
        R = P.rows
        rows = Rows(np.concatenate([R.C[parent], -s[:, :, None] * H.G], axis=1),
                    np.concatenate([R.b[parent], s * H.g], axis=1),
                    np.concatenate([R.eC[parent], H.eG], axis=1),
                    np.concatenate([R.eb[parent], H.eg], axis=1),
                    np.concatenate([R.mask[parent], (signs != 0) & ~const], axis=1))
        return rows, tied_against_later(ref, const)
