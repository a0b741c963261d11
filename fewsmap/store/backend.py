"""Where a store's objects live: a local folder or a prefix in object storage.

A forecast cube is the same Zarr v3 layout everywhere and is published the same way
(docs/design/cube.md, docs/design/object-storage.md): the writer writes a run's chunks where
readers do not look, then replaces the one root ``zarr.json`` (the run manifest). What
differs is how each step is made safe, and that is all a `Backend` knows:

========================  =================================  ===================================
step                      `LocalBackend` (a folder)           `ObjectBackend` (s3://, https://)
========================  =================================  ===================================
one writer at a time      ``flock`` on a file beside it       a lease object created with
                                                              ``If-None-Match: *``
publish the manifest      write a temporary file, ``rename``  ``PUT`` with ``If-Match`` the
                                                              version read under the lease
durable before published  fsync files and folders             a ``PUT`` is durable once answered
the version readers see   the root file's inode/mtime/size    the root object's ETag
reading chunks            the direct reader, or zarr under    zarr-python over obstore (async,
                          the store's file rule               concurrent chunk fetches)
========================  =================================  ===================================

Object stores are configured by the standard AWS variables (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``, ``AWS_ALLOW_HTTP``), which
obstore reads. ``http(s)://`` stores are read-only.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import obstore
from obstore.exceptions import AlreadyExistsError, PreconditionError
from obstore.exceptions import BaseError as ObjectStoreError
from obstore.store import from_url
from zarr.abc.store import Store
from zarr.storage import LocalStore, ObjectStore

from fewsmap.errors import StoreError
from fewsmap.store.chunk_cache import CachedChunks
from fewsmap.store.files import ConfinedLocalStore, StoreFiles, store_name
from fewsmap.store.location import Location, store_location

if TYPE_CHECKING:
    from obstore.store import ObjectStore as ObstoreStore
    from obstore.store import RetryConfig

ROOT_METADATA = "zarr.json"
# A writer's lease on an object store lasts this long unless renewed (every third of it):
# a killed writer blocks the next one for at most this long (the tests shorten it).
LEASE_S = float(os.environ.get("FEWSMAP_WRITER_LEASE_S", "30"))
LEASE_POLL_S = 0.5
# A request to object storage gives up within seconds, not obstore's default 3 minutes of
# retries: a map request waiting on an outage holds a render slot (503 StorageUnavailable).
# Timeouts stay obstore's (connect 5 s, request 30 s): passing client options would drop the
# ones read from the environment (AWS_ALLOW_HTTP among them).
RETRIES: RetryConfig = {"max_retries": 3, "retry_timeout": timedelta(seconds=10)}


@dataclass(frozen=True)
class StoreVersion:
    """Identity of a store's published state: changes whenever a run is published or removed.

    Local: the root file's inode, mtime and size (a publish renames a new file over it);
    object storage: the root object's ETag.
    """

    token: str

    @classmethod
    def of(cls, location: Location | Backend) -> StoreVersion:
        """The published version of the store at ``location``.

        Raises
        ------
        FileNotFoundError
            If there is no store there.
        """
        return backend_of(location).version()


class Backend(ABC):
    """The objects of one store, and the few operations its protocol needs."""

    #: The store's location as the user names it: a folder path or a URL.
    location: str
    #: The store's name: its last path segment without ``.zarr``.
    name: str
    #: The store's files, for local readers that open chunk files themselves; None elsewhere.
    files: StoreFiles | None = None
    writable = True

    @abstractmethod
    def version(self) -> StoreVersion:
        """The published version (raises FileNotFoundError if nothing is published)."""

    @abstractmethod
    def read(self, key: str) -> bytes | None:
        """The bytes of object ``key``, or None if there is none."""

    @abstractmethod
    def write(self, key: str, content: bytes) -> None:
        """Write object ``key`` whole (readers see the old or the new content)."""

    @abstractmethod
    def children(self, prefix: str = "") -> list[str]:
        """Names directly under the store, or under its group ``prefix`` (arrays, groups,
        and leftovers of an interrupted writer)."""

    @abstractmethod
    def delete_tree(self, key: str) -> None:
        """Delete ``key`` and everything under it (no error if there is nothing)."""

    @abstractmethod
    def zarr_store(self, writable: bool = False, immutable: Collection[str] = ()) -> Store:
        """A zarr-python store over these objects; the data chunks of the ``immutable``
        arrays (forecast variables of a published state) may be served from a cache."""

    @abstractmethod
    def replace_root(self, content: bytes, expected: StoreVersion | None) -> StoreVersion:
        """Publish: replace the root ``zarr.json`` at once, if it is still ``expected``;
        return the new version.

        Raises
        ------
        StoreError
            If another writer published since ``expected`` was read.
        """

    @abstractmethod
    def lock(self) -> AbstractContextManager[None]:
        """A context manager holding the store's one writer lock."""

    @abstractmethod
    def marker(self, present: bool | None = None) -> bool:
        """The writing marker: set (True), clear (False) or just tell (None) whether it is
        there. It exists while a writer changes the store and survives a crash."""

    def holding(self) -> bool:
        """Whether this writer still holds the store's lock (a lease can lapse)."""
        return True

    def check_held(self) -> None:
        """Stop a writer whose lock lapsed: the next writer may be changing the store.

        Raises
        ------
        StoreError
            If the lock is no longer held.
        """
        if not self.holding():
            raise StoreError(f"the writer lease of {self.location} lapsed (not renewed for "
                             f"{LEASE_S:g} s); another writer may hold it: this one stops "
                             "and publishes nothing")

    def make_durable(self, slot: int) -> None:  # noqa: B027  (nothing to do by default)
        """Make what appending the run in ``slot`` wrote durable before it is published."""

    def remove_temporaries(self) -> None:  # noqa: B027
        """Delete temporary objects an interrupted writer left."""

    def read_json(self, key: str) -> dict[str, Any] | None:
        """Object ``key`` parsed as JSON, or None if there is none."""
        data = self.read(key)
        return None if data is None else dict(json.loads(data))


class LocalBackend(Backend):
    """A store folder on a local file system."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self.name = store_name(self.path)
        self.files = self.folder_files = StoreFiles(self.path)

    def version(self) -> StoreVersion:
        st = (self.path / ROOT_METADATA).stat()
        return StoreVersion(f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}")

    def read(self, key: str) -> bytes | None:
        try:
            return (self.path / key).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def write(self, key: str, content: bytes) -> None:
        write_atomically(self.path / key, content)

    def children(self, prefix: str = "") -> list[str]:
        folder = self.path / prefix
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []

    def delete_tree(self, key: str) -> None:
        target = self.path / key
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)

    def zarr_store(self, writable: bool = False, immutable: Collection[str] = ()) -> Store:
        if writable:
            self.path.mkdir(parents=True, exist_ok=True)
            return LocalStore(self.path)
        # Every read follows the store's file rule (fewsmap.store.files), zarr's too.
        return ConfinedLocalStore(self.folder_files)

    def replace_root(self, content: bytes, expected: StoreVersion | None) -> StoreVersion:
        # The flock already excludes other writers on this machine's file system.
        write_atomically(self.path / ROOT_METADATA, content)
        return self.version()

    @contextmanager
    def lock(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.with_name(f".{self.path.name}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @property
    def marker_path(self) -> Path:
        """The writing marker's file, beside the store folder."""
        return self.path.with_name(f".{self.path.name}.writing")

    def marker(self, present: bool | None = None) -> bool:
        marker = self.marker_path
        if present is True:
            marker.touch()
        elif present is False:
            marker.unlink(missing_ok=True)
        return marker.exists()

    def make_durable(self, slot: int) -> None:
        from fewsmap.store.durable import fsync_run  # durable reads this module's names

        fsync_run(self.path, slot)

    def remove_temporaries(self) -> None:
        for partial in self.path.rglob("*.partial"):
            partial.unlink()


class ObjectBackend(Backend):
    """A store under a prefix of an object store (S3 and compatible, or read-only HTTP)."""

    def __init__(self, url: str) -> None:
        self.location = url.rstrip("/")
        self.name = store_name(Path(self.location))
        self.writable = not self.location.startswith(("http://", "https://"))
        self.objects = objects_at(self.location)
        # The lease and marker live beside the store, so its prefix holds only Zarr objects.
        parent, _, leaf = self.location.rpartition("/")
        self._beside = objects_at(parent) if self.writable else None
        self._lock_key, self._marker_key = f".{leaf}.lock", f".{leaf}.writing"
        self._held: str | None = None  # the lease's ETag while this object holds it
        self._renewed_at = 0.0  # time.monotonic() of the last successful (re)newal

    def version(self) -> StoreVersion:
        meta = obstore.head(self.objects, ROOT_METADATA)
        return StoreVersion(str(meta.get("e_tag") or meta["last_modified"].isoformat()))

    def read(self, key: str) -> bytes | None:
        try:
            return bytes(obstore.get(self.objects, key).bytes())
        except FileNotFoundError:
            return None

    def fetch(self, key: str) -> tuple[bytes, str, datetime] | None:
        """The bytes of object ``key`` with its ETag and modification time; None if absent."""
        try:
            found = obstore.get(self.objects, key)
        except FileNotFoundError:
            return None
        meta = found.meta
        return bytes(found.bytes()), str(meta.get("e_tag") or ""), meta["last_modified"]

    def write(self, key: str, content: bytes) -> None:
        obstore.put(self.objects, key, content)

    def children(self, prefix: str = "") -> list[str]:
        under = f"{prefix.strip('/')}/" if prefix.strip("/") else None
        listed = obstore.list_with_delimiter(self.objects, prefix=under)
        names = {*listed["common_prefixes"], *(o["path"] for o in listed["objects"])}
        return sorted(name.removeprefix(under or "").strip("/") for name in names)

    def delete_tree(self, key: str) -> None:
        for batch in obstore.list(self.objects, prefix=key.rstrip("/") + "/", chunk_size=1000):
            obstore.delete(self.objects, [entry["path"] for entry in batch])
        obstore.delete(self.objects, key)  # deleting an absent object is no error in S3

    def zarr_store(self, writable: bool = False, immutable: Collection[str] = ()) -> Store:
        store = ObjectStore(self.objects, read_only=not writable)
        return CachedChunks(store, self.location, immutable) if immutable else store

    def replace_root(self, content: bytes, expected: StoreVersion | None) -> StoreVersion:
        mode: Any = "create" if expected is None else {"e_tag": expected.token}
        try:
            done = obstore.put(self.objects, ROOT_METADATA, content, mode=mode)
        except (PreconditionError, AlreadyExistsError) as exc:
            raise StoreError(f"store {self.location} was published by another writer while "
                             "this one held the lease; nothing was published") from exc
        return StoreVersion(str(done["e_tag"]))

    @contextmanager
    def lock(self) -> Iterator[None]:
        self._acquire()
        stop = threading.Event()
        renewer = threading.Thread(target=self._renew_until, args=(stop,), daemon=True,
                                   name="fewsmap-lease")
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join()
            self._release()

    def holding(self) -> bool:
        # Renewed within the lease, by our own clock: a writer paused longer cannot know
        # whether another took the lease over, so it counts it as lost.
        return self._held is not None and time.monotonic() - self._renewed_at < LEASE_S

    def marker(self, present: bool | None = None) -> bool:
        assert self._beside is not None
        if present is True:
            obstore.put(self._beside, self._marker_key, b"")
        elif present is False:
            obstore.delete(self._beside, self._marker_key)
        try:
            obstore.head(self._beside, self._marker_key)
        except FileNotFoundError:
            return False
        return True

    def _lease(self) -> bytes:
        return json.dumps({"owner": f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4()}",
                           "expires": time.time() + LEASE_S}).encode()

    def _acquire(self) -> None:
        """Create the lease object; take over one whose holder stopped renewing it."""
        if not self.writable or self._beside is None:
            raise StoreError(f"store {self.location} is read-only (an http(s):// URL)")
        while True:
            try:
                self._held = obstore.put(self._beside, self._lock_key, self._lease(),
                                         mode="create")["e_tag"]
                self._renewed_at = time.monotonic()
                self._check_conditional_writes()
                return
            except AlreadyExistsError:
                pass
            try:
                current = obstore.get(self._beside, self._lock_key)
            except FileNotFoundError:
                continue  # released meanwhile: try again at once
            if json.loads(bytes(current.bytes())).get("expires", 0) < time.time():
                try:  # expired: take it over, unless another writer just did
                    self._held = obstore.put(self._beside, self._lock_key, self._lease(),
                                             mode={"e_tag": current.meta["e_tag"]})["e_tag"]
                    self._renewed_at = time.monotonic()
                    self._check_conditional_writes()
                    return
                except PreconditionError:
                    pass
            time.sleep(LEASE_POLL_S)

    def _check_conditional_writes(self) -> None:
        """Refuse a server that ignores conditional writes: a second create of the lease we
        hold (``If-None-Match: *``) and a replacement of a made-up version (``If-Match``)
        must both fail, or two writers could both hold the lease or both publish.

        Raises
        ------
        StoreError
            If the server accepted it (conditional writes unsupported).
        """
        assert self._beside is not None
        try:
            obstore.put(self._beside, self._lock_key, self._lease(), mode="create")
        except AlreadyExistsError:
            try:  # and a replacement of a version that never existed must fail too
                obstore.put(self._beside, self._lock_key, self._lease(),
                            mode={"e_tag": '"fewsmap-probe"'})
            except PreconditionError:
                return
        self._release_unchecked()
        raise StoreError(f"the object store of {self.location} ignores conditional writes "
                         "(If-None-Match, If-Match): fewsmap cannot keep its writers apart "
                         "there; use a server that supports them (AWS S3, MinIO, R2 …)")

    def _release_unchecked(self) -> None:
        assert self._beside is not None
        obstore.delete(self._beside, self._lock_key)
        self._held = None

    def _renew_until(self, stop: threading.Event) -> None:
        while not stop.wait(LEASE_S / 3):
            renewing = time.monotonic()
            try:
                self._held = obstore.put(self._beside, self._lock_key,  # type: ignore[arg-type]
                                         self._lease(), mode={"e_tag": self._held})["e_tag"]
                self._renewed_at = renewing
            except (PreconditionError, FileNotFoundError):
                return  # taken over: `holding` turns False, the writer stops
            except ObjectStoreError:
                continue  # storage unreachable for now: retried; the lease may lapse

    def _release(self) -> None:
        held, self._held = self._held, None
        if self._beside is None or held is None:
            return
        try:  # not a lease another writer took over after ours lapsed
            if obstore.head(self._beside, self._lock_key).get("e_tag") == held:
                obstore.delete(self._beside, self._lock_key)
        except FileNotFoundError:
            pass


def objects_at(url: str) -> ObstoreStore:
    """The objects under ``url``, as obstore reaches them (configured by the AWS variables)."""
    if url.startswith("http://"):  # a plain-HTTP URL is the user's explicit choice
        return from_url(url, retry_config=RETRIES, client_options={"allow_http": True})
    return from_url(url, retry_config=RETRIES)


def backend_of(location: Location | Backend) -> Backend:
    """The backend of the store at ``location`` (a folder path or a supported URL)."""
    if isinstance(location, Backend):
        return location
    where = store_location(location, "store")
    return LocalBackend(where) if isinstance(where, Path) else ObjectBackend(where)


def write_atomically(target: Path, content: bytes) -> None:
    """Write ``content`` to ``target`` so that no reader or crash ever sees a partial file."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
    with tmp.open("wb") as f:
        f.write(content)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(target)
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def list_stores(folder: Path | str) -> dict[str, Path | str]:
    """The stores directly in a stores folder (a local folder or an object-store prefix),
    by name; hidden entries (a writer's lock and marker) are skipped.

    Raises
    ------
    OSError
        If an object-store folder cannot be listed (storage unreachable, no such bucket).
    """
    found: dict[str, Path | str] = {}
    if isinstance(folder, Path):
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if not path.name.startswith(".") and (path / ROOT_METADATA).is_file():
                    found[store_name(path)] = path
        return found
    try:
        listed = obstore.list_with_delimiter(objects_at(folder))
    except ObjectStoreError as exc:
        raise OSError(f"cannot list {folder}: {exc}") from exc
    for prefix in sorted(listed["common_prefixes"]):
        leaf = prefix.rstrip("/").rpartition("/")[2]
        if not leaf.startswith("."):
            found[store_name(Path(leaf))] = f"{folder.rstrip('/')}/{leaf}"
    return found


def store_in(folder: Path | str, name: str) -> Path | str:
    """The location of store ``name`` in a stores folder (a local folder or a prefix)."""
    return folder / f"{name}.zarr" if isinstance(folder, Path) else f"{folder}/{name}.zarr"
