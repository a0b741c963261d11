"""Map answers' headers: downloads named in any script, and caching that follows the clock."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from fewsmap.app.server import create_app
from fewsmap.settings import Settings
from tests.asgi_client import AppClient
from tests.synthetic import lonlat_store

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
