"""The CoverageJSON objects both point fronts write: described from CF attributes, checked by
KNMI's covjson-pydantic models as they are made."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fewsmap.formats import covjson
from fewsmap.products.ensemble import parse_statistic

TEMPERATURE = {"long_name": "Temperature", "units": "K", "standard_name": "air_temperature"}


def test_a_variable_member_and_statistic() -> None:
    plain = covjson.describe_variable(TEMPERATURE, "t")
    assert plain == covjson.Description(
        "Temperature", "Temperature", "K",
        "http://vocab.nerc.ac.uk/standard_name/air_temperature/")
    assert covjson.describe_variable(TEMPERATURE, "t", 3).label == "Temperature, member 3"
    above = parse_statistic("above:290")
    assert above is not None
    probability = covjson.describe_variable(TEMPERATURE, "t", "above:290", above)
    assert (probability.label, probability.units) == ("Temperature, ensemble above:290", "%")


def test_grib_unknown_standard_name_has_no_vocabulary_entry() -> None:
    about = covjson.describe_variable({"standard_name": "unknown"}, "fg10_6")
    assert about.observed_id is None and about.label == "fg10_6"
    assert "id" not in covjson.parameter(about)["observedProperty"]
    assert "unit" not in covjson.parameter(about)  # no units attribute: no unit member


def test_pressure_levels_point_down() -> None:
    found = covjson.vertical_referencing(
        {"long_name": "pressure", "units": "hPa", "positive": "down"}, "isobaricInhPa")
    assert found == {"coordinates": ["z"], "system": {"type": "VerticalCRS", "cs": {
        "csAxes": [{"name": {"en": "pressure"}, "direction": "down",
                    "unit": {"symbol": "hPa"}}]}}}
    height = covjson.vertical_referencing({}, "height")["system"]["cs"]["csAxes"][0]
    assert height == {"name": {"en": "height"}, "direction": "up"}


def test_the_models_refuse_what_coveragejson_forbids() -> None:
    with pytest.raises(ValidationError):  # a temporal reference needs its calendar
        covjson.referencing(["t"], {"type": "TemporalRS"})
    with pytest.raises(ValidationError):  # a label may not be empty
        covjson.parameter(covjson.Description("", "", ""))
    with pytest.raises(ValidationError):  # a group needs members
        covjson.parameter_group("Temperature", None)  # type: ignore[arg-type]


def test_horizontal_axes_in_the_crs_order() -> None:
    assert covjson.geographic_referencing()["coordinates"] == ["x", "y"]
    assert covjson.geographic_referencing(covjson.EPSG4326_URI)["coordinates"] == ["y", "x"]
    assert covjson.projected_referencing(3035, "…")["system"] == {
        "type": "ProjectedCRS", "id": "http://www.opengis.net/def/crs/EPSG/0/3035"}
