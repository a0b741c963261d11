"""SLD 1.0 or SE 1.1 raster styles (a client's SLD_BODY, a configured file) read safely.

What is read is what GeoServer draws a single-band raster with: a NamedLayer (or a UserLayer
naming a layer) holding a UserStyle (or a NamedStyle naming one of ours), its
FeatureTypeStyle or CoverageStyle, Rules and one RasterSymbolizer with an Opacity and a
ColorMap of ``ColorMapEntry`` elements (GeoServer's ``type`` ramp, intervals or values) or of
one SE 1.1 ``Categorize`` or ``Interpolate`` function.
Elements in the SLD namespace and the SE namespace are both accepted wherever one of them is
(QGIS writes ``se:ColorMapEntry`` inside SLD 1.1 documents).

The document comes from an anonymous client, so the parser refuses any DOCTYPE (no DTD, no
entity can be declared, so neither external entities nor entity expansion exist), and the
body's size, its nesting depth, its number of elements and of ColorMap entries are bounded.
Whatever cannot be drawn as written is refused with a 400 naming it, never ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn
from xml.etree.ElementTree import Element, TreeBuilder
from xml.parsers import expat

from fewsmap.catalog.styles import (
    FLOAT32_MAX,
    MAX_COLOR_MAP_ENTRIES,
    ColorMapEntry,
    ColorMapType,
    Style,
    color_map_problem,
)
from fewsmap.errors import ConfigError, FewsmapError, InvalidParameterValue, StyleNotDefined
from fewsmap.settings import StyleTable

SLD_NS = "http://www.opengis.net/sld"
SE_NS = "http://www.opengis.net/se"
MAX_SLD_BYTES = 65_536
MAX_DEPTH = 32
MAX_ELEMENTS = 2_048
MAX_LABEL_CHARS = 200
COLOR_MAP_TYPES: tuple[ColorMapType, ...] = ("ramp", "intervals", "values")
# RasterSymbolizer children that describe rather than draw, or that GeoServer itself does
# not implement (its SLD reference marks ShadedRelief, OverlapBehavior and ImageOutline).
NOT_DRAWN = {"Name", "Description", "Title", "Abstract", "Geometry", "VendorOption",
             "ShadedRelief", "OverlapBehavior", "ImageOutline"}


@dataclass(frozen=True)
class SldChoice:
    """What an SLD_BODY asks to draw: a layer, in its own style or a named style of ours."""

    layer: str
    style: Style | None  # a UserStyle of the document
    style_name: str = ""  # a NamedStyle (a style the layer offers) when ``style`` is None


def parse_sld_body(text: str, layer: str | None, style_name: str) -> SldChoice:
    """Read the style an SLD_BODY gives ``layer`` (or its one layer when ``layer`` is None).

    ``style_name`` (from STYLES; empty for the default) picks a UserStyle or NamedStyle of
    the layer by name; without one the UserStyle marked IsDefault, else the first, is drawn.

    Raises
    ------
    InvalidParameterValue
        If the document is not safe, well-formed SLD or cannot be drawn as written.
    StyleNotDefined
        If it has no style for the layer, or none named ``style_name``.
    """
    root = parse_xml(text)
    if root.tag != f"{{{SLD_NS}}}StyledLayerDescriptor":
        _refuse(f"the root element is {_shown(root.tag)}; an SLD's is StyledLayerDescriptor "
                f"in the namespace {SLD_NS}")
    named = _layer_element(root, layer)
    return _style_choice(named, _name(named), style_name)


def style_from_sld_file(entry: StyleTable | dict[str, Any], folder: Path) -> Style:
    """Build a named style from a ``[[styles]]`` table naming an SLD file: ``sld`` (a path,
    relative to ``folder``, the configuration file's) and optionally ``style`` (a UserStyle
    of its one NamedLayer; else its default one), ``title`` and ``units``.

    Raises
    ------
    ConfigError
        If the file cannot be read, or it is not an SLD that draws.
    """
    table = entry if isinstance(entry, StyleTable) else StyleTable.model_validate(entry)
    path = folder / str(table.sld)
    try:
        choice = parse_sld_body(path.read_text(encoding="utf-8"), None, table.style or "")
    except (OSError, UnicodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    except FewsmapError as exc:
        raise ConfigError(f"{path}: {str(exc).removeprefix('SLD_BODY: ')}") from exc
    if choice.style is None:
        raise ConfigError(f"{path} names a style ({choice.style_name!r}) rather than "
                          "defining one (a UserStyle)")
    return replace(choice.style, name=table.id, title=table.title or choice.style.title,
                   units=table.units)


def parse_xml(text: str) -> Element:
    """Parse a client's XML document with expat, refusing DTDs and bounding its size.

    Raises
    ------
    InvalidParameterValue
        If it is too big, too deep, has too many elements, a DOCTYPE, or is not well-formed.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_SLD_BYTES:
        _refuse(f"the document is {size} bytes; at most {MAX_SLD_BYTES} are read")
    builder = TreeBuilder()
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    depth = elements = 0

    def start(name: str, attributes: dict[str, str]) -> None:
        nonlocal depth, elements
        depth, elements = depth + 1, elements + 1
        if depth > MAX_DEPTH:
            _refuse(f"elements nest deeper than {MAX_DEPTH} levels")
        if elements > MAX_ELEMENTS:
            _refuse(f"the document has more than {MAX_ELEMENTS} elements")
        builder.start(_qualified(name), {_qualified(k): v for k, v in attributes.items()})

    def end(name: str) -> None:
        nonlocal depth
        depth -= 1
        builder.end(_qualified(name))

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = builder.data
    # No DTD, hence no entity: XXE and entity expansion ("billion laughs") cannot start.
    parser.StartDoctypeDeclHandler = _refusal("a DOCTYPE (DTDs and entities are not read)")
    parser.EntityDeclHandler = _refusal("an entity declaration")
    parser.ExternalEntityRefHandler = _refusal("an external entity")
    try:
        parser.Parse(text, True)
    except expat.ExpatError as exc:
        _refuse(f"not well-formed XML: {expat.ErrorString(exc.code)} at line {exc.lineno}, "
                f"column {exc.offset}")
    except (RecursionError, MemoryError) as exc:  # bounded above; kept as a 400 regardless
        _refuse(f"the document cannot be read ({type(exc).__name__})")
    return builder.close()


def style_from_symbolizer(symbolizer: Element, name: str, title: str) -> Style:
    """Build a style from a RasterSymbolizer (SLD 1.0 or SE 1.1).

    Raises
    ------
    InvalidParameterValue
        Naming the element or attribute that cannot be drawn as written.
    """
    opacity = 1.0
    color_map: Element | None = None
    for child in symbolizer:
        local = _local(child)
        if local == "Opacity":
            opacity = _number(child.text or "", "RasterSymbolizer Opacity")
        elif local == "ColorMap":
            color_map = child
        elif local == "ChannelSelection":
            _check_channels(child)
        elif local == "ContrastEnhancement":
            if len(child) or (child.text or "").strip():
                _refuse("ContrastEnhancement is not offered; a ColorMap colours the values "
                        "as they are")
        elif local not in NOT_DRAWN:
            _refuse(f"RasterSymbolizer holds {_shown(child.tag)}, which is not offered")
    if color_map is None:
        _refuse("the RasterSymbolizer has no ColorMap (grey-scale drawing is not offered)")
    kind, parsed = _color_map(color_map)
    limit = MAX_COLOR_MAP_ENTRIES[kind]
    if len(parsed) > limit:
        _refuse(f"the ColorMap has {len(parsed)} entries; a ColorMap of type {kind} takes "
                f"at most {limit}")
    problem = color_map_problem(kind, parsed, opacity)
    if problem:
        _refuse(problem)
    return Style(name=name, title=title, kind="color_map", color_map_type=kind,
                 color_map=parsed, opacity=opacity)


def _color_map(color_map: Element) -> tuple[ColorMapType, tuple[ColorMapEntry, ...]]:
    """A ColorMap's type and entries: GeoServer's ColorMapEntry list, or SE 1.1's
    Categorize (as intervals) or Interpolate (as a ramp) function."""
    children = list(color_map)
    functions = [child for child in children if _local(child) in ("Categorize", "Interpolate")]
    if functions and len(children) == 1:
        if _local(functions[0]) == "Categorize":
            return "intervals", _categorize(functions[0])
        return "ramp", _interpolate(functions[0])
    others = [_shown(child.tag) for child in children if _local(child) != "ColorMapEntry"]
    if others:
        _refuse(f"the ColorMap holds {others[0]}; it holds ColorMapEntry elements or one SE "
                "Categorize or Interpolate")
    kind = color_map.get("type", "ramp").strip().lower()
    for offered in COLOR_MAP_TYPES:
        if kind == offered:
            return offered, tuple(_entry(child) for child in children)
    _refuse(f"ColorMap type={kind[:20]!r}; offered: {', '.join(COLOR_MAP_TYPES)}")


def _categorize(function: Element) -> tuple[ColorMapEntry, ...]:
    """SE 1.1 Categorize (§11.6.3): a Value below the first Threshold, then one from each
    Threshold up (thresholds belong to the succeeding interval), the last one without end.

    As GeoServer intervals: each colour up to the next threshold, the last to float32's
    largest value.
    """
    belongs = function.get("thresholdsBelongTo", "succeeding")
    if belongs != "succeeding":
        _refuse(f"Categorize thresholdsBelongTo={belongs[:20]!r}; offered: succeeding")
    colours = [_colour(_parameter(c), "Categorize Value")
               for c in function if _local(c) == "Value"]
    thresholds = [_number(_parameter(c), "Categorize Threshold")
                  for c in function if _local(c) == "Threshold"]
    if len(colours) != len(thresholds) + 1:
        _refuse(f"Categorize has {len(colours)} Values for {len(thresholds)} Thresholds; it "
                "needs one Value more than Thresholds")
    uppers = [*thresholds, FLOAT32_MAX]
    return tuple(ColorMapEntry(upper, colour) for upper, colour in zip(uppers, colours,
                                                                       strict=True))


def _interpolate(function: Element) -> tuple[ColorMapEntry, ...]:
    """SE 1.1 Interpolate (§11.6.4), linear in colour: a ramp through its points."""
    mode, method = function.get("mode", "linear"), function.get("method", "color")
    if (mode, method) != ("linear", "color"):
        _refuse(f"Interpolate mode={mode[:20]!r} method={method[:20]!r}; offered: mode "
                "linear, method color")
    return tuple(
        ColorMapEntry(_number(_child_text(point, "Data") or "", "InterpolationPoint Data"),
                      _colour(_parameter(_child(point, "Value")), "InterpolationPoint Value"))
        for point in function if _local(point) == "InterpolationPoint")


def _parameter(element: Element | None) -> str:
    """An SE parameter value: its text, or that of an ogc:Literal inside it."""
    if element is None:
        return ""
    literal = next((child for child in element if child.tag.endswith("}Literal")), None)
    return ((literal if literal is not None else element).text or "").strip()


def _child(element: Element, local: str) -> Element | None:
    return next((child for child in element if _local(child) == local), None)


def _layer_element(root: Element, layer: str | None) -> Element:
    """The NamedLayer (or UserLayer) of ``layer``, or the document's one layer."""
    layers = [child for child in root if _local(child) in ("NamedLayer", "UserLayer")]
    if not layers:
        _refuse("the document has no NamedLayer")
    names = [_name(element) for element in layers]
    if layer is None:
        if len(layers) > 1:
            _refuse(f"the document styles {len(layers)} layers ({_listed(names)}); GetMap "
                    "draws one: name it in LAYERS")
        chosen = layers[0]
    else:
        matching = [element for element, name in zip(layers, names, strict=True)
                    if name == layer]
        if not matching:
            raise StyleNotDefined(f"SLD_BODY has no NamedLayer for layer {layer[:80]!r}; it "
                                  f"styles {_listed(names)}")
        chosen = matching[0]
    inline = [_shown(child.tag) for child in chosen
              if _local(child) in ("InlineFeature", "RemoteOWS")]
    if inline:
        _refuse(f"{inline[0]} (data sent with the style) is not offered; style a layer of "
                "the service by its name")
    return chosen


def _style_choice(layer_element: Element, layer: str, style_name: str) -> SldChoice:
    """The UserStyle or NamedStyle the request draws ``layer`` with."""
    styles = [child for child in layer_element
              if _local(child) in ("UserStyle", "NamedStyle")]
    if not styles:
        raise StyleNotDefined(f"SLD_BODY: NamedLayer {layer[:80]!r} has no UserStyle or "
                              "NamedStyle")
    if style_name:
        chosen = [style for style in styles if _name(style) == style_name]
        if not chosen:
            raise StyleNotDefined(
                f"SLD_BODY: NamedLayer {layer[:80]!r} has no style named "
                f"{style_name[:60]!r}; it has {_listed([_name(s) for s in styles])}")
    else:
        chosen = [style for style in styles
                  if (_child_text(style, "IsDefault") or "").strip() in ("1", "true")]
    style = (chosen or styles)[0]
    if _local(style) == "NamedStyle":
        return SldChoice(layer, None, _name(style))
    symbolizers = [symbolizer
                   for feature_style in style
                   if _local(feature_style) in ("FeatureTypeStyle", "CoverageStyle")
                   for rule in feature_style if _local(rule) == "Rule"
                   for symbolizer in _rule_symbolizers(rule)]
    if len(symbolizers) != 1:
        _refuse(f"UserStyle {_name(style)[:60]!r} has {len(symbolizers)} RasterSymbolizers; "
                "a layer is drawn by one")
    name = _name(style) or "sld"
    title = _child_text(style, "Title") or name
    return SldChoice(layer, style_from_symbolizer(symbolizers[0], name, title[:200]))


def _rule_symbolizers(rule: Element) -> list[Element]:
    """A Rule's RasterSymbolizers; what would choose where a rule applies is refused."""
    for child in rule:
        local = _local(child)
        if local in ("Filter", "ElseFilter", "MinScaleDenominator", "MaxScaleDenominator"):
            _refuse(f"Rule {local} is not offered: a raster layer's rule applies everywhere")
        if local.endswith("Symbolizer") and local != "RasterSymbolizer":
            _refuse(f"a raster layer is drawn by a RasterSymbolizer, not a {local}")
    return [child for child in rule if _local(child) == "RasterSymbolizer"]


def _check_channels(selection: Element) -> None:
    """Allow the one band a forecast field has: a GrayChannel of source channel 1."""
    for channel in selection:
        if _local(channel) != "GrayChannel":
            _refuse(f"ChannelSelection {_local(channel)}: a forecast field has one band "
                    "(GrayChannel)")
        source = (_child_text(channel, "SourceChannelName") or "1").strip()
        if source != "1":
            _refuse(f"SourceChannelName {source[:20]!r}: a forecast field has one band, 1")


def _entry(element: Element) -> ColorMapEntry:
    color = (element.get("color") or "").strip()
    quantity = element.get("quantity")
    if quantity is None:
        _refuse(f"a ColorMapEntry (color {color[:20]!r}) has no quantity")
    opacity = element.get("opacity")
    return ColorMapEntry(
        quantity=_number(quantity, "ColorMapEntry quantity"),
        color=_colour(color, "ColorMapEntry color"),
        opacity=1.0 if opacity is None else _number(opacity, "ColorMapEntry opacity"),
        label=(element.get("label") or "")[:MAX_LABEL_CHARS])


def _colour(text: str, what: str) -> str:
    """``#rrggbb`` from ``#RRGGBB`` or ``0xRRGGBB`` (GeoTools reads both)."""
    text = text.strip()
    digits = text.lower().removeprefix("#") if text.startswith("#") else \
        text.lower().removeprefix("0x")
    if len(digits) != 6 or any(c not in "0123456789abcdef" for c in digits):
        _refuse(f"{what}={text[:20]!r} must be #RRGGBB")
    return f"#{digits}"


def _number(text: str, what: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        _refuse(f"{what} {text.strip()[:40]!r} is not a number (expressions are not "
                "offered)")


def _name(element: Element) -> str:
    return (_child_text(element, "Name") or "").strip()


def _child_text(element: Element, local: str) -> str | None:
    child = _child(element, local)
    return None if child is None else child.text or ""


def _local(element: Element) -> str:
    """The local name of an element in the SLD or SE namespace; others are named in full."""
    namespace, _, local = element.tag[1:].rpartition("}")
    return local if namespace in (SLD_NS, SE_NS) and element.tag.startswith("{") \
        else element.tag


def _qualified(name: str) -> str:
    """expat's ``namespace local`` as ElementTree's ``{namespace}local``."""
    namespace, _, local = name.rpartition(" ")
    return f"{{{namespace}}}{local}" if namespace else local


def _shown(tag: str) -> str:
    return repr(tag[:120])


def _listed(names: list[str]) -> str:
    shown = ", ".join(repr(n[:60]) for n in names[:10])
    return shown + (" …" if len(names) > 10 else "") if names else "no named layer"


def _refusal(what: str) -> Callable[..., NoReturn]:
    def refuse(*_: object) -> NoReturn:
        _refuse(f"the document holds {what}")
    return refuse


def _refuse(problem: str) -> NoReturn:
    raise InvalidParameterValue(f"SLD_BODY: {problem}")
