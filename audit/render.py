"""Renderers: the report model (audit.report) -> report.html, report.pdf, findings.xlsx.

* HTML: one self-contained file. CSS, SVG charts and the vanilla JS are inlined; the findings
  travel as JSON inside ``<script type="application/json">`` with ``<``, ``>`` and ``&``
  written as ``\\u003c``... so no directory value can close the script element. Jinja2
  autoescape is on for everything else, and the JS builds table cells with ``textContent``
  only. The first rows of every code are also rendered server-side, so the report is readable
  with scripts off (mail clients' previews) and prints.
* PDF: weasyprint over ``pdf.html.j2``: the management summary, the per-code summary and the
  first ``report.pdf_rows_per_code`` objects of each code, then "and M more in findings.xlsx".
  The PDF never holds more than codes x N rows, so its time and memory do not grow with the
  estate (weasyprint needs ~43 s and 1.2 GB for a 10k-row table).
* XLSX: xlsxwriter in constant_memory mode; a summary sheet and one sheet per family, header
  frozen, autofilter, widths set. Every cell is written with ``write_string`` (never a
  formula) and cells starting with ``= + - @`` get a leading quote like findings.csv, so
  Excel or LibreOffice do not evaluate them even when the cell is edited.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from audit import charts
from audit.config import Settings
from audit.model import Snapshot
from audit.redact import Redactor, redaction_key
from audit.report import (
    SEVERITIES,
    CodeSection,
    ReportModel,
    TrendPoint,
    build_report,
    compute_health,
    load_history,
)
from audit.store import neutralise_formulas, write_file_atomically

HTML_PREVIEW_ROWS = 25
# Columns the HTML carries per finding (the full record is in findings.xlsx / .json).
HTML_COLUMNS = (
    "fingerprint",
    "code",
    "severity",
    "status",
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
)
XLSX_COLUMNS: tuple[tuple[str, str, int], ...] = (  # (column, header, width)
    ("severity", "Severity", 10),
    ("status", "Status", 8),
    ("code", "Code", 24),
    ("title", "Title", 34),
    ("ad_upn", "AD UPN", 34),
    ("ad_dn", "AD distinguished name", 56),
    ("ad_source", "AD source", 10),
    ("ad_object_guid", "AD objectGUID", 38),
    ("anchor", "Anchor", 28),
    ("cloud_upn", "Cloud UPN", 34),
    ("cloud_id", "Cloud object id", 38),
    ("cloud_state", "Cloud state", 10),
    ("attribute", "Attribute", 20),
    ("value", "Value", 32),
    ("proposed_value", "Proposed value", 32),
    ("remediation", "Remediation action", 22),
    ("detail", "Detail", 90),
    ("evidence", "Evidence (JSON)", 60),
    ("waiver_reason", "Waiver reason", 24),
    ("waiver_expires", "Waiver expires", 14),
    ("first_seen", "First seen", 20),
    ("fingerprint", "Fingerprint", 22),
)
XLSX_MAX_ROWS = 1_048_575  # Excel's limit minus the header row
XLSX_MAX_CELL = 32_767


# -- templates -------------------------------------------------------------------------------


def templates_dir() -> Path:
    """report_templates/: inside the installed package (wheel), else the source tree's."""
    packaged = resources.files("audit").joinpath("report_templates")
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "report_templates"


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
    return env


def wrap_dn(value: object) -> str:
    """Let long DNs and addresses break after commas, @ and dots (zero-width spaces: cheaper
    for weasyprint than <wbr> elements). Autoescape still applies to the result."""
    text = str(value or "")
    text = text.replace(",", ",\u200b").replace("@", "@\u200b")
    return text.replace(".", ".\u200b") if len(text) > 30 else text


def _static(name: str) -> Markup:
    # Our own files, inlined: CSS and JS contain no user data. "</" cannot appear in them.
    text = (templates_dir() / name).read_text(encoding="utf-8")
    if "</style" in text.lower() or "</script" in text.lower():
        raise ValueError(f"{name} must not contain a closing style/script tag")
    return Markup(text)  # noqa: S704 (static asset shipped with the package)


def script_json(payload: Any) -> Markup:
    """JSON safe inside <script type="application/json">: no <, > or & survives."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return Markup(text)  # noqa: S704 (escaped above)


def _chart_context(model: ReportModel) -> dict[str, Markup | None]:
    labels = [_short_date(p) for p in model.trend]
    return {
        "severity_chart": Markup(charts.severity_bars(model.counts_by_severity)),  # noqa: S704
        "trend_chart": (
            Markup(charts.trend_columns(labels, [p.counts_by_severity for p in model.trend]))  # noqa: S704
            if model.trend
            else None
        ),
        "health_chart": (
            Markup(charts.health_line(labels, [p.health_percent for p in model.trend]))  # noqa: S704
            if model.trend
            else None
        ),
    }


def _short_date(point: TrendPoint) -> str:
    try:
        return datetime.fromisoformat(point.taken_at.replace("Z", "+00:00")).strftime("%d %b %y")
    except ValueError:
        return point.run_id


def _records(frame: pl.DataFrame, columns: Sequence[str]) -> list[dict[str, str]]:
    return frame.select([pl.col(c).cast(pl.String).fill_null("") for c in columns]).to_dicts()


# -- HTML ------------------------------------------------------------------------------------


def render_html(model: ReportModel) -> str:
    rows = (
        model.findings.select(
            [pl.col(c).cast(pl.String).fill_null("") for c in HTML_COLUMNS]
        ).rows()
        if model.total
        else []
    )
    payload = {"columns": list(HTML_COLUMNS), "rows": rows}
    previews = {c.code: _records(c.head(HTML_PREVIEW_ROWS), HTML_COLUMNS) for c in model.codes}
    template = environment().get_template("report.html.j2")
    return template.render(
        m=model,
        css=_static("report.css"),
        js=_static("report.js"),
        data=script_json(payload),
        previews=previews,
        preview_rows=HTML_PREVIEW_ROWS,
        severities=SEVERITIES,
        **_chart_context(model),
    )


# -- PDF -------------------------------------------------------------------------------------


def render_pdf_html(model: ReportModel) -> str:
    n = model.pdf_rows_per_code
    rows = {c.code: _records(c.head(n), HTML_COLUMNS) for c in model.codes}
    template = environment().get_template("pdf.html.j2")
    return template.render(
        m=model,
        css=_static("pdf.css"),
        rows=rows,
        rows_per_code=n,
        severities=SEVERITIES,
        **_chart_context(model),
    )


def render_pdf(model: ReportModel, path: Path) -> None:
    from weasyprint import HTML  # type: ignore[import-untyped]  # lazily: loads Pango

    document = HTML(
        string=render_pdf_html(model), base_url=str(templates_dir()), url_fetcher=pdf_fetcher()
    )
    document.write_pdf(str(path))


def pdf_fetcher() -> Any:
    """Everything the PDF shows is inline (CSS, SVG charts, the logo as a data: URI). Refusing
    every other protocol means no value in the page, and no reference inside an SVG logo, can
    make weasyprint read a local file or reach the network."""
    from weasyprint.urls import URLFetcher  # type: ignore[import-untyped]

    return URLFetcher(allowed_protocols={"data"})


# -- XLSX ------------------------------------------------------------------------------------


def render_xlsx(model: ReportModel, path: Path) -> None:
    import xlsxwriter  # type: ignore[import-untyped]

    workbook = xlsxwriter.Workbook(
        str(path),
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )
    workbook.set_properties(
        {
            "title": model.title,
            "company": model.company,
            "comments": "Generated by syncaudit",
            "created": _as_datetime(model.generated),
        }
    )
    try:
        fmt = {
            "title": workbook.add_format({"bold": True, "font_size": 16}),
            "bold": workbook.add_format({"bold": True}),
            "header": workbook.add_format(
                {"bold": True, "bg_color": "#1f2937", "font_color": "#ffffff", "border": 1}
            ),
            "wrap": workbook.add_format({"text_wrap": True, "valign": "top"}),
            "cell": workbook.add_format({"valign": "top"}),
        }
        _xlsx_summary(workbook, fmt, model)
        used: set[str] = {"Summary"}
        for family in model.families:
            frame = pl.concat([c.rows for c in family.codes], how="vertical")
            frame = neutralise_formulas(
                frame.select(
                    [pl.col(c).cast(pl.String).fill_null("") for c, _h, _w in XLSX_COLUMNS]
                )
            )
            for part, start in enumerate(range(0, max(frame.height, 1), XLSX_MAX_ROWS)):
                label = family.label if part == 0 else f"{family.label} {part + 1}"
                name = _sheet_name(label, used)
                _xlsx_findings(workbook, fmt, name, frame.slice(start, XLSX_MAX_ROWS))
    finally:
        workbook.close()


def _as_datetime(iso: str) -> datetime:
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return moment.replace(tzinfo=None)  # xlsxwriter wants a naive datetime (UTC here)


def _sheet_name(label: str, used: set[str]) -> str:
    base = "".join("-" if ch in "[]:*?/\\" else ch for ch in label)[:31].strip("' ") or "Sheet"
    name, k = base, 2
    while name.lower() in {u.lower() for u in used}:
        suffix = f" ({k})"
        name, k = base[: 31 - len(suffix)] + suffix, k + 1
    used.add(name)
    return name


def _cell(value: str) -> str:
    return value if len(value) <= XLSX_MAX_CELL else value[: XLSX_MAX_CELL - 13] + " [truncated]"


def _xlsx_findings(workbook: Any, fmt: Mapping[str, Any], name: str, frame: pl.DataFrame) -> None:
    sheet = workbook.add_worksheet(name)
    for col, (_c, _header, width) in enumerate(XLSX_COLUMNS):
        wrap = _c in ("detail", "ad_dn")
        sheet.set_column(col, col, width, fmt["wrap"] if wrap else fmt["cell"])
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(frame.height, 1), len(XLSX_COLUMNS) - 1)
    for col, (_c, header, _w) in enumerate(XLSX_COLUMNS):
        sheet.write_string(0, col, header, fmt["header"])
    write = sheet.write_string
    for r, row in enumerate(frame.iter_rows(), start=1):
        for col, value in enumerate(row):
            if value:
                write(r, col, _cell(value))


def _xlsx_summary(workbook: Any, fmt: Mapping[str, Any], m: ReportModel) -> None:
    sheet = workbook.add_worksheet("Summary")
    sheet.set_column(0, 0, 28)
    sheet.set_column(1, 1, 12)
    sheet.set_column(2, 2, 46)
    sheet.set_column(3, 3, 30)
    sheet.set_column(4, 4, 10)
    sheet.set_column(5, 5, 44)
    rows: list[tuple[list[str], str | None]] = [
        ([" - ".join(x for x in (m.company, m.title) if x)], "title"),
        ([f"Run {m.run_id}; snapshot taken {m.taken_at_text}; generated {m.generated_text}"], None),
    ]
    if m.redacted:
        rows.append((["Redacted: user names, UPNs and DNs are masked."], "bold"))
    health = m.health
    rows += [
        ([], None),
        (
            [
                "Sync health",
                "n/a" if health.percent is None else f"{health.percent:.1f}%",
                f"{health.clean:,} of {health.total:,} in-scope enabled AD users cleanly matched",
            ],
            None,
        ),
        (["Findings", f"{m.total:,}", f"{m.waived:,} waived"], None),
        ([], None),
        (["Severity", "Findings"], "header"),
        *(([s, f"{m.counts_by_severity.get(s, 0):,}"], None) for s in SEVERITIES),
        ([], None),
        (["Code", "Severity", "Title", "Family (sheet)", "Findings", "Actions"], "header"),
    ]
    rows += [
        (
            [
                c.code,
                c.severity,
                c.title,
                _family_label(m, c),
                f"{c.count:,}",
                ", ".join(c.actions),
            ],
            None,
        )
        for c in m.codes
    ]
    rows += [
        ([], None),
        (
            [
                "Cells that start with = + - @ are prefixed with ' so spreadsheet programs "
                "keep them as text (directory values are not trusted)."
            ],
            None,
        ),
    ]
    for r, (values, style) in enumerate(rows):
        for col, value in enumerate(neutralise_formulas(pl.DataFrame({"v": values}))["v"]):
            if value:
                if style:
                    sheet.write_string(r, col, value, fmt[style])
                else:
                    sheet.write_string(r, col, value)


def _family_label(m: ReportModel, code: CodeSection) -> str:
    return next((f.label for f in m.families if f.family == code.family), code.family)


# -- the analyze step ------------------------------------------------------------------------


def render_reports(
    run_dir: Path,
    findings: pl.DataFrame,
    snapshot: Snapshot,
    settings: Settings,
    manifest: Mapping[str, Any],
    *,
    redact: bool = False,
    notes: Iterable[str] = (),
    out_dir: Path | None = None,
) -> dict[str, Any]:
    """Write report.html, report.pdf and findings.xlsx into the run (or `out_dir`, where
    analyze stages its outputs); return what the manifest's ``analyzed`` section records:
    health, redaction and timings."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    health = compute_health(snapshot, findings)
    redactor = Redactor(redaction_key(run_dir.parent)) if redact else None
    model = build_report(
        findings,
        snapshot,
        settings,
        run_id=str(manifest.get("run_id") or run_dir.name),
        health=health,
        history=load_history(run_dir, snapshot.taken_at),
        notes=list(notes),
        redactor=redactor,
    )
    timings["report_model_s"] = round(time.perf_counter() - t0, 3)
    outputs = (
        ("report.html", "render_html_s", lambda p: p.write_text(render_html(model), "utf-8")),
        ("report.pdf", "render_pdf_s", lambda p: render_pdf(model, p)),
        ("findings.xlsx", "render_xlsx_s", lambda p: render_xlsx(model, p)),
    )
    for name, key, write in outputs:
        t0 = time.perf_counter()
        write_file_atomically((out_dir or run_dir) / name, write)
        timings[key] = round(time.perf_counter() - t0, 3)
    return {
        "health": health.as_json(),
        "redacted": redact,
        "reports": [name for name, _k, _w in outputs],
        "report_warnings": list(model.warnings),
        "render_timings": timings,
    }
