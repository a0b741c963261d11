"""SLD=<url>: fetch the SLD documents the configuration allows, and nothing else.

A WMS client may name its style by URL (WMS SLD profile). Fetching whatever a client names
would let any client make the service reach any host (SSRF), so only the URLs listed in
``[service] sld_allowed_urls`` are fetched, exactly as listed, without following redirects,
at most `MAX_SLD_BYTES` of them, and kept for `CACHE_S` seconds. The document is then read
as if it came as SLD_BODY (fewsmap/ogc/sld.py).
"""

from __future__ import annotations

import time

import httpx

from fewsmap.catalog.sld import MAX_SLD_BYTES
from fewsmap.errors import InvalidParameterValue
from fewsmap.params import Params

CACHE_S = 60.0
FETCH_TIMEOUT_S = 5.0
# Fetched documents by URL, shared by every route of the process: (when fetched, text).
_FETCHED: dict[str, tuple[float, str]] = {}


class SldDocuments:
    """The SLD documents of the allowed URLs, fetched when first named and kept a while."""

    def __init__(self, allowed: tuple[str, ...]) -> None:
        self.allowed = frozenset(allowed)

    async def resolve(self, params: Params) -> Params:
        """Replace ``SLD=<url>`` in ``params`` by the document as ``SLD_BODY``.

        Raises
        ------
        InvalidParameterValue
            If SLD by URL is not enabled, the URL is not allowed, both SLD and SLD_BODY are
            given, or the document cannot be fetched.
        """
        url = (params.get("sld") or "").strip()
        if not url:
            return params
        if params.get("sld_body"):
            raise InvalidParameterValue("give SLD (a URL) or SLD_BODY (a document), not both")
        body = await self.document(url)
        return Params([*((n, v) for n, v in params.items() if n != "sld"),
                       ("sld_body", body)])

    async def document(self, url: str) -> str:
        """The document at an allowed ``url`` (from the cache when fetched lately).

        Raises
        ------
        InvalidParameterValue
            If the URL is not allowed or its document cannot be fetched.
        """
        if not self.allowed:
            raise InvalidParameterValue(
                "SLD by URL is not enabled on this service ([service] sld_allowed_urls is "
                "empty); send the document as SLD_BODY")
        if url not in self.allowed:
            raise InvalidParameterValue(
                f"SLD={url[:200]!r} is not one of the SLD URLs this service may fetch "
                "([service] sld_allowed_urls); send the document as SLD_BODY")
        cached = _FETCHED.get(url)
        if cached and time.monotonic() - cached[0] < CACHE_S:
            return cached[1]
        body = await _fetch(url)
        _FETCHED[url] = (time.monotonic(), body)
        return body


async def _fetch(url: str) -> str:
    """GET ``url``: its text, refused beyond `MAX_SLD_BYTES` or on any failure."""
    try:
        async with httpx.AsyncClient(timeout=FETCH_TIMEOUT_S, follow_redirects=False) as client, \
                client.stream("GET", url) as response:
            if response.status_code != 200:
                raise InvalidParameterValue(
                    f"SLD={url[:200]!r}: its server answered HTTP {response.status_code}")
            content = b""
            async for chunk in response.aiter_bytes():
                content += chunk
                if len(content) > MAX_SLD_BYTES:
                    raise InvalidParameterValue(
                        f"SLD={url[:200]!r}: the document is over {MAX_SLD_BYTES} bytes")
            return content.decode(response.encoding or "utf-8", errors="replace")
    except httpx.HTTPError as exc:
        raise InvalidParameterValue(
            f"SLD={url[:200]!r} cannot be fetched: {type(exc).__name__}") from exc
