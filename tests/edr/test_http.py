"""The EDR API of the real service over HTTP: metadata, OpenAPI, formats, errors."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from covjson_pydantic.coverage import Coverage
from edr_pydantic.capabilities import ConformanceModel, LandingPageModel
from edr_pydantic.collections import Collection, Collections, Instance, Instances
from openapi_spec_validator import validate as validate_openapi

from fewsmap import open_cube
from fewsmap.catalog.extent import lonlat_bbox
from fewsmap.products.ensemble import listed_statistics
from fewsmap.store.cube import ForecastStore
from tests.edr.test_data import lonlat_of
from tests.live_server import live_server

MAX_VALUES = 200_000
COVJSON = "application/prs.coverage+json"
NAEFS = "/edr/collections/naefs-mean.QPF"


@pytest.fixture(scope="module")
def base(edr_stores: Path) -> Iterator[str]:
    with live_server("--stores", str(edr_stores),
                     env={"FEWSMAP_MAX_EDR_VALUES": str(MAX_VALUES)}) as url:
        yield url


def get(base: str, path: str, **params: str) -> httpx.Response:
    return httpx.get(base + path, params=params, timeout=60,
                     headers={"Origin": "http://notebook.example"})


def ok(response: httpx.Response, media_type: str = "application/json") -> httpx.Response:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(media_type)
    assert response.headers["access-control-allow-origin"] == "*"
    return response


def run_labels(stores: Path, name: str) -> list[str]:
    with open_cube(stores / f"{name}.zarr") as ds:
        return [f"{t}Z" for t in ds["forecast_reference_time"].values.astype("datetime64[s]")]


def test_landing_page_and_its_links(base: str) -> None:
    landing = LandingPageModel.model_validate_json(ok(get(base, "/edr")).text)
    rels = {link.rel: link for link in landing.links}
    assert set(rels) >= {"self", "service-desc", "conformance", "data"}
    for link in landing.links:
        assert link.type is not None
        ok(httpx.get(link.href, timeout=60, headers={"Origin": "http://x.example"}),
           link.type.split(";")[0])
    conformance = ConformanceModel.model_validate_json(ok(get(base, "/edr/conformance")).text)
    assert "http://www.opengis.net/spec/ogcapi-edr-1/1.1/conf/core" in conformance.conformsTo
    assert "http://www.opengis.net/spec/ogcapi-edr-1/1.1/conf/covjson" in conformance.conformsTo


def test_collections_describe_the_layers(base: str, edr_stores: Path) -> None:
    found = Collections.model_validate_json(ok(get(base, "/edr/collections")).text)
    by_id = {c.id: c for c in found.collections}
    assert {"naefs-mean.QPF", "ecmwf-ens-gust.fg10_6", "marfc-fmat.t", "levels.t",
            "curvilinear.lon"} <= set(by_id)
    naefs = by_id["naefs-mean.QPF"]
    with open_cube(edr_stores / "naefs-mean.zarr") as ds:
        times = ds["valid_time"].values.ravel().astype("datetime64[s]")
    assert naefs.extent.temporal is not None
    interval = naefs.extent.temporal.interval[0]
    assert [t.strftime("%Y-%m-%dT%H:%M:%S") for t in interval] == [
        str(times.min()), str(times.max())]
    assert naefs.extent.spatial.bbox[0] == list(
        lonlat_bbox(ForecastStore(edr_stores / "naefs-mean.zarr")))
    qpf = naefs.parameter_names.root["QPF"]
    assert qpf.unit is not None and qpf.unit.symbol == "mm"
    assert naefs.data_queries is not None and naefs.data_queries.cube is not None
    members = by_id["ecmwf-ens-gust.fg10_6"].parameter_names.root
    # 50 members, then the ensemble statistics over them (issue #15)
    assert len(members) == 50 + len(listed_statistics()) and "fg10_6_member_50" in members
    assert "fg10_6_member_mean" in members and "fg10_6_member_p90" in members
    vertical = by_id["levels.t"].extent.vertical
    assert vertical is not None and vertical.values == ["300", "500", "850", "1000"]
    curvilinear = by_id["curvilinear.lon"].data_queries
    assert curvilinear is not None and curvilinear.position and not curvilinear.area
    single = Collection.model_validate_json(ok(get(base, NAEFS)).text)
    assert single == naefs


def test_instances_are_the_runs(base: str, edr_stores: Path) -> None:
    listing = Instances.model_validate_json(
        ok(get(base, "/edr/collections/marfc-fmat.t/instances")).text)
    labels = run_labels(edr_stores, "marfc-fmat")
    assert [i.id for i in listing.instances] == labels[::-1]  # newest first
    oldest = listing.instances[-1]
    self_link = next(link.href for link in oldest.links if link.rel == "self")
    again = Instance.model_validate_json(ok(httpx.get(self_link, timeout=60,
                                                      headers={"Origin": "x"})).text)
    assert again == oldest
    assert oldest.data_queries is not None and oldest.data_queries.position is not None
    assert f"/instances/{labels[0]}/position" in oldest.data_queries.position.link.href
    # Other spellings of the same instant name the same run.
    short = labels[0].replace(":00:00Z", "Z").replace(":", "%3A")
    assert get(base, f"/edr/collections/marfc-fmat.t/instances/{short}").json()["id"] == (
        labels[0])


def test_openapi_is_valid_and_every_path_answers(base: str) -> None:
    document = ok(get(base, "/edr/api"), "application/vnd.oai.openapi+json").json()
    validate_openapi(document)  # raises on any structural error
    assert document["servers"] == [{"url": base}]
    parameters = document["components"]["parameters"]
    instance = get(base, NAEFS + "/instances").json()["instances"][0]["id"]
    for path, item in document["paths"].items():
        url = path.replace("{collectionId}", "naefs-mean.QPF").replace("{instanceId}",
                                                                         instance)
        query: dict[str, str] = {}
        for reference in item["get"].get("parameters", []):
            parameter = parameters[reference["$ref"].rsplit("/", 1)[1]]
            if parameter["in"] == "query" and parameter["required"]:
                example = parameter["example"]
                query[parameter["name"]] = ",".join(map(str, example)) if isinstance(
                    example, list) else example
        response = get(base, url, **query)
        assert response.status_code == 200, (url, response.text)


def test_position_over_http_in_both_formats(base: str) -> None:
    params = {"coords": "POINT(-90 40)", "datetime": "2022-08-10T00:00:00Z/.."}
    latest = ok(get(base, NAEFS + "/position", **params), "application/prs.coverage+json")
    coverage = Coverage.model_validate_json(latest.text)
    values = latest.json()["ranges"]["QPF"]["values"]
    assert coverage.domain.axes.t is not None and len(values) == len(
        coverage.domain.axes.t.values) > 0
    run = latest.json()["fewsmap:reference_time"]
    same = get(base, f"{NAEFS}/instances/{run}/position", **params)
    assert same.json() == latest.json()
    assert latest.headers["cache-control"] == "public, max-age=60"
    assert same.headers["cache-control"] == "public, max-age=3600"
    table = ok(get(base, NAEFS + "/position", f="CSV", **params), "text/csv")
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert [r["valid_time"] for r in rows] == latest.json()["domain"]["axes"]["t"]["values"]
    np.testing.assert_array_equal([float(r["value"]) if r["value"] else np.nan for r in rows],
                                  np.array(values, dtype="float64"))


def test_the_collection_answers_from_the_newest_of_several_runs(base: str,
                                                                edr_stores: Path) -> None:
    fmat = "/edr/collections/marfc-fmat.t"
    listing = Instances.model_validate_json(ok(get(base, fmat + "/instances")).text)
    newest, oldest = listing.instances[0].id, listing.instances[-1].id
    assert len(listing.instances) == 4
    box = {"bbox": "-78,39,-77,40", "useDisplayUnits": "false"}  # K, as the cube
    latest = ok(get(base, fmat + "/cube", **box), COVJSON).json()
    assert latest == get(base, f"{fmat}/instances/{newest}/cube", **box).json()
    assert latest["ranges"] != get(base, f"{fmat}/instances/{oldest}/cube", **box).json()[
        "ranges"]
    # The oracle: xarray's newest run, cells whose centres pyproj puts inside the box.
    lon, lat = lonlat_of(edr_stores, "marfc-fmat")
    in_box = (lon >= -78) & (lon <= -77) & (lat >= 39) & (lat <= 40)
    rows, cols = np.flatnonzero(in_box.any(axis=1)), np.flatnonzero(in_box.any(axis=0))
    with open_cube(edr_stores / "marfc-fmat.zarr") as ds:
        run = ds.t.isel(forecast_reference_time=-1, y=slice(rows[0], rows[-1] + 1),
                        x=slice(cols[0], cols[-1] + 1)).load()
    assert run_labels(edr_stores, "marfc-fmat")[-1] == newest
    axes = latest["domain"]["axes"]
    assert axes["x"]["values"] == run.x.values.tolist()
    assert axes["y"]["values"] == run.y.values.tolist()
    assert axes["t"]["values"] == [f"{t}Z" for t in run.valid_time.values.astype(
        "datetime64[s]")]
    values = np.array(latest["ranges"]["t"]["values"], dtype="float64").astype(np.float32)
    np.testing.assert_array_equal(values.reshape(run.shape), run.values)
    assert np.isfinite(run.values).all()


def test_members_and_levels_over_http(base: str) -> None:
    members = ok(get(base, "/edr/collections/ecmwf-ens-gust.fg10_6/area",
                     coords="POLYGON((0 50, 3 50, 3 53, 0 50))",
                     **{"parameter-name": "fg10_6_member_1,fg10_6_member_2"}),
                 "application/prs.coverage+json")
    Coverage.model_validate_json(members.text)
    assert set(members.json()["ranges"]) == {"fg10_6_member_1", "fg10_6_member_2"}
    levels = ok(get(base, "/edr/collections/levels.t/cube", bbox="40,-10,50,10",
                    crs="EPSG:4326", z="R2/500/350"), "application/prs.coverage+json")
    Coverage.model_validate_json(levels.text)
    axes = levels.json()["domain"]["axes"]
    assert axes["z"]["values"] == [500, 850]
    assert axes["x"]["values"] == [-10.0, -5.0, 0.0, 5.0, 10.0]


@pytest.mark.parametrize(("path", "params", "status", "code"), [
    (NAEFS + "/position", {"coords": "POINT(-90 40"}, 400, "InvalidParameterValue"),
    (NAEFS + "/position", {"coords": "POINT(10 10)"}, 400, "InvalidPoint"),
    (NAEFS + "/position", {}, 400, "MissingParameterValue"),
    (NAEFS + "/position", {"coords": "POINT(-90 40)", "datetime": "2031-01-01T00:00:00Z"},
     400, "InvalidDimensionValue"),  # as WMS TIME: a time the run holds no data at
    (NAEFS + "/position", {"coords": "POINT(-90 40)", "datetime": "soon"}, 400,
     "InvalidDimensionValue"),
    (NAEFS + "/position", {"coords": "POINT(-90 40)", "f": "GeoJSON"}, 400, "InvalidFormat"),
    (NAEFS + "/cube", {"bbox": "-180,-90,180,90"}, 413, "ResponseTooLarge"),
    (NAEFS + "/area", {"coords": "POLYGON((-130 20, -60 20, -60 60, -130 20))"}, 413,
     "ResponseTooLarge"),
    (NAEFS + "/area", {"coords": "POLYGON((-100 30, -90 40, -90 30, -100 40, -100 30))"}, 400,
     "InvalidParameterValue"),
    ("/edr/collections/curvilinear.lon/area", {"coords": "POLYGON((0 0, 1 0, 1 1, 0 0))"},
     400, "OperationNotSupported"),
    ("/edr/collections/nowhere/position", {"coords": "POINT(0 0)"}, 404, "NotFound"),
    ("/edr/collections/nowhere", {}, 404, "NotFound"),
    (NAEFS + "/instances/1999-01-01T00:00:00Z", {}, 404, "NotFound"),
    (NAEFS + "/instances/1999-01-01T00:00:00Z/cube", {"bbox": "0,0,1,1"}, 404, "NotFound"),
    (NAEFS + "/radius", {}, 404, "NotFound"),
    ("/edr/collections/naefs-mean.QPF/instances/x/y/z", {}, 404, "NotFound"),
    (NAEFS, {"f": "html"}, 400, "InvalidFormat"),
])
def test_bad_requests_get_json_errors(base: str, path: str, params: dict[str, str],
                                      status: int, code: str) -> None:
    response = get(base, path, **params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"code", "description"} and body["code"] == code
    assert re.search(r"\w", body["description"])
