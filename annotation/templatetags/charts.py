"""Small server-side SVG charts (histogram, bars, scatter, line): no JavaScript, no library.

Each tag returns one ``<svg role="img">`` with a ``<title>`` for screen readers and ``data-*``
attributes on its marks (tests read the figures back from them). Coordinates are SVG user
units; the charts scale to their container's width through ``viewBox``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

GOOD, FAIR, POOR = "#2f8f5b", "#d99a20", "#c4453c"
INK, MUTED, GRID, ACCENT, ACCENT_SOFT = "#1f2430", "#687086", "#e6e8ef", "#8a3b7a", "#d9bfd3"
FONT = 'font-family="system-ui, sans-serif"'


def _n(value: float) -> str:
    """A coordinate, short."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _ticks(top: int, most: int = 5) -> list[int]:
    """Whole-number ticks from 0 to at least ``top``, at most ``most`` + 1 of them."""
    top = max(top, 1)
    step = max(1, math.ceil(top / most))
    for nice in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000):
        if nice >= step:
            step = nice
            break
    return list(range(0, top + step, step)) if top % step else list(range(0, top + 1, step))


def _svg(width: int, height: int, title: str, body: list[str], testid: str) -> SafeString:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'class="chart" role="img" data-testid="{escape(testid)}" {FONT} font-size="11">'
        f"<title>{escape(title)}</title>"
    )
    return mark_safe(head + "".join(body) + "</svg>")  # noqa: S308 - every text part is escaped


def _zone(lower: float, accept: float | None, escalate: float | None) -> str:
    if accept is not None and lower >= accept - 1e-9:
        return GOOD
    if escalate is not None and lower >= escalate - 1e-9:
        return FAIR
    return POOR if escalate is not None else ACCENT


@register.simple_tag
def histogram_svg(
    hist: Any,
    accept: float | None = None,
    escalate: float | None = None,
    unit: str = "region",
    width: int = 480,
    height: int = 240,
) -> SafeString:
    """Bars over [0, 1]; coloured by the zone of each bin's lower edge (accept/escalate)."""
    left, right, top, bottom = 30, 12, 34, 38
    plot_w, plot_h = width - left - right, height - top - bottom
    counts, edges = list(hist.counts), list(hist.edges)
    ticks = _ticks(max(counts) if counts else 0)
    y_max = ticks[-1]
    bar_w = plot_w / len(counts)
    body = []
    for t in ticks:
        y = top + plot_h - plot_h * t / y_max
        body.append(
            f'<line x1="{left}" x2="{width - right}" y1="{_n(y)}" y2="{_n(y)}" stroke="{GRID}"/>'
        )
        body.append(
            f'<text x="{left - 6}" y="{_n(y + 4)}" text-anchor="end" fill="{MUTED}">{t}</text>'
        )
    for i, count in enumerate(counts):
        lo, hi = edges[i], edges[i + 1]
        h = plot_h * count / y_max
        x = left + i * bar_w
        colour = _zone(lo, accept, escalate)
        noun = unit if count == 1 else unit + "s"
        body.append(
            f'<rect class="bar" data-bin="{i}" data-low="{lo:g}" data-count="{count}" '
            f'x="{_n(x + 2)}" y="{_n(top + plot_h - h)}" width="{_n(bar_w - 4)}" '
            f'height="{_n(h)}" rx="2" fill="{colour}">'
            f"<title>Dice {lo:g}–{hi:g}: {count} {escape(noun)}</title></rect>"
        )
        if count:
            body.append(
                f'<text x="{_n(x + bar_w / 2)}" y="{_n(top + plot_h - h - 4)}" '
                f'text-anchor="middle" fill="{INK}" font-weight="600">{count}</text>'
            )
    for i, edge in enumerate(edges):
        x = left + i * bar_w
        body.append(
            f'<text x="{_n(x)}" y="{top + plot_h + 15}" text-anchor="middle" '
            f'fill="{MUTED}">{edge:g}</text>'
        )
    body.append(
        f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" '
        f'y2="{top + plot_h}" stroke="{MUTED}"/>'
    )
    for value, label in ((escalate, "escalate"), (accept, "accept")):
        if value is None:
            continue
        x = left + plot_w * value
        body.append(
            f'<line class="threshold" x1="{_n(x)}" x2="{_n(x)}" y1="{top - 18}" '
            f'y2="{top + plot_h}" stroke="{INK}" stroke-dasharray="4 3"/>'
        )
        body.append(
            f'<text x="{_n(x + 4)}" y="{top - 21}" fill="{INK}">{label} ≥ {value:g}</text>'
            if label == "accept"
            else f'<text x="{_n(x - 4)}" y="{top - 21}" text-anchor="end" fill="{INK}">'
            f"expert &lt; {value:g}</text>"
        )
    body.append(
        f'<text x="{left + plot_w / 2}" y="{height - 4}" text-anchor="middle" '
        f'fill="{MUTED}">mean pairwise Dice of the current consensus</text>'
    )
    title = "Agreement: " + ", ".join(
        f"{edges[i]:g}–{edges[i + 1]:g}: {c}" for i, c in enumerate(counts)
    )
    return _svg(width, height, title, body, "agreement-histogram")


@register.simple_tag
def throughput_svg(rows: Sequence[Any], recent_days: int = 7, width: int = 560) -> SafeString:
    """One horizontal bar per annotator: all submissions, the last ``recent_days`` darker."""
    label_w, right, row_h, top = 120, 44, 24, 6
    height = top + row_h * max(len(rows), 1) + 22
    plot_w = width - label_w - right
    top_value = max([r.submitted for r in rows] + [1])
    body = []
    for i, r in enumerate(rows):
        y = top + i * row_h
        total_w = plot_w * r.submitted / top_value
        recent_w = plot_w * r.submitted_recent / top_value
        name = escape(r.username) + (" (excluded)" if r.excluded else "")
        body.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" '
            f'fill="{MUTED if r.excluded else INK}">{name}</text>'
        )
        body.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{_n(plot_w)}" height="{row_h - 8}" '
            f'rx="3" fill="{GRID}"/>'
        )
        body.append(
            f'<rect class="bar" data-user="{escape(r.username)}" data-count="{r.submitted}" '
            f'x="{label_w}" y="{y + 3}" width="{_n(total_w)}" height="{row_h - 8}" rx="3" '
            f'fill="{ACCENT_SOFT}"><title>{escape(r.username)}: {r.submitted} submitted, '
            f"{r.submitted_recent} in the last {recent_days} days</title></rect>"
        )
        body.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{_n(recent_w)}" '
            f'height="{row_h - 8}" rx="3" fill="{ACCENT}"/>'
        )
        body.append(
            f'<text x="{_n(label_w + total_w + 6)}" y="{y + 15}" fill="{INK}">{r.submitted}</text>'
        )
    legend_y = top + row_h * max(len(rows), 1) + 12
    body.append(
        f'<rect x="{label_w}" y="{legend_y - 8}" width="10" height="10" fill="{ACCENT}"/>'
        f'<text x="{label_w + 14}" y="{legend_y + 1}" fill="{MUTED}">last {recent_days} days'
        f'</text><rect x="{label_w + 104}" y="{legend_y - 8}" width="10" height="10" '
        f'fill="{ACCENT_SOFT}"/><text x="{label_w + 118}" y="{legend_y + 1}" fill="{MUTED}">'
        f"earlier</text>"
    )
    return _svg(width, height, "Submitted regions per annotator", body, "throughput-chart")


@register.simple_tag
def reliability_svg(rows: Sequence[Any], width: int = 360, height: int = 300) -> SafeString:
    """Sensitivity against specificity per annotator; filled dots are measured on gold."""
    left, right, top, bottom = 40, 16, 14, 38
    points = [r for r in rows if r.sensitivity is not None and r.specificity is not None]
    values = [v for r in points for v in (r.sensitivity, r.specificity)]
    low = min([0.5] + [math.floor(v * 10) / 10 for v in values])
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(v: float) -> float:
        return left + plot_w * (v - low) / (1 - low)

    def sy(v: float) -> float:
        return top + plot_h - plot_h * (v - low) / (1 - low)

    body = []
    steps = round((1 - low) * 10)
    for k in range(steps + 1):
        v = low + k / 10
        body.append(
            f'<line x1="{_n(sx(v))}" x2="{_n(sx(v))}" y1="{top}" y2="{top + plot_h}" '
            f'stroke="{GRID}"/><line x1="{left}" x2="{left + plot_w}" y1="{_n(sy(v))}" '
            f'y2="{_n(sy(v))}" stroke="{GRID}"/>'
        )
        body.append(
            f'<text x="{_n(sx(v))}" y="{top + plot_h + 14}" text-anchor="middle" '
            f'fill="{MUTED}">{v:.1f}</text><text x="{left - 5}" y="{_n(sy(v) + 4)}" '
            f'text-anchor="end" fill="{MUTED}">{v:.1f}</text>'
        )
    for r in points:
        x, y = sx(r.specificity), sy(r.sensitivity)
        gold = r.reliability_source == "gold"
        fill = ACCENT if gold else "#fff"
        body.append(
            f'<circle class="dot" data-user="{escape(r.username)}" cx="{_n(x)}" cy="{_n(y)}" '
            f'r="5" fill="{fill}" stroke="{ACCENT}" stroke-width="2"><title>'
            f"{escape(r.username)}: sensitivity {r.sensitivity:.2f}, specificity "
            f"{r.specificity:.2f} ({'gold' if gold else 'STAPLE'})</title></circle>"
            + (  # names near the right edge go on the dot's left
                f'<text x="{_n(x - 8)}" y="{_n(y + 4)}" text-anchor="end" fill="{INK}">'
                if x > left + plot_w * 0.75
                else f'<text x="{_n(x + 8)}" y="{_n(y + 4)}" fill="{INK}">'
            )
            + f"{escape(r.username)}</text>"
        )
    if not points:
        body.append(
            f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" text-anchor="middle" '
            f'fill="{MUTED}">no reliability estimated yet</text>'
        )
    body.append(
        f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle" '
        f'fill="{MUTED}">specificity →</text>'
    )
    body.append(
        f'<text transform="translate(11 {top + plot_h / 2}) rotate(-90)" '
        f'text-anchor="middle" fill="{MUTED}">sensitivity →</text>'
    )
    return _svg(
        width,
        height,
        "Annotator reliability: sensitivity against specificity",
        body,
        "reliability-chart",
    )


@register.simple_tag
def curve_svg(
    values: Sequence[float], target: float | None = None, width: int = 420, height: int = 150
) -> SafeString:
    """A learning curve: one dot per scored gold region in order, with the target Dice."""
    left, right, top, bottom = 34, 12, 12, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(values)

    def sx(i: int) -> float:
        return left + (plot_w / 2 if n == 1 else plot_w * i / (n - 1))

    def sy(v: float) -> float:
        return top + plot_h * (1 - v)

    body = []
    for v in (0.0, 0.5, 1.0):
        body.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{_n(sy(v))}" y2="{_n(sy(v))}" '
            f'stroke="{GRID}"/><text x="{left - 5}" y="{_n(sy(v) + 4)}" '
            f'text-anchor="end" fill="{MUTED}">{v:g}</text>'
        )
    if target is not None:
        body.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{_n(sy(target))}" '
            f'y2="{_n(sy(target))}" stroke="{GOOD}" stroke-dasharray="4 3"/>'
            f'<text x="{left + plot_w}" y="{_n(sy(target) - 4)}" text-anchor="end" '
            f'fill="{GOOD}">target {target:g}</text>'
        )
    if n > 1:
        path = " ".join(f"{_n(sx(i))},{_n(sy(v))}" for i, v in enumerate(values))
        body.append(f'<polyline points="{path}" fill="none" stroke="{ACCENT}" stroke-width="2"/>')
    for i, v in enumerate(values):
        colour = GOOD if target is None or v >= target else POOR
        body.append(
            f'<circle class="dot" data-dice="{v:.4f}" cx="{_n(sx(i))}" cy="{_n(sy(v))}" '
            f'r="4" fill="{colour}"><title>gold region {i + 1}: Dice {v:.2f}</title>'
            f"</circle>"
        )
    body.append(
        f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle" '
        f'fill="{MUTED}">your gold regions, oldest first</text>'
    )
    return _svg(width, height, "Your Dice on gold regions", body, "gold-curve")


def _ring_path(ring: Sequence[Sequence[float]]) -> str:
    points = [f"{_n(float(x))} {_n(float(y))}" for x, y, *_ in ring]
    return "M" + " L".join(points) + " Z" if points else ""


@register.simple_tag
def geometry_path(geometry: dict[str, Any]) -> str:
    """SVG path data of a GeoJSON Polygon/MultiPolygon (holes as sub-paths, even-odd fill)."""
    kind, coords = geometry.get("type"), geometry.get("coordinates") or []
    polygons = [coords] if kind == "Polygon" else coords if kind == "MultiPolygon" else []
    return " ".join(_ring_path(ring) for polygon in polygons for ring in polygon)
