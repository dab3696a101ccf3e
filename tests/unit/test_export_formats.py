"""Export formats (pure): COCO RLE and polygons against pycocotools, splits, deterministic zips."""

from __future__ import annotations

import hashlib
import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from annotation.pseudonyms import pseudonym
from learning.exports.archive import CHECKSUMS, DeterministicZip, encode_mask, npz_bytes
from learning.exports.coco import CocoSink, instances, rle_encode
from learning.exports.splits import assign_splits, patch_origins

mask_utils = pytest.importorskip("pycocotools.mask")


def _ring_mask() -> np.ndarray:
    """A 30 x 30 mask: a 20-px square of class 1 with a 6-px hole, a bar of class 2, ignore."""
    mask = np.zeros((30, 30), dtype=np.uint8)
    mask[2:22, 3:23] = 1
    mask[8:14, 9:15] = 0  # the hole (a gland's lumen)
    mask[25:28, 0:30] = 2
    mask[0:2, 0:5] = 255
    return mask


def test_rle_decodes_in_pycocotools_to_the_same_pixels():
    mask = _ring_mask() == 1
    rle = rle_encode(mask)
    decoded = mask_utils.decode(mask_utils.frPyObjects(rle, *rle["size"]))
    assert decoded.shape == (30, 30) and (decoded.astype(bool) == mask).all()
    assert int(mask_utils.area(mask_utils.frPyObjects(rle, 30, 30))) == 20 * 20 - 36


def test_rle_of_a_mask_starting_with_foreground_begins_with_a_zero_run():
    mask = np.zeros((3, 2), dtype=bool)
    mask[0, 0] = True
    assert rle_encode(mask)["counts"] == [0, 1, 5]


def test_instances_are_the_components_and_ignore_is_none_of_them():
    mask = _ring_mask()
    found = list(instances(mask, 255))
    assert [a["category_id"] for a in found] == [1, 2]
    assert found[0]["area"] == 364 and found[0]["bbox"] == [3, 2, 20, 20]
    assert found[1]["bbox"] == [0, 25, 30, 3]


def test_polygons_with_a_hole_rasterise_in_pycocotools_to_the_mask():
    mask = _ring_mask()
    for body in instances(mask, 255):
        want = mask == body["category_id"]
        rles = mask_utils.frPyObjects(body["polygons"], 30, 30)
        got = mask_utils.decode(mask_utils.merge(rles)).astype(bool)
        iou = (got & want).sum() / (got | want).sum()
        assert iou >= 0.98, (body["category_id"], iou)


def test_coco_sink_writes_a_document_json_can_read():
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        sink = CocoSink([{"id": 1, "name": "gland"}], {"description": "t"}, tmp)
        image = sink.add_image("a.png", 30, 30, {})
        for body in instances(_ring_mask(), 255):
            sink.add_annotation(image, body)
        doc = json.loads(b"".join(sink.chunks()))
        sink.close()
    assert [i["id"] for i in doc["images"]] == [1]
    assert [a["id"] for a in doc["annotations"]] == [1, 2]
    assert doc["categories"] == [{"id": 1, "name": "gland"}]


def test_splits_are_seeded_disjoint_and_cover_every_group():
    groups = [f"case-{i}" for i in range(10)] * 3
    first = assign_splits(groups, (0.6, 0.2, 0.2), seed=7)
    assert first == assign_splits(list(reversed(groups)), (0.6, 0.2, 0.2), seed=7)
    assert set(first) == set(groups)
    sizes = {s: sum(1 for v in first.values() if v == s) for s in ("train", "val", "test")}
    assert sizes == {"train": 6, "val": 2, "test": 2}
    others = [assign_splits(groups, (0.6, 0.2, 0.2), seed=s) for s in range(8)]
    assert any(o != first for o in others)


def test_split_fractions_must_sum_to_one():
    with pytest.raises(ValueError, match="sum to 1"):
        assign_splits(["a"], (0.5, 0.2, 0.2), seed=0)


def test_patch_origins_cover_the_axis_and_pad_a_short_one():
    assert patch_origins(10, 4, 4) == [0, 4, 6]
    assert patch_origins(12, 4, 4) == [0, 4, 8]
    assert patch_origins(3, 4, 2) == [0]


def test_pseudonyms_are_stable_secret_and_never_contain_the_key():
    a = pseudonym(b"secret", "annotator", "alice")
    assert a == pseudonym(b"secret", "annotator", "alice")
    assert a != pseudonym(b"other", "annotator", "alice") and "alice" not in a
    assert a.startswith("annotator-") and len(a) == len("annotator-") + 12


def test_zip_is_byte_identical_and_checksums_name_every_other_member():
    def build() -> tuple[bytes, str]:
        buffer = io.BytesIO()
        archive = DeterministicZip(buffer)
        archive.add_bytes("a.txt", b"hello")
        archive.add_stream("b.json", [b"{", b"}"])
        digest = archive.close()
        return buffer.getvalue(), digest

    (one, h1), (two, h2) = build(), build()
    assert one == two and h1 == h2
    with zipfile.ZipFile(io.BytesIO(one)) as z:
        assert z.namelist() == ["a.txt", "b.json", CHECKSUMS]
        sums = z.read(CHECKSUMS)
        assert hashlib.sha256(sums).hexdigest() == h1
        assert sums.decode().splitlines() == [
            f"{hashlib.sha256(b'hello').hexdigest()}  a.txt",
            f"{hashlib.sha256(b'{}').hexdigest()}  b.json",
        ]
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_npz_loads_in_numpy_and_is_deterministic():
    arrays = {"probability": np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 2, 2)}
    data = npz_bytes(arrays)
    assert data == npz_bytes(arrays)
    with np.load(io.BytesIO(data)) as loaded:
        assert (loaded["probability"] == arrays["probability"]).all()


def test_mask_png_keeps_class_ids_as_palette_indices():
    mask = _ring_mask()
    image = Image.open(io.BytesIO(encode_mask(mask, bytes(768))))
    assert image.mode == "P" and (np.asarray(image) == mask).all()


def test_png_writer_round_trips_through_pillow_for_rgb_and_indexed_pixels():
    from learning.exports.archive import png_bytes

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    decoded = Image.open(io.BytesIO(png_bytes(rgb)))
    assert decoded.mode == "RGB" and (np.asarray(decoded) == rgb).all()
    mask = rng.integers(0, 4, (19, 7), dtype=np.uint8)
    palette = bytes(range(256)) * 3
    indexed = Image.open(io.BytesIO(png_bytes(mask, palette=palette)))
    assert indexed.mode == "P" and (np.asarray(indexed) == mask).all()
    assert indexed.getpalette()[:6] == list(palette[:6])
    with pytest.raises(ValueError, match="palette"):
        png_bytes(mask)
