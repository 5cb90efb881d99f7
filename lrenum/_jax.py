"""JAX set-up shared by lrenum: float64, the persistent compilation cache, device choice.

lrenum certifies in float64, so importing it switches on ``jax_enable_x64`` (arrays that
a caller creates without an explicit dtype become 64-bit). Compiled kernels are kept in a
persistent cache (``$LRENUM_CACHE_DIR`` or ``~/.cache/lrenum/jax``) so that a second run
of the command line does not pay for compilation again.
"""

from __future__ import annotations

import os

import jax

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
