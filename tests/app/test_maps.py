"""Map answers' headers: downloads named in any script, and caching that follows the clock."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from starlette.applications import Starlette

from fewsmap.app.maps import INLINE_GRID_CELLS, drawn_inline, maps_cost
from fewsmap.app.server import create_app
from fewsmap.catalog import Catalog
from fewsmap.ogc.tiles import TileAddress, tile_request
from fewsmap.params import Params
from fewsmap.resolve.maps import resolve_maps
from fewsmap.settings import Settings
from tests.asgi_client import AppClient
from tests.s3server import S3Server
from tests.synthetic import field_store, lonlat_grid, lonlat_store

RUN = "2026-01-01T00:00:00Z"
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=60"
GETMAP = {"request": "GetMap", "crs": "CRS:84", "bbox": "-10,40,10,50", "width": "32",
          "height": "32"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> AppClient:
    stores = tmp_path_factory.mktemp("maps") / "stores"
    lonlat_store(stores / "grid.zarr")
    lonlat_store(stores / "降水.zarr")  # "precipitation": a store named beyond Latin-1
    return AppClient(create_app(Settings(stores_dir=stores)))


def disposition(header: str) -> dict[str, str]:
    """The parameters of a Content-Disposition header (none of ours quotes a ';')."""
    kind, *parameters = header.split("; ")
    assert kind == "attachment"
    return dict(parameter.split("=", 1) for parameter in parameters)


@pytest.mark.parametrize(("media_type", "suffix"), [
    ("application/x-netcdf", ".nc"), ("image/tiff;subtype=float32", ".tif")])
def test_a_download_of_a_layer_named_beyond_latin_1_keeps_its_name(
        client: AppClient, media_type: str, suffix: str) -> None:
    response = client.get("/wms", params={**GETMAP, "layers": "降水.lat", "format": media_type,
                                          "time": RUN})
    assert response.status_code == 200, response.text
    header = response.headers["content-disposition"]
    assert header.isascii()
    parameters = disposition(header)
    name = f"降水.lat_20260101T000000Z_20260101T000000Z{suffix}"
    assert unquote(parameters["filename*"].removeprefix("UTF-8''")) == name  # RFC 6266
    assert parameters["filename"] == f'"__.lat_20260101T000000Z_20260101T000000Z{suffix}"'


def test_an_ascii_download_name_is_sent_as_it_is(client: AppClient) -> None:
    response = client.get("/wms", params={**GETMAP, "layers": "grid.lat",
                                          "format": "application/x-netcdf"})
    assert response.headers["content-disposition"] == (
        'attachment; filename="grid.lat_20260101T000000Z_20260101T000000Z.nc"')


def tile(client: AppClient, **query: str) -> str:
    response = client.get("/tiles/grid.lat/4/8/5.png", params=query)
    assert response.status_code == 200, response.text
    return response.headers["cache-control"]


def get_map(client: AppClient, **query: str) -> str:
    response = client.get("/wms", params={**GETMAP, "layers": "grid.lat", **query})
    assert response.status_code == 200, response.text
    return response.headers["cache-control"]


@pytest.mark.parametrize("keyword", ["current", "now", "PRESENT"])
def test_a_fixed_run_at_the_current_time_follows_the_clock(client: AppClient,
                                                            keyword: str) -> None:
    assert tile(client, run=RUN, time=keyword) == SHORT
    assert get_map(client, dim_reference_time=RUN, time=keyword) == SHORT
    assert get_map(client, layers=f"grid.lat-{RUN}", time=keyword) == SHORT
    assert get_map(client, dim_reference_time=RUN, time=keyword, format="image/gif") == SHORT


@pytest.mark.parametrize("time", [
    "2026-01-01T06:00:00Z", "2026-01-01T00:00:00Z/2026-01-01T06:00:00Z"])
def test_a_fixed_run_at_a_named_time_is_immutable(client: AppClient, time: str) -> None:
    if "/" not in time:
        assert tile(client, run=RUN, time=time) == IMMUTABLE
        assert get_map(client, dim_reference_time=RUN, time=time) == IMMUTABLE
    assert get_map(client, dim_reference_time=RUN, time=time, format="image/gif") == IMMUTABLE
    assert get_map(client, time=time, format="image/gif") == SHORT  # the latest run


def test_a_list_of_layers_is_immutable_only_when_every_layer_names_its_run(
        client: AppClient) -> None:
    time = "2026-01-01T06:00:00Z"
    assert get_map(client, layers=f"grid.lat-{RUN},grid.lon-{RUN}", time=time) == IMMUTABLE
    assert get_map(client, layers=f"grid.lat-{RUN},grid.lon", time=time) == SHORT


def wide_field(path: Path | str, overviews: bool = True) -> Path | str:
    """A 1050 × 1000 lon/lat grid (more cells than `INLINE_GRID_CELLS`)."""
    lat, lon = np.linspace(69.96, 30.0, 1000), np.linspace(-20.0, 39.94, 1050)
    assert lat.size * lon.size > INLINE_GRID_CELLS
    lon2, lat2 = np.meshgrid(lon, lat)
    return field_store(path, lonlat_grid(lat, lon), lon2, lat2, overviews=overviews)


@pytest.fixture(scope="module")
def inline_stores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    stores = tmp_path_factory.mktemp("inline") / "stores"
    lonlat_store(stores / "small.zarr")
    wide_field(stores / "wide.zarr")
    wide_field(stores / "plain.zarr", overviews=False)
    return stores


def test_small_maps_of_local_stores_are_drawn_on_the_event_loop(inline_stores: Path) -> None:
    """A tile of one layer, of a local store whose zoomed-out views read overview levels or
    whose grid is small, is drawn on the event loop (no thread hand-off); contours, a larger
    map or a big grid without levels go to a render thread; the image is the same."""
    here = create_app(Settings(stores_dir=inline_stores))
    threads = create_app(Settings(stores_dir=inline_stores, inline_render_cost=0))
    clients = {app: AppClient(app) for app in (here, threads)}

    def drawn_inline_by(app: Starlette, path: str) -> tuple[bool, bytes]:
        limiter = app.state.service.render_limiter
        before = limiter.inline
        response = clients[app].get(path)
        assert response.status_code == 200 and response.content.startswith(b"\x89PNG"), path
        return limiter.inline > before, response.content

    wms = ("/wms?service=WMS&version=1.3.0&request=GetMap&layers=small.lon&styles="
           "&crs=EPSG:3857&bbox=0,5000000,1000000,6000000&format=image/png")
    for path, inline in (("/tiles/small.lon/3/4/2.png", True),
                         ("/tiles/wide.lon/2/2/1.png", True),
                         ("/tiles/wide.lon/9/262/170.png", True),
                         ("/tiles/plain.lon/2/2/1.png", False),
                         (wms + "&width=256&height=256", True),
                         (wms + "&width=256&height=256&showContours=true", False),
                         (wms + "&width=512&height=512", False)):
        assert drawn_inline_by(here, path)[0] == inline, path
        assert drawn_inline_by(here, path)[1] == drawn_inline_by(threads, path)[1], path
        assert not drawn_inline_by(threads, path)[0]


def test_maps_of_object_storage_are_drawn_in_threads(s3_env: S3Server) -> None:
    """Reads from object storage wait on the network: never on the event loop."""
    folder = f"s3://{s3_env.new_bucket()}/stores"
    wide_field(f"{folder}/wide.zarr")
    catalog = Catalog(Settings(stores_dir=folder))
    parsed = tile_request("wide.lon", TileAddress(2, 2, 1), Params([]), 2_304_000)
    specs = resolve_maps(catalog, parsed)
    assert specs[0].store.files is None
    assert not drawn_inline(specs, maps_cost(specs), 1 << 30)
