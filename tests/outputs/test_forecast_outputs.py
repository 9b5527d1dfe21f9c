"""forecast.csv / .xlsx and the report section: directory values stay text (CSV and XLSX
formula injection, HTML autoescape), and a redacted report masks the people."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import openpyxl
import polars as pl

from audit.config import Settings
from audit.forecast import ScopeChange, forecast
from audit.forecast_verdict import Forecasted, verdict
from audit.outputs.forecast import forecast_section, record_forecast, write_forecast
from audit.outputs.html import render_html
from audit.outputs.model import build_report
from audit.outputs.redact import Redactor
from tests.report_fixtures import FORMULA, SCRIPT, hostile_findings


def forecasted() -> Forecasted:
    _findings, snapshot = hostile_findings()
    result = forecast(snapshot, Settings(), ScopeChange())
    return Forecasted(result, verdict(result), 0.0)


def written(tmp_path: Path, redactor: Redactor | None = None) -> Path:
    write_forecast(tmp_path, forecasted(), redactor)
    return tmp_path


def test_csv_and_xlsx_cells_are_never_formulas(tmp_path: Path) -> None:
    out = written(tmp_path)
    csv = pl.read_csv(out / "forecast.csv", infer_schema=False)
    cells = [c for row in csv.iter_rows() for c in row if c]
    assert any(FORMULA in c for c in cells)
    assert not any(c.lstrip().startswith(("=", "+", "-", "@")) for c in cells)
    book = openpyxl.load_workbook(out / "forecast.xlsx")
    assert book.sheetnames == ["Verdict", "People"]
    values = [c for sheet in book for row in sheet.iter_rows() for c in row if c.value]
    assert not any(c.data_type == "f" for c in values)
    assert any(FORMULA in str(c.value) for c in values)


def test_the_html_section_escapes_directory_values() -> None:
    findings, snapshot = hostile_findings()
    model = build_report(findings, snapshot, Settings(), run_id="hostile")
    html = render_html(replace(model, forecast=forecast_section(forecasted(), None, 25)))
    section = html[html.index('<section id="forecast">') :].split("</section>", 1)[0]
    assert SCRIPT not in section
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section


def test_a_redacted_report_masks_the_people(tmp_path: Path) -> None:
    redactor = Redactor(b"k" * 32)
    out = written(tmp_path, redactor)
    section = forecast_section(forecasted(), redactor, 25)
    assert section is not None and section.blockers
    rows = [r for b in section.blockers for r in b.rows]
    assert rows and all(r["reason"] == "(redacted)" for r in rows)
    assert not any("evil" in str(v) or "alert" in str(v) for r in rows for v in r.values())
    book = openpyxl.load_workbook(out / "forecast.xlsx")
    people = [str(c.value) for row in book["People"].iter_rows(min_row=2) for c in row if c.value]
    assert not any("evil" in v or "alert" in v for v in people)
    # forecast.csv is the team's working data, unredacted like findings.csv
    assert "alert(1)" in (out / "forecast.csv").read_text("utf-8-sig")


def test_a_redacted_report_masks_the_planned_ous(tmp_path: Path) -> None:
    _findings, snapshot = hostile_findings()
    staff = "OU=Staff,DC=corp,DC=contoso,DC=com"
    result = forecast(snapshot, Settings(), ScopeChange(exclude_ous=(staff,)))
    planned = Forecasted(result, verdict(result), 0.0)
    redactor = Redactor(b"k" * 32)
    section = forecast_section(planned, redactor, 25)
    assert section is not None and "OU=Staff" not in section.change
    assert section.change.endswith("leaves sync scope")
    write_forecast(tmp_path, planned, redactor)
    book = openpyxl.load_workbook(tmp_path / "forecast.xlsx")
    cells = [str(c.value) for row in book["Verdict"].iter_rows() for c in row if c.value]
    assert not any("OU=Staff" in c for c in cells)


def test_a_forecast_not_redone_keeps_its_change_for_the_next_analysis() -> None:
    change = {"include_ous": ["OU=A,DC=x"], "exclude_ous": [], "enable_sync": False}
    manifest: dict[str, object] = {"forecast": {"change": change, "decision": "GO"}}
    record_forecast(manifest, None)
    assert manifest["forecast"] == {"change": change, "not_redone": True}
    empty: dict[str, object] = {}
    record_forecast(empty, None)
    assert empty == {}
