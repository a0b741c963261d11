"""Encode images: palette PNG where the style allows it, RGBA PNG otherwise.

Fast deflate: level 6 costs 2.3-3.6x the time of zlib level 1 for files 26-30 % smaller, and
a palette PNG is 5x faster than RGBA at about half the bytes (reference/perf-anchors.md).
Maps go through ``fewsmap.render.png`` (ISA-L deflate); small Pillow images (legends,
error images) through Pillow at zlib level 1.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, TiffImagePlugin, TiffTags

from fewsmap.render.png import encode_palette, encode_rgba

PNG_LEVEL = 1
ERROR_TEXT_RGBA = (200, 0, 0, 255)


def png_palette(indices: np.ndarray, lut: np.ndarray) -> bytes:
    """Write palette indices (H, W) uint8 with a 256 × RGBA table as a PNG (P + tRNS)."""
    return encode_palette(np.ascontiguousarray(indices), lut)


def palette_image(indices: np.ndarray, lut: np.ndarray) -> Image.Image:
    """A Pillow "P" image of palette indices (H, W) uint8 and a 256 × RGBA table."""
    height, width = indices.shape
    image = Image.frombytes("P", (width, height), np.ascontiguousarray(indices).tobytes())
    image.putpalette(lut[:, :3].reshape(-1).tolist(), rawmode="RGB")
    image.info["transparency"] = bytes(lut[:, 3].tolist())
    return image


def png_rgba(rgba: np.ndarray) -> bytes:
    """Write an RGBA (H, W, 4) uint8 image as a PNG."""
    return encode_rgba(np.ascontiguousarray(rgba))


def jpeg(rgba: np.ndarray) -> bytes:
    """Write an opaque RGBA (H, W, 4) image as JPEG (quality 90; GDAL's default format)."""
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba[..., :3])).save(out, format="JPEG", quality=90)
    return out.getvalue()


def png_image(image: Image.Image) -> bytes:
    """Encode a Pillow image as PNG at the service's zlib level."""
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=PNG_LEVEL)
    return out.getvalue()


def error_png(message: str, width: int, height: int, blank: bool) -> bytes:
    """An image answer to a failed GetMap (``EXCEPTIONS=INIMAGE`` / ``BLANK``): red text on
    transparency, as a two-colour palette PNG (a quarter of the bytes of RGBA to draw and
    encode)."""
    image = Image.new("P", (width, height), 0)
    if not blank:
        draw = ImageDraw.Draw(image)
        per_line = max(width // 7, 10)  # the default bitmap font is about 6-7 px wide
        lines = [message[i : i + per_line] for i in range(0, len(message), per_line)]
        draw.multiline_text((4, 4), "\n".join(lines[: max(height // 14, 1)]), fill=1)
    lut = np.zeros((256, 4), dtype=np.uint8)
    lut[1] = ERROR_TEXT_RGBA
    return png_palette(np.asarray(image), lut)


# GeoTIFF tags that FEWS re-purposes to carry the u/v scale and offset.
MODEL_PIXEL_SCALE_TAG = 33550
MODEL_TIEPOINT_TAG = 33922
MISSING_BYTE = 255


def uv_tiff(u: np.ndarray, v: np.ndarray) -> bytes:
    """Encode u and v fields (NaN = no data) as the FEWS RG TIFF (see render_uv_tiff)."""
    rgba = np.zeros((*u.shape, 4), dtype=np.uint8)
    scales, offsets = [], []
    on_grid = np.isfinite(u) | np.isfinite(v)
    both = np.isfinite(u) & np.isfinite(v)
    for channel, component in enumerate((u, v)):
        values = component[both]
        low = float(values.min()) if values.size else 0.0
        high = float(values.max()) if values.size else 0.0
        # Bytes 0..254 carry values; 255 means missing.
        scale = (high - low) / (MISSING_BYTE - 1) if high > low else 1.0
        encoded = np.clip(np.round((component - low) / scale), 0, MISSING_BYTE - 1)
        rgba[..., channel] = np.where(both, encoded, MISSING_BYTE).astype(np.uint8)
        scales.append(scale)
        offsets.append(low)
    rgba[..., 3] = np.where(on_grid, 255, 0)
    info = TiffImagePlugin.ImageFileDirectory_v2()
    info[MODEL_PIXEL_SCALE_TAG] = (scales[0], scales[1], 0.0)
    info.tagtype[MODEL_PIXEL_SCALE_TAG] = TiffTags.DOUBLE
    info[MODEL_TIEPOINT_TAG] = (offsets[0], offsets[1], 0.0, 0.0, 0.0, 0.0)
    info.tagtype[MODEL_TIEPOINT_TAG] = TiffTags.DOUBLE
    out = io.BytesIO()
    Image.fromarray(rgba).save(out, format="TIFF", tiffinfo=info)
    return out.getvalue()
