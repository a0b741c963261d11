"""GetLegendGraphic describes the run GetMap draws with the same parameters (issue #13, 8).

A store holds two runs whose values differ by 100: each run's own colour range (from its
statistics) spreads the colours differently, so a legend of the wrong run is visibly wrong.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from fewsmap.app.server import create_app
from fewsmap.catalog.styles import Style
from fewsmap.render.colour import palette_for
from fewsmap.render.legend import ROW_HEIGHT_PX, LegendText, legend_image
from fewsmap.settings import Settings
from tests.asgi_client import AppClient
from tests.synthetic import T0, lonlat_store

LATER = T0 + np.timedelta64(12, "h")
OFFSET = 100.0  # the later run's values: longitude + 100
RUNS = {"2026-01-01T00:00:00Z": 0.0, "2026-01-01T12:00:00Z": OFFSET}
# One pixel per cell of the grid (1°, longitudes -20..40, latitudes 30..60).
GETMAP = {"service": "WMS", "version": "1.3.0", "request": "GetMap", "styles": "",
          "crs": "CRS:84", "bbox": "-20.5,29.5,40.5,60.5", "width": "61", "height": "31",
          "format": "image/png"}
LEGEND = {"service": "WMS", "version": "1.3.0", "request": "GetLegendGraphic"}
RAMP = Style("ramp", "Ramp")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> AppClient:
    stores = tmp_path_factory.mktemp("legend") / "stores"
    lonlat_store(stores / "grid.zarr", t0=T0)
    lonlat_store(stores / "grid.zarr", t0=LATER, offset=OFFSET)
    return AppClient(create_app(Settings(stores_dir=stores)))


def ways_to_name(run: str) -> list[tuple[str, dict[str, str]]]:
    """(layer, extra parameters) naming ``run``, as GetMap accepts them."""
    return [("grid.lon", {"dim_reference_time": run}),
            ("grid.lon", {"externalForecastTime": run}),
            (f"grid.lon-{run}", {}),
            (f"grid.lon-{run}", {"dim_reference_time": run})]


def hex_colour(pixel: np.ndarray) -> str:
    return "#{:02x}{:02x}{:02x}".format(*pixel[:3])


@pytest.mark.parametrize("run", RUNS)
def test_legend_json_has_the_range_and_colours_of_the_run_drawn(client: AppClient,
                                                                run: str) -> None:
    offset = RUNS[run]
    for layer, named in ways_to_name(run):
        extra = {**named, "colorscalerange": "auto"}  # the run's own range (ncWMS)
        legend = client.get("/wms", params={**LEGEND, "layer": layer,
                                            "format": "application/json", **extra})
        assert legend.status_code == 200, legend.text
        entries = legend.json()["legend"]
        low, high = entries[0]["lowerValue"], entries[-1]["lowerValue"]
        assert (low, high) == (pytest.approx(-20 + offset), pytest.approx(40 + offset))
        image = client.get("/wms", params={**GETMAP, "layers": layer, **extra})
        assert image.status_code == 200, image.text
        pixels = np.asarray(Image.open(io.BytesIO(image.content)).convert("RGBA"))
        # The westernmost column holds the run's lowest value, the easternmost its highest.
        assert hex_colour(pixels[15, 0]) == entries[0]["color"], (layer, extra)
        assert hex_colour(pixels[15, -1]) == entries[-1]["color"], (layer, extra)


@pytest.mark.parametrize("image_format", ["image/png", "application/json"])
def test_each_way_of_naming_a_run_gives_its_legend(client: AppClient,
                                                   image_format: str) -> None:
    legends, stable = {}, set()
    for run in RUNS:
        auto = {"colorscalerange": "auto"}  # each run its own range
        answers = {client.get("/wms", params={**LEGEND, "layer": layer, "format": image_format,
                                              **extra, **auto}).content
                   for layer, extra in ways_to_name(run)}
        assert len(answers) == 1, run  # the same legend, however the run is named
        legends[run] = answers.pop()
        stable |= {client.get("/wms", params={**LEGEND, "layer": layer, "format": image_format,
                                              **extra}).content
                   for layer, extra in ways_to_name(run)}
    assert legends["2026-01-01T00:00:00Z"] != legends["2026-01-01T12:00:00Z"]
    assert len(stable) == 1  # by default one scale across the layer's runs
    latest = client.get("/wms", params={**LEGEND, "layer": "grid.lon", "format": image_format,
                                        "colorscalerange": "auto"})
    assert latest.content == legends["2026-01-01T12:00:00Z"]


def test_a_legend_of_a_run_that_does_not_exist_is_refused(client: AppClient) -> None:
    for extra in ({"dim_reference_time": "2025-01-01T00:00:00Z"},
                  {"externalForecastTime": "not a time"}):
        response = client.get("/wms", params={**LEGEND, "layer": "grid.lon", **extra})
        assert response.status_code == 400, response.text
    mismatch = client.get("/wms", params={**LEGEND, "layer": "grid.lon-2026-01-01T00:00:00Z",
                                          "dim_reference_time": "2026-01-01T12:00:00Z"})
    assert mismatch.status_code == 400


@pytest.mark.parametrize("run", RUNS)
def test_tilejson_of_a_run_links_the_legend_of_that_run(client: AppClient, run: str) -> None:
    direct = client.get("/wms", params={**LEGEND, "layer": "grid.lon", "format": "image/png",
                                        "dim_reference_time": run})
    for path, params in (("/tiles/grid.lon/tilejson.json", {"run": run}),
                         (f"/tiles/grid.lon-{run}/tilejson.json", {})):
        document = client.get(path, params=params).json()
        linked = client.get(document["legend"].removeprefix("http://fewsmap.test"))
        assert linked.status_code == 200 and linked.content == direct.content, path


def legend_json_of(client: AppClient, **extra: str) -> dict[str, object]:
    response = client.get("/wms", params={**LEGEND, "layer": "grid.lon",
                                          "format": "application/json", **extra})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_a_legend_has_the_layer_title_and_its_units(client: AppClient) -> None:
    """A zero-config title ends with its units ("lon [degrees_east]"); the legend shows
    them once, in the units row under the title."""
    response = client.get("/wms", params={**LEGEND, "layer": "grid.lon",
                                          "colorscalerange": "auto"})  # the latest run's
    drawn = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGBA"))
    expected = np.asarray(legend_image(palette_for(RAMP, None, (80.0, 140.0)),
                                       LegendText("lon", "degrees_east"), None, None))
    header = 2 * ROW_HEIGHT_PX  # the title and units rows (as many entries: the same rows)
    assert drawn.shape == expected.shape
    assert (drawn[:header] == expected[:header]).all()
    assert legend_json_of(client)["unit"] == "degrees_east"


def test_the_legend_of_a_contoured_map_lists_its_contours(client: AppClient) -> None:
    assert "contours" not in legend_json_of(client)
    assert legend_json_of(client, showContours="true", colorscalerange="auto")["contours"] == {
        "levels": [80.0, 90.0, 100.0, 110.0, 120.0, 130.0, 140.0],
        "labels": ["80", "90", "100", "110", "120", "130", "140"],
        "color": "#1a1a1a"}  # round values of the latest run's range, 80..140
    earlier = legend_json_of(client, showContours="true", colorscalerange="auto",
                             dim_reference_time="2026-01-01T00:00:00Z")["contours"]
    assert isinstance(earlier, dict) and earlier["levels"] == [-20, -10, 0, 10, 20, 30, 40]
    image = {flag: Image.open(io.BytesIO(client.get("/wms", params={
        **LEGEND, "layer": "grid.lon", "showContours": flag}).content)) for flag in
        ("false", "true")}
    assert image["true"].height == image["false"].height + 15


@pytest.mark.parametrize("style", ["bands", "warm"])
def test_each_legend_swatch_has_the_colour_of_the_map_in_its_class(configured: AppClient,
                                                                   style: str) -> None:
    """Under the title and units rows, row i's swatch is the colour GetMap draws a cell with
    a value from entry i's ``lowerValue`` up to the next entry's (``longitude``: a cell's
    value is its longitude, one pixel per cell)."""
    query = {**LEGEND, "layer": "longitude", "style": style}
    entries = configured.get("/wms", params={**query, "format": "application/json"}).json()
    values = [entry["lowerValue"] for entry in entries["legend"]]
    legend = np.asarray(Image.open(io.BytesIO(configured.get("/wms", params=query).content))
                        .convert("RGBA"))
    image = configured.get("/wms", params={**GETMAP, "layers": "longitude", "styles": style})
    pixels = np.asarray(Image.open(io.BytesIO(image.content)).convert("RGBA"))
    longitudes = np.arange(-20.0, 40.5)
    row_px = legend.shape[0] / (2 + len(values))
    for i, (low, high) in enumerate(zip(values, [*values[1:], np.inf], strict=True)):
        column = int(np.flatnonzero((longitudes >= low) & (longitudes < high))[0])
        swatch = legend[int((2 + i + 0.5) * row_px), 12]
        assert tuple(swatch) == tuple(pixels[15, column]), (style, low)
