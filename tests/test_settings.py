"""Settings: TOML file, FEWSMAP_* variables and flags, in that order of precedence."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import jsonschema
import pytest

from fewsmap.errors import ConfigError
from fewsmap.settings import (
    PROJECT_ROOT,
    ConfigFile,
    config_schema,
    default_workers,
    load_settings,
)


def test_defaults_serve_the_project_stores_on_loopback_8080() -> None:
    settings = load_settings(environ={})
    assert settings.stores_dir == PROJECT_ROOT / "stores"
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.workers == default_workers() == min(len(os.sched_getaffinity(0)), 8)
    assert settings.max_image_pixels == 2_304_000


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "fewsmap.toml"
    config.write_text('[service]\nport = 9000\nworkers = 3\ntitle = "Rhine forecasts"\n')
    settings = load_settings(config, environ={"FEWSMAP_PORT": "9100"}, workers=2)
    assert settings.port == 9100  # environment beats the file
    assert settings.workers == 2  # a flag beats both
    assert settings.title == "Rhine forecasts"
    assert settings.config_file == config


def test_config_file_from_environment(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[service]\nmax_image_pixels = 1000\n")
    assert load_settings(environ={"FEWSMAP_CONFIG_FILE": str(config)}).max_image_pixels == 1000


@pytest.mark.parametrize(
    ("text", "environ", "message"),
    [
        ("[service]\nport = 'eighty'\n", {}, "service.port = 'eighty'"),
        ("[service]\ncolour = 'red'\n", {}, "service.colour: unknown key"),
        ("[service\n", {}, "not valid TOML"),
        ("", {"FEWSMAP_WORKERS": "many"}, "FEWSMAP_WORKERS"),
    ],
)
def test_invalid_settings_name_the_bad_value(
    tmp_path: Path, text: str, environ: dict[str, str], message: str
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_settings(config, environ=environ)


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "nope.toml", environ={})


# --- one schema for the whole file: every mistake names the file and the key ---------------

LAYER = '[[layers]]\nid = "rain"\nstore = "naefs-mean"\nvariable = "QPF"\n'


@pytest.mark.parametrize(("text", "key", "says"), [
    # a wrong type
    ("[service]\nport = 'eighty'\n", "service.port = 'eighty'", "valid integer"),
    ("[service]\ncompact_time_axes = 'maybe'\n", "service.compact_time_axes", "boolean"),
    ("stores = 5\n", "stores", "valid dictionary"),
    ("[stores]\nfeed = 5\n", "stores.feed", "must be a path or a table"),
    (LAYER + "styles = 'a'\n", "layers.rain.styles", "tuple"),
    # an unknown key, with the nearest known one
    ("[service]\nmax_image_pixel = 5\n", "service.max_image_pixel",
     "unknown key; did you mean 'max_image_pixels'"),
    ("[[layer]]\nid = 'x'\n", "layer", "unknown key; did you mean 'layers'"),
    (LAYER + "style = ['x']\n", "layers.rain.style", "unknown key; did you mean 'styles'"),
    ("[[styles]]\nid = 'NAEFS rain'\ncolour = 'x'\n", 'styles."NAEFS rain".colour',
     "did you mean 'colors'"),
    ("[stores.feed]\nkeep_run = 3\n", "stores.feed.keep_run", "did you mean 'keep_runs'"),
    ("[[security.tokens]]\nname = 'ops'\ntokens = 'abcdefghij'\nlayers = ['a']\n",
     "security.tokens.ops.tokens", "did you mean 'token'"),
    ("[catalog]\nautolayers = true\n", "catalog.autolayers", "did you mean 'auto_layers'"),
    # a missing key
    ('[[layers]]\nid = "rain"\nvariable = "QPF"\n', "layers.rain.store", "required key missing"),
    ('[[layers]]\nid = "rain"\nstore = "naefs-mean"\n', "layers.rain", "needs variable"),
    # a bad duration, a bad keyword
    (LAYER + "time_tolerance = 'soon'\n", "layers.rain.time_tolerance",
     "not an ISO 8601 duration"),
    (LAYER + "time_tolerance = 30\n", "layers.rain.time_tolerance", "ISO 8601 duration"),
    (LAYER + "thresholds = [true]\n", "layers.rain.thresholds[0]",
     "must be a number or a string, not True"),
    (LAYER + "[layers.defaults]\ntime = 6\nelevation = {}\n", "layers.rain.defaults.elevation",
     "must be a number or a string"),
    ("[[styles]]\nid = 'c'\ncolor_map = {type = 'ramps', entries = []}\n",
     "styles.c.color_map.type = 'ramps'", "'ramp', 'intervals' or 'values'"),
    (LAYER + "keywords = {timeSeriesType = 'FORECAST'}\n", "layers.rain.keywords",
     "timeSeriesType must be one of"),
    (LAYER.replace('variable = "QPF"', 'vector = ["u"]'), "layers.rain.vector",
     "vector must name two variables"),
    # a negative or zero limit
    ("[service]\nmax_time_values = -1\n", "service.max_time_values = -1", "greater than 0"),
    ("[service]\nsend_timeout_s = 0\n", "service.send_timeout_s = 0", "greater than 0"),
    ("[service]\nrender_timeout_s = nan\n", "service.render_timeout_s", "finite number"),
    ("[stores.feed]\nkeep_runs = 0\n", "stores.feed.keep_runs = 0", "greater than or equal to 1"),
    ("[stores.feed]\nkeep_runs = 2.5\n", "stores.feed.keep_runs = 2.5", "valid integer"),
    ("[stores.feed]\nkeep_days = -1\n", "stores.feed.keep_days = -1", "greater than 0"),
    ("[stores.feed]\nkeep_days = 'soon'\n", "stores.feed.keep_days", "must be a number"),
    ("[stores.feed]\nmissing_values = { t = 'x' }\n", "stores.feed.missing_values.t",
     "must be a number"),
    ("[stores.feed]\nmissing_values = { t = true }\n", "stores.feed.missing_values.t",
     "must be a number"),
    # a file that is not there, a location that is not a store
    ("[[styles]]\nid = 's'\nsld = 'nope.sld'\n", "styles.s.sld", "no file .*nope.sld"),
    ("[stores.remote]\npath = 'gs://b/x.zarr'\n", "stores.remote.path", "is a URL"),
    ("[service]\nsld_allowed_urls = ['file:///etc/passwd']\n", "service.sld_allowed_urls",
     "not an http"),
    # keys that do not go together
    ("[[styles]]\nid = 's'\nsld = 'a.sld'\nbreaks = [1]\n", "styles.s",
     "from an SLD file takes only .*; not breaks"),
    ("[[security.tokens]]\ntoken = 'abcdefghij'\n", "security.tokens[0]", "protects nothing"),
])
def test_every_mistake_in_the_file_names_the_file_and_the_key(
    tmp_path: Path, text: str, key: str, says: str
) -> None:
    config = tmp_path / "fewsmap.toml"
    config.write_text(text)
    (tmp_path / "a.sld").write_text("<StyledLayerDescriptor/>")
    with pytest.raises(ConfigError) as raised:
        load_settings(config, environ={})
    assert re.match(f"{re.escape(f'{config}: {key}')}.*{says}", str(raised.value)), raised.value


def test_every_mistake_is_reported_at_once(tmp_path: Path) -> None:
    config = tmp_path / "fewsmap.toml"
    config.write_text("[service]\nprot = 80\nworkers = 0\n" + LAYER + "styel = []\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(config, environ={})
    assert [line.split(": ")[1] for line in str(raised.value).splitlines()] == [
        "service.workers = 0", "service.prot", "layers.rain.styel"]


@pytest.mark.parametrize(("environ", "says"), [
    ({"FEWSMAP_WORKERS": "0"}, "FEWSMAP_WORKERS: workers = '0': Input should be greater"),
    ({"FEWSMAP_COMPACT_TIME_AXES": "perhaps"}, "FEWSMAP_COMPACT_TIME_AXES: compact_time_axes"),
    ({"FEWSMAP_HEADER_TIMEOUT_S": "-1"}, "FEWSMAP_HEADER_TIMEOUT_S: header_timeout_s"),
])
def test_a_bad_variable_names_itself(environ: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(says)):
        load_settings(environ=environ)


def test_a_bad_flag_names_the_command_line() -> None:
    with pytest.raises(ConfigError, match="command line: port = 70000"):
        load_settings(environ={}, port=70000)


def test_lists_come_from_toml_arrays_or_comma_separated_variables(tmp_path: Path) -> None:
    config = tmp_path / "fewsmap.toml"
    config.write_text('[service]\ncors_origins = ["https://a.example"]\n')
    assert load_settings(config, environ={}).cors_origins == ("https://a.example",)
    assert load_settings(config, environ={"FEWSMAP_CORS_ORIGINS": "https://b, https://c"}
                         ).cors_origins == ("https://b", "https://c")


def test_the_file_is_read_once_with_the_settings(tmp_path: Path) -> None:
    config = tmp_path / "fewsmap.toml"
    config.write_text(LAYER + '[stores]\narchive = "/data/archive.zarr"\n')
    settings = load_settings(config, environ={})
    config.unlink()  # everything the service needs was read and checked
    assert settings.config.layers[0].id == "rain"
    assert settings.config.stores["archive"].path == Path("/data/archive.zarr")
    assert load_settings(environ={}).config == ConfigFile.empty()


def test_the_schema_checks_a_file_as_an_editor_would(tmp_path: Path) -> None:
    schema = config_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    good = tomllib.loads(LAYER + "[service]\nport = 9000\n[stores.feed]\nkeep_runs = 3\n")
    assert list(validator.iter_errors(good)) == []
    for bad in ({"service": {"prot": 1}}, {"layers": [{"id": "a", "store": "s", "style": []}]},
                {"stores": {"feed": {"keep_runs": 0}}}, {"service": {"port": "eighty"}}):
        assert list(validator.iter_errors(bad)), bad
    assert "max_image_pixels" in schema["$defs"]["ServiceTable"]["properties"]
    assert schema["$defs"]["ServiceTable"]["properties"]["max_image_pixels"]["description"]
