"""Quantities: what a variable measures, in which units, and how services draw it.

A small UDUNITS-style unit reader (`parse_units`, `normalise_units`, `unit_conversion`)
covers the unit strings forecast files carry (``kg m**-2 s**-1``, ``kg m-2 s-1``, ``mm/h``,
``in``, ``K``, ``DEGC``, ``m s**-1``, ``Pa``, ``%``, ``(0 - 1)`` …): pint and cf-units are not
dependencies. `recognise` names the quantity of a variable from its CF ``standard_name``,
its GRIB ``shortName`` (as cfgrib exposes it, ``GRIB_shortName`` or the variable name), its
``long_name`` and its units; `scheme_for` gives the classes and colours to draw it in, and
the display unit with the linear conversion from the stored one.

The class breaks are round numbers in the display unit; the palettes are ours, written after
the ones national services publish (sources cited at each scheme).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from fewsmap.units import udunits

# ---------------------------------------------------------------------------------------
# Units

# Base dimensions, in this order: mass (kg), length (m), time (s), temperature (K).
Dims = tuple[int, int, int, int]
DIMENSIONLESS: Dims = (0, 0, 0, 0)
GRAVITY = 9.80665  # m s-2, WMO standard gravity: geopotential = g × geopotential height
WATER_DENSITY = 1000.0  # kg m-3: 1 kg m-2 of water is 1 mm deep


@dataclass(frozen=True)
class Unit:
    """A unit as ``SI value = value × factor + offset`` in base dimensions ``dims``."""

    factor: float
    dims: Dims
    offset: float = 0.0

    def __mul__(self, other: Unit) -> Unit:
        mass, length, time, temperature = (a + b for a, b in zip(self.dims, other.dims,
                                                                   strict=True))
        return Unit(self.factor * other.factor, (mass, length, time, temperature))

    def __pow__(self, exponent: int) -> Unit:
        mass, length, time, temperature = (d * exponent for d in self.dims)
        return Unit(self.factor ** exponent, (mass, length, time, temperature))


# Each symbol in its UDUNITS spelling, with what it is in base units.
SYMBOLS: dict[str, Unit] = {
    "1": Unit(1.0, DIMENSIONLESS), "%": Unit(0.01, DIMENSIONLESS),
    "kg": Unit(1.0, (1, 0, 0, 0)), "g": Unit(1e-3, (1, 0, 0, 0)),
    "m": Unit(1.0, (0, 1, 0, 0)), "km": Unit(1e3, (0, 1, 0, 0)), "dam": Unit(10.0, (0, 1, 0, 0)),
    "cm": Unit(1e-2, (0, 1, 0, 0)), "mm": Unit(1e-3, (0, 1, 0, 0)),
    "in": Unit(0.0254, (0, 1, 0, 0)), "ft": Unit(0.3048, (0, 1, 0, 0)),
    "s": Unit(1.0, (0, 0, 1, 0)), "min": Unit(60.0, (0, 0, 1, 0)),
    "h": Unit(3600.0, (0, 0, 1, 0)), "day": Unit(86400.0, (0, 0, 1, 0)),
    "K": Unit(1.0, (0, 0, 0, 1)), "degC": Unit(1.0, (0, 0, 0, 1), 273.15),
    "degF": Unit(5 / 9, (0, 0, 0, 1), 273.15 - 32 * 5 / 9),
    "Pa": Unit(1.0, (1, -1, -2, 0)), "hPa": Unit(100.0, (1, -1, -2, 0)),
    "kPa": Unit(1000.0, (1, -1, -2, 0)),
    "W": Unit(1.0, (1, 2, -3, 0)), "J": Unit(1.0, (1, 2, -2, 0)),
    "kt": Unit(1852 / 3600, (0, 1, -1, 0)),
}
# Other spellings seen in files (compared in lower case) → the UDUNITS symbol.
ALIASES = {
    **{symbol.lower(): symbol for symbol in SYMBOLS},
    "percent": "%", "fraction": "1", "proportion": "1", "(0 - 1)": "1", "0-1": "1",
    "°c": "degC", "deg c": "degC", "degrees_celsius": "degC", "degree_celsius": "degC",
    "celsius": "degC", "°f": "degF", "degrees_fahrenheit": "degF", "fahrenheit": "degF",
    "kelvin": "K", "meter": "m", "meters": "m", "metre": "m", "metres": "m", "gpm": "m",
    "inch": "in", "inches": "in", "feet": "ft", "hr": "h", "hour": "h", "hours": "h",
    "d": "day", "days": "day", "sec": "s", "second": "s", "seconds": "s",
    "mb": "hPa", "mbar": "hPa", "millibar": "hPa", "knot": "kt", "knots": "kt", "kts": "kt",
}
# Words after the unit that say what is measured, not in which unit ("m of water equivalent").
QUALIFIERS = re.compile(r"\s+(of\s+water\s+equivalent|water\s+equivalent|of\s+water)\s*$",
                        re.IGNORECASE)
TERM = re.compile(r"^([A-Za-z%°_]+|1)\^?(-?\d+)?$")


def _terms(text: str) -> list[tuple[str, int]] | None:
    """Read ``text`` as (UDUNITS symbol, exponent) terms, or None if a term is unknown."""
    cleaned = QUALIFIERS.sub("", text.strip())
    whole = ALIASES.get(cleaned.lower())
    if whole is not None:  # a spelling with spaces or signs in it: "(0 - 1)", "deg C"
        return [(whole, 1)]
    cleaned = cleaned.replace("**", "^").replace("°C", "degC").replace("°F", "degF")
    terms: list[tuple[str, int]] = []
    for index, part in enumerate(cleaned.split("/")):
        sign = 1 if index == 0 else -1  # UDUNITS: a/b/c is a divided by b and by c
        for token in filter(None, re.split(r"[\s.*·]+", part)):
            match = TERM.match(token)
            symbol = ALIASES.get(match.group(1).lower()) if match else None
            if match is None or symbol is None:
                return None
            terms.append((symbol, sign * int(match.group(2) or 1)))
    return terms or None


def parse_units(text: str) -> Unit | None:
    """Read a unit string into a `Unit`, or None if it is not one we know.

    Temperatures with an offset (degC, degF) stand alone: ``degC s-1`` is not read.
    """
    terms = _terms(text)
    if terms is None:
        return None
    if len(terms) == 1 and terms[0][1] == 1:
        return SYMBOLS[terms[0][0]]
    unit = SYMBOLS["1"]
    for symbol, exponent in terms:
        if SYMBOLS[symbol].offset:
            return None
        unit = unit * SYMBOLS[symbol] ** exponent
    return unit


def normalise_units(text: str) -> str:
    """Spell a unit string the UDUNITS way (``kg m**-2 s**-1`` → ``kg m-2 s-1``, ``DEGC``
    → ``degC``, ``(0 - 1)`` → ``1``); a string of symbols we do not know only loses its
    exponent and product markers (`fewsmap.units.udunits`)."""
    terms = _terms(text) if text else None
    if terms is None:
        return udunits(text)
    return " ".join(symbol if exponent == 1 else f"{symbol}{exponent}"
                    for symbol, exponent in terms)


def unit_conversion(source: str, target: str,
                    equivalences: tuple[Unit, ...] = ()) -> tuple[float, float] | None:
    """``(scale, offset)`` with ``target value = source value × scale + offset``, or None if
    the units do not convert.

    ``equivalences`` are factors a quantity allows between dimensions (1 kg m-2 of water is
    1 mm: `WATER`; a geopotential over g is a height: `PER_GRAVITY`).
    """
    have, want = parse_units(source), parse_units(target)
    if have is None or want is None:
        return None
    if have.dims == want.dims:
        return _tidy(have.factor / want.factor), _tidy((have.offset - want.offset) / want.factor)
    for bridge in equivalences:
        bridged = have * bridge
        if bridged.dims == want.dims and not (have.offset or want.offset):
            return _tidy(bridged.factor / want.factor), 0.0
    return None


def _tidy(number: float) -> float:
    """Round away float noise (0.1 / 0.001 = 99.99999999999999) so conversions read well."""
    return 0.0 if number == 0 else round(number, 12 - math.floor(math.log10(abs(number))))


WATER = Unit(1 / WATER_DENSITY, (-1, 3, 0, 0))  # kg of water → m3
PER_GRAVITY = Unit(1 / GRAVITY, (0, -1, 2, 0))  # m2 s-2 → m

# ---------------------------------------------------------------------------------------
# Quantities and how they are drawn


@dataclass(frozen=True)
class Scheme:
    """How a quantity is drawn in one display unit: class breaks and their colours (each
    colour from its break up), or a continuous colour map over the layer's range.

    ``keep``: data already in this unit stays in it (an inch QPF keeps inch classes).
    """

    units: str
    breaks: tuple[float, ...] = ()
    colors: tuple[str, ...] = ()
    colormap: str = "viridis"
    keep: bool = False
    name: str = ""  # the style name of a scheme other than its quantity's default


@dataclass(frozen=True)
class Quantity:
    """A physical quantity the style library knows, and how to recognise it."""

    name: str
    title: str
    schemes: tuple[Scheme, ...]  # the first is the default display
    standard_names: tuple[str, ...] = ()
    short_names: tuple[str, ...] = ()  # GRIB shortName (cfgrib) and common file names
    words: tuple[str, ...] = ()  # found in long_name or the variable name
    equivalences: tuple[Unit, ...] = ()
    by_units: bool = False  # recognised by its units alone when nothing else matched
    exclude: tuple[str, ...] = field(default=())  # words that rule it out

    def accepts(self, units: str) -> bool:
        """Tell whether data in ``units`` can be drawn as this quantity."""
        return unit_conversion(units, self.schemes[0].units, self.equivalences) is not None


# Precipitation amount in mm: round classes from a trace to extreme totals, light blue
# through green, yellow and red to purple, as NWS precipitation maps draw them
# (https://water.weather.gov/precip/, also ECMWF's 0.5/2/4/10/25/50/100/250 mm shading,
# earthkit-maps styles/precipitation.yaml).
PRECIPITATION_MM = Scheme(
    "mm", (0.1, 0.5, 1, 2, 5, 10, 15, 20, 30, 50, 75, 100, 150, 200),
    ("#c6eff7", "#8fd3f0", "#4da6e8", "#1f5ddb", "#0cc43a", "#0a8f28", "#fef65c", "#fcc62c",
     "#f88d1c", "#ee2a1a", "#b8101a", "#ee3dd0", "#9a4fd6", "#ece0f8"))
# NWS/WPC QPF classes in inches (https://www.wpc.ncep.noaa.gov/qpf/): 0.01 in shows any
# measurable precipitation, 2.5–10 in the storms.
PRECIPITATION_IN = Scheme(
    "in", (0.01, 0.1, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.5, 3, 4, 5, 7, 10),
    ("#c6eff7", "#8fd3f0", "#4da6e8", "#1f5ddb", "#0cc43a", "#0a8f28", "#076b1c", "#fef65c",
     "#fcc62c", "#f88d1c", "#ee2a1a", "#b8101a", "#7e0a12", "#ee3dd0", "#9a4fd6", "#ece0f8"),
    keep=True, name="precipitation_in")
# Rain rate in mm/h: radar-style classes (MET Norway and DWD radar legends, 0.1–100 mm/h).
PRECIPITATION_RATE = Scheme(
    "mm h-1", (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100),
    ("#c6eff7", "#8fd3f0", "#4da6e8", "#1f5ddb", "#0cc43a", "#fef65c", "#f88d1c", "#ee2a1a",
     "#b8101a", "#ee3dd0"))
# Temperature in °C: 4-degree classes from -72 to 48 on a blue–green–yellow–red ramp, as
# ECMWF draws temperature (earthkit-maps styles/ecmwf/2m-temperature.yaml: -48..56 by 4).
TEMPERATURE = Scheme(
    "degC", tuple(float(t) for t in range(-72, 49, 4)),
    ("#36215f", "#3e3891", "#434eba", "#4664da", "#4778f0", "#448ffe", "#3aa3fc", "#2cb7f0",
     "#1fc9dd", "#18d9c8", "#1de7b2", "#2ff19b", "#4af880", "#69fd66", "#88ff4e", "#a1fd3d",
     "#b9f635", "#cdec34", "#dfdf37", "#eecf3a", "#f8be39", "#fea933", "#fe932a", "#fa7b1f",
     "#f36315", "#ea4e0d", "#dc3b07", "#cc2b04", "#b91e02", "#a41301", "#8b0902"))
# Dew point in °C: dry browns to moist greens (NWS SPC dew point charts), 4-degree classes.
DEWPOINT = Scheme(
    "degC", tuple(float(t) for t in range(-40, 29, 4)),
    ("#8b500a", "#a5691b", "#bf812d", "#cfa256", "#dec17b", "#ead59f", "#f6e8c3", "#f5efdc",
     "#f4f5f5", "#def0ed", "#c7eae5", "#a3dbd3", "#7fccc0", "#5bb3a8", "#35978f", "#1a7e76",
     "#01655d", "#005046"))
# Sea surface temperature in °C: 2-degree classes, -2 (sea ice) to 32 (NOAA Coral Reef Watch
# and OSTIA charts use blue-to-red ramps over this span).
SEA_SURFACE_TEMPERATURE = Scheme(
    "degC", tuple(float(t) for t in range(-2, 31, 2)),
    ("#313695", "#3e5ea8", "#5183bb", "#6ea6ce", "#90c3dd", "#b2ddeb", "#d4edf4", "#ecf8e2",
     "#fffebe", "#feeba1", "#fed283", "#fdb366", "#f88c51", "#ef633f", "#dd3d2d", "#c21c27",
     "#a50026"))
# Wind speed and gusts in km/h: Beaufort-like round classes (MET Norway's and
# Meteoalarm's wind maps), calm transparent, gale and storm in reds and purples.
WIND_KMH = Scheme(
    "km h-1", (10, 20, 30, 40, 50, 60, 75, 90, 105, 120, 150),
    ("#e3f2fd", "#b3dcf5", "#7fc4e8", "#4caf9a", "#8cc63f", "#f2e33a", "#f7a928", "#ef6a22",
     "#d7191c", "#a3147a", "#5c1a8c"))
# The same in m/s (ECMWF's and MET Norway's own unit), for a layer configured so.
WIND_MS = Scheme(
    "m s-1", (2.5, 5, 7.5, 10, 12.5, 15, 20, 25, 30, 35, 40),
    WIND_KMH.colors, name="wind_ms")
# Mean sea level pressure in hPa: 4 hPa classes as synoptic charts draw isobars.
PRESSURE = Scheme(
    "hPa", tuple(float(p) for p in range(960, 1049, 4)),
    ("#313695", "#3a51a2", "#436fb1", "#5588be", "#6ba2cb", "#83b9d8", "#9bcce2", "#b4deec",
     "#cdeaf3", "#e2f4f4", "#f1fad9", "#fffebe", "#fff1aa", "#fee294", "#fece7f", "#fdb769",
     "#fa9b58", "#f67f4b", "#ee613e", "#e14430", "#d22b27", "#bb1526", "#a50026"))
# Precipitable water in mm: 5 mm classes to 75 (earthkit-maps' BoM precipitable-water style,
# NWS SPC PW charts), yellow-green (dry) to deep blue (tropical moisture).
PRECIPITABLE_WATER = Scheme(
    "mm", tuple(float(v) for v in range(5, 76, 5)),
    ("#f1faba", "#e1f3b2", "#ceecb3", "#b0e0b6", "#89d1ba", "#69c5be", "#48b9c3", "#33a7c2",
     "#2094c0", "#1f7bb6", "#2260a9", "#234b9f", "#253494", "#172976", "#081d58"))
# Relative humidity in %: 10 % classes, dry browns to moist greens.
RELATIVE_HUMIDITY = Scheme(
    "%", tuple(float(v) for v in range(0, 91, 10)),
    ("#a5691b", "#cc9a4c", "#e5cc8f", "#f6eacb", "#f2f4f4", "#c9eae6", "#8dd2c7", "#4aa69d",
     "#147870", "#005046"))
# Cloud cover in %: greys from 10 % (clear sky transparent over the base map), as MET
# Norway's and DWD's cloud maps draw it (white-grey, not a rainbow).
CLOUD_COVER = Scheme(
    "%", tuple(float(v) for v in range(10, 91, 10)),
    ("#f3f3f3", "#e6e6e6", "#d6d6d6", "#c4c4c4", "#aeaeae", "#949494", "#7d7d7d", "#676767",
     "#515151"))
# Snow depth in cm (NOHRSC snow depth classes, blue to purple).
SNOW_DEPTH = Scheme(
    "cm", (1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300),
    ("#dae7f1", "#c5d8e9", "#b1c9e1", "#9dbad9", "#92a3cd", "#8c89c0", "#8c6eb3", "#8a55a7",
     "#873a98", "#831a83", "#6c0968", "#4d004b"))
# Snowfall in mm of water equivalent (ECMWF sf: shaded from 0.05 cm, earthkit/skinnywms).
SNOWFALL = Scheme(
    "mm", (0.1, 0.5, 1, 2, 5, 10, 20, 50),
    ("#dae7f1", "#bacfe4", "#9cb7d7", "#8c91c4", "#8c68af", "#883e9b", "#800f7b", "#4d004b"))
# River discharge in m3/s: the levels of earthkit-maps styles/river-discharge.yaml (GloFAS).
DISCHARGE = Scheme(
    "m3 s-1", (0.1, 0.5, 1, 2, 5, 10, 50, 100, 500, 1000, 2000, 5000),
    ("#d0e1f2", "#bfd8ed", "#a8cee4", "#8cc0dd", "#6fb0d7", "#56a0ce", "#3f8fc5", "#2c7cba",
     "#1a68ae", "#0c56a0", "#084387", "#08306b"))

QUANTITIES: tuple[Quantity, ...] = (
    Quantity("precipitation_rate", "Precipitation rate", (PRECIPITATION_RATE,),
             ("precipitation_flux", "rainfall_flux", "lwe_precipitation_rate", "rainfall_rate"),
             ("tprate", "prate", "crr", "lsrr", "mtpr", "pr"),
             ("precip", "rain", "qpf"), (WATER,)),
    Quantity("precipitation", "Precipitation", (PRECIPITATION_MM, PRECIPITATION_IN),
             ("precipitation_amount", "lwe_thickness_of_precipitation_amount",
              "thickness_of_rainfall_amount", "rainfall_amount"),
             ("tp", "apcp", "acpcp", "cp", "lsp", "rain", "qpf", "qpe", "pcp"),
             ("precip", "rain", "qpf", "qpe"), (WATER,), exclude=("water vapo", "precipitable")),
    Quantity("precipitable_water", "Precipitable water", (PRECIPITABLE_WATER,),
             ("atmosphere_mass_content_of_water_vapor",
              "lwe_thickness_of_atmosphere_mass_content_of_water_vapor"),
             ("tcwv", "pwat", "tcw", "prw", "pw"),
             ("precipitable", "water vapour", "water vapor"), (WATER,)),
    Quantity("snowfall", "Snowfall", (SNOWFALL,),
             ("snowfall_amount", "lwe_thickness_of_snowfall_amount"),
             ("sf", "csf", "lsf", "asnow", "weasd_acc"), ("snowfall",), (WATER,)),
    Quantity("snow_depth", "Snow depth", (SNOW_DEPTH,),
             ("surface_snow_thickness", "thickness_of_snowfall_amount"),
             ("sde", "snod", "sd"), ("snow depth", "snow_depth"), (WATER,)),
    Quantity("dewpoint", "Dew point temperature", (DEWPOINT,),
             ("dew_point_temperature",), ("2d", "d2m", "dpt", "td", "td2m"), ("dew",)),
    Quantity("sea_surface_temperature", "Sea surface temperature", (SEA_SURFACE_TEMPERATURE,),
             ("sea_surface_temperature", "sea_surface_skin_temperature"),
             ("sst", "tos", "analysed_sst"), ("sea surface temperature",)),
    Quantity("temperature", "Temperature", (TEMPERATURE,),
             ("air_temperature", "surface_temperature"),
             ("t", "2t", "t2m", "tmp", "tmax", "tmin", "mx2t", "mn2t", "skt", "qtf", "tas"),
             ("temperature",), by_units=True),
    Quantity("wind", "Wind speed", (WIND_KMH, WIND_MS),
             ("wind_speed", "wind_speed_of_gust"),
             ("10fg", "10fg3", "10fg6", "fg10", "fg10_3", "fg10_6", "i10fg", "gust", "si10",
              "10si", "ws", "wspd", "ws10"),
             ("wind", "gust"), exclude=("direction", "x_wind", "y_wind", "zonal", "meridional")),
    Quantity("pressure", "Mean sea level pressure", (PRESSURE,),
             ("air_pressure_at_mean_sea_level", "air_pressure_at_sea_level"),
             ("msl", "prmsl", "mslp", "mslma", "psl"), ("sea level pressure",)),
    Quantity("geopotential", "Geopotential height", (Scheme("dam", colormap="RdYlBu_r"),),
             ("geopotential", "geopotential_height"), ("z", "gh", "hgt", "zg"),
             ("geopotential",), (PER_GRAVITY,)),
    Quantity("relative_humidity", "Relative humidity", (RELATIVE_HUMIDITY,),
             ("relative_humidity",), ("r", "rh", "2r", "r2", "hur"), ("relative humidity",)),
    Quantity("specific_humidity", "Specific humidity", (Scheme("g kg-1", colormap="YlGnBu"),),
             ("specific_humidity",), ("q", "2sh", "spfh", "hus"), ("specific humidity",)),
    Quantity("cloud_cover", "Cloud cover", (CLOUD_COVER,),
             ("cloud_area_fraction", "cloud_area_fraction_in_atmosphere_layer",
              "low_type_cloud_area_fraction", "medium_type_cloud_area_fraction",
              "high_type_cloud_area_fraction"),
             ("tcc", "lcc", "mcc", "hcc", "tcdc", "lcdc", "mcdc", "hcdc", "clt"),
             ("cloud cover", "cloud_cover", "cloud area fraction")),
    Quantity("discharge", "Discharge", (DISCHARGE,),
             ("water_volume_transport_in_river_channel",),
             ("dis", "dis06", "dis24", "discharge", "q", "qsim"), ("discharge",)),
    Quantity("water_level", "Water level", (Scheme("m", colormap="YlGnBu"),),
             ("water_surface_height_above_reference_datum", "sea_surface_height",
              "sea_surface_height_above_geoid"),
             ("h", "wl", "stage", "zos"), ("water level", "water_level", "stage")),
)


def recognise(variable: str, attrs: dict[str, object]) -> Quantity | None:
    """Name the quantity a variable measures, or None if the library does not know it.

    Tried in order, each only among quantities the variable's units can be drawn in: the CF
    ``standard_name``, the GRIB ``shortName`` (``GRIB_shortName``, else the variable name),
    words of the ``long_name`` and variable name, and for temperature the units alone.
    """
    units = str(attrs.get("units", ""))
    standard_name = str(attrs.get("standard_name", "")).lower()
    short_name = str(attrs.get("GRIB_shortName", "")).lower()
    names = {short_name, variable.lower()} - {"", "unknown"}
    text = f"{variable} {attrs.get('long_name', '')}".lower().replace("_", " ")
    fitting = [q for q in QUANTITIES if q.accepts(units)
               and not any(word in text or word == standard_name for word in q.exclude)]
    for matches in (lambda q: standard_name in q.standard_names,
                    lambda q: bool(names & set(q.short_names)),
                    lambda q: any(_has_word(text, word) for word in q.words),
                    lambda q: q.by_units):
        found = next((q for q in fitting if matches(q)), None)
        if found is not None:
            return found
    return None


def _has_word(text: str, word: str) -> bool:
    """Whether ``word`` starts a word of ``text`` ("precip" in "total precipitation", "rain"
    not in "drainage")."""
    return re.search(rf"(?<![a-z]){re.escape(word)}", text) is not None


@dataclass(frozen=True)
class Display:
    """How to draw one variable: its scheme and ``display = stored × scale + offset``."""

    quantity: Quantity | None
    scheme: Scheme
    data_units: str
    scale: float = 1.0
    offset: float = 0.0


def scheme_for(quantity: Quantity, units: str, display_units: str | None = None) -> Display:
    """The scheme to draw ``quantity`` stored in ``units``: the one in ``display_units``
    if given, else one that keeps the stored unit (`Scheme.keep`), else the default."""
    stored = normalise_units(units)
    schemes = quantity.schemes
    chosen = next((s for s in schemes if display_units is not None
                   and normalise_units(display_units) == s.units), None) \
        or next((s for s in schemes if s.keep and s.units == stored), None) or schemes[0]
    return in_scheme(quantity, chosen, units)


def in_scheme(quantity: Quantity, scheme: Scheme, units: str) -> Display:
    """Draw ``quantity`` stored in ``units`` in ``scheme``."""
    conversion = unit_conversion(units, scheme.units, quantity.equivalences) or (1.0, 0.0)
    return Display(quantity, scheme, normalise_units(units), *conversion)


# Units an unknown quantity is shown in: temperatures in °C, pressures in hPa.
GENERIC_DISPLAY = ("degC", "hPa")


def generic_display(units: str) -> Display:
    """A continuous perceptual ramp (viridis) for a quantity the library does not know,
    in °C or hPa when the stored unit is a temperature or a pressure."""
    stored = normalise_units(units)
    for target in GENERIC_DISPLAY:
        conversion = unit_conversion(units, target)
        if conversion is not None:
            return Display(None, Scheme(target), stored, *conversion)
    return Display(None, Scheme(stored), stored)
