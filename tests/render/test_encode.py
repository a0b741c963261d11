"""Encoders: palette PNG, RGBA PNG, JPEG and the FEWS u/v TIFF decode to what went in."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from fewsmap.render.encode import jpeg, png_palette, png_rgba, uv_tiff


def test_palette_png_keeps_indices_and_transparency() -> None:
    lut = np.zeros((256, 4), dtype=np.uint8)
    lut[1] = (10, 20, 30, 255)
    lut[2] = (200, 100, 0, 128)
    indices = np.array([[0, 1], [2, 1]], dtype=np.uint8)
    image = Image.open(io.BytesIO(png_palette(indices, lut)))
    assert image.mode == "P" and np.asarray(image).tolist() == indices.tolist()
    rgba = np.asarray(image.convert("RGBA"))
    assert rgba[0, 0, 3] == 0 and rgba[1, 0].tolist() == [200, 100, 0, 128]


def test_rgba_png_and_jpeg_round_trip() -> None:
    rgba = np.zeros((8, 16, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 255, 255
    assert (np.asarray(Image.open(io.BytesIO(png_rgba(rgba)))) == rgba).all()
    decoded = np.asarray(Image.open(io.BytesIO(jpeg(rgba))))
    assert decoded.shape == (8, 16, 3) and (decoded[..., 0] > 240).all()


def test_uv_tiff_decodes_to_the_fields_within_one_step() -> None:
    rng = np.random.default_rng(1)
    u = rng.uniform(-20, 30, (20, 30)).astype(np.float32)
    v = rng.uniform(-5, 5, (20, 30)).astype(np.float32)
    u[0, :5] = np.nan  # missing
    u[1, :], v[1, :] = np.nan, np.nan  # off the grid
    image = Image.open(io.BytesIO(uv_tiff(u, v)))
    rgba = np.asarray(image).astype(np.float64)
    (su, sv, _), (ou, ov) = image.tag_v2[33550], image.tag_v2[33922][:2]
    both = np.isfinite(u) & np.isfinite(v)
    assert np.abs(rgba[..., 0][both] * su + ou - u[both]).max() <= su / 2 + 1e-6
    assert np.abs(rgba[..., 1][both] * sv + ov - v[both]).max() <= sv / 2 + 1e-6
    assert (rgba[0, :5, :2] == 255).all() and (rgba[0, :5, 3] == 255).all()  # missing
    assert (rgba[1, :, 3] == 0).all()  # no data at all: transparent
