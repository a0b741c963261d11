"""Parsing EDR query parameters: WKT coords, bbox, datetime, z, crs, f (fewsmap/edr/query.py)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st

from fewsmap.edr.query import (
    COVJSON,
    CRS84_URI,
    CSV,
    EPSG4326_URI,
    parse_bbox,
    parse_datetime,
    parse_levels,
    parse_query,
)
from fewsmap.errors import FewsmapError, InvalidFormat, MissingParameterValue
from fewsmap.formats.wkt import parse_wkt
from fewsmap.params import Params

POLYGONS = ("POLYGON", "MULTIPOLYGON")


def seconds(text: str) -> np.datetime64:
    return np.datetime64(text, "s")


def test_points_parse_in_any_case_and_spacing() -> None:
    assert parse_wkt("POINT(-90 40)", ("POINT",)).coords[0] == (-90.0, 40.0)
    assert parse_wkt("  point ( 5.5   -1e1 ) ", ("POINT",)).coords[0] == (5.5, -10.0)


def test_polygons_keep_every_ring() -> None:
    polygon = parse_wkt("POLYGON((0 0, 10 0, 10 10, 0 10, 0 0), (2 2, 3 2, 3 3, 2 2))",
                        POLYGONS)
    assert [len(ring.coords) for ring in shapely.get_rings(polygon)] == [5, 4]
    assert polygon.bounds == (0.0, 0.0, 10.0, 10.0)
    multi = parse_wkt("MULTIPOLYGON(((0 0, 1 0, 1 1, 0 0)), ((5 5, 6 5, 6 6, 5 5)))", POLYGONS)
    assert multi.geom_type == "MultiPolygon"
    assert multi.geoms[1].exterior.coords[0] == (5.0, 5.0)


@pytest.mark.parametrize(("text", "allowed", "says"), [
    ("POLYGON((0 0, 1 0, 1 1, 0 0))", ("POINT",), "must be a WKT POINT; a POINT is one"),
    ("POINT(1)", ("POINT",), "expected number but encountered '\\)'.*two numbers"),
    ("POINT(1 2 3)", ("POINT",), "Z/M coordinates.*two numbers"),
    ("POINT(a b)", ("POINT",), "encountered word: 'a'"),
    ("POINT(nan 1)", ("POINT",), "not finite"),
    ("POINT(1e999 1)", ("POINT",), "not finite"),
    ("POINT(1 2", ("POINT",), "unbalanced"),
    ("POINT(1 2) x", ("POINT",), "text after"),
    ("POINT(1 2)\x00 x", ("POINT",), "a character WKT does not use: '.x00'"),
    ("POINT(1 2) é", ("POINT",), "a character WKT does not use: 'é'"),
    ("POINT EMPTY", ("POINT",), "EMPTY"),
    ("MULTIPOLYGON(((0 0, 1 0, 1 1, 0 0)), EMPTY)", POLYGONS, "EMPTY"),
    ("POLYGON((0 0, 1 0, 1 1, 0 0), EMPTY)", POLYGONS, "EMPTY"),
    ("POINT Z (1 2 3)", ("POINT",), "Z/M"),
    ("POINT M (1 2 3)", ("POINT",), "Z/M"),
    ("POINT(1 2, 3 4)", ("POINT",), "must contain a single element"),
    ("POLYGON((0 0, 1 0, 1 1))", POLYGONS, "do not form a closed linestring.*each closed"),
    ("POLYGON(0 0, 1 0, 1 1, 0 0)", POLYGONS, "rings in parentheses"),
    ("MULTIPOLYGON((0 0, 1 0, 1 1, 0 0))", POLYGONS, "polygons in parentheses"),
    ("POLYGON((" + ", ".join(f"{i} 0" for i in range(10_001)) + ", 0 0))", POLYGONS,
     "10002 vertices; at most 10000"),
    ("", ("POINT",), "must be a WKT POINT"),
    ("SRID=4326;POINT(1 2)", ("POINT",), "must be a WKT POINT"),
])
def test_bad_wkt_is_refused_with_the_reason(text: str, allowed: tuple[str, ...],
                                            says: str) -> None:
    with pytest.raises(FewsmapError, match=says) as raised:
        parse_wkt(text, allowed)
    assert raised.value.http_status == 400


BOW_TIE = "(-100 30, -90 40, -90 30, -100 40, -100 30)"


@pytest.mark.parametrize(("coords", "crs", "says"), [
    (f"POLYGON({BOW_TIE})", "CRS84",
     "the POLYGON is not a valid polygon: Self-intersection at -95 35"),
    (f"MULTIPOLYGON(((-100 30, -99 30, -99 31, -100 30)), ({BOW_TIE}))", "CRS84",
     "part 2 of the MULTIPOLYGON is not a valid polygon: Self-intersection"),
    ("POLYGON((30 -100, 40 -90, 30 -90, 40 -100, 30 -100))", "EPSG:4326",
     "Self-intersection at -95 35 \\(lon lat\\)"),
    ("POLYGON((0 0, 10 0, 10 10, 0 10, 0 0), (20 20, 21 20, 21 21, 20 20))", "CRS84",
     "Hole lies outside shell"),
])
def test_invalid_polygons_are_refused_naming_the_part(coords: str, crs: str, says: str) -> None:
    # Issue #13 item 14: the area an invalid polygon means is a guess; refused, not guessed.
    with pytest.raises(FewsmapError, match=says) as raised:
        parse_query("area", Params.of({"coords": coords, "crs": crs}))
    assert raised.value.http_status == 400


@given(st.text(max_size=60))
def test_wkt_parsing_never_fails_otherwise(text: str) -> None:
    try:
        parse_wkt(text, ("POINT", "POLYGON", "MULTIPOLYGON"))
    except FewsmapError as error:
        assert error.http_status == 400


coordinate = st.floats(-1e6, 1e6, allow_nan=False)


@given(st.lists(st.tuples(coordinate, coordinate), min_size=3, max_size=12))
def test_polygons_read_back_exactly(vertices: list[tuple[float, float]]) -> None:
    ring = [*vertices, vertices[0]]
    text = "POLYGON((" + ", ".join(f"{x!r} {y!r}" for x, y in ring) + "))"
    parsed = parse_wkt(text, POLYGONS)
    np.testing.assert_array_equal(shapely.get_coordinates(parsed), np.array(ring))


def test_bbox_follows_the_crs_axis_order() -> None:
    lonlat = parse_bbox("-100,30,-90,40", CRS84_URI)
    latlon = parse_bbox("30,-100,40,-90", EPSG4326_URI)
    for box in (lonlat, latlon):
        assert (box.west, box.south, box.east, box.north) == (-100, 30, -90, 40)


def test_a_bbox_west_of_its_east_edge_crosses_180() -> None:
    box = parse_bbox("170,-10,-170,10", CRS84_URI)
    assert (box.west, box.east) == (170, 190)


@pytest.mark.parametrize(("text", "says"), [
    ("1,2,3", "four numbers"), ("1,2,3,4,5,6", "give levels with z"), ("a,2,3,4", "not a number"),
    ("0,-91,1,1", "outside -90..90"), ("0,10,1,5", "north edge below"),
    ("-200,0,200,1", "wider than 360"),
])
def test_bad_bboxes_are_refused(text: str, says: str) -> None:
    with pytest.raises(FewsmapError, match=says):
        parse_bbox(text, CRS84_URI)


def test_datetime_forms() -> None:
    times = np.arange(seconds("2022-08-09T00:00:00"), seconds("2022-08-12T00:00:00"),
                      np.timedelta64(6, "h"))

    def select(text: str) -> list[str]:
        selection = parse_datetime(text)
        assert selection is not None
        return [str(t) for t in selection.select(times)]

    assert parse_datetime("") is None
    assert select("2022-08-09T06:00:00Z") == ["2022-08-09T06:00:00"]
    assert select("2022-08-09T05:00:00Z") == []
    assert select("2022-08-11T06:00:00Z/..") == ["2022-08-11T06:00:00", "2022-08-11T12:00:00",
                                                 "2022-08-11T18:00:00"]
    assert select("../2022-08-09T06:00:00Z") == ["2022-08-09T00:00:00", "2022-08-09T06:00:00"]
    assert select("2022-08-10T01:00:00Z/2022-08-10T12:00:00Z") == [
        "2022-08-10T06:00:00", "2022-08-10T12:00:00"]
    assert select("2022-08-09T00:00:00Z,2022-08-11T18:00:00Z") == [
        "2022-08-09T00:00:00", "2022-08-11T18:00:00"]
    assert len(select("2022-08-10")) == 4  # a date is that whole day
    assert select("2022-08-10T03:00:00+03:00") == ["2022-08-10T00:00:00"]


@pytest.mark.parametrize("text", ["../..", "2022-08-10/2022-08-09", "tomorrow",
                                  "2022-08-10/2022-08-11/PT6H", "2022-13-01T00:00:00Z"])
def test_bad_datetimes_are_refused(text: str) -> None:
    with pytest.raises(FewsmapError, match="datetime"):
        parse_datetime(text)


def test_levels_forms() -> None:
    labels = np.array([300.0, 500.0, 850.0, 1000.0])

    def select(text: str) -> list[float]:
        levels = parse_levels(text)
        assert levels is not None
        return [float(labels[i]) for i in levels.select(labels)]

    assert parse_levels(" ") is None
    assert select("850") == [850.0]
    assert select("1000,500") == [500.0, 1000.0]
    assert select("400/900") == [500.0, 850.0]
    assert select("900/400") == [500.0, 850.0]
    assert select("R2/300/200") == [300.0, 500.0]
    with pytest.raises(FewsmapError, match="z=700 is not a level"):
        select("700")


@pytest.mark.parametrize("text", ["a", "1/2/3", "R0/1/2", "Rx/1/2", "1,,2", "inf"])
def test_bad_levels_are_refused(text: str) -> None:
    with pytest.raises(FewsmapError, match="z"):
        parse_levels(text)


def test_query_defaults_and_formats() -> None:
    query = parse_query("position", Params.of({"coords": "POINT(-90 40)"}))
    assert (query.point, query.crs, query.format) == ((-90.0, 40.0), CRS84_URI, COVJSON)
    assert query.times is None and query.levels is None and query.parameters == ()
    csv = parse_query("position", Params.of({"coords": "POINT(40 -90)", "crs": "EPSG:4326",
                                             "f": "CSV", "parameter-name": "a, b,a"}))
    assert (csv.point, csv.format, csv.parameters) == ((-90.0, 40.0), CSV, ("a", "b"))


def test_query_refusals() -> None:
    with pytest.raises(MissingParameterValue, match="COORDS"):
        parse_query("area", Params.of({}))
    with pytest.raises(MissingParameterValue, match="BBOX"):
        parse_query("cube", Params.of({"coords": "POINT(0 0)"}))
    with pytest.raises(InvalidFormat, match="CoverageJSON, CSV"):
        parse_query("position", Params.of({"coords": "POINT(0 0)", "f": "GeoJSON"}))
    with pytest.raises(FewsmapError, match="crs='EPSG:3857' is not offered"):
        parse_query("position", Params.of({"coords": "POINT(0 0)", "crs": "EPSG:3857"}))
    with pytest.raises(FewsmapError, match="latitude 100 is outside"):
        parse_query("position", Params.of({"coords": "POINT(100 0)", "crs": "EPSG:4326"}))
