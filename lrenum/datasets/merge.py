"""The end of a run: the header's layout and every committed segment merged, in order, into the
complete file, with children counted per region and the completion mark as the last write.

The merge runs through :func:`lrenum.datasets.storage.written`, so the file it makes replaces the
header only once it is whole and synced; integer tables are compressed in threads
(:mod:`lrenum.datasets.chunks`)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional

import h5py
import numpy as np

from .chunks import ChunkedAppender, merge_threads
from .layout import PER_LAYER, SEGMENTS, segment_rows
from .storage import Storage, written

FINAL_NAMES = {"final_pattern": "pattern", "final_rank": "rank", "final_A": "A", "final_A_basis": "A_basis",
               "final_c": "c"}   # segment column -> table of group ``final``


def _add_counts(acc: Optional[np.ndarray], ids: np.ndarray) -> np.ndarray:
    """``acc`` plus the occurrences of each id in ``ids`` (the longer of the two lengths)."""
    c = np.bincount(ids)
    if acc is None:
        return c
    if c.size > acc.size:
        c[:acc.size] += acc
        return c
    acc[:c.size] += c
    return acc


def merge_segments(storage: Storage, path: str, segments: list[str], n_layers: int, attrs: dict,
                   layout: Callable[[h5py.File], None]) -> dict:
    """Write the complete file ``path`` from ``layout`` (header and empty tables) and the segment
    files, in order; ``attrs`` (the final attributes) are written last, ``complete = True`` after
    them. Returns the attributes as written."""
    L = n_layers
    threads = merge_threads()
    segment_table = []
    attrs = dict(attrs)
    with written(storage, path) as out, ThreadPoolExecutor(threads) as pool:
        layout(out)
        tables: dict = {}
        children: dict = {}      # layer l -> children per region, counted from layer l + 1's parents as they pass

        def table(key: str) -> ChunkedAppender:
            if key not in tables:
                tables[key] = ChunkedAppender(out[key], pool, threads)
            return tables[key]

        for seg_path in segments:
            with h5py.File(seg_path, "r") as seg:
                rows = [0] * L
                for l in range(1, L + 1):
                    if f"layer_{l}" not in seg:
                        continue
                    src = seg[f"layer_{l}"]
                    for name in PER_LAYER:
                        part = segment_rows(seg, l, name)
                        table(f"layer_{l}/{name}").append(part)
                        if name == "parent":
                            rows[l - 1] = len(part)
                            if l > 1:
                                children[l - 1] = _add_counts(children.get(l - 1), part)
                    if l == L:
                        for name, target in FINAL_NAMES.items():
                            if name in src:
                                table(f"final/{target}").append(src[name][:])
                segment_table.append(rows)
        for appender in tables.values():
            appender.close()
        for l in range(1, L):   # children counted from the parents of the next layer
            n = out[f"layer_{l}/parent"].shape[0]
            counts = np.zeros(n, np.int64)
            seen = children.get(l, counts)[:n]
            counts[:seen.size] = seen
            n_children = table(f"layer_{l}/n_children")
            n_children.append(counts.astype(np.int32))
            n_children.close()
        out.create_dataset(SEGMENTS, data=np.array(segment_table, np.int64).reshape(-1, L))
        attrs["committed"] = np.array([1] + [out[f"layer_{l}/parent"].shape[0] for l in range(1, L + 1)],
                                      dtype=np.int64)
        attrs["root_children"] = int(attrs["committed"][1])
        attrs["complete"] = True
        for key, value in attrs.items():
            if key != "complete":
                out.attrs[key] = value
        out.flush()
        out.attrs["complete"] = True       # the last write: a file that says complete holds every segment
    return attrs
