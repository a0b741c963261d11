"""Hypothesis strategies of realistic but hostile requests, one family per kind of endpoint.

A request starts from a valid one of its family (a GetMap that draws, a tile that exists,
an EDR position query inside the grid) and then gets a few mutations: a value replaced by a
hostile one, a parameter dropped, duplicated or renamed in another case, a junk parameter,
the whole thing percent-encoded in an odd way. So the parsers see every kind of garbage and
the renderers see requests that are valid except for one odd value.

`ROUTES` names the family of every route template; `tests/fuzz/test_fuzz.py` fails for a
route of the app that is missing here, so a new endpoint cannot escape the fuzzer.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import cache
from urllib.parse import quote, quote_plus

from hypothesis import strategies as st

from tests.fuzz.asgi import RawRequest


@dataclass(frozen=True)
class Names:
    """Real names of the fuzzed service, so that many requests get past the first check."""

    layers: tuple[str, ...]
    groups: tuple[str, ...]
    stores: tuple[str, ...]
    runs: tuple[str, ...]  # per-run layer ids <layer>-<T0>
    times: tuple[str, ...]  # valid times and reference times of the stores
    store_keys: tuple[str, ...]  # files inside a store (zarr.json, chunks; and as Zarr v2)
    secret_path: str  # absolute path of a file outside the stores that must never leak


# --- values -------------------------------------------------------------------------------

NUMBERS = ["0", "-0", "1", "-1", "2", "255", "256", "257", "1024", "4096", "16384", "16385",
           "65536", "2147483647", "2147483648", "-2147483649", "18446744073709551616",
           "9" * 40, "9" * 5000, "1e309", "-1e309", "1e-320", "1e-300", "nan", "NaN", "-nan",
           "inf", "-inf", "Infinity", "1.5", "0.5", "-0.5", "1e3", "1E2", "0x10", "0o7",
           "1_000", "\u0663", "\uff11\uff12", " 5 ", "5\x00", "+5", ".", "-", "", "1,2"]
BBOXES = ["-180,-90,180,90", "-90,-180,90,180", "10,10,0,0", "0,0,0,0", "1,1,1,2",
          "0,0,1e-300,1e-300", "-1e308,-1e308,1e308,1e308", "nan,0,1,1", "0,0,inf,1",
          "1,2,3", "1,2,3,4,5", ",,,", "a,b,c,d", "-20037508.34,-20037508.34,20037508.34,"
          "20037508.34", "-13914936,2875744,-7235766,7170156", "-1e16,-1e16,1e16,1e16",
          "179.9,0,180.1,1", "-200,-100,200,100", "0,89.99999,1,90", "1 2 3 4",
          "-9.2e18,-9.2e18,9.2e18,9.2e18", "0,0,1,1e-15"]
CRSES = ["EPSG:4326", "EPSG:3857", "CRS:84", "OGC:CRS84", "EPSG:900913", "EPSG:32632",
         "EPSG:999999", "EPSG:", "EPSG:-1", "EPSG:4326:4326", "epsg:4326", "AUTO:42001,9001,0,0",
         "urn:ogc:def:crs:EPSG::4326", "http://www.opengis.net/def/crs/EPSG/0/4326",
         "+proj=longlat", "PROJCS[\"x\"]", "EPSG:" + "9" * 30]
TIMES = ["current", "now", "present", "all", "latest", "2022-08-09T06:00:00Z",
         "2022-08-09T06:00:00.000Z", "2022-08-09", "2022-08-09T06Z", "2022-08-09T06:00",
         "2022-08-09T24:00:00Z", "2022-08-09T06:00:60Z", "2022-02-30T00:00:00Z",
         "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "-1000-01-01", "+12022-01-01",
         "2022-08-09T06:00:00+14:00", "2022-08-09T06:00:00-99:99",
         "2022-08-09T06:00:00Z/2022-08-25T00:00:00Z",
         "2022-08-09T06:00:00Z/2022-08-25T00:00:00Z/PT6H",
         "2022-08-25T00:00:00Z/2022-08-09T06:00:00Z", "1900-01-01/2100-01-01/PT1S",
         "2022-08-09/2022-08-10/P0D", "2022-08-09/2022-08-10/PT-6H", "2022/2023/P1Y",
         "2022-08-09T06:00:00Z,2022-08-09T12:00:00Z,2022-08-09T18:00:00Z",
         "..", "../2022-08-10", "2022-08-09/..", "\u0662\u0660\u0662\u0662-08-09", "P1D", ""]
DURATIONS = ["PT6H", "PT0S", "P1D", "-PT6H", "PT1S", "P9999999999D", "PT1.5H", "P", "PT",
             "P1Y", "P1M", "PT6H30M", "6", "nan"]
INFO_FORMATS = ["text/plain", "text/html", "application/json", "application/vnd.ogc.gml",
                "application/vnd.ogc.gml/3.1.1"]
FORMATS = ["image/png", "image/jpeg", "image/tiff", "image/gif", "image/apng", "image/webp",
           "image/png; mode=8bit", "image/tiff;subtype=float32", "application/x-netcdf",
           "application/json", "json", "text/xml", "text/html", "text/plain", "csv",
           "covjson", "CoverageJSON", "CSV", "image/svg+xml", "application/vnd.ogc.gml",
           "application/vnd.ogc.gml/3.1.1", "image/", "*/*", "image/png\x00"]
PATHS = ["../", "..", "%2e%2e", "..%2f..%2f", "../../../../etc/passwd", "/etc/passwd",
         "....//....//etc/passwd", "..\\..\\windows\\win.ini", "C:\\boot.ini", "~root",
         "\x00", "%00", "a/../../b", ".lock", ".writing", "zarr.json/..", "//etc//passwd",
         "file:///etc/passwd", "\\\\server\\share", ".", "/", "", " ", "\u2215etc\u2215passwd",
         "..\u2044..\u2044etc", "%252e%252e%252f", "..;/", "/proc/self/environ"]
# The token tests/fuzz/conftest.py configures for the layer grid.lat and the group marfc-fmat.
FUZZ_TOKEN = "fuzz-token-0123456789"
TEXT = [FUZZ_TOKEN, "", " ", "<script>alert(1)</script>", "]]>", "\"'&<>", "\x00", "\x01\x1f\x7f",
        "\u202e\u0000", "\ud7ff\ue000\ufffd", "\ufffe\uffff", "\U0001f600", "a" * 300,
        "a" * 10_001, "%s%n%x", "${jndi:ldap://x}", "{{7*7}}", "' OR 1=1 --", "true",
        "false", "TRUE", "1", "yes", "default", "Select a style", "sum", "max", "rain:sum",
        "ensemble_3", "0xFF00FF", "#zzzzzz", "INIMAGE", "BLANK", "application/json",
        "1.3.0", "1.1.1", "1.3", "2.0", "WMS", "WMTS", "GetMap", "DescribeLayer",
        "GetStyles"]
XXE = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
       b"<GetMap><Layer>&x;</Layer></GetMap>")


NASTY = st.one_of(st.sampled_from(TEXT), st.text(max_size=40))

SLD_HEAD = ('<StyledLayerDescriptor version="1.0.0" xmlns="http://www.opengis.net/sld">'
            "<NamedLayer><Name>{layer}</Name><UserStyle><FeatureTypeStyle><Rule>"
            "<RasterSymbolizer>{opacity}<ColorMap type=\"{kind}\">{entries}</ColorMap>"
            "</RasterSymbolizer></Rule></FeatureTypeStyle></UserStyle></NamedLayer>"
            "</StyledLayerDescriptor>")
# Bodies that must be refused quickly: external entities, entity expansion, deep nesting,
# many elements, beyond the size limit, and malformed or misnamed documents.
HOSTILE_SLD = [
    XXE.decode(),
    '<!DOCTYPE d [<!ENTITY % p SYSTEM "http://169.254.169.254/"> %p;]><d/>',
    '<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">'
    ']><l>&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;</l>',
    "<a>" * 3000 + "</a>" * 3000,
    "<a>" + "<b/>" * 3000 + "</a>",
    '<StyledLayerDescriptor xmlns="http://www.opengis.net/sld"><!--' + "x" * 70_000 + "-->",
    "<StyledLayerDescriptor", "<StyledLayerDescriptor/>", "&lol;", "<?xml?>",
    '<StyledLayerDescriptor xmlns="http://www.opengis.net/sld"><NamedLayer>'
    "<Name>x</Name></NamedLayer></StyledLayerDescriptor>",
]
SLD_ENTRIES = ('<ColorMapEntry color="#2851CC" quantity="0" opacity="0"/>'
               '<ColorMapEntry color="#211F1F" quantity="5" label="5"/>'
               '<ColorMapEntry color="#EE0F0F" quantity="280"/>')
SLD_COLOURS = ["#008000", "#663333", "#FFFFFF", "0xFF00FF", "#zzzzzz", "red", "", "#fff"]
SLD_OPACITIES = ["0", "1", "0.5", "1.5", "-1", "nan", "", "1e309"]


def time_lists(names: Names) -> st.SearchStrategy[str]:
    """Lists of real and odd times: short ones, and long ones up to beyond every limit."""
    pool = [*names.times, *TIMES[:12]]
    short = st.lists(st.sampled_from(pool), min_size=2, max_size=20).map(",".join)
    long = st.builds(lambda n, k: ",".join(pool[(k + i) % len(pool)] for i in range(n)),
                     st.integers(90, 1500), st.integers(0, len(pool)))
    return short | long


def layer_names(names: Names) -> st.SearchStrategy[str]:
    real = [*names.layers, *names.groups, *names.runs, *names.stores]
    odd = [f"{layer}{path}" for layer in names.layers[:2]
           for path in ("/..", "/../..", "\x00", " ", "-2099-01-01T00:00:00Z")]
    return st.one_of(st.sampled_from(real), st.sampled_from(real),
                     st.sampled_from(PATHS + odd + [names.secret_path]), NASTY)


@cache  # strategies are built once: hypothesis validates each new one, which is slow
def values(names: Names) -> dict[str, st.SearchStrategy[str]]:
    """Value strategies by parameter kind."""
    number = st.one_of(st.sampled_from(NUMBERS), st.integers(-10**6, 10**6).map(str),
                       st.floats(allow_nan=True, allow_infinity=True).map(repr))
    return {
        "number": number,
        "size": st.one_of(st.integers(1, 64).map(str), number),
        "bbox": st.one_of(st.sampled_from(BBOXES),
                          st.lists(st.floats(width=32).map(repr), min_size=0, max_size=6)
                          .map(",".join)),
        "crs": st.sampled_from(CRSES),
        "time": st.one_of(st.sampled_from(list(names.times)), st.sampled_from(TIMES),
                          time_lists(names)),
        "duration": st.sampled_from(DURATIONS),
        "format": st.sampled_from(FORMATS),
        "layer": layer_names(names),
        "text": NASTY,
        "wkt": st.one_of(st.sampled_from(WKT), wkt_polygons()),
        "sld": sld_bodies(names, number),
    }


def sld_bodies(names: Names, number: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """SLD_BODY documents: drawable ones of real layers, odd ones and hostile ones."""
    entry = st.builds(
        '<ColorMapEntry color="{}" quantity="{}" opacity="{}" label="{}"/>'.format,
        st.sampled_from(SLD_COLOURS), st.one_of(st.integers(-50, 400).map(str), number),
        st.sampled_from(SLD_OPACITIES), st.sampled_from(["", "low", "&amp;", "\u964d\u6c34"]))
    document = st.builds(
        lambda layer, kind, entries, opacity: SLD_HEAD.format(
            layer=layer, kind=kind, entries="".join(entries),
            opacity=f"<Opacity>{opacity}</Opacity>" if opacity else ""),
        st.one_of(st.sampled_from(names.layers), layer_names(names)),
        st.sampled_from(["ramp", "intervals", "values", "spline", ""]),
        st.lists(entry, max_size=12), st.sampled_from(["", *SLD_OPACITIES]))
    valid_entries = st.builds(
        lambda quantities, colours: "".join(
            f'<ColorMapEntry color="{c}" quantity="{q!r}" opacity="{i % 2}"/>'
            for i, (q, c) in enumerate(zip(sorted(quantities), colours, strict=False))),
        st.sets(st.floats(-1e6, 1e6, width=32), min_size=2, max_size=20),
        st.lists(st.sampled_from(SLD_COLOURS[:3]), min_size=20, max_size=20))
    drawable = st.builds(
        lambda layer, kind, entries: SLD_HEAD.format(layer=layer, kind=kind, entries=entries,
                                                     opacity=""),
        st.sampled_from(names.layers), st.sampled_from(["ramp", "intervals", "values"]),
        valid_entries)
    return st.one_of(drawable, document, document, st.sampled_from(HOSTILE_SLD), NASTY)


WKT = ["POINT(-90 40)", "POINT(-90 40 0)", "POINT(nan nan)", "POINT(1e309 0)",
       "POINT(0 0)", "POINT (-105.0 40.0)", "POINT()", "POINT(1)", "POINT(a b)",
       "POLYGON((-100 30,-80 30,-80 45,-100 45,-100 30))", "POLYGON((0 0,1 0,0 0))",
       "POLYGON((-180 -90,180 -90,180 90,-180 90,-180 -90))", "POLYGON(())",
       "MULTIPOLYGON(((-100 30,-80 30,-80 45,-100 30)))", "LINESTRING(0 0,1 1)",
       "GEOMETRYCOLLECTION EMPTY", "POINT EMPTY", "POLYGON((0 0,1e308 0,1e308 1e308,0 0))"]


@st.composite
def wkt_polygons(draw: st.DrawFn) -> str:
    """Polygons with many vertices, some degenerate or self-crossing."""
    points = draw(st.lists(st.tuples(st.floats(-200, 200), st.floats(-100, 100)),
                           min_size=0, max_size=300))
    ring = ",".join(f"{x!r} {y!r}" for x, y in [*points, *points[:1]])
    return f"POLYGON(({ring}))"


# --- families -----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Family:
    """Endpoints that share parameters and an error format.

    ``errors``: ``wms`` (ServiceExceptionReport, or JSON when JSON was asked), ``wmts`` (OWS
    ExceptionReport), ``json`` (``{"error": {"code", "message"}}``), ``edr`` (``{"code",
    "description"}``).
    """

    name: str
    errors: str
    params: dict[str, str]  # parameter name → value kind


WMS_PARAMS = {
    "service": "text", "request": "text", "version": "text", "layers": "layer",
    "layer": "layer", "query_layers": "layer", "styles": "text", "style": "text",
    "crs": "crs", "srs": "crs", "bbox": "bbox", "width": "size", "height": "size",
    "format": "format", "info_format": "format", "exceptions": "text", "time": "time",
    "elevation": "number", "dim_reference_time": "time", "externalForecastTime": "time",
    "dim_lead_time": "duration", "dim_ensemble_member": "text", "ensembleMemberId": "number",
    "dim_realization": "number", "dim_level": "number", "reducer": "text",
    "colorscalerange": "bbox", "showContours": "text", "transparent": "text",
    "bgcolor": "text", "i": "number", "j": "number", "x": "number", "y": "number",
    "feature_count": "number", "onlyHeaders": "text", "startForecastTime": "time",
    "endForecastTime": "time", "forecastCount": "number", "convertUVtoRG": "text",
    "frame_duration": "number", "animation_timestamp": "text", "sld": "layer",
    "sld_body": "sld", "api_key": "text",
}
TILE_PARAMS = {"time": "time", "run": "time", "elevation": "number", "member": "number",
               "style": "text", "sld_body": "sld", "colorscalerange": "bbox",
               "showContours": "text", "dim_level": "number", "format": "format",
               "width": "size", "bbox": "bbox"}
WMTS_PARAMS = {"service": "text", "request": "text", "version": "text", "layer": "layer",
               "style": "text", "format": "format", "tilematrixset": "text",
               "tilematrix": "number", "tilerow": "number", "tilecol": "number",
               "time": "time", "run": "time", "elevation": "number",
               "ensemble_member": "number", "infoformat": "format", "i": "number",
               "j": "number"}
API_PARAMS = {"layer": "layer", "x": "number", "y": "number", "crs": "crs", "run": "time",
              "runs": "number", "start": "time", "end": "time", "member": "number",
              "elevation": "number", "format": "format", "f": "format", "lon": "number",
              "lat": "number", "baseline": "time", "accumulate": "duration",
              "useDisplayUnits": "text"}
CATCHMENT_PARAMS = {**API_PARAMS, "geometry": "wkt", "time": "time", "baseline": "time"}
EDR_PARAMS = {"coords": "wkt", "bbox": "bbox", "datetime": "time", "z": "number",
              "parameter-name": "text", "crs": "crs", "f": "format", "limit": "number",
              "baseline": "time", "accumulate": "duration", "useDisplayUnits": "text"}
PLAIN_PARAMS = {"format": "format", "f": "format", "request": "text"}

WMS = Family("wms", "wms", WMS_PARAMS)
TILES = Family("tiles", "json", TILE_PARAMS)
WMTS = Family("wmts", "wmts", WMTS_PARAMS)
API = Family("api", "json", API_PARAMS)
CATCHMENTS = Family("catchments", "json", CATCHMENT_PARAMS)
EDR = Family("edr", "edr", EDR_PARAMS)
ZARR = Family("zarr", "json", PLAIN_PARAMS)
PAGES = Family("pages", "json", PLAIN_PARAMS)  # health, OpenAPI
STATIC = Family("static", "json", PLAIN_PARAMS)  # the viewer page and its files
UNKNOWN = Family("unknown", "json", PLAIN_PARAMS)  # paths no route answers: a JSON 404

# Every route template of the app → its family. A route missing here fails test_fuzz.py.
ROUTES: dict[str, Family] = {
    "/": STATIC,
    "/health": PAGES,
    "/health/live": PAGES,
    "/health/ready": PAGES,
    "/metrics": PAGES,
    "/viewer/assets": STATIC,
    "/viewer/vendor": STATIC,
    "/wms": WMS,
    "/FewsWebServices/wms": WMS,
    "/api/timeseries": API,
    "/api/openapi.json": PAGES,
    "/api/catchments": CATCHMENTS,
    "/api/catchments/{name}": CATCHMENTS,
    "/api/catchments/{name}/{id}": CATCHMENTS,
    "/tiles/{layer}/tilejson.json": TILES,
    "/tiles/{layer}/{z}/{x}/{tile}": TILES,
    "/wmts": WMTS,
    "/wmts/1.0.0/WMTSCapabilities.xml": WMTS,
    "/wmts/1.0.0/{layer}/{path:path}": WMTS,
    "/zarr/{store}": ZARR,
    "/zarr/{store}/{key:path}": ZARR,
    "/zarr-v2/{store}": ZARR,
    "/zarr-v2/{store}/{key:path}": ZARR,
    "/edr": EDR,
    "/edr/": EDR,
    "/edr/api": EDR,
    "/edr/conformance": EDR,
    "/edr/collections": EDR,
    "/edr/collections/{layer}": EDR,
    "/edr/collections/{layer}/instances": EDR,
    "/edr/collections/{layer}/instances/{run}": EDR,
    "/edr/collections/{layer}/instances/{run}/{query}": EDR,
    "/edr/collections/{layer}/{query}": EDR,
    "/edr/{rest:path}": EDR,
}
# Not a route of the app: paths that none answers, fuzzed as if it were one.
UNROUTED = "/{unrouted:path}"
FAMILIES: dict[str, Family] = {**ROUTES, UNROUTED: UNKNOWN}
# Paths beside the routes (no trailing slash: a redirect would find the route) and roots that
# nothing is under, for hostile paths below them.
DEAD_ENDS = ["api", "api/v2", "tiles", "tiles/x", "zarr", "zarr-v2", "viewer", "viewer/x",
             "health/x", "wmsx", "wmts.xml", "edrs", "FewsWebServicesX", "index.html",
             "favicon.ico", "robots.txt", ".env", ".git/config", "admin", "cgi-bin/test",
             "\u00e9t\u00e9"]
DEAD_ROOTS = ["nothing", "admin", ".git", "static", "cgi-bin"]


@cache
def valid_queries(family: Family, names: Names) -> st.SearchStrategy[list[tuple[str, str]]]:
    """Queries of ``family`` that a correct server answers with data."""
    layer = st.sampled_from(names.layers)
    time = st.sampled_from(names.times)
    if family is WMS:
        getmap = st.builds(lambda lyr, size, fmt: [
            ("service", "WMS"), ("request", "GetMap"), ("version", "1.3.0"), ("layers", lyr),
            ("styles", ""), ("crs", "EPSG:3857"), ("bbox", "-13914936,2875744,-7235766,7170156"),
            ("width", str(size)), ("height", str(size)), ("format", fmt)],
            layer, st.integers(1, 64), st.sampled_from(FORMATS[:8]))
        info = st.builds(lambda lyr, i: [
            ("request", "GetFeatureInfo"), ("layers", lyr), ("query_layers", lyr),
            ("crs", "CRS:84"), ("bbox", "-130,20,-60,55"), ("width", "50"), ("height", "50"),
            ("i", str(i)), ("j", str(i)), ("info_format", "application/json"), ("time", "all")],
            layer, st.integers(0, 49))
        other = st.builds(lambda lyr, req: [("request", req), ("layers", lyr), ("layer", lyr),
                                            ("format", "application/json")],
                          layer, st.sampled_from(["GetLegendGraphic", "GetCapabilities",
                                                  "DescribeLayer", "GetStyles"]))
        styled = st.builds(lambda pairs, kind, opacity: [*pairs, ("sld_body", SLD_HEAD.format(
            layer=dict(pairs)["layers"], kind=kind, entries=SLD_ENTRIES, opacity=opacity))],
            getmap, st.sampled_from(["ramp", "intervals", "values"]),
            st.sampled_from(["", "<Opacity>0.5</Opacity>"]))
        return st.one_of(getmap, getmap, styled, info, other)
    if family is TILES:
        return st.lists(st.tuples(st.sampled_from(["time", "run"]), time), max_size=2)
    if family is WMTS:
        tile = st.builds(lambda lyr, z, req: [
            ("service", "WMTS"), ("request", req), ("version", "1.0.0"), ("layer", lyr),
            ("style", "default"), ("format", "image/png"), ("tilematrixset", "WebMercatorQuad"),
            ("tilematrix", str(z)), ("tilerow", str(2**z // 3)), ("tilecol", str(2**z // 4))],
            layer, st.integers(0, 6), st.sampled_from(["GetTile", "GetTile", "GetCapabilities"]))
        info = st.builds(lambda pairs, i, j, fmt: [
            *[(k, "GetFeatureInfo" if k == "request" else v) for k, v in pairs],
            ("i", str(i)), ("j", str(j)), ("infoformat", fmt)],
            tile, st.integers(0, 255), st.integers(0, 255), st.sampled_from(INFO_FORMATS))
        return st.one_of(tile, tile, info)
    if family is API:
        return st.builds(lambda lyr, x, y: [("layer", lyr), ("x", repr(x)), ("y", repr(y))],
                         layer, st.floats(-130, 40), st.floats(20, 60))
    if family is CATCHMENTS:
        return st.builds(lambda lyr: [("layer", lyr)], layer)
    if family is EDR:
        return st.builds(lambda x, y: [("coords", f"POINT({x!r} {y!r})"),
                                       ("bbox", "-100,30,-90,40"), ("parameter-name", "QPF")],
                         st.floats(-130, -60), st.floats(20, 55))
    return st.just([])


def path_segment(kind: str, names: Names) -> st.SearchStrategy[str]:
    """A path parameter's text (before encoding), valid or hostile."""
    return path_segments(names)[kind]


@cache
def path_segments(names: Names) -> dict[str, st.SearchStrategy[str]]:
    return {
        "layer": layer_names(names),
        "store": st.one_of(st.sampled_from(names.stores), st.sampled_from(PATHS), NASTY),
        "z": st.one_of(st.integers(0, 8).map(str), st.sampled_from(NUMBERS)),
        "x": st.one_of(st.integers(0, 40).map(str), st.sampled_from(NUMBERS)),
        "tile": st.one_of(st.integers(0, 40).map(lambda y: f"{y}.png"),
                          st.integers(0, 40).map(lambda y: f"{y}@2x.png"),
                          st.sampled_from(NUMBERS).map(lambda y: f"{y}.png"),
                          st.sampled_from(["1.jpg", "1.png.png", ".png", "1@3x.png"])),
        "run": st.one_of(st.sampled_from(names.times), st.sampled_from(TIMES)),
        "query": st.sampled_from(["position", "area", "cube", "radius", "trajectory",
                                  "corridor", "items", "locations", "", "..", "POSITION"]),
        "path": st.one_of(rest_tile_paths(), st.sampled_from(PATHS),
                          st.sampled_from(names.store_keys),
                          st.sampled_from(["index.html", "app.js", "viewer.js", "ol.js",
                                           "../__init__.py", "..%2f__init__.py",
                                           names.secret_path])),
        "key": st.one_of(st.sampled_from(names.store_keys), st.sampled_from(PATHS),
                         st.sampled_from(names.store_keys).map(lambda k: "../" + k),
                         st.just(names.secret_path), NASTY),
        "rest": st.one_of(st.sampled_from(PATHS), NASTY),
        "name": st.one_of(st.just("demo-basins"), st.sampled_from(PATHS), NASTY),
        "id": st.one_of(st.sampled_from(["B01", "B04", "B99"]), NASTY),
        "unrouted": st.one_of(st.sampled_from(DEAD_ENDS), st.builds(
            "{}/{}".format, st.sampled_from(DEAD_ROOTS), st.one_of(st.sampled_from(PATHS), NASTY))),
    }


@st.composite
def rest_tile_paths(draw: st.DrawFn) -> str:
    dims = draw(st.lists(st.sampled_from(["current", "latest", "2022-08-09T06:00:00Z",
                                          "default", "850"]), max_size=3))
    z = draw(st.integers(0, 6))
    tile = [str(z), str(draw(st.integers(0, 2**z))), str(draw(st.integers(0, 2**z)))]
    path = "/".join(["default", *dims, draw(st.sampled_from(["WebMercatorQuad", "x"])), *tile])
    if draw(st.booleans()):  # a FeatureInfo resource: {J}/{I}.<extension> below the tile
        pixel = draw(st.lists(st.integers(-1, 256).map(str), min_size=2, max_size=2))
        extension = draw(st.sampled_from(["json", "txt", "html", "gml", "xml", "png", "csv"]))
        return f"{path}/{'/'.join(pixel)}.{extension}"
    return f"{path}.png"


# --- encodings ----------------------------------------------------------------------------

UNRESERVED = string.ascii_letters + string.digits + "-._~"
BROKEN_ESCAPES = ["%FF", "%FE%FF", "%C0%AE", "%C0%AF", "%E0%80%AE", "%ED%A0%80", "%F8%88%80%80",
                  "%E2%82", "%ZZ", "%", "%0", "%00", "%u002e", "%25", "%2e%2e%2f", "%252e"]


ENCODINGS = st.sampled_from(["standard", "standard", "standard", "loose", "over", "double",
                             "plus", "broken"])
SUFFIXES = st.sampled_from(BROKEN_ESCAPES)
ACTIONS = st.sampled_from(["replace", "replace", "add", "drop", "duplicate", "case", "junk"])
SEPARATORS = st.sampled_from(["&", "&", "&", "&&", ";", "&amp;"])
METHODS = st.sampled_from(["GET"] * 12 + ["HEAD", "POST", "OPTIONS", "PUT", "DELETE"])


def encode(text: str, how: str, suffix: str = "", safe: str = "") -> str:
    """Percent-encode ``text`` the way ``how`` says (a request target is ASCII)."""
    if how == "loose":
        encoded = quote(text, safe=",:/()*@!$'" + safe)
    elif how == "over":
        encoded = "".join(f"%{b:02X}" for b in text.encode("utf-8", "surrogatepass"))
    elif how == "double":
        encoded = quote(quote(text, safe=safe), safe="")
    elif how == "plus":
        encoded = quote_plus(text, safe=safe)
    else:
        encoded = quote(text.encode("utf-8", "surrogatepass"), safe=safe)
    return encoded + (suffix if how == "broken" else "")


@cache
def query_strings(family: Family, names: Names) -> st.SearchStrategy[str]:
    """Query strings of ``family``."""
    return _queries(family, names)


@st.composite
def _queries(draw: st.DrawFn, family: Family, names: Names) -> str:
    """A query string: a valid one of the family, then a few hostile mutations."""
    pairs = list(draw(valid_queries(family, names)))
    kinds = values(names)
    all_names = [*family.params, *WMS_PARAMS]
    for _ in range(draw(st.integers(0, 5))):
        action = draw(ACTIONS)
        if action in ("replace", "drop", "duplicate", "case") and pairs:
            index = draw(st.integers(0, len(pairs) - 1))
            name, value = pairs[index]
            if action == "replace":
                kind = family.params.get(name, WMS_PARAMS.get(name, "text"))
                pairs[index] = (name, draw(st.one_of(kinds[kind], NASTY)))
            elif action == "drop":
                del pairs[index]
            elif action == "duplicate":
                pairs.insert(index + 1, (name, draw(kinds["text"])))
            else:
                pairs[index] = (draw(st.sampled_from([name.upper(), name.title(),
                                                      name.swapcase()])), value)
        else:
            name = draw(st.sampled_from(all_names)) if action == "add" else draw(NASTY)
            kind = family.params.get(name, WMS_PARAMS.get(name, "text"))
            pairs.append((name, draw(kinds.get(kind, kinds["text"]))))
    how = draw(ENCODINGS)
    suffix = draw(SUFFIXES)
    parts = [f"{encode(k, how, suffix)}={encode(v, how, suffix)}" for k, v in pairs]
    separator = draw(SEPARATORS)
    return separator.join(parts)


def routes(templates: list[str]) -> st.SearchStrategy[str]:
    """A route template (or `UNROUTED`): first a family, so that each family gets its share
    of requests."""
    by_family: dict[str, list[str]] = {}
    for template in sorted([*templates, UNROUTED]):
        by_family.setdefault(FAMILIES[template].name, []).append(template)
    return st.sampled_from(sorted(by_family)).flatmap(lambda f: st.sampled_from(by_family[f]))


@cache
def requests(template: str, names: Names) -> st.SearchStrategy[RawRequest]:
    """Requests to the route ``template``."""
    return _requests(template, names)


@st.composite
def _requests(draw: st.DrawFn, template: str, names: Names) -> RawRequest:
    """A request to the route ``template`` (a Mount path gets a file path appended)."""
    family = FAMILIES[template]
    path = template if "{" in template or not template.startswith("/viewer") else \
        template + "/{path:path}"
    segments = []
    for piece in path.split("/"):
        if piece.startswith("{"):
            kind = piece.strip("{}").split(":")[0]
            how = draw(ENCODINGS)
            slash = "/" if ":path" in piece or draw(st.integers(0, 9)) == 0 else ""
            piece = encode(draw(path_segment(kind, names)), how,
                           draw(SUFFIXES), safe=slash)
        segments.append(piece)
    query = draw(query_strings(family, names))
    target = "/".join(segments) + (("?" + query) if query else "")
    method = draw(METHODS)
    headers = draw(st.lists(HEADER_VALUES, max_size=3))
    body = XXE if method == "POST" else b""
    if method == "OPTIONS":  # a CORS preflight
        headers += [("Origin", "https://dashboard.example"),
                    ("Access-Control-Request-Method", draw(st.sampled_from(["GET", "PUT"])))]
    return RawRequest(method, target.encode("ascii"),
                      tuple((k.lower().encode(), v.encode("latin-1")) for k, v in headers), body)


HEADERS = [("Range", "bytes=0-10"), ("Range", "bytes=10-0"), ("Range", "bytes=-1"),
           ("Range", "bytes=0-0,5-5,0-"), ("Range", "bytes=99999999999-"), ("Range", "lines=1"),
           ("Range", "bytes=" + ",".join(["0-1"] * 200)), ("If-None-Match", "*"),
           ("If-None-Match", '"x"'), ("If-Modified-Since", "Thu, 01 Jan 1970 00:00:00 GMT"),
           ("If-Modified-Since", "yesterday"), ("If-Range", '"x"'),
           ("Authorization", "Bearer wrong-token"),
           ("Authorization", f"Bearer {FUZZ_TOKEN}"), ("Authorization", "Basic Zm9vOmJhcg=="),
           ("Authorization", "Bearer"), ("Accept", "application/json"), ("Accept", "*/*"),
           ("Accept-Encoding", "gzip, br"), ("Origin", "https://evil.example"),
           ("Content-Type", "application/xml"), ("X-Forwarded-For", "1.2.3.4"),
           ("Cookie", "a=" + "b" * 1000)]
HEADER_VALUES = st.sampled_from(HEADERS)
