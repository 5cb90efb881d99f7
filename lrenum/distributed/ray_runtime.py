"""Ray itself: importing it with one clear line when it is missing, starting or joining a runtime,
and the process-level care a run on a shared machine needs (GPU memory, BLAS and forks, cores).

Where Ray's own messages go: its start-up lines and the workers' output are kept off the
terminal (``log_to_driver=False``, ``logging_level=ERROR``; the workers' stdout and stderr are in
Ray's session logs, ``/tmp/ray/session_latest/logs/`` on the driver's machine), and while a run
uses Ray the driver's own stdout is pointed at stderr (:func:`stdout_to_stderr`), so that
``--json`` keeps stdout to one JSON object even when Ray reports a dead worker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from typing import Iterator, Optional

from .. import runtime
from ..errors import InputError

ADDRESS_TIMEOUT = 3.0     # seconds to reach a cluster's port before saying it is not there (Ray itself waits minutes)


def ray_module():
    """Ray, or one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise InputError("--workers needs Ray: pip install 'lrenum[ray]'") from None
    return ray


def check_address(address: str) -> None:
    """One clear line for an address nothing listens on, instead of Ray's minutes of retries."""
    import socket

    if address in ("auto", "local"):
        return
    host_port = address.split("://", 1)[-1]
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=ADDRESS_TIMEOUT):
            pass
    except ValueError:
        raise InputError(f"--ray-address must look like HOST:PORT, got {address!r}") from None
    except OSError as exc:
        raise InputError(f"cannot reach a Ray cluster at {address} ({exc.strerror or exc})") from None


def share_gpus() -> None:
    """GPU workers share devices with the driver: no process may grab 75% of a GPU's memory up
    front (JAX's default), or the second one on that GPU runs out. Must run before JAX starts."""
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def start_ray(workers: int, address: Optional[str], device: Optional[str] = "cpu"):
    """Start a local Ray runtime with ``workers`` CPUs, and the GPUs JAX sees (up to ``workers``)
    when ``device`` is a GPU (enumeration tasks then hold one GPU each), or join the cluster at
    ``address``."""
    ray = ray_module()
    if address:
        check_address(address)
    if ray.is_initialized():
        return ray
    share_gpus()
    gpus = 0 if address else min(workers, runtime.gpu_count(device))
    runtime_env = {"env_vars": {"XLA_PYTHON_CLIENT_PREALLOCATE": "false", "PYTHONPATH": os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))]
        + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}}
    try:
        with warnings.catch_warnings():
            # ray.init starts its processes by fork + exec, maybe while the top split's JAX threads
            # run (enumerate_sharded); the child execs at once, so JAX's fork warning does not apply
            warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
            if address:
                ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
            else:   # Ray's own start-up lines would break into lrenum's progress lines
                ray.init(num_cpus=workers, num_gpus=gpus, include_dashboard=False, log_to_driver=False,
                         logging_level=logging.ERROR, runtime_env=runtime_env)
    except Exception as exc:   # Ray raises ConnectionError, RuntimeError, ValueError ... on a bad address
        raise InputError(f"cannot start or join Ray{' at ' + address if address else ''}: "
                         f"{str(exc).splitlines()[0][:160]}") from None
    return ray


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """File descriptor 1 (and ``sys.stdout``) point at stderr for the duration: whatever Ray's
    driver-side code prints (its C++ core reports a dead worker on stdout) lands on stderr, and
    stdout is left to the one JSON object the command prints afterwards."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:              # no file descriptor 1 (an embedded interpreter): nothing to protect
        yield
        return
    os.dup2(2, 1)
    old = sys.stdout
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stdout = old
        os.dup2(saved, 1)
        os.close(saved)


@contextlib.contextmanager
def fork_safe_blas():
    """While ray.init forks its processes, the top split's thread must not be inside a threaded
    OpenBLAS call: OpenBLAS shuts its thread pool down before a fork, and a call in flight then
    spins forever (seen once in ~20 runs; tests/test_distributed.py reproduces it with os.fork).
    Yields True with BLAS held to one thread (threadpoolctl: the driver's matrices are small, so
    nothing is lost), False where threadpoolctl is missing: then the split must not overlap."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield False
        return
    with threadpool_limits(1, user_api="blas"):
        yield True


_PINNED: list = []   # this worker process's core lock (kept open for the process's lifetime)


def pin_to_a_free_core() -> None:
    """Give this worker process a core of its own, before JAX starts its thread pool.

    Measured on the 2-core CPU: one enumeration pinned to one core ran *faster* (136 s) than the
    same run free on both (150 s), and two unpinned workers oversubscribed the cores (their XLA
    pools both span all cores: 1.04x). Cores are claimed with per-core lock files, so workers on one
    machine never share one; with more workers than cores the rest stay unpinned.
    """
    if _PINNED or not hasattr(os, "sched_setaffinity"):
        return
    import fcntl
    import tempfile

    cores = sorted(os.sched_getaffinity(0))
    for core in cores:
        fd = os.open(os.path.join(tempfile.gettempdir(), f"lrenum-core-{core}.lock"), os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        os.sched_setaffinity(0, {core})   # threads started later (JAX's pool, at its first use) inherit it
        _PINNED.append(fd)
        return
    _PINNED.append(None)
