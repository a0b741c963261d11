"""One rule for every reader of a store's files: a chunk leading out of the store is refused
(403 ``OutsideStore``) and never read; a damaged chunk is a coded error (500
``StorageError``) naming the variable, with no path or traceback in the answer."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest

from fewsmap.app.server import create_app
from fewsmap.errors import StoreError
from fewsmap.settings import Settings
from fewsmap.store import files as files_module
from fewsmap.store.cube import ForecastStore, open_cube
from fewsmap.store.files import OutsideStore, StoreFiles
from tests.asgi_client import AppClient
from tests.synthetic import lonlat_store

# The secret store's values are longitudes plus this: a value of it in any answer is a leak.
SECRET_OFFSET = 4000.0
BOX = {"crs": "CRS:84", "bbox": "-10,35,30,55", "width": "16", "height": "16"}
# Every reader of a value of grid.lon at step 0 (T0) and step 1 (T0 + 6 h).
READERS = {
    "GetMap": ("/wms", {"request": "GetMap", "layers": "grid.lon", **BOX}),
    "GetMap JSON errors": ("/wms", {"request": "GetMap", "layers": "grid.lon", **BOX,
                                    "exceptions": "json"}),
    "tile": ("/tiles/grid.lon/2/2/1.png", {}),
    "WMTS tile": ("/wmts", {"service": "WMTS", "request": "GetTile", "version": "1.0.0",
                            "layer": "grid.lon", "style": "default", "format": "image/png",
                            "tilematrixset": "WebMercatorQuad", "tilematrix": "2",
                            "tilerow": "1", "tilecol": "2"}),
    "GetFeatureInfo": ("/wms", {"request": "GetFeatureInfo", "layers": "grid.lon",
                                "query_layers": "grid.lon", **BOX, "i": "8", "j": "8",
                                "info_format": "application/json", "format": "json"}),
    "time series": ("/api/timeseries", {"layer": "grid.lon", "x": "5", "y": "50"}),
    "EDR position": ("/edr/collections/grid.lon/position", {"coords": "POINT(5 50)"}),
    "EDR area": ("/edr/collections/grid.lon/area",
                 {"coords": "POLYGON((0 40,10 40,10 50,0 50,0 40))"}),
    "GeoTIFF export": ("/wms", {"request": "GetMap", "layers": "grid.lon", **BOX,
                                "format": "image/tiff;subtype=float32"}),
    "NetCDF export": ("/wms", {"request": "GetMap", "layers": "grid.lon", **BOX,
                               "format": "application/x-netcdf"}),
    "animation": ("/wms", {"request": "GetMap", "layers": "grid.lon", **BOX,
                           "format": "image/gif",
                           "time": "2026-01-01T00:00:00Z/2026-01-01T06:00:00Z"}),
}
STEP_1 = {"time": "2026-01-01T06:00:00Z"}  # maps and exports of the second step


def planted(root: Path, link: str) -> AppClient:
    """A service over ``grid`` whose lon chunks lead out of the store, to a valid chunk of a
    store beside it ("file": the step-0 chunk file is a link; "folder": the step-1 folder)."""
    secret = lonlat_store(root / "outside" / "secret.zarr", offset=SECRET_OFFSET)
    store = lonlat_store(root / "stores" / "grid.zarr")
    for step in ("0", "1"):
        target = ("lon", "c", "0", step) if link == "folder" else ("lon", "c", "0", step, "0", "0")
        inside = store.joinpath(*target)
        shutil.rmtree(inside) if inside.is_dir() else inside.unlink()
        inside.symlink_to(secret.joinpath(*target))
    # The run's time-chunked copy, which time series read (one shard: every step).
    target = ("lon.series", "c", "0") + (("0", "0", "0") if link == "file" else ())
    inside = store.joinpath(*target)
    shutil.rmtree(inside) if inside.is_dir() else inside.unlink()
    inside.symlink_to(secret.joinpath(*target))
    return AppClient(create_app(Settings(stores_dir=root / "stores")))


def ask(client: AppClient, reader: str, step_1: bool) -> httpx.Response:
    path, params = READERS[reader]
    extra = STEP_1 if step_1 and path == "/wms" and "time" not in params else {}
    return client.get(path, params={**params, **extra})


def error_code(response: httpx.Response) -> str:
    """The code of an error answer in any of the service's formats."""
    text = response.text
    if text.lstrip().startswith("<"):
        for marker in ('code="', 'exceptionCode="'):
            if marker in text:
                return text.split(marker, 1)[1].split('"', 1)[0]
        return ""
    body = json.loads(text)
    return str(body["error"]["code"] if "error" in body else body["code"])


@pytest.fixture(scope="module", params=["file", "folder"])
def linked(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AppClient:
    return planted(tmp_path_factory.mktemp(f"linked-{request.param}"), request.param)


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("step_1", [False, True], ids=["step 0", "step 1"])
def test_a_chunk_leading_out_of_the_store_is_refused_by_every_reader(
        linked: AppClient, reader: str, step_1: bool) -> None:
    response = ask(linked, reader, step_1)
    assert response.status_code == 403, (response.status_code, response.text[:300])
    assert error_code(response) == "OutsideStore"
    assert b"outside" not in response.content and b"secret" not in response.content
    assert b"4005" not in response.content  # the secret value at 5 degrees east


def test_zarr_http_refuses_the_same_chunk(linked: AppClient) -> None:
    for key in ("lon/c/0/0/0/0", "lon/c/0/1/0/0"):
        response = linked.get(f"/zarr/grid/{key}")
        assert response.status_code == 403 and error_code(response) == "OutsideStore"
    assert linked.get("/zarr/grid/lat/c/0/0/0/0").status_code == 200


@pytest.mark.parametrize("fast_open", [True, False], ids=["openat2", "readlink only"])
def test_the_rule_allows_links_inside_the_store_and_treats_dangling_ones_as_missing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast_open: bool) -> None:
    if not fast_open:  # kernels without openat2 (or a seccomp filter refusing it)
        monkeypatch.setattr(files_module, "_open_symlink_free", None)
    store = lonlat_store(tmp_path / "grid.zarr")
    (store / "lat" / "c" / "0" / "1" / "0" / "0").unlink()
    (store / "lat" / "c" / "0" / "1" / "0" / "0").symlink_to(store / "lat/c/0/0/0/0")
    (store / "lon" / "c" / "0" / "1" / "0" / "0").unlink()
    (store / "lon" / "c" / "0" / "1" / "0" / "0").symlink_to(tmp_path / "gone")
    linked_root = tmp_path / "link.zarr"
    linked_root.symlink_to(store)  # a store folder may itself be a link
    cube = ForecastStore(linked_root)
    run = cube.runs[0]
    step_0, step_1 = run.valid_times
    assert np.array_equal(cube.read_slice("lat", run, step_1), cube.read_slice("lat", run, step_0))
    assert np.isnan(cube.read_slice("lon", run, step_1)).all()
    files = StoreFiles(linked_root)
    assert files.resolve("lat/c/0/1/0/0") == (store / "lat/c/0/0/0/0").resolve()
    with pytest.raises(FileNotFoundError):
        files.resolve("lon/c/0/1/0/0")
    (tmp_path / "secret.txt").write_text("secret")
    (store / "escape").symlink_to(tmp_path)
    with pytest.raises(OutsideStore):
        files.open("escape/secret.txt")
    (store / "loop").symlink_to(store / "loop")
    with pytest.raises(FileNotFoundError):
        files.open("loop")
    absolute = store / "lat" / "c" / "0" / "1" / "0" / "1"
    absolute.symlink_to((store / "lat/c/0/0/0/0").resolve())  # absolute, yet inside
    os.close(files.open("lat/c/0/1/0/1"))
    assert files.resolve("escape/grid.zarr/zarr.json") == (store / "zarr.json").resolve()


# --- damaged chunks ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def damaged(tmp_path_factory: pytest.TempPathFactory) -> tuple[AppClient, Path]:
    """A store whose lon chunks (both steps) are overwritten with bytes that are no chunk."""
    root = tmp_path_factory.mktemp("damaged")
    store = lonlat_store(root / "stores" / "grid.zarr")
    for chunk in ("lon/c/0/0/0/0", "lon/c/0/1/0/0", "lon.series/c/0/0/0/0"):
        (store / chunk).write_bytes(b"\x02\x01\x33\x04" + b"\xff" * 40)
    return AppClient(create_app(Settings(stores_dir=root / "stores"))), root


@pytest.mark.parametrize("reader", READERS)
def test_a_damaged_chunk_is_a_coded_storage_error(damaged: tuple[AppClient, Path],
                                                  reader: str) -> None:
    client, root = damaged
    response = ask(client, reader, step_1=False)
    assert response.status_code == 500, (response.status_code, response.text[:300])
    assert error_code(response) == "StorageError"
    assert "'lon'" in response.text and "'grid'" in response.text
    assert str(root) not in response.text and "Traceback" not in response.text
    assert client.get("/api/timeseries", params={"layer": "grid.lat", "x": "5",
                                                 "y": "50"}).status_code == 200


def test_a_damaged_chunk_read_by_zarr_is_a_store_error(tmp_path: Path) -> None:
    store = lonlat_store(tmp_path / "grid.zarr")
    (store / "lon" / "c" / "0" / "0" / "0" / "0").write_bytes(b"not a chunk at all")
    cube = ForecastStore(store)
    with pytest.raises(StoreError, match="variable 'lon' of store 'grid'") as caught:
        cube.read_slice("lon", cube.runs[0], cube.runs[0].valid_times[0])
    assert caught.value.ogc_code == "StorageError" and str(tmp_path) not in str(caught.value)


def test_open_cube_reads_under_the_same_rule(tmp_path: Path) -> None:
    secret = lonlat_store(tmp_path / "outside" / "secret.zarr", offset=SECRET_OFFSET)
    store = lonlat_store(tmp_path / "grid.zarr")
    chunk = store / "lon" / "c" / "0" / "0" / "0" / "0"
    chunk.unlink()
    chunk.symlink_to(secret / "lon" / "c" / "0" / "0" / "0" / "0")
    cube = open_cube(store)
    assert float(cube["lat"].isel(step=0).max()) == 60.0
    with pytest.raises(OutsideStore):
        cube["lon"].isel(step=0).values  # noqa: B018  (reading is the point)
