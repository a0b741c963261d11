"""Probes for orchestrators: ``/health/live`` and ``/health/ready`` (``/health`` says more).

- ``/health/live`` answers 200 whenever the worker's event loop runs: a liveness probe that
  fails only when the process must be restarted.
- ``/health/ready`` answers 200 once every worker has warmed up (`Readiness`) and the last
  check of the stores succeeded (`CatalogCheck`), else 503 with Retry-After and the reasons
  in JSON: a readiness probe that keeps traffic away without restarting anything.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fewsmap.catalog import Catalog

if TYPE_CHECKING:  # state.py builds the service from this module's parts
    from fewsmap.app.state import Service

log = logging.getLogger(__name__)


class CatalogCheck:
    """Check a catalog's stores when due, in a thread; remember whether the check failed.

    A failed check leaves the catalog serving its last snapshot (as a store that cannot be
    read keeps its last readable state) and the service not ready until a check succeeds.
    """

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.failure: str | None = None  # what the last check raised, by type

    async def refresh(self) -> Catalog:
        """Pick up new runs and stores if ``reload_interval_s`` has passed; the catalog."""
        if self.catalog.refresh_due:  # the stat calls go to a thread; most requests skip them
            try:
                await run_in_threadpool(self.catalog.refresh)
            except Exception as exc:
                log.exception("the stores cannot be read; serving the last catalog")
                self.failure = type(exc).__name__
            else:
                self.failure = None
        return self.catalog


def health_routes() -> list[Route]:
    """``/health/live`` and ``/health/ready``."""

    async def live(request: Request) -> Response:
        return JSONResponse({"status": "alive"}, headers={"Cache-Control": "no-store"})

    async def ready(request: Request) -> Response:
        own: Service = request.state.service  # the lifespan state (fewsmap/app/state.py)
        readiness, check = own.readiness, own.check
        await check.refresh()
        reasons = []
        if not readiness.ready:
            workers = readiness.workers()
            reasons.append(f"warming up: {workers['warm']} of {workers['count']} workers "
                           "are warm")
        if check.failure:
            reasons.append(f"the catalog cannot be refreshed from the stores ({check.failure}); "
                           "the server log has the details")
        headers = {"Cache-Control": "no-store", **({"Retry-After": "1"} if reasons else {})}
        return JSONResponse({"status": "not ready" if reasons else "ready",
                             "ready": not reasons, "reasons": reasons},
                            status_code=503 if reasons else 200, headers=headers)

    return [Route("/health/live", live, methods=["GET", "HEAD"]),
            Route("/health/ready", ready, methods=["GET", "HEAD"])]
