"""JAX set-up: float64 inside lrenum only, the persistent compilation cache, device choice.

lrenum certifies in float64, so its device kernels run with 64-bit types. That is switched on
with JAX's supported context manager (:func:`jax.enable_x64`) around lrenum's own calls only
(:func:`on_device`); importing lrenum leaves the process-wide setting of a caller untouched.
Compiled kernels are kept in a persistent cache (``$LRENUM_CACHE_DIR`` or
``~/.cache/lrenum/jax``) so that a second run of the command line does not compile again.
"""

from __future__ import annotations

import contextlib
import threading
import os
from typing import Iterator, Optional

import jax

from .errors import DeviceOutOfMemory, InputError

_cache_dir = os.environ.get("LRENUM_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "lrenum", "jax"))
if not jax.config.jax_compilation_cache_dir:   # never override a cache the caller configured
    try:
        os.makedirs(_cache_dir, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", _cache_dir)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    except (OSError, AttributeError):  # read-only home or an older JAX: run without the cache
        pass


def select_device(kind: Optional[str]):
    """The JAX device for ``kind`` ('cpu', 'gpu' or None for JAX's default)."""
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


def gpu_count(kind: Optional[str]) -> int:
    """GPUs a run on device ``kind`` ('gpu', or None where JAX's default is a GPU) can use; 0 otherwise."""
    if kind == "cpu" or (kind is None and jax.default_backend() == "cpu"):
        return 0
    try:
        return len(jax.devices("gpu"))
    except RuntimeError:
        return 0


def describe_device(device) -> str:
    """'cpu' or 'gpu:0' (platform and index), as the summaries print it."""
    if device.platform == "cpu":
        return "cpu"
    return f"{device.platform}:{device.id}"


@contextlib.contextmanager
def on_device(device) -> Iterator[None]:
    """Run lrenum's kernels on ``device`` with 64-bit types enabled (scoped, not global)."""
    with jax.enable_x64(True), jax.default_device(device):
        yield


@contextlib.contextmanager
def device_errors() -> Iterator[None]:
    """Out of memory, on the device or the host, becomes :class:`DeviceOutOfMemory` (one line,
    its own exit code). XLA reports it as a :class:`jax.errors.JaxRuntimeError` whose status is
    RESOURCE_EXHAUSTED (the status is the message's first word; XLA has no subclass for it)."""
    try:
        yield
    except jax.errors.JaxRuntimeError as exc:
        if str(exc).lstrip().startswith("RESOURCE_EXHAUSTED"):
            raise DeviceOutOfMemory("the device ran out of memory (try a smaller --batch-size)") from None
        raise
    except MemoryError:
        raise DeviceOutOfMemory("out of host memory (try a smaller --batch-size)") from None


class DeviceClock:
    """Counts device calls and the seconds spent in them while active (the host's share is the
    rest of a run): what ``--json`` reports as ``device_calls``, ``device_seconds`` and
    ``host_seconds``, so that the split's structure is measurable on any machine. A device call
    is timed from its dispatch until its results are on the host (:func:`device_call`)."""

    _active: list = []

    def __init__(self) -> None:
        self.calls = 0
        self.seconds = 0.0

    def __enter__(self) -> "DeviceClock":
        DeviceClock._active.append(self)
        return self

    def __exit__(self, *exc) -> None:
        DeviceClock._active.remove(self)


_ONE_CALL_AT_A_TIME = threading.RLock()   # see device_call


@contextlib.contextmanager
def device_call(device) -> Iterator[None]:
    """One kernel call on ``device`` (64-bit types on, as :func:`on_device`), counted and timed by
    the active :class:`DeviceClock`s; the block should end with the results on the host
    (``np.asarray``), so that the time includes the computation, not only its dispatch.

    Calls from different threads (the concurrent walks of :mod:`lrenum.counting.local`) run one
    at a time: two box-LP executions started from two threads on the 2-core CPU both waited
    forever at 0% CPU (XLA:CPU, jax 0.10.2); a walk's host work still overlaps the others' calls."""
    import time

    with _ONE_CALL_AT_A_TIME:
        t0 = time.perf_counter()      # the call's own time, not the wait for another thread's
        with on_device(device):
            yield
    dt = time.perf_counter() - t0
    for clock in DeviceClock._active:
        clock.calls += 1
        clock.seconds += dt


class CompileCounter:
    """Counts XLA compilations (and their seconds) while active, through ``jax.monitoring``.

    The listener is registered once per process and forwards to the active counters, so
    creating many counters does not pile up listeners.
    """

    _active: list = []
    _registered = False

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0

    @classmethod
    def _on_event(cls, name: str, secs: float, **_kw) -> None:
        if name.endswith("backend_compile_duration"):
            for counter in cls._active:
                counter.count += 1
                counter.seconds += secs

    def __enter__(self) -> "CompileCounter":
        if not CompileCounter._registered:
            from jax import monitoring

            monitoring.register_event_duration_secs_listener(CompileCounter._on_event)
            CompileCounter._registered = True
        CompileCounter._active.append(self)
        return self

    def __exit__(self, *exc) -> None:
        CompileCounter._active.remove(self)
