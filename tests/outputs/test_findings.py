"""findings.{parquet,json,csv}: written whole, and inert in a spreadsheet (formula neutralising)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from audit.model import FINDINGS_SCHEMA, conform
from audit.outputs.findings import neutralise_formulas, write_findings


def test_formula_cells_are_neutralised() -> None:
    """Cells a spreadsheet would evaluate get a leading quote; others are untouched."""
    frame = pl.DataFrame(
        {"v": ['=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)", "\tx", "alice", None]}
    )
    assert neutralise_formulas(frame)["v"].to_list() == [
        '\'=HYPERLINK("http://x")',
        "'+1",
        "'-2",
        "'@SUM(A1)",
        "'\tx",
        "alice",
        None,
    ]


def test_formulas_behind_blanks_or_in_full_width_are_neutralised() -> None:
    """Importers may trim leading blanks and zero-width characters, and full-width signs are
    read as formula signs by some spreadsheet programs."""
    values = [" =1+1", "\n=1+1", "\xa0=1+1", "\u200b=1+1", "＝1+1", "＋1", "a=b", " plain"]
    out = neutralise_formulas(pl.DataFrame({"v": values}))["v"].to_list()
    assert out == [f"'{v}" for v in values[:6]] + ["a=b", " plain"]


def test_findings_files_are_written_and_inert(tmp_path: Path) -> None:
    findings = conform(
        pl.DataFrame(
            {
                "code": ["upn-drift"],
                "severity": ["medium"],
                "detail": ["=cmd|' /C calc'!A0"],
                "value": ["<script>alert(1)</script>"],
                "waived": [False],
            }
        ),
        FINDINGS_SCHEMA,
    )
    write_findings(tmp_path, findings, {"run_id": "r"})
    csv_text = (tmp_path / "findings.csv").read_text(encoding="utf-8-sig")
    assert "'=cmd|' /C calc'!A0" in csv_text
    payload = json.loads((tmp_path / "findings.json").read_text())
    assert payload["findings"][0]["value"] == "<script>alert(1)</script>"
    assert pl.read_parquet(tmp_path / "findings.parquet").equals(findings)
    assert not list(tmp_path.glob(".*partial"))


# Characters a spreadsheet import may drop or skip before it decides whether a cell is a
# formula: C0 controls (tab, CR and LF are formula prefixes themselves), DEL, C1 controls,
# the soft hyphen, zero-width and bidi controls, and every Unicode whitespace character.
INVISIBLE_LEAD = (
    [chr(c) for c in range(0x00, 0x20)]
    + ["\x7f", *map(chr, range(0x80, 0xA0)), "\xad"]
    + [chr(c) for c in (*range(0x200B, 0x2010), *range(0x2060, 0x2065), 0xFEFF)]
    + [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]
    + [chr(c) for c in range(0x3001) if chr(c).isspace()]
)
FORMULAS = ("=1+1", "+1+1", "-1+1", "@SUM(A1)", "＝1+1", "＋1", "－1", "＠SUM(A1)", "\t=1+1")
invisible_runs = st.lists(st.sampled_from(INVISIBLE_LEAD), min_size=1, max_size=6).map("".join)
# Tab, CR and LF are formula prefixes themselves: a cell starting with one is always quoted.
skipped_runs = st.lists(
    st.sampled_from([c for c in INVISIBLE_LEAD if c not in "\t\r\n"]), min_size=1, max_size=6
).map("".join)


@given(lead=invisible_runs, formula=st.sampled_from(FORMULAS))
def test_formulas_behind_any_invisible_characters_are_neutralised(lead: str, formula: str) -> None:
    """LibreOffice drops a leading NUL and evaluates the rest: "\\x00=1+1" is a formula."""
    value = lead + formula
    out = neutralise_formulas(pl.DataFrame({"v": [value]}))["v"].to_list()
    assert out == [f"'{value}"]


@given(
    lead=st.one_of(st.just(""), skipped_runs),
    body=st.text(min_size=1).filter(lambda s: s[0].isalnum() or s[0] in "'\"(<#"),
)
def test_harmless_values_behind_invisible_characters_are_unchanged(lead: str, body: str) -> None:
    value = lead + body
    assert neutralise_formulas(pl.DataFrame({"v": [value]}))["v"].to_list() == [value]


def test_csv_neutralises_formulas_behind_nul_and_controls(tmp_path: Path) -> None:
    values = ["\x00=1+1", "\x01\x7f+1", "\x85\u200e-1", "\u2066\xad@SUM(A1)", "\ufeff＝1", "ok"]
    findings = conform(
        pl.DataFrame({"code": ["upn-drift"] * len(values), "value": values}), FINDINGS_SCHEMA
    )
    write_findings(tmp_path, findings, {"run_id": "r"})
    with open(tmp_path / "findings.csv", encoding="utf-8-sig", newline="") as handle:
        written = [row["value"] for row in csv.DictReader(handle)]
    assert written == [f"'{v}" for v in values[:-1]] + ["ok"]
