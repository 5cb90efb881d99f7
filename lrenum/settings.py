"""Every tuning knob of a run, in one frozen value built once (optax's style: settings are
captured at construction and never read from globals afterwards).

A knob changes how fast a run is or how much memory it takes, never its answer: every decision
the float kernels propose is certified afterwards (docs/architecture.md). The constants a
guarantee rests on are not knobs; they live in :mod:`lrenum.tolerances`.

Sources, later ones winning: the defaults below, the environment variable ``LRENUM_SETTINGS``
(a JSON object, e.g. ``LRENUM_SETTINGS='{"commit_seconds": 0.2}'``), then explicit arguments
(the command line's flags). :meth:`Settings.build` does exactly that; :class:`lrenum.core.frame.Frame`
carries the result and Ray tasks receive it whole.

Measurements quoted below: this project's 2-core x86_64 CPU and one H100, 2026-11-21 to -23
(experiments/results/).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Mapping, Optional

from .errors import InputError

ENV_VAR = "LRENUM_SETTINGS"


@dataclass(frozen=True)
class Settings:
    """The knobs of one run. Build with :meth:`build` (defaults, environment, flags) or
    :meth:`replace`; both check every value."""

    # ---------------------------------------------------------------- where
    device: Optional[str] = None       # 'cpu', 'gpu' or None (JAX's default device)

    # ---------------------------------------------------------------- parents and children per split
    batch_size: Optional[int] = None   # parents split together; None: lp_path_batch or vertex_path_batch
    lp_path_batch: int = 512           # LP path: tuned for the device LPs' lanes
    vertex_path_batch: int = 1024      # vertex path, whose cost per split is mostly numpy's per-call overhead:
                                       # 512 -> 1024 parents: 3-input 48-48-48 6.26 -> 5.74 s, 4-input
                                       # 16-16-16-16 3.89 -> 3.54 s (3 interleaved runs); 2048 no better
    first_probe: int = 16              # parents in the first split of a level, before its children per parent are known
    split_children_cpu: int = 16_384   # children one split may produce on a CPU: ~30 MB of rows at MNIST sizes
                                       # (512 MNIST parents x 450 children each held 11.8 GB without a cap)
    split_children_cpu_vertex: int = 8_192   # the same on the vertex path, where each child also carries its
                                       # vertex set: a 4-input 24-24-24 net on [-8, 8]^4 peaked at 346 -> 331 MB
                                       # with 16,384 -> 8,192, no slower; 4,096 was ~5% slower
    split_children_gpu: int = 32_768   # children one split may produce on a GPU: 262,144 held 8.6 GB of host memory on
                                       # mnist_10x12 (H100, 2026-11-23); emulated on the CPU, the first 120 s peaked at
                                       # 2.39 / 1.83 / 1.20 / 0.84 GB with 262,144 / 65,536 / 32,768 / 16,384
                                       # (results/splitcap-cpu-2026-12-03.md); the GPU's rate at 32,768 is to be measured
    assemble_chunk: int = 2_048        # children assembled (rows, maps, certificates, ranks) at once: bounds a split's
                                       # temporaries (~10 KB per child at d = 4); 8,192 -> 2,048: 4-input 24-24-24 on
                                       # [-8, 8]^4 353 -> 307 MB, MNIST 8-8 713-910 -> 614-646 MB and faster;
                                       # 1,024 and 512 were no leaner and slower
    piece_cells: int = 2_048           # one parent's cells built at once on the vertex path: 4,096 -> 2,048 -> 1,024 peak
                                       # MB on 4-input 48-48-48 [-0.3, 0.3]^4: 364-368 / 357-361 / 349-353; 1,024 and
                                       # smaller 5-7% slower on 3-input 48-48-48
    compact_over: int = 4_096          # waiting regions per layer kept whole; the rest are stored without rows and maps
                                       # and rebuilt when split: 4-input 24-24-24 on [-4, 4]^4 peaked at 367 instead of
                                       # 426 MB, no slower; 1,024 saved ~25 MB more but cost ~10% (rebuilds)

    # ---------------------------------------------------------------- the vertex path (low input dimension)
    vertex_path: Optional[bool] = None   # None: on box domains up to vertex_max_dim; True insists; False: LPs only
    vertex_max_dim: int = 6            # a vertex is stored once per cell around it (up to 2^d); at d = 8 (16-16,
                                       # box 0.2) the vertex path took 185 s against the LP path's 15 s
    vertex_cap: int = 1_024            # a parent or cell with more vertices goes to the LP path: the edge search is
                                       # quadratic in a cell's vertices
    pair_chunk: int = 1 << 21          # candidate edges formed at once (about 50 MB): bounds the edge search's memory
    vertex_proofs: bool = True         # trust certified vertex signs (proven vertex sets); False: every one-sided cell
                                       # is certified by a dual as for degenerate vertex sets (slower; for tests)
    vertex_band: float = 1e-9          # a vertex within vertex_band * (|G|_1 max|x| + |g|) of a hyperplane counts as on
                                       # it: interpolated vertices err by ~1e-15 relative per layer, so the band only
                                       # widens a proposal; every decision is certified after
    final_vertices: bool = False       # keep the final regions' vertex sets for the sinks (--geometry reads facets and
                                       # volumes off them); off, they are dropped after the last split (memory)
    vertex_resolve: float = 1e-4       # a vertex whose certified radius exceeds this * (max|x| + 1) is solved afresh
                                       # from its rows: radii compound along chains of crossings. 1e-10 -> 1e-4 (best of 2,
                                       # one process, 2026-12-03): b-d6-16x16 17.7 -> 12.9 s, b-d4-24x24x24 4.44 -> 3.86,
                                       # b-d4-16x16x16x16 4.46 -> 3.96, b-d5-12x6x6 0.49 -> 0.36; a few more cells
                                       # need a dual (91 of 10^6 decisions at d = 4), same counts

    # ---------------------------------------------------------------- LPs (proposals; certified afterwards)
    lp_batch: Optional[int] = None     # LPs per device call; None: 16,384 on a GPU, 256 on a CPU (64 for the box LP)
    lp_dtype: str = "float64"          # float32 proposes faster on some GPUs; float64 still certifies
    local_lp_dtype: str = "float32"    # the LP proposals of lrenum local's walks (lp_dtype there): at 784-64-64 around
                                       # 200 MNIST digits the pooled box LPs took 25 s in float32 against 56 s in
                                       # float64 (2-core CPU), same counts; every answer is certified alike
    lp_iters: int = 40                 # IPM iterations per lane: Mehrotra needs 10-30 here; lanes still open then go
                                       # to the certification path
    cut_tol: float = 1e-9              # an LP margin above cut_tol * domain scale proposes "non-empty": far above
                                       # float64 noise, far below any real region's size
    decide_tol: float = 1e-6           # an LP lane stops once |t*| is known to exceed decide_tol * scale
    geo_safety: float = 0.999          # the ball test uses distance < geo_safety * radius, keeping room inside
    pool_margin: float = 1e-9          # a pooled point counts for a side only beyond pool_margin * scale * |normal|
    radius_cap: float = 2.0            # geometric splits cap a witness ball at (distance + radius_cap * scale)
    clarabel_tol: float = 1e-12        # Clarabel's gap and feasibility tolerances: these LPs are the doubtful ones
    clarabel_max_iter: int = 200

    # ---------------------------------------------------------------- certificates
    certify_on_device: Optional[bool] = None   # the float64 witness and dual-bound certificates as jitted kernels beside
                                       # the ones that propose (lrenum.certify.device_certs); None: on a GPU only: on
                                       # the 2-core CPU the host's numpy was as fast (results/devicecert-cpu-2026-12-03)

    # ---------------------------------------------------------------- memory
    memory_limit: Optional[int] = None   # bytes a run may plan for; None: 3/4 of physical memory
    lp_chunk_bytes: int = 32 * 2 ** 20   # rows of one batch of LP problems (several copies are made while solving):
                                         # 256 MB let a 12-input 16-16 run peak at 3.7 GB

    # ---------------------------------------------------------------- datasets and workers
    commit_seconds: float = 1.0        # seconds between commits of a region file (each commit is one segment file)
    task_seconds: Optional[float] = 20.0   # a Ray task running this long hands its frontier back (None: never);
                                       # long enough that the per-task cost (0.1-0.5 s) stays small
    tasks_per_worker: int = 8          # first subtrees handed out per worker: one long subtree does not idle the rest
    task_retries: int = 3              # Ray re-runs a task whose worker died this many times
    verify_written: bool = False       # re-check every written file with the independent verifier (lrenum verify)
                                       # right after its merge, before the run returns; the test suite turns it on

    # ---------------------------------------------------------------- building and checking
    @classmethod
    def build(cls, env: Optional[Mapping[str, str]] = None, **flags) -> "Settings":
        """Defaults, then ``LRENUM_SETTINGS`` from ``env`` (default: the process environment),
        then ``flags`` whose value is not None. Bad names or values: one-line InputError."""
        env = os.environ if env is None else env
        values: dict = {}
        text = env.get(ENV_VAR, "").strip()
        if text:
            try:
                loaded = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InputError(f"{ENV_VAR} is not a JSON object ({exc.msg})") from None
            if not isinstance(loaded, dict):
                raise InputError(f"{ENV_VAR} must be a JSON object of settings, e.g. '{{\"commit_seconds\": 0.5}}'")
            values.update(loaded)
        values.update({k: v for k, v in flags.items() if v is not None})
        return cls().replace(**values)

    def replace(self, **changes) -> "Settings":
        """A copy with ``changes``, checked."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise InputError(f"unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(known))})")
        out = dataclasses.replace(self, **changes)
        out.check()
        return out

    def check(self) -> None:
        """Every value of the right type and range (InputError otherwise)."""
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is None:
                if "Optional" not in str(f.type):
                    raise InputError(f"setting {f.name} cannot be None")
                continue
            if f.name == "device":
                if v not in ("cpu", "gpu"):
                    raise InputError(f"setting device must be 'cpu' or 'gpu', not {v!r}")
            elif f.name in ("lp_dtype", "local_lp_dtype"):
                if v not in ("float32", "float64"):
                    raise InputError(f"setting {f.name} must be 'float32' or 'float64', not {v!r}")
            elif "bool" in str(f.type):
                if not isinstance(v, bool):
                    raise InputError(f"setting {f.name} must be true or false, not {v!r}")
            elif "int" in str(f.type):
                if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                    raise InputError(f"setting {f.name} must be a whole number >= 1, not {v!r}")
            elif "float" in str(f.type):
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0 or v != v or v == float("inf"):
                    raise InputError(f"setting {f.name} must be a finite number >= 0, not {v!r}")

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    # ---------------------------------------------------------------- derived values
    def parents_per_split(self, vertex_path: bool) -> int:
        """Parents split together on the path that runs."""
        if self.batch_size is not None:
            return self.batch_size
        return self.vertex_path_batch if vertex_path else self.lp_path_batch

    def children_per_split(self, platform: str, vertex_path: bool) -> int:
        """Children one split may produce (bounds its memory)."""
        if platform == "gpu":
            return self.split_children_gpu
        return self.split_children_cpu_vertex if vertex_path else self.split_children_cpu

    def lp_numpy_dtype(self):
        import numpy as np

        return np.float32 if self.lp_dtype == "float32" else np.float64


DEFAULT = Settings()
