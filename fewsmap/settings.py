"""Settings and the configuration file: one typed schema, validated once when it is read.

The configuration is one TOML file (`ConfigFile`: ``[service]``, ``[catalog]``, ``[stores]``,
``[[styles]]``, ``[[groups]]``, ``[[layers]]``, ``[security]``) and ``FEWSMAP_<SETTING>``
environment variables for the keys of ``[service]`` (`Settings`). Later sources win:
defaults, then the file's ``[service]`` table, then the environment, then command-line
flags. Every table refuses keys it does not know (a misspelt key would otherwise be
ignored without a word) and suggests the nearest known one; every error is a `ConfigError`
naming where the value came from (the file, a variable, the command line) and the key as
a dotted path: ``fewsmap.toml: layers.rain.styles: …``. ``fewsmap config-schema`` prints
the JSON Schema of the file, so editors can check it as it is written.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, Self, get_args, get_origin
from urllib.parse import urlsplit

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from fewsmap.errors import ConfigError, FewsmapError
from fewsmap.store.location import store_location
from fewsmap.store.retention import RetentionPolicy
from fewsmap.time.grammar import parse_duration

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "FEWSMAP_"


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


# --- value types -----------------------------------------------------------------------------


def _location(value: Any) -> Path | str:
    """A stores folder or store: a path or a supported URL (`store_location`)."""
    if not isinstance(value, str | os.PathLike):
        raise ValueError("must be a path or a URL")
    try:
        return store_location(value)
    except ConfigError as exc:  # pydantic reports a ValueError with the key it belongs to
        raise ValueError(str(exc)) from exc


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


def _listed(value: Any) -> Any:
    """A list, or a comma-separated string (how a ``FEWSMAP_*`` variable gives one)."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _duration(value: Any) -> np.timedelta64:
    """An ISO 8601 duration (``PT1H``), zero allowed."""
    if isinstance(value, np.timedelta64):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 duration such as 'PT30M'")
    try:
        return parse_duration(value, "duration", allow_zero=True)
    except FewsmapError as exc:
        raise ValueError(str(exc)) from exc


Location = Annotated[Path | str, BeforeValidator(_location),
                     WithJsonSchema({"type": "string", "description": "a folder, file:// or "
                                     "s3:// URL, or a read-only http(s):// URL"})]
Count = Annotated[int, Field(gt=0)]
CountOrOff = Annotated[int, Field(ge=0)]
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
SecondsOrOff = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Words = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_listed)]
Duration = Annotated[np.timedelta64, PlainValidator(_duration),
                     WithJsonSchema({"type": "string", "description": "ISO 8601 duration, "
                                     "e.g. PT30M", "examples": ["PT30M"]})]


def _number(value: Any) -> Any:
    """Refuse what is not an int or a float (a boolean, a string of digits) before pydantic
    would convert it."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number, not {value!r}")
    return value


def _number_or_text(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"must be a number or a string, not {value!r}")
    return value


Number = Annotated[float, BeforeValidator(_number)]
FiniteNumber = Annotated[Number, Field(allow_inf_nan=False)]
NumberOrText = Annotated[float | str, BeforeValidator(_number_or_text)]


# --- [service] ---------------------------------------------------------------------------------


class Table(BaseModel):
    """A table of the configuration file; keys it does not know are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ServiceTable(Table):
    """``[service]``: the service-wide settings, each also a ``FEWSMAP_<NAME>`` variable."""

    stores_dir: Location = Field(default_factory=default_stores_dir, description=(
        "Folder (or object-store prefix) whose *.zarr stores are served"))
    host: str = Field(default="127.0.0.1", description="Address to listen on")
    port: int = Field(default=8080, ge=0, le=65535, description="Port to listen on")
    workers: Count = Field(default_factory=default_workers, description=(
        "Worker processes: one per core renders on every core (default: one per usable "
        "core, at most 8)"))
    title: str = Field(default="fewsmap", description="Title of the service in capabilities")
    public_url: Annotated[str, AfterValidator(_public_url)] = Field(default="", description=(
        "The address clients reach the service by (e.g. https://maps.example.org/fewsmap "
        "behind a proxy), used for every link in capabilities, TileJSON and EDR answers. "
        "Empty: the request's own scheme and Host, which a client can set to anything"))
    max_image_pixels: Count = Field(default=2_304_000, description=(
        "Pixels of one map (WIDTH × HEIGHT)"))
    max_animation_frames: Count = Field(default=100, description=(
        "Frames of one animated GetMap (GIF, APNG, WebP), refused before any is drawn"))
    max_animation_pixels: Count = Field(default=25_000_000, description=(
        "Frames × WIDTH × HEIGHT of one animation (100 frames of 500 × 500)"))
    reload_interval_s: SecondsOrOff = Field(default=1.0, description=(
        "How often a running service checks local stores for newly published runs"))
    object_reload_interval_s: SecondsOrOff = Field(default=5.0, description=(
        "How often it checks stores in object storage (one HEAD each, one LIST of a "
        "stores folder): a run published by any writer is visible within the interval"))
    object_cache_mb: CountOrOff = Field(default=256, description=(
        "Memory per server process for data chunks read from object storage; 0: no cache"))
    block_cache_mb: CountOrOff = Field(default=256, description=(
        "Memory per server process for decompressed blocks of local data chunks (maps and "
        "tiles reading the same blocks again skip their decompression); 0: no cache"))
    compact_time_axes: bool = Field(default=False, description=(
        "Write regular time axes as start/end/period in XML capabilities (FEWS clients "
        "read lists, so lists are the default)"))
    max_time_values: Count = Field(default=100, description=(
        "Values one TIME may name: its list items, and the valid times it resolves to"))
    max_point_values: Count = Field(default=20_000, description=(
        "Values one GetFeatureInfo or time-series request may read (each is a chunk read)"))
    max_edr_values: Count = Field(default=2_000_000, description=(
        "Values one OGC API - EDR answer may hold (parameters × times × levels × cells); "
        "larger queries get 413 before any read"))
    max_concurrent_renders: Count = Field(default=4, description=(
        "Renders at once per worker process"))
    render_queue_timeout_s: SecondsOrOff = Field(default=10.0, description=(
        "How long a request waits for a render slot before 503 with Retry-After"))
    render_timeout_s: SecondsOrOff = Field(default=60.0, description=(
        "A render taking longer is answered 503 and asked to stop; 0: no limit"))
    max_bytes_in_flight: Count = Field(default=128 << 20, description=(
        "Bytes of large answers (EDR, exports, time series, animations) a worker holds "
        "at once, beyond which an answer gets 503 with Retry-After (one always fits)"))
    send_timeout_s: Seconds = Field(default=30.0, description=(
        "A connection whose client does not read for this long is dropped"))
    header_timeout_s: Seconds = Field(default=10.0, description=(
        "A connection must send its request head within this time of opening (or of its "
        "first byte on a kept-alive connection)"))
    keep_alive_timeout_s: Seconds = Field(default=30.0, description=(
        "An idle kept-alive connection is closed after this time"))
    max_connections: CountOrOff = Field(default=0, description=(
        "Open connections per worker; 0: from the open-file limit less a reserve"))
    inline_render_cost: CountOrOff = Field(default=256 * 256, description=(
        "Maps up to this cost (a 256² tile of one layer) of a store on local disk whose "
        "zoomed-out views read overview levels are drawn on the worker's event loop, "
        "without the hand-off to a render thread (1-3 ms each, during which the worker "
        "answers nothing else), and JSON time series of up to 32 lines of such a store's "
        "time-chunked copy (~0.5 ms); 0: every map and series in a render thread (stores on "
        "a network file system, whose reads can take tens of ms)"))
    heavy_render_cost: Count = Field(default=8_000_000, description=(
        "A render costing more (pixels × frames, contours as 20 extra pixels, a value "
        "read as 300) runs in the heavy lane, so tiles never wait behind animations"))
    heavy_render_budget: Count = Field(default=25_000_000, description=(
        "Total cost of the heavy renders at once (a costlier render runs alone)"))
    max_concurrent_heavy_renders: Count = Field(default=2, description="Heavy renders at once")
    heavy_render_queue_timeout_s: SecondsOrOff = Field(default=30.0, description=(
        "How long a heavy render waits for its lane"))
    cors_origins: Words = Field(default=("*",), description=(
        "Origins whose pages may read answers (CORS; GET and HEAD only); empty: none"))
    sld_allowed_urls: Annotated[Words, AfterValidator(
        lambda urls: tuple(_http_url(u) for u in urls))] = Field(default=(), description=(
            "SLD documents a request may name by URL (SLD=<url>), exactly as listed; "
            "empty: SLD by URL is not enabled (SLD_BODY always is)"))
    max_field_cells: Count = Field(default=1 << 28, description=(
        "Ingest: cells of one 2-D field (or one dimension), checked on file headers"))
    max_run_cells: Count = Field(default=1 << 34, description="Ingest: values of one run")
    max_gunzip_bytes: Count = Field(default=4 << 30, description="Ingest: bytes a gzip unpacks to")


class Settings(BaseSettings, ServiceTable):
    """Service-wide settings; every field can be set as ``FEWSMAP_<NAME>``.

    ``Settings(...)`` takes exactly its arguments (and the defaults); `load_settings` reads
    the configuration file and the environment as well.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True,
                                      extra="forbid", frozen=True)

    config_file: Path | None = Field(default=None, description="The TOML configuration file")

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Take only the arguments: `load_settings` decides which other sources apply."""
        return (init_settings,)

    @cached_property
    def config(self) -> ConfigFile:
        """The configuration file's tables (empty without a file), read once."""
        return ConfigFile.empty() if self.config_file is None else ConfigFile.load(
            self.config_file)


# --- the other tables ---------------------------------------------------------------------------


def _store_entry(value: Any) -> Any:
    """``[stores] name = "path"`` is short for ``[stores.name] path = "path"``."""
    if not isinstance(value, str | dict):
        raise ValueError(f"must be a path or a table, not {value!r}")
    return {"path": value} if isinstance(value, str) else value


class StoreTable(Table):
    """``[stores.<name>]``: where a store lives, its retention and its missing values."""

    path: Location | None = Field(default=None, description=(
        "Where the store lives, if not in the stores folder"))
    keep_runs: Annotated[StrictInt, Field(ge=1)] | None = Field(default=None, description=(
        "Retention: keep the last N runs (the latest is always kept)"))
    keep_days: Annotated[FiniteNumber, Field(gt=0)] | None = Field(
        default=None, description="Retention: keep the runs of the last D days")
    missing_values: dict[str, FiniteNumber] = Field(default={}, description=(
        "Per variable, a value meaning 'no value' in the input files (stored as NaN)"))
    series_copy: StrictBool = Field(default=True, description=(
        "Write the time-chunked copy that makes point series fast (docs/design/cube.md)"))


class ColorMapEntryTable(Table):
    """One SLD ColorMapEntry of a ``color_map`` style."""

    quantity: float
    color: str
    opacity: Annotated[float, Field(ge=0, le=1)] = 1.0
    label: str = ""


class ColorMapTable(Table):
    """``color_map = {type, opacity, entries}``: an SLD ColorMap written in TOML."""

    kind: Literal["ramp", "intervals", "values"] = Field(default="ramp", alias="type")
    opacity: Annotated[float, Field(ge=0, le=1)] = 1.0
    entries: tuple[ColorMapEntryTable, ...]


# Keys a style read from an SLD file may set beside ``sld``.
SLD_STYLE_KEYS = frozenset({"id", "sld", "style", "title", "units"})


class StyleTable(Table):
    """``[[styles]]``: a named colour scheme (continuous, class breaks, a ColorMap or an SLD
    file). New style keys belong here: `fewsmap.catalog.styles.style_from_config` reads them.
    """

    id: str
    title: str | None = None
    units: str = ""
    colormap: str = Field(default="viridis", description="A matplotlib colour map name")
    value_range: tuple[float, float] | None = Field(default=None, alias="range", description=(
        "[min, max] of the colour map; none: the run's own range"))
    breaks: tuple[float, ...] = Field(default=(), description="FEWS class breaks (lowerValue)")
    colors: tuple[str, ...] = Field(default=(), description="One colour per break")
    contours: tuple[float, ...] | None = Field(default=None, description="Contour levels")
    color_map: ColorMapTable | None = None
    data_units: str = Field(default="", description=(
        "The stored units the style converts from (display = stored × scale + offset)"))
    scale: float = Field(default=1.0, allow_inf_nan=False, description="See data_units")
    offset: float = Field(default=0.0, allow_inf_nan=False, description="See data_units")
    sld: Path | None = Field(default=None, description=(
        "An SLD file (relative to the configuration file) whose UserStyle this is"))
    style: str | None = Field(default=None, description="The UserStyle of the SLD file to use")

    @model_validator(mode="after")
    def _sld_alone(self) -> Self:
        if self.sld is not None:
            extra = sorted(type(self).model_fields[k].alias or k
                           for k in self.model_fields_set - SLD_STYLE_KEYS)
            if extra:
                raise ValueError(f"a style from an SLD file takes only "
                                 f"{', '.join(sorted(SLD_STYLE_KEYS))}; not {', '.join(extra)}")
        return self

    @field_validator("sld")
    @classmethod
    def _sld_file_exists(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        folder = (info.context or {}).get("folder")
        if path is not None and folder is not None and not (folder / path).is_file():
            raise ValueError(f"no file {folder / path} (an SLD path is relative to the "
                             "configuration file's folder)")
        return path


class GroupTable(Table):
    """``[[groups]]``: a node of the layer tree (a FEWS gridPlotGroup)."""

    id: str
    title: str | None = None
    parent: str | None = None


TimeSeriesType = Literal["EXTERNAL_HISTORICAL", "EXTERNAL_FORECASTING",
                         "SIMULATED_HISTORICAL", "SIMULATED_FORECASTING"]


class LayerTable(Table):
    """``[[layers]]``: what a client names in ``LAYERS=``."""

    id: str
    title: str | None = None
    store: str
    variable: str | None = None
    vector: tuple[str, str] | None = Field(default=None, description="(u, v) of a vector layer")
    group: str | None = None
    styles: tuple[str, ...] = Field(default=(), description="Names of [[styles]]; the first is "
                                    "the default")
    keywords: dict[str, str] = Field(default={}, description="FEWS keywords (parameterId, …)")
    abstract: str = ""
    defaults: dict[str, NumberOrText] = Field(default={}, description=(
        "Per dimension (time, elevation, ensemble_member) a default or \"required\""))
    time_tolerance: Duration | None = Field(default=None, description=(
        "Serve the nearest valid time within this tolerance instead of refusing"))
    thresholds: list[NumberOrText] = Field(default=[], description=(
        "Warning levels offered as exceedance probabilities: a number (above) or "
        "'above:X'/'below:X'"))

    @model_validator(mode="after")
    def _one_variable(self) -> Self:
        if self.variable is None and self.vector is None:
            raise ValueError("needs variable (or vector = [u, v])")
        return self

    @field_validator("keywords")
    @classmethod
    def _series_type(cls, keywords: dict[str, str]) -> dict[str, str]:
        series_type = keywords.get("timeSeriesType")
        if series_type is not None and series_type not in get_args(TimeSeriesType):
            raise ValueError(f"timeSeriesType must be one of {get_args(TimeSeriesType)}")
        return keywords

    @field_validator("vector", mode="before")
    @classmethod
    def _two_components(cls, value: Any) -> Any:
        if isinstance(value, list | tuple) and len(value) != 2:
            raise ValueError("vector must name two variables (u, v)")
        return value


class TokenTable(Table):
    """``[[security.tokens]]``: a secret and the groups and layers whose data it unlocks."""

    name: str | None = None
    token: str | None = Field(default=None, description="The secret (or token_env)")
    token_env: str | None = Field(default=None, description="A variable holding the secret")
    groups: tuple[str, ...] = ()
    layers: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _protects_something(self) -> Self:
        if not self.groups and not self.layers:
            raise ValueError("protects nothing; list groups or layers")
        if self.token is None and self.token_env is None:
            raise ValueError("needs token or token_env")
        return self


class SecurityTable(Table):
    """``[security]``: access tokens."""

    tokens: tuple[TokenTable, ...] = ()


class CatalogTable(Table):
    """``[catalog]``: what is published besides the configured layers."""

    auto_layers: bool | None = Field(default=None, description=(
        "Publish every variable of every store as a layer (default: only when no "
        "[[layers]] are configured)"))


class CatchmentTable(Table):
    """``[catchments.<name>]``: a polygon set from a GeoJSON file (docs/catchments.md)."""

    file: str = Field(description="The GeoJSON file, relative to the configuration file")
    id: str = Field(default="id", description="The feature property naming each catchment")
    title: str | None = None
    layers: tuple[str, ...] = Field(default=(), description=(
        "Layers also served per catchment, as WMS layers <set>:<layer>"))


def _set_name(name: str) -> str:
    if not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError("a set name is letters, digits, - and _")
    return name


class ConfigFile(Table):
    """The whole TOML configuration file."""

    service: ServiceTable = Field(default_factory=lambda: ServiceTable())
    catalog: CatalogTable = CatalogTable()
    stores: dict[str, Annotated[StoreTable, BeforeValidator(
        _store_entry, json_schema_input_type=Location | StoreTable)]] = Field(
        default={}, description="Stores by name: a path, or a table")
    styles: tuple[StyleTable, ...] = ()
    groups: tuple[GroupTable, ...] = ()
    layers: tuple[LayerTable, ...] = ()
    security: SecurityTable = SecurityTable()
    catchments: dict[Annotated[str, AfterValidator(_set_name)], CatchmentTable] = Field(
        default={}, description="Polygon sets by name, for catchment means")

    @classmethod
    def empty(cls) -> ConfigFile:
        """The configuration of a service without a file."""
        return cls()

    @classmethod
    def load(cls, path: Path) -> ConfigFile:
        """Read and validate the file at ``path``.

        Raises
        ------
        ConfigError
            If the file cannot be read, is not TOML, or a value does not fit the schema:
            the message names the file and the key.
        """
        data = read_config(path)
        try:
            config = cls.model_validate(data, context={"folder": path.parent})
        except ValidationError as exc:
            raise ConfigError(describe_errors(exc, str(path), cls, data)) from exc
        config._path = path
        return config

    _path: Path | None = None

    @property
    def path(self) -> Path | None:
        """The file read (None: no file)."""
        return self._path

    @property
    def folder(self) -> Path:
        """The folder relative paths in the file start from."""
        return self._path.parent if self._path else Path.cwd()

    def store_paths(self) -> dict[str, Path | str]:
        """Stores placed outside the stores folder: ``[stores] name = "path"`` or a table's
        path (a ``[stores.<name>]`` table without one only sets the policy of a store in the
        stores folder)."""
        return {name: table.path for name, table in self.stores.items()
                if table.path is not None}

    def retention(self, store: str) -> RetentionPolicy:
        """The retention policy of ``store`` (none if unset)."""
        table = self.stores.get(store)
        return RetentionPolicy() if table is None else RetentionPolicy(table.keep_runs,
                                                                       table.keep_days)

    def where(self, *keys: str | int) -> str:
        """``<file>: <dotted key>``: what an error about a value of the file starts with
        (an int is an index into an array of tables without an id)."""
        dotted = "".join(f"[{k}]" if isinstance(k, int) else f".{_quoted(k)}" for k in keys)
        return f"{self._path or 'configuration'}: {dotted.removeprefix('.')}"

    @contextmanager
    def located(self, *keys: str | int) -> Iterator[None]:
        """Name the file and ``keys`` in a `ConfigError` raised inside (a check of a value
        the schema cannot make alone: a style's numbers, a threshold's grammar)."""
        try:
            yield
        except ConfigError as exc:
            raise ConfigError(f"{self.where(*keys)}: {exc}") from exc


# --- reading and errors ----------------------------------------------------------------------


def _quoted(key: str) -> str:
    """A key of a dotted path, quoted as TOML quotes it when it is not a bare key."""
    bare = key.replace("-", "").replace("_", "").isalnum()
    return key if bare else f'"{key}"'


def _dotted(loc: Sequence[int | str], data: Any) -> str:
    """The dotted path of an error location; an array item is named by its ``id``.

    Parts below a value that is not a table (pydantic's names of the types it tried) are
    left out: they are no key a user wrote.
    """
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int) and isinstance(data, list) and part < len(data):
            data = data[part]
            ident = (data.get("id") or data.get("name")) if isinstance(data, dict) else None
            parts[-1] = parts[-1] + (f".{_quoted(ident)}" if isinstance(ident, str)
                                     else f"[{part}]")
        elif isinstance(data, dict):
            data = data.get(part)
            parts.append(_quoted(str(part)))
    return ".".join(parts)


def _strip(annotation: Any) -> Any:
    """The type inside ``Annotated[...]`` and ``... | None``."""
    while True:
        args = [a for a in get_args(annotation) if a is not type(None)]
        if get_origin(annotation) is Annotated or (len(args) == 1 and get_origin(annotation)
                                                   not in (dict, tuple, list)):
            annotation = args[0]
        else:
            return annotation


def _keys_at(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """The keys the table at ``loc`` (a path into ``model``) knows: for suggestions."""
    annotation: Any = model
    for part in loc:
        annotation = _strip(annotation)
        if get_origin(annotation) in (dict, tuple, list):  # a key or an index: the items
            annotation = get_args(annotation)[-1 if get_origin(annotation) is dict else 0]
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = next((f for name, f in annotation.model_fields.items()
                          if part in (name, f.alias)), None)
            if field is None:
                return []
            annotation = field.annotation
        else:
            return []
    annotation = _strip(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [f.alias or name for name, f in annotation.model_fields.items()]
    return []


def describe_errors(exc: ValidationError, origin: str | Callable[[str], str],
                    model: type[BaseModel], data: Any) -> str:
    """One line per error: where (file, variable or flag), the dotted key, and what was
    expected; an unknown key with the nearest known one.

    ``origin`` is the source's name, or a function from a top-level key to it.
    """
    lines = []
    for error in exc.errors():
        loc = error["loc"]
        where = origin(str(loc[0])) if callable(origin) else origin
        key = _dotted(loc, data)
        value = error.get("input")
        if error["type"] == "extra_forbidden":
            near = difflib.get_close_matches(str(loc[-1]), _keys_at(model, loc[:-1]), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else (
                f"; known keys: {', '.join(_keys_at(model, loc[:-1]))}")
            lines.append(f"{where}: {key}: unknown key{hint}")
        elif error["type"] == "missing":
            lines.append(f"{where}: {key}: required key missing")
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            shown = repr(value)[:100]
            # Our own checks quote the value they refuse; pydantic's say only what they expect.
            quoted = shown in message and (isinstance(value, bool)
                                           or not isinstance(value, int | float))
            given = "" if quoted or isinstance(value, dict) else f" = {shown}"
            lines.append(f"{where}: {key}{given}: {message}")
    return "\n".join(lines)


def read_config(path: Path) -> dict[str, Any]:
    """Parse the TOML configuration file (unvalidated: `ConfigFile.load` checks it).

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


class _Environment(EnvSettingsSource):
    """``FEWSMAP_*`` variables of a given mapping (the process's, or a test's)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(Settings)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k.lower(): v for k, v in self._environ.items()}


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build the settings from the config file's ``[service]`` table, env vars and overrides.

    Later sources win: defaults, the file, then ``FEWSMAP_*`` variables, then explicit
    overrides (command-line flags). ``None`` overrides are ignored. The whole file is
    validated here, once.

    Raises
    ------
    ConfigError
        If a value does not fit, or a key is unknown: naming its source and key.
    """
    environ = os.environ if environ is None else environ
    config_file = config_file or (
        Path(environ["FEWSMAP_CONFIG_FILE"]) if environ.get("FEWSMAP_CONFIG_FILE") else None)
    config = ConfigFile.load(config_file) if config_file is not None else ConfigFile.empty()
    values: dict[str, Any] = config.service.model_dump(include=config.service.model_fields_set)
    origins = dict.fromkeys(values, f"{config_file}: service")
    for name, value in _Environment(environ)().items():
        values[name], origins[name] = value, f"{ENV_PREFIX}{name.upper()}"
    for name, value in overrides.items():
        if value is not None:
            values[name], origins[name] = value, "command line"
    if config_file is not None:
        values["config_file"] = config_file
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, lambda key: origins.get(key, "settings"),
                                          Settings, values)) from exc
    settings.__dict__["config"] = config  # read once: `Settings.config` is this
    return settings


def config_schema() -> dict[str, Any]:
    """The JSON Schema of the configuration file (``fewsmap config-schema``)."""
    schema = ConfigFile.model_json_schema(by_alias=True)
    schema["title"] = "fewsmap configuration (fewsmap.toml)"
    return schema
