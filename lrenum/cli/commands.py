"""The verbs: each parses nothing itself, calls the library, and reports through ``_emit``.

The verbs side by side (about 30 lines each): one screen per verb, one file for all of them.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

from ..errors import InputError
from . import geometry_step
from .common import _emit, _load, _probe_rounds, _say, _start, _Ticker

SMALL_ENOUGH_TO_ENUMERATE = 100_000   # an upper bound this small: enumeration takes seconds (measured ~1-10k regions/s on 2 cores)


def run_settings(args, **extra):
    """The run's Settings: defaults, then LRENUM_SETTINGS, then this command's flags."""
    from ..settings import Settings

    flags = {"device": getattr(args, "device", None), "batch_size": getattr(args, "batch_size", None)}
    splitter = getattr(args, "splitter", "auto")
    if splitter != "auto":
        flags["vertex_path"] = splitter == "vertices"
    flags.update(extra)
    return Settings.build(**flags)


def cmd_enumerate(args, hooks=None) -> int:
    from ..core.walk import enumerate_regions

    net, domain = _load(args)
    if args.task_seconds is not None and (args.workers is None or args.task_seconds < 0):
        raise InputError("--task-seconds needs --workers and a value >= 0")
    if args.verify and not args.output:
        raise InputError("--verify needs -o FILE")
    settings = run_settings(args, task_seconds=args.task_seconds, verify_written=True if args.verify else None)
    if args.geometry:
        settings = settings.replace(final_vertices=True)     # the final vertex sets carry the geometry
    from ..core import memory

    memory.check_run(settings, int(sum(net.hidden_widths)), min(net.input_dim, net.hidden_widths[0]),
                     max(net.hidden_widths), settings.parents_per_split(net.input_dim <= settings.vertex_max_dim))
    writer = None
    if settings.vertex_path:          # refused before any file is touched
        from ..core.vertices import VertexSplitter

        why = VertexSplitter.unavailable(domain)
        if why:
            raise InputError(f"--splitter vertices needs {why}")
    if args.geometry and not args.output:
        raise InputError("--geometry needs -o FILE")
    if args.geometry and net.has_groups:     # refused before any file is touched (GeometrySink says why)
        from ..geometry.collect import GeometrySink
        GeometrySink(net, domain)
    if args.workers is not None:   # checked before any file is touched
        if not args.output:
            raise InputError("--workers needs -o FILE: the workers' regions are merged into a dataset")
        from ..distributed import ray_module, start_ray

        if args.ray_address:          # joining a cluster: any failure is reported before the file is touched
            start_ray(args.workers, args.ray_address, device=settings.device)
        else:                         # a local runtime starts beside the first splits (enumerate_sharded)
            ray_module()
    elif args.ray_address:
        raise InputError("--ray-address needs --workers")
    if args.output:
        from ..datasets.writer import RegionWriter

        writer = RegionWriter.create(args.output, net, domain, network_path=args.network, force=args.force,
                                     resume=args.resume, maps=args.maps, settings=settings)
    geometry_sink = geometry_step.sink(args, net, domain)
    _start(args, f"enumerating {net.input_dim} inputs, hidden widths {list(net.hidden_widths)}, "
                 f"domain {domain.kind} (compiling kernels first)")
    if writer is not None and getattr(writer, "removed_orphans", 0):
        _say(f"[lrenum] removed {writer.removed_orphans} partial segment file(s) a fault left behind "
             f"(never committed: their regions are redone)")
    if writer is not None and args.workers is not None:
        from ..distributed import enumerate_sharded

        result = enumerate_sharded(writer, workers=args.workers, address=args.ray_address, progress=not args.quiet,
                                   hooks=hooks)
    elif writer is not None:
        result = writer.run(progress=not args.quiet, also=geometry_sink)
    else:
        result = enumerate_regions(net, domain, settings, progress=not args.quiet)
    s = result.summary()
    if args.geometry:
        s["geometry"] = geometry_step.run(args, net, domain, geometry_sink)
    _emit(args, f"{s['regions']} regions in {s['seconds']:.3f} s on {s['device']}; per layer {s['per_layer']}; "
                f"{s['lps']} LPs ({s['lps_avoided']} avoided), {s['clarabel_redecisions']} float64 re-decisions, "
                f"{s['exact_decisions']} exact" + (f"; written to {args.output}" if args.output else ""), s)
    return 0


def cmd_inspect(args) -> int:
    from ..datasets.reader import RegionFile

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
    from ..datasets.verify import verify_file

    from .local_command import is_local_file, verify_local

    if is_local_file(args.file):
        return verify_local(args)
    net, domain = _load(args)
    settings = run_settings(args)
    return report_verify(args, "rows", lambda tick: verify_file(args.file, net, domain, device=settings.device, progress=tick),
                     lambda out: f"{out['regions']} regions ({out['rows_checked']} rows over {len(out['per_layer'])} layers)")


def report_verify(args, unit: str, check, what) -> int:
    """Run a verifier with a progress bar: exit 0 with ``OK: what(out) re-checked against NET``,
    or 1 with the first mismatch on one line."""
    from ..datasets.verify import Mismatch

    _start(args, f"verifying {args.file} against {args.network}")
    tick = _Ticker(args, f"{unit} checked", f" {unit}")
    try:
        out = check(tick)
    except Mismatch as exc:
        print(f"lrenum: verify failed: {exc}", file=sys.stderr)
        if args.json:
            print(json.dumps({"ok": False, "error": str(exc)}))
        return 1
    finally:
        tick.close()
    _emit(args, f"OK: {what(out)} re-checked against {args.network}", dict(ok=True, **out))
    return 0


def cmd_estimate(args) -> int:
    from ..counting.estimate import points_estimate, tree_estimate

    net, domain = _load(args)
    if args.method == "points" and domain.box is None:   # checked before any progress line: bad input is one line
        raise InputError("point sampling needs a bounded domain (there is no uniform distribution on R^d)")
    if args.workers and args.method != "tree":
        raise InputError("--workers applies to --method tree (point sampling is one batched device pass)")
    if (args.rel_width is not None or args.seconds is not None) and args.method != "probes":
        raise InputError("--rel-width and --seconds apply to --method probes")
    if (args.strata is not None or args.guide_points is not None) and args.method != "probes":
        raise InputError("--strata and --guide-points apply to --method probes")
    settings = run_settings(args)
    if args.workers:
        from ..distributed import start_ray

        start_ray(args.workers, args.ray_address)
    _start(args, f"estimating by {args.method} (compiling kernels first)")
    if args.method == "probes":
        from ..counting.probes import GUIDE_POINTS, probe_estimate

        est = probe_estimate(net, domain, probes=args.probes or 1024, seed=args.seed, confidence=args.confidence,
                             interval=args.interval or "t", settings=settings, rel_width=args.rel_width,
                             seconds=args.seconds, strata=args.strata,
                             guide_points=GUIDE_POINTS if args.guide_points is None else args.guide_points,
                             on_round=_probe_rounds(args))
        _emit(args, f"probe estimate {est.estimate:.6g} regions, {100 * est.confidence:g}% interval [{est.ci_low:.6g}, "
                    f"{est.ci_high:.6g}] (half-width {100 * est.details['relative_half_width']:.1f}%); certain lower "
                    f"bound {est.lower_bound} ({est.details['probes']} probes in {est.details['rounds']} rounds, "
                    f"{est.seconds:.2f} s)", est.summary())
        return 0
    probes = args.probes or 256
    if args.method == "tree":
        if args.workers:
            from ..distributed import tree_estimate_sharded

            est = tree_estimate_sharded(net, domain, workers=args.workers, address=args.ray_address,
                                        probes=probes, branch=args.branch, seed=args.seed,
                                        confidence=args.confidence, interval=args.interval or "union", settings=settings)
        else:
            est = tree_estimate(net, domain, probes=probes, branch=args.branch, seed=args.seed,
                                confidence=args.confidence, settings=settings, interval=args.interval or "union")
        how = f"{probes} probes, branch {args.branch}"
    else:
        est = points_estimate(net, domain, points=args.points, seed=args.seed, confidence=args.confidence,
                              settings=settings)
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
    from ..counting.bounds import compute_bounds
    from ..counting.mipbound import mipbound

    net, domain = _load(args)
    if domain.box is None:
        raise InputError("MIPBound needs a bounded domain (its MILP encoding needs finite pre-activation bounds)")
    if net.has_groups:
        raise InputError("mipbound's MILP encoding does not support max pooling over windows of 3 or more values")
    small = compute_bounds(net, domain, use_milp=False).best
    if small <= SMALL_ENOUGH_TO_ENUMERATE:
        _say(f"note: this network has at most {small} regions; `lrenum enumerate` counts them exactly, "
             f"probably in seconds")
    if args.workers:
        from ..distributed import start_ray

        start_ray(args.workers, args.ray_address)   # a bad address or a missing Ray: one line, before any work
    elif args.ray_address:
        raise InputError("--ray-address needs --workers")
    _start(args, "MIPBound: solving MILPs with random XOR constraints")
    options = dict(trials=args.trials, confidence=args.confidence, time_limit=args.time_limit, seed=args.seed,
                   backend=args.backend, max_xors=args.max_xors, progress=not args.quiet)
    if args.workers:
        from ..distributed import mipbound_sharded

        res = mipbound_sharded(net, domain, workers=args.workers, address=args.ray_address, **options)
    else:
        res = mipbound(net, domain, **options)
    where = f", {res.workers} workers" if res.workers else ""
    _emit(args, f"at least {res.lower_bound} regions with confidence {res.confidence:g} (MIPBound, {res.xors} XORs, "
                f"{res.verified_patterns} distinct patterns verified, {res.backend}{where}, {res.seconds:.2f} s)",
          res.summary())
    return 0


def cmd_bounds(args) -> int:
    from ..counting.bounds import compute_bounds

    net, domain = _load(args)
    _start(args, "analytic bounds" + ("" if args.no_milp else " (with MILPs for the most active units)"))
    rep = compute_bounds(net, domain, use_milp=not args.no_milp, backend=args.backend, time_limit=args.time_limit)
    human = "\n".join(f"{name:>13}: {value} (about 10^{len(str(value)) - 1})" for name, value in rep.bounds.items())
    _emit(args, human, rep.summary())
    return 0


def cmd_convert(args) -> int:
    from ..model.files import load_network
    from ..model.npz import save_npz

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


def cmd_plot(args) -> int:
    from ..plot import plot_partition

    net, domain = _load(args)
    if args.output is None and args.geojson is None:
        raise InputError("give -o IMAGE and/or --geojson FILE")
    if args.output is not None and not args.output.lower().endswith((".png", ".pdf", ".svg")):
        raise InputError(f"output must end in .png, .pdf or .svg: {args.output}")
    point, u, v = args.point, args.u, args.v
    if args.through:     # the plane through three inputs (e.g. three images): point x1, axes x2-x1, x3-x1
        from .common import _vector

        X = [_vector(f, "--through") for f in args.through]
        if any(x.shape != (net.input_dim,) for x in X):
            raise InputError(f"--through needs three points with {net.input_dim} coordinates each")
        point, u, v = X[0], X[1] - X[0], X[2] - X[0]
    _start(args, "enumerating the 2-D slice")
    n = plot_partition(net, domain, args.output, point=point, u=u, v=v, title=args.title, boundary=args.boundary,
                       geojson=args.geojson)
    where = "the domain" if net.input_dim == 2 and u is None and v is None else "the 2-D slice"
    outs = [o for o in (args.output, args.geojson) if o]
    _emit(args, f"{n} regions of {where} written to {', '.join(outs)}", {"regions": n, "outputs": outs})
    return 0


def cmd_line(args) -> int:
    from ..core.walk import LayerCallback, enumerate_regions
    from ..model.files import load_network
    from ..model.slicing import line_network
    from .common import _vector

    net, _ = load_network(args.network)
    a, b = _vector(args.a, "A"), _vector(args.b, "B")
    sub, dom = line_network(net, a, b)
    _start(args, "enumerating the segment")
    pieces = []

    def keep(layer, batch):
        if layer != sub.n_hidden:
            return
        for i in range(len(batch)):
            lo, hi = 0.0, 1.0
            C, bb, m = batch.rows.C[i, :, 0], batch.rows.b[i], batch.rows.mask[i]
            for c, v in zip(C[m], bb[m]):        # rows c * s < v in the segment's coordinate
                if c > 0:
                    hi = min(hi, v / c)
                elif c < 0:
                    lo = max(lo, v / c)
            pieces.append((lo, hi))

    res = enumerate_regions(sub, dom, run_settings(args), sink=LayerCallback(keep))
    pieces.sort()
    breaks = [round(p[0], 12) for p in pieces[1:]]
    _emit(args, f"{res.regions} regions along the segment; pattern changes at s = "
                + ", ".join(f"{v:.6g}" for v in breaks[:20]) + (" ..." if len(breaks) > 20 else ""),
          {"regions": res.regions, "breakpoints": breaks, "pieces": [list(p) for p in pieces]})
    return 0
