"""Settings, read once from one TOML file and ``FEWSMAP_*`` environment variables."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from fewsmap.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def default_stores_dir() -> Path:
    """Return the project's ``stores/`` folder in a source checkout, else ``./stores``."""
    if (PROJECT_ROOT / "pyproject.toml").is_file():
        return PROJECT_ROOT / "stores"
    return Path.cwd() / "stores"


@dataclass(frozen=True)
class Settings:
    """Service-wide settings; every field can be set as ``FEWSMAP_<NAME>``."""

    stores_dir: Path = field(default_factory=default_stores_dir)
    config_file: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    title: str = "fewsmap"
    max_image_pixels: int = 2_304_000
    # How often a running service checks stores for newly published runs.
    reload_interval_s: float = 1.0
    # Write regular time axes as start/end/period in XML capabilities (FEWS clients read
    # lists, so lists are the default).
    compact_time_axes: bool = False


_CONVERTERS: dict[str, Any] = {
    "stores_dir": Path,
    "config_file": Path,
    "host": str,
    "port": int,
    "workers": int,
    "title": str,
    "max_image_pixels": int,
    "reload_interval_s": float,
    "compact_time_axes": lambda v: v if isinstance(v, bool) else str(v).lower() in ("1", "true"),
}


def _coerce(name: str, value: Any, origin: str) -> Any:
    try:
        return _CONVERTERS[name](value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{origin}: {name}={value!r} is not a valid {name}") from exc


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build the settings from the config file's ``[service]`` table, env vars and overrides.

    Later sources win: file, then ``FEWSMAP_*`` variables, then explicit overrides
    (command-line flags). ``None`` overrides are ignored.

    Raises
    ------
    ConfigError
        If a value cannot be converted or a name is unknown.
    """
    environ = os.environ if environ is None else environ
    known = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}
    config_file = config_file or (
        Path(environ["FEWSMAP_CONFIG_FILE"]) if environ.get("FEWSMAP_CONFIG_FILE") else None
    )
    if config_file is not None:
        service = read_config(config_file).get("service", {})
        for name, value in service.items():
            if name not in known:
                raise ConfigError(f"{config_file}: unknown setting [service].{name}")
            values[name] = _coerce(name, value, str(config_file))
        values["config_file"] = config_file
    for name in known:
        env_value = environ.get(f"FEWSMAP_{name.upper()}")
        if env_value:
            values[name] = _coerce(name, env_value, f"FEWSMAP_{name.upper()}")
    for name, value in overrides.items():
        if value is not None:
            values[name] = _coerce(name, value, "command line")
    return replace(Settings(), **values)


def read_config(path: Path) -> dict[str, Any]:
    """Parse the TOML configuration file.

    Raises
    ------
    ConfigError
        If the file is missing or is not valid TOML.
    """
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
