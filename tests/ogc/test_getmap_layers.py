"""Several LAYERS in one GetMap (WMS 1.3.0 §7.3.3.3-4), and the legend of a layer group.

The first layer of the list is drawn at the bottom, each in its STYLES entry. ``longitude``
in style ``bands`` (class breaks from -10) is transparent west of 10° W, so what shows
through there tells which layer lies below.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from fewsmap.app.maps import maps_cost
from fewsmap.app.server import create_app
from fewsmap.catalog import Catalog
from fewsmap.ogc.getmap import MAX_LAYERS, parse_getmap
from fewsmap.params import Params
from fewsmap.render.legend import ROW_HEIGHT_PX
from fewsmap.resolve.maps import resolve_maps
from fewsmap.settings import Settings
from tests.asgi_client import AppClient
from tests.ogc.conftest import CONFIG
from tests.synthetic import T0, lonlat_store, sparse_levels_store

# Beyond the grid (lon -20..40, lat 30..60) on every side: transparent there.
GETMAP = {"service": "WMS", "version": "1.3.0", "request": "GetMap", "crs": "CRS:84",
          "bbox": "-30,20,50,70", "width": "80", "height": "50", "format": "image/png"}
TIME = "2026-01-01T00:00:00Z"
LATE_CONFIG = CONFIG + """
[[layers]]
id = "late"
store = "late"
variable = "lat"

[[layers]]
id = "near"
store = "late"
variable = "lon"
time_tolerance = "P10D"
"""


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The SLD profile's configured layers, and ``late``: a run five days after theirs."""
    folder = tmp_path_factory.mktemp("layers")
    lonlat_store(folder / "stores" / "grid.zarr")
    lonlat_store(folder / "stores" / "late.zarr", t0=T0 + np.timedelta64(5, "D"))
    config = folder / "fewsmap.toml"
    config.write_text(LATE_CONFIG)
    return Settings(stores_dir=folder / "stores", config_file=config)


@pytest.fixture(scope="module")
def client(settings: Settings) -> AppClient:
    return AppClient(create_app(settings))


def rgba(client: AppClient, **query: str) -> np.ndarray:
    response = client.get("/wms", params={**GETMAP, "time": TIME, **query})
    assert response.status_code == 200, response.text
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGBA"))


def refusal(client: AppClient, **query: str) -> str:
    response = client.get("/wms", params={**GETMAP, "time": TIME, **query})
    assert response.status_code == 400, response.text
    return response.text


def test_the_first_layer_is_drawn_at_the_bottom_each_in_its_style(client: AppClient) -> None:
    latitude = rgba(client, layers="latitude", styles="")
    bands = rgba(client, layers="longitude", styles="bands")
    stacked = rgba(client, layers="latitude,longitude", styles=",bands")
    on_top, see_through = bands[..., 3] == 255, bands[..., 3] == 0
    assert on_top.mean() > 0.2 and (see_through & (latitude[..., 3] == 255)).mean() > 0.05
    assert (stacked[on_top] == bands[on_top]).all()
    assert (stacked[see_through] == latitude[see_through]).all()
    reversed_order = rgba(client, layers="longitude,latitude", styles="bands,")
    assert (reversed_order == latitude).all()  # latitude covers the whole grid


def test_a_layer_may_be_drawn_twice_in_two_styles(client: AppClient) -> None:
    warm = rgba(client, layers="longitude", styles="warm")
    bands = rgba(client, layers="longitude", styles="bands")
    stacked = rgba(client, layers="longitude,longitude", styles="warm,bands")
    on_top, see_through = bands[..., 3] == 255, bands[..., 3] == 0
    assert (stacked[on_top] == bands[on_top]).all()
    assert (stacked[see_through] == warm[see_through]).all()
    assert not (stacked == bands).all()


@pytest.mark.parametrize("styles", ["", ",", "default,"])
def test_empty_styles_mean_the_default_styles(client: AppClient, styles: str) -> None:
    expected = rgba(client, layers="latitude,longitude", styles="default,default")
    assert (rgba(client, layers="latitude,longitude", styles=styles) == expected).all()


@pytest.mark.parametrize("styles", ["bands", "bands,,", ",,,"])
def test_styles_must_have_an_entry_per_layer(client: AppClient, styles: str) -> None:
    text = refusal(client, layers="latitude,longitude", styles=styles)
    assert "InvalidParameterValue" in text and "2 LAYERS" in text


def test_a_style_of_another_layer_is_not_defined(client: AppClient) -> None:
    text = refusal(client, layers="longitude,latitude", styles="bands,warm")
    assert "StyleNotDefined" in text and "'warm'" in text and "'latitude'" in text


def test_bgcolor_lies_below_every_layer(client: AppClient) -> None:
    transparent = rgba(client, layers="latitude,longitude", styles=",bands")
    opaque = rgba(client, layers="latitude,longitude", styles=",bands", transparent="false",
                  bgcolor="0x00ff00")
    outside, drawn = transparent[..., 3] == 0, transparent[..., 3] == 255
    assert outside.mean() > 0.2 and drawn.mean() > 0.2
    assert (opaque[outside] == (0, 255, 0, 255)).all()
    assert (opaque[drawn] == transparent[drawn]).all()


def test_a_layer_without_data_at_the_time_fails_the_whole_map(client: AppClient) -> None:
    text = refusal(client, layers="latitude,late")
    assert "InvalidDimensionValue" in text and "'late'" in text


def test_a_group_in_the_list_draws_its_layers(client: AppClient) -> None:
    group = rgba(client, layers="coordinates")
    bands = rgba(client, layers="longitude", styles="bands")
    stacked = rgba(client, layers="coordinates,longitude", styles=",bands")
    on_top, see_through = bands[..., 3] == 255, bands[..., 3] == 0
    assert (stacked[on_top] == bands[on_top]).all()
    assert (stacked[see_through] == group[see_through]).all()
    assert "StyleNotDefined" in refusal(client, layers="coordinates,longitude",
                                        styles="bands,bands")


def test_a_nearer_time_of_any_layer_is_said_in_the_warning(client: AppClient) -> None:
    response = client.get("/wms", params={**GETMAP, "time": TIME, "layers": "latitude,near"})
    assert response.status_code == 200, response.text
    assert response.headers["warning"] == "99 Nearest value used: time=2026-01-06T00:00:00Z"


@pytest.mark.parametrize(("layers", "problem"), [
    ("latitude,", "empty"), (",latitude", "empty"), ("latitude,nowhere", "nowhere")])
def test_a_list_with_an_unknown_or_empty_name_is_refused(client: AppClient, layers: str,
                                                         problem: str) -> None:
    response = client.get("/wms", params={**GETMAP, "layers": layers})
    assert response.status_code in (400, 404) and problem in response.text


def test_more_layers_than_the_advertised_limit_are_refused(client: AppClient) -> None:
    text = refusal(client, layers=",".join(["latitude"] * (MAX_LAYERS + 1)))
    assert f"at most {MAX_LAYERS}" in text
    capabilities = client.get("/wms", params={"request": "GetCapabilities"}).text
    assert f"<LayerLimit>{MAX_LAYERS}</LayerLimit>" in capabilities


@pytest.mark.parametrize("query", [
    {"format": "image/tiff;subtype=float32"}, {"format": "application/x-netcdf"},
    {"format": "image/gif", "time": "2026-01-01T00:00:00Z/2026-01-01T06:00:00Z"}])
def test_answers_of_one_layer_refuse_a_list(client: AppClient, query: dict[str, str]) -> None:
    response = client.get("/wms", params={**GETMAP, "layers": "latitude,longitude", **query})
    assert response.status_code == 400 and "one layer" in response.text, response.text


def test_the_render_cost_counts_every_layer(settings: Settings) -> None:
    catalog = Catalog(settings)

    def cost(layers: str) -> int:
        parsed = parse_getmap(Params([*GETMAP.items(), ("layers", layers)]), 10**8)
        return maps_cost(resolve_maps(catalog, parsed))

    assert cost("latitude,longitude,latitude") == 3 * cost("latitude")


def test_the_legend_of_a_group_stacks_its_layers_legends(client: AppClient) -> None:
    legend = {"request": "GetLegendGraphic", "version": "1.3.0"}
    parts = [Image.open(io.BytesIO(client.get("/wms", params={
        **legend, "layer": name}).content)) for name in ("longitude", "latitude")]
    response = client.get("/wms", params={**legend, "layer": "coordinates"})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    group = Image.open(io.BytesIO(response.content))
    assert group.width == max(p.width for p in parts)
    assert group.height == sum(p.height for p in parts)
    top = 0
    for part in parts:  # each layer's own legend, pixel for pixel, its title on top
        box = (0, top, part.width, top + part.height)
        part_pixels = np.asarray(part.convert("RGBA"))
        assert (np.asarray(group.convert("RGBA").crop(box)) == part_pixels).all()
        assert part_pixels[:ROW_HEIGHT_PX, ..., 3].any()  # the title row
        top += part.height
    answer = client.get("/wms", params={**legend, "layer": "coordinates",
                                        "format": "application/json"})
    assert answer.status_code == 200
    body = json.loads(answer.content)
    singles = [json.loads(client.get("/wms", params={**legend, "layer": name,
                                                     "format": "application/json"}).content)
               for name in ("longitude", "latitude")]
    assert [entry["layer"] for entry in body["layers"]] == ["longitude", "latitude"]
    assert [entry["legend"] for entry in body["layers"]] == [s["legend"] for s in singles]
    styled = client.get("/wms", params={**legend, "layer": "coordinates", "style": "bands"})
    assert styled.status_code == 400 and "StyleNotDefined" in styled.text


def test_a_group_legend_keeps_within_the_pixel_limit(client: AppClient) -> None:
    # Each part is within the 2 304 000 pixels of a map; the two together are not.
    response = client.get("/wms", params={"request": "GetLegendGraphic", "layer": "coordinates",
                                          "width": "1500", "height": "1500"})
    assert response.status_code == 400 and "beyond the limit" in response.text


def test_elevation_applies_to_each_layer_that_has_levels(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    stores = tmp_path_factory.mktemp("levels") / "stores"
    lonlat_store(stores / "grid.zarr")
    sparse_levels_store(stores / "levels.zarr")  # 1.0 at 1000 hPa, 3.0 at 500, 850 empty
    levels = AppClient(create_app(Settings(stores_dir=stores)))
    query = {**GETMAP, "bbox": "-1,-1,3,3", "width": "40", "height": "40", "time": TIME,
             "layers": "grid.lat,levels.t"}

    def drawn(elevation: str) -> np.ndarray:
        response = levels.get("/wms", params={**query, "elevation": elevation})
        assert response.status_code == 200, response.text
        return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGBA"))

    low, high = drawn("1000"), drawn("500")
    assert (low[..., 3] == 255).any() and (low != high).any()
    empty = levels.get("/wms", params={**query, "elevation": "850"})
    assert empty.status_code == 400 and "'levels.t'" in empty.text, empty.text


def test_the_headers_say_what_each_layer_drew(client: AppClient) -> None:
    """One value per layer drawn, bottom first, where the layers drew different runs or
    times; one value where they all drew the same."""
    response = client.get("/wms", params={**GETMAP, "time": TIME, "layers": "latitude,near"})
    assert response.status_code == 200, response.text
    assert response.headers["x-fewsmap-run"] == "2026-01-01T00:00:00Z,2026-01-06T00:00:00Z"
    assert response.headers["x-fewsmap-valid-time"] == \
        "2026-01-01T00:00:00Z,2026-01-06T00:00:00Z"
    same = client.get("/wms", params={**GETMAP, "time": TIME,
                                       "layers": "latitude,longitude"})
    assert same.headers["x-fewsmap-run"] == "2026-01-01T00:00:00Z"
    assert same.headers["x-fewsmap-valid-time"] == TIME
