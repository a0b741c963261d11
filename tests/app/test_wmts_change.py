"""The derived run-change layer ``<layer>:change`` as WMTS layer, XYZ tiles and TileJSON
(issue #15), over the real server: OWSLib reads it from the capabilities and fetches its
tiles; its values equal xarray's latest run minus the previous one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pyproj
import pytest
import xarray as xr
from owslib.wmts import WebMapTileService

from fewsmap.ogc.tiles import TileAddress
from fewsmap.time.instants import format_time
from tests.app import test_run_change as run_change
from tests.live_server import live_server
from tests.synthetic import T0

# OWSLib 0.35 tests the truth of lxml elements when it reads <Current> (its bug, not ours).
pytestmark = pytest.mark.filterwarnings("ignore:Truth-testing of elements:FutureWarning")
LAYER = "runs.rain"
CHANGE = f"{LAYER}:change"
RUNS = [T0 + np.timedelta64(6 * k, "h") for k in range(3)]
# The latest run shares its first 7 valid times with the previous run (steps 0..42 h).
SHARED = [RUNS[2] + np.timedelta64(6 * k, "h") for k in range(7)]
TILE = TileAddress(3, 4, 2)  # lon 0..45, lat 41..67: the whole 1° grid lon 0..8, lat 45..50
TO_LONLAT = pyproj.Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)


stores = run_change.stores  # the same stores: 3 runs, 2 runs of 5 members, 1 run, vectors


@pytest.fixture(scope="module")
def url(stores: Path) -> Iterator[str]:
    with live_server("--stores", str(stores)) as base:
        yield base


@pytest.fixture(scope="module")
def wmts(url: str) -> WebMapTileService:
    return WebMapTileService(f"{url}/wmts", timeout=60)


def change_field(stores: Path, valid: np.datetime64) -> xr.DataArray:
    """Latest run minus previous run at ``valid``, as xarray computes it on the cube."""
    return run_change.cube_field(stores, 2, valid) - run_change.cube_field(stores, 1, valid)


def test_owslib_lists_the_change_layer_with_shared_times_and_its_style(
        wmts: WebMapTileService, url: str) -> None:
    assert CHANGE in wmts.contents and "members.rain:change" in wmts.contents
    assert "vectors.lon:change" in wmts.contents
    # where it would draw nothing: one run, or a vector layer
    assert "single.lon:change" not in wmts.contents and "single.lon" in wmts.contents
    assert "vectors.u-v:change" not in wmts.contents
    layer = wmts.contents[CHANGE]
    assert layer.title == "rain [mm]: change since the previous run"
    assert layer.dimensions["Time"]["values"] == [format_time(t) for t in SHARED]
    assert layer.dimensions["Time"]["default"] in layer.dimensions["Time"]["values"]
    assert layer.dimensions["Run"]["values"] == ["latest", *(format_time(r) for r in RUNS[1:])]
    assert list(layer.styles) == ["change"] and layer.styles["change"]["isDefault"]
    legend = httpx.get(layer.styles["change"]["legend"], timeout=30)
    assert legend.status_code == 200 and legend.headers["content-type"] == "image/png"
    assert "layer=runs.rain%3Achange" in layer.styles["change"]["legend"]
    members = wmts.contents["members.rain:change"].dimensions["ensemble_member"]["values"]
    assert members[:5] == ["0", "1", "2", "3", "4"] and "mean" in members


def test_owslib_fetches_the_tile_of_a_change_as_every_other_route_draws_it(
        wmts: WebMapTileService, url: str) -> None:
    when = format_time(SHARED[3])
    tile = wmts.gettile(layer=CHANGE, tilematrixset="WebMercatorQuad",
                        tilematrix=str(TILE.z), row=TILE.y, column=TILE.x, format="image/png",
                        Time=when).read()
    assert tile[:8] == b"\x89PNG\r\n\x1a\n"
    xyz = httpx.get(f"{url}/tiles/{CHANGE}/{TILE.z}/{TILE.x}/{TILE.y}.png",
                    params={"time": when}, timeout=30)
    by_baseline = httpx.get(f"{url}/tiles/{LAYER}/{TILE.z}/{TILE.x}/{TILE.y}.png",
                            params={"time": when, "baseline": "previous"}, timeout=30)
    plain = httpx.get(f"{url}/tiles/{LAYER}/{TILE.z}/{TILE.x}/{TILE.y}.png",
                      params={"time": when}, timeout=30)
    assert xyz.status_code == by_baseline.status_code == plain.status_code == 200
    assert tile == xyz.content == by_baseline.content != plain.content
    [template] = [r["template"] for r in wmts.contents[CHANGE].resourceURLs
                  if r["resourceType"] == "tile"]
    rest = httpx.get(template.format(
        Style="change", Time=when, Run="latest", TileMatrixSet="WebMercatorQuad",
        TileMatrix=TILE.z, TileRow=TILE.y, TileCol=TILE.x), timeout=30)
    assert rest.status_code == 200 and rest.content == tile


@pytest.mark.parametrize("pixel", [(5, 200), (8, 190), (20, 180), (40, 210)])
def test_feature_info_of_a_change_tile_is_xarrays_difference(
        wmts: WebMapTileService, stores: Path, pixel: tuple[int, int]) -> None:
    valid = SHARED[4]
    [template] = [r["template"] for r in wmts.contents[CHANGE].resourceURLs
                  if r["resourceType"] == "FeatureInfo" and r["format"] == "application/json"]
    # Style "default": WMS GetFeatureInfo does not yet take STYLES=change (reported)
    response = httpx.get(template.format(
        Style="default", Time=format_time(valid), Run="latest", TileMatrixSet="WebMercatorQuad",
        TileMatrix=TILE.z, TileRow=TILE.y, TileCol=TILE.x, J=pixel[1], I=pixel[0]), timeout=30)
    assert response.status_code == 200, response.text
    [feature] = response.json()["features"]
    values = feature["properties"]
    west, south, east, north = TILE.bbox
    lon, lat = TO_LONLAT.transform(west + (pixel[0] + 0.5) * (east - west) / 256,
                                   north - (pixel[1] + 0.5) * (north - south) / 256)
    want = change_field(stores, valid).sel(longitude=round(lon), latitude=round(lat))
    assert (values["lon"], values["lat"]) == (round(lon), round(lat))
    assert np.float32(values["value"]) == want.values
    assert values["baseline_reference_time"] == format_time(RUNS[1])


def test_tilejson_of_a_change_describes_what_its_tiles_show(url: str) -> None:
    response = httpx.get(f"{url}/tiles/{CHANGE}/tilejson.json", timeout=30)
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["name"] == CHANGE
    about = document["fewsmap"]
    assert about["times"] == [format_time(t) for t in SHARED]
    assert about["runs"] == [format_time(r) for r in RUNS[1:]]
    assert about["styles"] == ["change"]
    assert [s["id"] for s in about["styleDefinitions"]] == ["change"]
    low, high = about["valueRange"]
    assert low == -high < 0
    [tiles] = document["tiles"]
    tile = httpx.get(tiles.format(z=TILE.z, x=TILE.x, y=TILE.y), timeout=30)
    assert tile.status_code == 200 and tile.headers["content-type"] == "image/png"
    legend = httpx.get(document["legend"], timeout=30)
    assert legend.status_code == 200


@pytest.mark.parametrize("layer", ["single.lon:change", "vectors.u-v:change"])
def test_a_change_that_would_draw_nothing_has_no_tilejson(url: str, layer: str) -> None:
    response = httpx.get(f"{url}/tiles/{layer}/tilejson.json", timeout=30)
    assert response.status_code == 400, response.text
    assert "change" in response.json()["error"]["message"]
