"""The one rule for reading a store's files, followed by every reader (issue #13).

A store is a folder; a key (``lon/c/0/1/0/0``) names a file in it. Every reader (the direct
chunk reader, zarr-python's reads through `ConfinedLocalStore`, hence rendering, time
series, feature info, EDR and exports, and the ``/zarr`` HTTP files) opens files with
`StoreFiles`, which decides:

- a key whose file, symlinks resolved, lies inside the store folder (itself resolved, so a
  store folder may be a symlink) is read;
- a key with no file (never written, or a dangling link) is missing: Zarr's fill value;
- a key whose file resolves outside the store is **refused**: `OutsideStore` (HTTP 403, code
  ``OutsideStore``), never read, never treated as data or as missing. A link out of a store
  is a mistake or an attack, and a refusal says so where silently missing data would let a
  forecaster read a map with a hole as "no rain" (web servers refuse such links alike, as
  nginx's ``disable_symlinks``). The refusal names the key, not where the link leads.

A chunk that is there but cannot be decoded (damaged, truncated) fails as `StoreError`
(HTTP 500, code ``StorageError``) naming the store and variable; the server log has the
details, the answer no path and no traceback (`StoreFiles.reading`).

Hard links cannot be told from the store's own files; the rule is about symbolic links.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import os
import struct
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from obstore.exceptions import BaseError as ObjectStoreError
from zarr.abc.store import ByteRequest, OffsetByteRequest, RangeByteRequest, SuffixByteRequest
from zarr.core.buffer import Buffer, BufferPrototype, default_buffer_prototype
from zarr.storage import LocalStore

from fewsmap.errors import FewsmapError, StorageUnavailable, StoreError

log = logging.getLogger(__name__)
# Linux names the file an open descriptor reaches: one readlink (~4 µs) checks it, race-free.
_FD_LINKS = "/proc/self/fd"
_HAS_FD_LINKS = Path(_FD_LINKS).is_dir()
# openat2(2) (Linux 5.6+): the same syscall on every architecture, and its RESOLVE_NO_SYMLINKS.
_SYS_OPENAT2, _AT_FDCWD, _RESOLVE_NO_SYMLINKS = 437, -100, 0x04
# What decoding a damaged chunk raises (blosc, numcodecs, numpy reshapes, short reads);
# an index error is a bug of ours and is not among them.
DECODE_FAILURES: tuple[type[Exception], ...] = (
    OSError, ValueError, RuntimeError, SystemError, struct.error, MemoryError, OverflowError)
MISSING = (FileNotFoundError, IsADirectoryError, NotADirectoryError)


class OutsideStore(StoreError):
    """A key of a store names a file outside the store folder (a symlink leading out)."""

    ogc_code = "OutsideStore"


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


def _symlink_free_opener() -> Callable[[str], int] | None:
    """``openat2`` refusing any symlink on the path (ELOOP), or None where the kernel (or a
    seccomp filter) does not offer it. A store holds no symlinks as fewsmap writes it, so
    this one syscall (~0.7 µs more than ``open``, against ~4 µs for the readlink check)
    opens nearly every file; a path with a link takes the full check."""
    try:
        syscall = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError):
        return None
    syscall.restype = ctypes.c_long
    how = _OpenHow(os.O_RDONLY | os.O_CLOEXEC, 0, _RESOLVE_NO_SYMLINKS)
    number, cwd = ctypes.c_long(_SYS_OPENAT2), ctypes.c_long(_AT_FDCWD)
    how_ref, how_size = ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how))

    def open_symlink_free(path: str) -> int:
        fd = int(syscall(number, cwd, ctypes.c_char_p(os.fsencode(path)), how_ref, how_size))
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), path)  # FileNotFoundError for ENOENT …
        return fd

    try:
        os.close(open_symlink_free("/"))
    except OSError:
        return None
    return open_symlink_free


_open_symlink_free = _symlink_free_opener() if sys.platform == "linux" else None


def store_name(path: Path | str) -> str:
    """Name a store by its folder, without a ``.zarr`` suffix."""
    return Path(path).name.removesuffix(".zarr")


class StoreFiles:
    """The files of one store folder, opened under the rule of this module."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.name = store_name(self.path)
        self.root = os.path.realpath(self.path)

    def open(self, key: str) -> int:
        """Open the file ``key`` names, read-only; the caller closes the descriptor.

        Raises
        ------
        FileNotFoundError
            (or another of `MISSING`) if there is no such file: a missing key.
        OutsideStore
            If the file lies outside the store folder.
        """
        path = f"{self.root}/{key}"
        if _open_symlink_free is not None:
            try:
                return _open_symlink_free(path)  # no link on the way: inside the store
            except OSError as exc:
                if exc.errno != errno.ELOOP:
                    raise
        return self._open_checked(key, path)

    def _open_checked(self, key: str, path: str) -> int:
        """Open ``path`` following links, then check where the descriptor leads."""
        if not _HAS_FD_LINKS:  # elsewhere: resolve first (a link swapped in between wins)
            self._confine(key, os.path.realpath(path))
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a loop of links reaches no file: missing
                raise FileNotFoundError(errno.ENOENT, "a loop of links", key) from exc
            raise
        if _HAS_FD_LINKS:
            try:
                self._confine(key, os.readlink(f"{_FD_LINKS}/{fd}"))  # noqa: PTH115  (hot path: no Path object)
            except BaseException:
                os.close(fd)
                raise
        return fd

    def resolve(self, key: str) -> Path:
        """The real path of the existing file ``key`` names (to serve it by path).

        Raises
        ------
        FileNotFoundError
            If there is no such file (a symlink loop included).
        OutsideStore
            If the file lies outside the store folder.
        """
        try:
            real = os.path.realpath(f"{self.root}/{key}", strict=True)
        except OSError as exc:  # a loop is ELOOP
            raise FileNotFoundError(key) from exc
        self._confine(key, real)
        return Path(real)

    def reading(self, variable: str) -> AbstractContextManager[None]:
        """Turn a failure to read or decode ``variable``'s chunks into a `StoreError`."""
        return reading(self.name, variable)

    def _confine(self, key: str, real: str) -> None:
        if real != self.root and not real.startswith(self.root + os.sep):
            log.warning("store %s: %r leads out of the store; refused", self.name, key)
            raise OutsideStore(f"{key[:120]!r} of store {self.name!r} is a link leading out "
                               "of the store; it is not read")


@contextmanager
def reading(store: str, variable: str) -> Iterator[None]:
    """Turn a failure to read or decode ``variable``'s chunks into a `StoreError`.

    Raises
    ------
    StorageUnavailable
        If object storage did not answer: the client may retry.
    StoreError
        If the body fails in a way a damaged chunk makes it fail.
    """
    try:
        yield
    except FewsmapError:
        raise
    except ObjectStoreError as exc:
        log.error("store %s: variable %s: object storage failed", store, variable,
                  exc_info=exc)
        raise StorageUnavailable(
            f"variable {variable[:80]!r} of store {store!r} cannot be read now: its object "
            "storage did not answer (the server log has the details)") from None
    except DECODE_FAILURES as exc:
        log.error("store %s: variable %s cannot be read", store, variable, exc_info=exc)
        raise StoreError(
            f"variable {variable[:80]!r} of store {store!r} cannot be read: a chunk "
            "is damaged or unreadable (the server log has the details)") from None


def read_file(files: StoreFiles, key: str, byte_range: ByteRequest | None = None) -> bytes | None:
    """The bytes of ``key`` (or of ``byte_range`` of it); None for a missing key.

    Raises
    ------
    OutsideStore
        If the file lies outside the store folder.
    """
    try:
        fd = files.open(key)
    except MISSING:
        return None
    try:
        size = os.fstat(fd).st_size
        start, stop = _span(byte_range, size)
        return os.pread(fd, max(stop - start, 0), start)
    finally:
        os.close(fd)


def _span(byte_range: ByteRequest | None, size: int) -> tuple[int, int]:
    if byte_range is None:
        return 0, size
    if isinstance(byte_range, RangeByteRequest):
        return byte_range.start, min(byte_range.end, size)
    if isinstance(byte_range, OffsetByteRequest):
        return byte_range.offset, size
    if isinstance(byte_range, SuffixByteRequest):
        return max(0, size - byte_range.suffix), size
    raise TypeError(f"unexpected byte range {byte_range!r}")


class ConfinedLocalStore(LocalStore):
    """zarr-python's local store, reading every key through `StoreFiles` (read-only)."""

    def __init__(self, files: StoreFiles) -> None:
        super().__init__(files.root, read_only=True)
        self.files = files

    def get_sync(self, key: str, *, prototype: BufferPrototype | None = None,
                 byte_range: ByteRequest | None = None) -> Buffer | None:
        data = read_file(self.files, key, byte_range)
        return None if data is None else (prototype or default_buffer_prototype()).buffer \
            .from_bytes(data)

    async def get(self, key: str, prototype: BufferPrototype | None = None,
                  byte_range: ByteRequest | None = None) -> Buffer | None:
        # In a thread, as LocalStore does: zarr's one event loop serves every render thread.
        return await asyncio.to_thread(self.get_sync, key, prototype=prototype,
                                       byte_range=byte_range)

    async def get_partial_values(
            self, prototype: BufferPrototype,
            key_ranges: Iterable[tuple[str, ByteRequest | None]]) -> list[Buffer | None]:
        return list(await asyncio.gather(*(self.get(key, prototype, byte_range)
                                           for key, byte_range in key_ranges)))
