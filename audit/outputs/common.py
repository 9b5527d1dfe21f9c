"""What the HTML and PDF writers share: the template environment with its filters, the
inlined static assets, the charts of a model, and the rows a template shows."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

import polars as pl
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from audit.outputs import charts
from audit.outputs.model import ReportModel
from audit.outputs.runs import TrendPoint
from audit.templates import templates_dir

# Columns the HTML carries per finding (the full record is in findings.xlsx / .json).
HTML_COLUMNS = (
    "fingerprint",
    "code",
    "severity",
    "family",
    "ad_upn",
    "ad_dn",
    "cloud_upn",
    "cloud_state",
    "attribute",
    "value",
    "proposed_value",
    "remediation",
    "detail",
    "status",
    "waiver_reason",
)


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(templates_dir())),
        autoescape=select_autoescape(enabled_extensions=("html", "j2"), default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = lambda n: f"{n:,}"
    env.filters["pct"] = lambda p: "n/a" if p is None else f"{p:.1f}%"
    env.filters["wrapdn"] = wrap_dn
    env.filters["breakable"] = breakable
    env.filters["plural"] = plural
    return env


def plural(n: int, noun: str, plural_form: str | None = None) -> str:
    """ "1 finding", "44 findings" (with thousands separators)."""
    return f"{n:,} {noun if n == 1 else plural_form or noun + 's'}"


def breakable(value: object) -> Markup:
    """HTML text that wraps after @ . , = (a <wbr>, which copy-paste leaves out) rather than in
    the middle of a name. The text is escaped first."""
    text = str(escape("" if value is None else value))
    return Markup(_BREAK_AFTER.sub(r"\1<wbr>", text))  # noqa: S704 (escaped above)


_BREAK_AFTER = re.compile(r"([@.,=])(?=.)")


def wrap_dn(value: object) -> str:
    """Let long DNs and addresses break after commas, @ and dots (zero-width spaces: cheaper
    for weasyprint than <wbr> elements). Autoescape still applies to the result."""
    text = str(value or "")
    text = text.replace(",", ",\u200b").replace("@", "@\u200b").replace("=", "=\u200b")
    return text.replace(".", ".\u200b") if len(text) > 30 else text


def static_asset(name: str) -> Markup:
    # Our own files, inlined: CSS and JS contain no user data. "</" cannot appear in them.
    text = (templates_dir() / name).read_text(encoding="utf-8")
    if "</style" in text.lower() or "</script" in text.lower():
        raise ValueError(f"{name} must not contain a closing style/script tag")
    return Markup(text)  # noqa: S704 (static asset shipped with the package)


def script_hash(script: str) -> str:
    """The CSP source for exactly this inline script: only it may run, no injected one."""
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")


def script_json(payload: Any) -> Markup:
    """JSON safe inside <script type="application/json">: no <, > or & survives."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return Markup(text)  # noqa: S704 (escaped above)


def chart_context(model: ReportModel) -> dict[str, Markup | None]:
    labels = [short_date(p) for p in model.trend]
    return {
        "severity_chart": Markup(charts.severity_bars(model.counts_by_severity)),  # noqa: S704
        "trend_chart": (
            Markup(charts.trend_columns(labels, [p.counts_by_severity for p in model.trend]))  # noqa: S704
            if model.trend
            else None
        ),
        "forecast_chart": (
            Markup(model.forecast.chart_svg)  # noqa: S704 (charts.py escapes every label)
            if model.forecast
            else None
        ),
        "health_chart": (
            Markup(charts.health_line(labels, [p.health_percent for p in model.trend]))  # noqa: S704
            if model.trend
            else None
        ),
    }


def short_date(point: TrendPoint) -> str:
    try:
        return datetime.fromisoformat(point.taken_at.replace("Z", "+00:00")).strftime("%d %b %y")
    except ValueError:
        return point.run_id


def records(frame: pl.DataFrame, columns: Sequence[str]) -> list[dict[str, str]]:
    return frame.select([pl.col(c).cast(pl.String).fill_null("") for c in columns]).to_dicts()
