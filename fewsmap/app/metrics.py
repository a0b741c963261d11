"""Prometheus metrics of the service at ``/metrics`` (docs/design/operations.md lists them).

Every metric lives in the app's own registry, so a process may build many apps (the tests
do) without duplicate registrations. Labels come from fixed sets only: the endpoint is the
kind of route and operation (``wms GetMap``, ``tiles``, ``edr position`` …, see
`endpoint_of`), never a path or a layer name sent by a client, and stores are named only
where their data is public.

Several workers (``fewsmap serve --workers N``) are several processes: `serve` gives them
prometheus_client's multiprocess mode (`multiprocess_directory`), where each worker writes
its counters, histograms and gauges to memory-mapped files in a private directory and the
worker that answers a scrape sums them (`MultiProcessCollector`). What describes the stores
(runs, catalog age, readiness) is computed at scrape time by that worker, after it checked
its stores as every request does: each worker reads the same stores.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Literal
from urllib.parse import unquote_plus

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fewsmap import __version__
from fewsmap.app.limits import Lane, RenderLimiter
from fewsmap.app.streaming import SendBudget
from fewsmap.app.warmup import Readiness
from fewsmap.catalog import Catalog
from fewsmap.edr.query import QUERY_TYPES
from fewsmap.time.instants import as_seconds

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# The Prometheus text format that `generate_latest` writes, which every Prometheus reads.
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"
# Seconds: a 256² tile takes a few ms warm, an animation or a large export tens of seconds.
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# The operations of WMS and WMTS requests, by their lower-case REQUEST value.
WMS_OPERATIONS = {name.lower(): name for name in
                  ("GetMap", "GetCapabilities", "GetFeatureInfo", "GetLegendGraphic")}
WMTS_OPERATIONS = {name.lower(): name for name in
                   ("GetTile", "GetCapabilities", "GetFeatureInfo")}
# A multiprocess gauge's value per worker is summed over the workers alive.
SUMMED: Literal["livesum"] = "livesum"


def endpoint_of(path: str, query_string: bytes) -> str:
    """Name the kind of a request from a fixed set: its route and, for WMS/WMTS key-value
    requests and EDR queries, its operation (never a value the client chose)."""
    head, _, rest = path.strip("/").partition("/")
    if path in ("/wms", "/FewsWebServices/wms"):
        return "wms " + WMS_OPERATIONS.get(_request_parameter(query_string), "other")
    if path == "/wmts":
        return "wmts " + WMTS_OPERATIONS.get(_request_parameter(query_string), "other")
    if head == "wmts":
        return "wmts GetCapabilities" if rest.endswith(".xml") else "wmts rest"
    if head == "tiles":
        return "tilejson" if path.endswith("/tilejson.json") else "tiles"
    if head == "edr":
        return f"edr {_edr_query(path)}"
    if head == "api":
        return {"/api/timeseries": "api timeseries",
                "/api/openapi.json": "api openapi"}.get(path, "other")
    if head in ("zarr", "zarr-v2") or path == "/metrics":
        return head
    if head == "health":
        return {"": "health", "live": "health live", "ready": "health ready"}.get(rest, "other")
    if path == "/" or head == "viewer":
        return "viewer"
    return "other"


def _edr_query(path: str) -> str:
    """The query type of an EDR data path (``/edr/collections/{layer}[/instances/{run}]/
    {query}``), else ``metadata``."""
    parts = path.strip("/").split("/")
    data = (len(parts) == 4 or (len(parts) == 6 and parts[3] == "instances")) \
        and parts[1] == "collections" and parts[-1] in QUERY_TYPES
    return parts[-1] if data else "metadata"


def _request_parameter(query_string: bytes) -> str:
    """The lower-case value of the REQUEST parameter (names are case-insensitive in OGC),
    as ``parse_qsl`` reads it, without decoding every other parameter (a GetMap's query
    took 2.7 % of a tile's server CPU)."""
    for part in query_string.split(b"&"):
        name, _, value = part.partition(b"=")
        if value and _decoded(name).lower() == "request":  # parse_qsl skips blank values
            return _decoded(value).lower()
    return ""


def _decoded(raw: bytes) -> str:
    text = raw.decode("latin-1")
    return unquote_plus(text) if "%" in text or "+" in text else text


def in_multiprocess_mode() -> bool:
    """Whether metric values are shared between the worker processes of one service."""
    return MULTIPROCESS_VARIABLE in os.environ


@contextlib.contextmanager
def multiprocess_directory() -> Iterator[str]:
    """Share metric values between the workers forked in this block: a private directory in
    ``PROMETHEUS_MULTIPROC_DIR`` for their files, removed (and the variable restored) after.

    prometheus_client chooses how it stores values when it is first imported, from that
    variable; the choice is made again here, before any worker creates a metric.
    """
    previous = os.environ.get(MULTIPROCESS_VARIABLE)
    directory = tempfile.mkdtemp(prefix="fewsmap-metrics-")
    os.environ[MULTIPROCESS_VARIABLE] = directory
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        if previous is None:
            os.environ.pop(MULTIPROCESS_VARIABLE, None)
        else:
            os.environ[MULTIPROCESS_VARIABLE] = previous
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def worker_ended(pid: int, directory: str) -> None:
    """Drop the gauges of a worker that has ended (its counters still count)."""
    multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


class Metrics:
    """The metrics of one app: requests, renders, refusals, and what the stores hold.

    Parameters
    ----------
    public_catalog
        Return the catalog as a client without a token sees it, checked as a request would
        (stores with protected data are left out of the per-store metrics).
    readiness
        The app's warm-up state.
    """

    def __init__(self, public_catalog: Callable[[], Awaitable[Catalog]],
                 readiness: Readiness) -> None:
        self.public_catalog = public_catalog
        self.registry = CollectorRegistry(auto_describe=True)
        shared = in_multiprocess_mode()
        # Multiprocess: values go to files and one collector reads every worker's files.
        owner = None if shared else self.registry
        if shared:
            multiprocess.MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]
        self.requests = Counter(
            "fewsmap_requests", "Requests answered, by endpoint and HTTP status.",
            ["endpoint", "status"], registry=owner)
        self.latency = Histogram(
            "fewsmap_request_duration_seconds",
            "Time from a request's arrival to the last byte of its answer, by endpoint and "
            "HTTP status.", ["endpoint", "status"], registry=owner,
            buckets=LATENCY_BUCKETS_S)
        self.renders_running = Gauge(
            "fewsmap_renders_running", "Renders running in a lane's threads (including "
            "renders whose client has gone, until their thread ends).", ["lane"],
            registry=owner, multiprocess_mode=SUMMED)
        self.renders_queued = Gauge(
            "fewsmap_renders_queued", "Renders waiting for a slot in a lane.", ["lane"],
            registry=owner, multiprocess_mode=SUMMED)
        self.renders_cost = Gauge(
            "fewsmap_renders_cost", "Declared cost (pixel equivalents) of the renders "
            "running in a lane.", ["lane"], registry=owner, multiprocess_mode=SUMMED)
        self.refusals = Counter(
            "fewsmap_refusals", "Requests refused with 503 and Retry-After, by reason.",
            ["reason"], registry=owner)
        self.bytes_in_flight = Gauge(
            "fewsmap_bytes_in_flight", "Bytes of large answers held while they are sent "
            "(max_bytes_in_flight per worker).", registry=owner, multiprocess_mode=SUMMED)
        self.readiness = readiness

    def watch(self, limiter: RenderLimiter, budget: SendBudget) -> None:
        """Follow the render lanes and the bytes in flight as they change; count refusals."""
        for lane in (limiter.light, limiter.heavy):
            lane.on_change = self.lane_changed
            self.lane_changed(lane)
        limiter.on_refusal = self.refused
        budget.on_change = self.bytes_in_flight.set
        budget.on_refusal = self.refused

    def lane_changed(self, lane: Lane) -> None:
        """Record a lane's renders running and waiting."""
        self.renders_running.labels(lane.name).set(lane.running)
        self.renders_queued.labels(lane.name).set(lane.queued)
        self.renders_cost.labels(lane.name).set(lane.cost)

    def refused(self, reason: str) -> None:
        """Count a refusal (``reason`` from a fixed set: light_queue, heavy_queue,
        render_timeout, bytes_in_flight, connections)."""
        self.refusals.labels(reason).inc()

    def answered(self, endpoint: str, status: int, seconds: float) -> None:
        """Count an answered request and its time."""
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint, str(status)).observe(seconds)

    async def exposition(self) -> Response:
        """Answer ``/metrics`` in the Prometheus text format."""
        catalog = await self.public_catalog()
        # The stores and the catalog as this worker sees them now, beside what every worker
        # counted (the text format is a sequence of metric families).
        scraped = CollectorRegistry(auto_describe=False)
        scraped.register(_Scraped([*_service_metrics(self.readiness),
                                   *_store_metrics(catalog)]))
        body = generate_latest(self.registry) + generate_latest(scraped)
        return Response(body, media_type=TEXT_FORMAT,
                        headers={"Cache-Control": "no-store"})



def metrics_routes() -> list[Route]:
    """The ``/metrics`` route, answered by the request's service's metrics."""

    async def exposition(request: Request) -> Response:
        metrics: Metrics = request.state.service.metrics  # lifespan state (app/state.py)
        return await metrics.exposition()

    return [Route("/metrics", exposition, methods=["GET", "HEAD"])]


class _Scraped(Collector):
    """Metrics worked out for one scrape."""

    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self.metrics


def _service_metrics(readiness: Readiness) -> Iterator[Metric]:
    """The version serving, and how many workers have warmed up."""
    info = GaugeMetricFamily("fewsmap_build_info", "The fewsmap version serving.",
                             labels=["version"])
    info.add_metric([__version__], 1)
    workers = readiness.workers()
    ready = GaugeMetricFamily("fewsmap_workers", "Workers of the service, and how many have "
                              "warmed up.", labels=["state"])
    ready.add_metric(["warm"], workers["warm"])
    ready.add_metric(["total"], workers["count"])
    yield from (info, ready)


def _store_metrics(catalog: Catalog) -> Iterator[Metric]:
    """Runs per public store, the latest run's time, and how old the catalog is."""
    runs = GaugeMetricFamily("fewsmap_store_runs", "Published runs a store holds (stores "
                             "holding protected data are left out).", labels=["store"])
    latest = GaugeMetricFamily("fewsmap_store_latest_run_timestamp_seconds",
                               "Forecast reference time of a store's latest run (Unix time).",
                               labels=["store"])
    for name, store in catalog.stores.items():
        runs.add_metric([name], len(store.runs))
        if store.latest_run is not None:
            latest.add_metric([name], float(as_seconds(store.latest_run.reference_time)
                                                .astype("int64")))
    now = time.monotonic()
    read = GaugeMetricFamily("fewsmap_catalog_check_age_seconds",
                             "Seconds since the catalog last read the state of its stores.")
    read.add_metric([], now - catalog.read_at)
    built = GaugeMetricFamily("fewsmap_catalog_snapshot_age_seconds",
                              "Seconds since the catalog's current snapshot was built (a "
                              "run or store landed, or the service started).")
    built.add_metric([], now - catalog.built_at)
    yield from (runs, latest, read, built)


class MetricsMiddleware:
    """Count every request and time it to the last byte of its answer, by endpoint and
    status (500 for a request whose handler failed before answering)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            self.metrics.answered(endpoint_of(scope["path"], scope.get("query_string", b"")),
                                  status, time.perf_counter() - began)
