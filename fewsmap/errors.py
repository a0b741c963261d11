"""One error hierarchy for fewsmap; the protocol layer maps it to OGC codes and HTTP status."""

from __future__ import annotations


class FewsmapError(Exception):
    """Base of every error fewsmap raises on purpose.

    ``ogc_code`` is the code every answer carries (WMS 1.3.0 Annex E where one applies): a
    string, never None (issue #13), so a JSON error always has its ``code``; OWS Common's
    ``NoApplicableCode`` names an error no more specific code fits.
    """

    ogc_code: str = "NoApplicableCode"
    http_status: int = 400

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers the answer must carry (Retry-After, WWW-Authenticate)."""
        return {}


class InternalError(FewsmapError):
    """A fault of ours; the client gets a report without details, the log gets the cause."""

    ogc_code = "InternalError"
    http_status = 500


class IngestError(FewsmapError):
    """An input file cannot become part of a store; nothing was written."""

    ogc_code = "IngestError"


class StoreError(FewsmapError):
    """A store is missing, unreadable or not a fewsmap forecast cube, or a chunk of it is
    damaged."""

    ogc_code = "StorageError"
    http_status = 500


class StorageUnavailable(StoreError):
    """Object storage did not answer (or refused) a read: the data is there, the way to it
    is not, so a client may retry."""

    ogc_code = "StorageUnavailable"
    http_status = 503


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
    http_status = 503

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
    http_status = 401

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
    http_status = 499
