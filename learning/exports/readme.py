"""The README inside an export archive: what each file is (pure: standard library)."""

from __future__ import annotations

from typing import Any

__all__ = ["archive_readme"]


def archive_readme(manifest: dict[str, Any]) -> str:
    """Markdown describing the archive's files, with the figures of ``manifest``."""
    config = manifest["config"]
    classes = ", ".join(f"{c['index']} = {c['name']}" for c in manifest["classes"])
    ignore = manifest["ignore_value"]
    ext = "png" if config["image_format"] == "png" else "jpg"
    image_kind = (
        "PNG (lossless, RGB)"
        if config["image_format"] == "png"
        else "JPEG (RGB, quality 90, no chroma subsampling)"
    )
    counts = manifest["counts"]
    lines = [
        f"# Training set: {manifest['project']['name']}",
        "",
        f"Resolution {manifest['resolution']['mpp']} micrometres per pixel; patches of "
        f"{config['patch_size']} px every {config['stride']} px; labels: {config['labels']}"
        + (
            f" (mean pairwise Dice at least {config['min_agreement']})"
            if config["labels"] == "consensus"
            else ""
        )
        + f"; split by {config['split_by']} with seed {config['seed']}.",
        "",
        "Patches per split: "
        + ", ".join(f"{split} {counts[split]['patches']}" for split in ("train", "val", "test"))
        + ".",
        "",
        f"Classes (mask values): {classes}; {ignore} = ignore (contested pixels: the annotators'",
        "votes were split and no expert decided them; skip them in the loss).",
        "",
        "## Files",
        "",
        f"- `images/<split>/<slide>/<region>/y<row>_x<col>.{ext}`: image patches, {image_kind}.",
        "  `row`, `col` are the patch's offset in the region at the export's resolution.",
        "- `masks/<split>/<slide>/<region>/y<row>_x<col>.png`: indexed PNG label masks aligned",
        "  pixel for pixel with the image of the same name; the pixel values are the class",
        f"  indices above (the palette only colours them), {ignore} where contested. Patches at",
        f"  a region's edge are padded: white image, mask {ignore}.",
        "- `soft_labels/<slide>/<region>.npz`: `probability`, float32 `(classes, H, W)`, the",
        "  per-pixel consensus probability of each class over the whole region (`numpy.load`);",
        "  one-hot where an expert decided the region. Patch `y<row>_x<col>` is",
        "  `probability[:, row:row+size, col:col+size]`.",
        "- `raw_masks/<slide>/<region>/<annotator>.png`: each annotator's own mask of the region,",
        f"  same classes, {ignore} where the annotator could not assess it. The annotator",
        "  pseudonyms and their reliability estimates are in `manifest.json` (`annotators`).",
        "- `coco/<split>.json`: COCO instance segmentation, one image per patch; each",
        "  annotation is a 4-connected component of one class, `segmentation` as uncompressed",
        "  RLE (decodes to exactly the PNG mask's pixels) and `polygons` (pixel-edge outlines",
        "  in patch pixels; a hole is joined to its shell by a zero-width cut).",
        "- `geojson/<slide>.geojson`: the answers' polygons per slide at level-0 coordinates,",
        "  with `classification` (QuPath: File > Import objects).",
        "- `patches.csv`: one row per patch: split, slide, region, files, offset, level-0",
        "  corner, downsample (level-0 pixels per export pixel), ignored pixels.",
        "- `manifest.json`: provenance: slides (checksums, metadata), regions with their",
        "  consensus method, parameters, agreement and adjudications, annotator pseudonyms and",
        "  reliability, model versions trained on these answers, counts per class and split,",
        "  the licence and the citation.",
        "- `checksums.sha256`: sha256 of every other file (`sha256sum -c checksums.sha256`);",
        "  the sha256 of this file names the export.",
        "",
    ]
    if manifest.get("licence"):
        lines += ["## Licence", "", manifest["licence"], ""]
    if manifest.get("citation"):
        lines += ["## Citation", "", manifest["citation"], ""]
    return "\n".join(lines)
