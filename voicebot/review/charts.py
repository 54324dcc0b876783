"""Server-rendered inline SVG charts (no JavaScript, nothing from a CDN). Colours come from CSS classes in
``static/app.css`` so the page's Content-Security-Policy can forbid inline styles."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

from voicebot.review.kpis import Bar, DayCount


def _ticks(top: float, count: int = 4) -> list[int]:
    """Whole-number gridlines (these charts count calls) from 0 to at least ``top``."""
    if top <= 0:
        return [0, 1]
    raw = max(1.0, top / count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = int(next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw))
    return [step * i for i in range(count + 2) if step * (i - 1) < top]


def _num(value: float) -> str:
    return f"{value:g}" if value < 1000 else f"{value:,.0f}"


def day_columns(days: Sequence[DayCount], width: int = 760, height: int = 220) -> Markup:
    """Calls per day as stacked columns: resolved, transferred, other."""
    left, bottom, top_pad = 34, 24, 8
    plot_w, plot_h = width - left - 6, height - bottom - top_pad
    ticks = _ticks(max((d.total for d in days), default=0))
    scale = plot_h / ticks[-1]
    slot = plot_w / max(1, len(days))
    bar_w = max(2.0, min(28.0, slot * 0.7))
    every = max(1, math.ceil(len(days) / 12))
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="Calls per day">']
    for tick in ticks:
        y = top_pad + plot_h - tick * scale
        parts.append(f'<line class="grid" x1="{left}" x2="{width - 6}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text class="axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_num(tick)}</text>')
    for i, day in enumerate(days):
        x = left + slot * i + (slot - bar_w) / 2
        y = top_pad + plot_h
        for css, value in (("resolved", day.resolved), ("transferred", day.transferred), ("other", day.other)):
            if value:
                h = value * scale
                y -= h
                parts.append(f'<rect class="c-{css}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}">'
                             f'<title>{day.day:%a %d %b}: {value} {css}</title></rect>')
        if i % every == 0:
            parts.append(f'<text class="axis" x="{x + bar_w / 2:.1f}" y="{height - 6}" text-anchor="middle">'
                         f'{day.day:%d %b}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def hbars(bars: Sequence[Bar], href: Callable[[Bar], str | None] | None = None, *, width: int = 420,
          label_w: int = 150, css: Callable[[Bar], str] | None = None,
          fmt: Callable[[float], str] = _num) -> Markup:
    """Horizontal bars with a label and a value; each bar links to ``href(bar)`` when given."""
    if not bars:
        return Markup('<p class="empty">No data for this period.</p>')
    row_h, bar_h = 26, 16
    height = row_h * len(bars) + 4
    top = max(b.value for b in bars) or 1
    plot_w = width - label_w - 48
    parts = [f'<svg class="chart hbars" viewBox="0 0 {width} {height}" role="img">']
    for i, bar in enumerate(bars):
        y = i * row_h + 4
        w = max(1.5, plot_w * bar.value / top)
        inner = (f'<text class="label" x="{label_w - 8}" y="{y + bar_h - 3}" text-anchor="end">'
                 f'{escape(bar.label)}</text>'
                 f'<rect class="{escape(css(bar) if css else "bar")}" x="{label_w}" y="{y}" width="{w:.1f}" '
                 f'height="{bar_h}" rx="2"><title>{escape(bar.label)}: {fmt(bar.value)}</title></rect>'
                 f'<text class="value" x="{label_w + w + 6:.1f}" y="{y + bar_h - 3}">{fmt(bar.value)}</text>')
        link = href(bar) if href else None
        parts.append(f'<a href="{escape(link)}">{inner}</a>' if link else inner)
    parts.append("</svg>")
    return Markup("".join(parts))


def sentiment_line(points: Sequence[tuple[float, float, str]], length_s: float, width: int = 640,
                   height: int = 110) -> Markup:
    """The caller's sentiment over the call: ``points`` are (seconds, score -1..1, label)."""
    if not points:
        return Markup('<p class="empty">No caller words to score.</p>')
    left, pad = 30, 10
    plot_w, plot_h = width - left - pad, height - 2 * pad
    length = max(length_s, max(t for t, _, _ in points), 1.0)

    def xy(t: float, s: float) -> tuple[float, float]:
        return left + plot_w * t / length, pad + plot_h * (1 - s) / 2

    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="Caller sentiment">']
    for value, name in ((1, "+1"), (0, "0"), (-1, "−1")):
        _, y = xy(0, value)
        parts.append(f'<line class="{"zero" if value == 0 else "grid"}" x1="{left}" x2="{width - pad}" '
                     f'y1="{y:.1f}" y2="{y:.1f}"/><text class="axis" x="{left - 6}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{name}</text>')
    coords = [xy(t, s) for t, s, _ in points]
    parts.append('<polyline class="trend" points="' + " ".join(f"{x:.1f},{y:.1f}" for x, y in coords) + '"/>')
    for (x, y), (_, score, label) in zip(coords, points):
        css = "neg" if score <= -0.05 else "pos" if score >= 0.05 else "neu"
        parts.append(f'<circle class="dot {css}" cx="{x:.1f}" cy="{y:.1f}" r="4.5">'
                     f'<title>{escape(label)}: {score:+.2f}</title></circle>')
    parts.append("</svg>")
    return Markup("".join(parts))
