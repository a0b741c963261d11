"""The unit reader and the quantity library: units as files write them, quantities as
national services draw them."""

from __future__ import annotations

import pytest

from fewsmap.catalog.quantities import (
    PER_GRAVITY,
    QUANTITIES,
    WATER,
    Unit,
    normalise_units,
    parse_units,
    recognise,
    scheme_for,
    unit_conversion,
)


@pytest.mark.parametrize(("written", "udunits"), [
    ("kg m**-2 s**-1", "kg m-2 s-1"), ("kg m-2 s-1", "kg m-2 s-1"), ("kg/m2/s", "kg m-2 s-1"),
    ("mm/h", "mm h-1"), ("in", "in"), ("K", "K"), ("DEGC", "degC"), ("degC", "degC"),
    ("m s**-1", "m s-1"), ("m/s", "m s-1"), ("Pa", "Pa"), ("%", "%"), ("percent", "%"),
    ("(0 - 1)", "1"), ("m3/s", "m3 s-1"), ("W/m^2", "W m-2"), ("MM", "mm"),
    ("m of water equivalent", "m"), ("m**2 s**-2", "m2 s-2"), ("kg kg**-1", "kg kg-1"),
    ("degrees", "degrees"), ("", ""),
])
def test_units_are_spelt_the_udunits_way(written: str, udunits: str) -> None:
    assert normalise_units(written) == udunits


@pytest.mark.parametrize(("source", "target", "equivalences", "value", "expected"), [
    ("K", "degC", (), 273.15, 0.0),
    ("degF", "degC", (), 212.0, 100.0),
    ("kg m**-2 s**-1", "mm h-1", (WATER,), 1e-4, 0.36),
    ("kg m-2", "mm", (WATER,), 42.0, 42.0),
    ("m", "mm", (), 0.0125, 12.5),
    ("in", "mm", (), 2.6, 66.04),
    ("m s**-1", "km h-1", (), 10.0, 36.0),
    ("Pa", "hPa", (), 101325.0, 1013.25),
    ("(0 - 1)", "%", (), 0.75, 75.0),
    ("m**2 s**-2", "dam", (PER_GRAVITY,), 55162.0, 562.5),
    ("m", "cm", (), 1.5, 150.0),
    ("kg kg**-1", "g kg-1", (), 0.012, 12.0),
])
def test_values_convert_to_display_units(source: str, target: str,
                                         equivalences: tuple[Unit, ...], value: float,
                                         expected: float) -> None:
    conversion = unit_conversion(source, target, equivalences)
    assert conversion is not None
    scale, offset = conversion
    assert value * scale + offset == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize(("source", "target"), [
    ("kg m-2", "mm"),  # only with the water equivalence
    ("K", "m"), ("degC s-1", "K s-1"), ("furlong", "m"), ("m s-1", "mm"),
])
def test_units_that_do_not_convert_say_so(source: str, target: str) -> None:
    assert unit_conversion(source, target) is None


def test_unknown_units_are_not_read() -> None:
    assert parse_units("furlongs per fortnight") is None
    assert parse_units("kg m-2") is not None


# (variable, attributes as the real files carry them) → the quantity the library names
@pytest.mark.parametrize(("variable", "attrs", "quantity"), [
    # usace-cumulus/NAEFSmean: FEWS export, non-UDUNITS units
    ("QPF", {"units": "mm", "long_name": "QPF"}, "precipitation"),
    ("QTF", {"units": "degC", "long_name": "QTF"}, "temperature"),
    # usace-cumulus/ALR_QPF_SFC (GRIB1, NCEP tp)
    ("tp", {"units": "kg m**-2", "standard_name": "unknown", "long_name": "Total Precipitation",
            "GRIB_shortName": "tp"}, "precipitation"),
    # ECMWF tp in metres
    ("tp", {"units": "m", "GRIB_shortName": "tp"}, "precipitation"),
    # an ECMWF/ERA5 precipitation rate
    ("tprate", {"units": "kg m**-2 s**-1", "long_name": "Total precipitation rate",
                "GRIB_shortName": "tprate"}, "precipitation_rate"),
    # precipitable water (GFS pwat, ECMWF tcwv): kg m-2 like precipitation, not precipitation
    ("pwat", {"units": "kg m**-2", "long_name": "Precipitable water",
              "GRIB_shortName": "pwat"}, "precipitable_water"),
    ("tcwv", {"units": "kg m**-2", "long_name": "Total column vertically-integrated water "
              "vapour", "GRIB_shortName": "tcwv"}, "precipitable_water"),
    # usace-cumulus/qpf (NWS GFE export): only a name and inches
    ("QPF_SFC", {"units": "in"}, "precipitation"),
    # solarforecastarbiter/gefs
    ("tcdc", {"units": "percent", "long_name": "Total Cloud Cover"}, "cloud_cover"),
    ("t2m", {"units": "K", "long_name": "Temperature"}, "temperature"),
    ("si10", {"units": "m/s", "long_name": "Wind Speed"}, "wind"),
    ("tcc", {"units": "(0 - 1)", "GRIB_shortName": "tcc"}, "cloud_cover"),
    # metview/wgust_ens
    ("fg10_6", {"units": "m s**-1", "standard_name": "unknown", "GRIB_shortName": "10fg6",
                "long_name": "Maximum 10 metre wind gust in the last 6 hours"}, "wind"),
    # cfgrib/era5-levels-members
    ("z", {"units": "m**2 s**-2", "standard_name": "geopotential",
           "GRIB_shortName": "z"}, "geopotential"),
    ("t", {"units": "K", "standard_name": "air_temperature", "GRIB_shortName": "t"},
     "temperature"),
    # lisflood/dis
    ("dis", {"units": "m3/s", "standard_name": "DischargeMaps", "long_name": "ChanQAvg"},
     "discharge"),
    ("msl", {"units": "Pa", "GRIB_shortName": "msl"}, "pressure"),
    ("2d", {"units": "K", "GRIB_shortName": "2d", "long_name": "2 metre dewpoint temperature"},
     "dewpoint"),
    ("sst", {"units": "K", "GRIB_shortName": "sst"}, "sea_surface_temperature"),
    ("r", {"units": "%", "GRIB_shortName": "r"}, "relative_humidity"),
    ("q", {"units": "kg kg**-1", "GRIB_shortName": "q"}, "specific_humidity"),
    ("sd", {"units": "m of water equivalent", "GRIB_shortName": "sd"}, "snow_depth"),
    ("sf", {"units": "m of water equivalent", "GRIB_shortName": "sf"}, "snowfall"),
    ("gh", {"units": "gpm", "GRIB_shortName": "gh"}, "geopotential"),
    ("wl", {"units": "m", "long_name": "water level"}, "water_level"),
])
def test_quantities_are_recognised_from_real_attributes(variable: str, attrs: dict[str, object],
                                                        quantity: str) -> None:
    found = recognise(variable, attrs)
    assert found is not None and found.name == quantity


@pytest.mark.parametrize(("variable", "attrs"), [
    ("dswrf", {"units": "W/m^2", "long_name": "Downward Short-Wave Radiation Flux"}),
    ("x_wind_10m", {"units": "m/s", "standard_name": "x_wind"}),  # a component, not a speed
    ("drainage", {"units": "mm"}),  # "rain" inside another word
    ("mystery", {}),
])
def test_unknown_quantities_are_not_guessed(variable: str, attrs: dict[str, object]) -> None:
    assert recognise(variable, attrs) is None


def test_every_scheme_has_ascending_round_breaks_and_a_colour_each() -> None:
    for quantity in QUANTITIES:
        for scheme in quantity.schemes:
            assert list(scheme.breaks) == sorted(set(scheme.breaks)), quantity.name
            assert len(scheme.colors) == len(scheme.breaks), quantity.name
            assert all(round(b, 2) == b for b in scheme.breaks), quantity.name
            assert parse_units(scheme.units) is not None, scheme.units


def test_an_inch_qpf_keeps_inch_classes_and_a_rate_shows_in_mm_per_hour() -> None:
    inches = scheme_for(recognise("QPF_SFC", {"units": "in"}), "in")  # type: ignore[arg-type]
    assert inches.scheme.units == "in" and (inches.scale, inches.offset) == (1.0, 0.0)
    assert inches.scheme.breaks[0] == 0.01 and 2.5 in inches.scheme.breaks
    rate = recognise("tprate", {"units": "kg m**-2 s**-1", "GRIB_shortName": "tprate"})
    shown = scheme_for(rate, "kg m**-2 s**-1")  # type: ignore[arg-type]
    assert shown.scheme.units == "mm h-1" and shown.scale == 3600.0


def test_a_display_unit_can_be_chosen() -> None:
    wind = recognise("si10", {"units": "m/s"})
    assert wind is not None
    assert scheme_for(wind, "m/s").scheme.units == "km h-1"
    chosen = scheme_for(wind, "m/s", "m/s")
    assert chosen.scheme.units == "m s-1" and chosen.scale == 1.0
