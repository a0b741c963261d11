"""What every answer to a hostile request must be, whatever the endpoint."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl

from lxml import etree

from tests.fuzz.asgi import RawRequest, RawResponse
from tests.fuzz.strategies import Family

# Never in any answer: a traceback, the password file, the project's own source.
LEAKS = (b"Traceback (most recent call last)", b"root:x:0:0:", b"[build-system]",
         b"def create_app(", b"PRIVATE KEY")
# A parser that never fetches or expands anything (checking a report must not be an XXE).
SAFE_XML = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           huge_tree=False)


class Figures:
    """Requests sent and their status codes, printed at the end of the session."""

    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.by_family: Counter[str] = Counter()

    def count(self, family: str, status: int) -> None:
        self.statuses[status] += 1
        self.by_family[family] += 1

    @property
    def sent(self) -> int:
        return sum(self.statuses.values())

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def summary(self, title: str) -> str:
        histogram = ", ".join(f"{status}: {n}" for status, n in sorted(self.statuses.items()))
        families = ", ".join(f"{name}: {n}" for name, n in sorted(self.by_family.items()))
        return (f"{title}: {self.sent} requests, {self.server_errors} answered 5xx "
                f"(statuses {histogram}; by endpoint family {families})")


def problems(request: RawRequest, response: RawResponse, family: Family,
             secrets: tuple[bytes, ...]) -> list[str]:
    """Everything wrong with ``response`` to ``request``; empty when it is a proper answer."""
    found = []
    if not 200 <= response.status < 600:
        return [f"no HTTP answer (status {response.status})"]
    if response.status >= 500 and not deliberate(request, response):
        found.append(f"server error {response.status}")
    for leak in (*LEAKS, *secrets):
        if leak in response.body:
            found.append(f"the answer contains {leak[:40]!r}")
    if family.name == "unknown" and response.status >= 400 and response.status != 404 and \
            not preflight(request):
        found.append(f"{response.status} for a path no route answers (404 expected)")
    if response.status == 416 and not response.headers.get("content-range", "").startswith(
            "bytes */"):
        found.append("416 without Content-Range: bytes */<size>")
    # A HEAD answer has no body to check; the viewer page explains a missing build in HTML.
    if request.method == "HEAD" or response.status < 400 or vendor_page(request, response):
        return found + body_problems(response)
    return found + error_problems(request, response, family)


def deliberate(request: RawRequest, response: RawResponse) -> bool:
    """The 503s a healthy service gives on purpose: the render limiter's (with Retry-After)
    and the viewer page's when its vendored browser files were never built."""
    if response.status != 503:
        return False
    return "retry-after" in response.headers or vendor_page(request, response)


def vendor_page(request: RawRequest, response: RawResponse) -> bool:
    return response.status == 503 and request.path == b"/" and b"make vendor" in response.body


def preflight(request: RawRequest) -> bool:
    """A CORS preflight, answered by the CORS layer before any route."""
    return request.method == "OPTIONS" and any(
        name == b"access-control-request-method" for name, _ in request.headers)


def asked_for_json(request: RawRequest) -> bool:
    """Whether a WMS request asked for JSON (FORMAT, INFO_FORMAT or EXCEPTIONS), so that its
    errors may be JSON; the query is read as Starlette reads it."""
    query = parse_qsl(request.query.decode("latin-1"), keep_blank_values=True)
    return any(name.lower() in ("format", "info_format", "exceptions") and "json" in
               value.lower() for name, value in query)


def error_problems(request: RawRequest, response: RawResponse, family: Family) -> list[str]:
    """A refusal must carry a well-formed error in the endpoint's own format."""
    media_type = response.media_type
    json_allowed = family.errors == "wms" and asked_for_json(request)
    if family.errors in ("json", "edr") or (json_allowed and media_type == "application/json"):
        try:
            body = json.loads(response.body)
        except ValueError:
            return [f"{response.status} {media_type!r} is not JSON: {response.body[:200]!r}"]
        return [] if json_error(body, family.errors == "edr") else \
            [f"{response.status} JSON without an error object: {response.body[:200]!r}"]
    try:
        root = etree.fromstring(response.body, SAFE_XML)
    except etree.XMLSyntaxError as exc:
        return [f"{response.status} {media_type!r} is not XML ({exc}): {response.body[:200]!r}"]
    wanted = ("ServiceExceptionReport",) if family.errors == "wms" else ("ExceptionReport",)
    if etree.QName(root).localname not in wanted or not "".join(root.itertext()).strip():
        return [f"{response.status}: {root.tag} is not an {wanted[0]} with a message"]
    return []


def json_error(body: Any, edr: bool) -> bool:
    """``{"error": {"code", "message"}}``, or for EDR (OGC API) also ``{"code", "description"}``."""
    if not isinstance(body, dict):
        return False
    error = body.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str) and error["message"]:
        return "code" in error
    return edr and isinstance(body.get("description"), str) and bool(body.get("code"))


def body_problems(response: RawResponse) -> list[str]:
    """A successful JSON or XML answer must parse (strict JSON: no NaN)."""
    media_type = response.media_type
    if not response.body or response.status == 206:  # a byte range of a document
        return []
    if media_type.endswith("json"):
        try:
            json.loads(response.body, parse_constant=_refuse)
        except ValueError as exc:
            return [f"{response.status} {media_type} does not parse: {exc}"]
    elif media_type.endswith("xml") and not media_type.startswith("image/"):
        try:
            etree.fromstring(response.body, SAFE_XML)
        except etree.XMLSyntaxError as exc:
            return [f"{response.status} {media_type} does not parse: {exc}"]
    return []


def _refuse(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")
