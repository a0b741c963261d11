"""GetCapabilities answers built from the catalog: FEWS JSON and WMS 1.3.0 XML."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from fewsmap.catalog import Catalog, Layer
from fewsmap.catalog.extent import lonlat_bbox, mercator_bbox
from fewsmap.dimensions import default_time
from fewsmap.store.cube import RunInfo
from fewsmap.store.layout import MEMBER_DIM
from fewsmap.store.run import format_time


def layer_json(catalog: Catalog, layer: Layer, run: RunInfo | None, only_headers: bool,
               name: str | None = None) -> dict[str, Any]:
    """One FEWS JSON capabilities layer (``run`` None: the layer's latest run)."""
    runs = catalog.runs(layer)
    run = run or (runs[-1] if runs else None)
    group = catalog.groups[layer.group]
    store = catalog.store(layer)
    minx, miny, maxx, maxy = mercator_bbox(store)
    entry: dict[str, Any] = {
        "name": name or layer.id,
        "title": layer.title,
        "path": [group.id],
        "groupName": group.id,
        "groupTitle": group.title,
        "keywordList": [{**layer.keywords,
                         **({"forecastTime": run.label} if run else {})}],
        "boundingBox": {"crs": "EPSG:3857", "minx": f"{minx:.8f}", "miny": f"{miny:.8f}",
                        "maxx": f"{maxx:.8f}", "maxy": f"{maxy:.8f}"},
        "styles": [{"name": s.name, "title": s.title} for s in layer.styles],
        "onlyGrids": True,
    }
    if MEMBER_DIM in store.dims(layer.variable):
        members = store.coordinate(MEMBER_DIM)
        entry["ensembles"] = [{"ensembleId": layer.variable,
                               "ensembleMemberIds": [str(int(m)) for m in sorted(members)]}]
    if run is None:
        entry["completelyMissing"] = True
        return entry
    stats = run.statistics.get(layer.variable, {})
    entry["externalForecastTime"] = run.label
    entry["completelyMissing"] = stats.get("nan_fraction") == 1.0
    entry["firstValueTime"] = format_time(run.valid_times[0])
    entry["lastValueTime"] = format_time(run.valid_times[-1])
    entry["timesDefault"] = format_time(default_time(run))
    if not only_headers:
        entry["times"] = [format_time(t) for t in run.valid_times]
    return entry


def capabilities_json(catalog: Catalog, layers: Iterable[Layer], only_headers: bool,
                      forecast_runs: dict[str, list[RunInfo]] | None = None) -> dict[str, Any]:
    """FEWS JSON capabilities: ``title``, flat ``layers[]`` and ``groups[]``.

    ``forecast_runs`` lists, per layer id, the runs to report as child layers
    ``<layer>-<T0>`` (the FEWS forecast period).
    """
    entries = []
    for layer in layers:
        entries.append(layer_json(catalog, layer, None, only_headers))
        for run in (forecast_runs or {}).get(layer.id, []):
            child = layer_json(catalog, layer, run, only_headers, f"{layer.id}-{run.label}")
            child["title"] = run.label
            entries.append(child)
    groups = [{"name": g.id, "title": g.title, "path": [g.id]} for g in catalog.groups.values()
              if any(e["groupName"] == g.id for e in entries)]
    return {"title": catalog.title, "layers": entries, "groups": groups}


def capabilities_xml(catalog: Catalog, layers: Iterable[Layer], service_url: str,
                     only_headers: bool = False) -> str:
    """WMS 1.3.0 capabilities XML: service, requests offered, and the layer tree.

    ``only_headers`` leaves out the time dimensions (FEWS ``onlyHeaders=true``).
    """
    url = quoteattr(service_url)
    resource = f'<OnlineResource xlink:type="simple" xlink:href={url}/>'
    by_group: dict[str, list[Layer]] = {}
    for layer in layers:
        by_group.setdefault(layer.group, []).append(layer)
    groups = "".join(_group_xml(catalog, catalog.groups[g], members, only_headers)
                     for g, members in by_group.items())
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<WMS_Capabilities version="1.3.0" xmlns="http://www.opengis.net/wms" \
xmlns:xlink="http://www.w3.org/1999/xlink" \
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" \
xsi:schemaLocation="http://www.opengis.net/wms \
http://schemas.opengis.net/wms/1.3.0/capabilities_1_3_0.xsd">
<Service><Name>WMS</Name><Title>{escape(catalog.title)}</Title>{resource}</Service>
<Capability>
<Request>
<GetCapabilities><Format>text/xml</Format><Format>application/json</Format>
<DCPType><HTTP><Get>{resource}</Get></HTTP></DCPType></GetCapabilities>
</Request>
<Exception><Format>XML</Format></Exception>
<Layer><Title>{escape(catalog.title)}</Title><CRS>EPSG:3857</CRS>
{groups}</Layer>
</Capability>
</WMS_Capabilities>
"""


def _group_xml(catalog: Catalog, group: Any, layers: list[Layer], only_headers: bool) -> str:
    body = "".join(_layer_xml(catalog, layer, only_headers) for layer in layers)
    return f"<Layer><Name>{escape(group.id)}</Name><Title>{escape(group.title)}</Title>" \
           f"{body}</Layer>\n"


def _layer_xml(catalog: Catalog, layer: Layer, only_headers: bool) -> str:
    runs = catalog.runs(layer)
    west, south, east, north = lonlat_bbox(catalog.store(layer))
    keywords = "".join(f"<Keyword>{escape(k)}={escape(v)}</Keyword>"
                       for k, v in layer.keywords.items())
    dimension = ""
    if runs and not only_headers:
        run = runs[-1]
        times = ",".join(format_time(t) for t in run.valid_times)
        dimension = (f'<Dimension name="time" units="ISO8601" '
                     f'default="{format_time(default_time(run))}">{times}</Dimension>')
    styles = "".join(f"<Style><Name>{escape(s.name)}</Name><Title>{escape(s.title)}</Title>"
                     f"</Style>" for s in layer.styles)
    return (f'<Layer queryable="0"><Name>{escape(layer.id)}</Name>'
            f"<Title>{escape(layer.title)}</Title><KeywordList>{keywords}</KeywordList>"
            f"<EX_GeographicBoundingBox><westBoundLongitude>{west:.6f}</westBoundLongitude>"
            f"<eastBoundLongitude>{east:.6f}</eastBoundLongitude>"
            f"<southBoundLatitude>{south:.6f}</southBoundLatitude>"
            f"<northBoundLatitude>{north:.6f}</northBoundLatitude></EX_GeographicBoundingBox>"
            f"{dimension}{styles}</Layer>")
