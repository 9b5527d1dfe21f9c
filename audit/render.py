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
* XLSX: xlsxwriter in constant_memory mode; a summary sheet (linking to every sheet) and one
  sheet per family, header frozen, autofilter, widths set, severities coloured like the
  charts. Counts are numbers and datetimes real Excel dates (UTC); text is written with
  ``write_string`` (never a formula) and cells starting with ``= + - @`` (also behind blanks,
  controls or invisible characters) get a leading quote like findings.csv, so Excel or
  LibreOffice do not evaluate them even when the cell is edited.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from audit import charts
from audit.config import Settings
from audit.model import Snapshot
from audit.redact import Redactor, redaction_key
from audit.remediate import Plan, PlanSummary
from audit.report import (
    SEVERITIES,
    CodeSection,
    FamilySection,
    ReportModel,
    TrendPoint,
    build_report,
    compute_health,
    load_history,
)
from audit.store import _IGNORABLE_LEAD, FORMULA_PREFIXES, write_file_atomically
from audit.templates import templates_dir

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
    ("cause", "Cause", 30),
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


def causes_of(findings: pl.DataFrame) -> dict[str, str]:
    """fingerprint -> cause key (the plan knows fingerprints, the reports group by cause)."""
    if findings.is_empty() or "cause" not in findings.columns:
        return {}
    pairs = findings.select("fingerprint", pl.col("cause").fill_null(pl.col("code")))
    return dict(pairs.iter_rows())


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


def _static(name: str) -> Markup:
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
    js = _static("report.js")
    return template.render(
        m=model,
        css=_static("report.css"),
        js=js,
        script_hash=script_hash(js),
        data=script_json(payload),
        previews=previews,
        preview_rows=HTML_PREVIEW_ROWS,
        severities=SEVERITIES,
        **_chart_context(model),
    )


# -- PDF -------------------------------------------------------------------------------------


PDF_CAUSES = 6


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
        # the causes that fit on the summary page beside the KPIs and the severity chart
        pdf_causes=PDF_CAUSES,
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
        fmt = _xlsx_formats(workbook)
        # Sheet names first: the summary (written first, constant_memory writes in order) links
        # to every sheet. One sheet per family, split where Excel's row limit is reached.
        used: set[str] = {"Summary"}
        sheets: list[tuple[FamilySection, list[str]]] = []
        for family in model.families:
            parts = range(0, max(family.count, 1), XLSX_MAX_ROWS)
            labels = [
                family.label if k == 0 else f"{family.label} {k + 1}" for k in range(len(parts))
            ]
            sheets.append((family, [_sheet_name(label, used) for label in labels]))
        _xlsx_summary(workbook, fmt, model, sheets)
        for family, names in sheets:
            frame = _xlsx_frame(family)
            for k, name in enumerate(names):
                _xlsx_findings(workbook, fmt, name, frame.slice(k * XLSX_MAX_ROWS, XLSX_MAX_ROWS))
    finally:
        workbook.close()


def _xlsx_formats(workbook: Any) -> dict[str, Any]:
    top = {"valign": "top"}
    fmt = {
        "title": workbook.add_format({"bold": True, "font_size": 16}),
        "bold": workbook.add_format({"bold": True}),
        "header": workbook.add_format(
            {"bold": True, "bg_color": "#1f2937", "font_color": "#ffffff", "border": 1}
        ),
        "wrap": workbook.add_format({"text_wrap": True, **top}),
        "cell": workbook.add_format(top),
        "count": workbook.add_format({"num_format": "#,##0", **top}),
        "percent": workbook.add_format({"num_format": "0.0%", **top}),
        # Excel has no time zones: datetimes are written in UTC and the format says so.
        "datetime": workbook.add_format({"num_format": 'yyyy-mm-dd hh:mm:ss "UTC"', **top}),
        "date": workbook.add_format({"num_format": "yyyy-mm-dd", **top}),
    }
    for severity, colour in charts.SEVERITY_COLOURS.items():  # the charts' palette
        fmt[f"severity:{severity}"] = workbook.add_format(
            {"bg_color": colour, "font_color": "#ffffff", "bold": True, **top}
        )
    return fmt


def _as_datetime(iso: str) -> datetime:
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None)  # xlsxwriter wants a naive datetime (UTC here)


def _xlsx_date_text(value: str) -> tuple[datetime, str] | None:
    """A text column's ISO 8601 date or date-time (waiver_expires) as a datetime and the name
    of its format; None when it is anything else, which is then written as text."""
    try:
        if len(value) == 10:
            moment, style = datetime.combine(date.fromisoformat(value), datetime.min.time()), "date"
        elif len(value) > 10 and value[10] in "T ":
            moment, style = _as_datetime(value), "datetime"
        else:
            return None
    except (ValueError, OverflowError):  # not ISO 8601; out of range once moved to UTC
        return None
    return (moment, style) if 1900 <= moment.year <= 9999 else None


def _sheet_name(label: str, used: set[str]) -> str:
    base = "".join("-" if ch in "[]:*?/\\" else ch for ch in label)[:31].strip("' ") or "Sheet"
    name, k = base, 2
    while name.lower() in {u.lower() for u in used}:
        suffix = f" ({k})"
        name, k = base[: 31 - len(suffix)] + suffix, k + 1
    used.add(name)
    return name


@cache
def _xlsx_ignorable_lead() -> re.Pattern[str]:
    return re.compile(_IGNORABLE_LEAD)  # the same characters as findings.csv


def _cell(value: str) -> str:
    """A text cell: quoted like findings.csv when a spreadsheet would run it as a formula
    (also behind a NUL, controls, whitespace or zero-width characters), cut to Excel's limit."""
    first = value[:1]
    if not (first.isascii() and first.isalnum()):  # the common case needs no regex
        lead = _xlsx_ignorable_lead().match(value)
        if value.startswith(FORMULA_PREFIXES, lead.end() if lead else 0):
            value = "'" + value
    if len(value) <= XLSX_MAX_CELL:
        return value
    suffix = " [truncated]"
    return value[: XLSX_MAX_CELL - len(suffix)] + suffix


def _xlsx_frame(family: FamilySection) -> pl.DataFrame:
    """The family's findings in XLSX_COLUMNS order, keeping each column's type; datetimes as
    naive UTC (what xlsxwriter writes)."""
    frame = pl.concat([c.rows for c in family.codes], how="vertical")
    exprs = []
    for name, _h, _w in XLSX_COLUMNS:
        dtype = frame.schema[name]
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            exprs.append(pl.col(name).dt.convert_time_zone("UTC").dt.replace_time_zone(None))
        else:
            exprs.append(pl.col(name))
    return frame.select(exprs)


def _xlsx_findings(workbook: Any, fmt: Mapping[str, Any], name: str, frame: pl.DataFrame) -> None:
    sheet = workbook.add_worksheet(name)
    for col, (_c, _header, width) in enumerate(XLSX_COLUMNS):
        wrap = _c in ("detail", "ad_dn")
        sheet.set_column(col, col, width, fmt["wrap"] if wrap else fmt["cell"])
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(frame.height, 1), len(XLSX_COLUMNS) - 1)
    for col, (_c, header, _w) in enumerate(XLSX_COLUMNS):
        sheet.write_string(0, col, header, fmt["header"])

    def text(r: int, c: int, value: str) -> None:
        sheet.write_string(r, c, _cell(value))

    def severity(r: int, c: int, value: str) -> None:
        sheet.write_string(r, c, _cell(value), fmt.get(f"severity:{value}"))

    def date_text(r: int, c: int, value: str) -> None:
        parsed = _xlsx_date_text(value)
        if parsed is None:
            text(r, c, value)
        else:
            sheet.write_datetime(r, c, parsed[0], fmt[parsed[1]])

    def moment(r: int, c: int, value: datetime) -> None:
        sheet.write_datetime(r, c, value, fmt["datetime"])

    def day(r: int, c: int, value: date) -> None:
        sheet.write_datetime(r, c, value, fmt["date"])

    def number(r: int, c: int, value: float) -> None:
        sheet.write_number(r, c, value)

    def boolean(r: int, c: int, value: bool) -> None:
        sheet.write_boolean(r, c, value)

    writers: list[Callable[[int, int, Any], None]] = []
    for column, dtype in frame.schema.items():
        if column == "severity":
            writers.append(severity)
        elif column == "waiver_expires":  # text in the schema, a date when it reads as one
            writers.append(date_text)
        elif isinstance(dtype, pl.Datetime):
            writers.append(moment)
        elif dtype == pl.Date:
            writers.append(day)
        elif dtype == pl.Boolean:
            writers.append(boolean)
        elif dtype.is_numeric():
            writers.append(number)
        elif dtype == pl.String:
            writers.append(text)
        else:
            writers.append(lambda r, c, v: text(r, c, str(v)))
    for r, row in enumerate(frame.iter_rows(), start=1):
        for col, value in enumerate(row):
            if value is not None and value != "":
                writers[col](r, col, value)


def _xlsx_summary(
    workbook: Any,
    fmt: Mapping[str, Any],
    m: ReportModel,
    sheets: Sequence[tuple[FamilySection, Sequence[str]]],
) -> None:
    sheet = workbook.add_worksheet("Summary")
    sheet.set_column(0, 0, 28)
    sheet.set_column(1, 1, 20)
    sheet.set_column(2, 2, 46)
    sheet.set_column(3, 3, 30)
    sheet.set_column(4, 4, 10)
    sheet.set_column(5, 5, 44)
    row = 0

    def put(
        *cells: str | int | float | datetime | None,
        style: str | None = None,
        number: str = "count",
    ) -> None:
        """One row: text (quoted if formula-like) in `style`, numbers in `number` format and
        datetimes (UTC)."""
        nonlocal row
        for col, value in enumerate(cells):
            if isinstance(value, str):
                if value:
                    sheet.write_string(row, col, _cell(value), fmt[style] if style else None)
            elif isinstance(value, datetime):
                sheet.write_datetime(row, col, value, fmt["datetime"])
            elif isinstance(value, int | float):
                sheet.write_number(row, col, value, fmt[number])
        row += 1

    def link(col: int, name: str, text: str | None = None) -> None:
        """An internal hyperlink to a sheet (quotes in its name doubled, as Excel wants)."""
        target = name.replace("'", "''")
        sheet.write_url(row, col, f"internal:'{target}'!A1", string=_cell(text or name))

    def when(iso: str | None) -> datetime | str:
        try:
            return _as_datetime(iso) if iso else "unknown"
        except (ValueError, OverflowError):
            return iso or "unknown"

    put(" - ".join(x for x in (m.company, m.title) if x), style="title")
    put("Run", m.run_id)
    put("Snapshot taken", when(m.taken_at))
    put("Generated", when(m.generated))
    if m.redacted:
        put("Redacted: user names, UPNs and DNs are masked.", style="bold")
    put()
    health = m.health
    put(
        "Sync health",
        "n/a" if not health.total else health.clean / health.total,
        f"{health.clean:,} of {health.total:,} in-scope enabled AD users cleanly matched",
        number="percent",
    )
    put("Findings", m.total)
    put("Waived", m.waived)
    put()
    put("Severity", "Findings", style="header")
    for s in SEVERITIES:
        sheet.write_string(row, 0, s, fmt[f"severity:{s}"])
        put(None, m.counts_by_severity.get(s, 0))
    put()
    put("Sheet", "Findings", style="header")
    for family, names in sheets:
        for k, name in enumerate(names):
            link(0, name)
            rows = min(XLSX_MAX_ROWS, max(family.count - k * XLSX_MAX_ROWS, 0))
            put(None, rows)
    put()
    put(
        "Code",
        "Severity",
        "Title",
        "Family (sheet)",
        "Findings",
        "Severity split",
        "remediation.ps1 (this run)",
        style="header",
    )
    first_sheet = {family.family: names[0] for family, names in sheets}
    for c in m.codes:
        sheet.write_string(row, 1, _cell(c.severity), fmt.get(f"severity:{c.severity}"))
        if c.family in first_sheet:
            link(3, first_sheet[c.family], _family_label(m, c))
        put(c.code, None, c.title, None, c.count, c.severity_split, c.fix_label)
    put()
    put(
        "Cells that start with = + - @ (also after blanks or invisible characters) are prefixed "
        "with ' so spreadsheet programs keep them as text (directory values are not trusted)."
    )


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
    plan: Plan | None = None,
) -> dict[str, Any]:
    """Write report.html, report.pdf and findings.xlsx into the run (or `out_dir`, where
    analyze stages its outputs); return what the manifest's ``analyzed`` section records:
    health, redaction and timings. `plan` is the run's remediation plan (the Fix columns)."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    health = compute_health(snapshot, findings)
    redactor = Redactor(redaction_key(run_dir.parent)) if redact else None
    skipped: list[str] = []
    history = load_history(run_dir, snapshot.taken_at, warnings=skipped)
    model = build_report(
        findings,
        snapshot,
        settings,
        run_id=str(manifest.get("run_id") or run_dir.name),
        health=health,
        history=history,
        notes=[*notes, *skipped],
        redactor=redactor,
        plan=PlanSummary.of(plan, causes_of(findings)) if plan is not None else None,
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
        "report_warnings": [*model.warnings, *skipped],
        "render_timings": timings,
    }
