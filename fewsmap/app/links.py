"""The address links in answers start with: configured, or else the request's own."""

from __future__ import annotations

from starlette.requests import Request


def public_base(request: Request) -> str:
    """The service's public address without a final '/': the ``public_url`` setting when
    set, so a forged Host header cannot steer links elsewhere; else the request's."""
    configured: str = getattr(request.app.state, "public_url", "")
    return configured or str(request.base_url).rstrip("/")


def public_url(request: Request) -> str:
    """This request's address without its query, at the public address: a WMS's
    OnlineResource (/wms or /FewsWebServices/wms, behind any proxy prefix)."""
    own_base = str(request.base_url).rstrip("/")
    own = str(request.url.replace(query="", fragment=""))
    return public_base(request) + own[len(own_base):]
