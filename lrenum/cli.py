"""The ``lrenum`` command line. Bad input gives one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional, Sequence

import numpy as np

from .errors import InputError

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``lrenum: error: ...``), like every other bad input."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"lrenum: error: {message} (see '{self.prog} --help')\n")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _add_domain_args(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--box", nargs=2, type=float, metavar=("LO", "HI"),
                   help="box domain [LO, HI]^d (default: lo/hi from the file, else [-1, 1]^d)")
    g.add_argument("--domain", choices=["unbounded"], help="'unbounded': all of R^d")


def _load(args):
    from .domain import resolve_domain
    from .network import load_npz

    net, arrays = load_npz(args.network)
    box = tuple(args.box) if getattr(args, "box", None) else None
    domain = resolve_domain(net.input_dim, arrays, box=box, unbounded=getattr(args, "domain", None) == "unbounded")
    return net, domain


def cmd_enumerate(args) -> int:
    from .enumerate import enumerate_regions

    net, domain = _load(args)
    writer = None
    if args.output:
        from .store import RegionWriter

        writer = RegionWriter.create(args.output, net, domain, network_path=args.network,
                                     force=args.force, resume=args.resume, maps=args.maps)
    try:
        if writer is not None:
            result = writer.run(batch_size=args.batch_size, device=args.device, progress=not args.quiet)
        else:
            result = enumerate_regions(net, domain, batch_size=args.batch_size, device=args.device,
                                       progress=not args.quiet)
    finally:
        if writer is not None:
            writer.close()
    s = result.summary()
    print(f"{s['regions']} regions in {s['seconds']:.3f} s on {s['device']}; per layer {s['per_layer']}; "
          f"{s['lps']} LPs ({s['lps_avoided']} avoided), {s['certified']} float64 re-decisions, "
          f"{s['exact_decisions']} exact" + (f"; written to {args.output}" if args.output else ""))
    if args.json:
        print(json.dumps(s))
    return 0


def cmd_inspect(args) -> int:
    from .dataset import RegionFile

    with RegionFile(args.file) as rf:
        size = os.path.getsize(args.file)
        info = {"file": args.file, "complete": rf.complete, "regions": rf.regions, "per_layer": rf.counts,
                "input_dim": rf.input_dim, "widths": list(rf.widths), "domain": rf.domain, "bytes": size,
                "rank_histogram": {}, "children_per_rank": {}}
        print(f"{args.file}: {'complete' if rf.complete else 'INCOMPLETE (resume with enumerate --resume)'}, "
              f"{rf.regions} regions, {size / 1e6:.2f} MB")
        print(f"  input dim {rf.input_dim}, hidden widths {list(rf.widths)}, domain {rf.domain['kind']}")
        for l in range(1, rf.n_layers + 1):
            t = rf.layer(l)
            ranks, counts = np.unique(t["rank"], return_counts=True)
            hist = {int(r): int(c) for r, c in zip(ranks, counts)}
            info["rank_histogram"][l] = hist
            line = f"  layer {l}: {rf.counts[l - 1]} regions; rank histogram {hist}"
            if "n_children" in t:
                nch = t["n_children"]
                per = {int(r): round(float(nch[t["rank"] == r].mean()), 3) for r in ranks if np.any(nch[t["rank"] == r] > 0)}
                info["children_per_rank"][l] = per
                line += f"; mean children per rank {per}"
            print(line)
    if args.json:
        print(json.dumps(info))
    return 0


def cmd_verify(args) -> int:
    from .verify import Mismatch, verify_file

    net, domain = _load(args)
    try:
        out = verify_file(args.file, net, domain)
    except Mismatch as exc:
        print(f"lrenum: verify failed: {exc}", file=sys.stderr)
        return 1
    print(f"OK: {out['regions']} regions ({out['rows_checked']} rows over {len(out['per_layer'])} layers) "
          f"re-checked against {args.network}")
    return 0


def _confidence(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError("must lie strictly between 0 and 1")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def cmd_estimate(args) -> int:
    from .estimate import points_estimate, tree_estimate

    net, domain = _load(args)
    if args.method == "tree":
        est = tree_estimate(net, domain, probes=args.probes, branch=args.branch, seed=args.seed,
                            confidence=args.confidence, device=args.device)
        how = f"{args.probes} probes, branch {args.branch}"
    else:
        est = points_estimate(net, domain, points=args.points, seed=args.seed, confidence=args.confidence,
                              device=args.device)
        how = f"{args.points} points, {est.details['distinct']} distinct patterns"
    print(f"{est.method} estimate {est.estimate:.6g} regions, {100 * est.confidence:g}% interval "
          f"[{est.ci_low:.6g}, {est.ci_high:.6g}]; certain lower bound {est.lower_bound} ({how}, "
          f"{est.seconds:.2f} s)")
    if args.json:
        print(json.dumps(est.summary()))
    return 0


def cmd_mipbound(args) -> int:
    from .mipbound import mipbound

    net, domain = _load(args)
    res = mipbound(net, domain, trials=args.trials, confidence=args.confidence, time_limit=args.time_limit,
                   seed=args.seed, backend=args.backend, max_xors=args.max_xors, progress=not args.quiet)
    print(f"at least {res.lower_bound} regions with confidence {res.confidence:g} (MIPBound, {res.xors} XORs, "
          f"{res.verified_patterns} distinct patterns verified, {res.backend}, {res.seconds:.2f} s)")
    if args.json:
        print(json.dumps(res.summary()))
    return 0


def cmd_bounds(args) -> int:
    from .bounds import compute_bounds

    net, domain = _load(args)
    rep = compute_bounds(net, domain, use_milp=not args.no_milp, backend=args.backend, time_limit=args.time_limit)
    for name, value in rep.bounds.items():
        print(f"{name:>13}: {value} (about 10^{len(str(value)) - 1})")
    if args.json:
        print(json.dumps(rep.summary()))
    return 0


def cmd_plot(args) -> int:
    from .plot import plot_partition

    net, domain = _load(args)
    if not args.output.lower().endswith((".png", ".pdf", ".svg")):
        raise InputError(f"output must end in .png, .pdf or .svg: {args.output}")
    n = plot_partition(net, domain, args.output, point=args.point, u=args.u, v=args.v, title=args.title)
    where = "the domain" if net.input_dim == 2 and args.u is None and args.v is None else "the 2-D slice"
    print(f"{n} regions of {where} drawn to {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lrenum", description="Exact activation regions of ReLU networks.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("enumerate", help="list every activation region exactly")
    p.add_argument("network", help="network .npz (W1, b1, ..., WL, bL; optional lo/hi or domain_A/domain_b)")
    p.add_argument("-o", "--output", help="write the region dataset to this HDF5 file")
    _add_domain_args(p)
    p.add_argument("--device", choices=["cpu", "gpu"], help="JAX device (default: JAX's default)")
    p.add_argument("--batch-size", type=_positive_int, default=512, help="parent regions split together (default 512)")
    p.add_argument("--maps", choices=["all", "none"], default="all",
                   help="store each final region's affine map (default) or rebuild on demand")
    p.add_argument("--resume", action="store_true", help="continue an interrupted -o file")
    p.add_argument("--force", action="store_true", help="overwrite a complete -o file")
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line of stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_enumerate)

    p = sub.add_parser("estimate", help="estimate the number of regions (tree probes or point sampling)")
    p.add_argument("network")
    _add_domain_args(p)
    p.add_argument("--method", choices=["tree", "points"], default="tree")
    p.add_argument("--probes", type=_positive_int, default=256, help="tree: independent probes (default 256)")
    p.add_argument("--branch", type=_positive_int, default=1,
                   help="tree: children followed per probe and layer (default 1, pure Knuth)")
    p.add_argument("--points", type=_positive_int, default=100_000, help="points: sample size (default 100000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--confidence", type=_confidence, default=0.95)
    p.add_argument("--device", choices=["cpu", "gpu"])
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line of stdout")
    p.set_defaults(func=cmd_estimate)

    p = sub.add_parser("mipbound", help="probabilistic lower bound by MILP with random XOR constraints")
    p.add_argument("network")
    _add_domain_args(p)
    p.add_argument("--trials", type=_positive_int, default=8, help="random XOR sets per level (default 8)")
    p.add_argument("--confidence", type=_confidence, default=0.95)
    p.add_argument("--time-limit", type=_positive_float, default=30.0, help="seconds per MILP solve (default 30)")
    p.add_argument("--max-xors", type=_positive_int, help="stop after this many XORs")
    p.add_argument("--backend", choices=["auto", "scip", "highs"], default="auto",
                   help="MILP solver: SCIP (extra 'mipbound') or HiGHS via scipy (default: SCIP if installed)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line of stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_mipbound)

    p = sub.add_parser("bounds", help="analytic upper bounds on the number of regions")
    p.add_argument("network")
    _add_domain_args(p)
    p.add_argument("--no-milp", action="store_true",
                   help="skip the MILPs for the largest number of simultaneously active units")
    p.add_argument("--backend", choices=["auto", "scip", "highs"], default="auto")
    p.add_argument("--time-limit", type=_positive_float, default=10.0, help="seconds per MILP solve (default 10)")
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line of stdout")
    p.set_defaults(func=cmd_bounds)

    p = sub.add_parser("plot", help="draw the exact partition of a 2-D domain or of a 2-D slice")
    p.add_argument("network")
    p.add_argument("-o", "--output", required=True, help="image file (.png, .pdf or .svg)")
    _add_domain_args(p)
    p.add_argument("--point", nargs="+", type=float, help="a point of the slice (default: the domain's center)")
    p.add_argument("--u", nargs="+", type=float, help="first slice direction (default: the first axis)")
    p.add_argument("--v", nargs="+", type=float, help="second slice direction (default: the second axis)")
    p.add_argument("--title", help="figure title (default: the number of regions)")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("inspect", help="summarise a region file")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="also print the summary as JSON (last line)")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("verify", help="re-check every region of a file against its network in float64")
    p.add_argument("file")
    p.add_argument("network")
    _add_domain_args(p)
    p.set_defaults(func=cmd_verify)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except InputError as exc:
        print(f"lrenum: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("lrenum: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
