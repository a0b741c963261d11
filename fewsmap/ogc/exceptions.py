"""Every error a client sees: one table from domain errors to OGC reports and HTTP status."""

from __future__ import annotations

import json
from xml.sax.saxutils import escape, quoteattr

from fewsmap.errors import FewsmapError

XML_REPORT = """<?xml version="1.0" encoding="UTF-8"?>
<ServiceExceptionReport version="1.3.0" xmlns="http://www.opengis.net/ogc" \
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" \
xsi:schemaLocation="http://www.opengis.net/ogc \
http://schemas.opengis.net/wms/1.3.0/exceptions_1_3_0.xsd">
  <ServiceException{code}>{message}</ServiceException>
</ServiceExceptionReport>
"""
XML_TYPE = "application/vnd.ogc.se_xml"


def exception_report(error: FewsmapError) -> tuple[bytes, str]:
    """Render ``error`` as a WMS 1.3.0 ServiceExceptionReport (body, media type)."""
    code = f" code={quoteattr(error.ogc_code)}" if error.ogc_code else ""
    body = XML_REPORT.format(code=code, message=escape(str(error)))
    return body.encode(), XML_TYPE


def json_error(error: FewsmapError) -> bytes:
    """Render ``error`` for JSON clients (FEWS JSON requests, health checks)."""
    return json.dumps({"error": {"code": error.ogc_code, "message": str(error)}}).encode()
