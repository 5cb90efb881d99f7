"""The ``lrenum`` command line. Bad input gives one line on stderr and exit code 2.

Conventions for every verb: progress and human summaries go to stderr (``-q`` silences the
progress); with ``--json`` stdout holds exactly one JSON object and nothing else.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional, Sequence

import numpy as np

from .errors import InputError

EXIT_BAD_INPUT = 2
SMALL_ENOUGH_TO_ENUMERATE = 100_000   # an upper bound this small: enumeration takes seconds (measured ~1-10k regions/s on 2 cores)


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
    g.add_argument("--lo", nargs="+", metavar="LO",
                   help="per-dimension lower bounds: d numbers or one .npy file (needs --hi)")
    g.add_argument("--around", metavar="X", help="box of half-width --radius around the point X (.npy file or comma list)")
    g.add_argument("--domain", choices=["unbounded"], help="'unbounded': all of R^d")
    p.add_argument("--hi", nargs="+", metavar="HI", help="per-dimension upper bounds (with --lo)")
    p.add_argument("--radius", type=_positive_float, help="half-width of the --around box")


def _vector(values, what: str) -> np.ndarray:
    """A vector given as numbers on the command line, a comma list, or one .npy file."""
    if isinstance(values, str):
        values = [values]
    if len(values) == 1 and values[0].endswith(".npy"):
        try:
            arr = np.load(values[0], allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read {what} from {values[0]}: {exc}") from None
        return np.asarray(arr, dtype=np.float64).ravel()
    try:
        return np.array([float(v) for part in values for v in part.split(",") if v], dtype=np.float64)
    except ValueError:
        raise InputError(f"{what} must be numbers or one .npy file, got {' '.join(values)}") from None


def _load(args):
    from .model.domain import box_domain, resolve_domain
    from .model.files import load_network

    net, arrays = load_network(args.network, input_shape=getattr(args, "input_shape", None),
                               unpickle=getattr(args, "unpickle", False))
    d = net.input_dim
    if getattr(args, "hi", None) is not None and getattr(args, "lo", None) is None:
        raise InputError("--hi needs --lo")
    if getattr(args, "radius", None) is not None and getattr(args, "around", None) is None:
        raise InputError("--radius needs --around")
    if getattr(args, "lo", None) is not None:
        if args.hi is None:
            raise InputError("--lo needs --hi")
        return net, box_domain(_vector(args.lo, "--lo"), _vector(args.hi, "--hi"), d)
    if getattr(args, "around", None) is not None:
        if args.radius is None:
            raise InputError("--around needs --radius")
        x = _vector(args.around, "--around")
        if x.shape != (d,):
            raise InputError(f"--around has {x.size} coordinates but the network has {d} inputs")
        return net, box_domain(x - args.radius, x + args.radius, d)
    box = tuple(args.box) if getattr(args, "box", None) else None
    domain = resolve_domain(d, arrays, box=box, unbounded=getattr(args, "domain", None) == "unbounded")
    return net, domain


def _say(text: str) -> None:
    """A human line: stderr, so that stdout stays machine-readable."""
    print(text, file=sys.stderr, flush=True)


def _start(args, what: str) -> None:
    """The first progress line of a long command (shown within its first second)."""
    if not getattr(args, "quiet", False):
        _say(f"[lrenum] {what}")


def _emit(args, human: str, summary: dict) -> None:
    """The result: JSON alone on stdout with --json (the human line then goes to stderr)."""
    if args.json:
        _say(human)
        print(json.dumps(summary))
    else:
        print(human)


def cmd_enumerate(args) -> int:
    from .core.walk import enumerate_regions

    net, domain = _load(args)
    from .core import memory

    memory.check_run(int(sum(net.hidden_widths)), min(net.input_dim, net.hidden_widths[0]), max(net.hidden_widths),
                     args.batch_size)   # before the first progress line: bad input stays one line
    writer = None
    if args.geometry and not args.output:
        raise InputError("--geometry needs -o FILE")
    if args.workers is not None:   # checked before any file is touched
        if not args.output:
            raise InputError("--workers needs -o FILE: the workers' regions are merged into a dataset")
        from .distributed import start_ray

        start_ray(args.workers, args.ray_address)
    elif args.ray_address:
        raise InputError("--ray-address needs --workers")
    if args.output:
        from .datasets.writer import RegionWriter

        writer = RegionWriter.create(args.output, net, domain, network_path=args.network,
                                     force=args.force, resume=args.resume, maps=args.maps)
    _start(args, f"enumerating {net.input_dim} inputs, hidden widths {list(net.hidden_widths)}, "
                 f"domain {domain.kind} (compiling kernels first)")
    try:
        if writer is not None and args.workers is not None:
            from .distributed import enumerate_sharded

            result = enumerate_sharded(writer, workers=args.workers, address=args.ray_address,
                                       batch_size=args.batch_size, device=args.device, progress=not args.quiet)
        elif writer is not None:
            result = writer.run(batch_size=args.batch_size, device=args.device, progress=not args.quiet)
        else:
            result = enumerate_regions(net, domain, batch_size=args.batch_size, device=args.device,
                                       progress=not args.quiet)
    finally:
        if writer is not None:
            writer.close()
    s = result.summary()
    if args.geometry:
        from .geometry import add_geometry

        _start(args, "geometry: facets and neighbours of every region (exact certificates)")
        s["geometry"] = add_geometry(args.output, net, domain)
    _emit(args, f"{s['regions']} regions in {s['seconds']:.3f} s on {s['device']}; per layer {s['per_layer']}; "
                f"{s['lps']} LPs ({s['lps_avoided']} avoided), {s['clarabel_redecisions']} float64 re-decisions, "
                f"{s['exact_decisions']} exact" + (f"; written to {args.output}" if args.output else ""), s)
    return 0


def cmd_inspect(args) -> int:
    from .datasets.reader import RegionFile

    with RegionFile(args.file) as rf:
        size = os.path.getsize(args.file)
        info = {"file": args.file, "complete": rf.complete, "regions": rf.regions, "per_layer": rf.counts,
                "input_dim": rf.input_dim, "widths": list(rf.widths), "domain": rf.domain, "bytes": size,
                "format_version": rf.format_version, "maps": rf.maps,
                "rank_histogram": {}, "children_per_rank": {}}
        out = _say if args.json else print
        if not rf.complete:
            committed = rf.committed_segments()
            info["committed_per_layer"] = committed
            out(f"{args.file}: INCOMPLETE (resume with enumerate --resume); committed so far per layer "
                f"{committed} in {rf.n_segments()} segments")
            if args.json:
                print(json.dumps(info))
            return 0
        out(f"{args.file}: complete, {rf.regions} regions, {size / 1e6:.2f} MB")
        out(f"  input dim {rf.input_dim}, hidden widths {list(rf.widths)}, domain {rf.domain['kind']}, "
            f"maps {rf.maps}")
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
            out(line)
    if args.json:
        print(json.dumps(info))
    return 0


def cmd_verify(args) -> int:
    from .datasets.verify import Mismatch, verify_file

    net, domain = _load(args)
    _start(args, f"verifying {args.file} against {args.network}")
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(desc="[lrenum] rows checked", unit=" rows", file=sys.stderr, mininterval=1.0)

    def tick(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.update(done - bar.n)

    try:
        out = verify_file(args.file, net, domain, device=args.device, progress=tick)
    except Mismatch as exc:
        print(f"lrenum: verify failed: {exc}", file=sys.stderr)
        if args.json:
            print(json.dumps({"ok": False, "error": str(exc)}))
        return 1
    finally:
        if bar is not None:
            bar.close()
    _emit(args, f"OK: {out['regions']} regions ({out['rows_checked']} rows over {len(out['per_layer'])} layers) "
                f"re-checked against {args.network}", dict(ok=True, **out))
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
    from .counting.estimate import points_estimate, tree_estimate

    net, domain = _load(args)
    if args.method == "points" and domain.box is None:   # checked before any progress line: bad input is one line
        raise InputError("point sampling needs a bounded domain (there is no uniform distribution on R^d)")
    if args.workers and args.method != "tree":
        raise InputError("--workers applies to --method tree (point sampling is one batched device pass)")
    if args.workers:
        from .distributed import start_ray

        start_ray(args.workers, args.ray_address)
    _start(args, f"estimating by {args.method} (compiling kernels first)")
    if args.method == "tree":
        if args.workers:
            from .distributed import tree_estimate_sharded

            est = tree_estimate_sharded(net, domain, workers=args.workers, address=args.ray_address,
                                        probes=args.probes, branch=args.branch, seed=args.seed,
                                        confidence=args.confidence, interval=args.interval, device=args.device)
        else:
            est = tree_estimate(net, domain, probes=args.probes, branch=args.branch, seed=args.seed,
                                confidence=args.confidence, device=args.device, interval=args.interval)
        how = f"{args.probes} probes, branch {args.branch}"
    else:
        est = points_estimate(net, domain, points=args.points, seed=args.seed, confidence=args.confidence,
                              device=args.device)
        how = f"{args.points} points, {est.details['distinct']} distinct patterns"
    if args.method == "tree":
        human = (f"tree estimate {est.estimate:.6g} regions, {100 * est.confidence:g}% interval "
                 f"[{est.ci_low:.6g}, {est.ci_high:.6g}]; certain lower bound {est.lower_bound} ({how}, "
                 f"{est.seconds:.2f} s)")
    else:
        human = (f"points: certain lower bound {est.lower_bound} regions; Chao1 {est.estimate:.6g} with interval "
                 f"[{est.ci_low:.6g}, {est.ci_high:.6g}] ({how}, {est.seconds:.2f} s). Chao1 is biased low when "
                 f"region volumes vary: its interval is for the number of patterns sampling would find, "
                 f"not a bound on the true count")
    _emit(args, human, est.summary())
    return 0


def cmd_mipbound(args) -> int:
    from .counting.bounds import compute_bounds
    from .counting.mipbound import mipbound

    net, domain = _load(args)
    if domain.box is None:
        raise InputError("MIPBound needs a bounded domain (its MILP encoding needs finite pre-activation bounds)")
    small = compute_bounds(net, domain, use_milp=False).best
    if small <= SMALL_ENOUGH_TO_ENUMERATE:
        _say(f"note: this network has at most {small} regions; `lrenum enumerate` counts them exactly, "
             f"probably in seconds")
    _start(args, "MIPBound: solving MILPs with random XOR constraints")
    res = mipbound(net, domain, trials=args.trials, confidence=args.confidence, time_limit=args.time_limit,
                   seed=args.seed, backend=args.backend, max_xors=args.max_xors, progress=not args.quiet)
    _emit(args, f"at least {res.lower_bound} regions with confidence {res.confidence:g} (MIPBound, {res.xors} XORs, "
                f"{res.verified_patterns} distinct patterns verified, {res.backend}, {res.seconds:.2f} s)", res.summary())
    return 0


def cmd_bounds(args) -> int:
    from .counting.bounds import compute_bounds

    net, domain = _load(args)
    _start(args, "analytic bounds" + ("" if args.no_milp else " (with MILPs for the most active units)"))
    rep = compute_bounds(net, domain, use_milp=not args.no_milp, backend=args.backend, time_limit=args.time_limit)
    human = "\n".join(f"{name:>13}: {value} (about 10^{len(str(value)) - 1})" for name, value in rep.bounds.items())
    _emit(args, human, rep.summary())
    return 0


def cmd_convert(args) -> int:
    from .model.files import load_network
    from .model.npz import save_npz

    net, arrays = load_network(args.model, input_shape=args.input_shape, unpickle=args.unpickle)
    if not args.output.endswith(".npz"):
        raise InputError(f"output must end in .npz: {args.output}")
    if os.path.exists(args.output) and not args.force:
        raise InputError(f"{args.output} exists; use --force to overwrite")
    save_npz(args.output, net, **{k: v for k, v in arrays.items() if k in ("lo", "hi", "domain_A", "domain_b")})
    _emit(args, f"{args.model}: {net.input_dim} inputs, hidden widths {list(net.hidden_widths)}, "
                f"{net.output_dim} outputs{'' if net.is_relu else ', leaky slopes'} -> {args.output}",
          {"input_dim": net.input_dim, "hidden_widths": list(net.hidden_widths), "output_dim": net.output_dim,
           "leaky": not net.is_relu, "output": args.output})
    return 0


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input-shape", type=int, nargs="+", metavar="N",
                   help="one input's shape without the batch axis, e.g. 1 28 28 (torch models not starting with Linear)")
    p.add_argument("--unpickle", action="store_true",
                   help="allow reading a pickled PyTorch model (runs code from the file: only files you trust)")


def cmd_plot(args) -> int:
    from .plot import plot_partition

    net, domain = _load(args)
    _start(args, "enumerating the 2-D slice")
    if not args.output.lower().endswith((".png", ".pdf", ".svg")):
        raise InputError(f"output must end in .png, .pdf or .svg: {args.output}")
    n = plot_partition(net, domain, args.output, point=args.point, u=args.u, v=args.v, title=args.title)
    where = "the domain" if net.input_dim == 2 and args.u is None and args.v is None else "the 2-D slice"
    _emit(args, f"{n} regions of {where} drawn to {args.output}", {"regions": n, "output": args.output})
    return 0


def build_parser() -> argparse.ArgumentParser:
    from ._version import __version__

    parser = _Parser(prog="lrenum", description="Exact activation regions of ReLU networks.")
    parser.add_argument("--version", action="version", version=f"lrenum {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("enumerate", help="list every activation region exactly")
    p.add_argument("network", help="network .npz (W1, b1, ..., WL, bL; optional lo/hi or domain_A/domain_b), .onnx or .pt")
    _add_model_args(p)
    p.add_argument("-o", "--output", help="write the region dataset to this HDF5 file")
    _add_domain_args(p)
    p.add_argument("--device", choices=["cpu", "gpu"], help="JAX device (default: JAX's default)")
    p.add_argument("--batch-size", type=_positive_int, default=512, help="parent regions split together (default 512)")
    p.add_argument("--maps", choices=["all", "none"],
                   help="store each final region's affine map (default 'all') or rebuild on demand; "
                        "on --resume it must match the file")
    p.add_argument("--resume", action="store_true", help="continue an interrupted -o file")
    p.add_argument("--geometry", action="store_true",
                   help="with -o: also store each region's facets and the region adjacency graph (docs/format.md)")
    p.add_argument("--workers", type=_positive_int,
                   help="shard the enumeration over N Ray workers (needs -o and pip install 'lrenum[ray]')")
    p.add_argument("--ray-address", help="join this Ray cluster instead of starting a local one (with --workers)")
    p.add_argument("--force", action="store_true", help="overwrite a complete -o file")
    p.add_argument("--json", action="store_true", help="stdout: one JSON object (the human summary goes to stderr)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_enumerate)

    p = sub.add_parser("convert", help="lower a PyTorch (.pt) or ONNX (.onnx) model to lrenum's .npz")
    p.add_argument("model", help="model file (.onnx, .pt/.pth, or .npz)")
    p.add_argument("-o", "--output", required=True, help="the .npz to write")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    _add_model_args(p)
    p.add_argument("--json", action="store_true", help="stdout: one JSON object (the human summary goes to stderr)")
    p.add_argument("-q", "--quiet", action="store_true", help="accepted for symmetry: convert shows no progress")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("estimate", help="estimate the number of regions (tree probes or point sampling)")
    p.add_argument("network", help="network .npz")
    _add_domain_args(p)
    p.add_argument("--method", choices=["tree", "points"], default="tree",
                   help="tree: Knuth probes of the exact region tree (default); points: patterns of random points")
    p.add_argument("--probes", type=_positive_int, default=256, help="tree: independent probes (default 256)")
    p.add_argument("--branch", type=_positive_int, default=1,
                   help="tree: children followed per probe and layer (default 1, pure Knuth)")
    p.add_argument("--points", type=_positive_int, default=100_000, help="points: sample size (default 100000)")
    p.add_argument("--workers", type=_positive_int, help="tree: spread the probes over N Ray workers (lrenum[ray])")
    p.add_argument("--ray-address", help="join this Ray cluster instead of starting a local one (with --workers)")
    p.add_argument("--interval", choices=["t", "log", "union"], default="union",
                   help="tree: Student-t on the mean, Cox's log-normal interval, or the hull of both (default; "
                        "measured coverage in experiments/results/estimator_coverage.md)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--confidence", type=_confidence, default=0.95, help="confidence level (default 0.95)")
    p.add_argument("--device", choices=["cpu", "gpu"], help="JAX device (default: JAX's default)")
    p.add_argument("--json", action="store_true", help="stdout: one JSON object (the human summary goes to stderr)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_estimate)

    p = sub.add_parser("mipbound", help="probabilistic lower bound by MILP with random XOR constraints")
    p.add_argument("network", help="network .npz")
    _add_domain_args(p)
    p.add_argument("--trials", type=_positive_int, default=8, help="random XOR sets per level (default 8)")
    p.add_argument("--confidence", type=_confidence, default=0.95, help="confidence level (default 0.95)")
    p.add_argument("--time-limit", type=_positive_float, default=30.0, help="seconds per MILP solve (default 30)")
    p.add_argument("--max-xors", type=_positive_int, help="stop after this many XORs")
    p.add_argument("--backend", choices=["auto", "scip", "highs"], default="auto",
                   help="MILP solver: SCIP (extra 'mipbound') or HiGHS via scipy (default: SCIP if installed)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--json", action="store_true", help="stdout: one JSON object (the human summary goes to stderr)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_mipbound)

    p = sub.add_parser("bounds", help="analytic upper bounds on the number of regions")
    p.add_argument("network", help="network .npz")
    _add_domain_args(p)
    p.add_argument("--no-milp", action="store_true",
                   help="skip the MILPs for the largest number of simultaneously active units")
    p.add_argument("--backend", choices=["auto", "scip", "highs"], default="auto", help="MILP solver (default: SCIP if installed)")
    p.add_argument("--time-limit", type=_positive_float, default=10.0, help="seconds per MILP solve (default 10)")
    p.add_argument("--json", action="store_true", help="stdout: one JSON object (the human summary goes to stderr)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_bounds)

    p = sub.add_parser("plot", help="draw the exact partition of a 2-D domain or of a 2-D slice")
    p.add_argument("network", help="network .npz")
    p.add_argument("-o", "--output", required=True, help="image file (.png, .pdf or .svg)")
    _add_domain_args(p)
    p.add_argument("--point", nargs="+", type=float, help="a point of the slice (default: the domain's center)")
    p.add_argument("--u", nargs="+", type=float, help="first slice direction (default: the first axis)")
    p.add_argument("--v", nargs="+", type=float, help="second slice direction (default: the second axis)")
    p.add_argument("--title", help="figure title (default: the number of regions)")
    p.add_argument("--json", action="store_true", help="stdout: one JSON object (the human summary goes to stderr)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("inspect", help="summarise a region file")
    p.add_argument("file", help="region file (.h5) written by enumerate -o")
    p.add_argument("--json", action="store_true", help="stdout: one JSON object (the human summary goes to stderr)")
    p.add_argument("-q", "--quiet", action="store_true", help="accepted for symmetry: inspect shows no progress")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("verify", help="re-check every region of a file against its network")
    p.add_argument("file", help="region file (.h5) written by enumerate -o")
    p.add_argument("network", help="the network .npz the file was written for")
    _add_domain_args(p)
    p.add_argument("--device", choices=["cpu", "gpu"], help="JAX device (default: JAX's default)")
    p.add_argument("--json", action="store_true", help="stdout: one JSON object (the human summary goes to stderr)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_verify)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()
        return code
    except InputError as exc:
        print(f"lrenum: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except MemoryError:
        print("lrenum: error: out of memory (try a smaller --batch-size)", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:   # the device ran out of memory: JAX raises its own error type
        if type(exc).__name__ == "JaxRuntimeError" and "RESOURCE_EXHAUSTED" in str(exc):
            print("lrenum: error: the device ran out of memory (try a smaller --batch-size)", file=sys.stderr)
            return EXIT_BAD_INPUT
        raise
    except BrokenPipeError:
        # the reader went away (`lrenum inspect f.h5 | head`): stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("lrenum: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
