"""Resource limits: render slots with a bounded queue and a time limit, time values, point
values, image pixels; each refused before the work starts, with a clear answer."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree

from fewsmap.app.limits import RenderLimiter, map_cost
from fewsmap.app.server import create_app
from fewsmap.cancel import checkpoint
from fewsmap.errors import ConfigError, ServiceUnavailable
from fewsmap.products import change
from fewsmap.resolve import points, series
from fewsmap.settings import Settings, load_settings
from tests.asgi_client import AppClient, Lifespan
from tests.conftest import record_figure
from tests.live_server import live_server

OGC = "{http://www.opengis.net/ogc}"
NAEFS_RUN = "2022-08-09T00:00:00Z"
BIG_MAP = {"request": "GetMap", "layers": "naefs-mean.QPF", "crs": "EPSG:3857",
           "bbox": "-13914936,2875744,-7235766,7170156", "width": "1920", "height": "1200",
           "showContours": "true"}


# --- the limiter itself, with real threads -------------------------------------------------


def blocking(started: threading.Event, release: threading.Event, result: str) -> str:
    started.set()
    assert release.wait(10)
    return result


def test_a_queued_render_runs_when_a_slot_frees_in_arrival_order() -> None:
    limiter = RenderLimiter(1, queue_timeout_s=10, timeout_s=10)
    started, release = threading.Event(), threading.Event()
    order: list[str] = []

    async def scenario() -> list[str]:
        def record(name: str) -> str:
            order.append(name)
            return name

        first = asyncio.create_task(limiter.run(1, blocking, started, release, "first"))
        await asyncio.to_thread(started.wait)
        queued = [asyncio.create_task(limiter.run(1, record, name)) for name in ("b", "c")]
        await asyncio.sleep(0.05)
        assert (limiter.running, limiter.queued, order) == (1, 2, [])
        release.set()
        return [await first, *[await task for task in queued]]

    assert asyncio.run(scenario()) == ["first", "b", "c"]
    assert order == ["b", "c"] and (limiter.running, limiter.queued) == (0, 0)


def test_no_free_slot_within_the_queue_time_is_503_with_retry_after() -> None:
    limiter = RenderLimiter(1, queue_timeout_s=0.1, timeout_s=10)
    started, release = threading.Event(), threading.Event()

    async def scenario() -> ServiceUnavailable:
        first = asyncio.create_task(limiter.run(1, blocking, started, release, "first"))
        await asyncio.to_thread(started.wait)
        began = time.monotonic()
        with pytest.raises(ServiceUnavailable) as refused:
            await limiter.run(1, str, 1)
        assert 0.1 <= time.monotonic() - began < 2  # it waited its queue time, no longer
        release.set()
        assert await first == "first"
        return refused.value

    error = asyncio.run(scenario())
    assert error.http_status == 503 and error.headers == {"Retry-After": "1"}
    assert "busy" in str(error) and limiter.queued == 0


def test_a_timed_out_render_keeps_its_slot_until_its_thread_ends() -> None:
    limiter = RenderLimiter(1, queue_timeout_s=0, timeout_s=0.1)
    started, release = threading.Event(), threading.Event()

    async def scenario() -> None:
        with pytest.raises(ServiceUnavailable, match=r"took longer than 0\.1 s"):
            await limiter.run(1, blocking, started, release, "slow")
        assert limiter.running == 1  # the thread cannot be killed: it still renders
        with pytest.raises(ServiceUnavailable, match="busy"):
            await limiter.run(1, str, 1)
        release.set()
        for _ in range(200):
            if limiter.running == 0:
                break
            await asyncio.sleep(0.01)
        assert await limiter.run(1, str, 2) == "2"

    asyncio.run(scenario())


def test_a_waiter_that_gives_up_passes_its_turn_on() -> None:
    limiter = RenderLimiter(1, queue_timeout_s=10, timeout_s=10)
    started, release = threading.Event(), threading.Event()

    async def scenario() -> str:
        first = asyncio.create_task(limiter.run(1, blocking, started, release, "first"))
        await asyncio.to_thread(started.wait)
        gone = asyncio.create_task(limiter.run(1, str, "gone"))  # its client disconnects
        waiting = asyncio.create_task(limiter.run(1, str, "next"))
        await asyncio.sleep(0.05)
        gone.cancel()
        await asyncio.sleep(0.05)
        assert limiter.queued == 1
        release.set()
        assert await first == "first"
        return await asyncio.wait_for(waiting, 5)

    assert asyncio.run(scenario()) == "next"
    assert (limiter.running, limiter.queued) == (0, 0)


def test_a_failing_render_frees_its_slot() -> None:
    limiter = RenderLimiter(1, queue_timeout_s=0, timeout_s=5)

    async def scenario() -> None:
        with pytest.raises(ZeroDivisionError):
            await limiter.run(1, divmod, 1, 0)
        assert await limiter.run(1, divmod, 7, 2) == (3, 1)

    asyncio.run(scenario())
    assert limiter.running == 0


def until_cancelled(started: threading.Event, ended: threading.Event) -> str:
    """A long render in small steps, checking its cancel token between them."""
    started.set()
    try:
        for _ in range(1000):
            checkpoint()
            time.sleep(0.01)
        return "not stopped"
    finally:
        ended.set()


def test_heavy_renders_never_hold_up_light_ones() -> None:
    limiter = RenderLimiter(1, queue_timeout_s=0.05, timeout_s=10, heavy_from=100,
                            heavy_slots=1, heavy_budget=1000)
    started, release = threading.Event(), threading.Event()

    async def scenario() -> list[str]:
        heavy = asyncio.create_task(limiter.run(1000, blocking, started, release, "heavy"))
        await asyncio.to_thread(started.wait)
        queued = asyncio.create_task(limiter.run(1000, str, "second heavy"))
        await asyncio.sleep(0.02)
        assert (limiter.heavy.running, limiter.heavy.queued) == (1, 1)
        light = [await limiter.run(100, str, f"tile {k}") for k in range(3)]
        release.set()
        return [*light, await heavy, await queued]

    assert asyncio.run(scenario()) == ["tile 0", "tile 1", "tile 2", "heavy", "second heavy"]
    assert (limiter.running, limiter.queued) == (0, 0)


def test_heavy_renders_are_admitted_by_their_cost_budget_in_arrival_order() -> None:
    limiter = RenderLimiter(1, queue_timeout_s=10, timeout_s=10, heavy_from=10,
                            heavy_slots=3, heavy_budget=1000)
    events = {name: (threading.Event(), threading.Event()) for name in "ABCD"}

    async def scenario() -> None:
        def start(name: str, cost: int) -> asyncio.Task[str]:
            return asyncio.create_task(limiter.run(cost, blocking, *events[name], name))

        a = start("A", 600)
        await asyncio.to_thread(events["A"][0].wait)
        b, c = start("B", 600), start("C", 300)  # B does not fit beside A; C waits its turn
        await asyncio.sleep(0.05)
        assert (limiter.heavy.running, limiter.heavy.queued, limiter.heavy.cost) == (1, 2, 600)
        events["A"][1].set()
        await asyncio.to_thread(events["B"][0].wait)
        await asyncio.to_thread(events["C"][0].wait)  # 600 + 300 fit in 1000 together
        assert (limiter.heavy.running, limiter.heavy.cost) == (2, 900)
        events["B"][1].set()
        events["C"][1].set()
        assert [await a, await b, await c] == ["A", "B", "C"]
        d = start("D", 5000)  # beyond the budget: runs alone, once the lane is empty
        await asyncio.to_thread(events["D"][0].wait)
        assert limiter.heavy.cost == 5000
        events["D"][1].set()
        assert await d == "D"

    asyncio.run(scenario())
    assert (limiter.heavy.running, limiter.heavy.cost) == (0, 0)


def test_a_render_past_its_time_limit_is_stopped_at_its_next_checkpoint() -> None:
    limiter = RenderLimiter(1, queue_timeout_s=0, timeout_s=0.1)
    started, ended = threading.Event(), threading.Event()

    async def scenario() -> None:
        with pytest.raises(ServiceUnavailable, match=r"took longer than 0\.1 s"):
            await limiter.run(1, until_cancelled, started, ended)
        await asyncio.to_thread(ended.wait, 2)  # not the 10 s it would run

    began = time.monotonic()
    asyncio.run(scenario())
    assert ended.is_set() and time.monotonic() - began < 2
    assert limiter.timed_out == 1 and _settles(limiter)


def test_a_render_whose_client_went_away_is_stopped() -> None:
    limiter = RenderLimiter(1, queue_timeout_s=10, timeout_s=0)
    started, ended = threading.Event(), threading.Event()

    async def scenario() -> None:
        task = asyncio.create_task(limiter.run(10**9, until_cancelled, started, ended))
        queued = asyncio.create_task(limiter.run(10**9, str, "dropped from the queue"))
        await asyncio.to_thread(started.wait)
        await asyncio.sleep(0.02)
        assert limiter.heavy.queued == 1
        task.cancel()  # what `render` does when the client disconnects
        queued.cancel()
        await asyncio.to_thread(ended.wait, 2)
        assert limiter.heavy.queued == 0

    asyncio.run(scenario())
    assert ended.is_set() and limiter.cancelled == 1 and _settles(limiter)


def _settles(limiter: RenderLimiter) -> bool:
    """Wait (a little) until the render threads have handed back their slots."""
    for _ in range(100):
        if limiter.running == 0:
            return True
        time.sleep(0.01)
    return False


def test_limits_are_settings() -> None:
    settings = load_settings(environ={"FEWSMAP_MAX_CONCURRENT_RENDERS": "3",
                                      "FEWSMAP_HEAVY_RENDER_BUDGET": "1000000",
                                      "FEWSMAP_MAX_CONCURRENT_HEAVY_RENDERS": "1",
                                      "FEWSMAP_RENDER_TIMEOUT_S": "0",
                                      "FEWSMAP_MAX_TIME_VALUES": "7",
                                      "FEWSMAP_CORS_ORIGINS": "https://a.example, https://b.x"})
    assert (settings.max_concurrent_renders, settings.render_timeout_s) == (3, 0.0)
    assert settings.max_time_values == 7 and settings.max_point_values == 20_000
    assert (settings.heavy_render_budget, settings.max_concurrent_heavy_renders) == (10**6, 1)
    # Every tile is light, even a 512² one with contours, and so is a plain full-size map.
    assert map_cost(512, 512, contours=True) <= settings.heavy_render_cost
    assert map_cost(1920, 1200) <= settings.heavy_render_cost
    assert map_cost(1920, 1200, contours=True) > settings.heavy_render_cost
    assert settings.cors_origins == ("https://a.example", "https://b.x")
    for name, value in [("MAX_CONCURRENT_RENDERS", "0"), ("MAX_POINT_VALUES", "-5"),
                        ("RENDER_QUEUE_TIMEOUT_S", "nan"), ("MAX_TIME_VALUES", "many"),
                        ("HEAVY_RENDER_BUDGET", "0"), ("HEAVY_RENDER_QUEUE_TIMEOUT_S", "-1")]:
        with pytest.raises(ConfigError, match=f"FEWSMAP_{name}"):
            load_settings(environ={f"FEWSMAP_{name}": value})


# --- the service: 503 under real concurrency ------------------------------------------------


@pytest.fixture(scope="module")
def one_slot(demo_stores: Path) -> Iterator[str]:
    # Tiles take the light slot too (by default they are drawn on the event loop).
    env = {"FEWSMAP_MAX_CONCURRENT_RENDERS": "1", "FEWSMAP_RENDER_QUEUE_TIMEOUT_S": "0",
           "FEWSMAP_INLINE_RENDER_COST": "0"}
    with live_server("--stores", str(demo_stores), env=env) as url:
        yield url


async def burst(url: str, requests: list[tuple[str, dict[str, str]]]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        return list(await asyncio.gather(*(client.get(path, params=params)
                                           for path, params in requests)))


def test_renders_beyond_the_slots_get_503_with_retry_after(one_slot: str) -> None:
    maps = [("/wms", BIG_MAP)] * 4
    tiles = [(f"/tiles/naefs-mean.QPF/3/{x}/3.png", {}) for x in (1, 2)]
    series = [("/api/timeseries", {"layer": "naefs-mean.QPF", "x": "-90", "y": "40"})]
    responses = asyncio.run(burst(one_slot, maps + tiles + series + maps))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 503} and 200 in statuses and 503 in statuses, statuses
    for (path, _), response in zip(maps + tiles + series + maps, responses, strict=True):
        if response.status_code != 503:
            continue
        assert int(response.headers["retry-after"]) >= 1
        if path == "/wms":
            report = etree.fromstring(response.content)
            exception = report.find(f"{OGC}ServiceException")
            assert exception.get("code") == "ServiceUnavailable" and "busy" in exception.text
        else:
            assert response.json()["error"]["code"] == "ServiceUnavailable"
    # The slot is free again: the next map is drawn.
    again = httpx.get(f"{one_slot}/wms", params={**BIG_MAP, "width": "256", "height": "256"},
                      timeout=60)
    assert again.status_code == 200 and again.headers["content-type"] == "image/png"


def test_a_render_past_its_time_limit_is_503_and_stops(demo_stores: Path) -> None:
    env = {"FEWSMAP_RENDER_TIMEOUT_S": "0.001"}
    with live_server("--stores", str(demo_stores), env=env) as url:
        response = httpx.get(f"{url}/wms", params=BIG_MAP, timeout=60)
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
        animation = httpx.get(f"{url}/wms", params=MAXIMAL_ANIMATION, timeout=60)
        answered = time.monotonic()
        renders = httpx.get(f"{url}/health", timeout=10).json()["renders"]
        while renders["heavy"]["running"] and time.monotonic() - answered < 20:
            time.sleep(0.05)
            renders = httpx.get(f"{url}/health", timeout=10).json()["renders"]
        stopped_s = time.monotonic() - answered
    assert response.status_code == 503 and int(response.headers["retry-after"]) >= 1
    assert b"took longer than 0.001 s" in response.content
    # The animation (seconds of drawing) stops at its next frame, not at its end.
    assert animation.status_code == 503 and b"took longer than 0.001 s" in animation.content
    assert renders["timed_out"] == 2 and stopped_s < 2, (renders, stopped_s)


# --- limits on what one request may ask for ------------------------------------------------


@pytest.fixture(scope="module")
def limited(demo_stores: Path) -> AppClient:
    settings = Settings(stores_dir=demo_stores, max_time_values=4, max_point_values=10,
                        max_image_pixels=10_000)
    return AppClient(create_app(settings))


def code_of(response: httpx.Response) -> str:
    if response.headers["content-type"].startswith("application/json"):
        return str(response.json()["error"]["code"])
    return str(etree.fromstring(response.content).find(f"{OGC}ServiceException").get("code"))


def steps(count: int) -> str:
    return ",".join(f"2022-08-09T{6 * (k + 1) % 24:02d}:00:00Z" if k < 3 else
                    f"2022-08-10T{6 * (k - 3) % 24:02d}:00:00Z" for k in range(count))


@pytest.mark.parametrize(("count", "status"), [(4, 200), (5, 400)])
def test_time_values_are_limited(limited: AppClient, count: int, status: int) -> None:
    response = limited.get("/wms", params={**BIG_MAP, "width": "50", "height": "50",
                                           "time": steps(count), "reducer": "sum"})
    assert response.status_code == status, response.text
    if status == 400:
        assert code_of(response) == "InvalidParameterValue"
        assert "TIME names 5 values; at most 4" in response.text


def test_a_range_counts_the_steps_it_names(limited: AppClient) -> None:
    response = limited.get("/wms", params={**BIG_MAP, "width": "50", "height": "50",
                                           "time": f"{NAEFS_RUN}/2022-08-12T00:00:00Z",
                                           "reducer": "max"})
    assert response.status_code == 400 and "TIME names 12 values" in response.text


POINT_INFO = {"request": "GetFeatureInfo", "layers": "naefs-mean.QPF",
              "query_layers": "naefs-mean.QPF", "crs": "CRS:84", "bbox": "-130,20,-60,55",
              "width": "10", "height": "10", "i": "5", "j": "5", "info_format": "text/plain"}
SERIES = {"layer": "naefs-mean.QPF", "x": "-90", "y": "40"}


@pytest.fixture
def unread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any read of a point fails its request (a 500): a refusal must come before it."""
    def read(*args: object, **kwargs: object) -> None:
        raise AssertionError("a point was read before the limit was checked")

    # where GetFeatureInfo and the time-series core find the cell, and where points are read
    for module, name in ((points, "find_cell"), (series, "find_cell"),
                         (change, "read_components")):
        monkeypatch.setattr(module, name, read)


def test_point_values_are_limited(limited: AppClient) -> None:
    few = limited.get("/wms", params={**POINT_INFO, "time": steps(3)})
    assert few.status_code == 200, few.text
    assert limited.get("/api/timeseries", params={**SERIES, "start": NAEFS_RUN,
                                                  "end": "2022-08-09T18:00:00Z"}).is_success


def test_time_series_values_are_refused_before_any_read(limited: AppClient,
                                                        unread: None) -> None:
    too_many = limited.get("/api/timeseries", params=SERIES)
    assert too_many.status_code == 400 and code_of(too_many) == "InvalidParameterValue"
    assert "reads 64 values; at most 10" in too_many.json()["error"]["message"]
    few = limited.get("/api/timeseries", params={**SERIES, "start": NAEFS_RUN,
                                                 "end": "2022-08-09T18:00:00Z"})
    assert few.status_code == 500  # the reader is really out of order


def test_feature_info_values_are_refused_before_any_read(demo_stores: Path,
                                                         unread: None) -> None:
    client = AppClient(create_app(Settings(stores_dir=demo_stores, max_point_values=10)))
    too_many = client.get("/wms", params={**POINT_INFO, "time": "all"})
    assert too_many.status_code == 400 and code_of(too_many) == "InvalidParameterValue"
    assert "reads 64 values; at most 10" in too_many.text
    assert client.get("/wms", params={**POINT_INFO, "time": steps(3)}).status_code == 500


def test_image_pixels_are_limited(limited: AppClient) -> None:
    response = limited.get("/wms", params={**BIG_MAP, "width": "101", "height": "100"})
    assert response.status_code == 400 and "exceeds the limit of 10000" in response.text
    tile = limited.get("/tiles/naefs-mean.QPF/3/2/3.png")
    assert tile.status_code == 400 and tile.json()["error"]["message"]  # 256² > 10,000


LEGEND = {"request": "GetLegendGraphic", "layers": "naefs-mean.QPF", "format": "image/png"}


def test_legend_pixels_are_limited_as_maps_are(limited: AppClient) -> None:
    drawn = limited.get("/wms", params={**LEGEND, "width": "100", "height": "100"})
    assert drawn.status_code == 200 and drawn.headers["content-type"] == "image/png"
    refused = limited.get("/wms", params={**LEGEND, "width": "101", "height": "100"})
    same_map = limited.get("/wms", params={**BIG_MAP, "width": "101", "height": "100"})
    assert refused.status_code == 400 and code_of(refused) == "InvalidParameterValue"
    assert refused.text == same_map.text  # "WIDTH×HEIGHT=101×100=10100 pixels exceeds …"


def test_legends_wait_for_a_render_slot(demo_stores: Path) -> None:
    app = create_app(Settings(stores_dir=demo_stores))
    limiter = RenderLimiter(1, queue_timeout_s=0.05, timeout_s=10)
    app.state.service.render_limiter = limiter
    started, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=asyncio.run, args=(
        limiter.run(1, blocking, started, release, "a map being drawn"),))
    holder.start()
    try:
        assert started.wait(10)
        busy = AppClient(app).get("/wms", params=LEGEND)
    finally:
        release.set()
        holder.join(10)
    assert busy.status_code == 503 and int(busy.headers["retry-after"]) >= 1
    assert code_of(busy) == "ServiceUnavailable"
    assert AppClient(app).get("/wms", params=LEGEND).status_code == 200


# --- heavy renders beside tiles, over HTTP --------------------------------------------------

# The costliest animation the default limits allow on the demo's longest run: 63 frames of
# 625 × 625 (24.6 million pixels of 25), with contours.
MAXIMAL_ANIMATION = {"request": "GetMap", "layers": "naefs-mean.QPF", "crs": "EPSG:3857",
                     "bbox": "-13914936,2875744,-7235766,7170156", "width": "625",
                     "height": "625", "format": "image/gif", "showContours": "true",
                     "time": "2022-08-09T12:00:00Z/2022-08-30T00:00:00Z"}
TILES = [f"/tiles/naefs-mean.QTF/{z}/{x}/{y}.png"
         for z, xs, ys in ((3, (1, 2), (2, 3)), (4, (3, 4, 5), (5, 6))) for x in xs for y in ys]


async def animations_beside_tiles(url: str) -> tuple[list[httpx.Response],
                                                      list[tuple[int, float]], list[Any]]:
    """Ask for 8 maximal animations at once while one client fetches tiles one after
    another, until every animation is answered; sample /health's renders meanwhile."""
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        asked = [asyncio.create_task(client.get("/wms", params=MAXIMAL_ANIMATION))
                 for _ in range(8)]
        tiles: list[tuple[int, float]] = []
        health = []
        while not all(task.done() for task in asked):
            for path in TILES:
                began = time.perf_counter()
                response = await client.get(path)
                tiles.append((response.status_code, time.perf_counter() - began))
            health.append((await client.get("/health")).json().get("renders"))
        return list(await asyncio.gather(*asked)), tiles, health


async def animation_given_up(url: str) -> tuple[float, dict[str, Any]]:
    """Ask for a maximal animation, go away once it renders; return how long the server
    took to stop rendering it, and its render counters then."""
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        async def renders() -> dict[str, Any]:
            answer: dict[str, Any] = (await client.get("/health")).json()["renders"]
            return answer

        asked = asyncio.create_task(client.get("/wms", params=MAXIMAL_ANIMATION))
        while (await renders())["heavy"]["running"] == 0:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        asked.cancel()  # httpx closes the connection: the server sees http.disconnect
        gone = time.monotonic()
        while (now := await renders())["heavy"]["running"] and time.monotonic() - gone < 10:
            await asyncio.sleep(0.05)
        assert not asked.done() or asked.cancelled()  # it was still rendering: not answered
        return time.monotonic() - gone, now


def test_tiles_keep_flowing_beside_maximal_animations_that_stop_when_given_up(
        demo_stores: Path) -> None:
    env = {"FEWSMAP_HEAVY_RENDER_QUEUE_TIMEOUT_S": "3"}  # keeps the test short
    with live_server("--stores", str(demo_stores), env=env) as url:
        answers, tiles, health = asyncio.run(animations_beside_tiles(url))
        stopped_s, renders = asyncio.run(animation_given_up(url))
    statuses = [status for status, _ in tiles]
    seconds = sorted(s for _, s in tiles)
    record_figure("tiles beside 8 maximal animations",
                  f"{len(tiles)} tiles, p50 {seconds[len(seconds) // 2] * 1000:.0f} ms, p95 "
                  f"{seconds[int(0.95 * len(seconds))] * 1000:.0f} ms, statuses "
                  f"{sorted(set(statuses))}; a given-up animation stopped {stopped_s:.2f} s "
                  "after its client left")
    assert len(tiles) >= 40 and set(statuses) == {200}, statuses
    assert seconds[int(0.95 * len(seconds))] < 1.0, seconds[-10:]
    # Each animation costs more than the heavy budget, so one ran at a time: it was drawn;
    # the others waited their queue time and were told to come back.
    assert sorted(a.status_code for a in answers) == [200] + [503] * 7, answers
    assert all(a.headers["retry-after"] == "3" for a in answers if a.status_code == 503)
    assert max(h["heavy"]["running"] for h in health) == 1, health
    # An animation whose client went away stops between two frames (drawing it takes
    # seconds), and says so in /health.
    assert renders["heavy"] == {"running": 0, "queued": 0, "cost": 0}, renders
    assert renders["cancelled"] == 1 and stopped_s < 2, (renders, stopped_s)


def test_a_server_that_never_reports_a_disconnect_still_gets_its_render(
        demo_stores: Path) -> None:
    """ASGI 2.4 servers may answer ``receive`` at once after the body, again and again:
    watching for a disconnect must not spin the event loop (nor cancel the render)."""
    app = create_app(Settings(stores_dir=demo_stores))
    lifespan = Lifespan(app)  # as a server starts it; its state goes into the scope
    path = "/tiles/naefs-mean.QPF/2/1/1.png"
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"},
             "state": dict(lifespan.state),
             "http_version": "1.1", "method": "GET", "scheme": "http", "path": path,
             "raw_path": path.encode(), "root_path": "", "query_string": b"",
             "headers": [(b"host", b"fewsmap.test")], "server": ("fewsmap.test", 80),
             "client": ("127.0.0.1", 1234)}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    # In a thread of its own: a spinning event loop would never reach a timeout of its own.
    serving = threading.Thread(target=asyncio.run, args=(app(scope, receive, send),),
                               daemon=True)
    serving.start()
    serving.join(30)
    lifespan.close()
    assert not serving.is_alive(), "the request never ended"
    assert sent[0]["status"] == 200 and sent[1]["body"].startswith(b"\x89PNG")
