"""The catalog: zero-config layers, TOML configuration, per-run ids, new runs picked up."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fewsmap.catalog import Catalog, Style
from fewsmap.catalog.styles import default_style, style_as_config, style_from_config
from fewsmap.errors import ConfigError, LayerNotDefined
from fewsmap.ingest import ingest
from fewsmap.settings import load_settings
from tests.conftest import sample_paths


def catalog_of(stores: Path, config: Path | None = None) -> Catalog:
    return Catalog(load_settings(config, environ={}, stores_dir=stores, reload_interval_s=0))


def test_zero_config_publishes_every_variable_with_a_fitting_style(demo_stores: Path) -> None:
    catalog = catalog_of(demo_stores)
    assert sorted(catalog.layers) == [
        "ecmwf-ens-gust.fg10_6", "marfc-fmat.t", "naefs-mean.QPF", "naefs-mean.QTF"]
    qpf, qtf = catalog.layer("naefs-mean.QPF"), catalog.layer("naefs-mean.QTF")
    assert qpf.default_style.kind == "classes" and qpf.default_style.units == "mm"
    assert qtf.default_style.name == "temperature" and qtf.default_style.units == "degC"
    assert catalog.layer("ecmwf-ens-gust.fg10_6").default_style.name == "wind"
    assert qpf.group == "naefs-mean" and catalog.groups["naefs-mean"].id == "naefs-mean"
    assert qpf.keywords["timeSeriesType"] == "EXTERNAL_FORECASTING"
    assert qpf.title == "QPF [mm]"


def test_runs_of_a_layer_are_in_reference_time_order(demo_stores: Path) -> None:
    catalog = catalog_of(demo_stores)
    runs = catalog.runs(catalog.layer("marfc-fmat.t"))
    assert [r.label for r in runs] == [f"2022-06-01T{h}:00:00Z" for h in ("00", "06", "12", "18")]
    assert [str(r.valid_times[0]) for r in runs] == [
        f"2022-06-01T{h}:00:00" for h in ("12", "18")] + ["2022-06-02T00:00:00",
                                                          "2022-06-02T06:00:00"]


@pytest.mark.parametrize("suffix", ["2022-06-01T06:00:00Z", "2022-06-01T06:00:00.000Z"])
def test_per_run_layer_ids_select_that_run(demo_stores: Path, suffix: str) -> None:
    layer, run = catalog_of(demo_stores).resolve(f"marfc-fmat.t-{suffix}")
    assert layer.id == "marfc-fmat.t"
    assert run is not None and run.reference_time == np.datetime64("2022-06-01T06:00:00")


@pytest.mark.parametrize("name", ["nope", "marfc-fmat.t-2022-06-02T06:00:00Z", "marfc-fmat"])
def test_unknown_layers_and_runs_are_layer_not_defined(demo_stores: Path, name: str) -> None:
    with pytest.raises(LayerNotDefined, match=r"not defined|has no run"):
        catalog_of(demo_stores).resolve(name)


def test_toml_defines_styles_groups_layers_and_keywords(demo_stores: Path,
                                                         tmp_path: Path) -> None:
    config = tmp_path / "fewsmap.toml"
    config.write_text("""
[service]
title = "Forecasts"

[[styles]]
id = "qpf-classes"
title = "Rain [mm/6h]"
breaks = [0, 1, 5, 10]
colors = ["#ffffff", "#99f3ff", "#0080ff", "#ff00ff"]
units = "mm"
contours = [5, 10]

[[groups]]
id = "precipitation"
title = "Precipitation"

[[layers]]
id = "NAEFS rain [mm]"
store = "naefs-mean"
variable = "QPF"
group = "precipitation"
styles = ["qpf-classes"]

[layers.keywords]
parameterId = "P.fc"
locationId = "conus"
moduleInstanceId = "ImportNAEFS"
timeSeriesType = "EXTERNAL_FORECASTING"
""")
    catalog = catalog_of(demo_stores, config)
    assert catalog.title == "Forecasts"
    assert list(catalog.layers) == ["NAEFS rain [mm]"]  # configured layers only
    layer = catalog.layer("NAEFS rain [mm]")
    assert layer.default_style.breaks == (0, 1, 5, 10)
    assert layer.default_style.contour_levels == (5, 10)
    assert layer.keywords["moduleInstanceId"] == "ImportNAEFS"
    assert catalog.groups["precipitation"].title == "Precipitation"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[[layers]]\nid="a"\nstore="naefs-mean"\nvariable="QPF"\nstyles=["nope"]\n',
         "unknown style 'nope'"),
        ('[[layers]]\nid="a"\nstore="naefs-mean"\nvariable="QPF"\n'
         'keywords={timeSeriesType="FORECAST"}\n', "timeSeriesType must be one of"),
        ('[[styles]]\nid="s"\nbreaks=[0, 1]\ncolors=["#fff"]\n', "one colour per break"),
        ('[[styles]]\nid="s"\nbreaks=[2, 1]\ncolors=["#fff", "#000"]\n', "must ascend"),
        ('[[layers]]\nid="x-2022-06-01T06:00:00Z"\nstore="naefs-mean"\nvariable="QPF"\n',
         "must not end like a run suffix"),
        ('[[layers]]\nid="a"\nstore="naefs-mean"\nvariable="QPF"\n[layers.defaults]\n'
         'time="tomorrow"\n', "defaults.time must be"),
        ('[[layers]]\nid="a"\nstore="naefs-mean"\nvariable="QPF"\ntime_tolerance="1h"\n',
         "time_tolerance"),
        ('[[layers]]\nid="a"\nstore="naefs-mean"\nvariable="QPF"\nthresholds=["mean"]\n',
         "threshold 'mean' must be a number or 'above:<X>'/'below:<X>'"),
        ('[[layers]]\nid="a"\nstore="naefs-mean"\nvariable="QPF"\nthresholds=["above:x"]\n',
         "threshold 'above:x' must be .* finite number"),
        ('[[layers]]\nid="a"\nstore="naefs-mean"\nvariable="QPF"\nthresholds=20\n',
         "layers.a.thresholds = 20: Input should be a valid list"),
    ],
)
def test_invalid_configuration_is_refused_with_the_reason(
    demo_stores: Path, tmp_path: Path, toml: str, message: str
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")) as raised:
        catalog_of(demo_stores, config)
    table = toml.split("]]")[0].strip("[")
    assert str(raised.value).startswith(f"{config}: {table}."), "names the file and the key"


def test_new_runs_and_new_stores_appear_without_a_restart(tmp_path: Path) -> None:
    stores = tmp_path / "stores"
    fmat = sample_paths("fmat")
    ingest(stores / "fmat.zarr", fmat[:2], progress=False)
    catalog = catalog_of(stores)
    layer = catalog.layer("fmat.t")
    assert len(catalog.runs(layer)) == 2
    assert catalog.refresh() is False  # nothing published since

    ingest(stores / "fmat.zarr", fmat[2:3], progress=False)
    assert catalog.refresh() is True
    assert [r.label[11:13] for r in catalog.runs(catalog.layer("fmat.t"))] == ["00", "06", "12"]

    ingest(stores / "gust.zarr", sample_paths("wgust"), progress=False)
    assert catalog.refresh() is True
    assert "gust.fg10_6" in catalog.layers


def test_a_broken_store_is_skipped_and_the_last_good_state_kept(tmp_path: Path) -> None:
    stores = tmp_path / "stores"
    ingest(stores / "fmat.zarr", sample_paths("fmat")[:1], progress=False)
    (stores / "junk.zarr").mkdir()
    (stores / "junk.zarr" / "zarr.json").write_text("{not json")
    catalog = catalog_of(stores)
    assert list(catalog.stores) == ["fmat"]

    root = stores / "fmat.zarr" / "zarr.json"
    good = root.read_bytes()
    root.write_text("{broken")
    catalog.refresh()
    assert catalog.runs(catalog.layer("fmat.t"))  # still serving the last readable state
    root.write_bytes(good)


def test_stores_outside_the_folder_by_name(tmp_path: Path, demo_stores: Path) -> None:
    elsewhere = tmp_path / "archive" / "fmat-archive.zarr"
    shutil.copytree(demo_stores / "marfc-fmat.zarr", elsewhere)
    config = tmp_path / "c.toml"
    config.write_text(f'[stores]\narchive = "{elsewhere}"\n')
    catalog = catalog_of(tmp_path / "empty", config)
    assert list(catalog.layers) == ["archive.t"]


def test_wind_components_pair_into_a_vector_layer(tmp_path: Path) -> None:
    stores = tmp_path / "stores"
    ingest(stores / "arome.zarr", sample_paths("arome"), progress=False)
    catalog = catalog_of(stores)
    vector = catalog.layer("arome.x_wind_10m-y_wind_10m")
    assert vector.is_vector and vector.components == ("x_wind_10m", "y_wind_10m")
    assert vector.default_style.name == "speed"
    assert not catalog.layer("arome.x_wind_10m").is_vector  # components stay layers too

    config = tmp_path / "c.toml"
    config.write_text('[[layers]]\nid = "wind"\nstore = "arome"\n'
                      'vector = ["x_wind_10m", "y_wind_10m"]\n')
    configured = catalog_of(stores, config).layer("wind")
    assert configured.variables == ("x_wind_10m", "y_wind_10m")


def test_a_vector_needs_two_components(demo_stores: Path, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[[layers]]\nid = "w"\nstore = "naefs-mean"\nvector = ["QPF"]\n')
    with pytest.raises(ConfigError, match="vector must name two variables"):
        catalog_of(demo_stores, config)


@pytest.mark.parametrize("style", [
    Style("rain", "Rain", kind="classes", breaks=(0.0, 1.0, 5.0),
          colors=("#ffffff", "#99f3ff80", "#0080ff"), units="mm", contour_levels=(1.0, 5.0)),
    Style("fixed", "Fixed", colormap="magma", value_range=(-5.0, 40.0), units="degC"),
    default_style("t2m", {"units": "K"}),
], ids=["classes", "colour-map", "default"])
def test_a_style_published_as_a_table_reads_back_the_same(style: Style) -> None:
    assert style_from_config(json.loads(json.dumps(style_as_config(style)))) == style
