"""Read-only HTTP access to the stores' own Zarr files: ``/zarr/{store}/{key}``.

``xr.open_zarr("http://host/zarr/<store>")`` (fsspec HTTP) reads the root ``zarr.json``, whose
consolidated metadata describes every array, then fetches chunk files by key. Only Zarr keys
of a catalog store are served: ``zarr.json``, ``<array>/zarr.json`` and chunk files
``<array>/c/<i>/<j>/…`` (arrays of the overview levels too: ``overviews/<k>/<array>/…``),
resolved inside the store folder (no ``..``, hidden, lock, marker or temporary files, no
listing). ``/zarr-v2/{store}/{key}`` answers the same store as Zarr v2
(`fewsmap.store.zarr_v2`: ``.zmetadata``, ``<array>/.zarray``, chunks ``<array>/<i>/…``), for
GDAL's Zarr driver and QGIS, which read only v2; on a path of its own, because zarr-python
warns when one path holds both versions. A key that is not served is a 404, which Zarr
clients read as "no such key" (a chunk never written is its fill value). A file leading out
of the store (a symlink) is refused with 403 ``OutsideStore``, the rule every reader of the
store follows (`fewsmap.store.files`).

Caching (docs/design/cube.md, publish protocol): metadata and coordinate chunks change when a
run is published, so clients revalidate them (``no-cache`` + ETag, answered 304). A data
chunk of a published run's slot never changes: it was written before the run was published, a
replaced run goes to a new slot, slots are never reused, and a retired slot's chunks are only
ever deleted. Those are ``immutable``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from datetime import datetime
from email.utils import formatdate
from pathlib import Path

import zarr
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fewsmap.app.api import api_error
from fewsmap.app.conditional import not_modified
from fewsmap.app.files import RangeBytesResponse, RangeFileResponse
from fewsmap.app.state import visible_catalog
from fewsmap.errors import MethodNotAllowed, NotFound
from fewsmap.store.backend import ObjectBackend
from fewsmap.store.cube import ROOT_METADATA, ForecastStore
from fewsmap.store.files import StoreFiles, reading
from fewsmap.store.layout import RUN_DIM
from fewsmap.store.overviews import OVERVIEWS
from fewsmap.store.zarr_v2 import NotInV2View, is_metadata_key, metadata_document, v3_chunk_key

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "public, no-cache"
ALLOWED_METHODS = ("GET", "HEAD")
_CHUNK_INDEX = re.compile(r"[0-9]{1,9}")
_FORBIDDEN_CHARS = re.compile(r"[\x00-\x1f\x7f\\:]")



def zarr_routes() -> list[Route]:
    """Routes serving the stores' files."""

    async def zarr_file(request: Request) -> Response:
        return await answer(request, v2=False)

    async def zarr_v2_file(request: Request) -> Response:
        return await answer(request, v2=True)

    async def answer(request: Request, v2: bool) -> Response:
        try:
            if request.method not in ALLOWED_METHODS:
                raise MethodNotAllowed(f"{request.method} is not allowed: the stores are "
                                       "read-only (GET, HEAD)")
            catalog = await visible_catalog(request)
            name = request.path_params["store"]
            store = catalog.stores.get(name)
            if store is None:
                raise NotFound(f"no store {name[:80]!r}; stores: {', '.join(catalog.stores)}")
            key = request.path_params.get("key", "")
            if v2:
                parts = key.split("/")
                if is_metadata_key(parts):
                    return await v2_metadata(request, store, parts)
                key = v3_key(store, parts)
            media_type = "application/json" if key.endswith(ROOT_METADATA) else (
                "application/octet-stream")
            if isinstance(store.backend, ObjectBackend):  # relayed from object storage
                content, tag, modified = await run_in_threadpool(
                    object_file, store.backend, key)
                headers = {"ETag": tag, "Last-Modified": formatdate(modified.timestamp(),
                                                                    usegmt=True),
                           "Cache-Control": cache_control(store, key)}
                return not_modified(request.headers, headers, request.method) or (
                    RangeBytesResponse(content, media_type, headers))
            assert store.files is not None  # a local store
            path, st = await run_in_threadpool(store_file, store.files, key)
            headers = {"ETag": etag(st), "Last-Modified": formatdate(st.st_mtime, usegmt=True),
                       "Cache-Control": cache_control(store, key)}
            unchanged = not_modified(request.headers, headers, request.method)
            if unchanged:
                return unchanged
            return RangeFileResponse(path, headers=headers, media_type=media_type,
                                     stat_result=st)
        except Exception as exc:  # every failure is a JSON error, never a traceback
            response = api_error(exc)
            if isinstance(exc, MethodNotAllowed):
                response.headers["Allow"] = ", ".join(ALLOWED_METHODS)
            return response

    methods = [*ALLOWED_METHODS, "POST", "PUT", "PATCH", "DELETE"]
    return [Route("/zarr/{store}/{key:path}", zarr_file, methods=methods),
            Route("/zarr/{store}", zarr_file, methods=methods),
            Route("/zarr-v2/{store}/{key:path}", zarr_v2_file, methods=methods),
            Route("/zarr-v2/{store}", zarr_v2_file, methods=methods)]


async def v2_metadata(request: Request, store: ForecastStore, parts: list[str]) -> Response:
    """A Zarr v2 metadata document, derived from the store's root ``zarr.json``.

    Its validators are the root's (a publish changes both), told apart per document.
    """
    if isinstance(store.backend, ObjectBackend):
        content, root_tag, modified = await run_in_threadpool(
            object_file, store.backend, ROOT_METADATA)
        last_modified = modified.timestamp()
    else:
        assert store.files is not None  # a local store
        path, st = await run_in_threadpool(store_file, store.files, ROOT_METADATA)
        content, root_tag, last_modified = await run_in_threadpool(path.read_bytes), etag(st), (
            st.st_mtime)
    try:
        document = metadata_document(json.loads(content), parts)
    except NotInV2View as exc:
        raise NotFound(str(exc)) from exc
    tag = '"' + hashlib.sha256(f"{root_tag}/{'/'.join(parts)}".encode()).hexdigest()[:32] + '"'
    headers = {"ETag": tag, "Last-Modified": formatdate(last_modified, usegmt=True),
               "Cache-Control": REVALIDATE}
    return not_modified(request.headers, headers, request.method) or RangeBytesResponse(
        json.dumps(document, indent=1).encode(), "application/json", headers)


def v3_key(store: ForecastStore, parts: list[str]) -> str:
    """The v3 chunk key of the v2 chunk key ``parts`` (``<array>/<i>/<j>/…``).

    Raises
    ------
    NotFound
        If the key is no v2 chunk key of an array of the store.
    """
    if len(parts) < 2 or not all(_CHUNK_INDEX.fullmatch(p) for p in parts[1:]):
        raise NotFound(f"{'/'.join(parts)[:120]!r} is not a file of the Zarr v2 view: only "
                       ".zmetadata, .zgroup, .zattrs, <array>/.zarray, <array>/.zattrs and "
                       "chunks <array>/<index>/… are served")
    check_key("/".join([parts[0], "c", *parts[1:]]))  # the array name meets every key's rules
    node = store.group.get(parts[0])
    if not isinstance(node, zarr.Array):  # missing, or a group (overview levels)
        raise NotFound(f"no array {parts[0][:80]!r} in the Zarr v2 view of this store")
    try:
        return v3_chunk_key(parts, node.ndim)
    except NotInV2View as exc:
        raise NotFound(f"{'/'.join(parts)[:120]!r}: {exc}") from exc


def object_file(backend: ObjectBackend, key: str) -> tuple[bytes, str, datetime]:
    """The object a Zarr key of a store in object storage names, with its ETag and date.

    Raises
    ------
    NotFound
        If ``key`` is not a Zarr key, or the store has no such object.
    """
    check_key(key)
    with reading(backend.name, key.split("/")[0]):
        found = backend.fetch(key)
    if found is None:
        raise NotFound(f"{key[:120]!r}: no such file in this store")
    return found


def check_key(key: str) -> None:
    """Refuse a key the stores do not serve (`key_problem`).

    Raises
    ------
    NotFound
        If ``key`` is not a Zarr key of a store.
    """
    problem = key_problem(key.split("/"))
    if problem:
        raise NotFound(f"{key[:120]!r} is not a file of this store: {problem}")


def store_file(files: StoreFiles, key: str) -> tuple[Path, os.stat_result]:
    """Resolve a Zarr key of a store to a regular file inside it.

    Raises
    ------
    NotFound
        If ``key`` is not a Zarr key, or no regular file of the store answers to it.
    OutsideStore
        If the file leads out of the store.
    """
    check_key(key)
    try:
        path = files.resolve(key)
        st = path.stat()
    except OSError as exc:
        raise NotFound(f"{key[:120]!r}: no such file in this store") from exc
    if not stat.S_ISREG(st.st_mode):
        raise NotFound(f"{key[:120]!r}: no such file in this store")
    return path, st


def key_problem(parts: list[str]) -> str | None:
    """Why a key (split at ``/``) is not one the stores serve, or None if it is.

    Served: ``zarr.json``, ``<array>/zarr.json`` and chunks ``<array>/c[/<index>…]`` (v2
    chunk keys are turned into these first, `v3_key`).
    """
    for part in parts:
        if not part or part in (".", ".."):
            return "empty, '.' and '..' path segments are not allowed"
        if part.startswith(".") or part.endswith(".partial"):
            return "hidden and temporary files are not served"
        if _FORBIDDEN_CHARS.search(part):
            return "control characters, backslashes and colons are not allowed"
    _, parts = split_group(parts)
    if parts[-1] == ROOT_METADATA and len(parts) <= 2:
        return None
    if len(parts) >= 2 and parts[1] == "c" and all(
            _CHUNK_INDEX.fullmatch(p) for p in parts[2:]):
        return None
    return "only zarr.json metadata and chunk files (<array>/c/<index>/…) are served"


def split_group(parts: list[str]) -> tuple[str, list[str]]:
    """The group a key lies in (the root "", the overviews group or one of its levels,
    `fewsmap.store.overviews`) and the key's parts within it."""
    if len(parts) > 1 and parts[0] == OVERVIEWS:
        if len(parts) > 2 and _CHUNK_INDEX.fullmatch(parts[1]):
            return f"{OVERVIEWS}/{parts[1]}", parts[2:]
        return OVERVIEWS, parts[1:]
    return "", parts


def cache_control(store: ForecastStore, key: str) -> str:
    """``immutable`` for a data chunk of a published (or retired) run slot, else revalidate.

    The store object may be older than the files; an older one knows fewer slots, so it only
    errs towards revalidating.
    """
    group, parts = split_group(key.split("/"))
    array = f"{group}/{parts[0]}" if group else parts[0]
    if len(parts) < 3 or parts[1] != "c" or array not in store.group:
        return REVALIDATE
    dims = store.dims(array)
    if dims[:1] != (RUN_DIM,) or len(dims) <= 2:  # coordinates are rewritten per run
        return REVALIDATE
    retired = {int(entry["slot"]) for entry in store.attrs.get("retired", [])}
    published = {run.slot for run in store.runs} | retired
    return IMMUTABLE if int(parts[2]) in published else REVALIDATE


def etag(st: os.stat_result) -> str:
    """A strong validator: a file is replaced by rename (new inode) or rewritten (mtime)."""
    identity = f"{st.st_ino}-{st.st_mtime_ns}-{st.st_size}".encode()
    return '"' + hashlib.sha256(identity).hexdigest()[:32] + '"'

