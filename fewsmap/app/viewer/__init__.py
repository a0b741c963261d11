"""The built-in forecast viewer: its page at ``/`` and its files under ``/viewer/``.

The page's own files are in ``assets/``; the browser libraries it loads (OpenLayers, the Natural
Earth outlines) are copied from npm into ``vendor/`` at build time (``npm run vendor``: by
``make vendor`` in a source tree, and by every wheel and sdist build, setup.py) and served from
there, never from a CDN. Only these two folders are reachable.
"""

from __future__ import annotations

import os
from html import escape
from pathlib import Path

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope

from fewsmap.app.conditional import not_modified
from fewsmap.app.files import RangeFileResponse

HERE = Path(__file__).resolve().parent
ASSETS = HERE / "assets"
VENDOR = HERE / "vendor"
# What index.html loads from vendor/ (vendor.mjs copies them).
VENDOR_FILES = ("ol.js", "ol.css", "countries-110m.json")
REVALIDATE = {"Cache-Control": "no-cache"}


class ViewerFiles(StaticFiles):
    """The viewer's static files: revalidated on every load, and their folder may be missing."""

    async def check_config(self) -> None:
        """Accept a missing folder (vendor/ before `make vendor`): a 404, not a crash."""

    def file_response(self, full_path: PathLike, stat_result: os.stat_result, scope: Scope,
                      status_code: int = 200) -> Response:
        """The file, to be revalidated by ETag: an upgraded page never runs stale scripts.
        Ranges as the stores' files (an unusable one ignored, a refusal in JSON)."""
        response = RangeFileResponse(full_path, status_code=status_code, headers=REVALIDATE,
                                     stat_result=stat_result)
        # Starlette's own check let If-Modified-Since decide when If-None-Match had not
        # matched (RFC 9110 §13.1.3: it is ignored then).
        unchanged = not_modified(Headers(scope=scope), response.headers, scope["method"])
        return unchanged or response


def missing_vendor_files(vendor: Path) -> list[str]:
    """The vendored files the page needs that are not in ``vendor``."""
    return [name for name in VENDOR_FILES if not (vendor / name).is_file()]


def viewer_routes(vendor: Path = VENDOR) -> list[BaseRoute]:
    """The page at ``/`` and ``/viewer/assets/…``, ``/viewer/vendor/…`` (from ``vendor``)."""

    async def page(request: Request) -> Response:
        missing = missing_vendor_files(vendor)
        if missing:
            return HTMLResponse(missing_page(vendor, missing), status_code=503)
        path = ASSETS / "index.html"
        response = RangeFileResponse(path, headers=REVALIDATE, stat_result=path.stat())
        return not_modified(request.headers, response.headers, request.method) or response

    return [
        Route("/", page),
        # StaticFiles refuses paths resolving outside its folder (.., symlinks, absolute).
        Mount("/viewer/assets", app=ViewerFiles(directory=ASSETS), name="viewer-assets"),
        Mount("/viewer/vendor", app=ViewerFiles(directory=vendor, check_dir=False),
              name="viewer-vendor"),
    ]


def missing_page(vendor: Path, missing: list[str]) -> str:
    """An HTML page saying which vendored files are missing and how to get them."""
    files = "".join(f"<li><code>{escape(name)}</code></li>" for name in missing)
    return (
        "<!doctype html><meta charset='utf-8'><title>fewsmap viewer: assets missing</title>"
        "<h1>The viewer's browser libraries are not installed</h1>"
        f"<p>These files are missing from <code>{escape(str(vendor))}</code>:</p><ul>{files}</ul>"
        "<p>They are copied from npm when fewsmap is built (every wheel and sdist carries "
        "them): in a source folder run <code>make vendor</code> (or <code>make serve</code>); "
        "it needs <code>npm</code>.</p>"
        '<p>The map services work without them: <a href="/wms?request=GetCapabilities">'
        'WMS capabilities</a>, <a href="/health">health</a>.</p>'
    )
