"""A client for a running fewsmap service: layers, runs, time series and maps.

It speaks the service's public interface only: FEWS JSON capabilities, ``/api/timeseries``,
WMS GetMap and the raw cubes at ``/zarr/<store>``. The forecast products every front serves
are arguments here too: an ensemble statistic or exceedance probability as the ``member``
(``"mean"``, ``"p90"``, ``"above:20"``), the change from an earlier run (``baseline``) and
sums over a window (``accumulate``). httpx rather than urllib: a notebook makes
many small requests, and httpx keeps one pooled keep-alive connection for them (urllib opens
a connection per request), with timeouts and typed transport errors.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, TypeAlias
from urllib.parse import quote

import httpx
import numpy as np
import pandas as pd
import xarray as xr
from PIL import Image

from fewsmap.catalog.styles import Style, style_from_config
from fewsmap.crs import canonical_crs, north_first
from fewsmap.errors import FewsmapError, InvalidParameterValue
from fewsmap.products.change import PREVIOUS
from fewsmap.products.ensemble import parse_statistic
from fewsmap.store.geometry import transformer

Bbox = tuple[float, float, float, float]
# pandas.Timestamp and Timedelta are datetime and timedelta subclasses.
Instant: TypeAlias = str | np.datetime64 | datetime
Duration: TypeAlias = str | np.timedelta64 | timedelta
# The FEWS forecast period that asks GetCapabilities for every run of a layer.
ALL_RUNS = {"startForecastTime": "0001-01-01T00:00:00Z",
            "endForecastTime": "9999-12-31T23:59:59Z", "forecastCount": "1000000"}


class ServiceError(FewsmapError):
    """The service refused a request (4xx), failed (5xx) or could not be reached.

    ``http_status`` is None when no answer came; ``ogc_code`` is the service's error code
    (InvalidDimensionValue …) and ``message`` its message.
    """

    def __init__(self, message: str, http_status: int | None = None,
                 code: str | None = None) -> None:
        prefix = f"HTTP {http_status}" if http_status else "no answer"
        super().__init__(f"{prefix}{f' {code}' if code else ''}: {message}")
        self.message = message
        self.http_status = http_status or 0
        self.ogc_code = code or "NoApplicableCode"


class Client:
    """A running fewsmap service at ``url`` (``http://127.0.0.1:8080``)."""

    def __init__(self, url: str, *, timeout_s: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout_s)

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    def health(self) -> dict[str, Any]:
        """The service's ``/health``: version, stores and their latest runs."""
        body: dict[str, Any] = self._get("/health").json()
        return body

    def layers(self) -> pd.DataFrame:
        """Every layer, from the FEWS JSON capabilities: one row per layer id.

        Columns: title, group, styles, latest_run, first_time, last_time (the latest run's
        valid times), members, statistics (the ensemble statistics and thresholds ``member``
        takes besides member numbers) and elevations (None where the layer has none),
        bbox_3857.
        """
        body = self._capabilities({"onlyHeaders": "true"})
        rows = [_layer_row(entry) for entry in body["layers"]]
        return pd.DataFrame(rows, columns=LAYER_COLUMNS).set_index("layer")

    def runs(self, layer: str) -> pd.DataFrame:
        """The published runs of ``layer``, oldest first: one row per reference time.

        Columns: layer_id (the per-run id ``<layer>-<T0>`` WMS clients can name),
        first_time, last_time.
        """
        body = self._capabilities({"layers": layer, "onlyHeaders": "true", **ALL_RUNS})
        # per-run ids are <layer>-<T0>; the answer may also hold a derived <layer>:change
        rows = [{"reference_time": _time(entry["externalForecastTime"]),
                 "layer_id": entry["name"], "first_time": _time(entry["firstValueTime"]),
                 "last_time": _time(entry["lastValueTime"])}
                for entry in body["layers"] if entry["name"].startswith(f"{layer}-")]
        frame = pd.DataFrame(rows, columns=["reference_time", "layer_id", "first_time",
                                            "last_time"])
        return frame.sort_values("reference_time").set_index("reference_time")

    def timeseries(self, layer: str, x: float, y: float, *, crs: str | None = None,
                   run: Instant | None = None, runs: int | str | None = None,
                   start: Instant | None = None, end: Instant | None = None,
                   member: float | str | None = None,
                   elevation: float | str | None = None, baseline: Instant | None = None,
                   accumulate: Duration | None = None,
                   display_units: bool | None = None) -> pd.DataFrame:
        """A layer's values at a point (``/api/timeseries``), one row per value.

        ``x``/``y`` are east/north in ``crs`` (default EPSG:4326: longitude, latitude). One
        run (``run``, default the latest), several (``runs="all"`` or the latest n), or every
        run covering ``start``..``end``; ``member``/``elevation`` a label or ``"all"``, and
        ``member`` also an ensemble statistic (``"mean"``, ``"p90"``) or the per cent of
        members above/below a value (``"above:20"``, in the layer's stored units).
        ``baseline`` (``"previous"`` or a run's reference time) gives each run's change from
        that run, at the valid times both hold; ``accumulate`` (``"PT24H"`` or a timedelta)
        the sums over the window ending at each valid time. ``display_units`` asks for the
        units maps are drawn in (True) or the stored ones (False); default the service's.

        Returns
        -------
        pandas.DataFrame
            Columns reference_time, valid_time (UTC, naive, as `open_cube` has them),
            lead_time, member/elevation where the layer has them, baseline_reference_time
            of a change, accumulation (the window) of sums, value (NaN where missing) and a
            vector layer's components. ``attrs`` hold layer, variable, units
            and the grid cell read.

        Raises
        ------
        ServiceError
            With the service's message (LayerNotDefined, InvalidPoint …).
        """
        params = {"layer": layer, "x": repr(float(x)), "y": repr(float(y)), "crs": crs,
                  **series_selection(run, runs, start, end, member, elevation, baseline,
                                     accumulate, display_units)}
        return series_frame(self._get("/api/timeseries", params).json())

    def catchment(self, layer: str, catchments: str | None = None,
                  catchment_id: str | None = None, *, geometry: str | None = None,
                  run: Instant | None = None, runs: int | str | None = None,
                  start: Instant | None = None, end: Instant | None = None,
                  member: float | str | None = None,
                  elevation: float | str | None = None, baseline: Instant | None = None,
                  accumulate: Duration | None = None,
                  display_units: bool | None = None) -> pd.DataFrame:
        """A layer's area-weighted mean over a catchment (``/api/catchments``), one row per
        value: the catchment ``catchment_id`` of the set ``catchments``, or a polygon given as
        ``geometry`` (WKT or GeoJSON, longitude/latitude). Runs, members (``"all"``, or a
        statistic over the members' catchment means: ``"mean"``, ``"p90"``, ``"above:20"``),
        levels, ``baseline``, ``accumulate`` and ``display_units`` as in `timeseries`.

        Returns
        -------
        pandas.DataFrame
            The columns of `timeseries`; ``attrs["catchment"]`` says which catchment, how
            many cells and how they were weighted.

        Raises
        ------
        ServiceError
            With the service's message (an unknown set or id, a polygon refused …).
        """
        if (geometry is None) == (catchments is None or catchment_id is None):
            raise ValueError("give catchments and catchment_id, or geometry")
        params = {"layer": layer, **series_selection(
            run, runs, start, end, member, elevation, baseline, accumulate, display_units)}
        if geometry is not None:
            response = self._post("/api/catchments", params, geometry.encode())
        else:
            response = self._get(f"/api/catchments/{quote(str(catchments), safe='')}/"
                                 f"{quote(str(catchment_id), safe='')}", params)
        return series_frame(response.json())

    def timeseries_xarray(self, layer: str, x: float, y: float,
                          **selection: Any) -> xr.DataArray:
        """`timeseries` as a DataArray over reference_time × valid_time (× member, elevation),
        NaN where a run has no value; ``lead_time`` is a 2-D coordinate."""
        return series_array(self.timeseries(layer, x, y, **selection))

    def map(self, layer: str, *, bbox: Bbox | None = None, crs: str = "EPSG:3857",
            width: int = 800, height: int | None = None, time: Instant | None = None,
            run: Instant | None = None, lead_time: Duration | None = None, style: str = "",
            member: float | str | None = None, elevation: float | None = None,
            dimensions: Mapping[str, float] | None = None,
            color_range: tuple[float, float] | None = None, reducer: str | None = None,
            show_contours: bool = False, transparent: bool = True,
            baseline: Instant | None = None, accumulate: Duration | None = None,
            ) -> Image.Image:
        """A map from WMS GetMap as a PIL image; the arguments mean what they mean for
        `fewsmap.client.maps.render_map`, which draws the same image locally.

        ``member`` is a member number or an ensemble statistic (``"mean"``, ``"p90"``,
        ``"above:20"`` …). ``baseline`` (``"previous"`` or a run's reference time) draws the
        change from that run, in the diverging style the service picks; ``accumulate``
        (``"PT24H"`` or a timedelta) the sums over the window ending at the valid time.
        ``bbox`` is east first in every CRS (the client swaps it for WMS 1.3.0 where the CRS
        is north first); default the layer's extent. ``info["run"]`` and
        ``info["valid_time"]`` say what the map shows.

        Raises
        ------
        ServiceError
            With the service's message.
        """
        crs = canonical_crs(crs)
        bbox = bbox or self._extent(layer, crs)
        minx, miny, maxx, maxy = bbox
        axes = (miny, minx, maxy, maxx) if north_first(crs) else (minx, miny, maxx, maxy)
        params = {
            "service": "WMS", "version": "1.3.0", "request": "GetMap", "layers": layer,
            "styles": style, "crs": crs, "bbox": ",".join(repr(float(v)) for v in axes),
            "width": str(width), "height": str(height or aspect_height(bbox, width)),
            "format": "image/png", "transparent": str(transparent).lower(),
            "time": instant_text(time) if time is not None else None,
            "dim_reference_time": instant_text(run) if run is not None else None,
            "dim_lead_time": duration_text(lead_time) if lead_time is not None else None,
            "dim_ensemble_member": _label(member),
            "elevation": f"{elevation:g}" if elevation is not None else None,
            "colorscalerange": ",".join(repr(float(v)) for v in color_range)
            if color_range else None,
            "reducer": reducer, "showContours": "true" if show_contours else None,
            **products(baseline, accumulate),
            "exceptions": "application/json",  # errors as JSON, whatever the format
            **{f"dim_{name}": f"{value:g}" for name, value in (dimensions or {}).items()},
        }
        response = self._get("/wms", params)
        image = Image.open(io.BytesIO(response.content))
        image.load()
        image.info.update(run=response.headers.get("X-Fewsmap-Run"),
                          valid_time=response.headers.get("X-Fewsmap-Valid-Time"))
        return image

    def styles(self, layer: str) -> dict[str, Style]:
        """The layer's styles by name, as the service colours with them (from the
        definitions in its TileJSON).

        Raises
        ------
        ServiceError
            With the service's message (LayerNotDefined …).
        """
        return styles_in(self.tile_json(layer))

    def tile_json(self, layer: str, *, run: Instant | None = None) -> dict[str, Any]:
        """The layer's TileJSON for ``run`` (default the latest); its ``fewsmap`` member holds
        the runs, valid times, style names and definitions, and the run's colour range
        (``valueRange``).

        Raises
        ------
        ServiceError
            With the service's message (LayerNotDefined, InvalidDimensionValue …).
        """
        body: dict[str, Any] = self._get(
            f"/tiles/{quote(layer, safe='')}/tilejson.json",
            {"run": run_text(run) if run is not None else None}).json()
        return body

    def open_cube(self, store: str) -> xr.Dataset:
        """The raw cube of ``store`` over HTTP (``/zarr/<store>``), lazily, as `open_cube`."""
        from fewsmap.store.cube import open_cube

        return open_cube(f"{self.url}/zarr/{quote(store, safe='')}")

    def _extent(self, layer: str, crs: str) -> Bbox:
        """The bounding box of a layer (or of a group's layers) from the capabilities, in
        ``crs`` (east first)."""
        frame = self.layers()
        chosen = frame.loc[[layer]] if layer in frame.index else frame[frame.group == layer]
        if chosen.empty:  # the service names the problem (LayerNotDefined …)
            self._capabilities({"layers": layer})
        boxes = np.array(chosen["bbox_3857"].tolist(), dtype="float64").reshape(-1, 4)
        minx, miny = boxes[:, :2].min(axis=0)
        maxx, maxy = boxes[:, 2:].max(axis=0)
        if crs == "EPSG:3857":
            return float(minx), float(miny), float(maxx), float(maxy)
        return tuple(float(v) for v in transformer("EPSG:3857", crs).transform_bounds(  # type: ignore[return-value]
            minx, miny, maxx, maxy, densify_pts=21))

    def _capabilities(self, params: dict[str, str]) -> dict[str, Any]:
        body: dict[str, Any] = self._get("/wms", {
            "service": "WMS", "request": "GetCapabilities", "format": "application/json",
            **params}).json()
        return body

    def _get(self, path: str, params: dict[str, str | None] | None = None) -> httpx.Response:
        """GET ``path``; raise `ServiceError` with the service's message on failure."""
        return self._post(path, params, None)

    def _post(self, path: str, params: dict[str, str | None] | None,
              body: bytes | None) -> httpx.Response:
        """POST ``body`` to ``path`` (GET without one); raise `ServiceError` with the
        service's message on failure."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request("GET" if body is None else "POST", path,
                                          params=query, content=body)
        except httpx.TransportError as exc:
            raise ServiceError(f"cannot reach fewsmap at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise service_error(response)
        return response


def styles_in(tile_json: Mapping[str, Any]) -> dict[str, Style]:
    """The styles a layer's TileJSON defines, by name (its ``styleDefinitions`` tables)."""
    tables = tile_json["fewsmap"]["styleDefinitions"]
    return {table["id"]: style_from_config(table) for table in tables}


LAYER_COLUMNS = ["layer", "title", "group", "styles", "latest_run", "first_time",
                 "last_time", "members", "statistics", "elevations", "bbox_3857"]


def _layer_row(entry: dict[str, Any]) -> dict[str, Any]:
    box = entry["boundingBox"]
    ensembles = entry.get("ensembles") or [{}]
    labels = ensembles[0].get("ensembleMemberIds", [])
    return {
        "layer": entry["name"], "title": entry["title"], "group": entry["groupName"],
        "styles": [s["name"] for s in entry["styles"]],
        "latest_run": _time(entry.get("externalForecastTime")),
        "first_time": _time(entry.get("firstValueTime")),
        "last_time": _time(entry.get("lastValueTime")),
        # Member numbers; the ensemble statistics listed after them are not members.
        "members": [float(m) for m in labels if parse_statistic(m) is None] or None,
        "statistics": [m for m in labels if parse_statistic(m) is not None] or None,
        "elevations": entry.get("elevation", {}).get("irregularTicks"),
        "bbox_3857": tuple(float(box[k]) for k in ("minx", "miny", "maxx", "maxy")),
    }


# Keys of a /api/timeseries series that are not a member/level label.
SERIES_KEYS = ("reference_time", "times", "lead_times", "values", "components")
BASELINE_KEY = "baseline_reference_time"  # a change's baseline run, a time like the run's


def series_frame(body: dict[str, Any]) -> pd.DataFrame:
    """The JSON answer of ``/api/timeseries`` as a long DataFrame (see `Client.timeseries`)."""
    frames = []
    for series in body["series"]:
        valid = _times(series["times"])
        frame = pd.DataFrame({"reference_time": _time(series["reference_time"]),
                              "valid_time": valid})
        frame["lead_time"] = frame["valid_time"] - frame["reference_time"]
        for name, label in series.items():
            if name not in SERIES_KEYS:  # member, elevation, baseline, accumulation
                frame[name] = _time(label) if name == BASELINE_KEY else label
        frame["value"] = np.asarray(series["values"], dtype="float64")  # null → NaN
        for name, values in series.get("components", {}).items():
            frame[name] = np.asarray(values, dtype="float64")
        frames.append(frame)
    result = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["reference_time", "valid_time", "lead_time", "value"])
    result.attrs.update(layer=body["layer"], variable=body["variable"], units=body["units"],
                        # the grid cell read, or the catchment averaged over
                        **{k: body[k] for k in ("cell", "catchment") if k in body})
    return result


def series_array(frame: pd.DataFrame) -> xr.DataArray:
    """A `series_frame` as a DataArray over reference_time × valid_time × labels."""
    labels = [c for c in frame.columns if c in ("member", "elevation")]
    index = ["reference_time", "valid_time", *labels]
    array: xr.DataArray = frame.set_index(index)["value"].to_xarray()
    lead = (array.valid_time - array.reference_time).transpose("reference_time", "valid_time")
    array = array.assign_coords(lead_time=lead)
    array.name = frame.attrs.get("variable", "value")
    cell = frame.attrs.get("cell", {})
    array.attrs.update(units=frame.attrs.get("units", ""), layer=frame.attrs.get("layer", ""),
                       cell_lon=cell.get("lon"), cell_lat=cell.get("lat"))
    return array


def service_error(response: httpx.Response) -> ServiceError:
    """The service's error answer (JSON or OGC XML) as a `ServiceError`."""
    code, message = None, response.text[:300].strip() or response.reason_phrase
    try:
        error = response.json()["error"]
        code, message = error.get("code"), str(error["message"])
    except (ValueError, KeyError, TypeError):
        try:
            for element in ET.fromstring(response.content).iter():
                if element.tag.endswith("ServiceException"):
                    code, message = element.get("code"), (element.text or "").strip()
                    break
        except ET.ParseError:
            pass
    return ServiceError(message, response.status_code, code)


def instant_text(value: Instant) -> str:
    """An instant as the service's ISO 8601 UTC text; strings pass unchanged (WMS TIME).

    Raises
    ------
    InvalidParameterValue
        If ``value`` is not a time (NaT).
    """
    if isinstance(value, str):
        return value
    stamp = pd.Timestamp(value)
    if pd.isna(stamp):
        raise InvalidParameterValue(f"{value!r} is not a time")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return str(stamp.strftime("%Y-%m-%dT%H:%M:%SZ"))


def run_text(value: Instant) -> str:
    """A run's reference time as the service names runs (``2022-08-09T00:00:00Z``), also
    when given as a shorter text (``2022-08-09T00Z``).

    Raises
    ------
    InvalidParameterValue
        If ``value`` is not a time.
    """
    try:
        return instant_text(pd.Timestamp(value))
    except ValueError as exc:
        raise InvalidParameterValue(f"run={value!r} is not a time") from exc


def duration_text(value: Duration) -> str:
    """A lead time as an ISO 8601 duration (``PT43200S``); strings pass unchanged."""
    if isinstance(value, str):
        return value
    seconds = pd.Timedelta(value).total_seconds()
    if not np.isfinite(seconds):
        raise InvalidParameterValue(f"{value!r} is not a duration")
    return f"PT{int(seconds)}S"


def aspect_height(bbox: Bbox, width: int) -> int:
    """The height that keeps the bbox's aspect ratio at ``width`` pixels."""
    minx, miny, maxx, maxy = (float(v) for v in bbox)
    if not maxx > minx:
        return int(width)  # a bad bbox: refused with its own message later
    return max(1, round(int(width) * (maxy - miny) / (maxx - minx)))


def series_selection(run: Instant | None, runs: int | str | None, start: Instant | None,
                     end: Instant | None, member: float | str | None,
                     elevation: float | str | None, baseline: Instant | None,
                     accumulate: Duration | None,
                     display_units: bool | None) -> dict[str, str | None]:
    """The query parameters a series selects with (None: not asked), shared by point and
    catchment series."""
    return {"run": instant_text(run) if run is not None else None,
            "runs": str(runs) if runs is not None else None,
            "start": instant_text(start) if start is not None else None,
            "end": instant_text(end) if end is not None else None,
            "member": _label(member), "elevation": _label(elevation),
            **products(baseline, accumulate),
            "useDisplayUnits": None if display_units is None else str(display_units).lower()}


def products(baseline: Instant | None, accumulate: Duration | None) -> dict[str, str | None]:
    """The ``baseline`` and ``accumulate`` parameters of a request (None: not asked).

    Raises
    ------
    InvalidParameterValue
        If ``baseline`` is neither ``"previous"`` nor a time, or ``accumulate`` no duration.
    """
    chosen = None
    if isinstance(baseline, str) and baseline.strip().lower() == PREVIOUS:
        chosen = PREVIOUS
    elif baseline is not None:
        try:
            chosen = run_text(baseline)
        except InvalidParameterValue as exc:
            raise InvalidParameterValue(f"baseline={baseline!r} is neither 'previous' nor a "
                                        "run's reference time") from exc
    return {"baseline": chosen,
            "accumulate": duration_text(accumulate) if accumulate is not None else None}


def _label(value: float | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return f"{value:g}"


def _time(text: str | None) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert(None) if text else pd.NaT


def _times(texts: list[str]) -> pd.DatetimeIndex:
    return pd.to_datetime(texts, utc=True).tz_convert(None)
