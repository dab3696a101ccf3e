"""The training set of a project: accepted regions, split by slide, read once into patch caches.

Labels are the accepted answers at the project's ``target_mpp`` (an expert's decision where
there is one, else the accepted consensus), remapped from each answer's compact class indices to
the network's: index 0 background, then the project's non-background classes in their order.
Contested pixels (split votes, the consensus's own definition) are :data:`IGNORE` unless an
expert adjudicated the region.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from annotation.models import LabelClass, Project
from annotation.rasterize import grid_shape
from annotation.selectors_consensus import AcceptedRegion, accepted_regions
from learning.data import IGNORE, PatchCache
from slides.crops import render_image
from slides.models import SlideStatus
from slides.tiling import Box

logger = logging.getLogger(__name__)


def network_classes(project: Project) -> list[int | None]:
    """LabelClass id of each network output: index 0 background (None), then the others."""
    foreground = LabelClass.objects.filter(project=project, is_background=False).order_by(
        "order", "id"
    )
    return [None, *foreground.values_list("pk", flat=True)]


@dataclass(frozen=True)
class TrainingSet:
    """Accepted regions and their split; ``digest`` changes whenever the training data does."""

    project_id: int
    examples: list[AcceptedRegion]
    train_regions: list[int]
    val_regions: list[int]
    class_ids: list[int | None]
    patch_size: int
    target_mpp: float
    digest: str
    validation: str
    consensus_runs: list[int] = field(default_factory=list)
    adjudications: list[int] = field(default_factory=list)

    def describe(self) -> dict[str, object]:
        """Plain-JSON lineage for the run and the model version."""
        return {
            "train_regions": self.train_regions,
            "val_regions": self.val_regions,
            "consensus_runs": self.consensus_runs,
            "adjudications": self.adjudications,
            "class_ids": self.class_ids,
            "patch_size": self.patch_size,
            "target_mpp": self.target_mpp,
            "validation": self.validation,
        }


def _answer_key(accepted: AcceptedRegion) -> str:
    if accepted.adjudication is not None:
        return f"adjudication:{accepted.adjudication.pk}"
    return f"run:{accepted.run.pk}:{accepted.run.arrays_digest}"


def _split_by_slide(slide_ids: list[int], val_fraction: float, seed: int) -> tuple[set[int], str]:
    """Validation slides (a seeded choice) and a sentence saying how validation was done."""
    distinct = sorted(set(slide_ids))
    if len(distinct) < 2 or val_fraction <= 0:
        return set(), "on the training regions (fewer than two slides: no slide to hold out)"
    n_val = min(len(distinct) - 1, max(1, round(val_fraction * len(distinct))))
    chosen = np.random.default_rng(seed).permutation(distinct)[:n_val]
    return {int(s) for s in chosen}, f"on the regions of {n_val} held-out slide(s)"


def training_set_collect(
    *, project: Project, patch_size: int, val_fraction: float, seed: int
) -> TrainingSet:
    """The accepted regions of ready slides with an mpp, split by slide (seeded)."""
    examples = [
        a
        for a in accepted_regions(project)
        if a.region.slide.status == SlideStatus.READY and a.region.slide.mpp
    ]
    val_slides, validation = _split_by_slide(
        [a.region.slide_id for a in examples], val_fraction, seed
    )
    train = [a.region.pk for a in examples if a.region.slide_id not in val_slides]
    val = [a.region.pk for a in examples if a.region.slide_id in val_slides]
    class_ids = network_classes(project)
    keys = [
        [a.region.pk, a.region.slide.checksum, list(a.region.bounds), _answer_key(a)]
        for a in examples
    ]
    payload = {
        "regions": keys,
        "val": val,
        "classes": class_ids,
        "patch_size": patch_size,
        "target_mpp": project.target_mpp,
        "contested_share": project.contested_share,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    return TrainingSet(
        project_id=project.pk,
        examples=examples,
        train_regions=train,
        val_regions=val,
        class_ids=class_ids,
        patch_size=patch_size,
        target_mpp=project.target_mpp,
        digest=digest,
        validation=validation,
        consensus_runs=sorted(a.run.pk for a in examples if a.run is not None),
        adjudications=sorted(a.adjudication.pk for a in examples if a.adjudication is not None),
    )


def _label_lookup(answer_classes: list[int | None], network: list[int | None]) -> np.ndarray:
    """Compact index of an answer -> network index (classes the network lacks: IGNORE)."""
    index = {cid: i for i, cid in enumerate(network)}
    lookup = np.full(256, IGNORE, dtype=np.uint8)
    for compact, class_id in enumerate(answer_classes):
        # An answer's index 0 is its background, whichever LabelClass (or none) stands for it.
        lookup[compact] = 0 if compact == 0 else index.get(class_id, IGNORE)
    return lookup


def region_arrays(
    accepted: AcceptedRegion, network: list[int | None]
) -> tuple[np.ndarray, np.ndarray]:
    """The region's RGB image (H, W, 3) uint8 read from the slide at the answer's grid, and its
    labels (H, W) uint8 in network indices with IGNORE on contested, unadjudicated pixels."""
    region, slide = accepted.region, accepted.region.slide
    downsample = region.project.target_mpp / slide.mpp
    box = Box(region.x, region.y, region.width, region.height)
    image = np.asarray(render_image(slide.path, slide.level_downsamples, box, downsample))
    labels = _label_lookup(accepted.class_ids, network)[accepted.labels.astype(np.int64)]
    if accepted.adjudication is None:
        labels[accepted.contested] = IGNORE
    if labels.shape != image.shape[:2]:
        raise ValueError(
            f"region {region.pk}: answer grid {labels.shape} differs from the image "
            f"{image.shape[:2]} (target_mpp changed since the merge?)"
        )
    return image, labels


def _patch_origins(height: int, width: int, size: int) -> list[tuple[int, int]]:
    """Top-left corners of ``size`` patches covering (height, width), the last ones padded."""
    ys = range(0, max(1, height - size // 4), size) if height > size else [0]
    xs = range(0, max(1, width - size // 4), size) if width > size else [0]
    return [(y, x) for y in ys for x in xs]


def _count_patches(training: TrainingSet, region_ids: set[int]) -> int:
    total = 0
    for a in training.examples:
        if a.region.pk in region_ids:
            ds = training.target_mpp / a.region.slide.mpp
            h, w = grid_shape(a.region.width, a.region.height, ds)
            total += len(_patch_origins(h, w, training.patch_size))
    return total


def _fill(cache: PatchCache, image: np.ndarray, labels: np.ndarray, start: int, size: int) -> int:
    height, width = labels.shape
    n = start
    for y, x in _patch_origins(height, width, size):
        img = image[y : y + size, x : x + size]
        lab = labels[y : y + size, x : x + size]
        cache.images[n] = 255  # white, as outside the scan
        cache.images[n, : img.shape[0], : img.shape[1]] = img
        cache.labels[n, : lab.shape[0], : lab.shape[1]] = lab  # the rest stays IGNORE
        n += 1
    return n


def training_cache_build(
    *, training: TrainingSet, directory: Path
) -> tuple[PatchCache, PatchCache]:
    """Read every accepted region once into ``directory``/train and /val patch caches.

    Built in a temporary folder renamed into place, so a killed build leaves nothing half
    written and a finished one is reused as it is.
    """
    if training_cache_exists(directory):
        return training_cache_open(directory)
    tmp = directory.with_name(f"{directory.name}.tmp-{uuid.uuid4().hex[:8]}")
    val_ids = set(training.val_regions) or set(training.train_regions)
    size = training.patch_size
    train = PatchCache.create(
        tmp / "train", _count_patches(training, set(training.train_regions)), size, size
    )
    val = PatchCache.create(tmp / "val", _count_patches(training, val_ids), size, size)
    n_train = n_val = 0
    for accepted in training.examples:
        rid = accepted.region.pk
        if rid not in training.train_regions and rid not in val_ids:
            continue
        image, labels = region_arrays(accepted, training.class_ids)
        if rid in training.train_regions:
            n_train = _fill(train, image, labels, n_train, size)
        if rid in val_ids:
            n_val = _fill(val, image, labels, n_val, size)
    train.flush()
    val.flush()
    del train, val
    directory.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(tmp, directory)
    except OSError:  # another delivery built it first: theirs stands
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("training cache %s: %d train, %d val patches", directory, n_train, n_val)
    return training_cache_open(directory)


def training_cache_exists(directory: Path) -> bool:
    return (directory / "train" / "meta.json").exists()


def training_cache_open(directory: Path) -> tuple[PatchCache, PatchCache]:
    """The train and validation caches built by :func:`training_cache_build`, memory-mapped."""
    return PatchCache.open(directory / "train"), PatchCache.open(directory / "val")
