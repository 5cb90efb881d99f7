"""Whole-process cost of ``--geometry`` (certified float64, the default) against plain ``enumerate -o``.

    python experiments/bench_geometry_cli.py [--cases bundled b-d4-24x24x24] [--exact CASE ...] [--tag T]

For each network, one after the other in one run: ``lrenum enumerate NET -o F`` and
``lrenum enumerate NET -o F --geometry`` (and for the ``--exact`` cases also ``--geometry exact``;
before this round that took 905 s on the bundled network), each a fresh process; then ``lrenum verify`` on
the geometry file (volumes tile the box within their bounds, adjacency consistent). Reports wall
seconds, their ratio, file sizes and their ratio, the regions on the fast path, and the largest
relative volume bound. Results: ``experiments/results/geometry-cli-<device>-<date>[-tag].{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

import lrenum  # noqa: E402
from bench import build  # noqa: E402
from bench_lowd import CASES  # noqa: E402
from common import RESULTS, device_name, write_results  # noqa: E402

BUNDLED = os.path.join(ROOT, "examples", "net_5_12_6_6.npz")


def _run(args: list) -> tuple[float, dict]:
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "lrenum", *args, "-q", "--json"], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {out.stderr.strip()[-300:]}")
    return wall, json.loads(out.stdout)


def _network(name: str, folder: str) -> tuple[str, list]:
    if name == "bundled":
        return BUNDLED, []
    case = next(c for c in CASES if c[0] == name)
    net, dom = build(case)
    path = os.path.join(folder, f"{name}.npz")
    lrenum.save_npz(path, net)
    lo, hi = dom.box
    return path, ["--box", str(float(lo[0])), str(float(hi[0]))]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=["bundled", "b-d4-24x24x24"])
    ap.add_argument("--exact", nargs="*", default=["bundled"], metavar="CASE",
                    help="cases also timed with --geometry exact (default: the bundled network)")
    ap.add_argument("--tag", default="")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases:
            net_path, dom_args = _network(name, tmp)
            plain, geo = os.path.join(tmp, "plain.h5"), os.path.join(tmp, "geo.h5")
            t_plain, s_plain = _run(["enumerate", net_path, "-o", plain, "--force", *dom_args])
            t_geo, s_geo = _run(["enumerate", net_path, "-o", geo, "--force", "--geometry", *dom_args])
            t_verify, s_verify = _run(["verify", geo, net_path])
            with lrenum.open(geo) as f:
                rel = float(np.max(f.volume_bounds() / f.volumes()))
            row = {"network": name, "regions": s_plain["regions"], "plain_s": round(t_plain, 2),
                   "geometry_s": round(t_geo, 2), "ratio": round(t_geo / t_plain, 2),
                   "plain_MB": round(os.path.getsize(plain) / 1e6, 2), "geometry_MB": round(os.path.getsize(geo) / 1e6, 2),
                   "size_ratio": round(os.path.getsize(geo) / os.path.getsize(plain), 2),
                   "fast_regions": s_geo["geometry"].get("fast_regions"), "exact_regions": s_geo["geometry"].get("exact_regions"),
                   "max_rel_volume_bound": rel, "verify_s": round(t_verify, 2),
                   "volumes_tile_domain": s_verify.get("volumes_tile_domain"),
                   "adjacency_consistent": s_verify.get("adjacency_consistent"), "device": device_name()}
            if name in args.exact:
                t_ex, _ = _run(["enumerate", net_path, "-o", geo, "--force", "--geometry", "exact", *dom_args])
                row.update(exact_s=round(t_ex, 2), exact_ratio=round(t_ex / t_plain, 1))
            print(json.dumps(row), flush=True)
            rows.append(row)
    stem = os.path.join(RESULTS, f"geometry-cli-cpu-{dt.date.today().isoformat()}" + (f"-{args.tag}" if args.tag else ""))
    cols = [("network", lambda r: r["network"]), ("regions", lambda r: f"{r['regions']:,}"),
            ("enumerate -o s", lambda r: r["plain_s"]), ("--geometry s", lambda r: r["geometry_s"]),
            ("ratio", lambda r: f"{r['ratio']}x"), ("file MB", lambda r: f"{r['plain_MB']} -> {r['geometry_MB']}"),
            ("size ratio", lambda r: f"{r['size_ratio']}x"),
            ("fast / exact regions", lambda r: f"{r['fast_regions']:,} / {r['exact_regions']:,}"),
            ("max volume bound (rel.)", lambda r: f"{r['max_rel_volume_bound']:.1e}"),
            ("verify s", lambda r: r["verify_s"])]
    if args.exact:
        cols.append(("--geometry exact s", lambda r: r.get("exact_s", "")))
    write_results(stem, rows, "--geometry (certified float64) against enumerate -o, whole processes",
                  f"Device: {rows[0]['device']}. Each command a fresh process, one after the other in one run; "
                  "verify checked that the volumes tile the box within their bounds and that the adjacency is "
                  "consistent.", cols)
    return 0


if __name__ == "__main__":
    sys.exit(main())
