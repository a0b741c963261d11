"""The catchment API on the demo stores: means equal exactextract's, formats, hostile input."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import shapely
from exactextract import exact_extract  # type: ignore[import-untyped]
from exactextract.raster import NumPyRasterSource  # type: ignore[import-untyped]

from fewsmap import open_cube
from fewsmap.app.server import create_app
from fewsmap.settings import Settings
from tests.asgi_client import AppClient
from tests.synthetic import six_hourly_runs_store

LAYER = "ecmwf-ens-gust.fg10_6"
SET = "demo-basins"


@pytest.fixture(scope="module")
def client(demo_stores: Path) -> AppClient:
    return AppClient(create_app(Settings(stores_dir=demo_stores)))


@pytest.fixture(scope="module")
def basins(client: AppClient) -> dict[str, Any]:
    response = client.get(f"/api/catchments/{SET}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/geo+json"
    found: dict[str, Any] = response.json()
    return found


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def exactextract_mean(demo_stores: Path, polygon: dict[str, Any], step: int,
                      member: int) -> float:
    """exactextract's area-weighted mean over one field of the gust cube."""
    with open_cube(demo_stores / "ecmwf-ens-gust.zarr") as cube:
        field = cube["fg10_6"].isel(forecast_reference_time=-1, step=step,
                                    realization=member)
        lat, lon = field["latitude"].values, field["longitude"].values
        values = np.asarray(field.values, dtype=np.float64)
    raster = NumPyRasterSource(values, lon.min() - 0.5, lat.min() - 0.5, lon.max() + 0.5,
                               lat.max() + 0.5)
    feature = {"type": "Feature", "properties": {}, "geometry": polygon}
    found = exact_extract(raster, [feature], ["mean(coverage_weight=area_spherical_m2)"])
    return float(found[0]["properties"]["mean"])


def test_the_demo_set_is_listed_and_served_as_geojson(client: AppClient,
                                                      basins: dict[str, Any]) -> None:
    listed = ok(client.get("/api/catchments"))["catchments"]
    assert [(s["name"], s["count"]) for s in listed] == [(SET, 12)]
    assert listed[0]["links"][0]["href"] == f"http://fewsmap.test/api/catchments/{SET}"
    assert basins["type"] == "FeatureCollection" and len(basins["features"]) == 12
    assert basins["features"][3]["id"] == "B04"
    assert all(shapely.geometry.shape(f["geometry"]).is_valid for f in basins["features"])


def test_every_member_s_mean_equals_exactextract(client: AppClient, basins: dict[str, Any],
                                                 demo_stores: Path) -> None:
    body = ok(client.get(f"/api/catchments/{SET}/B04", params={
        "layer": LAYER, "member": "all", "useDisplayUnits": "false"}))  # stored, to compare
    assert body["catchment"]["id"] == "B04"
    assert body["catchment"]["weighting"] == "exactextract spherical area"
    assert "cell" not in body and body["units"]
    series = body["series"]
    assert len(series) == 50 and len(series[0]["times"]) == 3
    polygon = basins["features"][3]["geometry"]
    for member, step in ((1, 0), (18, 1), (50, 2)):  # labels 1..50
        expected = exactextract_mean(demo_stores, polygon, step, member - 1)
        got = next(s for s in series if s["member"] == member)["values"][step]
        assert got == pytest.approx(expected, rel=1e-6)


def test_ensemble_statistics_are_over_the_members_catchment_means(client: AppClient) -> None:
    # in stored units: thresholds are (above:X compares stored values)
    stored = {"layer": LAYER, "useDisplayUnits": "false"}
    members = ok(client.get(f"/api/catchments/{SET}/B05", params={**stored, "member": "all"}))
    table = np.array([s["values"] for s in members["series"]], dtype=np.float64)
    threshold = round(float(np.median(table)), 1)  # a threshold some members pass
    for label, expected in (("mean", table.mean(axis=0)),
                            ("p90", np.percentile(table, 90, axis=0)),
                            (f"above:{threshold:g}", 100 * (table > threshold).mean(axis=0))):
        body = ok(client.get(f"/api/catchments/{SET}/B05", params={**stored,
                                                                  "member": label}))
        assert [s["member"] for s in body["series"]] == [label]
        np.testing.assert_allclose(body["series"][0]["values"], expected, rtol=1e-5)
    shares = 100 * (table > threshold).mean(axis=0)
    assert ((shares > 0) & (shares < 100)).any()


def test_csv_and_coveragejson(client: AppClient) -> None:
    params = {"layer": LAYER, "member": "3"}
    values = ok(client.get(f"/api/catchments/{SET}/B01", params=params))["series"][0]["values"]
    response = client.get(f"/api/catchments/{SET}/B01", params={**params, "f": "csv"})
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [float(r["value"]) for r in rows] == pytest.approx(values)
    assert rows[0]["member"] == "3" and rows[0]["lead_time"] == "P2DT12H"
    coverage = client.get(f"/api/catchments/{SET}/B01", params=params,
                          headers={"Accept": "application/prs.coverage+json"}).json()
    assert coverage["type"] == "CoverageCollection"
    assert coverage["domainType"] == "PolygonSeries"
    domain = coverage["coverages"][0]["domain"]
    assert domain["domainType"] == "PolygonSeries" and set(domain["axes"]) == {"composite",
                                                                               "t"}
    ranges = coverage["coverages"][0]["ranges"]
    assert next(iter(ranges.values()))["values"] == pytest.approx(values)


def test_the_set_with_each_feature_s_value_at_a_time(client: AppClient) -> None:
    params = {"layer": LAYER, "member": "mean", "time": "2018-11-23T06:00:00Z"}
    body = ok(client.get(f"/api/catchments/{SET}", params=params))
    assert body["time"] == "2018-11-23T06:00:00Z" and body["member"] == "mean"
    assert body["reference_time"] == "2018-11-20T12:00:00Z"
    for feature in body["features"][:3]:
        series = ok(client.get(f"/api/catchments/{SET}/{feature['id']}",
                               params={"layer": LAYER, "member": "mean"}))["series"][0]
        assert feature["properties"]["value"] == pytest.approx(series["values"][1], rel=1e-6)


def test_a_polygon_given_in_the_request_equals_the_configured_one(
        client: AppClient, basins: dict[str, Any]) -> None:
    polygon = basins["features"][6]["geometry"]
    configured = ok(client.get(f"/api/catchments/{SET}/B07",
                               params={"layer": LAYER, "member": "5"}))["series"]
    wkt = shapely.geometry.shape(polygon).wkt
    given = ok(client.get("/api/catchments", params={"layer": LAYER, "member": "5",
                                                     "geometry": wkt}))
    assert given["series"][0]["values"] == pytest.approx(configured[0]["values"], rel=1e-9)
    posted = ok(client.request("POST", "/api/catchments", {"layer": LAYER, "member": "5"},
                               content=json.dumps(polygon).encode()))
    assert posted["series"][0]["values"] == pytest.approx(configured[0]["values"], rel=1e-9)


BOW_TIE = "POLYGON((0 40, 10 50, 10 40, 0 50, 0 40))"
ANGLES = np.linspace(0, 2 * np.pi, 1_000_000, endpoint=False)
MILLION = shapely.Polygon(np.column_stack([5 * np.cos(ANGLES), 50 + 5 * np.sin(ANGLES)]))


@pytest.mark.parametrize(("path", "params", "body", "status", "says"), [
    ("/api/catchments/nope", {}, None, 400, "catchment set 'nope' is not defined"),
    (f"/api/catchments/{SET}/B99", {"layer": LAYER}, None, 400, "no catchment 'B99'"),
    (f"/api/catchments/{SET}/B01", {}, None, 400, "LAYER is required"),
    (f"/api/catchments/{SET}/B01", {"layer": "nope"}, None, 400, "'nope' is not defined"),
    (f"/api/catchments/{SET}/B01", {"layer": LAYER, "f": "netcdf"}, None, 400, "netcdf"),
    (f"/api/catchments/{SET}/B01", {"layer": LAYER, "member": "p100"}, None, 400, "p1 .. p99"),
    (f"/api/catchments/{SET}", {"layer": LAYER, "member": "all"}, None, 400, "one value"),
    (f"/api/catchments/{SET}", {"layer": LAYER, "time": "2030-01-01T00:00:00Z"}, None, 400,
     "no valid time"),
    ("/api/catchments", {"layer": LAYER, "geometry": BOW_TIE}, None, 400, "Self-intersection"),
    ("/api/catchments", {"layer": LAYER, "geometry": "POLYGON((" + "1 1," * 5000}, None, 400,
     "longer than"),
    ("/api/catchments", {"layer": LAYER, "geometry": "POLYGON((100 0, 110 0, 110 10, 100 0))"},
     None, 400, "covers no cell"),
    ("/api/catchments", {"layer": LAYER}, MILLION.wkt.encode(), 400, "larger than"),
    ("/api/catchments", {"layer": LAYER}, json.dumps({"type": "Polygon", "coordinates": [
        np.round(shapely.get_coordinates(MILLION)[::50], 4).tolist()]}).encode(), 400,
     "vertices"),  # 20 000 vertices in 500 kB
    ("/api/catchments", {"layer": LAYER}, b"\xff\xfe", 400, "UTF-8"),
    ("/api/catchments", {"layer": LAYER}, b'{"type": "Point", "coordinates": [1, 2]}', 400,
     "Polygon or MultiPolygon"),
])
def test_bad_requests_get_a_json_error_never_a_500(
        client: AppClient, path: str, params: dict[str, str], body: bytes | None, status: int,
        says: str) -> None:
    response = client.request("POST" if body is not None else "GET", path, params,
                              content=body)
    assert response.status_code == status, response.text
    assert says in response.json()["error"]["message"]


# --- the set as a WMS layer <set>:<layer> ----------------------------------------------------

TOKEN = "basin-token-0123456789"


@pytest.fixture(scope="module")
def configured(demo_stores: Path, tmp_path_factory: pytest.TempPathFactory) -> AppClient:
    folder = tmp_path_factory.mktemp("configured")
    (folder / "basins.geojson").write_bytes(
        (demo_stores / "catchments" / f"{SET}.geojson").read_bytes())
    (folder / "fewsmap.toml").write_text(f"""
[catalog]
auto_layers = true
[catchments.basins]
file = "basins.geojson"
id = "id"
title = "Basins"
layers = ["{LAYER}", "naefs-mean.QPF"]
[[security.tokens]]
token = "{TOKEN}"
layers = ["naefs-mean.QPF"]
""")
    return AppClient(create_app(Settings(stores_dir=demo_stores,
                                         config_file=folder / "fewsmap.toml")))


def png_pixels(response: httpx.Response) -> np.ndarray:
    from PIL import Image

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGBA"))


def test_the_wms_layer_fills_each_catchment_with_its_mean(configured: AppClient,
                                                         demo_stores: Path) -> None:
    from fewsmap.catalog import Catalog
    from fewsmap.render.colour import palette_for

    name = f"basins:{LAYER}"
    when = "2018-11-23T06:00:00Z"
    means = ok(configured.get("/api/catchments/basins", params={
        "layer": LAYER, "time": when, "member": "mean"}))
    image = png_pixels(configured.get("/wms", params={
        "service": "WMS", "version": "1.3.0", "request": "GetMap", "layers": name,
        "styles": "", "crs": "CRS:84", "bbox": "-20,35,30,75", "width": "500",
        "height": "400", "format": "image/png", "time": when, "dim_ensemble_member": "mean",
        "colorscalerange": "0,20"}))
    style_response = ok(configured.get("/wms", params={"request": "GetCapabilities",
                                                       "format": "application/json"}))
    entry = next(e for e in style_response["layers"] if e["name"] == name)
    assert entry["groupName"] == "basins" and entry["ensembles"]
    assert entry["times"] == ["2018-11-23T00:00:00Z", when, "2018-11-23T12:00:00Z"]
    style = Catalog(Settings(stores_dir=demo_stores)).layers[LAYER].styles[0]
    palette = palette_for(style, (0.0, 20.0), None)
    for feature in means["features"]:
        centre = shapely.geometry.shape(feature["geometry"]).representative_point()
        col, row = int((centre.x + 20) / 50 * 500), int((75 - centre.y) / 40 * 400)
        # the set answers in the units the map shows (display units)
        assert means["units"] == "km h-1"
        shown = np.array([[feature["properties"]["value"]]], dtype=np.float32)
        expected = palette.rgba(palette.indices(shown))[0, 0]
        assert tuple(image[row, col]) == tuple(expected), feature["id"]
    assert image[395, 5, 3] == 0  # the sea off Morocco: in no catchment, transparent


def test_catchment_layers_are_listed_with_the_layer_s_dimensions(
        configured: AppClient) -> None:
    xml = configured.get("/wms", params={"service": "WMS", "request": "GetCapabilities"}).text
    assert f"<Name>basins:{LAYER}</Name>" in xml
    assert '<Dimension name="ensemble_member"' in xml.split(f"<Name>basins:{LAYER}</Name>")[1]
    assert "basins:naefs-mean.QPF" not in xml  # protected with its layer
    authorised = configured.get("/wms", params={"service": "WMS", "request": "GetCapabilities"},
                                headers={"Authorization": f"Bearer {TOKEN}"}).text
    assert "<Name>basins:naefs-mean.QPF</Name>" in authorised


def test_protected_layers_protect_their_catchment_maps_and_api(configured: AppClient) -> None:
    refused = configured.get("/api/catchments/basins/B01", params={"layer": "naefs-mean.QPF"})
    assert refused.status_code == 401
    refused = configured.get("/wms", params={
        "service": "WMS", "version": "1.3.0", "request": "GetMap",
        "layers": "basins:naefs-mean.QPF", "styles": "", "crs": "CRS:84",
        "bbox": "-120,20,-60,50", "width": "64", "height": "32", "format": "image/png"})
    assert refused.status_code == 401
    exported = configured.get("/wms", params={
        "service": "WMS", "version": "1.3.0", "request": "GetMap", "layers": f"basins:{LAYER}",
        "styles": "", "crs": "CRS:84", "bbox": "-20,35,30,75", "width": "64", "height": "32",
        "format": "image/tiff;subtype=float32"})
    assert exported.status_code == 400 and "/api/catchments/basins" in exported.text


@pytest.mark.parametrize("path", [
    f"/tiles/basins:{LAYER}/4/8/5.png?member=p90",
    f"/tiles/basins:{LAYER}/tilejson.json",
    "/wmts?service=WMTS&request=GetCapabilities",
    "/edr/collections",
    f"/wms?service=WMS&version=1.3.0&request=GetLegendGraphic&layer=basins:{LAYER}"
    "&format=image/png",
    f"/wms?service=WMS&version=1.3.0&request=GetFeatureInfo&layers=basins:{LAYER}"
    f"&query_layers=basins:{LAYER}&crs=CRS:84&bbox=-20,35,30,75&width=50&height=40&i=30&j=20"
    "&info_format=application/json",
])
def test_every_front_serves_a_catchment_layer(configured: AppClient, path: str) -> None:
    response = configured.get(path)
    assert response.status_code == 200, response.text[:300]


# --- GetFeatureInfo on <set>:<layer>: what the map draws ---------------------------------

INFO_FORMATS = ["application/json", "text/plain", "text/html", "application/vnd.ogc.gml",
                "application/vnd.ogc.gml/3.1.1"]
BOX = (-20.0, 35.0, 30.0, 75.0)  # lon/lat box of a 500 × 400 map: pixels of 0.1°
WHEN = "2018-11-23T06:00:00Z"


def pixel_inside(polygon: shapely.Geometry) -> tuple[int, int]:
    """A pixel (I, J) of the map whose centre lies in ``polygon``."""
    point = polygon.representative_point()
    i, j = int((point.x - BOX[0]) * 10), int((BOX[3] - point.y) * 10)
    for di, dj in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)):
        centre = (BOX[0] + (i + di + 0.5) / 10, BOX[3] - (j + dj + 0.5) / 10)
        if shapely.contains_xy(polygon, *centre):
            return i + di, j + dj
    raise AssertionError("no pixel centre found inside the polygon")


def direct_mean(demo_stores: Path, catchment: str, member: str) -> float:
    """The catchment's mean at `WHEN` by `fewsmap.products.catchments` itself (a member's,
    or the members' mean), in the map's display units."""
    from fewsmap.catalog import Catalog
    from fewsmap.products.catchments import catchment_weights, read_means, window_of

    catalog = Catalog(Settings(stores_dir=demo_stores))
    layer, catchments = catalog.layers[LAYER], catalog.catchments[SET]
    store, run = catalog.store(layer), catalog.runs(layer)[-1]
    weights = catchment_weights(store.geometry, catchments.polygons)
    window = window_of([weights.polygons[catchments.index(catchment)]])
    assert window is not None
    with open_cube(demo_stores / "ecmwf-ens-gust.zarr") as cube:
        labels = cube["realization"].values.tolist()
    steps = run.step_slots[run.valid_times == np.datetime64(WHEN[:-1], "s")]
    means = read_means(store, layer.variables, window, run.slot, steps,
                       [list(range(len(labels)))])[0, :, 0].astype(np.float32)
    value = means.mean() if member == "mean" else means[labels.index(int(member))]
    return float(layer.default_style.to_display(np.float32(value)))


def gfi(client: AppClient, info_format: str, i: int, j: int, member: str) -> httpx.Response:
    name = f"basins:{LAYER}"
    return client.get("/wms", params={
        "service": "WMS", "version": "1.3.0", "request": "GetFeatureInfo", "layers": name,
        "query_layers": name, "styles": "", "crs": "CRS:84", "bbox": ",".join(map(str, BOX)),
        "width": "500", "height": "400", "i": str(i), "j": str(j), "time": WHEN,
        "dim_ensemble_member": member, "info_format": info_format})


def written(response: httpx.Response, info_format: str) -> list[dict[str, str]]:
    """Each feature's properties as text, read as each format writes them (HTML: the table
    row, and its caption as ``caption``)."""
    assert response.status_code == 200, response.text
    if info_format == "application/json":
        return [{k: str(v) for k, v in f["properties"].items()}
                for f in response.json()["features"]]
    if info_format == "text/plain":
        blocks = response.text.split("Results for layer")[1:]
        return [dict(line.split(" = ", 1) for line in block.splitlines() if " = " in line)
                for block in blocks]
    if info_format == "text/html":
        from lxml import html

        found = []
        for table in html.fromstring(response.content).iter("table"):
            heads = [th.text_content() for th in table.iter("th")]
            for row in table.iter("tr"):
                cells = [td.text_content() for td in row.iter("td")]
                if cells:
                    found.append({**dict(zip(heads, cells, strict=True)),
                                  "caption": table.find("caption").text_content()})
        return found
    from lxml import etree

    return [{node.tag.split("}")[1]: node.text or "" for node in value}
            for value in etree.fromstring(response.content).iter(
                "{urn:fewsmap:featureinfo}PointValue")]


@pytest.mark.parametrize("info_format", INFO_FORMATS)
@pytest.mark.parametrize("member", ["mean", "3"])
def test_featureinfo_on_a_catchment_layer_answers_the_catchment_mean(
        configured: AppClient, basins: dict[str, Any], demo_stores: Path, info_format: str,
        member: str) -> None:
    polygon = shapely.geometry.shape(basins["features"][3]["geometry"])
    [feature] = written(gfi(configured, info_format, *pixel_inside(polygon), member),
                        info_format)
    units = ok(configured.get("/wms", params={
        "request": "GetLegendGraphic", "layer": f"basins:{LAYER}",
        "format": "application/json"}))["unit"]
    assert float(feature["value"]) == pytest.approx(direct_mean(demo_stores, "B04", member),
                                                    rel=1e-6)
    if info_format == "text/html":
        assert "catchment B04 (Synthetic basin 4)" in feature["caption"]
        assert f", {units})" in feature["caption"]
    else:
        assert (feature["catchment"], feature["catchment_name"], feature["units"]) == (
            "B04", "Synthetic basin 4", units)
        assert feature["member"] == member


@pytest.mark.parametrize("info_format", INFO_FORMATS)
def test_featureinfo_outside_every_catchment_answers_no_feature(configured: AppClient,
                                                                info_format: str) -> None:
    response = gfi(configured, info_format, 5, 395, "mean")  # the sea off Morocco
    assert written(response, info_format) == []
    if info_format == "application/json":
        assert response.json()["type"] == "FeatureCollection"
    elif info_format in ("text/plain", "text/html"):
        assert "no features" in response.text


def test_featureinfo_on_a_catchment_layer_counts_every_cell_it_reads(
        configured: AppClient, basins: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """A catchment's value reads each of its cells: the catchment API's read limit holds."""
    from fewsmap.resolve import catchments

    i, j = pixel_inside(shapely.geometry.shape(basins["features"][3]["geometry"]))
    assert ok(gfi(configured, "application/json", i, j, "mean"))["features"]
    monkeypatch.setattr(catchments, "MAX_READ_VALUES", 49)  # 50 members of one cell each
    refused = gfi(configured, "application/json", i, j, "mean")
    assert refused.status_code == 400 and "InvalidParameterValue" in refused.text
    assert "at most 49" in refused.text and "values" in refused.text


@pytest.fixture(scope="module")
def runs_client(tmp_path_factory: pytest.TempPathFactory) -> AppClient:
    """Three six-hourly runs of 8 steps of rain on a 1° grid (tests/synthetic.py)."""
    stores = tmp_path_factory.mktemp("catchment-runs") / "stores"
    six_hourly_runs_store(stores / "runs.zarr")
    return AppClient(create_app(Settings(stores_dir=stores)))


RUNS_POLYGON = "POLYGON((1.5 45.5, 6.2 45.5, 6.2 48.7, 1.5 48.7, 1.5 45.5))"


def catchment_series(client: AppClient, **params: str) -> dict[str, Any]:
    return ok(client.get("/api/catchments", params={"geometry": RUNS_POLYGON, **params}))


def test_a_catchment_s_change_is_the_difference_of_its_runs_means(
        runs_client: AppClient) -> None:
    """``baseline=previous`` on a catchment: the latest run's mean minus the previous
    run's at the valid times they share, as the two runs' own catchment series give them."""
    *_, previous, latest = catchment_series(runs_client, layer="runs.rain", runs="all")["series"]
    change = catchment_series(runs_client, layer="runs.rain", baseline="previous")
    [entry] = change["series"]
    assert entry["baseline_reference_time"] == previous["reference_time"]
    before = dict(zip(previous["times"], previous["values"], strict=True))
    now = dict(zip(latest["times"], latest["values"], strict=True))
    assert entry["times"] == [t for t in latest["times"] if t in before]
    np.testing.assert_allclose(entry["values"], [now[t] - before[t] for t in entry["times"]],
                               rtol=1e-6, atol=1e-6)


def test_a_catchment_s_sum_is_the_sum_of_its_step_means(runs_client: AppClient) -> None:
    """``accumulate=PT12H``: the sum of the catchment's means of the two 6-hourly steps
    ending at each valid time (the mean of sums is the sum of means)."""
    steps = catchment_series(runs_client, layer="runs.rain")["series"][0]
    sums = catchment_series(runs_client, layer="runs.rain", accumulate="PT12H")
    [entry] = sums["series"]
    assert entry["accumulation"] == "PT12H"
    values = dict(zip(steps["times"], steps["values"], strict=True))
    times = steps["times"]
    # the window ending at the first step (0 h) and the second (6 h) reaches before the run
    assert entry["times"] == times[2:]
    expected = [values[times[k - 1]] + values[times[k]] for k in range(2, len(times))]
    np.testing.assert_allclose(entry["values"], expected, rtol=1e-6)


def test_a_set_refuses_a_change_or_a_sum(client: AppClient) -> None:
    for product in ({"baseline": "previous"}, {"accumulate": "PT12H"}):
        response = client.get(f"/api/catchments/{SET}", params={"layer": LAYER, **product})
        assert response.status_code == 400
        assert "per catchment" in response.json()["error"]["message"]
