"""Every error a client sees: domain errors rendered as OGC reports, images or JSON."""

from __future__ import annotations

import json
from xml.sax.saxutils import escape, quoteattr

from fewsmap.errors import FewsmapError
from fewsmap.ogc.xmlsafe import xml_safe

REPORT_1_3_0 = """<?xml version="1.0" encoding="UTF-8"?>
<ServiceExceptionReport version="1.3.0" xmlns="http://www.opengis.net/ogc" \
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" \
xsi:schemaLocation="http://www.opengis.net/ogc \
http://schemas.opengis.net/wms/1.3.0/exceptions_1_3_0.xsd">
  <ServiceException{code}>{message}</ServiceException>
</ServiceExceptionReport>
"""
REPORT_1_1_1 = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE ServiceExceptionReport SYSTEM \
"http://schemas.opengis.net/wms/1.1.1/exception_1_1_1.dtd">
<ServiceExceptionReport version="1.1.1">
  <ServiceException{code}>{message}</ServiceException>
</ServiceExceptionReport>
"""
# WMS 1.3.0 §7.3.3.11: the XML exception format is text/xml; 1.1.1 has its own type.
MEDIA_TYPES = {"1.3.0": "text/xml", "1.1.1": "application/vnd.ogc.se_xml"}


def exception_report(error: FewsmapError, version: str = "1.3.0") -> tuple[bytes, str]:
    """Render ``error`` as a ServiceExceptionReport of ``version`` (body, media type)."""
    code = (version == "1.1.1" and error.answer.wms_1_1_1) or error.ogc_code
    template = REPORT_1_1_1 if version == "1.1.1" else REPORT_1_3_0
    attribute = f" code={quoteattr(code)}" if code else ""
    body = template.format(code=attribute, message=escape(xml_safe(str(error))))
    return body.encode(), MEDIA_TYPES.get(version, "text/xml")


def json_error(error: FewsmapError) -> bytes:
    """Render ``error`` for clients that asked for JSON (FEWS JSON requests)."""
    return json.dumps({"error": {"code": error.ogc_code, "message": str(error)}}).encode()
