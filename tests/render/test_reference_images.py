"""Reference images: maps and legends of the demo stores, reviewed once by eye and kept
under ``tests/render/reference/``; every change to what they show must be deliberate.

An image matches its reference when at most `MAX_DIFFERING_FRACTION` of its pixels differ
by more than `PIXEL_TOLERANCE` in any of R, G, B or alpha (font hinting and anti-aliasing
may move a few pixels between library versions; a colour, a line or a label may not).

To accept a deliberate change, regenerate the references and look at every one of them
before committing::

    FEWSMAP_REGENERATE_REFERENCE=1 python -m pytest tests/render/test_reference_images.py
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fewsmap.app.server import create_app
from fewsmap.settings import Settings
from tests.asgi_client import AppClient

REFERENCE = Path(__file__).resolve().parent / "reference"
REGENERATE = os.environ.get("FEWSMAP_REGENERATE_REFERENCE") == "1"
PIXEL_TOLERANCE = 8  # levels of 255 in any channel
MAX_DIFFERING_FRACTION = 0.005

NAEFS = {"dim_reference_time": "2022-08-09T00:00:00Z", "time": "2022-08-10T12:00:00Z",
         "crs": "CRS:84", "bbox": "-125.25,23.75,-64.75,54.25", "width": "484",
         "height": "244"}
MARFC = {"dim_reference_time": "2022-06-01T18:00:00Z", "time": "2022-06-02T06:00:00Z",
         "crs": "EPSG:3857", "bbox": "-9300000,4070000,-7760000,5670000", "width": "308",
         "height": "320"}
GUST = {"dim_reference_time": "2018-11-20T12:00:00Z", "time": "2018-11-23T06:00:00Z",
        "crs": "EPSG:4326", "bbox": "34.5,-20.5,75.5,30.5", "width": "306", "height": "246"}
MAP = {"service": "WMS", "version": "1.3.0", "request": "GetMap", "styles": "",
       "format": "image/png"}
LEGEND = {"service": "WMS", "version": "1.3.0", "request": "GetLegendGraphic",
          "format": "image/png"}
# name → (query): four maps, three legends.
CASES: dict[str, dict[str, str]] = {
    "map-naefs-qpf-contours": {**MAP, **NAEFS, "layers": "naefs-mean.QPF",
                               "showContours": "true"},
    "legend-naefs-qpf-contours": {**LEGEND, "layer": "naefs-mean.QPF",
                                  "showContours": "true"},
    "map-naefs-qtf-under-qpf": {**MAP, **NAEFS, "layers": "naefs-mean.QTF,naefs-mean.QPF"},
    "map-marfc-t-contours": {**MAP, **MARFC, "layers": "marfc-fmat.t", "showContours": "true"},
    "legend-marfc-t-contours": {**LEGEND, "layer": "marfc-fmat.t", "showContours": "true",
                                "dim_reference_time": MARFC["dim_reference_time"]},
    "map-ecmwf-gust-mean": {**MAP, **GUST, "layers": "ecmwf-ens-gust.fg10_6",
                            "dim_ensemble_member": "mean"},
    "legend-ecmwf-gust-mean": {**LEGEND, "layer": "ecmwf-ens-gust.fg10_6",
                               "dim_ensemble_member": "mean"},
}


@pytest.fixture(scope="module")
def client(demo_stores: Path) -> AppClient:
    return AppClient(create_app(Settings(stores_dir=demo_stores)))


def image_of(client: AppClient, query: dict[str, str]) -> bytes:
    response = client.get("/wms", params=query)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return response.content


def rgba(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA")).astype(np.int16)


def differing_fraction(drawn: np.ndarray, reference: np.ndarray) -> float:
    """The fraction of pixels differing by more than `PIXEL_TOLERANCE` in any channel."""
    return float((np.abs(drawn - reference) > PIXEL_TOLERANCE).any(axis=-1).mean())


@pytest.mark.parametrize("name", CASES)
def test_the_image_matches_its_reference(client: AppClient, name: str) -> None:
    png = image_of(client, CASES[name])
    path = REFERENCE / f"{name}.png"
    if REGENERATE:
        path.write_bytes(png)
    drawn, reference = rgba(png), rgba(path.read_bytes())
    assert drawn.shape == reference.shape, name
    fraction = differing_fraction(drawn, reference)
    assert fraction <= MAX_DIFFERING_FRACTION, f"{name}: {fraction:.2%} of pixels differ"


def test_the_tolerance_catches_a_changed_colour() -> None:
    """A shift of one class's colour is well beyond the tolerance, noise within it."""
    reference = rgba((REFERENCE / "map-naefs-qpf-contours.png").read_bytes())
    noisy = reference + np.random.default_rng(0).integers(-3, 4, reference.shape)
    assert differing_fraction(noisy, reference) == 0
    recoloured = reference.copy()
    painted = reference[..., 3] == 255
    recoloured[painted, 0] = (recoloured[painted, 0] + 40) % 256
    assert differing_fraction(recoloured, reference) > MAX_DIFFERING_FRACTION
