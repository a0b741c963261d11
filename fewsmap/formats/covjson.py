"""CoverageJSON objects (OGC 21-069r2) that EDR answers and ``/api/timeseries`` share.

One description of a parameter (label, observed property, units) from a variable's CF
attributes, one vertical and one horizontal reference system, one point-series domain and
one NdArray range, so both fronts describe the same variable, level axis and cell alike.

The small objects (parameters, groups, reference systems) are built with KNMI's
covjson-pydantic models, which check them as they are made. Domains and ranges stay plain
dicts: their values are most of a document, a range may hold a placeholder that
`fewsmap.edr.encode.covjson_chunks` replaces by values written in chunks, and building a
10 × 73 point-series collection with the models took 1.29 ms against 0.96 ms as dicts
(docs/design/edr.md); tests validate whole documents with the models instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from covjson_pydantic.base_models import CovJsonBaseModel
from covjson_pydantic.parameter import Parameter, ParameterGroup
from covjson_pydantic.reference_system import ReferenceSystemConnectionObject
from edr_pydantic.base_model import EdrBaseModel

from fewsmap.products.ensemble import EnsembleStatistic

CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG4326_URI = "http://www.opengis.net/def/crs/EPSG/0/4326"
NERC_STANDARD_NAMES = "http://vocab.nerc.ac.uk/standard_name/"
TEMPORAL_REFERENCING = {"coordinates": ["t"],
                        "system": {"type": "TemporalRS", "calendar": "Gregorian"}}


@dataclass(frozen=True)
class Description:
    """What a parameter is: its label, the property observed, its units and the property's
    vocabulary URI (a CF standard name in NERC's vocabulary), if any."""

    label: str
    observed: str
    units: str
    observed_id: str | None = None


def describe_variable(attrs: Mapping[str, Any], variable: str,
                      member: float | str | None = None,
                      statistic: EnsembleStatistic | None = None,
                      units: str | None = None) -> Description:
    """Describe a variable (one member of it, or an ensemble statistic over its members) from
    its CF attributes (``long_name``, ``units``, ``standard_name``); ``units``, when given,
    are those of the values answered (`fewsmap.resolve.units`)."""
    name = str(attrs.get("long_name") or variable)
    label = name if member is None else f"{name}, member {member}"
    if units is None:
        units = str(attrs.get("units") or "")
    if statistic is not None:  # its own units: % for a probability
        label, units = f"{name}, ensemble {statistic.label}", statistic.units(units)
    standard_name = str(attrs.get("standard_name") or "")
    # GRIB writes "unknown" where it has no standard name: no vocabulary entry then.
    observed_id = (NERC_STANDARD_NAMES + standard_name + "/"
                   if standard_name and standard_name != "unknown" else None)
    return Description(label, name, units, observed_id)


def parameter(description: Description, **extra: object) -> dict[str, Any]:
    """A CoverageJSON Parameter object; ``extra`` are foreign members (``fewsmap:member``)."""
    observed: dict[str, Any] = {"label": {"en": description.observed}}
    if description.observed_id is not None:
        observed["id"] = description.observed_id
    found: dict[str, Any] = {"type": "Parameter", "label": {"en": description.label},
                             "observedProperty": observed, **extra}
    if description.units:
        found["unit"] = {"symbol": description.units}
    return dump(Parameter.model_validate(found))


def parameter_group(observed: str, members: list[str]) -> dict[str, Any]:
    """A ParameterGroup of an ensemble's members (each one parameter)."""
    return dump(ParameterGroup.model_validate({
        "type": "ParameterGroup", "label": {"en": f"{observed}, ensemble members"},
        "observedProperty": {"label": {"en": observed}}, "members": members}))


def geographic_referencing(crs_uri: str = CRS84_URI) -> dict[str, Any]:
    """The horizontal reference of longitude/latitude axes, in the CRS's own axis order."""
    order = ["y", "x"] if crs_uri == EPSG4326_URI else ["x", "y"]
    return referencing(order, {"type": "GeographicCRS", "id": crs_uri})


def projected_referencing(epsg: int | None, wkt: str) -> dict[str, Any]:
    """The horizontal reference of a projected grid's x/y: its EPSG URI, else its WKT."""
    system: dict[str, Any] = {"type": "ProjectedCRS"}
    if epsg is not None:
        system["id"] = f"http://www.opengis.net/def/crs/EPSG/0/{epsg}"
    else:
        system["wkt"] = wkt
    return referencing(["x", "y"], system)


def vertical_referencing(attrs: Mapping[str, Any], dim: str) -> dict[str, Any]:
    """The reference of the z axis from the level coordinate's CF attributes (``positive``
    says which way values grow: pressure levels point down)."""
    direction = "down" if str(attrs.get("positive", "up")).lower() == "down" else "up"
    axis: dict[str, Any] = {"name": {"en": str(attrs.get("long_name") or dim)},
                            "direction": direction}
    if attrs.get("units"):
        axis["unit"] = {"symbol": str(attrs["units"])}
    return referencing(["z"], {"type": "VerticalCRS", "cs": {"csAxes": [axis]}})


def referencing(coordinates: list[str], system: dict[str, Any]) -> dict[str, Any]:
    """A reference system connection: which axes ``system`` references."""
    return dump(ReferenceSystemConnectionObject.model_validate(
        {"coordinates": coordinates, "system": system}))


def point_series_domain(x: float, y: float, times: list[str],
                        z: float | int | None = None,
                        references: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A PointSeries domain: one x, y (and z), the valid times."""
    axes: dict[str, Any] = {"x": {"values": [x]}, "y": {"values": [y]},
                            "t": {"values": times}}
    if z is not None:
        axes["z"] = {"values": [z]}
    domain: dict[str, Any] = {"type": "Domain", "domainType": "PointSeries", "axes": axes}
    if references is not None:
        domain["referencing"] = references
    return domain


def ndarray(values: object, axis_names: list[str], shape: list[int]) -> dict[str, Any]:
    """A float NdArray range (``values``: the numbers, null where missing)."""
    return {"type": "NdArray", "dataType": "float", "axisNames": axis_names, "shape": shape,
            "values": values}


def dump(model: CovJsonBaseModel | EdrBaseModel) -> dict[str, Any]:
    """A CoverageJSON or EDR model as the JSON object it stands for (member names as the
    standards spell them, such as ``data-type``; no empty members)."""
    found: dict[str, Any] = model.model_dump(mode="json", exclude_none=True, by_alias=True)
    return found
