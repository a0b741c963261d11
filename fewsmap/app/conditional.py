"""Conditional GET and HEAD (RFC 9110 §13): one reading of If-None-Match, If-Modified-Since
and If-Range for every answer with a validator (maps, tiles, animations, documents, store
files, the viewer).

Issue #17: three answers matched If-None-Match by substring, so ``"ab"`` matched a client
holding ``"abc"``, and a tag inside any longer token matched too; the store files and the
viewer each had their own reading (the viewer's looked at If-Modified-Since even when
If-None-Match had decided). Here a field is parsed into its entity tags (commas inside quotes
belong to the tag), compared by the weak comparison If-None-Match asks for (§13.1.2) or the
strong one If-Range asks for (§13.1.5).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

from starlette.datastructures import Headers
from starlette.responses import Response

# RFC 9110 §8.8.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, etagc = %x21 / %x23-7E / obs-text
_ENTITY_TAG = re.compile(r'\s*(W/)?("[\x21\x23-\x7e\x80-\xff]*")\s*(?:,|$)')
# RFC 9110 §15.4.5: what a 304 carries of the 200 it stands for (and Last-Modified, which
# guides cache updates, and our own headers saying which run and times the answer shows).
_NOT_REPRESENTATION = ("content-type", "content-length", "content-encoding",
                       "content-disposition", "content-range", "content-language")


def content_etag(body: bytes) -> str:
    """A strong entity tag of an answer's bytes (the same bytes, the same tag)."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def entity_tags(field: str) -> list[str] | None:
    """The entity tags of an If-None-Match or If-Match field, each as sent (``W/`` kept);
    None for ``*`` (any current representation).

    A member that is not an entity tag is skipped (RFC 9110 §5.6.1: empty list elements
    are ignored; an unquoted token never matches a quoted tag).
    """
    if field.strip() == "*":
        return None
    tags: list[str] = []
    position = 0
    while position < len(field):
        match = _ENTITY_TAG.match(field, position)
        if match:
            tags.append((match[1] or "") + match[2])
            position = match.end()
        else:  # skip a malformed member up to the next comma outside quotes
            position = _next_member(field, position)
    return tags


def _next_member(field: str, position: int) -> int:
    """The position after the comma ending the member at ``position`` (quotes respected)."""
    quoted = False
    for index in range(position, len(field)):
        if field[index] == '"':
            quoted = not quoted
        elif field[index] == "," and not quoted:
            return index + 1
    return len(field)


def weak_match(a: str, b: str) -> bool:
    """RFC 9110 §8.8.3.2 weak comparison: the opaque tags are equal, weak or not."""
    return a.removeprefix("W/") == b.removeprefix("W/")


def strong_match(a: str, b: str) -> bool:
    """RFC 9110 §8.8.3.2 strong comparison: both strong and equal."""
    return not a.startswith("W/") and a == b


def is_fresh(request_headers: Headers, etag: str | None,
             last_modified: str | None = None, method: str = "GET") -> bool:
    """Whether a GET or HEAD may be answered 304: the client holds the current answer.

    RFC 9110 §13.1.2: If-None-Match decides when present (every field line counts, ``*``
    matches any answer). §13.1.3: otherwise If-Modified-Since, when a valid date not before
    ``last_modified`` (HTTP dates, whole seconds). Other methods are never fresh: only the
    safe ones get a 304 (§13.1.2).
    """
    if method not in ("GET", "HEAD"):
        return False
    fields = request_headers.getlist("if-none-match")
    if fields:
        tags = entity_tags(", ".join(fields))
        if tags is None:
            return etag is not None
        return etag is not None and any(weak_match(tag, etag) for tag in tags)
    since = request_headers.getlist("if-modified-since")
    if len(since) != 1 or last_modified is None:
        return False
    try:
        return parsedate_to_datetime(last_modified) <= parsedate_to_datetime(since[0])
    except (TypeError, ValueError):  # an invalid date is ignored (RFC 9110 §13.1.3)
        return False


def range_applies(if_range: str | None, etag: str | None, last_modified: str | None) -> bool:
    """Whether a Range is honoured under If-Range (RFC 9110 §13.1.5): absent, or naming
    the current answer (an entity tag by strong comparison, or exactly its Last-Modified)."""
    if if_range is None:
        return True
    if_range = if_range.strip()
    if if_range.startswith(('"', "W/")):
        return etag is not None and strong_match(if_range, etag)
    return last_modified is not None and if_range == last_modified


def not_modified(request_headers: Headers, headers: Mapping[str, str],
                 method: str = "GET") -> Response | None:
    """A 304 standing for the answer with ``headers`` when the client holds it, else None.

    The 304 carries the answer's ETag, Cache-Control, Vary, Last-Modified and own headers, not
    its representation metadata (RFC 9110 §15.4.5); middleware adds the rest (Vary: Origin,
    Authorization) to both alike.
    """
    lower = {name.lower(): value for name, value in headers.items()}
    if not is_fresh(request_headers, lower.get("etag"), lower.get("last-modified"), method):
        return None
    kept = {name: value for name, value in headers.items()
            if name.lower() not in _NOT_REPRESENTATION}
    return Response(status_code=304, headers=kept)
