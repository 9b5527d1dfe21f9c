"""Inline SVG charts for the reports: findings by severity, and the trend over runs.

Hand-made SVG rather than a charting library, because:

* the report needs three small, fixed charts (horizontal bars, stacked columns, one line);
  that is about 150 lines here, while a library (pygal, matplotlib, plotly) is a dependency to
  lock, audit and install on every machine that renders reports, for features we would not use;
* the output must be inert and self-contained: an e-mailed HTML file and weasyprint's PDF.
  Here every label goes through ``xml_escape`` and the SVG holds no script, no external
  reference, no font download and no ``<foreignObject>`` — easy to see by reading this file;
  plotly needs a JS runtime, matplotlib embeds fonts/paths and pygal adds tooltips scripts;
* the same markup renders identically in browsers and in weasyprint (which supports a subset
  of SVG: plain rect/line/polyline/text with presentation attributes are in it).

Colours are shared with the CSS (``SEVERITY_COLOURS``); every chart has a <title> and
role="img" for screen readers and the numbers are also in a table beside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape

SEVERITY_COLOURS = {
    "critical": "#7f1d1d",
    "high": "#dc2626",
    "medium": "#d97706",
    "low": "#2563eb",
    "info": "#6b7280",
}
HEALTH_COLOUR = "#15803d"
GRID = "#e5e7eb"
TEXT = "#374151"
FONT = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif"'


def xml_escape(text: object) -> str:
    return escape(str(text), {'"': "&quot;", "'": "&#39;"})


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" class="chart" {FONT} font-size="12">'
        f"<title>{xml_escape(title)}</title>" + "".join(body) + "</svg>"
    )


def _nice_max(value: float) -> float:
    """A round axis maximum at or above value (1, 2, 2.5, 5, 10 x 10^k)."""
    if value <= 0:
        return 1.0
    magnitude = 1.0
    while magnitude * 10 <= value:
        magnitude *= 10
    while magnitude > value:
        magnitude /= 10
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def severity_bars(counts: Mapping[str, int], width: int = 460) -> str:
    """Horizontal bars, one per severity, with the count at the end of each bar."""
    rows = list(counts.items())
    label_w, count_w, bar_h, gap = 70, 60, 22, 8
    height = len(rows) * (bar_h + gap) + gap
    top = max([n for _s, n in rows] + [1])
    span = width - label_w - count_w
    body = []
    for i, (severity, n) in enumerate(rows):
        y = gap + i * (bar_h + gap)
        length = 0 if n == 0 else max(2.0, span * n / top)
        colour = SEVERITY_COLOURS.get(severity, TEXT)
        body.append(
            f'<text x="{label_w - 8}" y="{y + bar_h / 2 + 4:.1f}" text-anchor="end" '
            f'fill="{TEXT}">{xml_escape(severity.title())}</text>'
            f'<rect x="{label_w}" y="{y}" width="{span:.1f}" height="{bar_h}" fill="{GRID}" '
            f'opacity="0.45"/>'
            f'<rect x="{label_w}" y="{y}" width="{length:.1f}" height="{bar_h}" '
            f'fill="{colour}"/>'
            f'<text x="{label_w + length + 6:.1f}" y="{y + bar_h / 2 + 4:.1f}" fill="{TEXT}" '
            f'font-weight="bold">{n:,}</text>'
        )
    return _svg(width, height, "Findings by severity", body)


def trend_columns(
    labels: Sequence[str], series: Sequence[Mapping[str, int]], width: int = 640
) -> str:
    """Stacked columns: findings per severity for each run (oldest left)."""
    height, left, right, top, bottom = 240, 48, 12, 14, 46
    n = max(len(series), 1)
    plot_w, plot_h = width - left - right, height - top - bottom
    ymax = _nice_max(max([sum(s.values()) for s in series] + [1]))
    slot = plot_w / n
    bar_w = min(36.0, slot * 0.7)
    body = _y_axis(left, top, plot_w, plot_h, ymax, lambda v: f"{v:,.0f}")
    for i, counts in enumerate(series):
        x = left + i * slot + (slot - bar_w) / 2
        y: float = top + plot_h
        for severity in reversed(list(SEVERITY_COLOURS)):
            value = counts.get(severity, 0)
            if not value:
                continue
            h = plot_h * value / ymax
            y -= h
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{SEVERITY_COLOURS[severity]}"><title>{xml_escape(labels[i])}: '
                f"{value:,} {severity}</title></rect>"
            )
    body += _x_labels(labels, left, slot, top + plot_h)
    body += _legend([(s.title(), c) for s, c in SEVERITY_COLOURS.items()], left, height - 10)
    return _svg(width, height, "Findings per run by severity", body)


def health_line(labels: Sequence[str], values: Sequence[float | None], width: int = 640) -> str:
    """Sync health (percent) over runs; runs without a value are gaps."""
    height, left, right, top, bottom = 200, 48, 12, 14, 30
    n = max(len(values), 1)
    plot_w, plot_h = width - left - right, height - top - bottom
    known = [v for v in values if v is not None]
    ymin = max(0.0, (min(known) // 10) * 10 - 10) if known else 0.0
    ymax = 100.0
    slot = plot_w / n
    body = _y_axis(left, top, plot_w, plot_h, ymax - ymin, lambda v: f"{v + ymin:.0f}%")
    points: list[tuple[float, float]] = []
    for i, value in enumerate(values):
        if value is None:
            if len(points) > 1:
                body.append(_polyline(points))
            points = []
            continue
        x = left + i * slot + slot / 2
        y = top + plot_h * (1 - (value - ymin) / (ymax - ymin))
        points.append((x, y))
        body.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{HEALTH_COLOUR}">'
            f"<title>{xml_escape(labels[i])}: {value:.1f}%</title></circle>"
        )
    if len(points) > 1:
        body.append(_polyline(points))
    body += _x_labels(labels, left, slot, top + plot_h)
    return _svg(width, height, "Sync health per run", body)


def _polyline(points: list[tuple[float, float]]) -> str:
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    return f'<polyline points="{coords}" fill="none" stroke="{HEALTH_COLOUR}" stroke-width="2"/>'


def _y_axis(
    left: int, top: int, plot_w: float, plot_h: float, span: float, fmt: object
) -> list[str]:
    assert callable(fmt)
    body = []
    for k in range(5):
        value = span * k / 4
        y = top + plot_h * (1 - k / 4)
        body.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w:.1f}" y2="{y:.1f}" '
            f'stroke="{GRID}"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{TEXT}" '
            f'font-size="10">{xml_escape(fmt(value))}</text>'
        )
    return body


def _x_labels(labels: Sequence[str], left: int, slot: float, baseline: float) -> list[str]:
    every = max(1, len(labels) // 8)  # at most about eight labels
    return [
        f'<text x="{left + i * slot + slot / 2:.1f}" y="{baseline + 14:.1f}" '
        f'text-anchor="middle" fill="{TEXT}" font-size="10">{xml_escape(label)}</text>'
        for i, label in enumerate(labels)
        if i % every == 0 or i == len(labels) - 1
    ]


def _legend(items: list[tuple[str, str]], left: int, y: float) -> list[str]:
    body, x = [], float(left)
    for label, colour in items:
        body.append(
            f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14:.1f}" y="{y:.1f}" fill="{TEXT}" font-size="10">'
            f"{xml_escape(label)}</text>"
        )
        x += 22 + 7 * len(label)
    return body


def stacked_bars(
    rows: Sequence[tuple[str, Mapping[str, int], str]],
    colours: Mapping[str, str],
    title: str,
    width: int = 640,
) -> str:
    """Horizontal stacked bars, one per row (label, counts, end text), segments in the order of
    `colours`; the end text after each bar. Long labels are cut from the left (the full one is
    the row's tooltip): the end of a DN is the part that differs least."""
    label_w, end_w, bar_h, gap, legend_h = 170, 90, 16, 6, 22
    height = len(rows) * (bar_h + gap) + gap + legend_h
    top = max([sum(c.get(n, 0) for n in colours) for _label, c, _end in rows] + [1])
    span = width - label_w - end_w
    body = []
    for i, (label, counts, end) in enumerate(rows):
        y = gap + i * (bar_h + gap)
        short = label if len(label) <= 28 else label[:27] + "…"
        body.append(
            f'<text x="{label_w - 6}" y="{y + bar_h / 2 + 4:.1f}" text-anchor="end" '
            f'fill="{TEXT}" font-size="10"><title>{xml_escape(label)}</title>'
            f"{xml_escape(short)}</text>"
        )
        x = float(label_w)
        for name, colour in colours.items():
            value = counts.get(name, 0)
            if not value:
                continue
            w = max(1.0, span * value / top)
            body.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}">'
                f"<title>{xml_escape(label)}: {value:,} {xml_escape(name)}</title></rect>"
            )
            x += w
        body.append(
            f'<text x="{x + 5:.1f}" y="{y + bar_h / 2 + 4:.1f}" fill="{TEXT}" '
            f'font-size="10">{xml_escape(end)}</text>'
        )
    body += _legend([(n, c) for n, c in colours.items()], 8, height - 6)
    return _svg(width, height, title, body)
