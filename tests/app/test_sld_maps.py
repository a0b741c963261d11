"""SLD_BODY through the real app: GeoServer's documented ColorMap examples, pixel by pixel.

A store holds one row of known values, one grid cell per pixel of the requested map, so
each pixel of the drawn PNG is the colour the SLD gives one value. The examples and the
colours they promise are GeoServer's (SLD cookbook "Rasters", SLD reference
"RasterSymbolizer"); the boundary rules (which side of a quantity belongs to which entry)
are GeoTools' SLDColorMapBuilder, which draws them.
"""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import quote
from xml.etree import ElementTree

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from fewsmap.app.server import create_app
from fewsmap.settings import Settings
from tests.asgi_client import AppClient
from tests.fuzz.strategies import Names, values
from tests.synthetic import field_store, lonlat_grid

# The values of the cells, west to east; the last is missing data.
VALUES = (50.0, 70.0, 100.0, 149.5, 150.0, 163.0, 200.0, 255.9, 256.0, 300.0, 0.1, -300.0,
          0.0, 51.0, np.nan)
LAYER = "known.lon"
GETMAP = {"service": "WMS", "version": "1.3.0", "request": "GetMap", "layers": LAYER,
          "styles": "", "crs": "CRS:84", "bbox": f"-0.5,-0.5,{len(VALUES) - 0.5},1.5",
          "width": str(len(VALUES)), "height": "2", "format": "image/png"}
LEGEND = {"service": "WMS", "version": "1.3.0", "request": "GetLegendGraphic",
          "layer": LAYER}
OGC = "{http://www.opengis.net/ogc}"
GREEN, BROWN, CLEAR = (0, 128, 0, 255), (102, 51, 51, 255), (0, 0, 0, 0)


def sld(color_map: str, opacity: str = "", layer: str = LAYER, version: str = "1.0.0") -> str:
    """An SLD 1.0.0 document (GeoServer's cookbook examples with their header)."""
    return f"""<?xml version="1.0" encoding="ISO-8859-1"?>
<StyledLayerDescriptor version="{version}" xmlns="http://www.opengis.net/sld"
    xmlns:ogc="http://www.opengis.net/ogc" xmlns:xlink="http://www.w3.org/1999/xlink"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <NamedLayer>
    <Name>{layer}</Name>
    <UserStyle>
      <Title>SLD Cook Book: raster</Title>
      <FeatureTypeStyle>
        <Rule>
          <RasterSymbolizer>
            {opacity}
            {color_map}
          </RasterSymbolizer>
        </Rule>
      </FeatureTypeStyle>
    </UserStyle>
  </NamedLayer>
</StyledLayerDescriptor>"""


TWO_COLOUR = """<ColorMap>
  <ColorMapEntry color="#008000" quantity="70" />
  <ColorMapEntry color="#663333" quantity="256" />
</ColorMap>"""
DISCRETE = """<ColorMap type="intervals">
  <ColorMapEntry color="#008000" quantity="150" />
  <ColorMapEntry color="#663333" quantity="256" />
</ColorMap>"""
# The SLD reference's example entries, with its ramp, values and intervals maps.
REFERENCE_ENTRIES = """
  <ColorMapEntry color="#EEBE2F" quantity="-300" label="label" opacity="0"/>
  <ColorMapEntry color="#2851CC" quantity="0" label="values" opacity="1"/>
  <ColorMapEntry color="#211F1F" quantity="50" label="label" opacity="1"/>
  <ColorMapEntry color="#EE0F0F" quantity="100" label="label" opacity="1"/>
  <ColorMapEntry color="#AAAAAA" quantity="200" label="label" opacity="1"/>
  <ColorMapEntry color="#6FEE4F" quantity="250" label="label" opacity="1"/>
  <ColorMapEntry color="#3ECC1B" quantity="300" label="label" opacity="1"/>
  <ColorMapEntry color="#886363" quantity="350" label="label" opacity="1"/>
  <ColorMapEntry color="#5194CC" quantity="400" label="label" opacity="1"/>
  <ColorMapEntry color="#2C58DD" quantity="450" label="label" opacity="1"/>
  <ColorMapEntry color="#DDB02C" quantity="600" label="label" opacity="1"/>"""


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> AppClient:
    stores = tmp_path_factory.mktemp("sld") / "stores"
    lon = np.arange(float(len(VALUES)))
    grid = lonlat_grid(np.array([1.0, 0.0]), lon)
    values = np.array([VALUES, VALUES])
    field_store(Path(stores / "known.zarr"), grid, values, values)
    return AppClient(create_app(Settings(stores_dir=stores)))


def draw(client: AppClient, **query: str) -> dict[float, tuple[int, ...]]:
    """GetMap with ``query``: the RGBA pixel of each value (NaN: the missing cell)."""
    response = client.get("/wms", params={**GETMAP, **query})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    image = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGBA"))
    return {value: tuple(int(c) for c in image[0, i]) for i, value in enumerate(VALUES)}


def near(pixel: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 1) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))


def refusal(response: httpx.Response) -> tuple[str | None, str]:
    """The code and message of an OGC ServiceExceptionReport (1.3.0 or 1.1.1) answer."""
    report = ElementTree.fromstring(response.content)
    exception = next((e for e in report if e.tag.endswith("ServiceException")), None)
    assert exception is not None, response.text
    return exception.get("code"), exception.text or ""


def test_two_colour_gradient_interpolates_and_clamps_as_the_cookbook_says(
        client: AppClient) -> None:
    pixels = draw(client, sld_body=sld(TWO_COLOUR))
    assert pixels[70.0] == GREEN and pixels[256.0] == BROWN
    # "a value of 163 (the midpoint) will be colored as the midpoint ... approximately
    # #335717": halfway from (0, 128, 0) to (102, 51, 51) is (51, 89.5, 25.5).
    assert near(pixels[163.0], (51, 89, 25, 255), tolerance=1)
    assert near(pixels[163.0], (0x33, 0x57, 0x17, 255), tolerance=3)
    # Below the first entry its colour, above the last the last one's (cookbook,
    # "Three-color gradient"); missing data stays transparent.
    assert pixels[50.0] == GREEN and pixels[300.0] == BROWN
    assert pixels[np.nan][3] == 0


def test_transparent_gradient_draws_every_colour_at_the_symbolizer_opacity(
        client: AppClient) -> None:
    pixels = draw(client, sld_body=sld(TWO_COLOUR, "<Opacity>0.3</Opacity>"))
    alpha = round(0.3 * 255)
    assert pixels[70.0] == (*GREEN[:3], alpha) and pixels[300.0] == (*BROWN[:3], alpha)
    assert near(pixels[163.0], (51, 89, 25, alpha))


def test_alpha_channel_interpolates_opacity_too(client: AppClient) -> None:
    pixels = draw(client, sld_body=sld("""<ColorMap>
        <ColorMapEntry color="#008000" quantity="70" />
        <ColorMapEntry color="#008000" quantity="256" opacity="0"/></ColorMap>"""))
    assert pixels[70.0] == GREEN
    assert pixels[163.0][:3] == GREEN[:3] and abs(pixels[163.0][3] - 127.5) <= 1.5
    assert pixels[256.0][3] == 0 and pixels[300.0][3] == 0  # at and above: opacity 0


def test_three_colour_gradient_colours_values_beyond_its_ends(client: AppClient) -> None:
    pixels = draw(client, sld_body=sld("""<ColorMap>
        <ColorMapEntry color="#0000FF" quantity="150" />
        <ColorMapEntry color="#FFFF00" quantity="200" />
        <ColorMapEntry color="#FF0000" quantity="250" /></ColorMap>"""))
    assert pixels[70.0] == pixels[149.5] == (0, 0, 255, 255)  # "below ... blue"
    assert pixels[200.0] == (255, 255, 0, 255)
    assert pixels[256.0] == pixels[300.0] == (255, 0, 0, 255)  # "above ... red"


def test_discrete_colours_take_each_quantity_as_the_upper_bound(client: AppClient) -> None:
    pixels = draw(client, sld_body=sld(DISCRETE))
    # "colors all values less than 150 to dark green ... less than 256 but greater than or
    # equal to 150 to dark brown"
    assert pixels[50.0] == pixels[149.5] == GREEN
    assert pixels[150.0] == pixels[255.9] == BROWN
    # From the last quantity up no interval holds a value: not drawn (GeoTools).
    assert pixels[256.0] == pixels[300.0] == CLEAR


def test_values_draws_only_the_quantities(client: AppClient) -> None:
    pixels = draw(client, sld_body=sld(f'<ColorMap type="values">{REFERENCE_ENTRIES}'
                                       '</ColorMap>'))
    assert pixels[0.0] == (0x28, 0x51, 0xCC, 255)
    assert pixels[50.0] == (0x21, 0x1F, 0x1F, 255)
    assert pixels[100.0] == (0xEE, 0x0F, 0x0F, 255)
    assert pixels[300.0] == (0x3E, 0xCC, 0x1B, 255)
    assert pixels[-300.0][3] == 0  # an entry of opacity 0
    for other in (51.0, 70.0, 163.0, 256.0, 0.1):  # "Pixels with other values are not
        assert pixels[other][3] == 0                # rendered"


def test_values_match_float32_fields(client: AppClient) -> None:
    """A quantity such as 0.1 names the float32 value the field holds."""
    pixels = draw(client, sld_body=sld("""<ColorMap type="values">
        <ColorMapEntry color="#ff0000" quantity="0.1"/></ColorMap>"""))
    assert pixels[0.1] == (255, 0, 0, 255)
    assert pixels[0.0][3] == 0


def test_reference_ramp_hides_values_at_and_below_a_transparent_first_entry(
        client: AppClient) -> None:
    pixels = draw(client, sld_body=sld(f'<ColorMap type="ramp">{REFERENCE_ENTRIES}'
                                       '</ColorMap>'))
    assert pixels[-300.0][3] == 0  # "pixels with values of -300 and below will not be
    assert pixels[0.0] == (0x28, 0x51, 0xCC, 255)  # rendered"
    assert pixels[50.0] == (0x21, 0x1F, 0x1F, 255)
    assert pixels[300.0] == (0x3E, 0xCC, 0x1B, 255)


def test_reference_intervals(client: AppClient) -> None:
    pixels = draw(client, sld_body=sld(f'<ColorMap type="intervals" extended="true">'
                                       f'{REFERENCE_ENTRIES}</ColorMap>'))
    assert pixels[-300.0] == (0x28, 0x51, 0xCC, 255)  # [-300, 0): the entry of 0
    assert pixels[0.0] == pixels[0.1] == (0x21, 0x1F, 0x1F, 255)  # [0, 50)
    assert pixels[50.0] == pixels[70.0] == (0xEE, 0x0F, 0x0F, 255)  # [50, 100)
    assert pixels[256.0] == (0x3E, 0xCC, 0x1B, 255)  # [250, 300)


def test_se_1_1_coverage_style_as_qgis_writes_it(client: AppClient) -> None:
    body = f"""<StyledLayerDescriptor version="1.1.0" xmlns="http://www.opengis.net/sld"
        xmlns:se="http://www.opengis.net/se" xmlns:ogc="http://www.opengis.net/ogc">
      <NamedLayer><se:Name>{LAYER}</se:Name>
        <UserStyle><se:Name>qgis</se:Name>
          <se:CoverageStyle><se:Rule><se:RasterSymbolizer>
            <se:Opacity>1</se:Opacity>
            <se:ChannelSelection><se:GrayChannel>
              <se:SourceChannelName>1</se:SourceChannelName></se:GrayChannel>
            </se:ChannelSelection>
            <se:ColorMap type="intervals">
              <se:ColorMapEntry label="low" quantity="150" color="#008000"/>
              <se:ColorMapEntry label="high" quantity="256" color="#663333"/>
            </se:ColorMap>
          </se:RasterSymbolizer></se:Rule></se:CoverageStyle>
        </UserStyle></NamedLayer></StyledLayerDescriptor>"""
    pixels = draw(client, sld_body=body)
    assert pixels[100.0] == GREEN and pixels[200.0] == BROWN and pixels[300.0] == CLEAR


SE_DOCUMENT = """<StyledLayerDescriptor version="1.1.0" xmlns="http://www.opengis.net/sld"
    xmlns:se="http://www.opengis.net/se" xmlns:ogc="http://www.opengis.net/ogc">
  <NamedLayer><se:Name>known.lon</se:Name><UserStyle><se:CoverageStyle><se:Rule>
    <se:RasterSymbolizer><se:ColorMap>{function}</se:ColorMap></se:RasterSymbolizer>
  </se:Rule></se:CoverageStyle></UserStyle></NamedLayer></StyledLayerDescriptor>"""


def test_se_categorize_colours_from_each_threshold_up(client: AppClient) -> None:
    pixels = draw(client, sld_body=SE_DOCUMENT.format(function="""
        <se:Categorize fallbackValue="#000000"><se:LookupValue>Rasterdata</se:LookupValue>
          <se:Value>#008000</se:Value><se:Threshold>150</se:Threshold>
          <se:Value><ogc:Literal>#663333</ogc:Literal></se:Value>
        </se:Categorize>"""))
    # SE 1.1 §11.6.3: thresholds belong to the succeeding interval; the last is open.
    assert pixels[50.0] == pixels[149.5] == GREEN
    assert pixels[150.0] == pixels[256.0] == pixels[300.0] == BROWN


def test_se_interpolate_is_the_two_colour_gradient(client: AppClient) -> None:
    body = SE_DOCUMENT.format(function="""
        <se:Interpolate mode="linear" method="color" fallbackValue="#000000">
          <se:LookupValue>Rasterdata</se:LookupValue>
          <se:InterpolationPoint><se:Data>70</se:Data><se:Value>#008000</se:Value>
          </se:InterpolationPoint>
          <se:InterpolationPoint><se:Data>256</se:Data><se:Value>#663333</se:Value>
          </se:InterpolationPoint>
        </se:Interpolate>""")
    assert draw(client, sld_body=body) == draw(client, sld_body=sld(TWO_COLOUR))


def test_without_layers_the_sld_names_the_layer(client: AppClient) -> None:
    query = {k: v for k, v in GETMAP.items() if k != "layers"}
    response = client.get("/wms", params={**query, "sld_body": sld(DISCRETE)})
    assert response.status_code == 200, response.text
    assert response.content == client.get(
        "/wms", params={**GETMAP, "sld_body": sld(DISCRETE)}).content


def test_a_named_style_in_the_sld_draws_the_layers_own_style(client: AppClient) -> None:
    body = f"""<StyledLayerDescriptor version="1.0.0" xmlns="http://www.opengis.net/sld">
      <NamedLayer><Name>{LAYER}</Name><NamedStyle><Name>default</Name></NamedStyle>
      </NamedLayer></StyledLayerDescriptor>"""
    assert draw(client, sld_body=body) == draw(client)


def test_the_default_drawing_is_not_the_sld_one(client: AppClient) -> None:
    """The defect of issue #16: SLD_BODY was accepted and ignored."""
    assert draw(client, sld_body=sld(DISCRETE)) != draw(client)


@pytest.mark.parametrize("wmts", [False, True])
def test_tiles_take_sld_body_too(client: AppClient, wmts: bool) -> None:
    body = sld('<ColorMap type="values"><ColorMapEntry color="#ff0000" quantity="-1"/>'
               '</ColorMap>')
    path, query = f"/tiles/{LAYER}/4/8/7.png", {}
    if wmts:
        path, query = "/wmts", {"service": "WMTS", "request": "GetTile", "version": "1.0.0",
                                "layer": LAYER, "style": "default", "format": "image/png",
                                "tilematrixset": "WebMercatorQuad", "tilematrix": "4",
                                "tilerow": "7", "tilecol": "8"}
    plain = client.get(path, params=query)
    styled = client.get(path, params={**query, "sld_body": body})
    assert plain.status_code == styled.status_code == 200, styled.text
    plain_alpha = np.asarray(Image.open(io.BytesIO(plain.content)).convert("RGBA"))[..., 3]
    alpha = np.asarray(Image.open(io.BytesIO(styled.content)).convert("RGBA"))[..., 3]
    assert plain_alpha.any() and not alpha.any()  # no value is -1: nothing drawn


def test_legend_json_lists_the_entries_and_labels(client: AppClient) -> None:
    body = sld(f'<ColorMap type="values">{REFERENCE_ENTRIES}</ColorMap>')
    legend = client.get("/wms", params={**LEGEND, "format": "application/json",
                                        "sld_body": body})
    assert legend.status_code == 200, legend.text
    entries = legend.json()["legend"]
    assert [e["lowerValue"] for e in entries][:3] == [-300, 0, 50]
    assert [e["label"] for e in entries][:2] == ["label", "values"]
    assert entries[0]["color"] == "#eebe2f" and entries[0]["opacity"] == 0
    assert entries[1]["opacity"] == 1


def test_legend_json_of_intervals_names_both_ends(client: AppClient) -> None:
    legend = client.get("/wms", params={**LEGEND, "format": "application/json",
                                        "sld_body": sld(DISCRETE)}).json()["legend"]
    assert [(e["lowerValue"], e["upperValue"], e["label"]) for e in legend] == [
        (None, 150, "< 150"), (150, 256, "150 – < 256")]


def test_legend_png_swatches_are_the_map_colours(client: AppClient) -> None:
    """Each legend row's swatch has the colour GetMap draws its entry's quantity with."""
    body = sld("""<ColorMap>
        <ColorMapEntry color="#0000FF" quantity="150" label="cold"/>
        <ColorMapEntry color="#FFFF00" quantity="200" label="mild"/>
        <ColorMapEntry color="#FF0000" quantity="256" label="hot"/></ColorMap>""",
               "<Opacity>0.5</Opacity>")
    response = client.get("/wms", params={**LEGEND, "format": "image/png", "sld_body": body})
    assert response.status_code == 200, response.text
    legend = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGBA"))
    pixels = draw(client, sld_body=body)
    rows = 5  # the title, the units, then one row per entry
    row_px = legend.shape[0] / rows
    for i, value in enumerate((150.0, 200.0, 256.0), start=2):
        swatch = tuple(int(c) for c in legend[int((i + 0.5) * row_px), 12])
        assert swatch == pixels[value], (value, swatch)


@pytest.mark.parametrize(("body", "code", "words"), [
    ("<StyledLayerDescriptor", "InvalidParameterValue", "not well-formed"),
    (sld(TWO_COLOUR).replace("http://www.opengis.net/sld", "urn:other"),
     "InvalidParameterValue", "StyledLayerDescriptor in the namespace"),
    (sld(TWO_COLOUR, layer="other.layer"), "StyleNotDefined", "no NamedLayer for layer"),
    (sld("").replace("<RasterSymbolizer>", "<PolygonSymbolizer>").replace(
        "</RasterSymbolizer>", "</PolygonSymbolizer>"), "InvalidParameterValue",
     "not a PolygonSymbolizer"),
    (sld(DISCRETE.replace('"150"', '"300"')), "InvalidParameterValue", "must ascend"),
    (sld(TWO_COLOUR.replace("#663333", "brown")), "InvalidParameterValue", "#RRGGBB"),
    (sld(TWO_COLOUR.replace("/>", ' opacity="1.5"/>', 1)), "InvalidParameterValue",
     "outside 0..1"),
    (sld(TWO_COLOUR, "<Opacity>-1</Opacity>"), "InvalidParameterValue", "outside 0..1"),
    (sld("<ColorMap>" + '<ColorMapEntry color="#000000" quantity="{}"/>' * 1 + "</ColorMap>"),
     "InvalidParameterValue", "not a number"),
    ('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>' + sld(TWO_COLOUR).split("?>", 1)[1],
     "InvalidParameterValue", "DOCTYPE"),
])
def test_a_bad_sld_is_a_400_naming_the_problem(client: AppClient, body: str, code: str,
                                               words: str) -> None:
    for version in ("1.3.0", "1.1.1"):
        response = client.get("/wms", params={**GETMAP, "version": version,
                                              "sld_body": body})
        assert response.status_code == 400, response.text
        assert refusal(response)[0] == code
        assert words in refusal(response)[1]
        assert "SLD_BODY" in refusal(response)[1]
    legend = client.get("/wms", params={**LEGEND, "format": "application/json",
                                        "sld_body": body})
    assert legend.status_code == 400 and legend.json()["error"]["code"] == code


def test_too_many_entries_is_a_400(client: AppClient) -> None:
    entries = "".join(f'<ColorMapEntry color="#000000" quantity="{q}"/>' for q in range(256))
    response = client.get("/wms", params={**GETMAP, "sld_body": sld(
        f"<ColorMap>{entries}</ColorMap>")})
    assert response.status_code == 400
    assert "at most 255" in refusal(response)[1]


def test_sld_by_url_is_refused_not_ignored(client: AppClient) -> None:
    response = client.get("/wms", params={**GETMAP, "sld": "http://example.org/style.sld"})
    assert response.status_code == 400
    assert refusal(response) == ("InvalidParameterValue", refusal(response)[1])
    assert "SLD by URL" in refusal(response)[1]


def test_an_sld_cannot_restyle_a_group(tmp_path: Path) -> None:
    """Groups draw their layers in their own styles, as STYLES= on a group is refused."""
    stores = tmp_path / "stores"
    grid = lonlat_grid(np.array([1.0, 0.0]), np.arange(3.0))
    values = np.ones((2, 3))
    field_store(stores / "g.zarr", grid, values, values)
    config = tmp_path / "fewsmap.toml"
    config.write_text('groups = [{id = "both"}]\n'
                      'layers = [{id = "g.lon", store = "g", variable = "lon", group = "both"}]\n')
    app = AppClient(create_app(Settings(stores_dir=stores, config_file=config)))
    response = app.get("/wms", params={**GETMAP, "layers": "both", "bbox": "-0.5,-0.5,2.5,1.5",
                                       "width": "3", "sld_body": sld(TWO_COLOUR, layer="both")})
    assert response.status_code == 400, response.text
    assert refusal(response)[0] == "StyleNotDefined"


FUZZ_NAMES = Names(layers=(LAYER,), groups=(), stores=("known",), runs=(), times=(),
                   store_keys=(), secret_path="/etc/passwd")


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=values(FUZZ_NAMES)["sld"], legend=st.booleans())
def test_any_sld_body_draws_or_is_a_400(client: AppClient, body: str, legend: bool) -> None:
    query = {**LEGEND, "format": "application/json"} if legend else GETMAP
    assume(len(quote(body)) < 60_000)  # httpx refuses longer URLs itself (the unit tests
    response = client.get("/wms", params={**query, "sld_body": body})  # read huge bodies)
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert "SLD_BODY" in response.text or "parameter" in response.text
