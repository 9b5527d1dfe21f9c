"""analyze as a whole: its outputs are replaced together or not at all."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from audit import render
from audit.pipeline import analyze_run
from tests.report_fixtures import demo_run

OUTPUTS = (
    "findings.csv",
    "findings.json",
    "findings.parquet",
    "report.html",
    "report.pdf",
    "findings.xlsx",
    "remediation.ps1",
    "manifest.json",
)


def test_failed_reanalysis_leaves_the_previous_analysis_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report that fails to render halfway (here the PDF) leaves every output of the previous
    analysis as it was, instead of new findings beside an old script and manifest."""
    run = tmp_path / "runs" / "demo"
    shutil.copytree(demo_run().run_dir, run)
    before = {name: (run / name).read_bytes() for name in OUTPUTS}

    def broken_pdf(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(render, "render_pdf", broken_pdf)
    with pytest.raises(OSError, match="disk full"):
        analyze_run(run, redact=True)
    assert {name: (run / name).read_bytes() for name in OUTPUTS} == before
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]
