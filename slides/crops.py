"""Rendering a level-0 rectangle at a level or resolution, within a pixel cap."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from slides.readers import handle_cache
from slides.tiling import Box, output_size, plan_crop


class CropTooLarge(ValueError):
    """The requested output is over the configured cap."""


@dataclass(frozen=True)
class CropRequest:
    box: Box
    downsample: float
    image_format: str  # "png" or "jpeg"
    quality: int = 90


def check_crop_size(box: Box, downsample: float, *, max_pixels: int, max_side: int) -> None:
    width, height = output_size(box, downsample)
    if width > max_side or height > max_side or width * height > max_pixels:
        raise CropTooLarge(
            f"the crop would be {width}x{height} px; the cap is {max_side} px a side and "
            f"{max_pixels} px in all: choose a coarser level or a smaller rectangle"
        )


def render_image(
    slide_path: str, level_downsamples: list[float], box: Box, downsample: float
) -> Image.Image:
    """The level-0 ``box`` rendered at ``downsample`` as RGB (outside the scan is white).

    The size is :func:`slides.tiling.output_size` of the box, the grid consensus masks use.
    """
    width, height = output_size(box, downsample)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    with handle_cache().open(slide_path) as entry:
        for piece in plan_crop(box, downsample, level_downsamples):
            region = entry.handle.read_region(
                (piece.box.x, piece.box.y), piece.level, piece.read_size
            )
            # read_region returns premultiplied RGBA; transparent areas lie outside the scan.
            rgb = Image.new("RGB", region.size, (255, 255, 255))
            rgb.paste(region, mask=region.getchannel("A"))
            if rgb.size != piece.out_size:
                rgb = rgb.resize(piece.out_size, Image.Resampling.LANCZOS)
            canvas.paste(rgb, piece.out_offset)
    return canvas


def render_crop(
    slide_path: str, level_downsamples: list[float], request: CropRequest
) -> tuple[bytes, str]:
    """Encode the crop; returns (bytes, content type). Outside the slide is white."""
    canvas = render_image(slide_path, level_downsamples, request.box, request.downsample)
    buffer = io.BytesIO()
    if request.image_format == "png":
        canvas.save(buffer, "PNG")
        return buffer.getvalue(), "image/png"
    canvas.save(buffer, "JPEG", quality=request.quality)
    return buffer.getvalue(), "image/jpeg"
