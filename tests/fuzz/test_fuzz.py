"""Hostile requests at every endpoint, in process: never a 5xx, always a proper error.

``FEWSMAP_FUZZ_REQUESTS=100000 .venv/bin/pytest tests/fuzz`` is the long run (default 5,000
here and a twentieth of that over real HTTP in test_fuzz_http.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from fewsmap.app.server import create_app
from fewsmap.settings import Settings
from tests.asgi_client import AppClient
from tests.fuzz.asgi import RawRequest, send_request
from tests.fuzz.checks import problems
from tests.fuzz.conftest import budget, figures
from tests.fuzz.strategies import FAMILIES, ROUTES, Names, requests, routes


def route_templates(app: Starlette) -> list[str]:
    """Every path template the app routes (a Mount by its prefix)."""
    return [route.path for route in app.routes if isinstance(route, Route | Mount)]


@pytest.fixture(scope="module")
def app(fuzz_settings: Settings) -> Starlette:
    return create_app(fuzz_settings)


@pytest.fixture(scope="module")
def state(app: Starlette) -> Iterator[dict[str, Any]]:
    """The app's lifespan state, its lifespan run as a server runs it, once warm (as
    tests/live_server.py waits: /health/ready answers 503 while warming up)."""
    client = AppClient(app)  # holds the lifespan until the module's tests end
    yield client.state()


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def test_every_route_has_a_fuzz_strategy(app: Starlette) -> None:
    templates = route_templates(app)
    missing = [t for t in templates if t not in ROUTES]
    assert not missing, (f"routes without a fuzz strategy: {missing}; give each a family in "
                         "tests/fuzz/strategies.py ROUTES")
    assert not set(ROUTES) - set(templates), "ROUTES lists routes the app no longer has"


def test_hostile_requests_in_process(app: Starlette, state: dict[str, Any],
                                     loop: asyncio.AbstractEventLoop,
                                     fuzz_names: Names, secret: bytes) -> None:
    counts = figures("in process (ASGI)")
    chosen = routes(route_templates(app))

    @settings(max_examples=budget(), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        template = data.draw(chosen, label="route")
        request: RawRequest = data.draw(requests(template, fuzz_names), label="request")
        response = loop.run_until_complete(send_request(app, request, state))
        counts.count(FAMILIES[template].name, response.status)
        found = problems(request, response, FAMILIES[template], (secret,))
        assert not found, f"{request.method} {request.target[:300]!r}: {found}"

    fuzz()
    assert counts.sent >= budget()
    health = loop.run_until_complete(send_request(app, RawRequest("GET", b"/health"), state))
    assert health.status == 200 and b'"status":"ok"' in health.body.replace(b" ", b"")
