"""Time of ``--geometry`` (facets, adjacency, exact vertices and volumes) per region, with facets
read off the exact vertices (the default on a box, d <= 6) against an LP per row, in one run.

    python experiments/bench_geometry.py [--nets d3 d4] [--tag T]

Both ways must give the same facets and edges (checked). Results:
``experiments/results/geometry-<device>-<date>[-tag].{json,md}``.
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
from lrenum.geometry import geometry_of  # noqa: E402
from nets import random_net  # noqa: E402

NETS = {"d2": (2, [16, 16], 0), "d3": (3, [8, 8], 1), "d4": (4, [8, 6], 2), "d5": (5, [8, 4], 3)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", nargs="+", default=["d2", "d3", "d4"], choices=sorted(NETS))
    ap.add_argument("--tag", default="")
    args = ap.parse_args(argv)
    rows = []
    for name in args.nets:
        d, widths, seed = NETS[name]
        net = lrenum.make_network(*random_net(np.random.default_rng(seed), d, widths))
        dom = lrenum.box_domain(-1, 1, d)
        res = lrenum.enumerate_regions(net, dom, collect=True)
        times, geos = {}, {}
        for how in ("auto", "lp"):
            t = time.perf_counter()
            geos[how] = geometry_of(net, dom, res.patterns, facets_by=how)
            times[how] = time.perf_counter() - t
        same = all(np.array_equal(geos["auto"][k], geos["lp"][k]) for k in ("offsets", "neuron", "edges"))
        n = len(res.patterns)
        row = {"network": f"{d}-input {'-'.join(map(str, widths))} (seed {seed})", "regions": n,
               "vertex_facets_seconds": round(times["auto"], 2), "lp_facets_seconds": round(times["lp"], 2),
               "speedup": round(times["lp"] / times["auto"], 2), "same_facets_and_edges": bool(same),
               "facets": int(len(geos["auto"]["b"])), "edges": int(len(geos["auto"]["edges"])),
               "vertices": int(len(geos["auto"].get("vertices", []))),
               "unresolved": int(geos["auto"]["unresolved_neighbours"]), "device": device_name()}
        print(json.dumps(row), flush=True)
        rows.append(row)
    stem = os.path.join(RESULTS, f"geometry-cpu-{dt.date.today().isoformat()}" + (f"-{args.tag}" if args.tag else ""))
    write_results(stem, rows, "--geometry: facets from exact vertices against an LP per row",
                  f"Device: {rows[0]['device']}. Whole `geometry_of` over every region (facets, adjacency, exact "
                  f"vertices and volumes), one run each way in one process.",
                  [("network", lambda r: r["network"]), ("regions", lambda r: f"{r['regions']:,}"),
                   ("from vertices s", lambda r: r["vertex_facets_seconds"]), ("LP per row s", lambda r: r["lp_facets_seconds"]),
                   ("speed-up", lambda r: f"{r['speedup']}x"), ("same facets, edges", lambda r: r["same_facets_and_edges"]),
                   ("facets", lambda r: f"{r['facets']:,}"), ("edges", lambda r: f"{r['edges']:,}"),
                   ("vertices", lambda r: f"{r['vertices']:,}"), ("unresolved", lambda r: r["unresolved"])])
    return 0


if __name__ == "__main__":
    sys.exit(main())
