"""The benchmark suite of the GPU issue: four network families, per-case counters, roofline.

    python experiments/bench.py [--quick] [--device cpu|gpu] [--reference-budget S] [--out DIR]

Families (generated here, deterministic, no downloads):
  (a) one-layer arrangements in general position, d = 2..8, n up to 64;
  (b) random deep networks, d = 2..4, 3-4 hidden layers of 16-32;
  (c) random networks of middle input dimension, d = 8..16, two hidden layers of 16-24;
  (d) networks trained on the digits (64 inputs, narrow layers) from experiments/models.
Per case: regions, seconds (second run), regions/s, LPs, LPs avoided, float64
re-decisions, exact decisions, jit compilations and compile seconds (first run, kept apart),
peak device memory (GPU) or peak host RSS (CPU), and the ratio against the in-suite
reference enumerator where it finishes within the budget (run in a subprocess).
The roofline section measures the device's copy bandwidth and matrix-product rate once and
the LP kernel's per-iteration cost at the shapes the enumerator uses.
Writes results/bench-<device>-<date>.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import common  # noqa: E402

import lrenum  # noqa: E402
import lrenum.runtime  # noqa: E402

FAMILIES = {
    "a": [("a-d2-n64", 2, [64]), ("a-d3-n32", 3, [32]), ("a-d4-n24", 4, [24]), ("a-d6-n16", 6, [16]),
          ("a-d8-n14", 8, [14])],
    "b": [("b-d2-16x16x16", 2, [16, 16, 16]), ("b-d2-32x32x32", 2, [32, 32, 32]), ("b-d3-16x16x16", 3, [16, 16, 16]),
          ("b-d4-16x16x16x16", 4, [16, 16, 16, 16])],
    # tree estimates on [-1, 1]^d: c-d8 about 7.7e5 regions, c-d12 about 1.2e7 (GPU scale); the
    # "-box0.2" variants enumerate the same networks on [-0.2, 0.2]^d, which a CPU can finish
    "c": [("c-d8-16x16-box0.2", 8, [16, 16], 0.2), ("c-d12-16x16-box0.2", 12, [16, 16], 0.2),
          ("c-d16-16x16-box0.1", 16, [16, 16], 0.1),
          ("c-d8-16x16", 8, [16, 16]), ("c-d12-16x16", 12, [16, 16]), ("c-d16-16x16", 16, [16, 16])],
    "d": [("d-full64_4x4", "full64_4x4", None), ("d-full64_8", "full64_8", None), ("d-full64_6x4", "full64_6x4", None)],
}
QUICK = ["a-d2-n64", "a-d4-n24", "b-d2-16x16x16", "c-d12-16x16-box0.2", "d-full64_4x4"]
CPU_SKIP = ["c-d8-16x16", "c-d12-16x16", "c-d16-16x16"]   # hours on a 2-core CPU: GPU only


def build(case):
    name, d, widths = case[:3]
    radius = case[3] if len(case) > 3 else 1.0
    if name.startswith("d-"):
        return common.load_model(d)
    # general position needs generic weights; the scale keeps deep layers' pre-activations O(1)
    rng = np.random.default_rng(sum(map(ord, name)))   # deterministic per case name
    dims = [d] + widths + [1]
    Ws = [rng.normal(size=(dims[i + 1], dims[i])) * np.sqrt(2.0 / dims[i]) for i in range(len(dims) - 1)]
    bs = [rng.normal(size=dims[i + 1]) * 0.5 for i in range(len(dims) - 1)]
    return lrenum.make_network(Ws, bs), lrenum.box_domain(-radius, radius, d)


class CompileCounter:
    """Counts XLA compilations and their time through jax.monitoring events."""

    def __init__(self):
        from jax import monitoring

        self.count, self.seconds = 0, 0.0
        monitoring.register_event_duration_secs_listener(self._on)

    def _on(self, name, secs, **_):
        if name.endswith("backend_compile_duration"):
            self.count += 1
        if "/jax/core/compile/" in name:
            self.seconds += secs

    def snapshot(self):
        return self.count, self.seconds


def peak_memory(device) -> tuple[int, str]:
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and "peak_bytes_in_use" in stats:
        return int(stats["peak_bytes_in_use"]), "device"
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024, "host RSS"


def reference_seconds(net, domain, budget: float):
    """The test suite's reference enumerator in a subprocess; None if over budget."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "net.npz")
        lrenum.save_npz(path, net)
        lo, hi = domain.box
        code = (f"import sys, time, numpy as np; sys.path.insert(0, {os.path.join(ROOT, 'tests')!r}); "
                f"import lrenum; from reference import reference_patterns; "
                f"net, _ = lrenum.load_npz({path!r}); t = time.perf_counter(); "
                f"p = reference_patterns(net.weights, net.biases, np.array({lo.tolist()}), np.array({hi.tolist()})); "
                f"print(len(p), time.perf_counter() - t)")
        try:
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=budget)
        except subprocess.TimeoutExpired:
            return None, None
        if out.returncode != 0:
            return None, None
        n, sec = out.stdout.split()
        return int(n), float(sec)


def run_case(case, device, counter, budget, splitter: str = "auto", lp_dtype=np.float64):
    net, dom = build(case)
    # "auto": the vertex path where it applies (boxes, d <= 6); "lp"/"vertices" force a path
    settings = lrenum.Settings(device=device, lp_dtype=np.dtype(lp_dtype).name,
                               vertex_path={"auto": None, "lp": False, "vertices": True}[splitter])
    c0, s0 = counter.snapshot()
    t = time.perf_counter()
    first = lrenum.enumerate_regions(net, dom, settings)
    first_sec = time.perf_counter() - t
    c1, s1 = counter.snapshot()
    t = time.perf_counter()
    res = lrenum.enumerate_regions(net, dom, settings)
    sec = time.perf_counter() - t
    c2, _ = counter.snapshot()
    assert res.regions == first.regions
    mem, mem_kind = peak_memory(lrenum.runtime.select_device(device))
    row = {"case": case[0], "family": case[0][0], "input_dim": net.input_dim, "widths": list(net.hidden_widths),
           "regions": res.regions, "seconds": round(sec, 4), "regions_per_second": round(res.regions / sec, 1),
           "lps": res.stats.lps, "lps_avoided": res.stats.avoided, "float64_redecisions": res.stats.float_redecisions,
           "exact_decisions": res.stats.exact_decisions, "compilations_first_run": c1 - c0,
           "compile_seconds_first_run": round(s1 - s0, 3), "first_run_seconds": round(first_sec, 3),
           "compilations_second_run": c2 - c1, "peak_memory_bytes": mem, "peak_memory_kind": mem_kind,
           "device": res.device, "splitter": splitter, "lp_dtype": np.dtype(lp_dtype).name}
    if budget > 0 and dom.box is not None:
        n_ref, ref_sec = reference_seconds(net, dom, budget)
        row["reference_seconds"] = ref_sec
        row["speedup_vs_reference"] = round(ref_sec / sec, 1) if ref_sec else None
        if n_ref is not None and n_ref != res.regions:
            row["REFERENCE_MISMATCH"] = n_ref
    return row


def roofline(device) -> dict:
    """Device ceilings (copy bandwidth, float64/float32 matmul) and the LP kernel's rate."""
    import jax
    import jax.numpy as jnp

    from lrenum.kernels.lp_dense import margin_lp_dense as margin_lp

    dev = lrenum.runtime.select_device(device)
    out = {}
    with lrenum.runtime.on_device(dev):
        x = jnp.ones((32 * 1024 * 1024,), jnp.float64)          # 256 MB
        copy = jax.jit(lambda v: v * 1.0 + 0.0)
        copy(x).block_until_ready()
        t = time.perf_counter()
        for _ in range(5):
            copy(x).block_until_ready()
        out["copy_GBps"] = round(5 * 2 * x.nbytes / (time.perf_counter() - t) / 1e9, 2)
        for dtype in (jnp.float64, jnp.float32):
            n = 2048
            a = jnp.ones((n, n), dtype)
            mm = jax.jit(lambda p, q: p @ q)
            mm(a, a).block_until_ready()
            t = time.perf_counter()
            for _ in range(3):
                mm(a, a).block_until_ready()
            out[f"matmul_{jnp.dtype(dtype).name}_GFLOPs"] = round(3 * 2 * n ** 3 / (time.perf_counter() - t) / 1e9, 1)
        # the LP kernel at an enumerator shape: B lanes, m rows, d inputs; per-iteration cost from
        # the difference of 16 and 8 iterations (no batch of random LPs converges in 8)
        rng = np.random.default_rng(0)
        lanes = []
        for B, m, d in [(1024, 48, 2), (1024, 48, 4), (1024, 64, 8), (1024, 56, 16)]:
            A = rng.normal(size=(B, m, d))
            A /= np.linalg.norm(A, axis=2, keepdims=True)
            b = np.abs(rng.normal(size=(B, m))) + 0.1
            mask = np.ones((B, m), bool)
            x0 = np.zeros((B, d))
            times = {}
            for iters in (8, 16):
                margin_lp(A, b, mask, x0, 1.0, 1.0, 0.0, iters=iters)[0].block_until_ready()
                t = time.perf_counter()
                for _ in range(3):
                    margin_lp(A, b, mask, x0, 1.0, 1.0, 0.0, iters=iters)[0].block_until_ready()
                times[iters] = (time.perf_counter() - t) / 3
            per_iter = max((times[16] - times[8]) / 8, 1e-9)
            M, n = m + 1, d + 1
            flops = B * (2 * M * n * n + 14 * M * n + n ** 3 / 3 + 6 * n * n + 20 * M)
            bytes_min = B * 8 * (M * n + 4 * M)       # F and the four row vectors, read once per iteration
            lanes.append({"batch": B, "rows": m, "dim": d, "seconds_per_iteration": per_iter,
                          "GFLOPs": round(flops / per_iter / 1e9, 2), "GBps_min": round(bytes_min / per_iter / 1e9, 2),
                          "flops_per_byte": round(flops / bytes_min, 2)})
        out["lp_kernel"] = lanes
    f64 = out["matmul_float64_GFLOPs"]
    for lane in out["lp_kernel"]:
        lane["fraction_of_f64_matmul"] = round(lane["GFLOPs"] / f64, 4)
        lane["fraction_of_copy_bandwidth"] = round(lane["GBps_min"] / out["copy_GBps"], 4)
    return out


def roofline_in_subprocess(device, timeout: float = 600.0) -> dict:
    """The roofline in a fresh process: run in the same process after the cases, its first LP
    call twice stalled for over 10 minutes inside XLA on the 2-core CPU machine (a hang or a very
    slow cold compile: not determined; alone, with a warm cache, it takes 5 s)."""
    cmd = [sys.executable, os.path.abspath(__file__), "--roofline-only"] + (["--device", device] if device else [])
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, ValueError, IndexError) as exc:
        return {"error": f"roofline failed: {type(exc).__name__}", "copy_GBps": None, "matmul_float64_GFLOPs": None,
                "matmul_float32_GFLOPs": None, "lp_kernel": []}


def write_results(stem: str, device: str, rows: list, roof: dict) -> None:
    """The JSON and the markdown table; called after every case so that a run stopped by a time
    limit (a lent GPU's lease) keeps what it measured."""
    json.dump({"device": device, "cases": rows, "roofline": roof}, open(stem + ".json", "w"), indent=1)
    with open(stem + ".md", "w") as f:
        f.write(f"# bench.py on {device}\n\nSecond run timed; compilations and their seconds from the first run.\n\n"
                "| case | d | widths | splitter | LP dtype | regions | s | regions/s | LPs | avoided | f64 | exact | "
                "compiles (1st+2nd) | compile s | peak mem MB | x reference |\n"
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
        for r in rows:
            f.write(f"| {r['case']} | {r['input_dim']} | {'x'.join(map(str, r['widths']))} | {r['splitter']} | "
                    f"{r['lp_dtype']} | {r['regions']} | "
                    f"{r['seconds']} | {r['regions_per_second']:.0f} | {r['lps']} | {r['lps_avoided']} | "
                    f"{r['float64_redecisions']} | {r['exact_decisions']} | {r['compilations_first_run']}+"
                    f"{r['compilations_second_run']} | {r['compile_seconds_first_run']} | "
                    f"{r['peak_memory_bytes'] / 1e6:.0f} ({r['peak_memory_kind']}) | {r.get('speedup_vs_reference')} |\n")
        if not roof:
            return
        f.write(f"\n## Roofline\n\ncopy {roof['copy_GBps']} GB/s, float64 matmul {roof['matmul_float64_GFLOPs']} GFLOP/s, "
                f"float32 matmul {roof['matmul_float32_GFLOPs']} GFLOP/s.\n\n| LP batch x rows x d | s/iteration | "
                "GFLOP/s | fraction of f64 matmul | GB/s (lower bound) | fraction of copy | flop/byte |\n"
                "|---|---|---|---|---|---|---|\n")
        for l in roof["lp_kernel"]:
            f.write(f"| {l['batch']} x {l['rows']} x {l['dim']} | {l['seconds_per_iteration']:.2e} | {l['GFLOPs']} | "
                    f"{l['fraction_of_f64_matmul']} | {l['GBps_min']} | {l['fraction_of_copy_bandwidth']} | "
                    f"{l['flops_per_byte']} |\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a small subset, on the CPU in under two minutes")
    ap.add_argument("--device", choices=["cpu", "gpu"])
    ap.add_argument("--reference-budget", type=float, default=60.0, help="seconds for the reference per case (0: skip)")
    ap.add_argument("--families", default="abcd")
    ap.add_argument("--cases", nargs="*", help="only these cases (names as in FAMILIES)")
    ap.add_argument("--all", action="store_true", help="on a CPU, also the GPU-scale cases of family (c)")
    ap.add_argument("--splitter", choices=["auto", "lp", "vertices"], default="auto",
                    help="auto: the vertex path on boxes at d <= 6; lp: batched LPs everywhere")
    ap.add_argument("--lp-dtype", choices=["float64", "float32"], default="float64",
                    help="dtype of the device LPs (certificates stay float64)")
    ap.add_argument("--no-roofline", action="store_true", help="skip the roofline section")
    ap.add_argument("--tag", default="", help="suffix for the result file names")
    ap.add_argument("--out", default=common.RESULTS)
    ap.add_argument("--roofline-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.roofline_only:
        print(json.dumps(roofline(args.device)))
        return 0
    counter = CompileCounter()
    cases = [c for f in args.families for c in FAMILIES[f]]
    if args.cases:
        cases = [c for c in cases if c[0] in args.cases]
    if args.quick:
        cases = [c for c in cases if c[0] in QUICK]
        args.reference_budget = min(args.reference_budget, 10.0)
    if (args.device or lrenum.runtime.select_device(None).platform) == "cpu" and not args.all:
        cases = [c for c in cases if c[0] not in CPU_SKIP]
    device = common.device_name(args.device)
    kind = lrenum.runtime.select_device(args.device).platform
    stem = os.path.join(args.out, f"bench-{kind}{'-quick' if args.quick else ''}-{dt.date.today().isoformat()}{args.tag}")
    os.makedirs(args.out, exist_ok=True)
    rows = []
    for case in cases:
        row = run_case(case, args.device, counter, args.reference_budget, args.splitter, np.dtype(args.lp_dtype))
        rows.append(row)
        print(f"{row['case']:>18}: {row['regions']:>8} regions {row['seconds']:>8.3f} s "
              f"{row['regions_per_second']:>10.0f}/s  LPs {row['lps']:>7} (avoided {row['lps_avoided']}), "
              f"compiles {row['compilations_first_run']}+{row['compilations_second_run']}, "
              f"x ref {row.get('speedup_vs_reference')}", file=sys.stderr, flush=True)
        write_results(stem, device, rows, {})
    roof = {} if args.no_roofline else roofline_in_subprocess(args.device)
    write_results(stem, device, rows, roof)
    print(f"wrote {stem}.json and .md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
