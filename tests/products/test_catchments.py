"""Catchment means: by hand, against exactextract on real fields, and hostile polygons."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyproj
import pytest
import shapely
from exactextract import exact_extract  # type: ignore[import-untyped]
from exactextract.raster import NumPyRasterSource  # type: ignore[import-untyped]

from fewsmap.errors import ConfigError, InvalidParameterValue, LayerNotDefined
from fewsmap.ingest import ingest
from fewsmap.products.catchments import (
    CatchmentCache,
    CatchmentSet,
    PolygonWeights,
    catchment_weights,
    catchments_from_config,
    request_polygons,
    weighted_means,
    window_of,
)
from fewsmap.settings import ConfigFile
from fewsmap.store import reads
from fewsmap.store.cube import ForecastStore
from tests.conftest import sample_paths
from tests.grid_kinds import GRID_KINDS
from tests.synthetic import lambert_store, lonlat_store


def means_of(store: ForecastStore, variable: str, polygons: list[shapely.Geometry],
             step: int = 0, labels: tuple[int, ...] = ()) -> np.ndarray:
    """Each polygon's mean of a field of ``variable`` in the latest run."""
    weights = catchment_weights(store.geometry, polygons)
    window = window_of(weights.polygons)
    assert window is not None
    run = store.latest_run
    assert run is not None
    prefix = [run.slot, int(run.step_slots[step]), *labels]
    field = reads.read_window(store, variable, prefix, window.rows, window.cols)
    return weighted_means(window, field)


@pytest.fixture(scope="module")
def grid_1deg(tmp_path_factory: pytest.TempPathFactory) -> ForecastStore:
    """1° lon/lat grid: variable ``lon`` = the cell's longitude, ``lat`` its latitude."""
    return ForecastStore(lonlat_store(tmp_path_factory.mktemp("cat") / "ll.zarr"))


def test_a_box_covering_two_and_a_half_cells_of_one_row(grid_1deg: ForecastStore) -> None:
    # cells centred at 0°, 1° (whole) and 2° (its western half) of the row centred at 45° N
    box = shapely.box(-0.5, 44.5, 2.0, 45.5)
    weights = catchment_weights(grid_1deg.geometry, [box]).polygons[0]
    assert sorted(grid_1deg.geometry.x[weights.cols].tolist()) == [0.0, 1.0, 2.0]
    np.testing.assert_allclose(sorted(weights.weights / weights.weights.max()), [0.5, 1, 1])
    assert means_of(grid_1deg, "lon", [box])[0] == pytest.approx((0 + 1 + 0.5 * 2) / 2.5)
    assert means_of(grid_1deg, "lat", [box])[0] == pytest.approx(45.0)


def test_cells_weigh_by_their_area_on_the_sphere(grid_1deg: ForecastStore) -> None:
    # two whole cells, centred at 45° and 46° N: areas ∝ sin(upper edge) - sin(lower edge)
    box = shapely.box(-0.5, 44.5, 0.5, 46.5)
    south = np.sin(np.radians(45.5)) - np.sin(np.radians(44.5))
    north = np.sin(np.radians(46.5)) - np.sin(np.radians(45.5))
    expected = (45 * south + 46 * north) / (south + north)
    assert means_of(grid_1deg, "lat", [box])[0] == pytest.approx(expected, rel=1e-9)
    assert expected < 45.5  # the southern cell is larger


def test_a_polygon_outside_the_grid_has_no_cells_and_a_nan_mean(
        grid_1deg: ForecastStore) -> None:
    inside, outside = shapely.box(0, 40, 3, 43), shapely.box(100, 0, 110, 10)
    weights = catchment_weights(grid_1deg.geometry, [outside, inside, outside])
    assert weights.polygons[0].empty and not weights.polygons[1].empty
    means = means_of(grid_1deg, "lat", [outside, inside, outside])
    assert np.isnan(means[0]) and np.isnan(means[2]) and 40 < means[1] < 43


def test_missing_cells_are_left_out_of_both_sums() -> None:
    window = window_of([PolygonWeights(np.array([0, 0, 1]), np.array([0, 1, 0]),
                                       np.array([1.0, 0.5, 2.0])),
                        PolygonWeights(np.array([1]), np.array([1]), np.array([1.0]))])
    assert window is not None
    field = np.array([[2.0, np.nan], [5.0, np.nan]], dtype=np.float32)
    means = weighted_means(window, field)
    assert means[0] == pytest.approx((2 * 1 + 5 * 2) / 3)  # the NaN cell weighs nothing
    assert np.isnan(means[1])


def test_equals_exactextract_on_the_ecmwf_ensemble(tmp_path: Path) -> None:
    ingest(tmp_path / "ens.zarr", sample_paths("wgust"), progress=False)
    store = ForecastStore(tmp_path / "ens.zarr")
    polygons = [shapely.Polygon([(-3.3, 50.1), (8.7, 47.2), (12.9, 55.4), (1.2, 58.8)]),
                shapely.box(-20.5, 34.5, 30.5, 75.5),  # the whole grid, and beyond
                shapely.Point(10.3, 60.1).buffer(2.7)]
    geometry = store.geometry
    run = store.latest_run
    assert run is not None
    field = reads.read_window(store, "fg10_6", [run.slot, int(run.step_slots[1]), 7],
                              np.arange(geometry.shape[0]), np.arange(geometry.shape[1]))
    assert np.isfinite(field).all() and field.std() > 1
    x_edges, y_edges = geometry.edges
    raster = NumPyRasterSource(field.astype(np.float64), x_edges.min(), y_edges.min(),
                               x_edges.max(), y_edges.max())
    features = [{"type": "Feature", "properties": {}, "geometry": shapely.geometry.mapping(p)}
                for p in polygons]
    expected = [f["properties"]["mean"] for f in exact_extract(
        raster, features, ["mean(coverage_weight=area_spherical_m2)"])]
    np.testing.assert_allclose(means_of(store, "fg10_6", polygons, 1, (7,)), expected, rtol=1e-12)
    # exactextract's plain mean weighs cells by coverage only, so it differs on a lon/lat grid
    plain = exact_extract(raster, features[:1], ["mean"])[0]["properties"]["mean"]
    assert abs(plain - expected[0]) > 1e-4


def test_equals_exactextract_coverage_on_a_projected_grid(tmp_path: Path) -> None:
    store = ForecastStore(lambert_store(tmp_path / "lcc.zarr"))
    polygon = shapely.Polygon([(8.0, 59.0), (11.5, 58.3), (12.0, 61.0), (9.0, 61.5)])
    means = means_of(store, "lat", [polygon])
    # the mean latitude of a polygon on an equal-area-ish grid lies inside its range
    assert 58.3 < means[0] < 61.5
    weights = catchment_weights(store.geometry, [polygon])
    assert weights.method == "exactextract coverage"
    assert (weights.polygons[0].weights <= 1.0 + 1e-12).all()
    assert 0.0 < weights.polygons[0].weights.min() < 1.0  # edge cells partly covered


def test_uneven_axes_fall_back_to_cell_centres(tmp_path: Path) -> None:
    from tests.synthetic import field_store, lonlat_grid

    lat, lon = np.array([50.0, 48.0, 47.0, 45.0]), np.arange(0.0, 5.0)
    lon2, lat2 = np.meshgrid(lon, lat)
    store = ForecastStore(field_store(tmp_path / "uneven.zarr", lonlat_grid(lat, lon),
                                      lon2, lat2))
    polygon = shapely.box(0.5, 46.5, 3.5, 49.0)  # centres 1..3 at 48° and 47°
    weights = catchment_weights(store.geometry, [polygon])
    assert weights.method == "cell centres"
    assert weights.polygons[0].weights.size == 6
    w48, w47 = np.cos(np.radians(48)), np.cos(np.radians(47))
    assert means_of(store, "lat", [polygon])[0] == pytest.approx(
        (48 * w48 + 47 * w47) / (w48 + w47))


def test_weights_are_computed_once_per_store_state_and_set(grid_1deg: ForecastStore) -> None:
    built = []

    def counting(geometry: object, polygons: object) -> object:
        built.append(1)
        return catchment_weights(geometry, polygons)  # type: ignore[arg-type]

    cache = CatchmentCache(counting)  # type: ignore[arg-type]
    catchments = request_polygons("POLYGON((0 40, 3 40, 3 43, 0 40))")
    first = cache.weights(grid_1deg, catchments)
    assert cache.weights(grid_1deg, catchments) is first
    assert len(built) == 1


# --- hostile input ----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "says"), [
    ("POLYGON((0 0, 1 1, 1 0, 0 1, 0 0))", "not a valid polygon"),  # a bow tie
    ("POLYGON((0 0, 1 0, 1 1, 0 0)", "unbalanced"),
    ("POINT(1 2)", "POLYGON"),
    ("POLYGON((0 0, 1 0, 1 1, 0 0))" + " " * 10, ""),
    ('{"type": "LineString", "coordinates": [[0, 0], [1, 1]]}', "Polygon or MultiPolygon"),
    ('{"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, "x"], [0, 0]]]}', "readable"),
    ('{"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 100], [0, 0]]]}', "latitude"),
    ('{"type": "Polygon"', "not JSON"),
    ("[" * 100_000, "POLYGON"),
    ("{" + '"a":' * 50_000 + "1" + "}" * 50_000, "not JSON"),
])
def test_hostile_polygons_are_refused_with_a_reason(text: str, says: str) -> None:
    if not says:  # trailing blanks are fine
        assert request_polygons(text).ids == ("1",)
        return
    with pytest.raises(InvalidParameterValue, match=says):
        request_polygons(text)


def test_a_million_vertices_are_refused() -> None:
    angles = np.linspace(0, 2 * np.pi, 1_000_000, endpoint=False)
    ring = shapely.Polygon(np.column_stack([10 * np.cos(angles), 10 * np.sin(angles)]))
    with pytest.raises(InvalidParameterValue, match="vertices"):
        request_polygons(json.dumps(shapely.geometry.mapping(ring)))
    with pytest.raises(InvalidParameterValue, match="vertices"):
        request_polygons(ring.wkt)


def test_too_many_polygons_and_too_large_ones_are_refused(grid_1deg: ForecastStore) -> None:
    box = shapely.geometry.mapping(shapely.box(0, 0, 1, 1))
    many = {"type": "FeatureCollection",
            "features": [{"type": "Feature", "id": k, "geometry": box} for k in range(101)]}
    with pytest.raises(InvalidParameterValue, match="at most 100"):
        request_polygons(json.dumps(many))
    huge = request_polygons("POLYGON((-180 -89, 180 -89, 180 89, -180 89, -180 -89))")
    fine = catchment_weights(grid_1deg.geometry, huge.polygons)  # 61 x 31 cells: allowed
    assert fine.polygons[0].weights.size == 61 * 31


def configured_sets(folder: Path, table: str) -> dict[str, CatchmentSet]:
    """The catchment sets of a configuration file holding ``table``."""
    path = folder / "fewsmap.toml"
    path.write_text(table)
    return catchments_from_config(ConfigFile.load(path))


def test_configured_sets_read_ids_and_refuse_bad_files(tmp_path: Path) -> None:
    features = [{"type": "Feature", "properties": {"code": f"B{k}", "name": f"basin {k}"},
                 "geometry": shapely.geometry.mapping(shapely.box(k, 40, k + 1, 41))}
                for k in range(3)]
    (tmp_path / "b.geojson").write_text(json.dumps({"type": "FeatureCollection",
                                                    "features": features}))
    sets = configured_sets(tmp_path, '[catchments.basins]\nfile = "b.geojson"\nid = "code"\n')
    assert sets["basins"].ids == ("B0", "B1", "B2")
    assert sets["basins"].index("B2") == 2
    with pytest.raises(LayerNotDefined, match="no catchment 'B9'"):
        sets["basins"].index("B9")
    with pytest.raises(ConfigError, match=r"fewsmap.toml: catchments.basins: .*no property 'nope'"):
        configured_sets(tmp_path, '[catchments.basins]\nfile = "b.geojson"\nid = "nope"\n')
    with pytest.raises(ConfigError, match="cannot be read"):
        configured_sets(tmp_path, '[catchments.x]\nfile = "missing.geojson"\n')
    with pytest.raises(ConfigError, match=r"catchments.x.fiel: unknown key"):
        configured_sets(tmp_path, '[catchments.x]\nfiel = "b.geojson"\n')
    with pytest.raises(ConfigError, match=r"letters, digits"):
        configured_sets(tmp_path, '[catchments."a:b"]\nfile = "b.geojson"\n')
    features[1]["geometry"] = {"type": "Polygon",
                               "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    (tmp_path / "bad.geojson").write_text(json.dumps({"type": "FeatureCollection",
                                                      "features": features}))
    with pytest.raises(ConfigError, match=r"'B1'.*not a valid polygon"):
        configured_sets(tmp_path, '[catchments.b]\nfile = "bad.geojson"\nid = "code"\n')


def test_a_polygon_across_the_seam_of_a_0_to_360_grid(tmp_path: Path) -> None:
    from tests.synthetic import field_store, lonlat_grid

    lat, lon = np.arange(10.0, -10.5, -1.0), np.arange(0.0, 360.0, 1.0)
    lon2, lat2 = np.meshgrid(lon, lat)
    store = ForecastStore(field_store(tmp_path / "global.zarr", lonlat_grid(lat, lon),
                                      np.where(lon2 > 180, lon2 - 360, lon2), lat2))
    # cells centred at -2 (half), -1, 0 (whole) and 1 (half) of the row at the equator
    box = shapely.box(-2.0, -0.5, 1.0, 0.5)
    assert means_of(store, "lon", [box])[0] == pytest.approx((-2 * 0.5 - 1 + 0 + 0.5) / 3)
    shifted = shapely.box(358.0, -0.5, 361.0, 0.5)  # the same place, written past 180°
    assert means_of(store, "lon", [shifted])[0] == pytest.approx(-0.5)


def test_equals_exactextract_on_the_gefs_members_of_a_south_up_grid(tmp_path: Path) -> None:
    ingest(tmp_path / "gefs.zarr", sample_paths("gefs"), progress=False)
    store = ForecastStore(tmp_path / "gefs.zarr")
    geometry = store.geometry
    assert geometry.y[0] < geometry.y[-1]  # rows run south to north, unlike exactextract's
    polygon = shapely.Polygon([(-110.6, 31.9), (-110.05, 32.1), (-110.2, 32.6),
                               (-110.7, 32.4)])
    run = store.latest_run
    assert run is not None
    x_edges, y_edges = geometry.edges
    feature = {"type": "Feature", "properties": {},
               "geometry": shapely.geometry.mapping(polygon)}
    for step, member in ((0, 0), (40, 7), (96, 20)):
        field = reads.read_window(store, "t2m", [run.slot, int(run.step_slots[step]), member],
                                  np.arange(2)[::-1], np.arange(2))  # north first
        raster = NumPyRasterSource(field.astype(np.float64), x_edges.min(), y_edges.min(),
                                   x_edges.max(), y_edges.max())
        expected = exact_extract(raster, [feature], ["mean(coverage_weight=area_spherical_m2)"])
        assert means_of(store, "t2m", [polygon], step, (member,))[0] == pytest.approx(
            expected[0]["properties"]["mean"], rel=1e-12)


@pytest.mark.parametrize("kind", sorted(GRID_KINDS))
def test_every_kind_of_grid_gives_a_mean_over_a_polygon_around_a_cell(
        kind: str, tmp_path: Path) -> None:
    store = ForecastStore(GRID_KINDS[kind](tmp_path / f"{kind}.zarr"))
    run = store.latest_run
    assert run is not None
    geometry = store.geometry
    rows, cols = geometry.shape
    if "lat" in store.variables:  # value = the cell's longitude / latitude
        middle = ([rows // 2], [cols // 2])
        lon0, lat0 = (float(reads.read_window(store, name, [run.slot, 0], *middle)[0, 0])
                      for name in ("lon", "lat"))
    else:  # the real reduced Gaussian file: temperature
        lon0, lat0 = float(geometry.x[cols // 2]), float(geometry.y[rows // 2])
    box = shapely.box(lon0 - 1.5, lat0 - 1.0, lon0 + 1.5, lat0 + 1.0)
    weights = catchment_weights(geometry, [box])
    assert weights.polygons[0].weights.size > 0, weights.method
    if "lat" in store.variables:
        mean_lat = means_of(store, "lat", [box])[0]
        assert lat0 - 1.0 <= mean_lat <= lat0 + 1.0, (kind, weights.method)
    else:
        assert weights.method == "cell centres"  # Gaussian latitudes are uneven
        prefix = (0,) * (len(store.dims(store.variables[0])) - 4)
        assert np.isfinite(means_of(store, store.variables[0], [box], 0, prefix)[0])


def test_equals_exactextract_on_the_arome_lambert_grid(tmp_path: Path) -> None:
    ingest(tmp_path / "arome.zarr", sample_paths("arome"), progress=False)
    store = ForecastStore(tmp_path / "arome.zarr")
    geometry = store.geometry
    assert geometry.y[0] < geometry.y[-1] and not geometry.lonlat
    polygon = shapely.Polygon([(3.1, 61.0), (6.9, 60.7), (7.6, 62.9), (4.2, 63.4)])
    weights = catchment_weights(geometry, [polygon])
    assert weights.method == "exactextract coverage"
    run = store.latest_run
    assert run is not None
    rows, cols = geometry.shape
    field = reads.read_window(store, "x_wind_10m", [run.slot, int(run.step_slots[1])],
                              np.arange(rows)[::-1], np.arange(cols))  # north first
    assert np.nanstd(field) > 0.5
    x_edges, y_edges = geometry.edges
    raster = NumPyRasterSource(field.astype(np.float64), x_edges.min(), y_edges.min(),
                               x_edges.max(), y_edges.max())
    # the polygon in the grid's CRS, densified as the service does before projecting
    to_grid = pyproj.Transformer.from_crs("OGC:CRS84", geometry.crs_wkt, always_xy=True)
    dense = shapely.segmentize(polygon, 2_500 / 111_000)
    moved = shapely.transform(dense, lambda xy: np.column_stack(
        to_grid.transform(xy[:, 0], xy[:, 1])))
    feature = {"type": "Feature", "properties": {}, "geometry": shapely.geometry.mapping(moved)}
    expected = exact_extract(raster, [feature], ["mean"])[0]["properties"]["mean"]
    assert means_of(store, "x_wind_10m", [polygon], 1)[0] == pytest.approx(expected, rel=1e-9)
