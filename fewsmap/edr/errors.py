"""Errors of the EDR API beyond the OGC WMS codes: a missing resource and too large an answer."""

from __future__ import annotations

from fewsmap.errors import FewsmapError


class NotFound(FewsmapError):
    """A collection, instance or path of the EDR API that does not exist (HTTP 404)."""

    ogc_code = "NotFound"
    http_status = 404


class ResponseTooLarge(FewsmapError):
    """A query would answer more values than ``max_edr_values`` allows (HTTP 413).

    OGC API - EDR 1.1 §8.2.1 (Requirement A.9 / Permission): a server may refuse a query
    whose response would be too large with 413 Payload Too Large.
    """

    ogc_code = "ResponseTooLarge"
    http_status = 413
