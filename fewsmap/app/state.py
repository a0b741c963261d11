"""What every handler needs, handed over one way: the lifespan's state.

`create_app` builds one `Service` for the worker; the app's lifespan yields it as
``{"service": service}``, and the ASGI server puts that into every request's scope
(Starlette's lifespan state), so a handler reads ``service(request)`` and nothing else:
no closures over the settings or catalog, no ``app.state``. Process set-up before the
server runs (``fewsmap/app/serve.py``: warm-up of a worker group, memory return) reads
the same object from ``app.state.service``.
"""

from __future__ import annotations

from starlette.requests import Request

from fewsmap.app.documents import DocumentCache
from fewsmap.app.health import CatalogCheck
from fewsmap.app.limits import RenderLimiter
from fewsmap.app.metrics import Metrics
from fewsmap.app.security import Security
from fewsmap.app.sld_urls import SldDocuments
from fewsmap.app.streaming import SendBudget
from fewsmap.app.warmup import Readiness, warm_up
from fewsmap.catalog import Catalog
from fewsmap.settings import Settings


class Service:
    """One worker's service: its settings, catalog and the shared parts of its answers."""

    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog
        self.security = Security.from_config(settings.config)
        self.documents = DocumentCache()  # capabilities, until a run lands or the minute turns
        self.check = CatalogCheck(catalog)
        self.sld_documents = SldDocuments(settings.sld_allowed_urls)  # SLD=<url>, when allowed
        # Warming up after start (lifespan) or, one worker of several, before listening.
        self.readiness = Readiness(lambda: warm_up(catalog, settings.max_image_pixels))
        self.render_limiter = RenderLimiter.from_settings(settings)  # maps, tiles, points
        self.send_budget = SendBudget.from_settings(settings)  # large answers being sent
        self.metrics = Metrics(self.public_catalog, self.readiness)
        self.metrics.watch(self.render_limiter, self.send_budget)

    async def visible_catalog(self) -> Catalog:
        """The refreshed catalog as this request's token sees it (all of it without tokens)."""
        await self.check.refresh()
        return self.security.view(self.catalog) if self.security else self.catalog

    async def public_catalog(self) -> Catalog:
        """The refreshed catalog as a client without a token sees it (for /metrics)."""
        await self.check.refresh()
        return self.security.view_as(self.catalog, None) if self.security else self.catalog


def service(request: Request) -> Service:
    """The worker's service, from the lifespan state in ``request``'s scope."""
    found: Service = request.state.service
    return found


async def visible_catalog(request: Request) -> Catalog:
    """The catalog ``request`` may see, refreshed when due."""
    return await service(request).visible_catalog()
