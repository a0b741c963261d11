"""Animations: one map per valid time, drawn by the map pipeline, encoded as GIF, APNG or WebP.

A frame of one transparent layer without contours stays a palette image (the style's 256-entry
table, index 0 transparent), so a GIF is written without quantising and shows exactly the
colours of the PNG map. Other frames are RGBA; for GIF they get an exact palette when they
have at most 255 colours and are quantised otherwise. APNG and lossless WebP are exact.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from fewsmap.cancel import checkpoint
from fewsmap.render.encode import PNG_LEVEL, palette_image
from fewsmap.render.pipeline import MapSpec, draw_palette, draw_rgba, draws_palette

GIF = "image/gif"
APNG = "image/apng"
WEBP = "image/webp"
ANIMATED = (GIF, APNG, WEBP)
TRANSPARENT = 0  # the palette index of no data (fewsmap.render.colour)
INK = (0, 0, 0, 255)
PAPER = (255, 255, 255, 255)
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601: picks the darkest/lightest colour
# GIF has one transparent index and no partial alpha: alpha below half becomes transparent.
GIF_OPAQUE_ALPHA = 128
# Pillow's encoders: loop forever; GIF frames are cleared to transparent before the next
# one (disposal 2), else no-data pixels would show the previous frame. WebP: lossless with
# the colour under transparent pixels kept (``exact``), at the fastest effort.
ENCODER_OPTIONS: dict[str, dict[str, Any]] = {
    GIF: {"format": "GIF", "transparency": TRANSPARENT, "disposal": 2, "optimize": False},
    APNG: {"format": "PNG", "compress_level": PNG_LEVEL, "default_image": False},
    WEBP: {"format": "WEBP", "lossless": True, "exact": True, "quality": 0, "method": 0},
}


@dataclass(frozen=True, eq=False)
class Frame:
    """One drawn frame: palette indices (H, W) with their 256 × RGBA ``lut``, or RGBA
    pixels (H, W, 4) with no ``lut``."""

    pixels: np.ndarray
    lut: np.ndarray | None = None


def render_animation(frames: Sequence[list[MapSpec]], image_format: str, frame_ms: int,
                     timestamp: bool = False) -> bytes:
    """Draw each frame's maps and encode them as one animation that loops forever.

    Parameters
    ----------
    frames
        The maps of each frame (one layer: a list of one spec), in display order.
    image_format
        ``image/gif``, ``image/apng`` or ``image/webp``.
    frame_ms
        How long each frame shows, in milliseconds (GIF keeps whole hundredths).
    timestamp
        Draw the valid time, run and lead time in the bottom-left corner of each frame.

    Encoders merge a frame equal to the one before it into that one (its time adds up).
    Between frames the render stops if it was cancelled (`fewsmap.cancel.checkpoint`): its
    client went away or its time ran out.

    Raises
    ------
    RenderCancelled
        If the render was cancelled before its last frame was drawn.
    """
    drawn = []
    for specs in frames:
        checkpoint()
        drawn.append(draw_frame(specs, timestamp))
    return encode_animation(drawn, image_format, frame_ms)


def draw_frame(specs: list[MapSpec], timestamp: bool = False) -> Frame:
    """Draw one frame with the map pipeline, stamped with its time when asked."""
    if draws_palette(specs):
        indices, palette = draw_palette(specs[0])
        frame = Frame(indices, palette.lut)
        if timestamp:
            frame = _stamp_palette(frame, caption(specs[0]), palette.size)
        return frame
    frame = Frame(draw_rgba(specs))
    return _stamp_rgba(frame, caption(specs[0])) if timestamp else frame


def caption(spec: MapSpec) -> str:
    """The frame's valid time, and its run with the lead time, as two lines of text."""
    lead_s = int((spec.valid_time - spec.run.reference_time) // np.timedelta64(1, "s"))
    hours, seconds = divmod(abs(lead_s), 3600)
    lead = f"{'-' if lead_s < 0 else '+'}{hours}h" + (f"{seconds // 60:02d}m" if seconds else "")
    return (f"{_minutes(spec.valid_time)} UTC\n"
            f"run {_minutes(spec.run.reference_time)} {lead}")


def encode_animation(frames: Sequence[Frame], image_format: str, frame_ms: int) -> bytes:
    """Encode drawn frames as an animated GIF, PNG (APNG) or lossless WebP."""
    if image_format not in ENCODER_OPTIONS:
        raise ValueError(f"{image_format!r} is not an animation format; use one of {ANIMATED}")
    to_image = _gif_image if image_format == GIF else _image
    images = []
    for frame in frames:  # GIF frames may be quantised: a step worth a checkpoint
        checkpoint()
        images.append(to_image(frame))
    out = io.BytesIO()
    images[0].save(out, save_all=True, append_images=images[1:], duration=frame_ms, loop=0,
                   **ENCODER_OPTIONS[image_format])
    return out.getvalue()


def _minutes(when: np.datetime64) -> str:
    """``2022-08-09 12:00`` (seconds only when the time has them)."""
    minute = when.astype("datetime64[m]")
    return str(minute if minute == when else when.astype("datetime64[s]")).replace("T", " ")


def _image(frame: Frame) -> Image.Image:
    if frame.lut is None:
        return Image.fromarray(np.ascontiguousarray(frame.pixels))
    return palette_image(frame.pixels, frame.lut)


def _gif_image(frame: Frame) -> Image.Image:
    """A palette image for GIF: transparent entries (alpha below half) share index 0."""
    if frame.lut is None:
        return _gif_palette(frame.pixels)
    see_through = frame.lut[:, 3] < GIF_OPAQUE_ALPHA
    remap = np.where(see_through, TRANSPARENT, np.arange(256)).astype(np.uint8)
    return palette_image(remap[frame.pixels], frame.lut)


def _gif_palette(rgba: np.ndarray) -> Image.Image:
    """Turn RGBA into palette indices: exact up to 255 colours, quantised beyond."""
    opaque = rgba[..., 3] >= GIF_OPAQUE_ALPHA
    rgb = np.ascontiguousarray(rgba[..., :3])
    packed = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) \
        | rgb[..., 2]
    colours, inverse = np.unique(packed[opaque], return_inverse=True)
    lut = np.zeros((256, 4), dtype=np.uint8)
    indices = np.zeros(opaque.shape, dtype=np.uint8)
    if colours.size <= 255:
        lut[1 : colours.size + 1, 0] = colours >> 16
        lut[1 : colours.size + 1, 1] = (colours >> 8) & 0xFF
        lut[1 : colours.size + 1, 2] = colours & 0xFF
        indices[opaque] = inverse.reshape(-1) + 1
    else:
        quantised = Image.fromarray(rgb).quantize(255)
        table = np.asarray(quantised.getpalette() or [], dtype=np.uint8).reshape(-1, 3)[:255]
        lut[1 : table.shape[0] + 1, :3] = table
        indices[opaque] = np.asarray(quantised)[opaque] + 1
    lut[1:, 3] = 255
    return palette_image(indices, lut)


def _font(height_px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font (no files needed), scaled with the map height."""
    return ImageFont.load_default(size=max(9, min(height_px // 22, 22)))


def _label_box(draw: ImageDraw.ImageDraw, text: str, height: int,
               font: ImageFont.FreeTypeFont | ImageFont.ImageFont
               ) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    """Where the text goes (bottom-left, padded) and the box behind it."""
    pad = max(2, int(getattr(font, "size", 10)) // 4)
    left, top, right, bottom = (round(v) for v in draw.multiline_textbbox((0, 0), text,
                                                                      font=font))
    origin = (pad - left, height - pad - bottom)
    box = (0, height - (bottom - top) - 2 * pad, right - left + 2 * pad, height)
    return origin, box


def _stamp_palette(frame: Frame, text: str, colours: int) -> Frame:
    """Draw the caption with palette entries: black on white in two free entries when the
    style leaves them, else the darkest on the lightest of its own colours."""
    assert frame.lut is not None
    lut = frame.lut.copy()
    if colours <= 253:
        ink, paper = 255, 254
        lut[ink], lut[paper] = INK, PAPER
    else:
        used = np.arange(1, colours + 1)
        luma = lut[used, :3] @ LUMA
        ink, paper = int(used[np.argmin(luma)]), int(used[np.argmax(luma)])
    image = palette_image(frame.pixels, lut)
    _draw_caption(image, text, ink, paper)
    return Frame(np.asarray(image), lut)


def _stamp_rgba(frame: Frame, text: str) -> Frame:
    image = Image.fromarray(np.ascontiguousarray(frame.pixels))
    _draw_caption(image, text, INK, PAPER)
    return Frame(np.asarray(image))


def _draw_caption(image: Image.Image, text: str, ink: int | tuple[int, ...],
                  paper: int | tuple[int, ...]) -> None:
    draw = ImageDraw.Draw(image)
    font = _font(image.height)
    origin, box = _label_box(draw, text, image.height, font)
    draw.rectangle(box, fill=paper)
    draw.multiline_text(origin, text, fill=ink, font=font)
