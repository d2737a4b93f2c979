"""Server-side SVG bar charts for the managers' dashboard (no JavaScript needed)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH = 640
LEFT, RIGHT, TOP, BOTTOM = 34, 8, 14, 26


@dataclass(frozen=True)
class Series:
    """One stacked layer: its name (legend), colour and one value per category."""

    name: str
    colour: str
    values: Sequence[int]


def nice_max(value: int) -> int:
    """A round upper bound for the value axis, divisible into 4 integer steps (or `value` ≤ 4)."""
    if value <= 4:
        return max(1, value)
    steps = sorted(m * 10**e for e in range(8) for m in (1, 2, 3, 5))
    return next(step for step in steps if value <= step * 4) * 4


def stacked_bars(
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    height: int = 220,
    label_every: int = 1,
    show_totals: bool = True,
    width: int = WIDTH,
) -> Markup:
    """An accessible SVG of stacked bars, one per category; totals printed above each bar."""
    n = len(categories)
    totals = [sum(s.values[i] for s in series) for i in range(n)]
    top = nice_max(max(totals, default=0))
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    slot = plot_w / max(n, 1)
    bar_w = min(slot * 0.68, 56)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    parts += _grid(top, plot_w, plot_h)
    for i, label in enumerate(categories):
        x = LEFT + slot * i + (slot - bar_w) / 2
        base = float(TOP + plot_h)
        for s in series:
            v = s.values[i]
            if not v:
                continue
            h = plot_h * v / top
            base -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{s.colour}" rx="2"><title>{escape(label)} · {escape(s.name)}: {v}'
                "</title></rect>"
            )
        if show_totals and totals[i]:
            parts.append(
                f'<text class="total" x="{x + bar_w / 2:.1f}" y="{base - 4:.1f}" '
                f'text-anchor="middle">{totals[i]}</text>'
            )
        if i % label_every == 0:
            parts.append(
                f'<text class="cat" x="{x + bar_w / 2:.1f}" y="{height - 8}" '
                f'text-anchor="middle">{escape(_short(label, max(6, int(slot / 6.5))))}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def legend(series: Sequence[Series]) -> Markup:
    """The HTML legend of a chart's series."""
    items = "".join(
        f'<span class="legend-item"><i style="background:{s.colour}"></i>{escape(s.name)}</span>'
        for s in series
    )
    return Markup(f'<div class="legend">{items}</div>')


def _grid(top: int, plot_w: float, plot_h: float) -> list[str]:
    steps = 4 if top >= 4 else top
    out = []
    for k in range(steps + 1):
        value = top * k / steps
        y = TOP + plot_h - plot_h * k / steps
        out.append(
            f'<line class="grid" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{value:g}</text>"
        )
    return out


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
