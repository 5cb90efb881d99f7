"""Appending rows to compressed HDF5 tables with the compression spread over threads.

The final merge writes every region once more, its integer tables compressed (gzip + shuffle;
float tables are stored unfiltered: writer.table_filters); HDF5 compresses one
chunk at a time in the calling thread, and that was the merge's whole cost (2.3 s of a 40 s run
with 923,463 regions, all of it serial in a Ray run, where the workers' cores sit idle). Here the
rows are cut into the table's own chunks, each chunk is shuffled and deflated in a thread pool
(numpy's copy and zlib release the GIL) and written as it is with ``write_direct_chunk``. The bytes
are what HDF5's own filters (shuffle, then deflate, in that order: h5py's pipeline) would write,
so any HDF5 reader reads the file as before; a table with other filters takes the plain path.
"""

from __future__ import annotations

import os
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Optional

import h5py
import numpy as np

IN_FLIGHT_PER_THREAD = 4     # chunks compressed ahead of the writes: bounds the memory to a few MB per thread


def merge_threads() -> int:
    """Threads for the merge's compression: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:       # not on Linux
        return max(1, os.cpu_count() or 1)


def _shuffle_and_deflate(chunk: np.ndarray, level: int, shuffle: bool) -> bytes:
    """One chunk as HDF5's shuffle filter (byte k of every element together) then deflate store it."""
    raw = chunk.view(np.uint8).reshape(-1, chunk.dtype.itemsize)
    if shuffle and chunk.dtype.itemsize > 1:
        raw = np.ascontiguousarray(raw.T)
    return zlib.compress(raw.data if raw.flags.c_contiguous else raw.tobytes(), level)


class ChunkedAppender:
    """Rows appended to one table, written a whole chunk at a time, compressed by ``pool``."""

    def __init__(self, ds: h5py.Dataset, pool: Optional[ThreadPoolExecutor], threads: int = 1):
        self.ds = ds
        self.ahead = IN_FLIGHT_PER_THREAD * max(1, threads)
        self.rows = ds.chunks[0] if ds.chunks else 0
        direct = (pool is not None and self.rows > 0 and ds.compression == "gzip"
                  and not ds.fletcher32 and ds.scaleoffset is None and ds.chunks[1:] == ds.shape[1:])
        self.pool = pool if direct else None
        self.level = int(ds.compression_opts or 4) if direct else 0
        self.shuffle = bool(ds.shuffle)
        self.buffer: list[np.ndarray] = []
        self.buffered = 0
        self.written = ds.shape[0]       # rows already in the table (a whole number of chunks, or the table is plain)
        self.queue: deque[tuple[int, int, Future]] = deque()
        if self.written % max(1, self.rows):
            self.pool = None             # a partial last chunk already stored: append through HDF5

    def append(self, rows: np.ndarray) -> None:
        if rows.shape[0] == 0:
            return
        rows = np.ascontiguousarray(rows, dtype=self.ds.dtype)
        if self.pool is None:
            n = self.ds.shape[0]
            self.ds.resize(n + rows.shape[0], axis=0)
            self.ds[n:] = rows
            return
        self.buffer.append(rows)
        self.buffered += rows.shape[0]
        if self.buffered >= self.rows:
            whole = np.concatenate(self.buffer)
            full = (whole.shape[0] // self.rows) * self.rows
            for s in range(0, full, self.rows):
                self._submit(whole[s:s + self.rows], self.rows)
            rest = whole[full:]
            self.buffer, self.buffered = ([rest] if rest.shape[0] else []), rest.shape[0]

    def _submit(self, chunk: np.ndarray, valid: int) -> None:
        self.queue.append((self.written, valid, self.pool.submit(_shuffle_and_deflate, chunk, self.level, self.shuffle)))
        self.written += valid
        while len(self.queue) > self.ahead:
            self._write_oldest()

    def _write_oldest(self) -> None:
        start, valid, fut = self.queue.popleft()
        if self.ds.shape[0] < start + valid:
            self.ds.resize(start + valid, axis=0)
        self.ds.id.write_direct_chunk((start,) + (0,) * (self.ds.ndim - 1), fut.result())

    def close(self) -> None:
        """Write the last, partial chunk (padded with zeros to the chunk's size, as HDF5 stores an
        edge chunk) and everything still in flight."""
        if self.pool is not None and self.buffered:
            rest = np.concatenate(self.buffer)
            padded = np.zeros((self.rows,) + rest.shape[1:], self.ds.dtype)
            padded[:rest.shape[0]] = rest
            self._submit(padded, rest.shape[0])
            self.buffer, self.buffered = [], 0
        while self.queue:
            self._write_oldest()
