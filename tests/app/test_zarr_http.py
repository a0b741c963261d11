"""Raw store files over HTTP (``/zarr/{store}/…``), end to end against ``fewsmap serve``."""

from __future__ import annotations

import http.client
import shutil
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
import xarray as xr

import fewsmap
from fewsmap.store.cube import read_root_metadata
from fewsmap.store.layout import ATTRS_KEY
from fewsmap.store.writer import publish
from tests.live_server import live_server

SECRET = b"TOP-SECRET: never served"
STORES = ("naefs-mean", "marfc-fmat", "ecmwf-ens-gust")


@pytest.fixture(scope="module")
def stores(demo_stores: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the demo stores, with bait beside and inside them."""
    root = tmp_path_factory.mktemp("zarr-http")
    folder = root / "stores"
    shutil.copytree(demo_stores, folder, symlinks=True)
    (root / "secret.txt").write_bytes(SECRET)
    (folder / "secret.txt").write_bytes(SECRET)
    store = folder / "naefs-mean.zarr"
    (store / ".hidden").write_bytes(SECRET)
    (store / "QPF" / "c" / "0" / "0" / "0" / "0.1f2e.partial").write_bytes(SECRET)
    (store / "leak").mkdir()
    (store / "leak" / "zarr.json").symlink_to(root / "secret.txt")
    (store / "QPF" / "c" / "9").symlink_to(root, target_is_directory=True)
    return folder


@pytest.fixture(scope="module")
def url(stores: Path) -> Iterator[str]:
    with live_server("--stores", str(stores)) as base:
        yield base


def chunk_key(store: Path, array: str) -> str:
    """The key of some chunk file of ``array`` (the first in sorted order)."""
    chunk = next(p for p in sorted((store / array / "c").rglob("*")) if p.is_file()
                 and not p.name.endswith(".partial"))
    return str(chunk.relative_to(store))


@pytest.mark.parametrize("name", STORES)
def test_xarray_reads_every_value_of_the_served_store(url: str, stores: Path, name: str) -> None:
    remote = xr.open_zarr(f"{url}/zarr/{name}", consolidated=True, chunks=None)
    local = xr.open_zarr(stores / f"{name}.zarr", consolidated=True, chunks=None)
    assert set(remote.variables) == set(local.variables)
    for variable in local.variables:  # every value, coordinates included
        np.testing.assert_array_equal(remote[variable].values, local[variable].values)
    xr.testing.assert_identical(remote.load(), local.load())


@pytest.mark.parametrize("name", STORES)
def test_the_zarr_v2_view_holds_every_value_of_the_store(url: str, stores: Path,
                                                         name: str) -> None:
    remote = xr.open_zarr(f"{url}/zarr-v2/{name}", consolidated=True, chunks=None).load()
    local = xr.open_zarr(stores / f"{name}.zarr", consolidated=True, chunks=None).load()
    # the time-chunked copies (<variable>.series) are sharded: not expressible in Zarr v2
    local = local.drop_vars([name for name in local.data_vars if str(name).endswith(".series")])
    for variable in remote.variables.values():
        variable.attrs.pop("_CRS", None)  # added for GDAL
    # the grid mapping's value means nothing (its attributes do): v3 reads its fill value
    # as missing, v2 as 0
    assert remote["crs"].attrs == local["crs"].attrs
    xr.testing.assert_identical(remote.drop_vars("crs").drop_encoding(),
                                local.drop_vars("crs").drop_encoding())


def test_the_zarr_v2_view_answers_v2_metadata_and_chunks(url: str, stores: Path) -> None:
    store = stores / "marfc-fmat.zarr"
    with httpx.Client(base_url=f"{url}/zarr-v2/marfc-fmat/", timeout=10) as client:
        zarray = client.get("t/.zarray").json()
        assert zarray["zarr_format"] == 2 and zarray["dtype"] == "<f4"
        assert zarray["dimension_separator"] == "/" and zarray["compressor"]["id"] == "blosc"
        zattrs = client.get("t/.zattrs").json()
        assert zattrs["_ARRAY_DIMENSIONS"] == ["forecast_reference_time", "step", "y", "x"]
        assert "Stereographic" in zattrs["_CRS"]["wkt"]  # GDAL's georeferencing
        consolidated = client.get(".zmetadata")
        assert consolidated.json()["metadata"]["t/.zarray"] == zarray
        assert consolidated.headers["cache-control"] == "public, no-cache"
        again = client.get(".zmetadata", headers={"If-None-Match": consolidated.headers["etag"]})
        assert again.status_code == 304
        assert client.get("t/.zattrs").headers["etag"] != consolidated.headers["etag"]
        v3 = chunk_key(store, "t")
        v2 = client.get(v3.replace("/c/", "/", 1))
        assert v2.status_code == 200 and v2.content == (store / v3).read_bytes()
        assert v2.headers["cache-control"] == "public, max-age=31536000, immutable"
        # a 0-d array's one chunk: never written here (its fill value), so missing
        assert "'crs/c': no such file" in client.get("crs/0").json()["error"]["message"]
        for missing in ("t/0/0", "t/0/0/0/0/0", "nope/.zarray", "nope/0", "crs/1"):
            assert client.get(missing).status_code == 404, missing


def test_a_publish_changes_the_zarr_v2_metadata(url: str, stores: Path) -> None:
    target = f"{url}/zarr-v2/ecmwf-ens-gust/.zmetadata"
    before = httpx.get(target, timeout=10).headers["etag"]
    path = stores / "ecmwf-ens-gust.zarr"
    publish(path, read_root_metadata(path)["attributes"][ATTRS_KEY])  # a new root file
    assert httpx.get(target, headers={"If-None-Match": before}, timeout=10).status_code == 200


def test_open_cube_reads_the_served_cube(url: str, stores: Path) -> None:
    remote = fewsmap.open_cube(f"{url}/zarr/marfc-fmat")
    local = fewsmap.open_cube(stores / "marfc-fmat.zarr")
    assert remote.sizes["forecast_reference_time"] == 4
    np.testing.assert_array_equal(remote["t"].values, local["t"].values)
    np.testing.assert_array_equal(remote["valid_time"].values, local["valid_time"].values)


@pytest.mark.parametrize("key", ["zarr.json", "QPF/zarr.json", "chunk"])
def test_range_requests_return_exactly_the_bytes_asked_for(url: str, stores: Path,
                                                           key: str) -> None:
    store = stores / "naefs-mean.zarr"
    key = chunk_key(store, "QPF") if key == "chunk" else key
    data = (store / key).read_bytes()
    size = len(data)
    assert size > 200
    cases = {"bytes=0-0": data[:1], "bytes=10-99": data[10:100], "bytes=-16": data[-16:],
             "bytes=100-": data[100:], f"bytes=5-{size * 10}": data[5:],
             f"bytes={size - 1}-{size - 1}": data[-1:]}
    with httpx.Client(base_url=f"{url}/zarr/naefs-mean/", timeout=10) as client:
        for header, expected in cases.items():
            response = client.get(key, headers={"Range": header})
            assert response.status_code == 206, header
            assert response.content == expected, header
            start = size - len(expected)  if header.startswith("bytes=-") else (
                int(header.removeprefix("bytes=").split("-")[0]))
            assert response.headers["content-range"] == (
                f"bytes {start}-{start + len(expected) - 1}/{size}")
            assert int(response.headers["content-length"]) == len(expected)
        whole = client.get(key)
        assert whole.status_code == 200 and whole.content == data
        assert whole.headers["accept-ranges"] == "bytes"


def test_unsatisfiable_and_unusable_ranges(url: str, stores: Path) -> None:
    data = (stores / "naefs-mean.zarr" / "zarr.json").read_bytes()
    with httpx.Client(base_url=f"{url}/zarr/naefs-mean/", timeout=10) as client:
        beyond = client.get("zarr.json", headers={"Range": f"bytes={len(data)}-"})
        assert beyond.status_code == 416
        assert beyond.headers["content-range"] == f"bytes */{len(data)}"
        assert beyond.json()["error"]["code"] == "RangeNotSatisfiable"
        for header in ("bytes=abc", "items=0-5", "bytes=9-3"):  # RFC 9110 §14.2: ignored
            response = client.get("zarr.json", headers={"Range": header})
            assert response.status_code == 200 and response.content == data, header
        several = client.get("zarr.json", headers={"Range": "bytes=0-3,10-13"})
    assert several.status_code == 206
    assert several.headers["content-type"].startswith("multipart/byteranges")
    assert data[0:4] in several.content and data[10:14] in several.content
    assert f"Content-Range: bytes 10-13/{len(data)}".encode() in several.content


def test_head_answers_the_headers_of_get(url: str, stores: Path) -> None:
    key = chunk_key(stores / "naefs-mean.zarr", "QTF")
    get = httpx.get(f"{url}/zarr/naefs-mean/{key}", timeout=10)
    head = httpx.head(f"{url}/zarr/naefs-mean/{key}", timeout=10)
    assert head.status_code == 200 and head.content == b""
    for name in ("content-length", "etag", "last-modified", "cache-control", "content-type"):
        assert head.headers[name] == get.headers[name], name
    assert int(head.headers["content-length"]) == (stores / "naefs-mean.zarr" / key).stat().st_size
    assert head.headers["content-type"] == "application/octet-stream"


def test_conditional_requests(url: str, stores: Path) -> None:
    target = f"{url}/zarr/marfc-fmat/zarr.json"
    first = httpx.get(target, timeout=10)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert first.headers["content-type"] == "application/json"
    for headers in ({"If-None-Match": etag}, {"If-None-Match": f'"x", {etag}'},
                    {"If-None-Match": "*"}, {"If-Modified-Since": modified}):
        again = httpx.get(target, headers=headers, timeout=10)
        assert again.status_code == 304 and again.content == b"", headers
        assert again.headers["etag"] == etag
        assert again.headers["cache-control"] == "public, no-cache"
    assert httpx.head(target, headers={"If-None-Match": etag}, timeout=10).status_code == 304
    earlier = formatdate(0, usegmt=True)
    for headers in ({"If-None-Match": '"other"'}, {"If-Modified-Since": earlier},
                    {"If-Modified-Since": "yesterday"},
                    # If-None-Match decides over If-Modified-Since (RFC 9110 §13.2.2)
                    {"If-None-Match": '"other"', "If-Modified-Since": modified}):
        assert httpx.get(target, headers=headers, timeout=10).status_code == 200, headers
    same = httpx.get(target, headers={"Range": "bytes=0-9", "If-Range": etag}, timeout=10)
    assert same.status_code == 206 and same.content == first.content[:10]
    changed = httpx.get(target, headers={"Range": "bytes=0-9", "If-Range": '"old"'}, timeout=10)
    assert changed.status_code == 200 and changed.content == first.content


def test_a_publish_changes_the_root_validator(url: str, stores: Path) -> None:
    target = f"{url}/zarr/ecmwf-ens-gust/zarr.json"
    before = httpx.get(target, timeout=10).headers["etag"]
    path = stores / "ecmwf-ens-gust.zarr"
    publish(path, read_root_metadata(path)["attributes"][ATTRS_KEY])  # a new root file
    after = httpx.get(target, headers={"If-None-Match": before}, timeout=10)
    assert after.status_code == 200 and after.headers["etag"] != before
    assert after.content == (path / "zarr.json").read_bytes()


def test_cache_control_follows_the_publish_protocol(url: str, stores: Path) -> None:
    store = stores / "marfc-fmat.zarr"
    expected = {"zarr.json": "public, no-cache",  # changes when a run is published
                "t/zarr.json": "public, no-cache",  # grows before a publish
                chunk_key(store, "valid_time"): "public, no-cache",  # rewritten per run
                chunk_key(store, "forecast_reference_time"): "public, no-cache",
                # data of a published run's slot is never rewritten
                chunk_key(store, "t"): "public, max-age=31536000, immutable"}
    for key, cache_control in expected.items():
        response = httpx.head(f"{url}/zarr/marfc-fmat/{key}", timeout=10)
        assert response.status_code == 200, key
        assert response.headers["cache-control"] == cache_control, key


def raw_get(url: str, target: str, method: str = "GET") -> tuple[int, bytes]:
    """Send ``target`` exactly as written (httpx would normalise ``..`` segments)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        connection.request(method, target)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


TRAVERSALS = [
    "/zarr/naefs-mean/../secret.txt",
    "/zarr/naefs-mean/../../secret.txt",
    "/zarr/naefs-mean/QPF/../../secret.txt",
    "/zarr/naefs-mean/%2e%2e/secret.txt",
    "/zarr/naefs-mean/%2E%2E/%2E%2E/secret.txt",
    "/zarr/naefs-mean/..%2fsecret.txt",
    "/zarr/naefs-mean/%2e%2e%2f%2e%2e%2fsecret.txt",
    "/zarr/naefs-mean/..%5csecret.txt",
    "/zarr/naefs-mean/..\\secret.txt",
    "/zarr/naefs-mean/%252e%252e%252fsecret.txt",
    "/zarr/naefs-mean/.%2e/secret.txt",
    "/zarr/naefs-mean//etc/passwd",
    "/zarr/naefs-mean/%2fetc%2fpasswd",
    "/zarr/naefs-mean/%2f..%2fsecret.txt",
    "/zarr/naefs-mean/C:%5cWindows%5cwin.ini",
    "/zarr/naefs-mean/zarr.json%00.png",
    "/zarr/naefs-mean/%00/../secret.txt",
    "/zarr/..%2fsecret.txt/zarr.json",
    "/zarr/%2e%2e/secret.txt",
    "/zarr/naefs-mean/leak/zarr.json",  # a symlink inside the store pointing out of it
    "/zarr/naefs-mean/QPF/c/9/secret.txt",  # a symlinked folder pointing out
    "/zarr/naefs-mean/QPF/c/9",
    "/zarr/naefs-mean/.hidden",
    "/zarr/naefs-mean/QPF/c/0/0/0/0.1f2e.partial",
    "/zarr/naefs-mean/../.naefs-mean.zarr.lock",
    "/zarr/naefs-mean/%2e%2e/.naefs-mean.zarr.lock",
    "/zarr/naefs-mean/.zattrs",  # Zarr v2 metadata is served at /zarr-v2 only
    "/zarr-v2/naefs-mean/QPF/9/0/0/0",  # a v2 chunk key is its v3 chunk: the same rules
    "/zarr-v2/naefs-mean/QPF/9/0/0/0/secret.txt",
    "/zarr-v2/naefs-mean/leak/.zarray",
    "/zarr-v2/naefs-mean/../.zattrs",
    "/zarr-v2/naefs-mean/%2e%2e/secret.txt",
    "/zarr-v2/naefs-mean/.zarray",
    "/zarr-v2/naefs-mean/QPF/.zgroup",
    "/zarr-v2/naefs-mean/zarr.json",
    "/zarr-v2/naefs-mean/QPF/c/0/0/0/0",
    "/zarr-v2/naefs-mean/.hidden",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_paths_outside_the_store_files_are_refused(url: str, stores: Path, target: str) -> None:
    assert (stores / "secret.txt").read_bytes() == SECRET  # the bait is there to be found
    status, body = raw_get(url, target)
    assert 400 <= status < 500, (target, status)
    assert SECRET not in body and b"Traceback" not in body


@pytest.mark.parametrize("target", ["/zarr/naefs-mean", "/zarr/naefs-mean/", "/zarr/",
                                    "/zarr/naefs-mean/QPF", "/zarr/naefs-mean/QPF/c",
                                    "/zarr/naefs-mean/QPF/c/0", "/zarr/no-such-store/zarr.json",
                                    "/zarr/naefs-mean/QPF/c/99/0/0/0"])
def test_no_listing_and_missing_keys_are_404(url: str, target: str) -> None:
    status, body = raw_get(url, target)
    assert status == 404, target
    if target.startswith("/zarr/naefs-mean/") or "no-such" in target:
        assert body.startswith(b'{"error": {"code": "NotFound"')


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_the_stores_are_read_only(url: str, stores: Path, method: str) -> None:
    before = (stores / "naefs-mean.zarr" / "zarr.json").read_bytes()
    response = httpx.request(method, f"{url}/zarr/naefs-mean/zarr.json", content=b"{}",
                             timeout=10)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert response.json()["error"]["code"] == "MethodNotAllowed"
    assert (stores / "naefs-mean.zarr" / "zarr.json").read_bytes() == before


def test_cors_lets_browsers_send_ranges_and_read_the_answer(url: str) -> None:
    origin = {"Origin": "https://notebook.example.org"}
    preflight = httpx.options(f"{url}/zarr/naefs-mean/zarr.json", timeout=10, headers={
        **origin, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "range, if-none-match"})
    assert preflight.status_code == 200
    assert "range" in preflight.headers["access-control-allow-headers"].lower()
    response = httpx.get(f"{url}/zarr/naefs-mean/zarr.json", timeout=10,
                         headers={**origin, "Range": "bytes=0-9"})
    assert response.status_code == 206
    assert response.headers["access-control-allow-origin"] == "*"
    exposed = response.headers["access-control-expose-headers"].lower()
    for name in ("content-range", "etag", "accept-ranges", "last-modified"):
        assert name in exposed
