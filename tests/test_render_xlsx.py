"""findings.xlsx (and the run's findings.csv): sheets, frozen header, filters, inert cells."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import polars as pl
from openpyxl import load_workbook

from audit.render import XLSX_COLUMNS, _sheet_name, render_xlsx
from audit.report import FAMILY_LABELS, build_report
from audit.store import write_findings
from tests.report_fixtures import FORMULA, SCRIPT, demo_run, hostile_findings, settings_with

FINGERPRINT_COL = [c for c, _h, _w in XLSX_COLUMNS].index("fingerprint")


def test_demo_workbook_has_a_summary_and_a_sheet_per_family() -> None:
    demo = demo_run()
    book = load_workbook(demo.run_dir / "findings.xlsx")
    families = [f for f in FAMILY_LABELS if f in set(demo.findings["family"])]
    assert book.sheetnames == ["Summary", *[FAMILY_LABELS[f] for f in families]]
    seen: list[str] = []
    for family in families:
        sheet = book[FAMILY_LABELS[family]]
        header = [c.value for c in sheet[1]]
        assert header == [h for _c, h, _w in XLSX_COLUMNS]
        assert sheet.freeze_panes == "A2"
        expected = demo.findings.filter(pl.col("family") == family).height
        assert sheet.max_row == expected + 1
        assert (
            sheet.auto_filter.ref
            == f"A1:{sheet.cell(1, len(XLSX_COLUMNS)).column_letter}{expected + 1}"
        )
        assert sheet.column_dimensions["F"].width and sheet.column_dimensions["F"].width > 40
        seen += [row[FINGERPRINT_COL] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert sorted(seen) == sorted(demo.findings["fingerprint"])
    summary = [[c for c in row if c] for row in book["Summary"].iter_rows(values_only=True)]
    flat = [v for row in summary for v in row]
    assert "Sync health" in flat
    for code, n in demo.findings.group_by("code").len().iter_rows():
        row = next(r for r in summary if r and r[0] == code)
        assert str(n) in row


def test_hostile_values_are_strings_never_formulas(tmp_path: Path) -> None:
    findings, snapshot = hostile_findings()
    model = build_report(findings, snapshot, settings_with(), run_id="hostile")
    path = tmp_path / "h.xlsx"
    render_xlsx(model, path)
    with zipfile.ZipFile(path) as archive:
        sheets = [n for n in archive.namelist() if n.startswith("xl/worksheets/")]
        for name in sheets:
            assert b"<f>" not in archive.read(name), name  # no formula cell anywhere
    book = load_workbook(path)
    values = []
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if cell.value is not None:
                    assert cell.data_type == "s", (sheet.title, cell.coordinate, cell.value)
                    values.append(cell.value)
    # Neutralised like findings.csv: a leading quote so editing the cell keeps it text.
    assert f"'{FORMULA}@contoso.com" in values
    assert not any(str(v).startswith(("=", "+", "@")) for v in values)
    assert f"{SCRIPT}@contoso.com" in values


def test_hostile_values_are_neutralised_in_the_csv(tmp_path: Path) -> None:
    findings, _snapshot = hostile_findings()
    write_findings(tmp_path, findings, {"run_id": "hostile"})
    with open(tmp_path / "findings.csv", encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    upns = {r["ad_upn"] for r in rows}
    assert f"'{FORMULA}@contoso.com" in upns
    assert f"{SCRIPT}@contoso.com" in upns
    assert not any(v.startswith(("=", "+", "@")) for r in rows for v in r.values())
    # JSON keeps the exact value (machines read it; nothing evaluates it).
    data = json.loads((tmp_path / "findings.json").read_text())
    assert f"{FORMULA}@contoso.com" in {f["ad_upn"] for f in data["findings"]}


def test_sheet_names_are_valid_and_unique() -> None:
    used: set[str] = {"Summary"}
    assert _sheet_name("Drift: AD/Entra [x]?", used) == "Drift- AD-Entra -x--"
    assert _sheet_name("summary", used) == "summary (2)"
    long = "A" * 40
    first = _sheet_name(long, used)
    second = _sheet_name(long, used)
    assert len(first) == 31 and len(second) <= 31 and first != second


def test_big_sheet_in_constant_memory_mode(tmp_path: Path) -> None:
    demo = demo_run()
    big = pl.concat(
        [demo.findings.with_columns(pl.col("fingerprint") + pl.lit(f"-{i}")) for i in range(100)]
    )
    model = build_report(big, demo.snapshot, settings_with(), run_id="big")
    render_xlsx(model, tmp_path / "big.xlsx")
    book = load_workbook(tmp_path / "big.xlsx", read_only=True)
    rows = sum(ws.max_row - 1 for ws in book.worksheets if ws.title != "Summary")
    assert rows == big.height
