"""What ../shared/data/README.md lists for each slide (OpenSlide 4.0), copied by hand."""

from __future__ import annotations

# file name -> (vendor, width, height, levels, mpp or None)
SLIDES = {
    "cmu-1-small-region.svs": ("aperio", 2220, 2967, 1, 0.499),
    "tcga-cr-7395-01a-01-ts1.svs": ("aperio", 4443, 3567, 2, None),
    "hamamatsu-dapi.ndpi": ("hamamatsu", 3968, 4864, 7, 0.228),
    "hamamatsu-tritc.ndpi": ("hamamatsu", 3968, 4864, 7, 0.228),
    "multiframe_camelyon_challenge_image.dcm": ("dicom", 1152, 700, 1, None),
}
# The README gives no mpp for the DICOM file; it is not asserted.
MPP_NOT_LISTED = {"multiframe_camelyon_challenge_image.dcm"}
