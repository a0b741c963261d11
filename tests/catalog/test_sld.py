"""The SLD reader: what it reads, hostile documents refused as a 400 quickly, and named
styles of the configuration from SLD files."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings

from fewsmap.catalog import Catalog
from fewsmap.catalog.sld import MAX_SLD_BYTES, parse_sld_body, parse_xml, style_from_sld_file
from fewsmap.catalog.styles import style_as_config, style_from_config
from fewsmap.errors import ConfigError, InvalidParameterValue, StyleNotDefined
from fewsmap.render.colour import palette_for
from fewsmap.render.legend import LegendText, legend_json
from fewsmap.settings import Settings
from tests.fuzz.strategies import Names, values
from tests.synthetic import lonlat_store

HEAD = '<StyledLayerDescriptor version="1.0.0" xmlns="http://www.opengis.net/sld">'
ENTRIES = ('<ColorMapEntry color="#008000" quantity="70" label="low"/>'
           '<ColorMapEntry color="#663333" quantity="256" opacity="0.5"/>')


def document(layers: str) -> str:
    return f"{HEAD}{layers}</StyledLayerDescriptor>"


def named_layer(name: str, styles: str) -> str:
    return f"<NamedLayer><Name>{name}</Name>{styles}</NamedLayer>"


def user_style(name: str, color_map: str = f"<ColorMap>{ENTRIES}</ColorMap>",
               default: bool = False) -> str:
    return (f"<UserStyle><Name>{name}</Name>"
            f"{'<IsDefault>1</IsDefault>' if default else ''}"
            "<FeatureTypeStyle><Rule><RasterSymbolizer>"
            f"{color_map}</RasterSymbolizer></Rule></FeatureTypeStyle></UserStyle>")


def test_reads_entries_labels_opacities_and_the_type() -> None:
    choice = parse_sld_body(document(named_layer("a", user_style("s"))), "a", "")
    assert choice.layer == "a" and choice.style is not None
    assert choice.style.color_map_type == "ramp"
    assert [(e.quantity, e.color, e.opacity, e.label) for e in choice.style.color_map] == [
        (70.0, "#008000", 1.0, "low"), (256.0, "#663333", 0.5, "")]


def test_picks_the_layer_and_the_style_asked_for() -> None:
    body = document(named_layer("a", user_style("first") + user_style("second", default=True))
                    + named_layer("b", user_style("other")))
    assert parse_sld_body(body, "a", "").style.name == "second"  # type: ignore[union-attr]
    assert parse_sld_body(body, "a", "first").style.name == "first"  # type: ignore[union-attr]
    assert parse_sld_body(body, "b", "").style.name == "other"  # type: ignore[union-attr]
    with pytest.raises(StyleNotDefined, match="no style named 'third'"):
        parse_sld_body(body, "a", "third")
    with pytest.raises(InvalidParameterValue, match="styles 2 layers"):
        parse_sld_body(body, None, "")


def test_a_named_style_names_a_style_of_the_service() -> None:
    body = document(named_layer("a", "<NamedStyle><Name>rain</Name></NamedStyle>"))
    choice = parse_sld_body(body, "a", "")
    assert (choice.style, choice.style_name) == (None, "rain")


@pytest.mark.parametrize(("body", "words"), [
    (document(named_layer("a", user_style("s", "<ColorMap>" + "".join(
        f'<ColorMapEntry color="#000000" quantity="{q}"/>' for q in range(128))
        + "</ColorMap>").replace("<ColorMap>", '<ColorMap type="values">'))),
     "at most 127"),
    (document(named_layer("a", user_style("s", '<ColorMap type="spline">'
                                              f'{ENTRIES}</ColorMap>'))), "type='spline'"),
    (document(named_layer("a", user_style("s", '<ColorMap><ColorMapEntry color="#000000" '
                                              'quantity="1"/></ColorMap>'))), "2 to 255"),
    (document(named_layer("a", user_style("s", "<ColorMap><se:Categorize "
                                              'xmlns:se="http://www.opengis.net/se"/>'
                                              "</ColorMap>"))), "one Value more"),
    (document(named_layer("a", user_style("s", '<ColorMap><Categorize thresholdsBelongTo='
                                              '"preceding"/></ColorMap>'))), "preceding"),
    (document(named_layer("a", user_style("s", '<ColorMap><Interpolate mode="cubic"/>'
                                              "</ColorMap>"))), "mode='cubic'"),
    (document(named_layer("a", user_style("s", "<ColorMap><Interpolate/><Interpolate/>"
                                              "</ColorMap>"))), "ColorMapEntry elements or"),
    (document(named_layer("a", user_style("s", ""))), "no ColorMap"),
    (document(named_layer("a", user_style("s", f"<ColorMap>{ENTRIES}</ColorMap>"
                                              f"<ContrastEnhancement><Normalize/>"
                                              "</ContrastEnhancement>"))), "ContrastEnhancement"),
    (document(named_layer("a", user_style("s").replace(
        "<Rule>", "<Rule><MaxScaleDenominator>5</MaxScaleDenominator>"))), "MaxScaleDenominator"),
    (document(named_layer("a", user_style("s").replace(
        "</Rule>", f"<RasterSymbolizer><ColorMap>{ENTRIES}</ColorMap></RasterSymbolizer>"
                   "</Rule>"))), "2 RasterSymbolizers"),
    (document(named_layer("a", user_style("s", '<ColorMap><ColorMapEntry color="#000000" '
                                              'quantity="${env(\'low\',3)}"/>'
                                              '<ColorMapEntry color="#000000" quantity="4"/>'
                                              "</ColorMap>"))), "expressions"),
    (document(named_layer("a", user_style("s", '<ColorMap><ColorMapEntry color="#000000" '
                                              'quantity="1e39"/><ColorMapEntry '
                                              'color="#000000" quantity="inf"/></ColorMap>'))),
     "float32"),
    (document(named_layer("a", user_style("s", f"<ChannelSelection><RedChannel/>"
                                              f"</ChannelSelection><ColorMap>{ENTRIES}"
                                              "</ColorMap>"))), "one band"),
    (document("<UserLayer><Name>a</Name><InlineFeature/></UserLayer>"), "InlineFeature"),
    (document(""), "no NamedLayer"),
    ("<StyledLayerDescriptor/>", "root element"),
    ("", "not well-formed"),
    ("\x00", "not well-formed"),
])
def test_documents_that_cannot_be_drawn_are_refused(body: str, words: str) -> None:
    with pytest.raises(InvalidParameterValue, match=words):
        parse_sld_body(body, "a", "")


HOSTILE = {
    "external entity (XXE)": (
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        f'{HEAD}<NamedLayer><Name>&xxe;</Name></NamedLayer></StyledLayerDescriptor>'),
    "parameter entity": (
        '<!DOCTYPE d [<!ENTITY % p SYSTEM "http://169.254.169.254/latest"> %p;]><d/>'),
    "external DTD": '<!DOCTYPE d SYSTEM "http://example.org/evil.dtd"><d/>',
    "billion laughs": (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
                  for i in range(1, 10))
        + ']><lolz>&lol9;</lolz>'),
    "deep nesting": "<a>" * 100_000 + "</a>" * 100_000,
    "many elements": "<a>" + "<b/>" * 20_000 + "</a>",
    "huge": f"{HEAD}<!--{'x' * MAX_SLD_BYTES}--></StyledLayerDescriptor>",
    "undeclared entity": f"{HEAD}&undefined;</StyledLayerDescriptor>",
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_documents_are_refused_before_any_harm(name: str) -> None:
    started = time.perf_counter()
    with pytest.raises(InvalidParameterValue, match="SLD_BODY"):
        parse_xml(HOSTILE[name])
    assert time.perf_counter() - started < 1.0  # refused, not expanded or walked


def test_a_doctype_is_refused_even_when_harmless() -> None:
    with pytest.raises(InvalidParameterValue, match="DOCTYPE"):
        parse_xml("<!DOCTYPE StyledLayerDescriptor><StyledLayerDescriptor/>")


NAMES = Names(layers=("a", "b"), groups=(), stores=(), runs=(), times=(), store_keys=(),
              secret_path="/etc/passwd")


@settings(max_examples=300, deadline=None, database=None)
@given(body=values(NAMES)["sld"])
def test_any_body_is_drawn_or_refused_as_a_client_error(body: str) -> None:
    """The fuzzer's SLD bodies: each is a style whose palette and legend work, or a 400."""
    try:
        choice = parse_sld_body(body, "a", "")
    except (InvalidParameterValue, StyleNotDefined) as exc:
        assert exc.http_status == 400 and str(exc)
        return
    if choice.style is not None:
        palette = palette_for(choice.style, None, None)
        field = np.array([-1e38, -300, 0, 0.1, 5, 150, 280, 1e38, np.nan], dtype=np.float32)
        rgba = palette.rgba(palette.indices(field))
        assert rgba[-1, 3] == 0  # missing data is never drawn
        legend = legend_json(palette, LegendText(units="mm"))
        assert len(legend["legend"]) == len(choice.style.color_map)


def test_a_configured_style_reads_an_sld_file(tmp_path: Path) -> None:
    """``[[styles]] sld = "<file>"``: a named style of the service from an SLD file."""
    lonlat_store(tmp_path / "stores" / "grid.zarr")
    (tmp_path / "styles").mkdir()
    (tmp_path / "styles" / "bands.sld").write_text(document(named_layer(
        "anything", user_style("first") + user_style("second", default=True))))
    config = tmp_path / "fewsmap.toml"
    config.write_text("""
[[styles]]
id = "bands"
sld = "styles/bands.sld"
units = "degrees_east"

[[styles]]
id = "first-bands"
sld = "styles/bands.sld"
style = "first"
title = "First"

[[layers]]
id = "longitude"
store = "grid"
variable = "lon"
styles = ["bands", "first-bands"]
""")
    catalog = Catalog(Settings(stores_dir=tmp_path / "stores", config_file=config))
    layer = catalog.layer("longitude")
    assert [(s.name, s.title, s.units) for s in layer.styles] == [
        ("bands", "second", "degrees_east"), ("first-bands", "First", "")]
    assert layer.default_style.kind == "color_map"
    assert [e.quantity for e in layer.default_style.color_map] == [70.0, 256.0]
    # JSON capabilities publish it as a table that reads back the same (Python client).
    table = json.loads(json.dumps(style_as_config(layer.default_style)))
    assert style_from_config(table) == layer.default_style


@pytest.mark.parametrize(("content", "words"), [
    (None, "cannot read"),
    (document(named_layer("a", user_style("s", "<ColorMap/>"))), "takes 2 to 255 entries"),
    (document(named_layer("a", "<NamedStyle><Name>x</Name></NamedStyle>")), "UserStyle"),
    ('<!DOCTYPE d SYSTEM "http://example.org/x.dtd"><d/>', "DOCTYPE"),
])
def test_a_bad_sld_file_is_a_config_error_naming_it(tmp_path: Path, content: str | None,
                                                     words: str) -> None:
    if content is not None:
        (tmp_path / "bad.sld").write_text(content)
    with pytest.raises(ConfigError, match=f"bad.sld.*{words}|{words}.*bad.sld"):
        style_from_sld_file({"id": "bad", "sld": "bad.sld"}, tmp_path)
