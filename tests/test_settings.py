"""Settings: TOML file, FEWSMAP_* variables and flags, in that order of precedence."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fewsmap.errors import ConfigError
from fewsmap.settings import PROJECT_ROOT, default_workers, load_settings


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
        ("[service]\nport = 'eighty'\n", {}, "port='eighty'"),
        ("[service]\ncolour = 'red'\n", {}, "unknown setting [service].colour"),
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
