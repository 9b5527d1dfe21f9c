"""`syncaudit forecast RUN_DIR`: forecast a run's next sync cycle under a planned scope change,
write forecast.{parquet,csv,xlsx,json} beside the findings, and re-render the reports with the
forecast section (analyze reads it back from those files)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from audit.config import Settings
from audit.forecast import ForecastError, ScopeChange, forecast
from audit.forecast_verdict import GO, Verdict, verdict
from audit.history import redaction_key
from audit.outputs.forecast import write_forecast
from audit.outputs.redact import Redactor
from audit.outputs.runs import generation_time
from audit.pipeline import AnalyzeResult, DemoResult, Progress, analyze, demo, settings_for_run
from audit.store import read_manifest, read_snapshot, staged_outputs, write_manifest


@dataclass(frozen=True)
class ForecastResult:
    run_dir: Path
    verdict: Verdict
    outputs: dict[str, Path]  # the forecast files
    analysis: AnalyzeResult  # the re-rendered reports

    @property
    def go(self) -> bool:
        return self.verdict.decision == GO


def run_forecast(
    run_dir: Path,
    settings: Settings | None = None,
    change: ScopeChange | None = None,
    *,
    progress: Progress = lambda _message: None,
) -> ForecastResult:
    run_dir = run_dir.resolve()
    change = change or ScopeChange()
    manifest = read_manifest(run_dir)
    settings = settings_for_run(run_dir, settings, manifest)
    suspect = (manifest.get("analyzed") or {}).get("suspect") or []
    if suspect:
        # the safety guard took a source as incomplete: every outcome resting on an absence
        # ("no cloud user holds this anchor") would be a guess
        raise ForecastError(
            f"{run_dir.name} is a suspect run ({suspect[0]}); forecast a complete run, or "
            "analyze it with --accept-drop if the shrink is real"
        )
    progress("reading the snapshot")
    snapshot = read_snapshot(run_dir)
    progress(f"forecasting: {change.sentence()}")
    t0 = time.perf_counter()
    result = forecast(snapshot, settings, change)
    decided = verdict(result)
    forecast_s = round(time.perf_counter() - t0, 3)
    redactor = Redactor(redaction_key(run_dir.parent)) if settings.report.redact else None
    with staged_outputs(run_dir) as staging:
        written = write_forecast(staging, result.people, decided, redactor)
    manifest["forecast"] = {
        "at": generation_time(),
        "change": change.as_json(),
        "decision": decided.decision,
        "people": decided.people,
        "forecast_s": forecast_s,
    }
    write_manifest(run_dir, manifest)
    analysis = analyze(run_dir, settings, progress=progress)
    outputs = {name: run_dir / name for name in written}
    return ForecastResult(run_dir, decided, outputs, analysis)


def demo_with_forecast(
    out: Path, *, progress: Progress = lambda _message: None
) -> tuple[DemoResult, ForecastResult]:
    """`syncaudit demo`: the built-in estate imported and analysed, then its planned scope
    change forecast (the Contractors OU in, the Interns OU out), so the reports carry the
    forecast section."""
    from audit.demo.planned import PLANNED_CHANGE

    result = demo(out, progress=progress)
    forecasted = run_forecast(
        result.imported.run_dir, result.analyzed.settings, PLANNED_CHANGE, progress=progress
    )
    return result, forecasted
