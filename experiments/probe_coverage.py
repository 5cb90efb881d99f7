"""Coverage and spread of the probe estimator (`--method probes`) over many seeds, against exact counts.

    python experiments/probe_coverage.py [--seeds 40] [--probes 512] [--nets NAME ...] [--compare]
    python experiments/probe_coverage.py --stopped 0.1 [--seeds 20] [--nets NAME ...]

For each network (exact counts known from enumeration, listed below with where they come from):
`--seeds` estimates of `--probes` probes each, one round, the 95% interval's coverage, the spread of
the estimates (their standard deviation over the exact count) and the median reported half-width.
The frontier (strata) and guide are built once per network and shared by the seeds (neither depends
on the seed: the seeds draw the probes), so coverage is that of the probes given them. `--compare`
adds the same study with the strata and the guide turned off (the estimator before issue 32's
variance reduction), for the spread ratio. Results: results/probe_coverage-<device>-<date>.{json,md}.
`--stopped W`: instead, each seed runs rounds until its interval is within +-W (at most 60 s; the CLI's
`--rel-width W --seconds 60`), and the coverage of those stopped intervals is reported
(results/probe_coverage_stopped-<device>-<date>.{json,md}).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import common  # noqa: E402
from bench import build  # noqa: E402
from bench_enumerate import cpu_name  # noqa: E402
from lrenum.counting.probes import GUIDE_POINTS, STRATA, ProbeSampler, probe_estimate  # noqa: E402
from lrenum.settings import Settings  # noqa: E402

# exact counts on each network's own domain, from enumeration (results files named beside)
NETS = {
    "mnist_8x8": (None, 16716),                                  # probes-cpu-2026-12-02.md
    "b-d3-32x32x32": (("b-d3-32x32x32", 3, [32, 32, 32]), 35466),   # bench_lowd.py
    "mnist_8x14": (None, 85308),                                 # probes-cpu-2026-12-02.md
    "b-d4-24x24x24": (("b-d4-24x24x24", 4, [24, 24, 24]), 123885),  # bench_lowd.py
    "b-d5-32x32": (("b-d5-32x32", 5, [32, 32]), 1116358),        # lowd-cpu-2026-11-22.md
}


def study(net, dom, exact: int, seeds: int, probes: int, strata: int, guide_points: int) -> dict:
    t = time.perf_counter()
    sampler = ProbeSampler(net, dom, Settings.build(), strata=strata,
                           guide_points=guide_points)
    frontier_s = time.perf_counter() - t
    est, cover, half, secs = [], 0, [], []
    for seed in range(seeds):
        e = probe_estimate(net, dom, probes=probes, seed=seed, sampler=sampler)
        est.append(e.estimate)
        cover += e.ci_low <= exact <= e.ci_high
        half.append(e.details["relative_half_width"])
        secs.append(e.seconds)
    est = np.array(est)
    return {"strata": int(sampler.frontier.cells.count),
            "guide_points": sampler.guide.size if sampler.guide is not None else 0,
            "coverage": cover / seeds, "mean_over_exact": float(est.mean() / exact),
            "spread": float(est.std(ddof=1) / exact), "median_half_width": float(np.median(half)),
            "seconds_per_estimate": float(np.mean(secs)), "frontier_seconds": round(frontier_s, 2)}


def stopped(net, dom, exact: int, seeds: int, width: float) -> dict:
    sampler = ProbeSampler(net, dom, Settings.build(), strata=STRATA, guide_points=GUIDE_POINTS)
    cover, probes, secs, half = 0, [], [], []
    for seed in range(seeds):
        e = probe_estimate(net, dom, probes=16384, seed=seed, rel_width=width, seconds=60.0, sampler=sampler)
        cover += e.ci_low <= exact <= e.ci_high
        probes.append(e.details["probes"])
        secs.append(e.seconds)
        half.append(e.details["relative_half_width"])
    return {"strata": int(sampler.frontier.cells.count), "coverage": cover / seeds,
            "median_probes": float(np.median(probes)), "median_seconds": float(np.median(secs)),
            "reached": float(np.mean(np.array(half) <= width))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", nargs="*", default=list(NETS))
    ap.add_argument("--seeds", type=int, default=40)
    ap.add_argument("--probes", type=int, default=512)
    ap.add_argument("--compare", action="store_true", help="also without strata and guide")
    ap.add_argument("--stopped", type=float, default=None, metavar="W", help="coverage of runs stopped at +-W")
    ap.add_argument("--plain-from", metavar="JSON", help="with --compare: take the plain rows from an earlier run of "
                    "the same seeds and probes (the plain estimator's code did not change) instead of rerunning them")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args()
    device = f"cpu / {cpu_name()}"
    rows = []
    for name in args.nets:
        case, exact = NETS[name]
        net, dom = build(case) if case else common.load_model(name)
        if args.stopped is not None:
            rows.append({"network": name, "exact": exact, "seeds": args.seeds, "width": args.stopped,
                         **stopped(net, dom, exact, args.seeds, args.stopped)})
            print(json.dumps(rows[-1]), flush=True)
            write_stopped(args.out, device, rows)
            continue
        row = {"network": name, "exact": exact, "seeds": args.seeds, "probes": args.probes,
               "new": study(net, dom, exact, args.seeds, args.probes, min(STRATA, args.probes // 8), GUIDE_POINTS)}
        if args.compare:
            earlier = {}
            if args.plain_from:
                earlier = {r["network"]: r for r in json.load(open(args.plain_from))["rows"]
                           if r["seeds"] == args.seeds and r["probes"] == args.probes and "plain" in r}
            row["plain"] = (earlier[name]["plain"] if name in earlier
                            else study(net, dom, exact, args.seeds, args.probes, 1, 0))
        rows.append(row)
        print(json.dumps(row), flush=True)
        write(args.out, device, rows, args)


def _results(out: str, stem: str, device: str, rows: list):
    """Write the rows to ``<stem>-cpu-<date>.json``; the open ``.md`` beside it and the date."""
    stamp = dt.date.today().isoformat()
    base = os.path.join(out, f"{stem}-cpu-{stamp}")
    with open(base + ".json", "w") as f:
        json.dump({"device": device, "rows": rows}, f, indent=1)
    return open(base + ".md", "w"), stamp


def write(out: str, device: str, rows: list, args) -> None:
    f, stamp = _results(out, "probe_coverage", device, rows)
    with f:
        f.write(f"# Probe estimator: coverage and spread over seeds ({device}, {stamp})\n\n"
                f"`experiments/probe_coverage.py --seeds {args.seeds} --probes {args.probes}"
                f"{' --compare' if args.compare else ''}`: one round of {args.probes} probes per estimate, "
                f"{args.seeds} seeds per network, nominal 95% intervals. `spread`: standard deviation of "
                "the estimates over the exact count; `half-width`: the median reported half-width over the "
                "estimate. `new`: strata and guide (defaults; `guide points` 0: the guide reached too few strata "
                "and was dropped); `plain`: one stratum, no guide, each side 1/2 (the estimator before).\n\n")
        f.write("| network | exact | strata | guide points | coverage | mean / exact | spread | half-width | "
                "s per estimate | plain: coverage | plain: spread | spread ratio |\n"
                "|---|---|---|---|---|---|---|---|---|---|---|---|\n")
        for r in rows:
            n, p = r["new"], r.get("plain")
            extra = (f"{p['coverage']:.2f} | {p['spread']:.3f} | {p['spread'] / max(n['spread'], 1e-12):.1f}x"
                     if p else " |  | ")
            f.write(f"| {r['network']} | {r['exact']:,} | {n['strata']} | {n['guide_points']} | {n['coverage']:.2f} | "
                    f"{n['mean_over_exact']:.3f} | {n['spread']:.3f} | {n['median_half_width']:.3f} | "
                    f"{n['seconds_per_estimate']:.2f} | {extra} |\n")


def write_stopped(out: str, device: str, rows: list) -> None:
    f, stamp = _results(out, "probe_coverage_stopped", device, rows)
    with f:
        f.write(f"# Probe estimator: coverage of runs stopped at a width ({device}, {stamp})\n\n"
                f"`experiments/probe_coverage.py --stopped W`: each seed adds rounds until its 95% interval is within "
                "+-W of the estimate (or 60 s), as `lrenum estimate --method probes --rel-width W --seconds 60` does; "
                "`coverage`: the fraction of seeds whose stopped interval holds the exact count; `reached`: the "
                "fraction that reached the width within the time.\n\n"
                "| network | exact | W | seeds | strata | coverage | reached | median probes | median s |\n"
                "|---|---|---|---|---|---|---|---|---|\n")
        for r in rows:
            f.write(f"| {r['network']} | {r['exact']:,} | {r['width']} | {r['seeds']} | {r['strata']} | "
                    f"{r['coverage']:.2f} | {r['reached']:.2f} | {r['median_probes']:.0f} | {r['median_seconds']:.1f} |\n")


if __name__ == "__main__":
    main()
