"""Server-rendered charts as inline SVG (no JavaScript chart library): bars per minute (stacked
by series) and lines, with a y axis in round steps and the time at the x axis's ends."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 720, 180
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 10, 22
#: colours of series (results, lines), in order
PALETTE = {
    "success": "#1c7c3c", "failed": "#b3261e", "canceled": "#9a6700", "none": "#6b7380",
    "average": "#1f5fbf", "largest": "#b3261e", "finished": "#1f5fbf",
}  # fmt: skip
OTHER_COLOURS = ("#7b4fb8", "#0f8a8a", "#c2571a", "#5b6b8c")


def colour(name: str, index: int = 0) -> str:
    return PALETTE.get(name, OTHER_COLOURS[index % len(OTHER_COLOURS)])


def nice_top(value: float) -> float:
    """The axis's top: ``value`` rounded up to 1, 2 or 5 times a power of ten (at least 1)."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)  # pragma: no cover


def _number(value: float) -> str:
    return f"{value:g}" if value < 10_000 else f"{value / 1000:g}k"


def _frame(title: str, top: float, unit: str, start: datetime, end: datetime) -> list[str]:
    plot_h = HEIGHT - TOP - BOTTOM
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for k in range(5):
        y = TOP + plot_h * k / 4
        value = top * (4 - k) / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
        )
        parts.append(
            f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{_number(value)}{unit}</text>'
        )
    base = HEIGHT - BOTTOM
    parts.append(f'<text x="{LEFT}" y="{base + 16}">{start:%H:%M}</text>')
    parts.append(
        f'<text x="{WIDTH - RIGHT}" y="{base + 16}" text-anchor="end">{end:%H:%M} UTC</text>'
    )
    return parts


def stacked_bars(
    title: str,
    bars: Sequence[Mapping[str, float]],
    series: Sequence[str],
    start: datetime,
    end: datetime,
    unit: str = "",
) -> Markup:
    """A bar per entry of ``bars`` (one per minute), each stacked by ``series``."""
    top = nice_top(max((sum(bar.values()) for bar in bars), default=0))
    parts = _frame(title, top, unit, start, end)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(bars), 1)
    for index, bar in enumerate(bars):
        y = float(HEIGHT - BOTTOM)
        for number, name in enumerate(series):
            value = bar.get(name, 0)
            if not value:
                continue
            h = plot_h * value / top
            y -= h
            x, w = LEFT + index * slot + 1, max(slot - 2, 1)
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" '
                f'height="{h:.1f}" fill="{colour(name, number)}" class="bar series-{escape(name)}">'
                f"<title>{escape(name)}: {_number(value)}</title></rect>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def lines(
    title: str,
    values: Mapping[str, Sequence[float | None]],
    start: datetime,
    end: datetime,
    unit: str = "",
) -> Markup:
    """A line per series; a None is a gap (no value that minute), a lone value a dot."""
    known = [v for series in values.values() for v in series if v is not None]
    top = nice_top(max(known, default=0))
    parts = _frame(title, top, unit, start, end)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    for number, (name, series) in enumerate(values.items()):
        slot = plot_w / max(len(series), 1)
        points = [
            None if v is None else (LEFT + (i + 0.5) * slot, HEIGHT - BOTTOM - plot_h * v / top)
            for i, v in enumerate(series)
        ]
        colour_ = colour(name, number)
        run: list[str] = []
        for point in [*points, None]:
            if point is not None:
                run.append(f"{point[0]:.1f},{point[1]:.1f}")
                continue
            if len(run) > 1:
                parts.append(
                    f'<polyline points="{" ".join(run)}" fill="none" stroke="{colour_}" '
                    f'stroke-width="2" class="line series-{escape(name)}"/>'
                )
            elif run:
                x, y = run[0].split(",")
                parts.append(
                    f'<circle cx="{x}" cy="{y}" r="2.5" fill="{colour_}" '
                    f'class="line series-{escape(name)}"/>'
                )
            run = []
    parts.append("</svg>")
    return Markup("".join(parts))
