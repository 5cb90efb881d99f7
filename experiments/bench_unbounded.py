"""Unbounded domains: a network on R^d against the same network on a box that holds a point of
every one of its regions, in one process, kernels compiled first (issue: exact decisions at speed).

    python experiments/bench_unbounded.py [--cases NAME ...] [--tag T]

For each case the box grows (x10 from 100) until its count equals the R^d count, so that both
runs enumerate the same regions; the box runs both splitters (the vertex path, the default on a
box at d <= 6, and LPs only, the path R^d uses). Results:
``experiments/results/unbounded-cpu-<date>[-tag].{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

import numpy as np  # noqa: E402

import lrenum  # noqa: E402
from common import RESULTS, device_name, write_results  # noqa: E402
from nets import random_net  # noqa: E402


def one_layer(d: int, n: int, seed: int):
    rng = np.random.default_rng(seed)
    return lrenum.make_network([rng.normal(size=(n, d)), np.ones((1, n))], [rng.normal(size=n), np.zeros(1)])


def deep(d: int, widths: list, seed: int):
    return lrenum.make_network(*random_net(np.random.default_rng(seed), d, widths))


CASES = {
    "h20-d5": ("20 hyperplanes in general position, R^5", lambda: one_layer(5, 20, 0)),
    "d2-24x24": ("2-input 24-24", lambda: deep(2, [24, 24], 1)),
    "d3-12x12": ("3-input 12-12", lambda: deep(3, [12, 12], 2)),
    "d4-10x10": ("4-input 10-10", lambda: deep(4, [10, 10], 3)),
    "d4-14x14": ("4-input 14-14", lambda: deep(4, [14, 14], 4)),
    "d5-10x8x6": ("5-input 10-8-6", lambda: deep(5, [10, 8, 6], 5)),
}


def timed(net, dom, **kw):
    t = time.perf_counter()
    res = lrenum.enumerate_regions(net, dom, lrenum.Settings(**kw))
    return res, time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--tag", default="")
    args = ap.parse_args(argv)
    rows = []
    for key in args.cases:
        name, build = CASES[key]
        net = build()
        d = net.input_dim
        small = lrenum.box_domain(-1, 1, d)
        timed(net, small, vertex_path=False)            # compile the LP kernels first
        timed(net, small)
        rd, t_rd = timed(net, lrenum.unbounded_domain(d))
        half = 100.0
        while True:
            box = lrenum.box_domain(-half, half, d)
            bx, t_box = timed(net, box)
            if bx.regions == rd.regions or half >= 1e8:
                break
            half *= 10
        bl, t_box_lp = timed(net, box, vertex_path=False)
        s = rd.stats
        row = {"case": name, "d": d, "regions_rd": rd.regions, "regions_box": bx.regions, "box_half_width": half,
               "rd_seconds": round(t_rd, 2), "box_seconds": round(t_box, 2), "box_lp_seconds": round(t_box_lp, 2),
               "ratio_vs_box": round(t_rd / t_box, 2), "ratio_vs_box_lp": round(t_rd / t_box_lp, 2),
               "exact_certificates": s.exact_certificates, "exact_simplex": s.exact_simplex,
               "clarabel_redecisions": s.float_redecisions, "lps": s.lps, "device": device_name()}
        print(json.dumps(row), flush=True)
        rows.append(row)
    stem = os.path.join(RESULTS, f"unbounded-cpu-{dt.date.today().isoformat()}" + (f"-{args.tag}" if args.tag else ""))
    write_results(stem, rows, "Networks on R^d against the same network on a box",
                  f"Device: {rows[0]['device']}. One process, kernels compiled first; the box is the smallest "
                  f"[-h, h]^d (h = 100, 1000, ...) with the R^d count.",
                  [("case", lambda r: r["case"]), ("regions", lambda r: f"{r['regions_rd']:,}"),
                   ("R^d s", lambda r: r["rd_seconds"]), ("box s (default)", lambda r: r["box_seconds"]),
                   ("box s (LPs)", lambda r: r["box_lp_seconds"]), ("R^d / box", lambda r: f"{r['ratio_vs_box']}x"),
                   ("R^d / box LPs", lambda r: f"{r['ratio_vs_box_lp']}x"), ("h", lambda r: f"{r['box_half_width']:g}"),
                   ("exact certificates", lambda r: f"{r['exact_certificates']:,}"),
                   ("exact simplex", lambda r: r["exact_simplex"])])
    return 0


if __name__ == "__main__":
    sys.exit(main())
