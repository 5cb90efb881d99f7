"""The float64 certificates on the device against the host's numpy, in one run on one machine.

    python experiments/bench_devicecert.py [--quick] [--device cpu|gpu] [--out DIR]

Two measurements, each host and device interleaved (2 repetitions, the best kept):

* **throughput**: the forward-pass witness check and the dual bound alone, on 10^5 lanes of a
  4-input 24-24-24 network (witnesses at random points, their own patterns; Farkas certificates
  of random empty strips), lanes per second;
* **whole enumerations** with ``certify_on_device`` off and on: algorithm seconds, device calls,
  host seconds, and the counts (which must agree).

Results go to ``results/devicecert-<device>-<date>.{json,md}``: they set the default of
``Settings.certify_on_device`` (on a GPU only, unless a CPU measures faster).
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

import lrenum  # noqa: E402
from bench import build  # noqa: E402
from bench_enumerate import cpu_name  # noqa: E402
from bench_lowd import CASES  # noqa: E402

from lrenum.certify import floatcert  # noqa: E402
from lrenum.certify.device_certs import DeviceCertificates  # noqa: E402
from lrenum.core.frame import Frame  # noqa: E402
from lrenum.runtime import select_device  # noqa: E402

WHOLE = ["b-d3-32x32x32", "b-d4-24x24x24", "b-d5-12x6x6", "c-d8-16x16-box0.2"]
QUICK = ["b-d3-32x32x32", "b-d5-12x6x6"]


def best_of(fn, reps: int = 2):
    out, best = None, np.inf
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return out, best


def throughput(device, K: int) -> dict:
    net, dom = build([c for c in CASES if c[0] == "b-d4-24x24x24"][0])
    frame = Frame(net, dom)
    certs = DeviceCertificates(net, frame.geometry, device)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(K, net.input_dim))
    zs, _ = floatcert.forward_with_bounds(net, x, net.n_hidden)
    bits = [z > 0 for z in zs]
    const = [np.zeros_like(b) for b in bits]
    norms = [np.ones(b.shape) for b in bits]
    errs = [np.zeros(b.shape) for b in bits]
    certs.witnesses(dom, x[:64], [b[:64] for b in bits], [c[:64] for c in const], [n[:64] for n in norms],
                    [e[:64] for e in errs])                                           # compile
    (st_h, _), t_h = best_of(lambda: floatcert.certify_witnesses(net, dom, x, bits, const, norms, errs))
    (st_d, _), t_d = best_of(lambda: certs.witnesses(dom, x, bits, const, norms, errs))
    # empty strips: a.x < c and -a.x < -c - w (w > 0), plus random rows with zero weight
    m, d = 8, net.input_dim
    C = rng.normal(size=(K, m, d))
    C[:, 1] = -C[:, 0]
    b = rng.normal(size=(K, m))
    b[:, 1] = -b[:, 0] - rng.uniform(1e-9, 1e-3, size=K)
    y = np.zeros((K, m))
    y[:, :2] = 1.0
    z = np.zeros((K, m))
    certs.empty(C[:64], b[:64], z[:64], z[:64], y[:64])                                # compile
    e_h, te_h = best_of(lambda: floatcert.certify_empty(C, b, z, z, y, frame.geometry))
    e_d, te_d = best_of(lambda: certs.empty(C, b, z, z, y))
    return {"lanes": K, "witness_host_s": t_h, "witness_device_s": t_d, "witness_agree": float(np.mean(st_h == st_d)),
            "empty_host_s": te_h, "empty_device_s": te_d, "empty_agree": float(np.mean(e_h == e_d))}


def whole(name: str, device_kind: str) -> dict:
    net, dom = build([c for c in CASES if c[0] == name][0])
    row = {"network": name}
    for on in (False, True):                    # warm the compilation cache of both
        lrenum.enumerate_regions(net, dom, settings=lrenum.Settings().replace(certify_on_device=on, device=device_kind))
    for rep in range(2):
        for on in (False, True):
            res = lrenum.enumerate_regions(net, dom, settings=lrenum.Settings().replace(certify_on_device=on,
                                                                                        device=device_kind))
            key = "device" if on else "host"
            prev = row.get(key)
            if prev is None or res.seconds < prev["seconds"]:
                row[key] = {"regions": res.regions, "seconds": res.seconds,
                            **{k: res.extra.get(k) for k in ("device_calls", "device_seconds", "host_seconds")}}
    row["counts_agree"] = row["host"]["regions"] == row["device"]["regions"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    ap.add_argument("--lanes", type=int, default=100_000)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args()
    device = select_device(args.device)
    label = f"cpu / {cpu_name()}" if args.device == "cpu" else f"gpu / {device.device_kind} (host: {cpu_name()})"
    report = {"device": label, "date": dt.date.today().isoformat(),
              "throughput": throughput(device, 10_000 if args.quick else args.lanes), "whole": []}
    print(json.dumps(report["throughput"]), flush=True)
    for name in (QUICK if args.quick else WHOLE):
        row = whole(name, args.device)
        report["whole"].append(row)
        print(json.dumps(row), flush=True)
    stem = os.path.join(args.out, f"devicecert-{args.device}-{report['date']}{'-quick' if args.quick else ''}")
    with open(stem + ".json", "w") as f:
        json.dump(report, f, indent=1)
    tp = report["throughput"]
    with open(stem + ".md", "w") as f:
        f.write(f"# Certificates on the device against the host ({label}, {report['date']})\n\n"
                "`experiments/bench_devicecert.py`; best of 2, host and device interleaved, one process.\n\n"
                f"Throughput on {tp['lanes']:,} lanes (4-input 24-24-24 network; dual bounds of 8 rows):\n\n"
                "| certificate | host s | device s | device / host | same decisions |\n|---|---|---|---|---|\n"
                f"| forward-pass witness check | {tp['witness_host_s']:.4f} | {tp['witness_device_s']:.4f} | "
                f"{tp['witness_device_s'] / tp['witness_host_s']:.2f} | {tp['witness_agree']:.4f} |\n"
                f"| dual (Farkas) bound | {tp['empty_host_s']:.4f} | {tp['empty_device_s']:.4f} | "
                f"{tp['empty_device_s'] / tp['empty_host_s']:.2f} | {tp['empty_agree']:.4f} |\n\n"
                "Whole enumerations (algorithm seconds, `seconds` of the result):\n\n"
                "| network | regions | host certs s | device certs s | device / host | device calls (host / device "
                "certs) | host seconds (host / device certs) | counts agree |\n|---|---|---|---|---|---|---|---|\n")
        for r in report["whole"]:
            h, d = r["host"], r["device"]
            f.write(f"| {r['network']} | {h['regions']:,} | {h['seconds']:.2f} | {d['seconds']:.2f} | "
                    f"{d['seconds'] / h['seconds']:.2f} | {h['device_calls']} / {d['device_calls']} | "
                    f"{h['host_seconds']:.2f} / {d['host_seconds']:.2f} | {r['counts_agree']} |\n")


if __name__ == "__main__":
    main()
