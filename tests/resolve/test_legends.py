"""Legend resolution without a protocol: a `LegendRequest` built in code gives the legend
GetLegendGraphic encodes, and picks the run, style and colour range as GetMap does."""

from __future__ import annotations

import pytest

from fewsmap.catalog import Catalog
from fewsmap.ogc.legend import parse_legend
from fewsmap.params import Params
from fewsmap.products.change import PREVIOUS_RUN
from fewsmap.render.legend import legend_json
from fewsmap.resolve.legends import LegendRequest, resolve_legends
from fewsmap.resolve.maps import CHANGE_STYLE, group_layers
from fewsmap.settings import Settings
from tests.synthetic import six_hourly_runs_store


def test_a_request_built_in_code_means_what_the_wms_query_means(catalog: Catalog) -> None:
    parsed = parse_legend(Params([("layer", "s.lon"), ("colorscalerange", "0,20"),
                                  ("showContours", "true")]))
    built = LegendRequest("s.lon", color_range=(0.0, 20.0), show_contours=True)
    assert parsed == built
    [theirs], _ = resolve_legends(catalog, parsed)
    [ours], group = resolve_legends(catalog, built)
    assert not group and ours.text.contours.size
    assert legend_json(ours.palette, ours.text) == legend_json(theirs.palette, theirs.text)


def test_a_change_has_the_diverging_style_and_a_group_each_layer(catalog: Catalog) -> None:
    [change], _ = resolve_legends(catalog, LegendRequest("s.lon", baseline=PREVIOUS_RUN))
    assert change.palette.style.name == CHANGE_STYLE.name
    low, high = change.palette.value_range
    assert low == -high  # centred on zero
    legends, group = resolve_legends(catalog, LegendRequest("s"))
    drawn = [layer.id for layer in group_layers(catalog, "s")]  # GetMap's drawing order
    assert group and len(drawn) > 1 and [legend.layer.id for legend in legends] == drawn


def test_a_change_legend_says_the_units_its_chart_says(tmp_path_factory: pytest.TempPathFactory
                                                       ) -> None:
    """A change of a temperature in K: the legend's units are the chart's (degC; a change
    of 2 K is 2 degC), or K with useDisplayUnits=false."""
    stores = tmp_path_factory.mktemp("kelvin") / "stores"
    six_hourly_runs_store(stores / "runs.zarr", variable="t2m", attrs={
        "units": "K", "standard_name": "air_temperature"})
    catalog = Catalog(Settings(stores_dir=stores))
    [shown], _ = resolve_legends(catalog, LegendRequest("runs.t2m", baseline=PREVIOUS_RUN))
    [stored], _ = resolve_legends(catalog, LegendRequest("runs.t2m", baseline=PREVIOUS_RUN,
                                                         display_units=False))
    assert (shown.text.units, stored.text.units) == ("degC", "K")
