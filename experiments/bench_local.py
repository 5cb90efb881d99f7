"""Local complexity at scale (issue 33): one batched run against one process per point, the rate,
memory for many points, and how wide a network 500 points finish on in 10 minutes.

    python experiments/bench_local.py [--parts processes rate memory widest] [--out DIR]

* processes: the boxes of half-width --radius around the first --per-process MNIST test digits,
  each counted by its own ``lrenum enumerate --lo --hi`` process (what a user did before), then
  the same points, and all --points of them, by one ``lrenum local`` process. Whole processes,
  wall clock, in one run; the counts must agree point by point.
* rate: ``lrenum.local_regions`` in process at --rate-radius (mean count per box 10^2-10^3) on
  --rate-points digits, with float64 and with float32 LP proposals (both certified alike).
* memory: peak RSS of one ``lrenum local`` process over --memory-points boxes (tiny radius).
* widest: 500 points at --radius on each of --widest networks, 600 s each at most.

Results: results/local-<device>-<date>.{json,md}. Digits: the MNIST split of train_digits.py.
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

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import lrenum  # noqa: E402
from bench_enumerate import cpu_name  # noqa: E402
from lrenum.counting.local import local_regions  # noqa: E402
from train_digits import load_data  # noqa: E402

MODELS = os.path.join(HERE, "models")
LRENUM = [sys.executable, "-m", "lrenum"]


def test_digits(n: int) -> np.ndarray:
    """The first n MNIST test digits (784 pixels in [0, 1]); more than 1,000 repeat with a small jitter."""
    X = load_data("mnist")[1]
    reps = -(-n // len(X))
    rng = np.random.default_rng(0)
    out = np.concatenate([X] + [np.clip(X + rng.uniform(-0.01, 0.01, X.shape), 0, 1) for _ in range(reps - 1)])
    return out[:n]


def run_process(cmd: list[str], timeout: float | None = None) -> tuple[float, dict | None]:
    t = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return time.perf_counter() - t, None
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {p.stderr.strip()[-400:]}")
    return wall, json.loads(p.stdout)


def part_processes(args, tmp: str) -> dict:
    net_path = os.path.join(MODELS, args.net + ".npz")
    pts = test_digits(args.points)
    np.save(os.path.join(tmp, "all.npy"), pts)
    np.save(os.path.join(tmp, "few.npy"), pts[:args.per_process])
    per_process, counts = [], []
    for i in range(args.per_process):
        lo, hi = np.maximum(pts[i] - args.radius, 0.0), np.minimum(pts[i] + args.radius, 1.0)
        np.save(os.path.join(tmp, "lo.npy"), lo)
        np.save(os.path.join(tmp, "hi.npy"), hi)
        wall, out = run_process(LRENUM + ["enumerate", net_path, "--lo", os.path.join(tmp, "lo.npy"),
                                          "--hi", os.path.join(tmp, "hi.npy"), "--json", "-q"])
        per_process.append(wall)
        counts.append(out["regions"])
        print(f"  process per point {i}: {out['regions']} regions, {wall:.1f} s", flush=True)
    local = LRENUM + ["local", net_path, "--radius", str(args.radius), "--clip", "--json", "-q"]
    few_wall, few = run_process(local + [os.path.join(tmp, "few.npy")])
    assert few["counts"] == counts, "the batched counts differ from the per-process ones"
    all_wall, every = run_process(local + [os.path.join(tmp, "all.npy")])
    assert every["counts"][:args.per_process] == counts
    per_point = float(np.mean(per_process))
    return {"network": args.net, "radius": args.radius, "per_process_points": args.per_process,
            "per_process_seconds": round(float(np.sum(per_process)), 2), "per_process_mean": round(per_point, 3),
            "batched_same_points_seconds": round(few_wall, 2),
            "speedup_same_points": round(float(np.sum(per_process)) / few_wall, 1),
            "points": args.points, "batched_all_seconds": round(all_wall, 2),
            "batched_per_point": round(all_wall / args.points, 4),
            "speedup_per_point_all": round(per_point / (all_wall / args.points), 1),
            "regions_all": int(np.sum(every["counts"])), "mean_count_all": round(float(np.mean(every["counts"])), 2),
            "lps_all": every["lps"], "lp_calls_all": every["lp_calls"], "lane_fill_all": every["lane_fill"]}


def part_rate(args) -> list[dict]:
    net, _ = lrenum.load_network(os.path.join(MODELS, args.net + ".npz"))
    pts = test_digits(args.rate_points)
    dom = lrenum.box_domain(0.0, 1.0, net.input_dim)
    rows = []
    for dtype in ("float64", "float32"):
        settings = lrenum.Settings().replace(local_lp_dtype=dtype)
        local_regions(net, pts[:2], args.rate_radius, domain=dom, clip=True, settings=settings)   # compile first
        res = local_regions(net, pts, args.rate_radius, domain=dom, clip=True, settings=settings)
        c = np.asarray(res.counts)
        rows.append({"network": args.net, "radius": args.rate_radius, "points": len(pts), "lp_dtype": dtype,
                     "regions": int(c.sum()), "mean_count": round(float(c.mean()), 1), "max_count": int(c.max()),
                     "seconds": round(res.seconds, 2), "regions_per_second": round(c.sum() / res.seconds, 1),
                     "lps": res.stats.lps, "lps_per_second": round(res.stats.lps / res.seconds, 1),
                     "lp_calls": res.lp_calls, "lane_fill": round(res.lane_fill, 3)})
        print(f"  rate {dtype}: {rows[-1]}", flush=True)
    return rows


def part_memory(args, tmp: str) -> dict:
    """Peak RSS of one ``lrenum local`` process, as the process itself reports it (ru_maxrss)."""
    pts = test_digits(args.memory_points)
    path = os.path.join(tmp, "many.npy")
    np.save(path, pts)
    probe = ("import resource, sys; from lrenum.cli import main; code = main(sys.argv[1:]); "
             "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(code)")
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", probe, "local", os.path.join(MODELS, args.net + ".npz"), path, "--radius",
                        str(args.memory_radius), "--clip", "--json", "-q"], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(p.stderr[-400:])
    peak_kib = int(p.stderr.strip().splitlines()[-1])
    out = json.loads(p.stdout)
    return {"network": args.net, "points": len(pts), "radius": args.memory_radius, "seconds": round(wall, 1),
            "regions": int(np.sum(out["counts"])), "peak_rss_mb": round(peak_kib / 1024, 1),
            "note": "the process's own peak RSS (ru_maxrss)"}


def part_widest(args, tmp: str) -> list[dict]:
    pts = test_digits(500)
    path = os.path.join(tmp, "500.npy")
    np.save(path, pts)
    rows = []
    for name in args.widest:
        net_path = os.path.join(MODELS, name + ".npz")
        wall, out = run_process(LRENUM + ["local", net_path, path, "--radius", str(args.radius), "--clip",
                                          "--json", "-q"], timeout=600)
        row = {"network": name, "units": int(sum(lrenum.load_network(net_path)[0].hidden_widths)),
               "points": 500, "radius": args.radius, "seconds": round(wall, 1), "finished": out is not None}
        if out is not None:
            row.update(regions=int(np.sum(out["counts"])), mean_count=round(float(np.mean(out["counts"])), 1),
                       regions_per_second=out["regions_per_second"])
        rows.append(row)
        print(f"  widest: {row}", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", nargs="*", default=["processes", "rate", "memory", "widest"])
    ap.add_argument("--net", default="mnist_64x64")
    ap.add_argument("--radius", type=float, default=0.003)
    ap.add_argument("--points", type=int, default=200)
    ap.add_argument("--per-process", type=int, default=50)
    ap.add_argument("--rate-radius", type=float, default=0.008)
    ap.add_argument("--rate-points", type=int, default=40)
    ap.add_argument("--memory-points", type=int, default=10000)
    ap.add_argument("--memory-radius", type=float, default=0.0003)
    ap.add_argument("--widest", nargs="*", default=["mnist_64x64", "mnist_128x128", "mnist_256x256"])
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args()
    device = f"cpu / {cpu_name()}"
    result = {"device": device, "date": dt.date.today().isoformat()}
    with tempfile.TemporaryDirectory() as tmp:
        for part in args.parts:
            print(f"[bench_local] {part}", flush=True)
            t = time.perf_counter()
            if part == "processes":
                result["processes"] = part_processes(args, tmp)
            elif part == "rate":
                result["rate"] = part_rate(args)
            elif part == "memory":
                result["memory"] = part_memory(args, tmp)
            elif part == "widest":
                result["widest"] = part_widest(args, tmp)
            print(f"[bench_local] {part}: {time.perf_counter() - t:.0f} s: {json.dumps(result.get(part))}", flush=True)
    stem = os.path.join(args.out, f"local-cpu-{result['date']}")
    earlier = stem + ".json"
    if os.path.exists(earlier):       # parts run separately on one day go into one file
        old = json.load(open(earlier))
        old.update(result)
        result = old
    with open(stem + ".json", "w") as fh:
        json.dump(result, fh, indent=1)
    with open(stem + ".md", "w") as fh:
        fh.write(render(result))
    print(render(result))


def render(r: dict) -> str:
    lines = [f"# Local complexity at scale ({r['date']})", "", f"Device: {r['device']}. `experiments/bench_local.py`.", ""]
    if "processes" in r:
        p = r["processes"]
        lines += ["## Batched against one process per point", "",
                  f"{p['network']}, boxes of half-width {p['radius']} around MNIST test digits, clipped to [0, 1].", "",
                  "| run | points | wall s | per point s |", "|---|---:|---:|---:|",
                  f"| one `lrenum enumerate` process per point | {p['per_process_points']} | {p['per_process_seconds']} | {p['per_process_mean']} |",
                  f"| one `lrenum local` process, same points | {p['per_process_points']} | {p['batched_same_points_seconds']} | "
                  f"{p['batched_same_points_seconds'] / p['per_process_points']:.3f} |",
                  f"| one `lrenum local` process | {p['points']} | {p['batched_all_seconds']} | {p['batched_per_point']} |", "",
                  f"Speed-up on the same {p['per_process_points']} points: **{p['speedup_same_points']}x**; per point against "
                  f"the {p['points']}-point batched run: **{p['speedup_per_point_all']}x**. "
                  f"{p['regions_all']} regions over {p['points']} points (mean {p['mean_count_all']}), {p['lps_all']} LPs in "
                  f"{p['lp_calls_all']} pooled calls (lanes {p['lane_fill_all']:.0%} full). Counts equal point by point.", ""]
    if "rate" in r:
        lines += ["## Rate", ""] + _table(r["rate"], [
            ("network", "network"), ("radius", "radius"), ("points", "points"), ("LP dtype", "lp_dtype"),
            ("regions", "regions"), ("mean", "mean_count"), ("max", "max_count"), ("s", "seconds"),
            ("regions/s", "regions_per_second"), ("LPs", "lps"), ("LPs/s", "lps_per_second"), ("lane fill", "lane_fill")])
    if "memory" in r:
        m = r["memory"]
        lines += ["## Memory", "", f"{m['points']} points of {m['network']} at radius {m['radius']}: {m['regions']} regions in "
                  f"{m['seconds']} s, peak RSS {m['peak_rss_mb']} MB ({m['note']}).", ""]
    if "widest" in r:
        lines += ["## 500 points in 10 minutes", ""] + _table(r["widest"], [
            ("network", "network"), ("hidden units", "units"), ("radius", "radius"), ("s", "seconds"),
            ("finished", "finished"), ("regions", "regions"), ("mean", "mean_count"), ("regions/s", "regions_per_second")])
    return "\n".join(lines)


def _table(rows: list[dict], cols: list[tuple[str, str]]) -> list[str]:
    """A markdown table of ``rows`` with columns (title, key); a missing key is an empty cell."""
    out = ["| " + " | ".join(t for t, _ in cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(str(x.get(k, "")) for _, k in cols) + " |" for x in rows]
    return out + [""]


if __name__ == "__main__":
    main()
