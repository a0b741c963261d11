"""Extreme finite numbers get a 400 naming the value, or a correct answer (issue #13, item 4).

COLORSCALERANGE flows into float32 colouring, legend values and contour levels; values from
data and from styles do too. Every answer is a 400 InvalidParameterValue, or a 200 whose
JSON holds only finite numbers and whose images decode.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from fewsmap.app.server import create_app
from fewsmap.catalog.styles import FLOAT32_MAX, colour_range_problem, style_from_config
from fewsmap.errors import ConfigError
from fewsmap.settings import Settings
from tests.asgi_client import AppClient
from tests.synthetic import field_store, lonlat_grid, lonlat_store

EXTREMES = [0.0, -0.0, 5e-324, -5e-324, 1e-320, 1.4e-45, 1e-38, 1e-30, 1.0,
            1.0000000000000002, 1e30, 3e38, FLOAT32_MAX, 3.5e38, 1e306, 1.7e308,
            -1.7e308, -1e308, 1e308, -FLOAT32_MAX, -3e38]
numbers = st.one_of(st.sampled_from(EXTREMES), st.floats(allow_nan=False, allow_infinity=False),
                    st.floats(-1e3, 1e3))
LEGEND = {"service": "WMS", "request": "GetLegendGraphic", "layer": "grid.lon"}
GETMAP = {"service": "WMS", "version": "1.3.0", "request": "GetMap", "layers": "grid.lon",
          "styles": "", "crs": "CRS:84", "bbox": "-20,30,40,60", "width": "48",
          "height": "32", "format": "image/png", "showContours": "true"}
TILE = "/tiles/grid.lon/3/4/2.png"  # over Europe, where the grid is


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> AppClient:
    stores = tmp_path_factory.mktemp("extreme") / "stores"
    lonlat_store(stores / "grid.zarr")
    return AppClient(create_app(Settings(stores_dir=stores)))


def strict_json(content: bytes) -> object:
    """Parse JSON refusing NaN and Infinity, which JSON cannot hold."""
    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in JSON")
    return json.loads(content, parse_constant=refuse)


def assert_answer(response: object, acceptable: bool, kind: str) -> None:
    status = response.status_code  # type: ignore[attr-defined]
    content = response.content  # type: ignore[attr-defined]
    if not acceptable:
        assert status == 400, content
        assert b"InvalidParameterValue" in content and b"COLORSCALERANGE" in content
        return
    assert status == 200, content
    if kind == "json":
        legend = strict_json(content)["legend"]  # type: ignore[index]
        values = [entry["lowerValue"] for entry in legend]
        assert all(math.isfinite(v) for v in values) and values == sorted(values)
    else:
        Image.open(io.BytesIO(content)).load()


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(low=numbers, high=numbers)
def test_any_colour_range_gets_a_400_or_a_correct_answer(client: AppClient, low: float,
                                                         high: float) -> None:
    text = f"{low!r},{high!r}"
    acceptable = colour_range_problem(low, high) is None
    for fmt, kind in (("application/json", "json"), ("image/png", "png")):
        assert_answer(client.get("/wms", params={**LEGEND, "format": fmt,
                                                 "colorscalerange": text}), acceptable, kind)
    assert_answer(client.get("/wms", params={**GETMAP, "colorscalerange": text}),
                  acceptable, "png")
    assert_answer(client.get(TILE, params={"colorscalerange": text, "showContours": "true"}),
                  acceptable, "png")


@pytest.mark.parametrize("text", ["0,1e306", "1e308,1.7e308", "0,5e-324", "1,1.0000000000000002",
                                  "-3.4e38,3.4e38"])
def test_the_reported_ranges_are_refused_naming_the_value(client: AppClient,
                                                          text: str) -> None:
    for response in (client.get("/wms", params={**LEGEND, "format": "application/json",
                                                "colorscalerange": text}),
                     client.get("/wms", params={**GETMAP, "colorscalerange": text}),
                     client.get(TILE, params={"colorscalerange": text,
                                              "showContours": "true"})):
        assert response.status_code == 400
        assert b"InvalidParameterValue" in response.content
        assert text.encode() in response.content


@pytest.mark.parametrize("text", ["-1.7e38,1.7e38", "0,1e-30", "3.4e38,3.4028234e38"])
def test_extreme_ranges_within_float32_draw(client: AppClient, text: str) -> None:
    assert colour_range_problem(*(float(v) for v in text.split(","))) is None
    legend = client.get("/wms", params={**LEGEND, "format": "application/json",
                                        "colorscalerange": text})
    assert_answer(legend, True, "json")
    assert_answer(client.get("/wms", params={**GETMAP, "colorscalerange": text}), True, "png")


@pytest.mark.parametrize("values", [(-3.4e38, 3.4e38), (FLOAT32_MAX, FLOAT32_MAX),
                                    (1e-45, 1e-45), (-FLOAT32_MAX, 0.0)])
def test_fields_of_extreme_values_draw_with_their_own_range(tmp_path: Path,
                                                            values: tuple[float, float]) -> None:
    """A run whose statistics reach float32's limits (or are one constant) still colours."""
    lat, lon = np.arange(60.0, 29.5, -1.0), np.arange(-20.0, 40.5, 1.0)
    field = np.where(np.arange(lon.size) % 2, values[0], values[1]) * np.ones((lat.size, 1))
    field_store(tmp_path / "stores" / "grid.zarr", lonlat_grid(lat, lon), field, field)
    client = AppClient(create_app(Settings(stores_dir=tmp_path / "stores")))
    assert_answer(client.get("/wms", params={**LEGEND, "format": "application/json"}), True,
                  "json")
    assert_answer(client.get("/wms", params={**LEGEND, "format": "image/png"}), True, "png")
    assert_answer(client.get("/wms", params=GETMAP), True, "png")
    assert_answer(client.get(TILE, params={"showContours": "true"}), True, "png")
    tilejson = client.get("/tiles/grid.lon/tilejson.json")
    assert tilejson.status_code == 200
    strict_json(tilejson.content)


@pytest.mark.parametrize("entry", [
    {"id": "s", "range": [0.0, math.inf]}, {"id": "s", "range": [0.0, 1e306]},
    {"id": "s", "range": [1.0, 1.0000000000000002]}, {"id": "s", "contours": [1e39]},
    {"id": "s", "contours": [math.nan]}, {"id": "s", "breaks": [0.0, math.inf],
                                          "colors": ["#000000", "#ffffff"]}])
def test_styles_with_numbers_colouring_cannot_use_are_refused(entry: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="style 's'"):
        style_from_config(entry)



@pytest.mark.parametrize("params", [
    {"bbox": "-1.7e308,-1.7e308,1.7e308,1.7e308"}, {"bbox": "0,0,5e-324,5e-324"},
    {"bbox": "-1.7e308,-1.7e308,1.7e308,1.7e308", "crs": "EPSG:3857"},
    {"bbox": "1e300,1e300,1.1e300,1.1e300", "crs": "EPSG:3035"},
    {"elevation": "1e308"}, {"elevation": "-5e-324"}, {"bgcolor": "0xffffffff"},
    {"width": "16384", "height": "1"}, {"time": "9999-12-31T23:59:59Z"}])
def test_other_extreme_numbers_never_break_a_map(client: AppClient,
                                                 params: dict[str, str]) -> None:
    for request in ("GetMap", "GetFeatureInfo"):
        response = client.get("/wms", params={
            **GETMAP, "request": request, "query_layers": "grid.lon", "i": "0", "j": "0",
            "info_format": "application/json", **params})
        assert response.status_code in (200, 400), response.text
        if response.status_code == 200 and request == "GetMap":
            Image.open(io.BytesIO(response.content)).load()
