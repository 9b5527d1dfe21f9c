"""report.pdf read back: its counts equal the findings, it is bounded, values are inert."""

from __future__ import annotations

import re
import time
from pathlib import Path

import polars as pl
import pytest
from pypdf import PdfReader

from audit.outputs.model import build_report
from audit.outputs.pdf import render_pdf
from tests.report_fixtures import FORMULA, SCRIPT, demo_run, hostile_findings, settings_with


def pdf_text(path: Path) -> str:
    text = "\n".join((page.extract_text() or "") for page in PdfReader(path).pages)
    # Zero-width spaces let long DNs wrap; normalise them and the layout's line breaks away.
    return " ".join(text.replace("\u200b", "").split())


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_pdf_counts_equal_the_findings() -> None:
    demo = demo_run()
    text = pdf_text(demo.run_dir / "report.pdf")
    by_code = dict(demo.findings.group_by("code").len().iter_rows())
    for code, n in by_code.items():
        assert f"{code} · {n} finding{'' if n == 1 else 's'}" in text, code
    by_severity = dict(demo.findings.group_by("severity").len().iter_rows())
    for severity in ("critical", "high", "medium", "low", "info"):
        assert f"{by_severity.get(severity, 0)} {severity}" in text, severity
    assert f"Total {demo.findings.height} findings" in text
    health = re.search(
        r"(\d+\.\d)%\s*Sync health (?:but critical: .*? )?(\d[\d,]*) of (\d[\d,]*) in-scope", text
    )
    assert health, "health figure on the summary page"
    clean, total = (int(g.replace(",", "")) for g in health.group(2, 3))
    assert f"{100 * clean / total:.1f}" == health.group(1)
    assert "Top actions" in text and "Findings by code" in text
    pages = len(PdfReader(demo.run_dir / "report.pdf").pages)
    assert f"Page 1 of {pages}" in text


def test_pdf_lists_the_first_n_objects_then_points_to_the_xlsx(tmp_path: Path) -> None:
    demo = demo_run()
    settings = settings_with(pdf_rows_per_code=2)
    model = build_report(demo.findings, demo.snapshot, settings, run_id="demo")
    render_pdf(model, tmp_path / "r.pdf")
    text = pdf_text(tmp_path / "r.pdf")
    for code, n in demo.findings.group_by("code").len().iter_rows():
        if n > 2:
            assert f"and {n - 2} more in findings.xlsx" in text, code
    # The first objects of a code are named, the third is not in the PDF.
    rows = demo.findings.filter(pl.col("code") == "invalid-attribute")
    squashed = squash(text)  # DNs wrap over lines in the table
    assert squash(rows["ad_dn"][0]) in squashed
    # An object listed only beyond the first two rows of its code is not in the PDF.
    shown = pl.concat([f.head(2) for f in demo.findings.partition_by("code")])
    mentioned = " ".join(shown["detail"].to_list() + shown["ad_dn"].drop_nulls().to_list())
    hidden = [dn for dn in rows["ad_dn"][2:].to_list() if dn and dn not in mentioned]
    assert hidden
    assert all(squash(dn) not in squashed for dn in hidden)


def test_pdf_time_does_not_grow_with_the_estate(tmp_path: Path) -> None:
    """40x the demo's findings: the PDF still holds N rows per code (weasyprint would need
    minutes for all rows)."""
    demo = demo_run()
    big = pl.concat(
        [demo.findings.with_columns(pl.col("fingerprint") + pl.lit(f"-{i}")) for i in range(40)]
    )
    settings = settings_with(pdf_rows_per_code=10)
    model = build_report(big, demo.snapshot, settings, run_id="big")
    t0 = time.perf_counter()
    render_pdf(model, tmp_path / "big.pdf")
    elapsed = time.perf_counter() - t0
    pages = len(PdfReader(tmp_path / "big.pdf").pages)
    codes = demo.findings["code"].n_unique()
    assert pages < 4 + codes * 3
    assert elapsed < 30  # typically 2-4 s on a shared 2-core machine
    assert f"Total {big.height:,} findings" in pdf_text(tmp_path / "big.pdf")


def test_hostile_values_are_text_in_the_pdf(tmp_path: Path) -> None:
    findings, snapshot = hostile_findings()
    model = build_report(findings, snapshot, settings_with(), run_id="hostile")
    render_pdf(model, tmp_path / "h.pdf")
    text = squash(pdf_text(tmp_path / "h.pdf"))
    assert squash(f"{SCRIPT}@contoso.com") in text
    assert squash(f"{FORMULA}@contoso.com") in text
    raw = (tmp_path / "h.pdf").read_bytes()
    assert b"/JavaScript" not in raw and b"/JS " not in raw and b"/Launch" not in raw
    # A link annotation may only point inside the document (the "details" page references).
    assert b"http://x" not in raw or b"/URI (http://x" not in raw


def test_pdf_fetches_nothing_but_inline_data() -> None:
    """All the PDF needs is inline; refusing file: and network URLs means neither a directory
    value nor a reference inside an SVG logo can make weasyprint read a file or the network."""
    from audit.outputs.pdf import pdf_fetcher

    fetcher = pdf_fetcher()
    for url in ("file:///etc/hostname", "http://127.0.0.1:9/x.png", "https://example.com/a.css"):
        with pytest.raises(ValueError, match="disallowed protocol"):
            fetcher.fetch(url)
    assert fetcher.fetch("data:text/plain;base64,aGk=") is not None
