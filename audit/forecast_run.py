"""`syncaudit forecast RUN_DIR` and `syncaudit demo`: the forecast is part of an analysis (it
reuses the classification's joins, and the reports show it), so both end in pipeline.analyze
with a planned scope change."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from audit.config import Settings
from audit.errors import UsageError
from audit.forecast import ScopeChange
from audit.forecast_verdict import GO, Verdict
from audit.pipeline import AnalyzeResult, ImportResult, Progress, analyze, import_exports

DEMO_MARKER = ".syncaudit-demo"


def _quiet(_message: str) -> None: ...


@dataclass(frozen=True)
class ForecastResult:
    run_dir: Path
    verdict: Verdict
    outputs: dict[str, Path]  # the forecast files
    analysis: AnalyzeResult  # findings and reports of the same analysis

    @property
    def go(self) -> bool:
        return self.verdict.decision == GO


def run_forecast(
    run_dir: Path,
    settings: Settings | None = None,
    change: ScopeChange | None = None,
    *,
    progress: Progress = _quiet,
) -> ForecastResult:
    """Analyze the run with `change` forecast: forecast.{parquet,csv,xlsx,json} beside the
    findings, and the reports' forecast section. Raises ForecastError (one line) when the run
    cannot be forecast: a source not read completely, a suspect run, the tenant's sync state."""
    change = change or ScopeChange()
    progress(f"forecast: {change.sentence()}")
    analysis = analyze(run_dir, settings, forecast=change, progress=progress)
    assert analysis.forecast is not None  # asked for: analyze raises when it cannot make it
    outputs = {n: p for n, p in analysis.outputs.items() if n.startswith("forecast.")}
    return ForecastResult(analysis.run_dir, analysis.forecast, outputs, analysis)


@dataclass(frozen=True)
class DemoResult:
    imported: ImportResult
    analyzed: AnalyzeResult
    exports: Path  # the folder of the estate's export files
    config: Path  # the config those exports go with

    @property
    def forecast(self) -> Verdict:
        assert self.analyzed.forecast is not None
        return self.analyzed.forecast


def demo(out: Path, *, progress: Progress = _quiet) -> DemoResult:
    """The built-in estate's exports written to `out`/exports, imported to `out`/runs/demo and
    analysed with its planned scope change forecast (the Contractors OU in, the Interns OU
    out). `out` is replaced only when an earlier demo made it."""
    from audit.demo import write_demo_inputs
    from audit.demo.planned import PLANNED_CHANGE

    if out.exists() and any(out.iterdir()):
        if not (out / DEMO_MARKER).exists():
            raise UsageError(f"{out}: exists and is not a syncaudit demo directory")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / DEMO_MARKER).write_text("created by `syncaudit demo`; safe to delete\n")
    progress("writing the demo estate's exports")
    inputs = write_demo_inputs(out / "exports")
    imported = import_exports(
        out=out / "runs" / "demo", progress=progress, **inputs.import_arguments()
    )
    progress("analyzing, with the planned scope change forecast")
    analyzed = analyze(
        imported.run_dir, inputs.settings, forecast=PLANNED_CHANGE, progress=progress
    )
    return DemoResult(imported, analyzed, exports=out / "exports", config=inputs.config_path)
