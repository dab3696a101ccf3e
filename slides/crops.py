"""Rendering a level-0 rectangle at a level or resolution, within output and source caps."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from slides.readers import handle_cache
from slides.tiling import Box, ReadPiece, output_size, plan_crop, source_pixels


class CropTooLarge(ValueError):
    """The requested output, or the source it would read, is over the configured cap."""


@dataclass(frozen=True)
class CropRequest:
    box: Box
    downsample: float
    image_format: str  # "png" or "jpeg"
    quality: int = 90


@dataclass(frozen=True)
class CropPlan:
    """The reads a crop takes: ``pieces`` (clipped to the slide) drawn on an ``out_size`` canvas."""

    out_size: tuple[int, int]
    pieces: tuple[ReadPiece, ...]

    @property
    def source_pixels(self) -> int:
        return source_pixels(self.pieces)


def check_crop_size(box: Box, downsample: float, *, max_pixels: int, max_side: int) -> None:
    width, height = output_size(box, downsample)
    if width > max_side or height > max_side or width * height > max_pixels:
        raise CropTooLarge(
            f"the crop would be {width}x{height} px; the cap is {max_side} px a side and "
            f"{max_pixels} px in all: choose a coarser level or a smaller rectangle"
        )


def crop_plan(
    box: Box,
    downsample: float,
    level_downsamples: Sequence[float],
    extent: tuple[int, int] | None = None,
) -> CropPlan:
    """Plan a crop; with ``extent`` (the slide's level-0 width and height) reads are clipped."""
    bounds = Box(0, 0, *extent) if extent is not None else None
    pieces = plan_crop(box, downsample, level_downsamples, bounds=bounds)
    return CropPlan(output_size(box, downsample), tuple(pieces))


def check_source_size(plan: CropPlan, *, max_source_pixels: int) -> None:
    """Refuse a plan that would read more than ``max_source_pixels`` (0: no cap).

    The output caps bound what is sent; this bounds what is read. A coarse crop of a slide
    without a matching pyramid level (a single-level scan) is read at level 0: a 6 x 6 px
    answer can cost 144 Mpx of decoding, seconds of CPU and memory that other users wait for.
    """
    read = plan.source_pixels
    if max_source_pixels and read > max_source_pixels:
        level = plan.pieces[0].level if plan.pieces else 0
        raise CropTooLarge(
            f"the crop would read {read} px from pyramid level {level}; the cap "
            f"CROP_MAX_SOURCE_PIXELS is {max_source_pixels} px: choose a smaller rectangle or "
            "a resolution at one of the slide's pyramid levels"
        )


def render_plan(slide_path: str, plan: CropPlan, *, max_source_pixels: int = 0) -> Image.Image:
    """Draw a planned crop as RGB; outside the scan (and outside the slide) is white.

    ``max_source_pixels`` is checked again here, so no caller can hand the reader more.
    """
    check_source_size(plan, max_source_pixels=max_source_pixels)
    canvas = Image.new("RGB", plan.out_size, (255, 255, 255))
    if not plan.pieces:
        return canvas
    with handle_cache().open(slide_path) as entry:
        for piece in plan.pieces:
            region = entry.handle.read_region(piece.read_location, piece.level, piece.read_size)
            # read_region returns premultiplied RGBA; transparent areas lie outside the scan.
            # A piece clipped at the slide's edge is drawn on white at its unclipped size, so
            # the resize below keeps the scale of the pixels on the slide.
            rgb = Image.new("RGB", piece.canvas_size or region.size, (255, 255, 255))
            rgb.paste(region, piece.read_offset, mask=region.getchannel("A"))
            if rgb.size != piece.out_size:
                rgb = rgb.resize(piece.out_size, Image.Resampling.LANCZOS)
            canvas.paste(rgb, piece.out_offset)
    return canvas


def render_image(
    slide_path: str,
    level_downsamples: list[float],
    box: Box,
    downsample: float,
    extent: tuple[int, int] | None = None,
) -> Image.Image:
    """The level-0 ``box`` rendered at ``downsample`` as RGB (outside the scan is white).

    The size is :func:`slides.tiling.output_size` of the box, the grid consensus masks use.
    """
    return render_plan(slide_path, crop_plan(box, downsample, level_downsamples, extent))


def encode(image: Image.Image, image_format: str, quality: int = 90) -> tuple[bytes, str]:
    """PNG or JPEG bytes and their content type."""
    buffer = io.BytesIO()
    if image_format == "png":
        image.save(buffer, "PNG")
        return buffer.getvalue(), "image/png"
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue(), "image/jpeg"


def render_crop(
    slide_path: str,
    level_downsamples: list[float],
    request: CropRequest,
    extent: tuple[int, int] | None = None,
) -> tuple[bytes, str]:
    """Encode the crop; returns (bytes, content type). Outside the slide is white."""
    canvas = render_image(slide_path, level_downsamples, request.box, request.downsample, extent)
    return encode(canvas, request.image_format, request.quality)
