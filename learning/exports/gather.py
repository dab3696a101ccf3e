"""Reading one accepted region into an export payload: the slide's pixels, read once at the
export's resolution, the answer's label mask (re-rasterised from its polygons at another
resolution), the soft labels and each annotator's raw mask."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image
from skimage.transform import resize

from annotation.models import Submission
from annotation.pseudonyms import pseudonym
from annotation.rasterize import NOT_RATED, grid_shape, rasterize_shapes
from annotation.selectors_consensus import AcceptedRegion
from annotation.services.merge import merge_inputs, rasterize_submission
from learning.exports.writer import RegionPayload
from slides.models import Slide
from slides.readers import handle_cache
from slides.tiling import Box, output_size, plan_crop

logger = logging.getLogger(__name__)

IGNORE = 255


@dataclass(frozen=True)
class Namer:
    """Pseudonyms (or, when the project allows it, real names) for the archive."""

    secret: bytes
    pseudonymize_slides: bool

    def annotator(self, user_id: int | None) -> str | None:
        return None if user_id is None else pseudonym(self.secret, "annotator", str(user_id))

    def slide(self, slide: Slide) -> str:
        if self.pseudonymize_slides:
            return pseudonym(self.secret, "slide", str(slide.pk))
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in slide.name)
        return f"{safe}-{slide.pk}"

    def case(self, slide: Slide) -> str:
        key = slide.case_key or f"slide:{slide.pk}"
        if self.pseudonymize_slides:
            return pseudonym(self.secret, "case", key)
        return key


def read_region_rgb(slide: Slide, box: Box, downsample: float) -> npt.NDArray[np.uint8]:
    """The level-0 ``box`` at ``downsample`` as ``(H, W, 3)`` uint8, read once from the best
    pyramid level (as the crop API renders it: outside the scan is white)."""
    width, height = output_size(box, downsample)
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    with handle_cache().open(slide.path) as entry:
        for piece in plan_crop(box, downsample, slide.level_downsamples or [1.0]):
            region = entry.handle.read_region(
                (piece.box.x, piece.box.y), piece.level, piece.read_size
            )
            rgb = Image.new("RGB", region.size, (255, 255, 255))
            rgb.paste(region, mask=region.getchannel("A"))
            if rgb.size != piece.out_size:
                rgb = rgb.resize(piece.out_size, Image.Resampling.LANCZOS)
            x, y = piece.out_offset
            w, h = piece.out_size
            canvas[y : y + h, x : x + w] = np.asarray(rgb)
    return canvas


def _lut(class_ids: list[int | None], exported: list[int]) -> npt.NDArray[np.uint8]:
    """Compact class index -> export index (1..K for the chosen classes, else 0); -1 -> ignore."""
    position = {cid: i + 1 for i, cid in enumerate(exported)}
    table = np.zeros(len(class_ids) + 1, dtype=np.uint8)
    for index, cid in enumerate(class_ids):
        table[index] = position.get(cid, 0)
    table[-1] = IGNORE  # index NOT_RATED (-1) reads the last entry
    return table


def _apply(table: npt.NDArray[np.uint8], compact: np.ndarray) -> npt.NDArray[np.uint8]:
    assert NOT_RATED == -1
    return table[compact.astype(np.int64)]


def _resampled(array: np.ndarray, shape: tuple[int, int], order: int) -> np.ndarray:
    if array.shape[-2:] == shape:
        return array
    if array.ndim == 2:
        return resize(array, shape, order=order, preserve_range=True, anti_aliasing=False)
    return np.stack([_resampled(a, shape, order) for a in array])


def final_shapes(accepted: AcceptedRegion) -> list[dict[str, Any]]:
    """The answer's outlines ``[{label_class, geometry}]``: the expert's, else the run's."""
    if accepted.adjudication is not None:
        return list(accepted.adjudication.shapes)
    return list(accepted.run.polygons)


@dataclass(frozen=True)
class Target:
    """The export's resolution and chosen classes."""

    mpp: float
    class_ids: list[int]


def region_payload(
    accepted: AcceptedRegion, target: Target, namer: Namer, split: str
) -> RegionPayload:
    """Everything the archive holds of one region, at the export's resolution."""
    region, project = accepted.region, accepted.region.project
    slide = region.slide
    downsample = target.mpp / slide.mpp
    shape = grid_shape(region.width, region.height, downsample)
    compact_ids = accepted.class_ids
    table = _lut(compact_ids, target.class_ids)
    at_target = abs(target.mpp - project.target_mpp) < 1e-9
    adjudicated = accepted.adjudication is not None
    if at_target:
        compact = accepted.labels
        contested = accepted.contested
    else:
        index = {cid: i for i, cid in enumerate(compact_ids) if cid is not None}
        compact = rasterize_shapes(
            [
                (index[s["label_class"]], s["geometry"])
                for s in final_shapes(accepted)
                if s["label_class"] in index
            ],
            origin=(region.x, region.y),
            shape=shape,
            downsample=downsample,
        )
        contested = _resampled(accepted.contested.astype(np.uint8), shape, order=0) > 0
    labels = _apply(table, compact)
    if not adjudicated:
        labels[contested] = IGNORE
    soft = _soft_labels(accepted, table, labels, compact, shape, len(target.class_ids) + 1)
    image = read_region_rgb(slide, Box(region.x, region.y, region.width, region.height), downsample)
    return RegionPayload(
        key=f"region-{region.pk}",
        slide=namer.slide(slide),
        split=split,
        origin=(float(region.x), float(region.y)),
        downsample=downsample,
        image=image,
        labels=labels,
        soft=soft,
        raw=raw_masks(accepted, target.class_ids, downsample, shape, namer),
    )


def _soft_labels(
    accepted: AcceptedRegion,
    table: npt.NDArray[np.uint8],
    labels: np.ndarray,
    compact: np.ndarray,
    shape: tuple[int, int],
    n_export: int,
) -> npt.NDArray[np.float32]:
    """``(K + 1, H, W)`` probability of each export class: the consensus posterior (the
    unchosen classes summed into background), resampled bilinearly; one-hot of the expert's
    answer where there is one."""
    if accepted.adjudication is None and accepted.run is not None:
        # The run's arrays, loaded once by AcceptedRegion (labels, contested, posterior).
        posterior = accepted._arrays["posterior"].astype(np.float32)
        soft = np.zeros((n_export, *posterior.shape[1:]), dtype=np.float32)
        for index in range(posterior.shape[0]):
            soft[table[index]] += posterior[index]
        soft = _resampled(soft, shape, order=1).astype(np.float32)
        total = soft.sum(axis=0, keepdims=True)
        return soft / np.where(total > 0, total, 1.0)
    hard = _apply(table, compact)
    return np.stack([(hard == k) for k in range(n_export)]).astype(np.float32)


def _run_submissions(accepted: AcceptedRegion) -> list[Submission]:
    """The submissions the answer was merged from (the run's inputs), else the current ones."""
    if accepted.run is not None and accepted.run.inputs:
        ids = [row[0] for row in accepted.run.inputs]
        found = Submission.objects.filter(pk__in=ids).prefetch_related("shapes")
        return sorted(found, key=lambda s: s.pk)
    return list(merge_inputs(region=accepted.region).submissions)


def raw_masks(
    accepted: AcceptedRegion,
    exported: list[int],
    downsample: float,
    shape: tuple[int, int],
    namer: Namer,
) -> list[tuple[str, npt.NDArray[np.uint8]]]:
    """Each annotator's own mask at the export's resolution (not rated: the ignore value)."""
    inputs = merge_inputs(region=accepted.region)
    inputs = dataclasses.replace(inputs, downsample=downsample, shape=shape)
    table = _lut(inputs.class_ids, exported)
    return [
        (namer.annotator(s.annotator_id), _apply(table, rasterize_submission(s, inputs)))
        for s in _run_submissions(accepted)
    ]


def release(accepted: AcceptedRegion) -> None:
    """Drop the region's cached arrays once written, so a build holds one region at a time."""
    accepted.__dict__.pop("_arrays", None)
