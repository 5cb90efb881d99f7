"""Knuth probes that add one hyperplane at a time: a region count for a fraction of a split.

The tree estimator (:func:`lrenum.counting.estimate.tree_estimate`) splits every region a probe
visits completely, the root's whole first layer included. Here a probe never lists a region's
children. The children of a region are the cells of its next layer's arrangement, and that
arrangement can be built one hyperplane at a time: each hyperplane either cuts the current cell
(both sides hold interior points) or not. So the region tree refines into a binary tree whose
leaves are still exactly the final regions, one per root-to-leaf path, and a probe walks it:

    at each neuron, in order: if its hyperplane cuts the current cell, take a side at random
    (weight x 2), else keep the cell (weight x 1); after a layer's last neuron the cell is a
    child region; go on with the next layer.

The leaf's weight is 1 / (its probability), so the weights are unbiased estimates of the number of
final regions (Knuth 1975; docs/bounds.md has the proof). Every answer a probe uses is proven:
"this side has interior" by a point certified strictly inside the cell (float64 certificate, else
the exact ladder), "this side is empty" by the Decider's certificate ladder; a wrong answer in either
direction would bias the estimate, so none is trusted uncertified. Each cell a probe ends in is a
certified region, so the distinct regions probes reach at a layer are a certain lower bound.

A step is one batched test over all probes (one device call of LPs for the sides not settled by
the witness ball), so a probe costs about one feasibility test per neuron, and thousands of
probes share each call.
"""

from __future__ import annotations

import time
from typing import Optional

import numpy as np

from .. import runtime
from ..certify import floatcert
from ..certify.decide import DecisionStats
from ..core.arrangement import SideTester
from ..core.children import ChildCells, assemble
from ..core.classify import classify
from ..core.frame import Frame
from ..core.split import Splitter
from ..core.state import Regions, Rows, pattern_keys
from ..core.tree import Tree
from ..errors import InputError
from ..model.domain import Domain
from ..model.network import Network
from ..settings import Settings
from .estimate import Estimate, INTERVALS, _check_common, tree_result


def probe_estimate(net: Network, domain: Optional[Domain] = None, *, probes: int = 1024, seed: int = 0,
                   confidence: float = 0.95, interval: str = "t", settings: Optional[Settings] = None,
                   rel_width: Optional[float] = None, seconds: Optional[float] = None) -> Estimate:
    """The hyperplane-level Knuth estimator (module docstring): one round of ``probes`` probes, or,
    with ``rel_width`` or ``seconds``, rounds of 64, 128, ... up to ``probes`` probes while the
    interval's relative half-width is above ``rel_width`` and the time is under ``seconds``. The default interval
    is Student-t: a probe's weight is a power of 2, and Cox's log-normal interval, which the tree
    estimator's union leans on, covered 6 of 30 seeds where t covered 29 (a 515-region network,
    512 probes each)."""
    domain = _check_common(net, domain, confidence)
    if interval not in INTERVALS:
        raise InputError(f"interval must be one of {INTERVALS}, not {interval!r}")
    if probes < 1:
        raise InputError("--probes must be at least 1")
    settings = settings or Settings.build()
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    stats = DecisionStats()
    frame = Frame(net, domain, settings)
    splitter = Splitter(frame, runtime.select_device(settings.device), stats)
    root = Tree(frame, splitter, []).root()
    samples, seen = [], [set() for _ in range(net.n_hidden)]
    rounds = 0
    adaptive = rel_width is not None or seconds is not None
    size = min(probes, 64) if adaptive else probes   # with a stopping rule: small rounds first, doubling up
    while True:                                      # to ``probes``, so that a time budget is kept
        samples.append(_one_round(frame, splitter, root, size, rng, stats, seen))
        rounds += 1
        size = min(probes, 2 * size)
        per_probe = np.concatenate(samples)
        est = tree_result(per_probe, max(len(s) for s in seen), confidence, interval, time.perf_counter() - t0, {})
        half = 0.5 * (est.ci_high - est.ci_low) / max(est.estimate, 1e-300)
        if rel_width is None and seconds is None:
            break
        if rel_width is not None and half <= rel_width:
            break
        if seconds is not None:
            spent = time.perf_counter() - t0
            if spent >= seconds or spent / per_probe.size * size > 1.5 * (seconds - spent):
                break                                # the next round would overrun the budget by half
    est.details.update({"probes": int(per_probe.size), "rounds": rounds, "seed": seed, "method": "probes",
                        "relative_half_width": half, "distinct_per_layer": [len(s) for s in seen],
                        "lps": stats.lps, "device": runtime.describe_device(splitter.device)})
    est.method = "probes"
    return est


def _one_round(frame: Frame, splitter: Splitter, root: Regions, probes: int, rng: np.random.Generator,
               stats: DecisionStats, seen: list) -> np.ndarray:
    """``probes`` probes from the root to the final layer; returns their weights."""
    regions = root.take(np.zeros(probes, np.int64))          # each probe's current region
    weight = np.ones(probes)
    for level in range(frame.net.n_hidden):
        hyp = splitter.propagate(regions)
        cls = classify(frame, regions, hyp, stats)
        signs, wit, factor = _walk_layer(frame, splitter, regions, hyp, cls, rng, stats)
        weight *= factor
        cells = ChildCells(np.arange(len(regions)), signs, wit)
        children, local = assemble(frame, regions, hyp, cls.const, cells, splitter.decider, stats)
        if len(children) != len(regions):                   # a proven cell is a region: never dropped
            raise RuntimeError("a cell proven non-empty was dropped by its witness certificate")
        seen[level].update(pattern_keys(children.bits))
        regions = children.with_ids(np.arange(len(children)))
    return weight


def _walk_layer(frame: Frame, splitter: Splitter, P: Regions, hyp, cls, rng, stats):
    """Every probe adds its region's next-layer hyperplanes one at a time. Returns each probe's
    complete signs, a certified witness of its final cell, and its weight factor (2 per cut)."""
    B, n = cls.sign.shape
    tester = SideTester(frame, P, hyp, splitter.backend, splitter.decider, stats)
    signs = np.zeros((B, n), np.int8)
    x, radius = P.witness.copy(), P.radius.copy()            # a certified point of each current cell
    factor = np.ones(B)
    geo = frame.geometry
    region_key = np.packbits(P.bits, axis=1)
    # hyperplanes that cannot cut the region (constant on it, or one-signed over its box: classify
    # proves that) cannot cut any cell of it: their side is the region's
    fixed = cls.const | ~(cls.cuts | cls.open)
    for k in range(n):
        const = fixed[:, k]
        signs[const, k] = cls.sign[const, k]
        live_all = np.nonzero(~const)[0]
        if live_all.size == 0:
            continue
        # probes in the same state (same region, same sides so far) ask the same questions: once
        state = np.concatenate([region_key[live_all], signs[live_all, :k].view(np.uint8)], axis=1)
        _, first, back = np.unique(state, axis=0, return_index=True, return_inverse=True)
        back = back.ravel()
        live = live_all[first]
        # the side holding the current point: interior there if the point is certainly off the plane
        val = np.einsum("br,br->b", hyp.G[live, k], geo.image(x[live])) + hyp.g[live, k]
        near = np.where(val > 0, 1, -1).astype(np.int8)
        near_rows = tester.cell_rows(live, signs[live], np.full(live.size, k), near)
        near_ok, near_r = floatcert.certify_points(near_rows, x[live], geo)
        near_r = np.minimum(near_r, floatcert.domain_slack(frame.domain, x[live])[1])
        near_x = x[live].copy()
        far = -near
        far_ok, far_x, far_r = _far_side(frame, tester, live, signs, k, far, x, radius, val, cls, hyp)
        # a point on (or too close to) the plane: its side was not proven, so test that side too
        redo = np.nonzero(~near_ok)[0]
        if redo.size:
            ok2, x2, r2 = _far_side(frame, tester, live[redo], signs, k, near[redo], x, radius, val[redo], cls, hyp,
                                    use_ball=False)
            near_ok[redo], near_r[redo] = ok2, r2
            near_x[redo[ok2]] = x2[ok2]
        if not np.all(near_ok | far_ok):
            raise RuntimeError("a cell with neither side of a hyperplane non-empty")
        # every probe draws its own side where both hold interior points
        both = (near_ok & far_ok)[back]
        go_far = (~near_ok)[back] | (both & (rng.random(live_all.size) < 0.5))
        factor[live_all[both]] *= 2.0
        signs[live_all, k] = np.where(go_far, far[back], near[back])
        x[live_all] = np.where(go_far[:, None], far_x[back], near_x[back])
        radius[live_all] = np.where(go_far, far_r[back], near_r[back])
    return signs, x, factor


def _far_side(frame, tester: SideTester, live, signs, k, side, x, radius, val, cls, hyp, use_ball: bool = True):
    """Does ``side`` of hyperplane k hold interior points of each live probe's cell? (proven (L,),
    a certified point there, its certified radius). The witness ball proposes a point where the
    plane passes through it; an LP proposes the rest; every proposed point is certified, and the
    sides without a certified point go up the Decider's ladder (which proves them empty or finds
    a point, exactly if it must)."""
    geo = frame.geometry
    L = live.size
    norms = np.where(cls.norms[live, k] > 0, cls.norms[live, k], np.inf)
    dist = np.abs(val) / norms
    ok, pt, rad = np.zeros(L, bool), x[live].copy(), np.zeros(L)
    proposed = use_ball & (dist < frame.settings.geo_safety * radius[live])   # a point to certify
    empty = np.zeros(L, bool)                                                # proven empty already
    if np.any(proposed):   # the centre of the far half-ball
        unit = geo.to_x(hyp.G[live[proposed], k]) / norms[proposed, None]
        s = np.sign(val[proposed])[:, None]
        pt[proposed] = x[live[proposed]] - s * unit * (dist[proposed] + radius[live[proposed]])[:, None] / 2
    lp = np.nonzero(~proposed)[0]
    if lp.size:            # the tester's "no" is proven (its ladder); its "yes" is a proposal
        got, px, _ = tester(live[lp], signs[live[lp]], np.full(lp.size, k), side[lp], x[live[lp]])
        pt[lp] = px
        proposed[lp[got]] = True
        empty[lp[~got]] = True
    rows = tester.cell_rows(live, signs[live], np.full(L, k), side)
    inside, r = floatcert.certify_points(rows, pt, geo)
    dom_ok, room = floatcert.domain_slack(frame.domain, pt)
    ok = proposed & inside & dom_ok
    rad = np.where(ok, np.minimum(r, room), 0.0)
    # the rest: proven empty, or a point found, by the ladder (a zero dual sends it past rung 1)
    rest = np.nonzero(~ok & ~empty)[0]
    if rest.size:
        empty, wx, wr = tester.settle(live[rest], signs[live[rest]], np.full(rest.size, k), side[rest],
                                      np.zeros((rest.size, rows.b.shape[1])), np.zeros((rest.size, geo.dom_C.shape[0])))
        found = ~empty
        if np.any(found):
            fi = rest[found]
            pt[fi] = wx[found]
            check, r2 = floatcert.certify_points(Rows(*(a[fi] for a in rows)), pt[fi], geo)
            room2 = floatcert.domain_slack(frame.domain, pt[fi])[1]
            ok[fi] = True
            # exact-only points carry radius 0 (the witness then is certified exactly later)
            rad[fi] = np.where(check, np.minimum(r2, room2), 0.0)
    return ok, pt, rad
