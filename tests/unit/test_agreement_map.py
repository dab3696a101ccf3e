"""The agreement heat map (pure): colours and transparency worked out by hand."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from annotation.agreement_map import agreement, agreement_png

REPO = Path(__file__).resolve().parents[2]


def _votes() -> np.ndarray:
    """(3 classes, 1, 5): all background; a three-way split; 2 of 3 tumour; all tumour;
    nobody rated."""
    third = 1 / 3
    return np.array(
        [
            [[1.0, third, third, 0.0, 0.0]],
            [[0.0, third, 2 * third, 1.0, 0.0]],
            [[0.0, third, 0.0, 0.0, 0.0]],
        ]
    )


def test_agreement_is_the_majority_share_and_nan_where_nobody_rated():
    share = agreement(_votes())
    assert np.allclose(share[0, :4], [1.0, 1 / 3, 2 / 3, 1.0])
    assert np.isnan(share[0, 4])


def test_the_png_is_red_for_a_split_amber_halfway_green_for_agreement():
    rgba = np.asarray(Image.open(io.BytesIO(agreement_png(_votes()))))
    assert rgba.shape == (1, 5, 4)
    # With 3 classes, a share maps onto [1/3, 1]: 1/3 -> red, 2/3 -> amber, 1 -> green.
    assert rgba[0, 1].tolist() == [215, 48, 39, 255]
    assert rgba[0, 2].tolist() == [254, 224, 139, 255]
    assert rgba[0, 3].tolist() == [26, 152, 80, 255]
    # Agreed background and unrated pixels are transparent.
    assert rgba[0, 0, 3] == 0 and rgba[0, 4, 3] == 0


def test_agreement_map_imports_without_django():
    script = "import sys\nimport annotation.agreement_map\nassert 'django' not in sys.modules\n"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
