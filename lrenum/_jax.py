"""JAX set-up shared by lrenum: float64, the persistent compilation cache, device choice.

lrenum certifies in float64, so importing it switches on ``jax_enable_x64`` (arrays that
a caller creates without an explicit dtype become 64-bit). Compiled kernels are kept in a
persistent cache (``$LRENUM_CACHE_DIR`` or ``~/.cache/lrenum/jax``) so that a second run
of the command line does not pay for compilation again.
"""

from __future__ import annotations

import os

# XLA's multi-threaded Eigen pool on the CPU deadlocked lrenum's vmapped LP kernel here:
# twice in long benchmark runs the process sat at 0% CPU in BlockUntilReady (py-spy --native),
# the same symptom as https://github.com/PyAutoLabs/PyAutoFit/issues/1528, where this flag
# removed the hangs. It cost nothing measurable on the bundled example (1.12-1.23 s with the
# pool, 1.11-1.17 s without). Set before JAX creates its CPU client; an explicit setting wins.
if "xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

_cache_dir = os.environ.get("LRENUM_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "lrenum", "jax"))
try:
    os.makedirs(_cache_dir, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", _cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
except (OSError, AttributeError):  # read-only home or an older JAX: run without the cache
    pass


def select_device(kind: str | None):
    """The JAX device for ``kind`` ('cpu', 'gpu' or None for JAX's default)."""
    from .errors import InputError

    if kind is None:
        return jax.devices()[0]
    try:
        devices = jax.devices(kind)
    except RuntimeError:
        devices = []
    if not devices:
        raise InputError(f"no JAX device of kind '{kind}' is available (JAX sees: "
                         f"{', '.join(sorted({d.platform for d in jax.devices()}))})")
    return devices[0]


def describe_device(device) -> str:
    kind = getattr(device, "device_kind", "") or ""
    return f"{device.platform}:{kind}".rstrip(":")
