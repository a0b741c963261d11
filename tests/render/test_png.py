"""The PNG writer: any decoder reads back exactly the pixels and palette it was given."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from fewsmap.render.png import encode_palette, encode_rgba


def decoded(png: bytes) -> Image.Image:
    Image.open(io.BytesIO(png)).verify()  # chunk CRCs and structure
    return Image.open(io.BytesIO(png))


@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (256, 256), (1200, 1920)])
def test_palette_pixels_and_transparency_round_trip(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    indices = rng.integers(0, 256, shape, dtype=np.uint8)
    lut = rng.integers(0, 256, (256, 4), dtype=np.uint8)
    lut[0, 3], lut[10:, 3] = 0, 255  # transparent no-data, opaque colours
    image = decoded(encode_palette(indices, lut))
    assert image.mode == "P" and image.size == shape[::-1]
    assert np.array_equal(np.asarray(image), indices)
    expected = lut[indices]
    assert np.array_equal(np.asarray(image.convert("RGBA")), expected)


def test_an_opaque_palette_has_no_transparency_chunk() -> None:
    lut = np.full((256, 4), 255, np.uint8)
    png = encode_palette(np.zeros((4, 4), np.uint8), lut)
    assert b"tRNS" not in png and "transparency" not in decoded(png).info


def test_rgba_round_trips() -> None:
    rgba = np.random.default_rng(3).integers(0, 256, (33, 65, 4), dtype=np.uint8)
    image = decoded(encode_rgba(rgba))
    assert image.mode == "RGBA" and np.array_equal(np.asarray(image), rgba)
