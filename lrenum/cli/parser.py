"""The argument parser: every verb, every option, with help text."""

from __future__ import annotations

import argparse

from .commands import (cmd_bounds, cmd_convert, cmd_enumerate, cmd_estimate, cmd_inspect, cmd_line, cmd_mipbound,
                       cmd_plot, cmd_verify)
from .local_command import cmd_local
from .common import _add_domain_args, _add_model_args, _confidence, _Parser, _positive_float, _positive_int


def _add_output_args(p: argparse.ArgumentParser, quiet_help: str = "no progress on stderr") -> None:
    """The two options every verb shares: --json (stdout holds one JSON object) and -q."""
    p.add_argument("--json", action="store_true", help="stdout: one JSON object (the human summary goes to stderr)")
    p.add_argument("-q", "--quiet", action="store_true", help=quiet_help)


def build_parser() -> argparse.ArgumentParser:
    from .._version import __version__

    parser = _Parser(prog="lrenum", description="Exact activation regions of ReLU networks.")
    parser.add_argument("--version", action="version", version=f"lrenum {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("enumerate", help="list every activation region exactly")
    p.add_argument("network", help="network .npz (W1, b1, ..., WL, bL; optional lo/hi or domain_A/domain_b), .onnx or .pt")
    _add_model_args(p)
    p.add_argument("-o", "--output", help="write the region dataset to this HDF5 file")
    _add_domain_args(p)
    p.add_argument("--device", choices=["cpu", "gpu"], help="JAX device (default: JAX's default)")
    p.add_argument("--batch-size", type=_positive_int, default=None,
                   help="parent regions split together (default 512, 1024 on the vertex path)")
    p.add_argument("--splitter", choices=["auto", "vertices", "lp"], default="auto",
                   help="how parents are split: from their vertices (low input dimension, box domains), by LPs, "
                        "or auto (vertices on boxes up to d = 6, else LPs); the answer is the same, certified either way")
    p.add_argument("--maps", choices=["all", "none"],
                   help="store each final region's affine map (default 'all') or rebuild on demand; "
                        "on --resume it must match the file")
    p.add_argument("--resume", action="store_true", help="continue an interrupted -o file")
    p.add_argument("--geometry", nargs="?", const="float", choices=["float", "exact"], default=None,
                   help="with -o: also store each region's facets, the region adjacency graph and (d <= 6) its "
                        "vertices and volumes: 'float' (the default) as float64 with certified bounds, read off the "
                        "enumeration's own vertex sets; 'exact' in rational arithmetic (slow; docs/format.md)")
    p.add_argument("--workers", type=_positive_int,
                   help="shard the enumeration over N Ray workers (needs -o and pip install 'lrenum[ray]')")
    p.add_argument("--ray-address", help="join this Ray cluster instead of starting a local one (with --workers)")
    p.add_argument("--task-seconds", type=float, default=None, metavar="S",
                   help="with --workers: a task running S seconds hands its unsplit regions back as new tasks "
                        "(work stealing; default 20, 0 hands back after every split)")
    p.add_argument("--force", action="store_true", help="overwrite a complete -o file")
    p.add_argument("--verify", action="store_true",
                   help="with -o: re-check the written file with the independent verifier before returning "
                        "(as `lrenum verify`; about the cost of the enumeration again)")
    _add_output_args(p)
    p.set_defaults(func=cmd_enumerate)

    p = sub.add_parser("convert", help="lower a PyTorch (.pt) or ONNX (.onnx) model to lrenum's .npz")
    p.add_argument("model", help="model file (.onnx, .pt/.pth, or .npz)")
    p.add_argument("-o", "--output", required=True, help="the .npz to write")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    _add_model_args(p)
    _add_output_args(p, quiet_help="accepted for symmetry: convert shows no progress")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("estimate", help="estimate the number of regions (tree probes or point sampling)")
    p.add_argument("network", help="network .npz")
    _add_domain_args(p)
    p.add_argument("--method", choices=["tree", "probes", "points"], default="tree",
                   help="tree: Knuth probes of the exact region tree, splitting every region they visit (default); "
                        "probes: Knuth probes that add one hyperplane at a time (no region is split whole: for "
                        "networks too large to enumerate); points: patterns of random points")
    p.add_argument("--probes", type=_positive_int, default=None,
                   help="tree: independent probes (default 256); probes: probes per round (default 1024)")
    p.add_argument("--rel-width", type=_positive_float, default=None, metavar="W",
                   help="probes: more rounds until the interval's half-width is at most W times the estimate")
    p.add_argument("--seconds", type=_positive_float, default=None, metavar="S",
                   help="probes: more rounds until S seconds have passed (with --rel-width: whichever comes first)")
    p.add_argument("--strata", type=_positive_int, default=None, metavar="K",
                   help="probes: walk the top of the tree exactly until it has more than K cells, then probe below "
                        "each (default 256 or an eighth of --probes, whichever is smaller; 32 with --seconds)")
    p.add_argument("--guide-points", type=int, default=None, metavar="N",
                   help="probes: uniform sample points whose patterns set the side probabilities (default 65536; "
                        "0: each side 1/2)")
    p.add_argument("--branch", type=_positive_int, default=1,
                   help="tree: children followed per probe and layer (default 1, pure Knuth)")
    p.add_argument("--points", type=_positive_int, default=100_000, help="points: sample size (default 100000)")
    p.add_argument("--workers", type=_positive_int, help="tree: spread the probes over N Ray workers (lrenum[ray])")
    p.add_argument("--ray-address", help="join this Ray cluster instead of starting a local one (with --workers)")
    p.add_argument("--interval", choices=["t", "log", "union"], default=None,
                   help="Student-t on the mean, Cox's log-normal interval, or the hull of both (default: union for "
                        "tree; probes reports t only, on its sum of strata's means: measured "
                        "coverage in experiments/results/estimator_coverage.md)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--confidence", type=_confidence, default=0.95, help="confidence level (default 0.95)")
    p.add_argument("--device", choices=["cpu", "gpu"], help="JAX device (default: JAX's default)")
    _add_output_args(p)
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
    p.add_argument("--workers", type=_positive_int,
                   help="run each level's trials (independent MILPs) on N Ray workers (lrenum[ray]); same bound per seed")
    p.add_argument("--ray-address", help="join this Ray cluster instead of starting a local one (with --workers)")
    _add_output_args(p)
    p.set_defaults(func=cmd_mipbound)

    p = sub.add_parser("bounds", help="analytic upper bounds on the number of regions")
    p.add_argument("network", help="network .npz")
    _add_domain_args(p)
    p.add_argument("--no-milp", action="store_true",
                   help="skip the MILPs for the largest number of simultaneously active units")
    p.add_argument("--backend", choices=["auto", "scip", "highs"], default="auto", help="MILP solver (default: SCIP if installed)")
    p.add_argument("--time-limit", type=_positive_float, default=10.0, help="seconds per MILP solve (default 10)")
    _add_output_args(p)
    p.set_defaults(func=cmd_bounds)

    p = sub.add_parser("plot", help="draw the exact partition of a 2-D domain or of a 2-D slice")
    p.add_argument("network", help="network .npz")
    p.add_argument("-o", "--output", help="image file (.png, .pdf or .svg)")
    _add_domain_args(p)
    p.add_argument("--boundary", action="store_true",
                   help="colour by predicted class and draw the decision boundary (classifier networks)")
    p.add_argument("--geojson", help="also write the regions' polygons as GeoJSON to this file")
    p.add_argument("--through", nargs=3, metavar="X.npy",
                   help="the plane through three inputs (.npy files or comma lists), instead of --point/--u/--v")
    p.add_argument("--point", nargs="+", type=float, help="a point of the slice (default: the domain's center)")
    p.add_argument("--u", nargs="+", type=float, help="first slice direction (default: the first axis)")
    p.add_argument("--v", nargs="+", type=float, help="second slice direction (default: the second axis)")
    p.add_argument("--title", help="figure title (default: the number of regions)")
    _add_output_args(p)
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("line", help="regions along the segment between two inputs (a 1-D slice)")
    p.add_argument("network", help="network file (.npz, .onnx, .pt)")
    p.add_argument("a", help="start point: .npy file or comma list")
    p.add_argument("b", help="end point: .npy file or comma list")
    _add_output_args(p)
    p.set_defaults(func=cmd_line)

    p = sub.add_parser("local", help="exact regions in the boxes around many inputs (local complexity)")
    p.add_argument("network", help="network file (.npz, .onnx, .pt)")
    p.add_argument("points", help="the inputs: a .npy file of shape (n, d) (or (d,) for one), or a .csv/.txt of rows")
    _add_model_args(p)
    p.add_argument("--radius", type=_positive_float, help="half-width of every box (an l-inf ball around each point)")
    p.add_argument("--radii", metavar="FILE", help="one half-width per point (.npy), instead of --radius")
    p.add_argument("--clip", action="store_true",
                   help="clip boxes that leave the network's domain to it (default: such a box is an error)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--box", nargs=2, type=float, metavar=("LO", "HI"),
                   help="the network's domain [LO, HI]^d (default: lo/hi from the file, else unrestricted)")
    g.add_argument("--lo", nargs="+", metavar="LO", help="the network's domain, per-dimension lower bounds (needs --hi)")
    p.add_argument("--hi", nargs="+", metavar="HI", help="per-dimension upper bounds (with --lo)")
    p.add_argument("-o", "--output", help="write the per-point tables (and with --regions every region) to this HDF5 file")
    p.add_argument("--regions", action="store_true", help="with -o: store every region (pattern, witness, ranks) with its point")
    p.add_argument("--csv", metavar="FILE", help="also write one row per point to this CSV file")
    p.add_argument("--force", action="store_true", help="overwrite existing -o / --csv files")
    p.add_argument("--proxies", action="store_true",
                   help="also the literature's proxies per point: neurons meeting the box (interval bounds) and "
                        "distinct certified patterns among --samples uniform samples (a lower bound)")
    p.add_argument("--samples", type=_positive_int, default=1000, help="samples per box for --proxies (default 1000)")
    p.add_argument("--walks", type=_positive_int, default=None,
                   help="points walked concurrently, their LPs pooled into shared device calls (default 64)")
    p.add_argument("--device", choices=["cpu", "gpu"], help="JAX device (default: JAX's default)")
    _add_output_args(p)
    p.set_defaults(func=cmd_local)

    p = sub.add_parser("inspect", help="summarise a region file")
    p.add_argument("file", help="region file (.h5) written by enumerate -o")
    _add_output_args(p, quiet_help="accepted for symmetry: inspect shows no progress")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("verify", help="re-check every region of a file against its network")
    p.add_argument("file", help="region file (.h5) written by enumerate -o")
    p.add_argument("network", help="the network .npz the file was written for")
    _add_domain_args(p)
    p.add_argument("--device", choices=["cpu", "gpu"], help="JAX device (default: JAX's default)")
    _add_output_args(p)
    p.set_defaults(func=cmd_verify)
    return parser
