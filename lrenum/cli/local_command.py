"""The ``local`` verb: exact regions in the boxes around many inputs (issue 33), its CSV table, and
``verify`` on the files it writes.

Beside ``commands.py`` rather than in it: with its input checks and table writer it is three
screens, not one.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import InputError
from .commands import report_verify, run_settings
from .common import _emit, _start, _Ticker


def cmd_local(args) -> int:
    from ..counting.local import local_boxes, local_regions
    from ..model.domain import box_domain, resolve_domain
    from ..model.files import load_network
    from .common import _vector

    net, arrays = load_network(args.network, input_shape=getattr(args, "input_shape", None),
                               unpickle=getattr(args, "unpickle", False))
    d = net.input_dim
    if (args.lo is None) != (args.hi is None):
        raise InputError("--lo and --hi go together")
    if args.box is not None:
        domain = box_domain(args.box[0], args.box[1], d)
    elif args.lo is not None:
        domain = box_domain(_vector(args.lo, "--lo"), _vector(args.hi, "--hi"), d)
    elif any(k in arrays for k in ("lo", "hi", "domain_A", "domain_b")):
        domain = resolve_domain(d, arrays)
    else:
        domain = None                                  # the network's inputs are unrestricted
    points = _array_file(args.points, "points")
    radii = _array_file(args.radii, "radii") if args.radii is not None else None
    if (args.radius is None) == (radii is None):
        raise InputError("give --radius R or --radii FILE.npy (one of them)")
    P, lo, hi = local_boxes(points, args.radius, radii=radii, domain=domain, clip=args.clip, dim=d)
    radius = np.broadcast_to(np.asarray(args.radius if radii is None else radii, np.float64).ravel(), (len(P),))
    if args.regions and not args.output:
        raise InputError("--regions needs -o FILE")
    for out in (args.output, args.csv):
        if out and os.path.exists(out) and not args.force:
            raise InputError(f"{out} exists (--force overwrites it)")
    writer = None
    if args.output:
        from ..datasets.local_file import LocalWriter

        writer = LocalWriter(args.output, net, P, radius, lo, hi, None if domain is None else domain.describe(),
                             args.clip, regions=args.regions, proxies=args.proxies)
    _start(args, f"{len(P)} boxes around the points (radius {_radius_text(radius)}; compiling kernels first)")
    tick = _Ticker(args, "points", " points")
    try:
        res = local_regions(net, P, radii=radius, domain=domain, clip=args.clip, settings=run_settings(args),
                            proxies=args.proxies, samples=args.samples, keep_regions=args.regions,
                            walks=args.walks, on_point=writer.add if writer is not None else None,
                            tick=lambda done, total, regions: tick(done, total))
        if writer is not None:
            writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        tick.close()
    if args.csv:
        _write_csv(args.csv, res)
    summary = res.summary()
    counts = np.asarray(res.counts)
    human = (f"{len(counts)} points: regions per box mean {counts.mean():.1f}, median {np.median(counts):g}, "
             f"min {counts.min()}, max {counts.max()}; {counts.sum()} regions in {res.seconds:.1f} s "
             f"({summary['regions_per_second'] or 0:.0f}/s)")
    if len(counts) <= 20:
        human += "\n" + "\n".join(f"  point {p.index}: {p.regions} regions, per layer {p.per_layer}" for p in res.points)
    outs = [o for o in (args.output, args.csv) if o]
    if outs:
        human += f"\nwritten to {', '.join(outs)}"
        summary["outputs"] = outs
    _emit(args, human, summary)
    return 0


def _radius_text(radius: np.ndarray) -> str:
    return f"{radius[0]:g}" if np.all(radius == radius[0]) else f"{radius.min():g} to {radius.max():g}"


def _array_file(path: str, what: str) -> np.ndarray:
    """A numeric array from a .npy file (or a .txt/.csv of numbers), as one clear line if it is not."""
    if not os.path.exists(path):
        raise InputError(f"{what} file not found: {path}")
    try:
        if path.endswith((".txt", ".csv")):
            arr = np.loadtxt(path, delimiter="," if path.endswith(".csv") else None, ndmin=2)
        else:
            arr = np.load(path, allow_pickle=False)
        arr = np.asarray(arr, dtype=np.float64)
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(f"cannot read {what} from {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if arr.size == 0:
        raise InputError(f"{path} holds no {what}")
    return arr


def _write_csv(path: str, res) -> None:
    """One row per point (written to a temporary file, then renamed: never half a table)."""
    import csv

    from ..errors import WriteError

    L = len(res.points[0].per_layer)
    head = ["point", "count"] + [f"layer_{l + 1}" for l in range(L)] + [f"max_children_{l}" for l in range(L)] \
        + [f"mean_children_{l}" for l in range(L)] + [f"switching_{l + 1}" for l in range(L)]
    proxies = res.points[0].proxies is not None
    if proxies:
        head += [f"neurons_meeting_{l + 1}" for l in range(L)] + ["sampled_patterns", "samples_certified"]
    tmp = path + ".tmp"
    try:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(head)
            for p in res.points:
                row = [p.index, p.regions] + p.per_layer + p.max_children + [f"{m:.6g}" for m in p.mean_children] + p.switching
                if proxies:
                    row += p.proxies["neurons_meeting"] + [p.proxies["sampled_patterns"], p.proxies["samples_certified"]]
                w.writerow(row)
        os.replace(tmp, path)
    except OSError as exc:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise WriteError(f"cannot write {path}: {exc.strerror or exc}") from None


def is_local_file(path: str) -> bool:
    """Whether ``path`` is a local-complexity file (``lrenum local -o``)."""
    from ..datasets.local_file import LOCAL_FORMAT
    from ..datasets.reader import file_format

    return file_format(path) == LOCAL_FORMAT


def verify_local(args) -> int:
    from ..datasets.verify_local import verify_local_file
    from ..model.files import load_network

    net, _ = load_network(args.network, input_shape=getattr(args, "input_shape", None),
                          unpickle=getattr(args, "unpickle", False))
    device = run_settings(args).device
    return report_verify(args, "regions", lambda tick: verify_local_file(args.file, net, device=device, progress=tick),
                     lambda out: f"{out['points']} points, {out['regions']} regions ({out['regions_checked']} stored "
                                 "regions)")
