"""Deltares' FEWS web client library (npm @deltares/fews-wms-requests) against fewsmap.

``make test`` installs the pinned library with ``npm ci --prefix tests/clients/fews-client``.
The test runs ``fews-client/fews_client.mjs`` with node against a live server and checks the
JSON it got against the TypeScript types the library ships (its ``dist/response/*.d.ts``,
generated from the FEWS JSON schemas): only typed fields, required ones present, each
well-formed.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from fewsmap.products.ensemble import listed_statistics
from tests.clients.conftest import DATA_LAYERS, GROUPS, ISO_SECONDS, latest_valid_times, run_times

CLIENT = Path(__file__).resolve().parent / "fews-client"
PACKAGE = CLIENT / "node_modules" / "@deltares" / "fews-wms-requests"
TYPES = PACKAGE / "dist" / "response"
HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
TIME_SERIES_TYPES = {"EXTERNAL_HISTORICAL", "EXTERNAL_FORECASTING", "SIMULATED_HISTORICAL",
                     "SIMULATED_FORECASTING"}


def typescript_interfaces(path: Path) -> dict[str, dict[str, bool]]:
    """``{interface: {field: required}}`` of a json-schema-to-typescript .d.ts file.

    Fields are the lines indented one level (four spaces) inside ``export interface X {``;
    nested inline object types are indented deeper and belong to their field.
    """
    interfaces: dict[str, dict[str, bool]] = {}
    current: dict[str, bool] | None = None
    for line in path.read_text().splitlines():
        if match := re.match(r"^export interface (\w+) \{$", line):
            current = interfaces.setdefault(match[1], {})
        elif line == "}":
            current = None
        elif current is not None and (match := re.match(r"^    (\w+)(\??):", line)):
            current[match[1]] = not match[2]
    return interfaces


def installed_client() -> str:
    """The node executable, once node and the pinned npm package are there (else fail)."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: the FEWS client test needs Node >= 20 and npm "
                    "(`make test` then runs `npm ci --prefix tests/clients/fews-client`)")
    if not (PACKAGE / "package.json").is_file():
        pytest.fail(f"{PACKAGE} is missing: run `npm ci --prefix tests/clients/fews-client` "
                    "(`make test` does it)")
    return node


@pytest.fixture(scope="module")
def types() -> dict[str, dict[str, bool]]:
    installed_client()
    found = {**typescript_interfaces(TYPES / "getCapabilitiesResponse.d.ts"),
             **typescript_interfaces(TYPES / "getLegendGraphicResponse.d.ts")}
    assert {"GetCapabilitiesResponse", "Layer", "LayerGroup", "BoundingBox", "Style",
            "Keyword", "Ensemble", "GetLegendGraphicResponse", "ColourMapEntry"} <= set(found)
    assert found["Layer"] == {**found["Layer"], "name": True, "title": True, "times": False}
    return found


@pytest.fixture(scope="module")
def fews(base_url: str) -> dict[str, Any]:
    """What the FEWS client library got from fewsmap (see fews-client/fews_client.mjs)."""
    done = subprocess.run([installed_client(), str(CLIENT / "fews_client.mjs"),
                           f"{base_url}/FewsWebServices/wms"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"fews_client.mjs failed:\n{done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def check_typed(value: dict[str, Any], interface: str,
                types: dict[str, dict[str, bool]]) -> None:
    """Only fields the library types, and every field it requires."""
    fields = types[interface]
    unknown = set(value) - set(fields)
    assert not unknown, f"{interface} fields the FEWS client does not know: {unknown}"
    missing = {field for field, required in fields.items() if required} - set(value)
    assert not missing, f"{interface} lacks required fields {missing}"


def check_iso(value: object) -> None:
    assert isinstance(value, str) and ISO_SECONDS.match(value), value


def check_layer(layer: dict[str, Any], types: dict[str, dict[str, bool]],
                with_times: bool = True) -> None:
    check_typed(layer, "Layer", types)
    assert isinstance(layer["name"], str) and layer["name"]
    assert isinstance(layer["title"], str)
    for text in ("abstract", "groupName", "groupTitle"):
        assert isinstance(layer.get(text, ""), str)
    assert all(isinstance(part, str) for part in layer.get("path", []))
    for keyword in layer.get("keywordList", []):
        check_typed(keyword, "Keyword", types)
        assert keyword.get("timeSeriesType", "EXTERNAL_FORECASTING") in TIME_SERIES_TYPES
        if "forecastTime" in keyword:
            check_iso(keyword["forecastTime"])
    box = layer["boundingBox"]
    check_typed(box, "BoundingBox", types)
    assert box["crs"] == "EPSG:3857"
    assert all(isinstance(box[key], str) for key in ("minx", "miny", "maxx", "maxy"))
    minx, miny, maxx, maxy = (float(box[key]) for key in ("minx", "miny", "maxx", "maxy"))
    assert -20037508.35 <= minx < maxx <= 20037508.35 and miny < maxy
    for style in layer.get("styles", []):
        check_typed(style, "Style", types)
        assert isinstance(style["title"], str) and isinstance(style.get("name", ""), str)
    for ensemble in layer.get("ensembles", []):
        check_typed(ensemble, "Ensemble", types)
        assert all(isinstance(m, str) for m in ensemble["ensembleMemberIds"])
    for boolean in ("completelyMissing", "onlyGrids", "uv"):
        assert isinstance(layer.get(boolean, False), bool | None)
    for time in ("externalForecastTime", "timesDefault", "firstValueTime", "lastValueTime"):
        if layer.get(time) is not None:
            check_iso(layer[time])
    if with_times:
        times = layer["times"]
        assert times, f"{layer['name']} has no times"
        for time in times:
            check_iso(time)
        assert times == sorted(times) and len(set(times)) == len(times)
        for time in ("timesDefault", "firstValueTime", "lastValueTime"):
            assert layer.get(time) in (None, *times)
    else:
        assert "times" not in layer


def check_capabilities(body: dict[str, Any], types: dict[str, dict[str, bool]],
                       with_times: bool = True) -> dict[str, dict[str, Any]]:
    check_typed(body, "GetCapabilitiesResponse", types)
    assert isinstance(body["title"], str) and body["title"]
    for group in body["groups"]:
        check_typed(group, "LayerGroup", types)
        assert isinstance(group["name"], str) and isinstance(group["title"], str)
        assert group["path"] and all(isinstance(p, str) for p in group["path"])
    for layer in body["layers"]:
        check_layer(layer, types, with_times)
    layers = {layer["name"]: layer for layer in body["layers"]}
    assert len(layers) == len(body["layers"]), "layer names are unique"
    return layers


def test_capabilities(fews: dict[str, Any], types: dict[str, dict[str, bool]],
                      demo_stores: Path) -> None:
    layers = check_capabilities(fews["capabilities"], types)
    assert set(DATA_LAYERS) <= set(layers)
    groups = {group["name"]: group for group in fews["capabilities"]["groups"]}
    assert set(GROUPS) <= set(groups)
    for layer in layers.values():
        assert layer.get("groupName") in groups
        assert layer.get("path") == groups[layer["groupName"]]["path"]
    qpf = layers["naefs-mean.QPF"]
    assert qpf["times"] == latest_valid_times(demo_stores, "naefs-mean")
    assert qpf["externalForecastTime"] == run_times(demo_stores, "naefs-mean")[-1]
    gust = layers["ecmwf-ens-gust.fg10_6"]
    members = [m for e in gust["ensembles"] for m in e["ensembleMemberIds"]]
    # 50 members, then the ensemble statistics over them (issue #15)
    assert len(members) == 50 + len(listed_statistics()) == len(set(members))
    assert members[50:] == list(listed_statistics())


def test_capabilities_only_headers(fews: dict[str, Any],
                                   types: dict[str, dict[str, bool]]) -> None:
    headers = check_capabilities(fews["headers"], types, with_times=False)
    full = {layer["name"]: layer for layer in fews["capabilities"]["layers"]}
    assert set(headers) == set(full)
    for name, layer in headers.items():
        assert layer == {k: v for k, v in full[name].items() if k != "times"}


def test_capabilities_for_a_forecast_period(fews: dict[str, Any],
                                            types: dict[str, dict[str, bool]],
                                            demo_stores: Path) -> None:
    layers = check_capabilities(fews["forecasts"], types)
    pattern = re.compile(r"^marfc-fmat\.t-(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)$")
    children = {name: match[1] for name in layers if (match := pattern.match(name))}
    assert set(layers) - set(children) <= {"marfc-fmat.t"}
    in_window = [t for t in run_times(demo_stores, "marfc-fmat")
                 if "2022-06-01T00:00:00Z" <= t <= "2022-06-01T18:00:00Z"]
    assert len(in_window) == 4
    # forecastCount=2: the two latest forecasts of the window, one child layer each
    assert sorted(children.values()) == in_window[-2:]
    for name, forecast_time in children.items():
        child = layers[name]
        assert child["externalForecastTime"] == forecast_time
        assert all(k["forecastTime"] == forecast_time for k in child["keywordList"])
        assert child["times"] and all(t > forecast_time for t in child["times"])


def test_legend(fews: dict[str, Any], types: dict[str, dict[str, bool]]) -> None:
    for key in ("legend", "legendRange"):
        body = fews[key]
        check_typed(body, "GetLegendGraphicResponse", types)
        assert isinstance(body.get("unit", ""), str)
        entries = body["legend"]
        assert len(entries) >= 2
        for entry in entries:
            check_typed(entry, "ColourMapEntry", types)
            assert isinstance(entry["lowerValue"], int | float)
            assert math.isfinite(entry["lowerValue"])
            assert HEX_COLOUR.match(entry["color"]), entry["color"]
            assert isinstance(entry.get("label", ""), str)
            assert isinstance(entry.get("colorSmoothing", False), bool)
        values = [entry["lowerValue"] for entry in entries]
        assert values == sorted(values) and len(set(values)) == len(values)
    assert fews["legend"]["unit"] == "degC"  # display units (useDisplayUnits defaults on)
    ranged = [entry["lowerValue"] for entry in fews["legendRange"]["legend"]]
    assert ranged[0] == pytest.approx(-10) and ranged[-1] == pytest.approx(30)


def test_requests_as_the_library_sends_them(fews: dict[str, Any], base_url: str) -> None:
    endpoint = f"{base_url}/FewsWebServices/wms?request="
    assert all(url.startswith(endpoint) for url in fews["sent"])
    assert len(fews["sent"]) == 6
    # An unknown layer fails the library's fetch with the HTTP status of the WMS exception.
    assert fews["unknownLayer"] == {"message": "Fetch Error", "status": 400}
