"""Point resolution without a protocol: a `PointRequest` reads the value of the cell under
the point, as the cube holds it, and only of layers the map draws."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fewsmap import open_cube
from fewsmap.catalog import Catalog
from fewsmap.errors import LayerNotDefined
from fewsmap.formats.media import PNG
from fewsmap.resolve.maps import MapRequest
from fewsmap.resolve.points import PointRequest, read_features, resolve_queries
from fewsmap.settings import Settings
from fewsmap.time.grammar import parse_time
from tests.synthetic import T0, lonlat_store

MAP = MapRequest(layer="s.lon", style="", crs="OGC:CRS84", bbox=(0.0, 40.0, 10.0, 50.0),
                 width=10, height=10, format=PNG)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("points") / "stores"
    lonlat_store(folder / "s.zarr", T0, offset=0.25)
    return folder


def values_at(catalog: Catalog, query: PointRequest) -> list[tuple[object, float | None]]:
    features = read_features(resolve_queries(catalog, query), query, max_values=100)
    return [(f.time, f.value) for f in features]


def test_the_value_is_the_cube_s_at_the_cell_under_the_point(stores: Path) -> None:
    catalog = Catalog(Settings(stores_dir=stores))
    query = PointRequest(MAP, ("s.lon",), x=7.3, y=44.8, time=parse_time("all"))
    with open_cube(stores / "s.zarr") as cube:
        expected = cube["lon"].isel(forecast_reference_time=-1).sel(
            longitude=7.3, latitude=44.8, method="nearest").values
    assert values_at(catalog, query) == [
        (T0, pytest.approx(float(expected[0]))),
        (T0 + np.timedelta64(6, "h"), pytest.approx(float(expected[1])))]
    assert float(expected[0]) == 7.25  # the cell centred on 7° E, plus the store's offset


def test_a_point_off_the_grid_has_no_value(stores: Path) -> None:
    catalog = Catalog(Settings(stores_dir=stores))
    query = PointRequest(MAP, ("s.lon",), x=170.0, y=-80.0)
    [feature] = read_features(resolve_queries(catalog, query), query, max_values=100)
    assert (feature.value, feature.cell) == (None, None)


def test_only_layers_the_map_draws_are_queried(stores: Path) -> None:
    catalog = Catalog(Settings(stores_dir=stores))
    with pytest.raises(LayerNotDefined, match="not among LAYERS"):
        resolve_queries(catalog, PointRequest(MAP, ("s.lat",), x=5.0, y=45.0))
