"""Research exports built through the services on answers merged by the real merge service:
formats against peers (pycocotools, numpy, the project's GeoJSON importer, the slide reader),
splits, reproducibility, de-identification."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import shapely
from django.conf import settings
from PIL import Image
from shapely.geometry import shape as to_shape

from annotation.interop.qupath import read_geojson
from annotation.models import SlideAnnotation
from annotation.services.adjudication import adjudication_decide
from annotation.services.interchange import annotations_import
from learning.exports.services import export_build
from learning.models import ExportStatus, TrainingExport
from slides.crops import CropRequest, render_crop
from slides.tiling import Box
from tests.annotation.conftest import square
from tests.learning.export_helpers import CASES, SLIDE_STEMS, USERNAMES, open_archive

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(240)]


def build(world: dict, **config: object) -> TrainingExport:
    export = TrainingExport.objects.create(project=world["project"], config=config)
    export = export_build(export_id=export.pk)
    assert export.status == ExportStatus.READY, export.failed_reason
    return export


def _png(archive, name: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(archive.read(name))))


def _index(archive) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(archive.read("patches.csv").decode())))


def test_coco_loads_in_pycocotools_its_rle_equals_the_png_masks_and_polygons_match(
    export_world, tmp_path
):
    coco_api = pytest.importorskip("pycocotools.coco")
    mask_utils = pytest.importorskip("pycocotools.mask")
    archive = open_archive(build(export_world, patch_size=128, stride=96))
    checked = polygons_checked = 0
    for split in ("train", "val", "test"):
        path = tmp_path / f"{split}.json"
        path.write_bytes(archive.read(f"coco/{split}.json"))
        coco = coco_api.COCO(str(path))
        for image_id in coco.getImgIds():
            image = coco.loadImgs(image_id)[0]
            png = _png(archive, image["mask_file"])
            assert png.shape == (image["height"], image["width"])
            rebuilt = np.zeros_like(png)
            for ann in coco.loadAnns(coco.getAnnIds(imgIds=image_id)):
                decoded = coco.annToMask(ann).astype(bool)
                assert not rebuilt[decoded].any(), "instances overlap"
                rebuilt[decoded] = ann["category_id"]
                # The polygons beside the RLE, rasterised by pycocotools itself.
                rles = mask_utils.frPyObjects(ann["polygons"], image["height"], image["width"])
                drawn = mask_utils.decode(mask_utils.merge(rles)).astype(bool)
                iou = (drawn & decoded).sum() / (drawn | decoded).sum()
                assert iou >= 0.98, (image["file_name"], ann["id"], iou)
                polygons_checked += 1
            expected = np.where(png == 255, 0, png)  # ignore is no instance
            assert (rebuilt == expected).all(), image["file_name"]
            checked += 1
    assert checked == len(_index(archive)) and polygons_checked > 20


def test_geojson_reimports_through_the_projects_importer_to_the_same_geometry(export_world):
    world = export_world
    export = build(world)
    archive = open_archive(export)
    manifest = json.loads(archive.read("manifest.json"))
    listed = {row["id"] for row in manifest["slides"]}
    names = {world["gland"].pk: "gland", world["stroma"].pk: "stroma"}
    for slide in world["slides"]:
        name = _slide_name(manifest, world, slide)
        assert name in listed
        data = archive.read(f"geojson/{name}.geojson")
        # The pure reader and the import service (validation, repair, clipping) both.
        shapes = read_geojson(data).shapes
        report = annotations_import(
            project=world["project"],
            slide=slide,
            data=data,
            filename="export.geojson",
            source="export",
            user=world["manager"],
        )
        assert report.imported == len(shapes) and not report.skipped
        imported = SlideAnnotation.objects.filter(slide=slide, source="export")
        runs = [r for r in world["runs"] if r.region.slide_id == slide.pk]
        for name in ("gland", "stroma"):
            want = shapely.union_all(
                [
                    to_shape(p["geometry"])
                    for run in runs
                    for p in run.polygons
                    if names[p["label_class"]] == name
                ]
            )
            got = shapely.union_all([to_shape(s.geometry) for s in shapes if s.class_name == name])
            stored = shapely.union_all(
                [to_shape(a.geometry) for a in imported if a.label_class.name == name]
            )
            assert want.area > 0
            assert got.symmetric_difference(want).area == pytest.approx(0, abs=1e-6)
            assert stored.symmetric_difference(want).area == pytest.approx(0, abs=1e-6)


def _slide_name(manifest: dict, world: dict, slide) -> str:
    """The slide's name in the archive: the one whose regions are this slide's regions."""
    ids = {f"region-{r.pk}" for r in world["regions"] if r.slide_id == slide.pk}
    names = {r["slide"] for r in manifest["regions"] if r["id"] in ids}
    assert len(names) == 1
    return names.pop()


def _expected_region_mask(side: int, two_classes: bool) -> np.ndarray:
    """Worked by hand from export_helpers: annotators 1 and 2 draw a 120-px gland square at
    (20, 30) of the region, annotator 3 the same square 3 px right; under majority vote with
    contested_share 0.8, pixels all three marked are gland, pixels only two marked (2/3 < 0.8)
    are contested (255), and so are pixels only one marked (background at 2/3). The stroma
    square (90 px at (170, 160); annotator 3's is 3 px lower) likewise."""
    mask = np.zeros((side, side), dtype=np.uint8)
    mask[30:150, 20:23] = 255
    mask[30:150, 23:140] = 1
    mask[30:150, 140:143] = 255
    if two_classes:
        mask[160:163, 170:260] = 255
        mask[163:250, 170:260] = 2
        mask[250:253, 170:260] = 255
    return mask


def test_masks_and_patches_align_pixel_for_pixel_with_the_slide_reader(export_world):
    world = export_world
    archive = open_archive(build(world, patch_size=128, stride=128))
    rows = _index(archive)
    regions = {f"region-{r.pk}": (i, r) for i, r in enumerate(world["regions"])}
    checked = 0
    for row in rows:
        n, region = regions[row["region"]]
        r0, c0 = int(row["row"]), int(row["col"])
        x0, y0 = float(row["level0_x"]), float(row["level0_y"])
        assert (x0, y0) == (region.x + c0, region.y + r0)  # downsample 1: level-0 pixels
        image = _png(archive, row["image"])
        crop, _ = render_crop(
            region.slide.path,
            region.slide.level_downsamples,
            CropRequest(Box(int(x0), int(y0), 128, 128), 1.0, "png"),
        )
        want = np.asarray(Image.open(io.BytesIO(crop)).convert("RGB"))
        # A patch past the region's edge is padded white in the image and ignored in the mask.
        h, w = min(128, region.height - r0), min(128, region.width - c0)
        assert (image[:h, :w] == want[:h, :w]).all(), row["image"]
        expected = _expected_region_mask(region.width, two_classes=(n % 2 == 0))
        padded = np.full((128, 128), 255, dtype=np.uint8)
        padded[:h, :w] = expected[r0 : r0 + h, c0 : c0 + w]
        assert (_png(archive, row["mask"]) == padded).all(), row["mask"]
        checked += 1
    assert checked == len(rows) >= 9 * len(world["regions"])


def test_soft_labels_and_raw_masks_match_the_votes(export_world):
    world = export_world
    archive = open_archive(build(world))
    manifest = json.loads(archive.read("manifest.json"))
    region = manifest["regions"][0]
    with np.load(io.BytesIO(archive.read(region["soft_labels"]))) as data:
        soft = data["probability"]
    assert soft.shape == (3, 300, 300) and soft.dtype == np.float32
    assert np.allclose(soft.sum(axis=0), 1.0, atol=1e-5)
    # Majority vote's posterior is the vote share: 2 of 3 on the contested strip.
    assert soft[1, 60, 21] == pytest.approx(2 / 3, abs=1e-5)
    assert soft[1, 60, 60] == pytest.approx(1.0)
    raws = [_png(archive, r["file"]) for r in region["raw_masks"]]
    assert len(raws) == 3 and len({r["annotator"] for r in region["raw_masks"]}) == 3
    assert sorted(int((r == 1).sum()) for r in raws) == [120 * 120] * 3
    pseudonyms = {a["id"] for a in manifest["annotators"]}
    assert {r["annotator"] for r in region["raw_masks"]} <= pseudonyms
    staple = [a["reliability"].get("staple") for a in manifest["annotators"]]
    assert all(s and 0 < s["sensitivity"] <= 1 for s in staple)


def test_another_resolution_rerasterises_the_polygons(export_world):
    world = export_world
    archive = open_archive(build(world, mpp=1.0, patch_size=64, stride=64))
    rows = [r for r in _index(archive) if r["region"] == f"region-{world['regions'][0].pk}"]
    assert {r["downsample"] for r in rows} == {"2.0"}
    # 300 level-0 px at 2 px per export pixel: 150 export px, patches at 0, 64 and 86.
    assert sorted({int(r["row"]) for r in rows}) == [0, 64, 86]
    mask = np.zeros((150, 150), dtype=np.uint8)
    for r in rows:
        mask[int(r["row"]) : int(r["row"]) + 64, int(r["col"]) : int(r["col"]) + 64] = _png(
            archive, r["mask"]
        )
    # The gland answer spans level-0 columns 23..140 of the region (x 20+3 .. 140): pixel
    # centres 2j + 1 inside [23, 140) are j = 11..69; rows 30..150: i = 15..74.
    gland = np.argwhere(mask == 1)
    assert gland[:, 1].min() == 11 and gland[:, 1].max() == 69
    assert gland[:, 0].min() == 15 and gland[:, 0].max() == 74
    manifest = json.loads(archive.read("manifest.json"))
    with np.load(io.BytesIO(archive.read(manifest["regions"][0]["soft_labels"]))) as data:
        assert data["probability"].shape == (3, 150, 150)


@pytest.mark.parametrize("split_by", ["slide", "case"])
def test_splits_are_disjoint_by_slide_and_by_case(export_world, split_by):
    world = export_world
    seen = set()
    for seed in range(4):
        export = build(world, split_by=split_by, seed=seed, fractions=[0.34, 0.33, 0.33])
        archive = open_archive(export)
        manifest = json.loads(archive.read("manifest.json"))
        slide_split = {s["id"]: s["split"] for s in manifest["slides"]}
        case_of = {s["id"]: s["case"] for s in manifest["slides"]}
        rows = _index(archive)
        for row in rows:
            assert slide_split[row["slide"]] == row["split"]
            assert row["image"].startswith(f"images/{row['split']}/")
        cases: dict[str, set[str]] = {}
        for slide, split in slide_split.items():
            cases.setdefault(case_of[slide], set()).add(split)
        if split_by == "case":
            assert all(len(s) == 1 for s in cases.values()), cases
            assert len(cases) == 2  # the two slides of MRN-778812 share one case pseudonym
        for split in ("train", "val", "test"):
            coco = json.loads(archive.read(f"coco/{split}.json"))
            assert {i["slide"] for i in coco["images"]} <= {
                s for s, v in slide_split.items() if v == split
            }
        seen.add(tuple(sorted(slide_split.values())))
    assert len(seen) >= 1


def test_the_same_export_twice_gives_the_same_hash_and_a_new_adjudication_a_new_one(
    export_world,
):
    world = export_world
    first, second = build(world, seed=3), build(world, seed=3)
    assert first.export_hash == second.export_hash
    one = (Path(settings.MEDIA_ROOT) / first.file_path).read_bytes()
    two = (Path(settings.MEDIA_ROOT) / second.file_path).read_bytes()
    assert one == two  # byte for byte, not only the checksums
    archive = open_archive(first)
    listed = archive.read("checksums.sha256").decode().splitlines()
    assert hashlib.sha256(archive.read("checksums.sha256")).hexdigest() == first.export_hash
    assert [line.split("  ", 1)[1] for line in listed] == archive.namelist()[:-1]
    for line in listed:
        digest, name = line.split("  ", 1)
        assert hashlib.sha256(archive.read(name)).hexdigest() == digest

    region = world["regions"][0]
    adjudication_decide(
        region=region,
        expert=world["expert"],
        decision="redraw",
        shapes=[{"label_class": world["gland"].pk, "geometry": square(region.x, region.y, 50)}],
        reason="the lower square is not a gland",
    )
    third = build(world, seed=3)
    assert third.export_hash != first.export_hash
    manifest = json.loads(open_archive(third).read("manifest.json"))
    decided = next(r for r in manifest["regions"] if r["id"] == f"region-{region.pk}")
    assert decided["answer"] == "adjudication"
    assert decided["adjudication"]["decision"] == "redraw"
    assert decided["adjudication"]["expert"].startswith("annotator-")
    assert third.adjudications == [decided["adjudication"]["id"]]


def test_adjudicated_only_exports_only_the_experts_regions(export_world):
    world = export_world
    region = world["regions"][1]
    adjudication_decide(
        region=region, expert=world["expert"], decision="accept", reason="looks right"
    )
    export = build(world, labels="adjudicated")
    manifest = json.loads(open_archive(export).read("manifest.json"))
    assert [r["id"] for r in manifest["regions"]] == [f"region-{region.pk}"]
    # No contested pixels once an expert decided: the mask has no ignore value.
    assert "ignore" not in export.counts["train"]["pixels"] | export.counts["val"]["pixels"]


def test_min_agreement_leaves_out_regions_below_it(export_world):
    world = export_world
    dice = sorted({round(r.dice, 6) for r in world["runs"]})
    export = build(world, min_agreement=dice[-1])
    manifest = json.loads(open_archive(export).read("manifest.json"))
    kept = {r["id"] for r in manifest["regions"]}
    assert kept == {f"region-{r.region_id}" for r in world["runs"] if round(r.dice, 6) >= dice[-1]}
    assert 0 < len(kept) < len(world["runs"])


def _all_text(archive) -> bytes:
    """Every member's name and bytes, npz members opened too (their inner names and arrays)."""
    import zipfile

    chunks = []
    for name in archive.namelist():
        chunks.append(name.encode())
        data = archive.read(name)
        chunks.append(data)
        if name.endswith(".npz"):
            with zipfile.ZipFile(io.BytesIO(data)) as inner:
                chunks += [n.encode() for n in inner.namelist()]
                chunks += [inner.read(n) for n in inner.namelist()]
    return b"\n".join(chunks).lower()


def test_no_username_or_slide_file_name_appears_in_a_deidentified_archive(export_world):
    world = export_world
    archive = open_archive(build(world))
    blob = _all_text(archive)
    secrets = [*USERNAMES, *SLIDE_STEMS, *CASES, "mgr", "exp", "res", "lurker"]
    secrets = [s for s in secrets if len(s) > 3]  # 3-letter names would match random bytes
    for user in world["annotators"] + [world["expert"]]:
        secrets.append(f'"annotator": {user.pk},')
    found = [s for s in secrets if s.lower().encode() in blob]
    assert not found, found
    assert not any(n.lower().endswith((".svs", ".tiff")) for n in archive.namelist())
    manifest = json.loads(archive.read("manifest.json"))
    assert all("file_name" not in s for s in manifest["slides"])
    # Label and macro images are never exported, whatever the slide holds.
    assert not any("label" in n.split("/")[-1] or "macro" in n for n in archive.namelist())

    # The test can fail: with the setting off, the slide file names are there.
    type(world["project"]).objects.filter(pk=world["project"].pk).update(pseudonymize_slides=False)
    named = _all_text(open_archive(build(world)))
    assert SLIDE_STEMS[0].encode() in named
    assert not any(u.encode() in named for u in USERNAMES)  # people stay pseudonymous


def test_the_command_builds_an_export_and_names_its_hash(export_world, tmp_path):
    from django.core.management import call_command

    out = io.StringIO()
    target = tmp_path / "set.zip"
    call_command(
        "export_training_set",
        "--project",
        export_world["project"].slug,
        "--classes",
        "gland",
        "--patch-size",
        "128",
        "--split-by",
        "case",
        "--out",
        str(target),
        stdout=out,
    )
    export = TrainingExport.objects.get()
    assert export.status == ExportStatus.READY and export.export_hash in out.getvalue()
    import zipfile

    with zipfile.ZipFile(target) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert [c["name"] for c in manifest["classes"]] == ["background", "gland"]
    assert manifest["config"]["split_by"] == "case"
    with pytest.raises(Exception, match="unknown classes"):
        call_command(
            "export_training_set", "--project", export_world["project"].slug, "--classes", "x"
        )


def test_jpeg_patches_are_stated_and_the_readme_describes_every_kind_of_file(export_world):
    archive = open_archive(build(export_world, image_format="jpeg", patch_size=100, stride=100))
    rows = _index(archive)
    assert rows and all(r["image"].endswith(".jpg") for r in rows)
    image = Image.open(io.BytesIO(archive.read(rows[0]["image"])))
    assert image.format == "JPEG" and image.size == (100, 100)
    readme = archive.read("README.md").decode()
    assert "JPEG" in readme and "CC BY 4.0" in readme and "A crowd of glands" in readme
    kinds = {name.split("/")[0] for name in archive.namelist()}
    assert kinds == {
        "images",
        "masks",
        "soft_labels",
        "raw_masks",
        "coco",
        "geojson",
        "patches.csv",
        "manifest.json",
        "README.md",
        "checksums.sha256",
    }
    for kind in kinds - {"README.md"}:
        assert f"`{kind}" in readme, kind
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["image_format"] == "jpeg"
    assert manifest["licence"].startswith("CC BY 4.0") and manifest["citation"]
