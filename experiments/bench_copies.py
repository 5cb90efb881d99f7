"""Networks with exact copies (proportional neurons): passengers of their representative against
every copy its own hyperplane, in one process on one machine.

    python experiments/bench_copies.py [--out DIR]

"Without" replaces the network's copies by none (every neuron its own hyperplane, as before
lrenum.model.coincidences); counts must agree. Best of 2 after a warm-up. Results:
``results/copies-cpu-<date>.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import lrenum  # noqa: E402
from bench_enumerate import cpu_name  # noqa: E402
from lrenum.model.coincidences import Copies  # noqa: E402


def cases():
    rng = np.random.default_rng(0)
    W1, b1 = rng.normal(size=(12, 4)), rng.normal(size=12) * 0.3
    yield ("4-input 24-12, 12 rescaled copies in layer 1", [np.r_[W1, 2.0 * W1[:6], -0.5 * W1[6:]], rng.normal(size=(12, 24)),
                                                             rng.normal(size=(1, 12))],
           [np.r_[b1, 2.0 * b1[:6], -0.5 * b1[6:]], rng.normal(size=12) * 0.3, np.zeros(1)], 4)
    W2 = rng.normal(size=(8, 16))
    yield ("3-input 16-16-16, 8 copies in layer 2", [rng.normal(size=(16, 3)), np.r_[W2, -4.0 * W2], rng.normal(size=(16, 16)),
                                                     rng.normal(size=(1, 16))],
           [rng.normal(size=16) * 0.3, np.r_[np.zeros(8) + 0.1, -0.4 + np.zeros(8)], rng.normal(size=16) * 0.3, np.zeros(1)], 3)
    # quantised: ternary rows drawn with repeats, half-integer biases (repeats are exact copies)
    T = rng.integers(-1, 2, size=(20, 4)).astype(float)
    T[~T.any(axis=1), 0] = 1.0
    yield ("4-input 20-8 ternary rows with repeats", [T, rng.integers(-1, 2, size=(8, 20)).astype(float), np.ones((1, 8))],
           [rng.integers(-2, 3, size=20) * 0.5, rng.integers(-2, 3, size=8) * 0.5, np.zeros(1)], 4)


def timed(net, dom, without: bool):
    if without:
        net.__dict__["copies"] = Copies([np.arange(w) for w in net.hidden_widths],
                                        [np.ones(w, np.int8) for w in net.hidden_widths])
    else:
        net.__dict__.pop("copies", None)
    lrenum.enumerate_regions(net, dom)
    return min((lrenum.enumerate_regions(net, dom) for _ in range(2)), key=lambda r: r.seconds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args()
    rows = []
    for name, Ws, bs, d in cases():
        net = lrenum.make_network(Ws, bs)
        dom = lrenum.box_domain(-1, 1, d)
        copies = int(sum(np.sum(r != np.arange(r.size)) for r in net.copies.rep))
        before, after = timed(net, dom, True), timed(net, dom, False)
        rows.append((name, copies, before, after))
        print(name, copies, before.regions, round(before.seconds, 3), after.regions, round(after.seconds, 3), flush=True)
    date = dt.date.today().isoformat()
    with open(os.path.join(args.out, f"copies-cpu-{date}.md"), "w") as f:
        f.write(f"# Exact copies as passengers (cpu / {cpu_name()}, {date})\n\n`experiments/bench_copies.py`: best of 2 "
                "after a warm-up, one process; 'without' gives every copy its own hyperplane (as before).\n\n"
                "| network | copies | regions | without: s | LPs | exact certificates | with: s | LPs | exact certificates "
                "| speed-up | counts agree |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
        for name, copies, b, a in rows:
            f.write(f"| {name} | {copies} | {a.regions:,} | {b.seconds:.3f} | {b.stats.lps:,} | {b.stats.exact_certificates:,} | "
                    f"{a.seconds:.3f} | {a.stats.lps:,} | {a.stats.exact_certificates:,} | {b.seconds / a.seconds:.1f}x | "
                    f"{a.regions == b.regions} |\n")


if __name__ == "__main__":
    main()
