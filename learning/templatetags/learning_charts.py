"""Server-side SVG for the learning pages: the learning curve (loss and validation Dice per
epoch) and small formatting filters. No JavaScript, no chart library."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

LOSS, DICE, GRID, MUTED = "#8a3b7a", "#2f8f5b", "#e6e8ef", "#687086"
FONT = 'font-family="system-ui, sans-serif"'


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@register.simple_tag
def learning_curve_svg(
    rows: Sequence[dict[str, Any]], width: int = 560, height: int = 200, epochs: int | None = None
) -> SafeString:
    """Loss (left axis, 0 to its largest value) and validation Dice (right axis, 0..1) per
    epoch; ``epochs`` widens the x axis to the planned count while training runs."""
    left, right, top, bottom = 44, 40, 14, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    points = [
        (int(r["epoch"]), _number(r.get("loss")), _number(r.get("val_dice")))
        for r in rows
        if _number(r.get("epoch")) is not None
    ]
    last = max([p[0] for p in points] + [epochs or 0, 1])
    first = min([p[0] for p in points] + [1])
    top_loss = max([p[1] for p in points if p[1] is not None] + [0.0]) or 1.0

    def sx(epoch: float) -> float:
        span = max(last - first, 1)
        return left + plot_w * (epoch - first) / span

    def sy(fraction: float) -> float:
        return top + plot_h * (1 - fraction)

    body = []
    for f in (0.0, 0.5, 1.0):
        body.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{_n(sy(f))}" y2="{_n(sy(f))}" '
            f'stroke="{GRID}"/>'
            f'<text x="{left - 5}" y="{_n(sy(f) + 4)}" text-anchor="end" fill="{LOSS}">'
            f"{top_loss * f:.3g}</text>"
            f'<text x="{left + plot_w + 5}" y="{_n(sy(f) + 4)}" fill="{DICE}">{f:g}</text>'
        )
    for epoch in sorted({first, last, (first + last) // 2}):
        body.append(
            f'<text x="{_n(sx(epoch))}" y="{top + plot_h + 14}" text-anchor="middle" '
            f'fill="{MUTED}">{epoch}</text>'
        )
    body.append(
        f'<text x="{left + plot_w / 2}" y="{height - 3}" text-anchor="middle" '
        f'fill="{MUTED}">epoch</text>'
    )
    for index, colour, name, scale in ((1, LOSS, "loss", top_loss), (2, DICE, "val_dice", 1.0)):
        series = [(p[0], p[index]) for p in points if p[index] is not None]
        if len(series) > 1:
            path = " ".join(f"{_n(sx(e))},{_n(sy(v / scale))}" for e, v in series)
            body.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        for e, v in series:
            body.append(
                f'<circle class="{name}" data-epoch="{e}" data-value="{v:.4f}" '
                f'cx="{_n(sx(e))}" cy="{_n(sy(v / scale))}" r="3" fill="{colour}">'
                f"<title>epoch {e}: {escape(name)} {v:.4f}</title></circle>"
            )
    if not points:
        body.append(
            f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" text-anchor="middle" '
            f'fill="{MUTED}">no epoch finished yet</text>'
        )
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" class="chart" '
        f'role="img" data-testid="learning-curve" {FONT} font-size="11">'
        "<title>Learning curve: loss and validation Dice per epoch</title>"
    )
    return mark_safe(head + "".join(body) + "</svg>")  # noqa: S308 - text parts are numbers


@register.filter
def duration(seconds: Any) -> str:
    """``75`` -> ``"1 min 15 s"``; ``3720`` -> ``"1 h 2 min"``; missing -> ``"—"``."""
    value = _number(seconds)
    if value is None:
        return "—"
    total = round(value)
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    """``mapping[key]`` in a template (None when absent)."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None
