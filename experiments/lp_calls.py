"""Device calls and seconds of the LP path (vertex path off) on a few networks, one process.

    python experiments/lp_calls.py NAME_OR_NPZ...

NAME: a case of bench_lowd.py; NPZ: a model file (its lo/hi box, else [-1, 1]^d). Best of 2 after a
warm-up run; one JSON line per network: regions, seconds, device calls, calls per 1000 regions, LPs.
"""
import os
import sys, json
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lrenum
from bench import build
from bench_lowd import CASES
out = []
for name in sys.argv[1:]:
    if name.endswith(".npz"):
        net, arr = lrenum.load_network(name)
        dom = lrenum.box_domain(arr["lo"], arr["hi"], net.input_dim) if "lo" in arr else None
    else:
        net, dom = build([c for c in CASES if c[0] == name][0])
    s = lrenum.Settings().replace(vertex_path=False)
    lrenum.enumerate_regions(net, dom, settings=s)
    best = None
    for _ in range(2):
        r = lrenum.enumerate_regions(net, dom, settings=s)
        if best is None or r.seconds < best.seconds:
            best = r
    print(json.dumps({"net": name, "regions": best.regions, "seconds": round(best.seconds, 3), "device_calls": best.extra["device_calls"],
                      "calls_per_1000": round(1000 * best.extra["device_calls"] / best.regions, 2), "lps": best.stats.lps}), flush=True)
