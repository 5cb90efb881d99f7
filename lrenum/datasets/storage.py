"""The region files' one door to the file system: every byte the writer puts on disk, every
rename and every removal goes through a :class:`Storage`.

Why a door: a write can fail at any byte (a full disk, an I/O error, a directory that vanished),
and the file a run leaves behind must then still be what it claims to be (incomplete, resumable).
HDF5 files are written through Python file objects (h5py's file-object driver), so a failed
write comes back as an ordinary ``OSError`` instead of an HDF5 error inside a half-closed file
(which crashed the interpreter at exit); and tests swap in a storage that fails on purpose
(:class:`FaultyStorage`) at any stage of a run.

Durability: :func:`written` writes ``path.tmp``, flushes and fsyncs it, renames it over ``path``
and fsyncs the directory, so after a crash ``path`` is the old file or the whole new one.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
from contextlib import contextmanager
from typing import BinaryIO, Iterator, Optional

import h5py

from ..errors import WriteError


class Storage:
    """Plain files on the local file system."""

    def create(self, path: str) -> BinaryIO:
        """A new file opened for writing and reading back (h5py reads its own metadata)."""
        return open(path, "w+b")

    def reopen(self, path: str) -> BinaryIO:
        """An existing file opened for changes (reading and writing in place)."""
        return open(path, "r+b")

    def sync(self, f: BinaryIO) -> None:
        """Everything written to ``f`` on the disk (flush, then fsync)."""
        f.flush()
        os.fsync(f.fileno())

    def replace(self, src: str, dst: str) -> None:
        os.replace(src, dst)

    def sync_dir(self, path: str) -> None:
        """A rename inside ``path`` made durable. File systems that cannot fsync a directory
        (EINVAL, EBADF) have nothing to make durable there."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
                raise
        finally:
            os.close(fd)

    def remove(self, path: str) -> None:
        """Remove a file if it exists (best effort: used while cleaning up after a fault)."""
        try:
            os.remove(path)
        except FileNotFoundError:
            pass

    def remove_tree(self, path: str) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def makedirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def copy(self, src: str, dst: str) -> None:
        """``src``'s bytes into a new file ``dst`` through :meth:`create` (faults apply), synced."""
        with open(src, "rb") as fin:
            fout = self.create(dst)
            try:
                shutil.copyfileobj(fin, fout, 1 << 20)
                self.sync(fout)
            finally:
                fout.close()


class _FileProxy(io.RawIOBase):
    """A binary file object that passes every call on to ``raw`` (what h5py's file-object driver
    needs: read, write, seek, tell, truncate, flush). Subclasses watch the writes."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = 0) -> int:
        return self.raw.seek(pos, whence)

    def tell(self) -> int:
        return self.raw.tell()

    def readinto(self, b) -> int:
        return self.raw.readinto(b)

    def write(self, b) -> int:
        return self.raw.write(b)

    def truncate(self, size: Optional[int] = None) -> int:
        return self.raw.truncate(size)

    def flush(self) -> None:
        if not self.raw.closed:
            self.raw.flush()

    def fileno(self) -> int:
        return self.raw.fileno()


class _CountingFile(_FileProxy):
    """A real file whose writes are charged to a :class:`FaultyStorage` first (which may refuse)."""

    def __init__(self, path: str, storage: "FaultyStorage", mode: str):
        super().__init__(open(path, mode))
        self.storage = storage

    def write(self, b) -> int:
        self.storage.spend(len(b))
        return self.raw.write(b)

    def close(self) -> None:
        if not self.raw.closed:
            self.raw.close()
        super().close()


class FaultyStorage(Storage):
    """A storage that fails on purpose, for tests: writes raise ``OSError(errno_)`` once
    ``fail_after_bytes`` bytes were written in all (None: never), and renames whose target's
    name is ``fail_rename`` (or starts with it) raise ``OSError(EIO)`` after ``renames_first``
    such renames went through. ``heal()`` ends the faults (space freed). ``log`` lists every file
    created with the bytes written before it, so a test can place a fault at a stage."""

    def __init__(self, fail_after_bytes: Optional[int] = None, errno_: int = errno.ENOSPC,
                 fail_rename: Optional[str] = None, renames_first: int = 0):
        self.budget, self.errno_, self.fail_rename = fail_after_bytes, errno_, fail_rename
        self.renames_first = renames_first
        self.written = 0
        self.faults = 0
        self.log: list[tuple[str, int]] = []

    def heal(self) -> None:
        self.budget, self.fail_rename = None, None

    def spend(self, n: int) -> None:
        if self.budget is not None and self.written + n > self.budget:
            self.faults += 1
            raise OSError(self.errno_, os.strerror(self.errno_))
        self.written += n

    def create(self, path: str) -> BinaryIO:
        self.log.append((os.path.basename(path), self.written))
        return _CountingFile(path, self, "w+b")

    def reopen(self, path: str) -> BinaryIO:
        return _CountingFile(path, self, "r+b")

    def replace(self, src: str, dst: str) -> None:
        if self.fail_rename is not None and os.path.basename(dst).startswith(self.fail_rename):
            if self.renames_first > 0:
                self.renames_first -= 1
            else:
                self.faults += 1
                raise OSError(errno.EIO, os.strerror(errno.EIO))
        super().replace(src, dst)


class _Guarded(_FileProxy):
    """A file object for h5py that remembers the first write failure and, after it, discards
    every further write. HDF5 aborts the operation that failed, and can then close the file and
    every object in it cleanly (its closing flushes would fail the same way and leave objects
    that crash the interpreter when they are freed); the caller raises the remembered failure."""

    def __init__(self, raw: BinaryIO):
        super().__init__(raw)
        self.failed: Optional[OSError] = None

    def _guard(self, call, *args):
        try:
            return call(*args)
        except OSError as exc:
            self.failed = exc
            raise

    def write(self, b) -> int:
        return len(b) if self.failed is not None else self._guard(self.raw.write, b)

    def truncate(self, size: Optional[int] = None) -> int:
        if self.failed is not None:
            return self.raw.tell() if size is None else size
        return self._guard(self.raw.truncate, size)

    def flush(self) -> None:
        if self.failed is None and not self.raw.closed:
            self._guard(self.raw.flush)

    def close(self) -> None:   # the raw file is closed by its owner (written / rewritten)
        io.RawIOBase.close(self)


@contextmanager
def _through(storage: Storage, raw: BinaryIO, tmp: str, path: str, mode: str) -> Iterator[h5py.File]:
    """An HDF5 file on ``raw`` (the file ``tmp``), synced and renamed over ``path`` on success;
    on any failure ``tmp`` is removed and the first write failure (or the error) propagates."""
    guard = _Guarded(raw)
    try:
        h5 = h5py.File(guard, mode)
        try:
            yield h5
        finally:
            h5.close()               # after a fault the guard discards the rest: every object closes cleanly
        if guard.failed is not None:
            raise guard.failed
        storage.sync(raw)
        raw.close()
        storage.replace(tmp, path)
    except BaseException as exc:
        _close_quietly(raw)
        storage.remove(tmp)
        if guard.failed is not None and exc is not guard.failed:
            raise guard.failed from None     # HDF5's wrapping of it says less than the OSError itself
        raise
    storage.sync_dir(os.path.dirname(os.path.abspath(path)))


@contextmanager
def written(storage: Storage, path: str) -> Iterator[h5py.File]:
    """An HDF5 file written whole or not at all: yields the new file (``path.tmp``); on leaving
    it is closed, synced and renamed over ``path``, and the directory is synced. Any failure
    removes the temporary file and propagates (a write failure as the ``OSError`` it was)."""
    tmp = path + ".tmp"
    raw = storage.create(tmp)
    with _through(storage, raw, tmp, path, "w") as h5:
        yield h5


@contextmanager
def rewritten(storage: Storage, path: str) -> Iterator[h5py.File]:
    """An existing HDF5 file changed whole or not at all: its copy (``path.tmp``) is opened for
    changes and yielded; on leaving it is synced and renamed over ``path``. Any failure removes
    the copy and leaves ``path`` as it was."""
    tmp = path + ".tmp"
    try:
        storage.copy(path, tmp)
        raw = storage.reopen(tmp)
    except BaseException:
        storage.remove(tmp)
        raise
    with _through(storage, raw, tmp, path, "r+") as h5:
        yield h5


def _close_quietly(fobj) -> None:
    try:
        fobj.close()
    except Exception:            # the file is being discarded after a fault: its close may fail the same way
        pass


def describe(exc: BaseException) -> str:
    """A short cause for a write failure: 'no space left on device', 'input/output error', ..."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return os.strerror(exc.errno).lower()
    text = str(exc)
    for code in (errno.ENOSPC, errno.EIO, errno.EROFS, errno.EACCES, errno.ENOENT, errno.EDQUOT):
        if os.strerror(code) in text or f"errno = {code}," in text:
            return os.strerror(code).lower()
    return (text.splitlines() or [type(exc).__name__])[0][:160]


def write_error(path: str, exc: BaseException, committed: Optional[int] = None) -> WriteError:
    """The one line a failed write ends in: the file, the cause, what was kept and what to do."""
    full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
    advice = "free space and rerun with --resume" if full else "rerun with --resume once the fault is mended"
    where = f" ({committed} regions committed; {advice})" if committed is not None else ""
    return WriteError(f"writing {path}: {describe(exc)}{where}")
