"""Settings, read once from one TOML file and ``FEWSMAP_*`` environment variables."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fewsmap.errors import ConfigError
from fewsmap.store.location import store_location

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def default_stores_dir() -> Path:
    """Return the project's ``stores/`` folder in a source checkout, else ``./stores``."""
    if (PROJECT_ROOT / "pyproject.toml").is_file():
        return PROJECT_ROOT / "stores"
    return Path.cwd() / "stores"


MAX_DEFAULT_WORKERS = 8


def default_workers() -> int:
    """Worker processes when none are configured: one per usable core, at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_DEFAULT_WORKERS))


@dataclass(frozen=True)
class Settings:
    """Service-wide settings; every field can be set as ``FEWSMAP_<NAME>``."""

    stores_dir: Path | str = field(default_factory=default_stores_dir)  # folder or s3:// prefix
    config_file: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    # One process per core renders on every core (each has its own render threads).
    workers: int = field(default_factory=default_workers)
    title: str = "fewsmap"
    # The address clients reach the service by (e.g. https://maps.example.org/fewsmap behind
    # a proxy), used for every link in capabilities, TileJSON and EDR answers. Empty: the
    # request's own scheme and Host, which a client can set to anything.
    public_url: str = ""
    max_image_pixels: int = 2_304_000
    # Animated GetMap (GIF, APNG, WebP): frames per answer, and frames × WIDTH × HEIGHT
    # (100 frames of 500 × 500), both refused before any frame is drawn.
    max_animation_frames: int = 100
    max_animation_pixels: int = 25_000_000
    # How often a running service checks stores for newly published runs: local folders
    # (one stat each), and stores in object storage (one HEAD each, and one LIST of an
    # object-store stores folder). A run published by any writer is visible to every server
    # within the interval (issue #14: at most 10 s by default).
    reload_interval_s: float = 1.0
    object_reload_interval_s: float = 5.0
    # Memory per server process for data chunks read from object storage (they never change
    # once published: fewsmap/store/chunk_cache.py); 0 turns the cache off.
    object_cache_mb: int = 256
    # Write regular time axes as start/end/period in XML capabilities (FEWS clients read
    # lists, so lists are the default).
    compact_time_axes: bool = False
    # Resource limits, checked before any work starts (docs/reliability.md).
    # Values one TIME may name: its list items, and the valid times it resolves to
    # (GeoServer's default for WMS dimension values is 100 too).
    max_time_values: int = 100
    # Values one GetFeatureInfo or time-series request may read (each is a chunk read).
    max_point_values: int = 20_000
    # Values one OGC API - EDR answer may hold (parameters × times × levels × cells): a
    # million takes 2-4 s to encode and about 85 MB as CSV (docs/design/edr.md). Larger
    # queries get 413 before any read.
    max_edr_values: int = 2_000_000
    # Renders at once per worker process; beyond them a request waits up to
    # render_queue_timeout_s for a slot, then gets 503 with Retry-After.
    max_concurrent_renders: int = 4
    render_queue_timeout_s: float = 10.0
    # A render taking longer is answered 503 and asked to stop (an animation stops between
    # frames; its thread keeps its slot until it ends); 0: no limit.
    render_timeout_s: float = 60.0
    # Large answers (EDR, exports, time series, animations) are sent in chunks as the client
    # reads; a worker holds at most this many bytes of them at once, beyond which an answer
    # gets 503 with Retry-After (one answer always fits). A connection whose client does not
    # read for send_timeout_s is dropped (fewsmap/app/streaming.py).
    max_bytes_in_flight: int = 128 << 20
    send_timeout_s: float = 30.0
    # A connection must send its request head (request line and headers) within
    # header_timeout_s of opening, or of its first byte on a kept-alive connection; an idle
    # kept-alive connection is closed after keep_alive_timeout_s (fewsmap/app/connections.py).
    header_timeout_s: float = 10.0
    keep_alive_timeout_s: float = 30.0
    # Open connections per worker; beyond them the longest-waiting idle connection is
    # closed, or the new one if none is idle. 0: from the open-file limit (RLIMIT_NOFILE)
    # less a reserve for store files, so the worker never runs out of file descriptors.
    max_connections: int = 0
    # Heavy renders (fewsmap/app/limits.py): a render costing more than heavy_render_cost
    # (pixels × frames, contours as 20 extra pixels, a value read as 300; every tile, even a
    # 512² one with contours, stays below) runs in a lane of its own, so tiles never wait
    # behind animations: at most max_concurrent_heavy_renders at once whose costs add up to
    # at most heavy_render_budget (one maximal animation; a costlier render runs alone),
    # waiting at most heavy_render_queue_timeout_s. For 2 cores and 2 workers: one maximal
    # animation per core at most.
    heavy_render_cost: int = 8_000_000
    heavy_render_budget: int = 25_000_000
    max_concurrent_heavy_renders: int = 2
    heavy_render_queue_timeout_s: float = 30.0
    # Origins whose pages may read answers (CORS; GET and HEAD only); empty: none.
    cors_origins: tuple[str, ...] = ("*",)
    # SLD documents a request may name by URL (WMS SLD=<url>), exactly as listed; the service
    # fetches only these (anything else is refused, so SLD= cannot make it reach other
    # hosts). Empty: SLD by URL is not enabled; SLD_BODY always is.
    sld_allowed_urls: tuple[str, ...] = ()
    # Ingest limits, checked on file headers before data is read (fewsmap/ingest/limits.py):
    # cells of one 2-D field (or one dimension), values of one run, bytes a gzip unpacks to.
    max_field_cells: int = 1 << 28
    max_run_cells: int = 1 << 34
    max_gunzip_bytes: int = 4 << 30


_CONVERTERS: dict[str, Any] = {
    "stores_dir": store_location,
    "config_file": Path,
    "host": str,
    "port": int,
    "workers": int,
    "title": str,
    "public_url": lambda v: _public_url(str(v)),
    "max_image_pixels": int,
    "max_animation_frames": lambda v: _positive(int(v)),
    "max_animation_pixels": lambda v: _positive(int(v)),
    "reload_interval_s": float,
    "object_reload_interval_s": float,
    "object_cache_mb": lambda v: _positive(int(v), allow_zero=True),
    "compact_time_axes": lambda v: v if isinstance(v, bool) else str(v).lower() in ("1", "true"),
    "max_time_values": lambda v: _positive(int(v)),
    "max_point_values": lambda v: _positive(int(v)),
    "max_edr_values": lambda v: _positive(int(v)),
    "max_field_cells": lambda v: _positive(int(v)),
    "max_run_cells": lambda v: _positive(int(v)),
    "max_gunzip_bytes": lambda v: _positive(int(v)),
    "max_concurrent_renders": lambda v: _positive(int(v)),
    "render_queue_timeout_s": lambda v: _positive(float(v), allow_zero=True),
    "render_timeout_s": lambda v: _positive(float(v), allow_zero=True),
    "max_bytes_in_flight": lambda v: _positive(int(v)),
    "send_timeout_s": lambda v: _positive(float(v)),
    "header_timeout_s": lambda v: _positive(float(v)),
    "keep_alive_timeout_s": lambda v: _positive(float(v)),
    "max_connections": lambda v: _positive(int(v), allow_zero=True),
    "heavy_render_cost": lambda v: _positive(int(v)),
    "heavy_render_budget": lambda v: _positive(int(v)),
    "max_concurrent_heavy_renders": lambda v: _positive(int(v)),
    "heavy_render_queue_timeout_s": lambda v: _positive(float(v), allow_zero=True),
    "cors_origins": lambda v: tuple(o.strip() for o in (
        v if isinstance(v, list | tuple) else str(v).split(",")) if o.strip()),
    "sld_allowed_urls": lambda v: tuple(_http_url(str(u)) for u in (
        v if isinstance(v, list | tuple) else str(v).split(",")) if str(u).strip()),
}


def _http_url(value: str) -> str:
    """An absolute http(s) address, as given (trimmed)."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an http(s) address")
    return value.strip()


def _public_url(value: str) -> str:
    """An absolute http(s) address without query or fragment, kept without a final '/'."""
    parts = urlsplit(value.strip())
    if value.strip() and (parts.scheme not in ("http", "https") or not parts.netloc
                          or parts.query or parts.fragment):
        raise ValueError(f"{value!r} is not an http(s) address")
    return value.strip().rstrip("/")


def _positive(value: float, allow_zero: bool = False) -> Any:
    if not (value >= 0 if allow_zero else value > 0):  # NaN fails both
        raise ValueError(f"{value} is out of range")
    return value


def _coerce(name: str, value: Any, origin: str) -> Any:
    try:
        return _CONVERTERS[name](value)
    except ConfigError as exc:  # a converter that says why (a store location)
        raise ConfigError(f"{origin}: {name}: {exc}") from exc
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
