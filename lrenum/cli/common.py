"""What every verb shares: option parsing helpers, loading a network and its domain, and the
output conventions (human lines on stderr, --json alone on stdout)."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from ..errors import InputError

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
    from ..model.domain import box_domain, resolve_domain
    from ..model.files import load_network

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


def _probe_rounds(args):
    """The probe estimator's progress (``on_round``): the strata, then each round's estimate."""
    def on_round(rounds: int, probes: int, value: float, half: float) -> None:
        if getattr(args, "quiet", False):
            return
        if rounds == 0:
            _say(f"[lrenum] {value:.0f} strata walked exactly" + ("" if half == 0 else "; probing below them"))
        else:
            _say(f"[lrenum] round {rounds}: {probes} probes, estimate {value:.6g} +-{100 * half:.1f}%")
    return on_round


class _Ticker:
    """A progress callback ``tick(done, total)`` drawing a bar on stderr (nothing with -q)."""

    def __init__(self, args, desc: str, unit: str):
        self.bar = None
        if not getattr(args, "quiet", False):
            from tqdm import tqdm

            self.bar = tqdm(desc=f"[lrenum] {desc}", unit=unit, file=sys.stderr, mininterval=1.0)

    def __call__(self, done: int, total: int) -> None:
        if self.bar is not None:
            self.bar.total = total
            self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _emit(args, human: str, summary: dict) -> None:
    """The result: JSON alone on stdout with --json (the human line then goes to stderr)."""
    if args.json:
        _say(human)
        print(json.dumps(summary))
    else:
        print(human)


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input-shape", type=int, nargs="+", metavar="N",
                   help="one input's shape without the batch axis, e.g. 1 28 28 (torch models not starting with Linear)")
    p.add_argument("--unpickle", action="store_true",
                   help="allow reading a pickled PyTorch model (runs code from the file: only files you trust)")
