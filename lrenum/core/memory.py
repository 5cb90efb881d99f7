"""Memory budget: estimates checked *before* allocating, so that a network too large for the
machine ends in one clear line instead of a numpy allocation traceback.

The budget is 3/4 of physical memory (the rest is left to JAX, the OS and the output writer), or
the run's ``Settings.memory_limit`` bytes when set (tests use it to provoke the check cheaply).
"""

from __future__ import annotations

import os

from ..errors import InputError
from ..settings import Settings


def budget_bytes(settings: Settings) -> int:
    if settings.memory_limit is not None:
        return settings.memory_limit
    try:
        return int(0.75 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):   # no sysconf: assume a modest laptop
        return 4 * 2 ** 30


def require(settings: Settings, nbytes: float, what: str, advice: str) -> None:
    """Raise a one-line :class:`InputError` if ``nbytes`` exceed the budget."""
    limit = budget_bytes(settings)
    if nbytes > limit:
        raise InputError(f"{what} needs about {_gb(nbytes)} of memory, more than the {_gb(limit)} available; {advice}")


def _gb(n: float) -> str:
    return f"{n / 2 ** 30:.1f} GB" if n >= 2 ** 28 else f"{n / 2 ** 20:.0f} MB"


def check_run(settings: Settings, n_neurons: int, basis_rank: int, widest: int, batch_size: int) -> None:
    """Before the walk starts: one batch of parents and their first children must fit."""
    per_region = 8 * n_neurons * (basis_rank + 4) + 8 * widest * (basis_rank + 2)
    require(settings, 3 * batch_size * per_region, f"one batch of {batch_size} regions of {n_neurons} neurons",
            "use a smaller --batch-size" if batch_size > 1 else "the network is too large for exact enumeration "
            "on this machine: use `lrenum estimate` or `lrenum bounds`")


def lp_chunk(settings: Settings, n_rows: int, basis_rank: int) -> int:
    """How many LPs with ``n_rows`` rows to build at once so their arrays stay within the settings' lp_chunk_bytes."""
    return max(1, settings.lp_chunk_bytes // (8 * max(1, n_rows) * (basis_rank + 4)))


def check_cells(settings: Settings, n_cells: int, n_neurons: int, layer: int, batch_size: int,
                extra_bytes: float = 0.0) -> None:
    """While arranging: the cells of one batch of parents grow with every hyperplane added
    (``extra_bytes``: what else grows with them, such as the vertex path's vertices)."""
    require(settings, float(n_cells) * (n_neurons + 64) + extra_bytes, f"splitting {batch_size} parents at layer {layer} "
            f"(more than {n_cells:,} cells of {n_neurons} neurons each)",
            "use a smaller --batch-size, or count with `lrenum estimate` / `lrenum bounds`")
