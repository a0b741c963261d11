"""One error hierarchy for fewsmap, and one table of how every front answers each error.

Domain code raises a `FewsmapError` subclass named by its code; the fronts never choose a
status or a code themselves: WMS 1.3.0 reports carry the code (Annex E, and ours beyond it),
WMS 1.1.1 reports its older name, WMTS (OWS Common 1.1) an OWS code with the parameter at
fault as locator, the JSON API and EDR the code, each with the table's HTTP status.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorAnswer:
    """How the fronts answer one error code."""

    status: int  # HTTP status of every front
    ows: str | None = None  # OWS Common 1.1 exceptionCode (WMTS 1.0.0 §8.3), if not the code
    locator: str | None = None  # the OWS locator: the parameter at fault, when known
    wms_1_1_1: str | None = None  # the code's name in WMS 1.1.1, where it differs


# WMS's own codes become OWS codes in WMTS reports, with the parameter as locator; fewsmap's
# own codes (storage, limits, tokens) are kept, as OWS Common allows a service's own codes.
# code                        HTTP   OWS code (WMTS)          locator    WMS 1.1.1
ERRORS: dict[str, ErrorAnswer] = {
    # WMS 1.3.0 Annex E, and OWS Common's own codes
    "NoApplicableCode": ErrorAnswer(400),
    "InvalidParameterValue": ErrorAnswer(400),
    "MissingParameterValue": ErrorAnswer(400),
    "OperationNotSupported": ErrorAnswer(400),
    "LayerNotDefined": ErrorAnswer(400, "InvalidParameterValue", "layer"),
    "StyleNotDefined": ErrorAnswer(400, "InvalidParameterValue", "style"),
    "InvalidCRS": ErrorAnswer(400, "InvalidParameterValue", "crs", wms_1_1_1="InvalidSRS"),
    "InvalidFormat": ErrorAnswer(400, "InvalidParameterValue", "format"),
    "MissingDimensionValue": ErrorAnswer(400, "MissingParameterValue"),
    "InvalidDimensionValue": ErrorAnswer(400, "InvalidParameterValue"),
    "LayerNotQueryable": ErrorAnswer(400, "InvalidParameterValue", "query_layers"),
    "InvalidPoint": ErrorAnswer(400, "PointIJOutOfRange"),
    # WMTS 1.0.0 Table 28 and its GetFeatureInfo exceptions
    "TileOutOfRange": ErrorAnswer(400),
    "PointIJOutOfRange": ErrorAnswer(400),
    # fewsmap's own
    "ConfigError": ErrorAnswer(400),
    "IngestError": ErrorAnswer(400),
    "Unauthorized": ErrorAnswer(401),
    "OutsideStore": ErrorAnswer(403),
    "NotFound": ErrorAnswer(404),
    "MethodNotAllowed": ErrorAnswer(405),
    "ResponseTooLarge": ErrorAnswer(413),  # OGC API - EDR 1.1 §8.2.1
    "RangeNotSatisfiable": ErrorAnswer(416),
    "RenderCancelled": ErrorAnswer(499),  # nginx's "client closed request"
    "InternalError": ErrorAnswer(500),
    "StorageError": ErrorAnswer(500),
    "ServiceUnavailable": ErrorAnswer(503),
    "StorageUnavailable": ErrorAnswer(503),
}
UNLISTED = ErrorAnswer(400)  # an HTTP refusal's code (HTTPError) or a service's (client)


class FewsmapError(Exception):
    """Base of every error fewsmap raises on purpose.

    ``ogc_code`` is the code every answer carries (WMS 1.3.0 Annex E where one applies): a
    string, never None (issue #13), so a JSON error always has its ``code``; OWS Common's
    ``NoApplicableCode`` names an error no more specific code fits.
    """

    ogc_code: str = "NoApplicableCode"
    http_status: int = 400

    def __init_subclass__(cls, **kwargs: object) -> None:
        """Give each error kind the HTTP status of its code in the table."""
        super().__init_subclass__(**kwargs)
        cls.http_status = ERRORS.get(cls.ogc_code, UNLISTED).status

    @property
    def answer(self) -> ErrorAnswer:
        """How the fronts answer this error's code."""
        return ERRORS.get(self.ogc_code, UNLISTED)

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers the answer must carry (Retry-After, WWW-Authenticate)."""
        return {}


class InternalError(FewsmapError):
    """A fault of ours; the client gets a report without details, the log gets the cause."""

    ogc_code = "InternalError"


class IngestError(FewsmapError):
    """An input file cannot become part of a store; nothing was written."""

    ogc_code = "IngestError"


class StoreError(FewsmapError):
    """A store is missing, unreadable or not a fewsmap forecast cube, or a chunk of it is
    damaged."""

    ogc_code = "StorageError"


class StorageUnavailable(StoreError):
    """Object storage did not answer (or refused) a read: the data is there, the way to it
    is not, so a client may retry."""

    ogc_code = "StorageUnavailable"


class ConfigError(FewsmapError):
    """The configuration file or a ``FEWSMAP_*`` variable is invalid."""

    ogc_code = "ConfigError"


class LayerNotDefined(FewsmapError):
    """A request names a layer the catalog does not have."""

    ogc_code = "LayerNotDefined"


class InvalidParameterValue(FewsmapError):
    """A request parameter has a value that cannot be used."""

    ogc_code = "InvalidParameterValue"


class OperationNotSupported(FewsmapError):
    """A request asks for an operation this service does not offer."""

    ogc_code = "OperationNotSupported"


class MissingParameterValue(FewsmapError):
    """A required request parameter is absent."""

    ogc_code = "MissingParameterValue"


class StyleNotDefined(FewsmapError):
    """A request names a style the layer does not offer."""

    ogc_code = "StyleNotDefined"


class InvalidCRS(FewsmapError):
    """A request names a CRS the layer is not offered in (1.1.1 calls it InvalidSRS)."""

    ogc_code = "InvalidCRS"


class InvalidFormat(FewsmapError):
    """A request asks for an output format that is not offered."""

    ogc_code = "InvalidFormat"


class MissingDimensionValue(FewsmapError):
    """A dimension without a default was not given a value."""

    ogc_code = "MissingDimensionValue"


class InvalidDimensionValue(FewsmapError):
    """A dimension value is not available for the layer."""

    ogc_code = "InvalidDimensionValue"


class LayerNotQueryable(FewsmapError):
    """GetFeatureInfo names a layer that is not declared queryable (a layer group)."""

    ogc_code = "LayerNotQueryable"


class InvalidPoint(FewsmapError):
    """A queried point is unusable: I/J outside the image, or a point outside the grid."""

    ogc_code = "InvalidPoint"


class ServiceUnavailable(FewsmapError):
    """The service is too busy (render slots and queue full) or a render ran out of time.

    The request was fine: the client may retry after ``retry_after_s`` seconds.
    """

    ogc_code = "ServiceUnavailable"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    @property
    def headers(self) -> dict[str, str]:
        """RFC 9110 §10.2.3: when to try again."""
        return {"Retry-After": str(self.retry_after_s)}


class Unauthorized(FewsmapError):
    """A protected layer was asked for without a token that grants it (RFC 6750)."""

    ogc_code = "Unauthorized"

    def __init__(self, message: str, error: str | None = None) -> None:
        super().__init__(message)
        self.error = error  # RFC 6750 §3.1: invalid_token, insufficient_scope or none

    @property
    def headers(self) -> dict[str, str]:
        """RFC 6750 §3: the scheme, and why a presented token was not enough."""
        error = f', error="{self.error}"' if self.error else ""
        return {"WWW-Authenticate": f'Bearer realm="fewsmap"{error}'}


class RenderCancelled(FewsmapError):
    """A render was stopped before it ended: its client went away or its time ran out.

    Nobody reads the answer to a client that has gone; 499 is nginx's "client closed
    request", kept here so logs and counters tell it apart from refusals.
    """

    ogc_code = "RenderCancelled"


class NotFound(FewsmapError):
    """A path names no resource: a collection, instance or file that does not exist."""

    ogc_code = "NotFound"


class MethodNotAllowed(FewsmapError):
    """A method a read-only resource does not take."""

    ogc_code = "MethodNotAllowed"


class ResponseTooLarge(FewsmapError):
    """A query would answer more values than the service allows (``max_edr_values``).

    OGC API - EDR 1.1 §8.2.1: a server may refuse a too-large response with 413.
    """

    ogc_code = "ResponseTooLarge"
