"""Synthetic slides: OpenSlide reads them as pyramids, and their ground truth is consistent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely
import tifffile

from slides.synthetic import (
    CLASS_COLORS,
    CLASS_NAMES,
    SyntheticSlideFiles,
    SyntheticSpec,
    render_region,
    write_synthetic_slide,
)
from slides.synthetic_render import rasterize

openslide = pytest.importorskip("openslide")

SPEC = SyntheticSpec(width=4096, height=3072, seed=3)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> SyntheticSlideFiles:
    return write_synthetic_slide(tmp_path_factory.mktemp("synthetic"), "s3", SPEC)


@pytest.fixture(scope="module")
def full(written: SyntheticSlideFiles) -> tuple[np.ndarray, np.ndarray]:
    """(RGB, labels) of the whole slide, rendered directly."""
    return render_region(SPEC, 0, 0, SPEC.width, SPEC.height)


def test_openslide_reads_pyramid_levels_and_mpp(written: SyntheticSlideFiles) -> None:
    with openslide.OpenSlide(written.slide) as slide:
        assert slide.properties["openslide.vendor"] == "generic-tiff"
        assert slide.dimensions == (4096, 3072)
        assert slide.level_dimensions == ((4096, 3072), (2048, 1536), (1024, 768))
        assert slide.level_downsamples == pytest.approx((1.0, 2.0, 4.0))
        assert float(slide.properties["openslide.mpp-x"]) == pytest.approx(0.5)
        assert float(slide.properties["openslide.mpp-y"]) == pytest.approx(0.5)


def test_slide_tiles_are_jpeg_256_and_reduced_levels_are_marked(
    written: SyntheticSlideFiles,
) -> None:
    with tifffile.TiffFile(written.slide) as tif:
        pages = list(tif.pages)
        assert [p.subfiletype for p in pages] == [0, 1, 1]
        assert all(p.compression == tifffile.COMPRESSION.JPEG for p in pages)
        assert all((p.tilelength, p.tilewidth) == (256, 256) for p in pages)
        assert "mpp=0.5" in pages[0].description


def test_openslide_pixels_equal_render_region_up_to_jpeg_loss(
    written: SyntheticSlideFiles,
) -> None:
    with openslide.OpenSlide(written.slide) as slide:
        for x, y in [(0, 0), (1700, 1300), (3800, 2900)]:
            expected, _ = render_region(SPEC, x, y, 296, 172)
            got = np.asarray(slide.read_region((x, y), 0, (296, 172)).convert("RGB"))
            diff = np.abs(got.astype(int) - expected)
            assert diff.mean() < 5.0 and np.percentile(diff, 99) < 30


def test_reduced_level_is_box_filtered_level_zero(
    written: SyntheticSlideFiles, full: tuple[np.ndarray, np.ndarray]
) -> None:
    rgb = full[0].astype(float)
    expected = (rgb[0::2, 0::2] + rgb[1::2, 0::2] + rgb[0::2, 1::2] + rgb[1::2, 1::2]) / 4
    with openslide.OpenSlide(written.slide) as slide:
        got = np.asarray(slide.read_region((0, 0), 1, (2048, 1536)).convert("RGB"))
    assert np.abs(got - expected).mean() < 5.0


def test_render_region_does_not_depend_on_the_window() -> None:
    big_rgb, big_labels = render_region(SPEC, 1000, 900, 700, 600)
    rgb, labels = render_region(SPEC, 1123, 1077, 301, 257)

    np.testing.assert_array_equal(labels, big_labels[177 : 177 + 257, 123 : 123 + 301])
    np.testing.assert_array_equal(rgb, big_rgb[177 : 177 + 257, 123 : 123 + 301])


def test_mask_pyramid_holds_render_region_labels(
    written: SyntheticSlideFiles, full: tuple[np.ndarray, np.ndarray]
) -> None:
    labels = full[1]
    with tifffile.TiffFile(written.mask) as tif:
        pages = list(tif.pages)
        assert [p.subfiletype for p in pages] == [0, 1, 1]
        assert all(p.compression == tifffile.COMPRESSION.ADOBE_DEFLATE for p in pages)
        assert all(p.is_tiled and p.dtype == np.uint8 for p in pages)
        for level, page in enumerate(pages):
            # Label levels are nearest-neighbour: level k holds level-0 pixel (i 2^k, j 2^k).
            np.testing.assert_array_equal(page.asarray(), labels[:: 2**level, :: 2**level])


def test_same_seed_writes_identical_files_and_other_seeds_differ(tmp_path: Path) -> None:
    spec = SyntheticSpec(width=1500, height=1100, seed=11)
    a = write_synthetic_slide(tmp_path / "a", "x", spec)
    b = write_synthetic_slide(tmp_path / "b", "x", spec)
    c = write_synthetic_slide(tmp_path / "c", "x", SyntheticSpec(width=1500, height=1100, seed=12))

    for field in ("slide", "mask", "geojson"):
        assert getattr(a, field).read_bytes() == getattr(b, field).read_bytes(), field
        assert getattr(a, field).read_bytes() != getattr(c, field).read_bytes(), field
    assert not list(tmp_path.glob("*/.*")), "temporary files left behind"


def test_geojson_objects_carry_their_mask_class_at_interior_points(
    written: SyntheticSlideFiles, full: tuple[np.ndarray, np.ndarray]
) -> None:
    labels = full[1]
    collection = json.loads(written.geojson.read_text())
    assert collection["type"] == "FeatureCollection"
    by_class: dict[str, list[shapely.Geometry]] = {"tissue": [], "gland": [], "nucleus": []}
    for feature in collection["features"]:
        props = feature["properties"]
        assert props["objectType"] == "annotation"
        name = props["classification"]["name"]
        assert props["classification"]["color"] == list(CLASS_COLORS[CLASS_NAMES.index(name)])
        assert feature["geometry"]["type"] == "Polygon"
        by_class[name].append(shapely.geometry.shape(feature["geometry"]))
    assert all(by_class.values()), {k: len(v) for k, v in by_class.items()}

    for name, geoms in by_class.items():
        geoms_arr = np.array(geoms, dtype=object)
        assert shapely.is_valid(geoms_arr).all()
        points = shapely.get_coordinates(shapely.point_on_surface(geoms_arr))
        values = labels[points[:, 1].astype(int), points[:, 0].astype(int)]
        if name == "tissue":  # glands and nuclei lie inside tissue, so any non-background
            assert (values > 0).all()
        else:
            assert (values == CLASS_NAMES.index(name)).mean() >= 0.99, name


def test_geojson_area_matches_mask_area_per_class(
    written: SyntheticSlideFiles, full: tuple[np.ndarray, np.ndarray]
) -> None:
    labels = full[1]
    collection = json.loads(written.geojson.read_text())
    area = {"tissue": 0.0, "gland": 0.0, "nucleus": 0.0}
    for feature in collection["features"]:
        geom = shapely.geometry.shape(feature["geometry"])
        area[feature["properties"]["classification"]["name"]] += geom.area

    assert (labels > 0).sum() == pytest.approx(area["tissue"], rel=0.002)
    assert (labels == 2).sum() == pytest.approx(area["gland"], rel=0.01)
    assert (labels == 3).sum() == pytest.approx(area["nucleus"], rel=0.03)


def test_colours_look_like_h_and_e(full: tuple[np.ndarray, np.ndarray]) -> None:
    rgb, labels = full[0].astype(float), full[1]
    background = rgb[labels == 0].mean(axis=0)
    stroma = rgb[labels == 1].mean(axis=0)
    nucleus = rgb[labels == 3].mean(axis=0)

    assert (background > 225).all()  # near-white glass
    assert stroma[0] > stroma[2] > stroma[1]  # eosin pink: red, then blue, green lowest
    assert nucleus.mean() < stroma.mean() - 60  # haematoxylin nuclei much darker
    assert nucleus[2] > nucleus[0]  # and blue-purple


def test_stain_varies_between_seeds() -> None:
    colours = []
    for seed in (1, 2, 3):
        rgb, labels = render_region(
            SyntheticSpec(width=1024, height=1024, seed=seed), 0, 0, 1024, 1024
        )
        colours.append(rgb[labels == 1].mean(axis=0))
    spread = np.ptp(np.array(colours), axis=0)
    assert spread.max() > 5.0


def test_class_fractions_are_plausible(full: tuple[np.ndarray, np.ndarray]) -> None:
    labels = full[1]
    shares = np.bincount(labels.ravel(), minlength=4) / labels.size
    tissue = shares[1:].sum()

    assert 0.4 <= shares[0] <= 0.85
    assert 0.01 <= shares[2] / tissue <= 0.3
    assert 0.02 <= shares[3] / tissue <= 0.2


def test_rasterize_fills_pixel_centres_inside_a_polygon_by_hand() -> None:
    # Square from (1, 1) to (3, 4) px: centres x in {1.5, 2.5}, y in {1.5, 2.5, 3.5} are inside.
    square = np.array([[1, 1], [3, 1], [3, 4], [1, 4]], dtype=float)
    edges = np.concatenate([square, np.roll(square, -1, axis=0)], axis=1)

    got = rasterize(edges, 0, 0, 5, 5)

    expected = np.zeros((5, 5), dtype=bool)
    expected[1:4, 1:3] = True
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(rasterize(edges, 2, 2, 3, 3), expected[2:, 2:])
    np.testing.assert_array_equal(rasterize(edges, 0, 0, 3, 3, stride=2), expected[::2, ::2])


def test_invalid_spec_is_refused() -> None:
    with pytest.raises(ValueError, match="tile_size"):
        SyntheticSpec(width=1000, height=1000, tile_size=100)
    with pytest.raises(ValueError, match="mpp"):
        SyntheticSpec(width=1000, height=1000, mpp=0)
