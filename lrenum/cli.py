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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lrenum", description="Exact activation regions of ReLU networks.")
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
