"""What a researcher chooses for an export, validated (pure: standard library only)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["LABEL_POLICIES", "SPLIT_BY", "ConfigError", "ExportConfig"]

LABEL_POLICIES = ("consensus", "adjudicated")
SPLIT_BY = ("slide", "case")
IMAGE_FORMATS = ("png", "jpeg")


class ConfigError(ValueError):
    """An export configuration that cannot be built; the message names the field."""


@dataclass(frozen=True)
class ExportConfig:
    """An export's choices.

    ``class_ids``: the LabelClass ids exported as classes 1..K, in this order (others become
    background); ``labels``: ``consensus`` (accepted consensus with mean Dice at least
    ``min_agreement``, and every expert decision) or ``adjudicated`` (expert decisions only);
    ``mpp``: the export's resolution (None: the project's target_mpp); ``patch_size`` and
    ``stride`` in export pixels; ``split_by`` slide or case, ``fractions`` train/val/test,
    ``seed``; ``image_format`` png or jpeg.
    """

    class_ids: list[int] = field(default_factory=list)
    labels: str = "consensus"
    min_agreement: float = 0.0
    mpp: float | None = None
    patch_size: int = 256
    stride: int = 256
    split_by: str = "slide"
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    seed: int = 0
    image_format: str = "png"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExportConfig:
        """Parse and check user input (JSON, a form); raises :class:`ConfigError`."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown fields {unknown}; known are {sorted(known)}")
        values = dict(data)
        try:
            if "class_ids" in values:
                values["class_ids"] = [int(v) for v in values["class_ids"]]
            for name in ("min_agreement",):
                if name in values:
                    values[name] = float(values[name])
            if values.get("mpp") in ("", None):
                values["mpp"] = None
            elif "mpp" in values:
                values["mpp"] = float(values["mpp"])
            for name in ("patch_size", "seed"):
                if name in values:
                    values[name] = int(values[name])
            if "stride" in values and values["stride"] not in ("", None):
                values["stride"] = int(values["stride"])
            else:
                values["stride"] = int(values.get("patch_size", cls.patch_size))
            if "fractions" in values:
                values["fractions"] = tuple(float(v) for v in values["fractions"])
        except (TypeError, ValueError) as error:
            raise ConfigError(f"malformed value: {error}") from None
        config = cls(**values)
        config.check()
        return config

    def check(self) -> None:
        if self.labels not in LABEL_POLICIES:
            raise ConfigError(f"labels must be one of {list(LABEL_POLICIES)}")
        if self.split_by not in SPLIT_BY:
            raise ConfigError(f"split_by must be one of {list(SPLIT_BY)}")
        if self.image_format not in IMAGE_FORMATS:
            raise ConfigError(f"image_format must be one of {list(IMAGE_FORMATS)}")
        if not (math.isfinite(self.min_agreement) and 0.0 <= self.min_agreement <= 1.0):
            raise ConfigError("min_agreement must lie between 0 and 1")
        if self.mpp is not None and not (math.isfinite(self.mpp) and 0.05 <= self.mpp <= 100):
            raise ConfigError("mpp must lie between 0.05 and 100 micrometres per pixel")
        if not 16 <= self.patch_size <= 4096:
            raise ConfigError("patch_size must lie between 16 and 4096")
        if not 1 <= self.stride <= 4096:
            raise ConfigError("stride must lie between 1 and 4096")
        if len(self.fractions) != 3 or any(not math.isfinite(f) or f < 0 for f in self.fractions):
            raise ConfigError("fractions must be three non-negative numbers")
        if abs(sum(self.fractions) - 1.0) > 1e-6:
            raise ConfigError("fractions must sum to 1")
        if not 0 <= self.seed < 2**32:
            raise ConfigError("seed must lie between 0 and 2**32 - 1")
        if len(set(self.class_ids)) != len(self.class_ids):
            raise ConfigError("class_ids must not repeat")

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["fractions"] = list(self.fractions)
        return data
