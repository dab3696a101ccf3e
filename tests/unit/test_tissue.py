"""Tissue detection on thumbnails of real brightfield and fluorescence slides and synthetic ones."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from slides.synthetic import SyntheticSpec, write_synthetic_slide
from slides.synthetic_render import render_labels
from slides.synthetic_scene import build_scene
from slides.tissue import detect_tissue, imaging_mode, tissue_mask
from tests.datapaths import shared_data_dir

openslide = pytest.importorskip("openslide")

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of thumbnail width/height


@dataclass(frozen=True)
class HandTruth:
    """Boxes drawn by hand on the 512 px thumbnail, after looking at it (see comments)."""

    file: str
    mode: str
    tissue: tuple[Box, ...]
    background: tuple[Box, ...]
    fraction: tuple[float, float]  # overall tissue share of the thumbnail, judged by eye


# Looked at each 512 px thumbnail (fluorescence ones log-stretched) with the boxes drawn on top.
# cmu-1-small-region: one H&E skin strip running top to bottom slightly right of centre, a
# thin strand to the left at ~35 % height, loose fragments to the right at 35-47 %; glass
# elsewhere (a dust speck at ~(0.93, 0.74) is kept out of the boxes). About a third is tissue.
CMU = HandTruth(
    file="cmu-1-small-region.svs",
    mode="brightfield",
    tissue=(
        (0.35, 0.80, 0.45, 0.90),  # dermis, bottom left of the strip
        (0.44, 0.60, 0.52, 0.70),  # epidermis in the middle, left of the small round duct
        (0.70, 0.85, 0.74, 0.91),  # epithelial lobe bottom right
        (0.42, 0.35, 0.52, 0.42),  # upper trunk, nucleus-rich
    ),
    background=(
        (0.05, 0.02, 0.30, 0.25),  # top left glass
        (0.02, 0.45, 0.25, 0.75),  # left glass below the strand
        (0.85, 0.52, 0.98, 0.60),  # right glass below the fragments
        (0.88, 0.76, 0.98, 0.98),  # bottom right glass
    ),
    fraction=(0.28, 0.45),
)
# hamamatsu-dapi / -tritc: the same section in two channels. Tissue fills the image except the
# top-left corner, a notch at the left edge at ~45 % height and a strip along the bottom; a
# dark tear crosses the lower third (kept out of the boxes). Roughly four fifths is tissue.
_NDPI_TISSUE = (
    (0.30, 0.72, 0.70, 0.85),  # lower band, densely nucleated
    (0.08, 0.20, 0.22, 0.40),  # left column
    (0.75, 0.15, 0.95, 0.30),  # upper right
    (0.45, 0.45, 0.60, 0.55),  # centre
)
_NDPI_BACKGROUND = (
    (0.00, 0.00, 0.15, 0.12),  # top-left corner
    (0.00, 0.92, 0.45, 1.00),  # bottom-left strip
)
DAPI = HandTruth("hamamatsu-dapi.ndpi", "fluorescence", _NDPI_TISSUE, _NDPI_BACKGROUND, (0.7, 0.92))
TRITC = HandTruth(
    "hamamatsu-tritc.ndpi", "fluorescence", _NDPI_TISSUE, _NDPI_BACKGROUND, (0.7, 0.92)
)
# tcga-cr-7395: one large H&E piece filling the middle, a triangular hole right of centre,
# white glass in the corners. About three fifths is tissue.
TCGA = HandTruth(
    file="tcga-cr-7395-01a-01-ts1.svs",
    mode="brightfield",
    tissue=((0.20, 0.30, 0.50, 0.60), (0.70, 0.62, 0.82, 0.78)),
    background=((0.00, 0.00, 0.25, 0.12), (0.00, 0.90, 0.15, 1.00)),
    fraction=(0.55, 0.72),
)


def _box_share(mask: np.ndarray, box: Box) -> float:
    h, w = mask.shape
    x0, y0, x1, y1 = box
    return float(
        mask[int(y0 * h) : int(np.ceil(y1 * h)), int(x0 * w) : int(np.ceil(x1 * w))].mean()
    )


def _thumbnail(path: Path, size: int) -> np.ndarray:
    with openslide.OpenSlide(path) as slide:
        return np.asarray(slide.get_thumbnail((size, size)).convert("RGB"))


@pytest.mark.parametrize("truth", [CMU, DAPI, TRITC, TCGA], ids=lambda t: t.file)
def test_tissue_mask_matches_hand_drawn_boxes_on_real_slides(truth: HandTruth) -> None:
    rgb = _thumbnail(shared_data_dir() / "slides" / truth.file, 512)

    found = detect_tissue(rgb)

    assert found.mode == truth.mode
    assert found.mask.shape == rgb.shape[:2] and found.mask.dtype == bool
    for box in truth.tissue:
        assert _box_share(found.mask, box) >= 0.95, f"tissue box {box}"
    for box in truth.background:
        assert _box_share(found.mask, box) <= 0.05, f"background box {box}"
    lo, hi = truth.fraction
    assert lo <= found.mask.mean() <= hi


@pytest.mark.parametrize("size", [256, 1024])
def test_tissue_share_barely_changes_with_thumbnail_size(size: int) -> None:
    path = shared_data_dir() / "slides" / CMU.file
    reference = tissue_mask(_thumbnail(path, 512)).mean()

    assert tissue_mask(_thumbnail(path, size)).mean() == pytest.approx(reference, abs=0.02)


@pytest.mark.parametrize("seed", [0, 5])
def test_tissue_mask_of_synthetic_thumbnail_matches_ground_truth(tmp_path: Path, seed: int) -> None:
    spec = SyntheticSpec(width=3072, height=2048, seed=seed)
    files = write_synthetic_slide(tmp_path, "s", spec)
    rgb = _thumbnail(files.slide, 512)  # downsample 6 through OpenSlide, as the app does
    step = spec.width // rgb.shape[1]
    truth = render_labels(build_scene(spec), 0, 0, rgb.shape[1], rgb.shape[0], stride=step) > 0

    mask = tissue_mask(rgb)

    iou = (mask & truth).sum() / (mask | truth).sum()
    assert iou >= 0.9


def test_dark_image_with_bright_blob_is_fluorescence_and_blob_is_found() -> None:
    rgb = np.full((200, 300, 3), 3, dtype=np.uint8)
    yy, xx = np.mgrid[:200, :300]
    blob = (yy - 100) ** 2 + (xx - 150) ** 2 < 60**2
    rng = np.random.default_rng(0)
    rgb[blob, 2] = rng.integers(15, 200, blob.sum())  # dim tissue with bright dots, blue

    found = detect_tissue(rgb)

    assert found.mode == "fluorescence"
    iou = (found.mask & blob).sum() / (found.mask | blob).sum()
    assert iou > 0.9


def test_real_ihc_tile_is_read_as_brightfield() -> None:
    from PIL import Image

    rgb = np.asarray(Image.open(shared_data_dir() / "images" / "skimage_ihc.png").convert("RGB"))

    assert imaging_mode(rgb) == "brightfield"


def test_blank_glass_has_no_tissue() -> None:
    rng = np.random.default_rng(1)
    rgb = (240 + rng.integers(-3, 4, (128, 128, 3))).astype(np.uint8)

    assert not tissue_mask(rgb).any()


def test_small_specks_are_dropped_and_small_holes_filled() -> None:
    rgb = np.full((400, 400, 3), 245, dtype=np.uint8)
    rgb[100:300, 100:300] = (200, 120, 170)  # tissue
    rgb[195:200, 195:200] = 245  # a 25 px hole
    rgb[20:23, 20:23] = (90, 60, 120)  # a 9 px speck

    mask = tissue_mask(rgb, min_object_px=50, min_hole_px=50)

    assert mask[197, 197] and not mask[21, 21]
    assert mask[110:290, 110:290].all()


def test_non_rgb_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="RGB"):
        tissue_mask(np.zeros((10, 10), dtype=np.uint8))
