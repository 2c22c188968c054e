"""Charts drawn on the server as inline SVG: no script, nothing fetched, readable without the picture.

Every function here is pure: figures in, markup out. Each chart carries a ``<title>``, a ``<desc>``,
``role="img"`` and an ``aria-label``, labelled axes and a value written beside every bar or point, and
``data_table`` gives the same numbers as a table for the ``<details>`` under the chart. Series are told
apart by a text legend (and, for lines, by marker shape and dash pattern), never by color alone.

Labels come from data (exception types are whatever a source system sent), so every piece of text is
XML-escaped before it is put into the markup; only then is the result marked safe for Jinja.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from markupsafe import Markup

PALETTE = ("#0b5cad", "#c4432b", "#2f8f46", "#9a6700", "#6639ba", "#0e7c86", "#7a4b2a", "#59636e")
"""Distinct hues that keep a 3:1 contrast on white; a series' name is always written beside its color."""

_QUOTES = {'"': "&quot;", "'": "&apos;"}
_DASHES = ("", "6 3", "2 3", "8 3 2 3")


@dataclass(frozen=True)
class Series:
    """One named row of values over the same buckets (a stack segment or a line)."""

    name: str
    values: Sequence[float]
    color: str | None = None


def esc(value: object) -> str:
    """Text safe in SVG/HTML element content and in double- or single-quoted attributes."""
    return escape(str(value), _QUOTES)


def number(value: float) -> str:
    """``7``, ``2.5``, ``0.33``: whole numbers without decimals, others with at most two."""
    if math.isclose(value, round(value)):
        return str(round(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}".rstrip("0").rstrip(".") + " %"


def duration(seconds: float | None) -> str:
    """A mean time to resolve or an age, in the largest unit that keeps it readable."""
    if seconds is None:
        return "—"
    seconds = round(seconds, 1)  # SQLite's julianday arithmetic gives 59.99999 for a minute
    if seconds < 60:
        return f"{number(round(seconds, 1))} s"
    if seconds < 3600:
        return f"{number(round(seconds / 60, 1))} min"
    if seconds < 86400 * 2:
        return f"{number(round(seconds / 3600, 1))} h"
    return f"{number(round(seconds / 86400, 1))} d"


def nice_max(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is at least ``value`` (1 for no data)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power + 1e-9:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def ticks(top: float) -> list[float]:
    """Evenly spaced axis ticks from 0 to ``top`` (a ``nice_max``): whole steps for whole tops, so
    counts never get a tick at 0.5."""
    if top >= 1 and math.isclose(top, round(top)):
        count = next(n for n in (5, 4, 3, 2, 1) if round(top) % n == 0)
    else:
        mantissa = top / 10 ** math.floor(math.log10(top))
        count = 4 if math.isclose(mantissa, 2) else 5
    return [top * i / count for i in range(count + 1)]


def _color(series: Series, index: int) -> str:
    return series.color or PALETTE[index % len(PALETTE)]


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _open(width: int, height: int, title: str, desc: str, kind: str) -> list[str]:
    label = esc(f"{title}. {desc}")
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{kind}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{label}" '
        'preserveAspectRatio="xMinYMin meet">',
        f"<title>{esc(title)}</title>",
        f"<desc>{esc(desc)}</desc>",
    ]


def _nothing(width: int, title: str, desc: str, kind: str) -> Markup:
    parts = _open(width, 80, title, desc, kind)
    parts.append(f'<text class="no-data" x="{width // 2}" y="44" text-anchor="middle">No data yet</text>')
    return Markup("".join(parts) + "</svg>")


def bar_chart(
    title: str, bars: Sequence[tuple[str, float]], *, desc: str, axis_label: str,
    value_label: Callable[[float], str] = number, width: int = 640,
) -> Markup:  # fmt: skip
    """Horizontal bars, one per category (room for long names), the value written after each bar."""
    if not bars:
        return _nothing(width, title, desc, "bars")
    row, label_w, value_w, top = 28, 210, 80, 10
    plot_w = width - label_w - value_w
    height = top + row * len(bars) + 44
    scale = nice_max(max(value for _, value in bars))
    parts = _open(width, height, title, desc, "bars")
    axis_y = top + row * len(bars)
    for tick in ticks(scale):
        x = label_w + plot_w * tick / scale
        parts.append(
            f'<line class="grid" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{axis_y}" stroke="#e3e7ec"/>'
        )
        parts.append(f'<text class="tick" x="{x:.1f}" y="{axis_y + 14}" text-anchor="middle" '
                     f'font-size="11">{esc(number(tick))}</text>')  # fmt: skip
    for index, (name, value) in enumerate(bars):
        y = top + row * index
        length = plot_w * value / scale
        parts.append(f'<text class="label" x="{label_w - 8}" y="{y + row / 2 + 4:.1f}" text-anchor="end" '
                     f'font-size="12">{esc(_short(name, 30))}</text>')  # fmt: skip
        parts.append(
            f'<rect class="bar" x="{label_w}" y="{y + 5}" width="{length:.2f}" height="{row - 10}" '
            f'fill="{PALETTE[0]}" data-label="{esc(name)}" data-value="{esc(number(value))}">'
            f"<title>{esc(name)}: {esc(value_label(value))}</title></rect>"
        )
        parts.append(f'<text class="value" x="{label_w + length + 6:.1f}" y="{y + row / 2 + 4:.1f}" '
                     f'font-size="12">{esc(value_label(value))}</text>')  # fmt: skip
    parts.append(
        f'<line class="axis" x1="{label_w}" y1="{top}" x2="{label_w}" y2="{axis_y}" stroke="#59636e"/>'
    )
    parts.append(f'<text class="axis-label" x="{label_w + plot_w / 2:.1f}" y="{height - 8}" '
                 f'text-anchor="middle" font-size="12">{esc(axis_label)}</text>')  # fmt: skip
    return Markup("".join(parts) + "</svg>")


@dataclass(frozen=True)
class _Frame:
    """The plot area of a chart over time, shared by columns and lines."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int

    @property
    def plot_w(self) -> float:
        return float(self.width - self.left - self.right)

    @property
    def plot_h(self) -> float:
        return float(self.height - self.top - self.bottom)

    @property
    def base(self) -> float:
        return float(self.height - self.bottom)


def _legend(series: Sequence[Series], frame: _Frame, *, lines: bool) -> list[str]:
    parts, x = [], float(frame.left)
    for index, item in enumerate(series):
        color = _color(item, index)
        if lines:
            parts.append(
                f'<line x1="{x:.1f}" y1="12" x2="{x + 18:.1f}" y2="12" stroke="{color}" stroke-width="2" '
                f'stroke-dasharray="{_DASHES[index % len(_DASHES)]}"/>'
            )
            parts.append(_marker(index, x + 9, 12, color, "", "legend-marker"))
        else:
            parts.append(f'<rect x="{x:.1f}" y="6" width="12" height="12" fill="{color}"/>')
        parts.append(
            f'<text class="legend" x="{x + 22:.1f}" y="16" font-size="12">{esc(_short(item.name, 24))}</text>'
        )
        x += 34 + 7 * min(len(item.name), 24)
    return parts


def _axes(frame: _Frame, labels: Sequence[str], scale: float, x_label: str, y_label: str) -> list[str]:
    parts = []
    for tick in ticks(scale):
        y = frame.base - frame.plot_h * tick / scale
        parts.append(f'<line class="grid" x1="{frame.left}" y1="{y:.1f}" x2="{frame.width - frame.right}" '
                     f'y2="{y:.1f}" stroke="#e3e7ec"/>')  # fmt: skip
        parts.append(f'<text class="tick" x="{frame.left - 6}" y="{y + 4:.1f}" text-anchor="end" '
                     f'font-size="11">{esc(number(tick))}</text>')  # fmt: skip
    slot = frame.plot_w / max(len(labels), 1)
    every = max(1, math.ceil(len(labels) / 12))
    for index, label in enumerate(labels):
        if index % every == 0:
            x = frame.left + slot * (index + 0.5)
            parts.append(f'<text class="tick x-tick" x="{x:.1f}" y="{frame.base + 16:.1f}" '
                         f'text-anchor="middle" font-size="11">{esc(label)}</text>')  # fmt: skip
    parts.append(f'<line class="axis" x1="{frame.left}" y1="{frame.base}" x2="{frame.width - frame.right}" '
                 f'y2="{frame.base}" stroke="#59636e"/>')  # fmt: skip
    parts.append(f'<line class="axis" x1="{frame.left}" y1="{frame.top}" x2="{frame.left}" y2="{frame.base}" '
                 f'stroke="#59636e"/>')  # fmt: skip
    parts.append(f'<text class="axis-label" x="{frame.left + frame.plot_w / 2:.1f}" y="{frame.height - 6}" '
                 f'text-anchor="middle" font-size="12">{esc(x_label)}</text>')  # fmt: skip
    middle = frame.top + frame.plot_h / 2
    parts.append(f'<text class="axis-label" x="14" y="{middle:.1f}" text-anchor="middle" font-size="12" '
                 f'transform="rotate(-90 14 {middle:.1f})">{esc(y_label)}</text>')  # fmt: skip
    return parts


def _check(labels: Sequence[str], series: Sequence[Series]) -> None:
    for item in series:
        if len(item.values) != len(labels):
            raise ValueError(f"series {item.name!r} has {len(item.values)} values for {len(labels)} buckets")


def column_chart(
    title: str, labels: Sequence[str], series: Sequence[Series], *, desc: str, x_label: str, y_label: str,
    width: int = 640, height: int = 280,
) -> Markup:  # fmt: skip
    """Columns over time, the series stacked in each column and its total written on top."""
    _check(labels, series)
    if not labels or not series:
        return _nothing(width, title, desc, "columns")
    frame = _Frame(width, height, left=52, right=12, top=30, bottom=44)
    totals = [sum(item.values[i] for item in series) for i in range(len(labels))]
    scale = nice_max(max(totals))
    slot = frame.plot_w / len(labels)
    bar_w = max(slot * 0.7, 1.0)
    parts = _open(width, height, title, desc, "columns")
    parts += _legend(series, frame, lines=False)
    parts += _axes(frame, labels, scale, x_label, y_label)
    for index, label in enumerate(labels):
        x = frame.left + slot * index + (slot - bar_w) / 2
        y = frame.base
        for order, item in enumerate(series):
            value = item.values[index]
            if value <= 0:
                continue
            h = frame.plot_h * value / scale
            y -= h
            parts.append(
                f'<rect class="seg" x="{x:.2f}" y="{y:.2f}" width="{bar_w:.2f}" height="{h:.2f}" '
                f'fill="{_color(item, order)}" stroke="#fff" stroke-width="0.5" '
                f'data-series="{esc(item.name)}" '
                f'data-value="{esc(number(value))}"><title>{esc(label)}, {esc(item.name)}: '
                f"{esc(number(value))}</title></rect>"
            )
        if totals[index] > 0:
            parts.append(f'<text class="value" x="{x + bar_w / 2:.2f}" y="{y - 4:.2f}" text-anchor="middle" '
                         f'font-size="11">{esc(number(totals[index]))}</text>')  # fmt: skip
    return Markup("".join(parts) + "</svg>")


def _marker(index: int, x: float, y: float, color: str, tip: str, cls: str = "point") -> str:
    """A different shape per series (circle, square, triangle, diamond), so lines differ without color."""
    title = f"<title>{esc(tip)}</title>" if tip else ""
    shape = index % 4
    if shape == 0:
        return f'<circle class="{cls}" cx="{x:.2f}" cy="{y:.2f}" r="3.5" fill="{color}">{title}</circle>'
    if shape == 1:
        corner = f'x="{x - 3.5:.2f}" y="{y - 3.5:.2f}"'
        return f'<rect class="{cls}" {corner} width="7" height="7" fill="{color}">{title}</rect>'
    if shape == 2:
        points = f"{x:.2f},{y - 4.5:.2f} {x + 4.5:.2f},{y + 3.5:.2f} {x - 4.5:.2f},{y + 3.5:.2f}"
        return f'<polygon class="{cls}" points="{points}" fill="{color}">{title}</polygon>'
    points = f"{x:.2f},{y - 4.5:.2f} {x + 4.5:.2f},{y:.2f} {x:.2f},{y + 4.5:.2f} {x - 4.5:.2f},{y:.2f}"
    return f'<polygon class="{cls}" points="{points}" fill="{color}">{title}</polygon>'


def line_chart(
    title: str, labels: Sequence[str], series: Sequence[Series], *, desc: str, x_label: str, y_label: str,
    width: int = 640, height: int = 280,
) -> Markup:  # fmt: skip
    """One line per series over the same buckets, a marker at every point, a label at each non-zero one."""
    _check(labels, series)
    if not labels or not series:
        return _nothing(width, title, desc, "lines")
    frame = _Frame(width, height, left=52, right=12, top=30, bottom=44)
    scale = nice_max(max(max(item.values, default=0) for item in series))
    slot = frame.plot_w / len(labels)
    parts = _open(width, height, title, desc, "lines")
    parts += _legend(series, frame, lines=True)
    parts += _axes(frame, labels, scale, x_label, y_label)
    for order, item in enumerate(series):
        color = _color(item, order)
        points = [
            (frame.left + slot * (i + 0.5), frame.base - frame.plot_h * value / scale)
            for i, value in enumerate(item.values)
        ]
        path = " ".join(f"{x:.2f},{y:.2f}" for x, y in points)
        parts.append(
            f'<polyline class="line" points="{path}" fill="none" stroke="{color}" stroke-width="2" '
            f'stroke-dasharray="{_DASHES[order % len(_DASHES)]}" data-series="{esc(item.name)}"/>'
        )
        for (x, y), label, value in zip(points, labels, item.values, strict=True):
            parts.append(_marker(order, x, y, color, f"{label}, {item.name}: {number(value)}"))
            if value > 0:
                above = y - 7 - 11 * order  # a second series' labels sit higher, so they do not overlap
                parts.append(f'<text class="value" x="{x:.2f}" y="{above:.2f}" text-anchor="middle" '
                             f'font-size="11" fill="{color}">{esc(number(value))}</text>')  # fmt: skip
    return Markup("".join(parts) + "</svg>")


def data_table(caption: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> Markup:
    """The chart's numbers as a table in a ``<details>``: the first column names each row."""
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in headers)
    body = []
    for row in rows:
        first, *rest = row
        cells = "".join(f"<td>{esc(cell)}</td>" for cell in rest)
        body.append(f'<tr><th scope="row">{esc(first)}</th>{cells}</tr>')
    empty = f'<tr><td colspan="{len(headers)}">No data</td></tr>' if not rows else ""
    return Markup(
        f'<details class="chart-data"><summary>Data table: {esc(caption)}</summary><div class="table-wrap">'
        f"<table><caption>{esc(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}{empty}</tbody></table></div></details>"
    )
