"""Knuth probes that add one hyperplane at a time, stratified and guided: a region count for a
fraction of a split.

The tree estimator (:func:`lrenum.counting.estimate.tree_estimate`) splits every region a probe
visits completely, the root's whole first layer included. Here a probe never lists a region's
children. The children of a region are the cells of its next layer's arrangement, and that
arrangement can be built one hyperplane at a time: each hyperplane either cuts the current cell
(both sides hold interior points) or not. So the region tree refines into a binary tree whose
leaves are still exactly the final regions, one per root-to-leaf path.

1. **Frontier (strata).** The top of that tree is walked completely, breadth first, until it has
   more than ``strata`` cells (or ends: then the count is exact). Its cells are disjoint and every
   final region lies below exactly one of them, so the count is the sum of their subtrees' sizes.
2. **Probes below each stratum.** A probe starts at a frontier cell and walks down:

       at each neuron, in order: if its hyperplane cuts the current cell, take a side with the
       guide's probability p (probe_guide.py), weight x 1/p; else keep the cell; after a layer's
       last neuron the cell is a child region; go on with the next layer.

   The weight at the leaf is an unbiased estimate of the stratum's size (Knuth 1975; the proof,
   with any side probabilities that depend only on the cell, is in docs/bounds.md).
3. **Allocation.** Every round gives the strata probes in proportion to the guide's count of their
   sample patterns, or, without a guide, to the chance 2^-cuts that a plain walk would be there
   (proportional allocation: never worse than that walk, up to rounding); the first round two each
   at least. The guide is dropped where fewer than half the strata hold one of its points. The
   estimate is the sum of the strata's means, its variance the sum of their variances of the mean,
   its interval Student-t with Welch-Satterthwaite degrees of freedom.

The guide makes the choices follow where the regions are; stratification removes what the top
choices contribute to the variance. Measured over 40 seeds of 512 probes
(experiments/results/probe_coverage-*.md): the spread of the estimates fell 2.8x to 26x on
networks of 3 to 5 inputs (guide kept) and 1.0x to 1.6x on 784-input ones, where uniform points
see a few hundred regions and the guide is dropped (kept there, it made the spread worse: it
steered probes towards the few voluminous regions the samples see). Every answer a probe uses is proven: "this side has interior" by a point certified
strictly inside the cell (float64 certificate, else the exact ladder), "this side is empty" by the
Decider's certificate ladder; a wrong answer in either direction would bias the estimate, so none
is trusted uncertified. Each cell reached is a certified region or a certified cell, so the
frontier's size and the distinct regions reached at a layer are certain lower bounds.

A step is one batched test over all probes (one device call of LPs for the sides not settled by
the witness ball); probes in the same cell share their tests.

Over 350 lines on purpose: the frontier's walk, the probes' walk and the proven side tests are one
loop over the same Layer and Cells state (the strata's arithmetic lives in strata.py, the guide in
probe_guide.py); split further, that state would cross module boundaries on every step.
"""

from __future__ import annotations

import math
import time
from typing import NamedTuple, Optional

import numpy as np

from .. import runtime
from ..certify import floatcert
from ..certify.decide import DecisionStats
from ..core.arrangement import SideTester
from ..core.children import ChildCells, assemble
from ..core.classify import Classes, classify
from ..core.frame import Frame
from ..core.split import Splitter
from ..core.state import Hyperplanes, Regions, Rows, pattern_keys
from ..core.tree import Tree
from ..errors import InputError
from ..model.domain import Domain
from ..model.network import Network
from ..settings import Settings
from .estimate import Estimate, _check_common
from .probe_guide import SampleGuide, build_guide
from .strata import StrataTally

GUIDE_POINTS = 65536   # sample points behind the side probabilities: a forward pass each (probe_guide.py)
GUIDE_REACH = 0.5      # the guide is dropped when fewer strata than this hold one of its points: uniform
                       # points then see only the most voluminous regions (784 inputs: 9 to 122 patterns),
                       # and steering probes towards them made the spread worse than sides of 1/2
                       # (mnist_8x14, 40 seeds: 0.127 with the guide, 0.102 without; results/probe_coverage-*)
TIMED_STRATA = 32      # the cap under --seconds: the first round (two probes per stratum) cannot stop early,
                       # and 2 x 512 strata of 96-neuron probes at d = 784 took 349 s against 120 asked
STRATA = 256           # frontier cells: walked exactly once, then probed; the first round needs two
                       # probes per stratum, so at most an eighth of the probes asked for (the rest
                       # follow the proxy: more strata than that left too few to follow it, measured)


class Cells(NamedTuple):
    """Cells of the binary tree inside one layer: one row per probe (or per frontier cell)."""

    owner: np.ndarray     # (m,) row of the layer's regions the cell lies in
    signs: np.ndarray     # (m, n) int8: sides of the layer's neurons added so far (0: not yet)
    x: np.ndarray         # (m, d) a certified interior point of the cell
    radius: np.ndarray    # (m,) its certified radius (0: certified exactly, no ball)
    lo: np.ndarray        # (m,) the cell's rows [lo, hi) in the guide's sorted samples
    hi: np.ndarray
    weight: np.ndarray    # (m,) a probe: 1 / the probability of its path from its stratum;
                          # a frontier cell: 2^(hyperplanes that cut its cells on the way)
    stratum: np.ndarray   # (m,) the frontier cell the probe started in

    @property
    def count(self) -> int:        # len() of a NamedTuple is its number of fields
        return int(self.owner.shape[0])

    def take(self, idx) -> "Cells":
        return Cells(*(a[idx] for a in self))

    @staticmethod
    def concat(parts: list["Cells"]) -> "Cells":
        return Cells(*(np.concatenate(a) for a in zip(*parts)))


class Layer(NamedTuple):
    """One layer's regions and what every step inside them reads."""

    P: Regions
    hyp: Hyperplanes
    cls: Classes
    tester: SideTester
    fixed: np.ndarray        # (B, n): cannot cut the region, so cuts none of its cells
    region_key: np.ndarray   # (B, bytes): the region's packed pattern
    offset: int              # the layer's first neuron in the flat pattern


class Frontier(NamedTuple):
    """The strata: disjoint certified cells below which every final region lies exactly once."""

    layer: Optional[Layer]   # None when the walk ended (complete)
    step: int                # the next neuron of the layer to add
    cells: Cells
    complete: bool           # every cell is a final region: their number is the count


class Sides(NamedTuple):
    """Both sides of one hyperplane in a batch of cells, each proven non-empty or empty."""

    near: np.ndarray         # (u,) int8: the side of the cell's point
    near_ok: np.ndarray
    near_x: np.ndarray
    near_r: np.ndarray
    far_ok: np.ndarray
    far_x: np.ndarray
    far_r: np.ndarray


class ProbeSampler:
    """The frontier, built once, and rounds of probes below it (the coverage study reuses one
    sampler for many seeds: the frontier does not depend on the seed)."""

    def __init__(self, net: Network, domain: Domain, settings: Settings, strata: int = STRATA,
                 guide_points: int = GUIDE_POINTS, guide_seed: int = 0):
        if net.has_groups:     # a probe walks hyperplanes; a window's argmax cells are not hyperplane cells
            raise InputError("--method probes does not support max pooling over windows of 3 or more values "
                             "(use --method tree)")
        self.net = net
        self.stats = DecisionStats()
        self.frame = Frame(net, domain, settings)
        self.splitter = Splitter(self.frame, runtime.select_device(settings.device), self.stats)
        self.guide: Optional[SampleGuide] = build_guide(net, domain, guide_points,
                                                        np.random.default_rng([guide_seed, 1]))
        self.seen = [set() for _ in range(net.n_hidden)]
        self.frontier = self._expand(max(1, strata))
        self.guide_reach: Optional[float] = None   # the share of strata holding a guide point
        if self.guide is not None and not self.frontier.complete:
            c = self.frontier.cells
            self.guide_reach = float(np.mean(self.guide.regions_in(c.lo, c.hi) > 0))
            if self.guide_reach < GUIDE_REACH:
                self.guide = None

    # ---- the walk -------------------------------------------------------------------------
    def _enter(self, P: Regions) -> Layer:
        hyp = self.splitter.propagate(P)
        cls = classify(self.frame, P, hyp, self.stats)
        tester = SideTester(self.frame, P, hyp, self.splitter.backend, self.splitter.decider, self.stats)
        # hyperplanes that cannot cut the region (constant on it, or one-signed over its box:
        # classify proves that) cannot cut any cell of it: their side is the region's
        fixed = cls.const | ~(cls.cuts | cls.open)
        return Layer(P, hyp, cls, tester, fixed, np.packbits(P.bits, axis=1), int(self.net.neuron_offsets[P.layer]))

    def _start_cells(self, children: Regions, owner: np.ndarray, carried: Cells) -> Cells:
        n = self.net.hidden_widths[children.layer] if children.layer < self.net.n_hidden else 0
        return carried._replace(owner=owner, signs=np.zeros((len(owner), n), np.int8),
                                x=children.witness[owner].copy(), radius=children.radius[owner].copy())

    def _finish_layer(self, layer: Layer, cells: Cells) -> tuple[Regions, np.ndarray]:
        """The distinct cells as child regions (certified by assemble), and each cell's row."""
        key = np.concatenate([cells.owner[:, None].view(np.uint8), np.packbits(cells.signs > 0, axis=1)], axis=1)
        _, first, back = np.unique(key, axis=0, return_index=True, return_inverse=True)
        kids = ChildCells(cells.owner[first], cells.signs[first], cells.x[first])
        children, _ = assemble(self.frame, layer.P, layer.hyp, layer.cls.const, kids, self.splitter.decider, self.stats)
        if len(children) != len(first):                  # a proven cell is a region: never dropped
            raise RuntimeError("a cell proven non-empty was dropped by its witness certificate")
        self.seen[layer.P.layer].update(pattern_keys(children.bits))
        return children.with_ids(np.arange(len(children))), back.ravel()

    def _walk(self, layer: Layer, cells: Cells, k0: int, rng: Optional[np.random.Generator],
              cap: Optional[int] = None):
        """From neuron k0 of ``layer`` down to the final layer (``rng``: probes) or, breadth first,
        until more than ``cap`` cells (``rng`` None: every non-empty side kept). Returns the final
        cells, or the frontier where the cap was passed."""
        while True:
            for k in range(k0, layer.cls.sign.shape[1]):
                if cap is not None and cells.count > cap:
                    return Frontier(layer, k, cells, False)
                cells = self._step(layer, cells, k, rng)
            children, back = self._finish_layer(layer, cells)
            cells = self._start_cells(children, back, cells)
            if children.layer == self.net.n_hidden:
                return Frontier(None, 0, cells, True) if cap is not None else cells
            layer, k0 = self._enter(children), 0

    def _expand(self, cap: int) -> Frontier:
        root = Tree(self.frame, self.splitter, []).root()
        N = self.guide.size if self.guide is not None else 0
        one = np.zeros(1, np.int64)
        cells = self._start_cells(root, one, Cells(one, None, None, None, one, np.full(1, N, np.int64),
                                                   np.ones(1), one))
        front = self._walk(self._enter(root), cells, 0, None, cap)
        return front._replace(cells=front.cells._replace(stratum=np.arange(front.cells.count)))

    def _step(self, layer: Layer, cells: Cells, k: int, rng: Optional[np.random.Generator]) -> Cells:
        """Add neuron k's hyperplane to every cell: a probe takes one side (``rng``), the frontier
        keeps both."""
        owner = cells.owner
        signs = cells.signs.copy()
        const = layer.fixed[owner, k]
        signs[const, k] = layer.cls.sign[owner[const], k]
        mid = self.guide.split(cells.lo, cells.hi, layer.offset + k) if self.guide is not None else None
        live = np.nonzero(~const)[0]
        if live.size == 0:
            return _with_side(cells._replace(signs=signs), mid, k)
        # cells in the same state (same region, same sides so far) ask the same questions: once
        state = np.concatenate([layer.region_key[owner[live]], signs[live, :k].view(np.uint8)], axis=1)
        _, first, back = np.unique(state, axis=0, return_index=True, return_inverse=True)
        u, back = live[first], back.ravel()
        sd = self._sides(layer, owner[u], signs[u], cells.x[u], cells.radius[u], k)
        near, far = sd.near[back], -sd.near[back]
        near_ok, far_ok = sd.near_ok[back], sd.far_ok[back]
        if not np.all(near_ok | far_ok):
            raise RuntimeError("a cell with neither side of a hyperplane non-empty")
        fixed = cells._replace(signs=signs).take(np.nonzero(const)[0])
        both = near_ok & far_ok
        if rng is None:      # the frontier: every non-empty side, weighted 2^cuts (1 / a plain walk's chance)
            parts = [_with_side(fixed, None if mid is None else mid[const], k)]
            for ok, side, px, pr in ((near_ok, near, sd.near_x[back], sd.near_r[back]),
                                     (far_ok, far, sd.far_x[back], sd.far_r[back])):
                idx = live[ok]
                c = cells._replace(signs=signs).take(idx)
                c.signs[:, k] = side[ok]
                c = c._replace(x=px[ok], radius=pr[ok], weight=c.weight * np.where(both, 2.0, 1.0)[ok])
                parts.append(_with_side(c, None if mid is None else mid[idx], k))
            return Cells.concat(parts)
        p_far = np.full(live.size, 0.5)
        if self.guide is not None:
            lo, m, hi = cells.lo[live], mid[live], cells.hi[live]
            zero, one = self.guide.regions_in(lo, m), self.guide.regions_in(m, hi)
            far_one = far > 0
            p_far = self.guide.probability(np.where(far_one, one, zero), np.where(far_one, zero, one))
        go_far = ~near_ok | (both & (rng.random(live.size) < p_far))
        c = cells._replace(signs=signs).take(live)
        c.signs[:, k] = np.where(go_far, far, near)
        c.weight[:] = c.weight / np.where(both, np.where(go_far, p_far, 1.0 - p_far), 1.0)
        c = c._replace(x=np.where(go_far[:, None], sd.far_x[back], sd.near_x[back]),
                       radius=np.where(go_far, sd.far_r[back], sd.near_r[back]))
        return Cells.concat([_with_side(fixed, None if mid is None else mid[const], k),
                             _with_side(c, None if mid is None else mid[live], k)])

    def _sides(self, layer: Layer, pidx, signs, x, radius, k: int) -> Sides:
        """Which sides of hyperplane k hold interior points of these cells, each with a certified
        point: the cell's own point proves its side unless it lies (nearly) on the plane."""
        frame, geo, hyp = self.frame, self.frame.geometry, layer.hyp
        val = np.einsum("br,br->b", hyp.G[pidx, k], geo.image(x)) + hyp.g[pidx, k]
        near = np.where(val > 0, 1, -1).astype(np.int8)
        ks = np.full(pidx.size, k)
        near_rows = layer.tester.cell_rows(pidx, signs, ks, near)
        near_ok, near_r = floatcert.certify_points(near_rows, x, geo)
        near_r = np.minimum(near_r, floatcert.domain_slack(frame.domain, x)[1])
        near_x = x.copy()
        far_ok, far_x, far_r = self._side(layer, pidx, signs, x, radius, k, -near, val)
        redo = np.nonzero(~near_ok)[0]       # a point on (or too close to) the plane: test its side too
        if redo.size:
            ok2, x2, r2 = self._side(layer, pidx[redo], signs[redo], x[redo], radius[redo], k, near[redo], val[redo],
                                     use_ball=False)
            near_ok[redo], near_r[redo] = ok2, r2
            near_x[redo[ok2]] = x2[ok2]
        return Sides(near, near_ok, near_x, near_r, far_ok, far_x, far_r)

    def _side(self, layer: Layer, pidx, signs, x, radius, k: int, side, val, use_ball: bool = True):
        """Does ``side`` of hyperplane k hold interior points of each cell? (proven (L,), a
        certified point there, its certified radius). The witness ball proposes a point where the
        plane passes through it; an LP proposes the rest; every proposed point is certified, and the
        sides without a certified point go up the Decider's ladder (which proves them empty or
        finds a point, exactly if it must)."""
        frame, geo, hyp, tester = self.frame, self.frame.geometry, layer.hyp, layer.tester
        L = pidx.size
        ks = np.full(L, k)
        norms = np.where(layer.cls.norms[pidx, k] > 0, layer.cls.norms[pidx, k], np.inf)
        dist = np.abs(val) / norms
        pt = x.copy()
        proposed = use_ball & (dist < frame.settings.geo_safety * radius)   # a point to certify
        empty = np.zeros(L, bool)                                          # proven empty already
        if np.any(proposed):   # the centre of the far half-ball
            unit = geo.to_x(hyp.G[pidx[proposed], k]) / norms[proposed, None]
            s = np.sign(val[proposed])[:, None]
            pt[proposed] = x[proposed] - s * unit * (dist[proposed] + radius[proposed])[:, None] / 2
        lp = np.nonzero(~proposed)[0]
        if lp.size:            # the tester's "no" is proven (its ladder); its "yes" is a proposal
            got, px, _ = tester(pidx[lp], signs[lp], ks[lp], side[lp], x[lp])
            pt[lp] = px
            proposed[lp[got]] = True
            empty[lp[~got]] = True
        rows = tester.cell_rows(pidx, signs, ks, side)
        inside, r = floatcert.certify_points(rows, pt, geo)
        dom_ok, room = floatcert.domain_slack(frame.domain, pt)
        ok = proposed & inside & dom_ok
        rad = np.where(ok, np.minimum(r, room), 0.0)
        # the rest: proven empty, or a point found, by the ladder (a zero dual sends it past rung 1)
        rest = np.nonzero(~ok & ~empty)[0]
        if rest.size:
            empty, wx, wr = tester.settle(pidx[rest], signs[rest], ks[rest], side[rest],
                                          np.zeros((rest.size, rows.b.shape[1])),
                                          np.zeros((rest.size, geo.dom_C.shape[0])))
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

    # ---- probes ---------------------------------------------------------------------------
    def probe(self, counts: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``counts[i]`` probes below stratum i: (stratum, weight) of each probe."""
        F = self.frontier
        rep = np.repeat(np.arange(F.cells.count), counts)
        cells = F.cells.take(rep)
        cells = cells._replace(weight=np.ones(len(rep)), signs=cells.signs.copy())
        done = self._walk(F.layer, cells, F.step, rng)
        return done.stratum, done.weight

    def proxy(self) -> np.ndarray:
        """Each stratum's share of the probes: with a guide, its count of distinct sample patterns
        (plus the prior); without one, the chance 2^-cuts that a plain walk from the root would be
        in it (proportional allocation: then the strata never do worse than that walk)."""
        c = self.frontier.cells
        if self.guide is None:
            return 1.0 / c.weight
        return self.guide.regions_in(c.lo, c.hi) + self.guide.prior

    def lower_bound(self) -> int:
        """Certain: the frontier's disjoint cells each hold a final region; so does every distinct
        region reached at a layer."""
        return max(self.frontier.cells.count, max(len(s) for s in self.seen))


def _with_side(cells: Cells, mid: Optional[np.ndarray], k: int) -> Cells:
    """The cells' guide ranges shrink to their side of neuron k (rows with bit 1 follow bit 0)."""
    if mid is None:
        return cells
    up = cells.signs[:, k] > 0
    return cells._replace(lo=np.where(up, mid, cells.lo), hi=np.where(up, cells.hi, mid))


def probe_estimate(net: Network, domain: Optional[Domain] = None, *, probes: int = 1024, seed: int = 0,
                   confidence: float = 0.95, interval: str = "t", settings: Optional[Settings] = None,
                   rel_width: Optional[float] = None, seconds: Optional[float] = None,
                   strata: Optional[int] = None, guide_points: int = GUIDE_POINTS,
                   sampler: Optional[ProbeSampler] = None, on_round=None) -> Estimate:
    """The stratified, guided hyperplane-level Knuth estimator (module docstring): one round of
    ``probes`` probes, or, with ``rel_width`` or ``seconds``, rounds that double (from the
    frontier's two probes per stratum) up to ``probes`` probes each, while the interval's relative
    half-width is above ``rel_width`` and the time is under ``seconds``. ``sampler``: a frontier
    built before (for the same network, domain and settings) to reuse. ``on_round(rounds, probes,
    estimate, relative half-width)`` after the frontier (rounds 0) and each round. ``strata``: the frontier's
    cap (default ``STRATA``, at most an eighth of ``probes``, at most ``TIMED_STRATA`` with a
    ``seconds`` budget; a cap given is kept, and the first round then has two probes per stratum)."""
    t0 = time.perf_counter()
    domain = _check_common(net, domain, confidence)
    if interval != "t":
        raise InputError("--method probes reports a Student-t interval (stratified: a sum of strata's means); "
                         f"--interval {interval} applies to --method tree")
    if probes < 1 or (strata is not None and strata < 1):
        raise InputError("--probes and --strata must be at least 1")
    if guide_points < 0:
        raise InputError("--guide-points must be at least 0")
    settings = settings or Settings.build()
    if sampler is None:
        cap = min(STRATA, max(1, probes // 8)) if strata is None else strata
        if strata is None and seconds is not None:
            cap = min(cap, TIMED_STRATA)
        sampler = ProbeSampler(net, domain, settings, strata=cap,
                               guide_points=guide_points, guide_seed=seed)
    F = sampler.frontier
    S = F.cells.count
    if on_round is not None:
        on_round(0, 0, float(S), 0.0 if F.complete else math.inf)
    details = {"strata": S, "frontier_layer": None if F.complete else int(F.layer.P.layer) + 1,
               "frontier_neuron": None if F.complete else int(F.step), "guide_points": sampler.guide.size
               if sampler.guide is not None else 0, "guide_reach": sampler.guide_reach, "seed": seed, "method": "probes",
               "device": runtime.describe_device(sampler.splitter.device)}
    if F.complete:                                    # the walk ended below the cap: exact
        n = S
        details.update(probes=0, rounds=0, relative_half_width=0.0, standard_error=0.0, exact=True,
                       distinct_per_layer=[len(s) for s in sampler.seen], lps=sampler.stats.lps)
        return Estimate("probes", float(n), float(n), float(n), confidence, n, time.perf_counter() - t0, details)
    rng = np.random.default_rng(seed)
    tally = StrataTally(S)
    adaptive = rel_width is not None or seconds is not None
    size = max(2 * S, min(probes, 64) if adaptive else probes)
    rounds = 0
    while True:
        counts = tally.allocate(size, sampler.proxy(), first=rounds == 0)
        tally.add(*sampler.probe(counts, rng))
        rounds += 1
        est, lo, hi, se = tally.interval(confidence)
        half = 0.5 * (hi - lo) / max(est, 1e-300)
        if on_round is not None:
            on_round(rounds, int(tally.n.sum()), est, half)
        spent = time.perf_counter() - t0
        if not adaptive or (rel_width is not None and half <= rel_width):
            break
        if seconds is not None and (spent >= seconds or spent / tally.n.sum() * min(probes, 2 * size)
                                    > 1.5 * (seconds - spent)):
            break                                     # the next round would overrun the budget by half
        size = min(probes, 2 * size)
    lower = sampler.lower_bound()
    details.update(probes=int(tally.n.sum()), rounds=rounds, relative_half_width=half, standard_error=se,
                   exact=False, distinct_per_layer=[len(s) for s in sampler.seen], lps=sampler.stats.lps)
    # the certain lower bound raises both ends: an interval never reaches below what was found
    return Estimate("probes", est, max(lo, lower), max(hi, lower), confidence, lower, time.perf_counter() - t0,
                    details)
