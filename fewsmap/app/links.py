"""The address links in answers start with (configured, or else the request's own), and
the token a link carries when the request authenticated in its address."""

from __future__ import annotations

import re
from urllib.parse import quote

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import Message, Send

# A link ends where a JSON string or an XML attribute or text ends: links are built with
# quote/urlencode, so they hold no quote, space, '<', '>' or backslash of their own.
_LINK_TAIL = r"[^\s\"'<>\\]*"


def public_base(request: Request) -> str:
    """The service's public address without a final '/': the ``public_url`` setting when
    set, so a forged Host header cannot steer links elsewhere; else the request's."""
    configured: str = request.state.service.settings.public_url  # lifespan state
    return configured or str(request.base_url).rstrip("/")


def public_url(request: Request) -> str:
    """This request's address without its query, at the public address: a WMS's
    OnlineResource (/wms or /FewsWebServices/wms, behind any proxy prefix)."""
    own_base = str(request.base_url).rstrip("/")
    own = str(request.url.replace(query="", fragment=""))
    return public_base(request) + own[len(own_base):]


def carrying_api_key(send: Send, base: str, api_key: str) -> Send:
    """``send`` with ``api_key`` added to every link to ``base`` in JSON and XML answers.

    A client that authenticates with ``?api_key=`` (a map library that cannot send headers)
    must reach what a document links to (TileJSON tiles and legend, WMTS and WMS resources
    and legends, EDR links) with the same key (issue #13). Answers sent in one piece are
    rewritten; a streamed answer (data, not a document of links) passes untouched.
    """
    held: list[Message] = []
    xml = False

    async def send_with_key(message: Message) -> None:
        nonlocal xml
        if message["type"] == "http.response.start":
            headers = Headers(raw=message["headers"])
            media_type = headers.get("content-type", "")
            if ("json" in media_type or "xml" in media_type) and \
                    "content-encoding" not in headers:
                xml = "xml" in media_type
                held.append(message)
                return
        elif held and message["type"] == "http.response.body":
            start, body = held.pop(), message.get("body", b"")
            if base.encode() in body and not message.get("more_body", False):
                body = links_with_api_key(body.decode(), base, api_key, xml).encode()
                MutableHeaders(scope=start)["content-length"] = str(len(body))
                message = {**message, "body": body}
            await send(start)
        await send(message)

    return send_with_key


def links_with_api_key(text: str, base: str, api_key: str, xml: bool) -> str:
    """``text`` with ``api_key=<api_key>`` in the query of every link to ``base``.

    A link that names a key already keeps it; a path prefix (ending in ``/``, no query) is
    left as is, as clients append paths to it (the WMTS RESTful base; its resource
    templates carry the key). An endpoint ending in ``?`` or ``&`` (WMS/WMTS KVP online
    resources, to which clients append parameters) gets ``api_key=…&``.
    """
    param = f"api_key={quote(api_key, safe='')}"
    separator = "&amp;" if xml else "&"

    def with_key(match: re.Match[str]) -> str:
        link = match.group(0)
        rest = link[len(base):]
        if rest[:1] not in ("", "/", "?"):  # another host that starts alike
            return link
        path, has_query, query = link.partition("?")
        if re.search(r"(?:^|[&;])api_key=", query, re.IGNORECASE):
            return link
        if not has_query:
            return link if path.endswith("/") else f"{link}?{param}"
        if not query or link.endswith(("&", separator)):
            return f"{link}{param}{separator}"
        return f"{link}{separator}{param}"

    return re.sub(re.escape(base) + _LINK_TAIL, with_key, text)
