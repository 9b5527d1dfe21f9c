"""findings.parquet, findings.json and findings.csv: the admin team's working data, unredacted.

findings.csv is UTF-8 with a BOM (Excel on Windows reads accents right) and every cell a
spreadsheet would evaluate as a formula gets a leading quote (OWASP CSV injection)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from audit.model import FINDINGS_SCHEMA, conform
from audit.store import write_file_atomically

FINDINGS_FILES = ("findings.parquet", "findings.json", "findings.csv")

# Spreadsheet programs run a cell that starts with one of these as a formula (OWASP CSV
# injection); directory values are attacker-controlled, so such cells get a leading quote.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")
# Spreadsheet imports may drop or skip these before deciding a cell is a formula: LibreOffice
# drops a leading NUL and evaluates "\x00=1+1". Control characters (C0 but tab, CR and LF, which
# are prefixes themselves; DEL; C1), Unicode whitespace and the default-ignorable characters
# (soft hyphen, zero-width and bidi controls, variation selectors, tags). Written with \xHH,
# \uHHHH and \UHHHHHHHH escapes only, which Python's re and polars' (Rust) regex both read.
IGNORABLE_LEAD = (
    r"^["
    r"\x00-\x08\x0b\x0c\x0e-\x20\x7f-\xa0\xad"  # controls, space, NEL, NBSP, soft hyphen
    r"\u034f\u061c\u115f\u1160\u1680\u17b4\u17b5\u180b-\u180f"
    r"\u2000-\u200f\u2028-\u202f\u205f-\u206f"  # spaces, zero-width, bidi, invisible operators
    r"\u3000\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8"
    r"\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff"
    r"]+"
)


def neutralise_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """Prefix a quote to string cells a spreadsheet would evaluate as a formula."""
    # One regex per column: any run of ignorable characters, then a formula prefix.
    prefixes = "".join(f"\\u{ord(p):04x}" for p in FORMULA_PREFIXES)
    formula = f"{IGNORABLE_LEAD.removesuffix('+')}*[{prefixes}]"
    exprs = []
    for name, dtype in frame.schema.items():
        if dtype == pl.String:
            col = pl.col(name)
            starts_with_formula = col.str.contains(formula)
            exprs.append(
                pl.when(starts_with_formula).then(pl.lit("'") + col).otherwise(col).alias(name)
            )
    return frame.with_columns(exprs) if exprs else frame


def write_findings(
    run_dir: Path, findings: pl.DataFrame, header: Mapping[str, Any]
) -> dict[str, Path]:
    """findings.parquet, .json and .csv in `run_dir`, each written atomically: name -> path."""
    findings = conform(findings, FINDINGS_SCHEMA)
    write_file_atomically(run_dir / "findings.parquet", findings.write_parquet)
    records = findings.with_columns(pl.col("first_seen").dt.to_string("%Y-%m-%dT%H:%M:%SZ"))
    payload = {**header, "findings": records.to_dicts()}
    text = json.dumps(payload, indent=1, ensure_ascii=False, default=str) + "\n"
    write_file_atomically(run_dir / "findings.json", lambda p: p.write_text(text, "utf-8"))
    csv_frame = neutralise_formulas(records)
    # UTF-8 with BOM: Excel on Windows otherwise opens directory names with accents as cp1252.
    write_file_atomically(
        run_dir / "findings.csv",
        lambda p: csv_frame.write_csv(p, include_bom=True),
    )
    return {name: run_dir / name for name in FINDINGS_FILES}
