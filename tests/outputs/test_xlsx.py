"""findings.xlsx (and the run's findings.csv): sheets, frozen header, filters, inert cells."""

from __future__ import annotations

import csv
import json
import re
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import load_workbook

from audit.model import FINDINGS_SCHEMA, Severity, conform
from audit.outputs.charts import SEVERITY_COLOURS
from audit.outputs.findings import neutralise_formulas, write_findings
from audit.outputs.model import FAMILY_LABELS, ReportModel, build_report
from audit.outputs.xlsx import XLSX_COLUMNS, XLSX_MAX_CELL, _cell, _sheet_name, render_xlsx
from tests import factories as f
from tests.report_fixtures import FORMULA, SCRIPT, demo_run, hostile_findings, settings_with

FINGERPRINT_COL = [c for c, _h, _w in XLSX_COLUMNS].index("fingerprint")


def test_demo_workbook_has_a_summary_and_a_sheet_per_family() -> None:
    demo = demo_run()
    book = load_workbook(demo.run_dir / "findings.xlsx")
    worst = {
        family: max(Severity[s].value for s in group["severity"])
        for (family,), group in demo.findings.group_by("family")
    }
    # families with the worst findings first (the critical tenant one), then catalogue order
    families = sorted((f for f in FAMILY_LABELS if f in worst), key=lambda f: -worst[f])
    assert families[0] == "tenant"
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
        dn_column = sheet.cell(1, _column("ad_dn")).column_letter
        assert (sheet.column_dimensions[dn_column].width or 0) > 40
        seen += [row[FINGERPRINT_COL] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert sorted(seen) == sorted(demo.findings["fingerprint"])
    summary = [[c for c in row if c] for row in book["Summary"].iter_rows(values_only=True)]
    flat = [v for row in summary for v in row]
    assert "Sync health" in flat
    for code, n in demo.findings.group_by("code").len().iter_rows():
        row = next(r for r in summary if r and r[0] == code)
        assert n in row  # a number, not text


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
                if isinstance(cell.value, str):
                    assert cell.data_type == "s", (sheet.title, cell.coordinate, cell.value)
                    values.append(cell.value)
                elif cell.value is not None:  # counts and dates: ours, never directory text
                    assert cell.data_type in ("n", "d"), (sheet.title, cell.coordinate)
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


# Characters a spreadsheet import may drop or skip before it decides whether a cell is a
# formula (see tests/test_store.py): a formula behind any run of them must be quoted.
INVISIBLE_LEAD = (
    [chr(c) for c in range(0x00, 0x20)]
    + ["\x7f", *map(chr, range(0x80, 0xA0)), "\xad"]
    + [chr(c) for c in (*range(0x200B, 0x2010), *range(0x2060, 0x2065), 0xFEFF)]
    + [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]
    + [chr(c) for c in range(0x3001) if chr(c).isspace()]
)
SKIPPED_LEAD = [c for c in INVISIBLE_LEAD if c not in "\t\r\n"]


@given(
    lead=st.lists(st.sampled_from(INVISIBLE_LEAD), min_size=1, max_size=6).map("".join),
    formula=st.sampled_from(["=1+1", "+1", "-1", "@SUM(A1)", "＝1+1", "＠A1", "\t=1+1"]),
)
def test_cells_quote_formulas_behind_invisible_characters(lead: str, formula: str) -> None:
    assert _cell(lead + formula) == f"'{lead}{formula}"


@given(
    lead=st.lists(st.sampled_from(SKIPPED_LEAD), max_size=6).map("".join),
    body=st.text(min_size=1).filter(lambda s: s[0].isalnum() or s[0] in "'\"(<#"),
)
def test_cells_leave_harmless_values_alone(lead: str, body: str) -> None:
    value = lead + body
    assert _cell(value) == value


@given(st.text(max_size=8))
def test_cells_are_quoted_exactly_like_the_csv(value: str) -> None:
    """One rule for findings.csv and findings.xlsx (they read the same constants)."""
    assert _cell(value) == neutralise_formulas(pl.DataFrame({"v": [value]}))["v"][0]


def test_long_cells_are_cut_to_excels_limit_and_keep_their_quote() -> None:
    cut = _cell("\x00=" + "x" * XLSX_MAX_CELL)
    assert len(cut) == XLSX_MAX_CELL and cut.startswith("'\x00=") and cut.endswith("[truncated]")


FIRST_SEEN = datetime(2026, 11, 23, 6, 0, 5, tzinfo=UTC)


def crafted_model(rows: list[dict[str, object]]) -> ReportModel:
    """A report over hand-written findings (unknown codes land in their own family sheet)."""
    findings = conform(
        pl.DataFrame(rows, strict=False).with_columns(
            pl.lit(FIRST_SEEN).alias("first_seen"), pl.lit(False).alias("waived")
        ),
        FINDINGS_SCHEMA,
    )
    snap = f.snapshot([f.ad_user("alice")], [f.cloud_user("alice")])
    return build_report(findings, snap, settings_with(), run_id="crafted")


def test_formulas_behind_nul_and_controls_are_quoted_in_the_workbook(tmp_path: Path) -> None:
    """LibreOffice drops a leading NUL and evaluates "=1+1"; the cell must keep its quote."""
    hostile = ["\x00=1+1", "\x01\x7f+1", "\x85\u200e-1", "\u2066\xad@SUM(A1)", "\ufeff＝1"]
    model = crafted_model(
        [{"code": "x-test", "family": "x", "severity": "low", "ad_upn": v} for v in hostile]
    )
    render_xlsx(model, tmp_path / "f.xlsx")
    sheet = load_workbook(tmp_path / "f.xlsx")["X"]
    upn_col = [c for c, _h, _w in XLSX_COLUMNS].index("ad_upn") + 1
    written = [sheet.cell(r, upn_col).value for r in range(2, sheet.max_row + 1)]
    # XML cannot hold most C0 controls: xlsxwriter writes them as _xHHHH_, which Excel decodes
    # (openpyxl does not), so decode them here as Excel would.
    decoded = [re.sub(r"_x([0-9A-F]{4})_", lambda m: chr(int(m[1], 16)), v) for v in written]
    assert "'_x0000_=1+1" in written
    assert sorted(decoded) == sorted(f"'{v}" for v in hostile)


def _column(name: str) -> int:
    return [c for c, _h, _w in XLSX_COLUMNS].index(name) + 1


def test_numbers_are_numbers_and_no_column_is_a_constant(tmp_path: Path) -> None:
    """Counts are numbers; status, first seen and waivers are not shown until run history and
    waivers exist (they would be the same value in every row)."""
    model = crafted_model(
        [
            {"code": "x-test", "family": "x", "severity": "high"},
            {"code": "x-test", "family": "x", "severity": "low"},
            {"code": "x-test", "family": "x", "severity": "info"},
        ]
    )
    render_xlsx(model, tmp_path / "f.xlsx")
    book = load_workbook(tmp_path / "f.xlsx")
    headers = [c.value for c in book["X"][1]]
    assert not {"Status", "First seen", "Waiver reason", "Waiver expires"} & set(headers)
    summary = [
        [c for c in row if c is not None] for row in book["Summary"].iter_rows(values_only=True)
    ]
    assert ["Findings", 3] in summary and not [r for r in summary if r and r[0] == "Waived"]
    assert ["high", 1] in summary and ["medium", 0] in summary
    code_row = next(r for r in summary if r and r[0] == "x-test")
    assert 3 in code_row


def test_demo_workbook_types_colours_and_links() -> None:
    demo = demo_run()
    book = load_workbook(demo.run_dir / "findings.xlsx")
    families = [FAMILY_LABELS[f] for f in FAMILY_LABELS if f in set(demo.findings["family"])]
    colours: dict[str, set[str]] = {}
    for name in families:
        sheet = book[name]
        for r in range(2, sheet.max_row + 1):
            severity = sheet.cell(r, _column("severity"))
            colours.setdefault(severity.value, set()).add(severity.fill.fgColor.rgb)
    # one colour per severity, the charts' palette, and different severities differ
    assert set(colours) <= set(SEVERITY_COLOURS) and len(colours) > 1
    for severity, seen_colours in colours.items():
        assert seen_colours == {"FF" + SEVERITY_COLOURS[severity].lstrip("#").upper()}
    summary = book["Summary"]
    links = {
        cell.hyperlink.location
        for row in summary.iter_rows()
        for cell in row
        if cell.hyperlink is not None
    }
    assert {f"'{name}'!A1" for name in families} <= links
    health = next(row for row in summary.iter_rows() if row[0].value == "Sync health")
    assert isinstance(health[1].value, float) and "%" in health[1].number_format


def test_summary_codes_show_severity_split_and_this_runs_fix() -> None:
    demo = demo_run()
    book = load_workbook(demo.run_dir / "findings.xlsx")
    rows = [[c for c in row] for row in book["Summary"].iter_rows(values_only=True)]
    header = next(r for r in rows if r and r[0] == "Code")
    assert header[:7] == [
        "Code",
        "Severity",
        "Title",
        "Family (sheet)",
        "Findings",
        "Severity split",
        "remediation.ps1 (this run)",
    ]
    by_code = {r[0]: r for r in rows if r and r[0] in ("unmatched-ad", "enabled-drift")}
    assert by_code["unmatched-ad"][4:7] == [6, "1 medium, 5 info", "no fix needed"]
    assert by_code["enabled-drift"][4:7] == [
        4,
        "2 high, 2 low",
        "block-sign-in \u00d72, manual \u00d72",
    ]
