"""XYZ tiles and TileJSON of the real service: the same pixels as GetMap, no seams,
immutable URLs for a fixed run and time, "latest" that follows new runs."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import jsonschema
import numpy as np
import pytest
from PIL import Image

from fewsmap.ogc.tiles import TileAddress
from tests.live_server import live_server
from tests.synthetic import T0, lonlat_store

SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "tilejson" / "tilejson-2.2.0.json"
SECOND_RUN = T0 + np.timedelta64(12, "h")
LAYER = "grid.lat"


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiles") / "stores"
    lonlat_store(root / "grid.zarr")
    return root


@pytest.fixture(scope="module")
def url(stores: Path) -> Iterator[str]:
    with live_server("--stores", str(stores)) as base:
        yield base


def rgba(response: httpx.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGBA"))


def tile(url: str, z: int, x: int, y: int, suffix: str = ".png", layer: str = LAYER,
         **query: str) -> httpx.Response:
    return httpx.get(f"{url}/tiles/{layer}/{z}/{x}/{y}{suffix}", params=query, timeout=30)


def get_map(url: str, bbox: tuple[float, ...], width: int, height: int, layer: str = LAYER,
            **query: str) -> httpx.Response:
    return httpx.get(f"{url}/wms", params={
        "service": "WMS", "version": "1.3.0", "request": "GetMap", "layers": layer,
        "crs": "EPSG:3857", "bbox": ",".join(repr(v) for v in bbox), "width": str(width),
        "height": str(height), "format": "image/png", **query}, timeout=30)


def test_a_tile_is_the_getmap_of_its_bbox(url: str) -> None:
    address = TileAddress(4, 8, 5)  # over western Europe
    by_tile = tile(url, 4, 8, 5)
    by_map = get_map(url, address.bbox, 256, 256)
    assert by_tile.content == by_map.content
    shown = rgba(by_tile)
    assert shown.shape == (256, 256, 4) and (shown[..., 3] > 0).any()


def test_retina_tiles_are_512_pixels_of_the_same_bbox(url: str) -> None:
    retina = rgba(tile(url, 4, 8, 5, "@2x.png"))
    assert retina.shape == (512, 512, 4)
    assert np.array_equal(retina, rgba(get_map(url, TileAddress(4, 8, 5).bbox, 512, 512)))


@pytest.mark.parametrize("show_contours", ["false", "true"])
@pytest.mark.parametrize("layer", ["grid.lon", "grid.u-v"])
def test_adjacent_tiles_have_no_seam(url: str, layer: str, show_contours: str) -> None:
    """Two neighbours side by side equal one map of both: colour range and contours are
    the run's, never the tile's.

    The fields change across the shared edge (longitude; the speed of u=lon, v=lat, whose
    contours are arcs crossing it), so a range or contour taken from each tile's own
    window would show.
    """
    left, right = TileAddress(5, 16, 10), TileAddress(5, 17, 10)
    query = {"showContours": show_contours, "layer": layer}
    stitched = np.concatenate([rgba(tile(url, 5, 16, 10, **query)),
                               rgba(tile(url, 5, 17, 10, **query))], axis=1)
    whole = rgba(get_map(url, (left.bbox[0], left.bbox[1], right.bbox[2], right.bbox[3]),
                         512, 256, **query))
    assert (whole[..., 3] > 0).mean() > 0.5
    difference = np.abs(stitched.astype(int) - whole.astype(int)).max(axis=2)
    assert (difference > 8).mean() < 0.001, "tiles differ from the map of both"
    steps = np.abs(np.diff(stitched.astype(int), axis=1)).max(axis=2).mean(axis=0)
    inner = np.delete(steps, 255)  # the mean step across each other column boundary
    assert inner.max() > 0, "the field must change across columns for this test to see seams"
    assert steps[255] <= inner.max()  # the shared edge steps no more than a cell boundary


def test_fixed_run_and_time_are_immutable_latest_is_short_lived(url: str) -> None:
    latest = tile(url, 4, 8, 5)
    assert latest.headers["cache-control"] == "public, max-age=60"
    assert latest.headers["x-fewsmap-run"] == "2026-01-01T00:00:00Z"
    fixed = tile(url, 4, 8, 5, run="2026-01-01T00:00:00Z",
                 time=latest.headers["x-fewsmap-valid-time"])
    assert fixed.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert fixed.content == latest.content
    again = httpx.get(f"{url}/tiles/{LAYER}/4/8/5.png", timeout=30,
                      headers={"If-None-Match": latest.headers["etag"]})
    assert again.status_code == 304


def test_selectors_are_those_of_getmap(url: str) -> None:
    query = {"time": "2026-01-01T06:00:00Z", "style": "", "colorscalerange": "30,60"}
    assert tile(url, 4, 8, 5, **query).content == get_map(
        url, TileAddress(4, 8, 5).bbox, 256, 256, **query).content
    narrow = rgba(tile(url, 4, 8, 5, colorscalerange="45,46"))
    assert not np.array_equal(narrow, rgba(tile(url, 4, 8, 5)))


@pytest.mark.parametrize(("path", "code"), [
    ("4/16/5.png", "TileOutOfRange"),
    ("25/0/0.png", "TileOutOfRange"),
    ("-1/0/0.png", "InvalidParameterValue"),
    ("4/8/5.gif", "InvalidParameterValue"),
    ("4/8/5.png?run=2001-01-01T00:00:00Z", "InvalidDimensionValue"),
    ("4/8/5.png?time=2031-01-01T00:00:00Z", "InvalidDimensionValue"),
    ("4/8/5.png?style=nothing", "StyleNotDefined"),
])
def test_bad_tiles_get_json_errors(url: str, path: str, code: str) -> None:
    response = httpx.get(f"{url}/tiles/{LAYER}/{path}", timeout=30)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def test_unknown_layer(url: str) -> None:
    response = httpx.get(f"{url}/tiles/nothing/1/0/0.png", timeout=30)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "LayerNotDefined"


def test_tilejson_is_valid_and_its_urls_work(url: str) -> None:
    document = httpx.get(f"{url}/tiles/{LAYER}/tilejson.json", timeout=30).json()
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    west, south, east, north = document["bounds"]
    assert (west, south, east, north) == pytest.approx((-20.5, 29.5, 40.5, 60.5))
    assert document["minzoom"] == 0 and 4 <= document["maxzoom"] <= 8
    extra = document["fewsmap"]
    assert extra["latest"] is True and extra["runs"] == ["2026-01-01T00:00:00Z"]
    assert extra["valueRange"] == pytest.approx([30.0, 60.0])  # the run's statistics
    template = document["tiles"][0]
    first = httpx.get(template.format(z=4, x=8, y=5), timeout=30)
    assert first.content == tile(url, 4, 8, 5).content
    assert httpx.get(document["legend"], timeout=30).headers["content-type"] == "image/png"


def test_the_advertised_range_is_the_one_tiles_are_coloured_with(url: str) -> None:
    """TileJSON gives the run's range (from ingest statistics) and the style definitions;
    an auto-ranged tile equals one asking for that range explicitly."""
    about = httpx.get(f"{url}/tiles/grid.lon/tilejson.json", timeout=30).json()["fewsmap"]
    low, high = about["valueRange"]
    assert (low, high) == pytest.approx((-20.0, 40.0))  # the grid's longitudes
    assert [table["id"] for table in about["styleDefinitions"]] == about["styles"]
    auto = tile(url, 5, 16, 10, layer="grid.lon")
    explicit = tile(url, 5, 16, 10, layer="grid.lon", colorscalerange=f"{low},{high}")
    assert np.array_equal(rgba(auto), rgba(explicit))


def test_tilejson_carries_the_selectors_into_its_urls(url: str) -> None:
    query = {"run": "2026-01-01T00:00:00Z", "time": "2026-01-01T06:00:00Z"}
    document = httpx.get(f"{url}/tiles/{LAYER}/tilejson.json", params=query,
                         timeout=30).json()
    assert document["fewsmap"]["latest"] is False
    response = httpx.get(document["tiles"][0].format(z=4, x=8, y=5), timeout=30)
    assert response.headers["x-fewsmap-valid-time"] == "2026-01-01T06:00:00Z"
    assert response.headers["cache-control"].endswith("immutable")


def test_latest_follows_a_new_run(tmp_path: Path) -> None:
    stores = tmp_path / "stores"
    lonlat_store(stores / "grid.zarr")
    fixed = {"colorscalerange": "30,70"}  # auto ranges follow each run's statistics
    with live_server("--stores", str(stores)) as base:
        before = tile(base, 4, 8, 5, **fixed)
        pinned = tile(base, 4, 8, 5, run="2026-01-01T00:00:00Z", **fixed)
        lonlat_store(stores / "grid.zarr", t0=SECOND_RUN, offset=5.0)  # published by rename
        for _ in range(50):
            after = tile(base, 4, 8, 5, **fixed)
            if after.headers["x-fewsmap-run"] != before.headers["x-fewsmap-run"]:
                break
            httpx.get(f"{base}/health", timeout=30)
        assert after.headers["x-fewsmap-run"] == "2026-01-01T12:00:00Z"
        assert after.content != before.content
        assert tile(base, 4, 8, 5, run="2026-01-01T00:00:00Z", **fixed).content == pinned.content
        runs = httpx.get(f"{base}/tiles/{LAYER}/tilejson.json", timeout=30).json()
        assert runs["fewsmap"]["runs"] == ["2026-01-01T00:00:00Z", "2026-01-01T12:00:00Z"]
        # one scale across the runs (30..60 and 35..65); the latest run's own when asked
        assert runs["fewsmap"]["valueRange"] == pytest.approx([30.0, 65.0])
        own = httpx.get(f"{base}/tiles/{LAYER}/tilejson.json", timeout=30,
                        params={"colorscalerange": "auto"}).json()
        assert own["fewsmap"]["valueRange"] == pytest.approx([35.0, 65.0])


def test_a_tile_of_a_layer_list_composites_them_as_getmap(url: str) -> None:
    """``/tiles/a,b/…``: the layers drawn on top of each other, as GetMap LAYERS=a,b."""
    address = TileAddress(4, 8, 5)
    layers = "grid.lon,grid.lat"
    by_tile = tile(url, 4, 8, 5, layer=layers, styles=",")
    assert by_tile.content == get_map(url, address.bbox, 256, 256, layer=layers).content
    assert np.array_equal(rgba(by_tile), rgba(tile(url, 4, 8, 5)))  # grid.lat on top
    assert "nowhere" in tile(url, 4, 8, 5, layer="grid.lon,nowhere").text


def test_tilejson_of_a_layer_list_is_refused_clearly(url: str) -> None:
    response = httpx.get(f"{url}/tiles/grid.lon,grid.lat/tilejson.json", timeout=30)
    assert response.status_code == 400, response.text
    assert "one layer" in response.json()["error"]["message"]
