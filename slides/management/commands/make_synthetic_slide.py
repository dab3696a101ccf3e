"""``manage.py make_synthetic_slide OUTDIR --name NAME --size W[xH] --seed N [--mpp 0.5]``."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from slides.synthetic import SyntheticSpec, write_synthetic_slide

_SIZE = re.compile(r"^(\d+)(?:[xX](\d+))?$")


def _size(text: str) -> tuple[int, int]:
    match = _SIZE.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"size must look like 4096 or 4096x3072, got {text!r}")
    width = int(match.group(1))
    return width, int(match.group(2) or width)


class Command(BaseCommand):
    help = "Write a synthetic H&E-like slide (.tiff), its label mask (.mask.tiff) and GeoJSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("outdir", type=Path)
        parser.add_argument("--name", default="synthetic")
        parser.add_argument("--size", type=_size, default=(4096, 4096), help="W or WxH, level-0 px")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--mpp", type=float, default=0.5, help="micrometres per pixel")

    def handle(self, *args: object, **options: object) -> None:
        width, height = options["size"]
        try:
            spec = SyntheticSpec(
                width=width, height=height, seed=options["seed"], mpp=options["mpp"]
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        files = write_synthetic_slide(options["outdir"], options["name"], spec)
        for path in (files.slide, files.mask, files.geojson):
            self.stdout.write(str(path))
