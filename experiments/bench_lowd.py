"""Low input dimension: lrenum's vertex path against its LP path and the edge-subdivision peer, in one run.

    python experiments/bench_lowd.py [--quick] [--peer DIR] [--lp-limit S] [--peer-limit S] [--out DIR]

Every number is a whole process on this machine (Python start-up, imports and compilation
included; lrenum's persistent compilation cache is warmed once per network first, as a user's
second run would find it): ``lrenum enumerate NET --json -q`` with ``--splitter vertices`` and
``--splitter lp``, and the peer (arturs-berzins/relu_edge_subdivision through
``../shared/peers/berzins_count.py``; needs torch) when ``--peer DIR`` names a checkout of it.
The peer also reports its algorithm's own seconds. Peak resident memory comes from
``/usr/bin/time`` where it exists. Counts must agree: a disagreement is printed and recorded.

The networks are random (He-scaled Gaussian, seeded by name, as in bench.py), chosen to have
10^4 to 10^6 regions on [-1, 1]^d: family (b) grown to >= 10^5 regions at d = 2..4, the 4-input
24-24-24 network, and d = 5 to 8. Results go to ``results/lowd-<device>-<date>.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import lrenum  # noqa: E402
from bench import build  # noqa: E402
from bench_enumerate import cpu_name  # noqa: E402

CASES = [  # (name, d, hidden widths): regions on [-1, 1]^d (this generator) in the comment
    ("b-d2-64x64x64", 2, [64, 64, 64]),          # 9,064 (quick)
    ("b-d3-32x32x32", 3, [32, 32, 32]),          # 35,466 (quick)
    ("b-d5-12x6x6", 5, [12, 6, 6]),              # 11,610 (quick)
    ("b-d4-16x16x16x16", 4, [16, 16, 16, 16]),   # family (b) of bench.py
    ("b-d2-256x256", 2, [256, 256]),             # 75,601: wide layers at d = 2
    ("b-d3-48x48x48", 3, [48, 48, 48]),          # 192,392
    ("b-d4-24x24x24", 4, [24, 24, 24]),          # 123,885: the 4-input 24-24-24 shape
    ("b-d5-32x32", 5, [32, 32]),                 # 1,116,358
    ("b-d6-16x16", 6, [16, 16]),
    ("c-d8-16x16-box0.2", 8, [16, 16], 0.2),     # 76,758: above the vertex path's default d (LP path)
]
QUICK = ["b-d2-64x64x64", "b-d3-32x32x32", "b-d5-12x6x6"]
TIME = shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time") else None)


def timed(cmd: list, limit: float, env=None, cwd=None) -> dict:
    """Run ``cmd``; wall seconds, its last stdout line as JSON, peak RSS (MB) where measurable."""
    full = ([TIME, "-f", "MAXRSS_KB=%M"] if TIME else []) + cmd
    t0 = time.perf_counter()
    # a session of its own, killed whole on timeout: killing only the `time` wrapper leaves the
    # measured process running, and it then competes with every later measurement
    proc = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True, cwd=cwd)
    try:
        stdout, stderr = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"timeout": limit}
    out = subprocess.CompletedProcess(full, proc.returncode, stdout, stderr)
    wall = time.perf_counter() - t0
    rss = next((int(l.split("=")[1]) / 1024 for l in out.stderr.splitlines() if l.startswith("MAXRSS_KB=")), None)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1][:200], "wall_s": wall}
    lines = [l for l in out.stdout.strip().splitlines() if l.startswith("{")]
    return {"wall_s": round(wall, 3), "peak_mb": rss and round(rss, 1), **(json.loads(lines[-1]) if lines else {})}


def lrenum_run(path: str, splitter: str, limit: float, cache: str, device: str = "cpu",
               python: str = sys.executable) -> dict:
    env = dict(os.environ, LRENUM_CACHE_DIR=cache)
    # run outside the source tree: `python -m lrenum` from the checkout would import the checkout's
    # lrenum whatever `python` has installed (the baseline's would be shadowed)
    return timed([python, "-m", "lrenum", "enumerate", path, "--json", "-q", "--device", device,
                  "--splitter", splitter], limit, env, cwd=os.path.dirname(os.path.abspath(path)))


COUNT_CALLS = """
import json, sys
import lrenum
import lrenum.kernels.lp_box as box, lrenum.kernels.lp_dense as dense, lrenum.kernels.propagate as prop
calls = [0]
def counted(module, name):
    original = getattr(module, name)
    def wrapper(*a, **k):
        calls[0] += 1
        return original(*a, **k)
    setattr(module, name, wrapper)
counted(prop, "propagate"); counted(dense, "margin_lp_dense"); counted(box, "margin_lp_box")
net, arrays = lrenum.load_network(sys.argv[1])
dom = lrenum.box_domain(arrays["lo"], arrays["hi"], net.input_dim)
res = lrenum.enumerate_regions(net, dom)
print(json.dumps({"regions": res.regions, "device_calls": calls[0]}))
"""


def count_device_calls(python: str, path: str) -> dict:
    """Kernel calls of a run of another lrenum (one that does not report them itself): its three
    kernels wrapped with a counter in a process of its own. A measurement harness, not a test."""
    out = subprocess.run([python, "-c", COUNT_CALLS, path], capture_output=True, text=True, timeout=3600,
                         cwd=os.path.dirname(os.path.abspath(path)))
    lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
    return json.loads(lines[-1]) if lines else {"error": out.stderr.strip().splitlines()[-1:]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="three small networks only (about a minute)")
    ap.add_argument("--cases", nargs="*", help="names of the cases to run (default: all)")
    ap.add_argument("--peer", help="checkout of arturs-berzins/relu_edge_subdivision (skipped if absent)")
    ap.add_argument("--peer-script", default=os.path.join(ROOT, "..", "shared", "peers", "berzins_count.py"))
    ap.add_argument("--peer-python", default=sys.executable,
                    help="the Python that has torch for the peer (its own virtual environment)")
    ap.add_argument("--no-lp", action="store_true", help="skip the LP-path runs (the vertex path and the peer only)")
    ap.add_argument("--baseline-python",
                    help="a Python with another lrenum installed (an earlier commit): its vertex path runs beside, "
                         "as the 'before' of a change")
    ap.add_argument("--lp-limit", type=float, default=300.0, help="seconds allowed to the LP path per network")
    ap.add_argument("--peer-limit", type=float, default=600.0, help="seconds allowed to the peer per network")
    ap.add_argument("--device", choices=["cpu", "gpu"], default="cpu",
                    help="where lrenum's kernels run (the vertex path is host code either way); the peer runs on "
                         "the same kind of device (torch 'cuda' for gpu)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args()
    names = args.cases or (QUICK if args.quick else [c[0] for c in CASES])
    device = f"cpu / {cpu_name()}" if args.device == "cpu" else f"gpu / {gpu_name()} (host: {cpu_name()})"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = os.path.join(tmp, "cache")
        for case in [c for c in CASES if c[0] in names]:
            name, d, widths = case[:3]
            net, dom = build(case)
            path = os.path.join(tmp, name + ".npz")
            lo, hi = dom.box
            lrenum.save_npz(path, net, lo=np.broadcast_to(np.asarray(lo, float), (d,)).copy(),
                            hi=np.broadcast_to(np.asarray(hi, float), (d,)).copy())
            lrenum_run(path, "lp", 60.0, cache, args.device)          # warms the compilation cache (first run of a shape)
            row = {"network": name, "d": d, "widths": widths}
            v = lrenum_run(path, "vertices", 3600.0, cache, args.device)
            row["vertices"] = v
            if args.baseline_python:
                lrenum_run(path, "vertices", 600.0, cache + "-baseline", args.device, args.baseline_python)   # warm
                row["baseline"] = lrenum_run(path, "vertices", 3600.0, cache + "-baseline", args.device,
                                             args.baseline_python)
                if "device_calls" not in row["baseline"]:
                    row["baseline"]["device_calls"] = count_device_calls(args.baseline_python, path).get("device_calls")
            row["lp"] = {"skipped": True} if args.no_lp else lrenum_run(path, "lp", args.lp_limit, cache, args.device)
            if args.peer and os.path.isdir(args.peer) and os.path.exists(args.peer_script):
                env = dict(os.environ, BERZINS_DIR=args.peer)
                row["peer"] = timed([args.peer_python, args.peer_script, path, "cuda" if args.device == "gpu" else "cpu"],
                                    args.peer_limit, env)
            counts = {k: row[k].get("regions") for k in ("vertices", "lp", "peer", "baseline") if k in row and "regions" in row[k]}
            row["counts_agree"] = len(set(counts.values())) <= 1
            rows.append(row)
            print(json.dumps(row), flush=True)
            write_results(args, device, rows)   # after every case: a run stopped by a time limit keeps its rows


def gpu_name() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True)
        return out.stdout.strip().splitlines()[0]
    except (OSError, IndexError):
        return "unknown GPU"


def write_results(args, device: str, rows: list) -> None:
    stamp = dt.date.today().isoformat()
    os.makedirs(args.out, exist_ok=True)
    base = os.path.join(args.out, f"lowd-{args.device}-{stamp}{'-quick' if args.quick else ''}")
    with open(base + ".json", "w") as f:
        json.dump(dict(device=device, date=stamp, cases=rows), f, indent=1)
    with open(base + ".md", "w") as f:
        f.write(f"# Low input dimension on {device}, {stamp}\n\n")
        f.write("Whole processes (start-up, imports, warm compilation cache); `algorithm s` is lrenum's own `seconds` "
                "(the walk, in the process) beside the peer's own. `experiments/bench_lowd.py`.\n\n")
        f.write("| network | regions | vertex path s | regions/s | algorithm s | algorithm vs peer's | device calls / 1000 "
                "regions | host share | peak MB | before: s (algorithm) | before: device calls / 1000 | LP path s | "
                "vertices vs LP | peer s (algorithm) | peer regions | vertices vs peer | peer peak MB | counts agree |\n")
        f.write("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
        for r in rows:
            v, lp, pr = r["vertices"], r["lp"], r.get("peer", {})
            n = v.get("regions", "?")
            vs = v.get("wall_s")
            lps = lp.get("wall_s") or (f"> {lp['timeout']:.0f}" if "timeout" in lp else lp.get("error", "?"))
            ratio_lp = f"{lp['wall_s'] / vs:.1f}x" if lp.get("wall_s") and vs else (f"> {lp['timeout'] / vs:.1f}x" if "timeout" in lp and vs else "")
            if pr.get("wall_s"):
                ps = f"{pr['wall_s']} ({pr.get('seconds', '?')})"
                ratio_peer = f"{pr['wall_s'] / vs:.2f}x" if vs else ""
            elif "timeout" in pr:
                ps, ratio_peer = f"> {pr['timeout']:.0f}", f"> {pr['timeout'] / vs:.1f}x" if vs else ""
            else:
                ps, ratio_peer = pr.get("error", "not run"), ""
            alg = v.get("seconds")
            alg_vs_peer = f"{alg / pr['seconds']:.2f}x" if alg and pr.get("seconds") else ""
            calls = f"{1000 * v['device_calls'] / n:.2f}" if "device_calls" in v and n not in ("?", 0) else ""
            host = f"{v['host_seconds'] / alg:.0%}" if alg and "host_seconds" in v else ""
            b = r.get("baseline", {})
            before = f"{b['wall_s']} ({b.get('seconds')})" if b.get("wall_s") else ""
            b_calls = f"{1000 * b['device_calls'] / n:.2f}" if b.get("device_calls") and n not in ("?", 0) else ""
            f.write(f"| {r['network']} | {n} | {vs} | {round(n / vs) if vs and n != '?' else ''} | {alg} | "
                    f"{alg_vs_peer} | {calls} | {host} | {v.get('peak_mb')} | {before} | {b_calls} | "
                    f"{lps} | {ratio_lp} | {ps} | {pr.get('regions', '')} | {ratio_peer} | {pr.get('peak_mb', '')} | "
                    f"{r['counts_agree']} |\n")
    print(f"wrote {base}.json and .md")


if __name__ == "__main__":
    main()
