"""forecast.parquet / .csv / .xlsx / .json beside the findings, and the forecast section of the
HTML and PDF reports (read back from those files, so a re-analysis keeps the section).

forecast.parquet and forecast.csv are working data, unredacted like findings.csv (the CSV's
formula-looking cells get a leading quote). forecast.xlsx and the report section are
human-facing: masked when the report is redacted. forecast.json holds the verdict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from audit.forecast import FORECAST_SCHEMA, OUTCOMES
from audit.forecast_verdict import Forecasted, Verdict
from audit.outputs import charts
from audit.outputs.findings import neutralise_formulas
from audit.outputs.redact import Redactor
from audit.outputs.xlsx import _cell
from audit.store import write_file_atomically

FORECAST_FILES = ("forecast.parquet", "forecast.csv", "forecast.xlsx", "forecast.json")
# Every person up to this many (a readiness assessment's 40,000 people fit); above it the sheet
# holds the people something happens to, the unchanged are in forecast.csv / .parquet (a
# million-row sheet takes xlsxwriter minutes and Excel will not open it comfortably).
XLSX_EVERYONE = 100_000
EXCEL_ROWS = 1_048_575  # a sheet's rows under its header
OUTCOME_COLOURS = {
    "unchanged": "#9aa5b1",
    "update": "#4c78a8",
    "hard-match": "#72b7b2",
    "soft-match": "#54a24b",
    "create": "#eeca3b",
    "error": "#e45756",
    "soft-delete": "#b279a2",
}
_PERSON_COLUMNS = ("ad_dn", "ad_upn", "cloud_upn", "predicted_upn")


def write_forecast(out: Path, forecasted: Forecasted, redactor: Redactor | None) -> dict[str, Path]:
    """The four files in `out`, each written atomically: name -> path."""
    people = forecasted.result.people.select(list(FORECAST_SCHEMA))
    verdict = forecasted.verdict
    write_file_atomically(out / "forecast.parquet", people.write_parquet)
    flat = people.with_columns(
        pl.col("property_conflict").list.join(", "), pl.col("finding_codes").list.join(", ")
    )
    csv_frame = neutralise_formulas(flat)
    write_file_atomically(out / "forecast.csv", lambda p: csv_frame.write_csv(p, include_bom=True))
    write_file_atomically(
        out / "forecast.xlsx", lambda p: _write_xlsx(p, masked(flat, redactor), verdict)
    )
    text = json.dumps(verdict.as_json(), indent=1, ensure_ascii=False) + "\n"
    write_file_atomically(out / "forecast.json", lambda p: p.write_text(text, "utf-8"))
    return {name: out / name for name in FORECAST_FILES}


def masked(people: pl.DataFrame, redactor: Redactor | None) -> pl.DataFrame:
    """People rows as a redacted report may show them: names masked, sentences withheld."""
    if redactor is None:
        return people
    exprs = [
        pl.col(c).map_elements(
            redactor.dn if c == "ad_dn" else redactor.email, return_dtype=pl.String
        )
        for c in _PERSON_COLUMNS
    ]
    return people.with_columns(
        *exprs,
        pl.col("ou").map_elements(redactor.dn, return_dtype=pl.String),
        pl.col("ad_object_guid").map_elements(redactor.token, return_dtype=pl.String),
        pl.col("cloud_id").map_elements(redactor.token, return_dtype=pl.String),
        pl.lit("(redacted)").alias("reason"),
        pl.lit("(redacted)").alias("fix"),
    )


def _write_xlsx(path: Path, people: pl.DataFrame, verdict: Verdict) -> None:
    import xlsxwriter  # type: ignore[import-untyped]

    workbook = xlsxwriter.Workbook(
        str(path), {"constant_memory": True, "strings_to_formulas": False}
    )
    bold = workbook.add_format({"bold": True})
    sheet = workbook.add_worksheet("Verdict")
    sheet.set_column(0, 0, 44)
    sheet.set_column(1, 4, 24)
    sheet.set_column(5, 5, 90)
    rows: list[list[Any]] = [
        ["Verdict", verdict.decision],
        ["Scope change", verdict.change],
        ["People", verdict.people],
        *[[f"Outcome: {o}", n] for o, n in verdict.counts.items()],
        ["Deletions / threshold", f"{verdict.deletions} / {verdict.deletion_threshold}"],
        [],
        ["Blocker", "People", "Decides NO-GO", "Entra error", "remediation.ps1 action", "Fix"],
        *[
            [
                b.title,
                b.people,
                "yes" if b.no_go else "no",
                ", ".join(b.errors),
                ", ".join(b.fix_actions),
                b.fix,
            ]
            for b in verdict.blockers
        ],
        [],
        *[["Assumed", note] for note in verdict.notes],
    ]
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if isinstance(value, int):
                sheet.write_number(r, c, value, bold if c == 0 else None)
            else:
                sheet.write_string(r, c, _cell(str(value)), bold if c == 0 else None)
    # People: the ones something happens to first, so a cap (Excel's sheet limit) drops the
    # unchanged, which forecast.csv still holds.
    order = pl.col("outcome").replace_strict(
        {o: i for i, o in enumerate(("error", *[o for o in OUTCOMES if o != "error"]))},
        return_dtype=pl.Int8,
    )
    people = people.sort(order, "ou", "ad_dn")
    if people.height > XLSX_EVERYONE:
        people = people.filter(pl.col("outcome") != "unchanged")
        note = (
            f"{verdict.counts['unchanged']:,} unchanged people are not listed (more than "
            f"{XLSX_EVERYONE:,} people): forecast.csv and forecast.parquet hold everyone"
        )
        if people.height > EXCEL_ROWS:
            note += f"; the sheet stops at Excel's {EXCEL_ROWS:,} rows"
            people = people.head(EXCEL_ROWS)
        sheet.write_string(len(rows) + 1, 0, "People sheet", bold)
        sheet.write_string(len(rows) + 1, 1, note)
    sheet = workbook.add_worksheet("People")
    columns = people.columns
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(people.height, 1), len(columns) - 1)
    for c, name in enumerate(columns):
        sheet.write_string(0, c, name, bold)
        sheet.set_column(c, c, 60 if name in ("reason", "fix", "ad_dn") else 22)
    for r, person in enumerate(people.iter_rows(), start=1):
        for c, value in enumerate(person):
            if value is not None:
                sheet.write_string(r, c, _cell(str(value)))
    workbook.close()


def short_ou(dn: str) -> str:
    """An OU as people name it: the DN without its domain part (DC=...)."""
    kept = [part for part in dn.split(",") if not part.strip().upper().startswith("DC=")]
    return ",".join(kept) or dn


# --- the report section -------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockerRows:
    title: str
    people: int
    no_go: bool
    errors: str
    fix: str
    actions: str
    rows: tuple[dict[str, Any], ...]  # the first people it affects (bounded)


@dataclass(frozen=True)
class ForecastSection:
    decision: str
    sentence: str
    change: str
    counts: dict[str, int]
    people: int
    deletions: int
    deletion_threshold: int
    blockers: tuple[BlockerRows, ...]
    chart_svg: str
    ous: int
    charted_ous: int
    notes: tuple[str, ...]


def record_forecast(manifest: dict[str, Any], forecasted: Forecasted | None) -> None:
    """The manifest's "forecast": the change (re-analysis forecasts it again) and its verdict."""
    if forecasted is None:
        manifest.pop("forecast", None)
        return
    manifest["forecast"] = {
        "change": forecasted.result.change.as_json(),
        "decision": forecasted.verdict.decision,
        "people": forecasted.verdict.people,
        "forecast_s": forecasted.seconds,
    }


def remove_stale_forecast(run_dir: Path, forecasted: Forecasted | None) -> None:
    """Without a forecast in this analysis, an earlier one's files would speak for it."""
    for name in FORECAST_FILES if forecasted is None else ():
        (run_dir / name).unlink(missing_ok=True)


def forecast_section(
    forecasted: Forecasted | None, redactor: Redactor | None, rows_per_blocker: int
) -> ForecastSection | None:
    """The reports' section of this analysis's forecast (None without one)."""
    if forecasted is None:
        return None
    data = forecasted.verdict.as_json()
    people = forecasted.result.people
    blockers = []
    for b in data["blockers"]:
        rows = masked(
            people.filter(pl.col("blocker") == b["kind"])
            .sort("ou", "ad_dn")
            .head(rows_per_blocker)
            .select(
                "ad_dn",
                "ad_upn",
                "cloud_upn",
                "predicted_upn",
                "ou",
                "ad_object_guid",
                "cloud_id",
                "outcome",
                "error",
                "reason",
                "fix",
            ),
            redactor,
        )
        blockers.append(
            BlockerRows(
                title=b["title"],
                people=b["people"],
                no_go=b["no_go"],
                errors=", ".join(b["errors"]),
                fix=b["fix"],
                actions=", ".join(b["fix_actions"]),
                rows=tuple(rows.to_dicts()),
            )
        )
    # The bars draw the people something happens to (the unchanged would dwarf them); the
    # end of each bar says how many of the OU's people that is.
    affected = {o: c for o, c in OUTCOME_COLOURS.items() if o != "unchanged"}
    by_ou = []
    for row in data["by_ou"]:
        counts = row["counts"]
        total = sum(counts.values())
        moved = total - counts.get("unchanged", 0)
        label = short_ou(row["ou"])
        by_ou.append((redactor.dn(label) if redactor else label, counts, f"{moved:,} of {total:,}"))
    return ForecastSection(
        decision=data["decision"],
        sentence=data["sentence"],
        change=data["change"],
        counts=data["counts"],
        people=sum(data["counts"].values()),
        deletions=data["deletions"],
        deletion_threshold=data["deletion_threshold"],
        blockers=tuple(blockers),
        chart_svg=charts.stacked_bars(by_ou, affected, "Outcome per OU"),
        ous=data["ous"],
        charted_ous=len(by_ou),
        notes=tuple(data["notes"]),
    )
