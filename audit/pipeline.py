"""Every step as a library call: import (exports -> run directory), analyze (run directory ->
findings, reports, remediation.ps1), hardmatch (one pair -> a script), and the demo that chains
them, and collect (live sources -> run directory under [run] data_dir); the scheduled cycle
joins here.

Each step takes a `progress` callback (one line per stage, for a terminal or a log) and returns
a frozen result holding what a caller needs without re-reading the run directory: the settings
used, counts, sync health, the headline, the `fail_on` verdict, and every output written
(name -> path). Nothing here prints or chooses an exit code: that is the CLI's job.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import polars as pl

from audit.classify import (
    HeldBack,
    classify,
    counts_by_code,
    coverage,
    effective_features,
    prepared_for_rules,
    rule_context,
)
from audit.config import Settings, config_relative, settings_from_dict
from audit.errors import RunDirError
from audit.forecast import ScopeChange
from audit.forecast_verdict import Verdict, forecast_of
from audit.hardmatch import (
    HardMatchResult as HardMatchPlan,
)
from audit.hardmatch import (
    SnapshotDirectory,
    default_script_path,
    explanation,
    hardmatch_script,
    plan_hardmatch,
    write_script,
)
from audit.history import (
    Comparison,
    compare,
    guarded,
    load_history,
    previous_complete_run,
    redaction_key,
    snapshot_day,
    source_drops,
)
from audit.model import Severity, Snapshot, SourceReport
from audit.outputs.findings import write_findings
from audit.outputs.forecast import (
    forecast_section,
    record_forecast,
    remove_stale_forecast,
    write_forecast,
)
from audit.outputs.model import Health, ReportModel, build_report, compute_health
from audit.outputs.redact import Redactor
from audit.outputs.runs import generation_time
from audit.outputs.writers import write_reports
from audit.remediation.plan import PlanSummary, causes_of, options_from_settings, plan_findings
from audit.remediation.script import write_remediation
from audit.rules import all_rules
from audit.sources.files import CloudExports, import_files
from audit.sources.graph_delta import STATE_DIR, save_state
from audit.sources.ldap import ReadProgress
from audit.sources.live import NO_EXPORTS, RAW_DIR, collect_snapshot
from audit.store import (
    MANIFEST,
    SNAPSHOT_DIR,
    in_run,
    read_manifest,
    read_snapshot,
    source_reports_as_json,
    staged_directory,
    staged_outputs,
    write_manifest,
    write_snapshot,
)
from audit.waivers import apply_waivers, load_waivers


def syncaudit_version() -> str:
    try:
        return version("syncaudit")
    except PackageNotFoundError:
        return "0+unknown"


def config_digest(settings: Settings) -> str:
    canonical = json.dumps(settings.raw, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def save_run(out: Path, snapshot: Snapshot, settings: Settings, timings: dict[str, float]) -> Path:
    """Write a snapshot and its manifest as a new, complete run directory."""
    return write_run(out, snapshot, settings, timings)[0]


def write_run(
    out: Path, snapshot: Snapshot, settings: Settings, timings: dict[str, float]
) -> tuple[Path, dict[str, Any]]:
    """save_run, returning the manifest too."""
    started = now_iso()
    with staged_directory(out) as staging:
        manifest = write_run_files(staging, out, snapshot, settings, started, timings)
    return out.resolve(), manifest


def write_run_files(
    staging: Path,
    out: Path,
    snapshot: Snapshot,
    settings: Settings,
    started: str,
    timings: dict[str, float],
    collection: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The snapshot and the manifest (written last) into a run's staging directory."""
    # Stored in the order the rules want it, so analyze reads it ready to use.
    snapshot = prepared_for_rules(snapshot)
    t0 = time.perf_counter()
    write_snapshot(staging, snapshot)
    timings = {**timings, "write_snapshot_s": round(time.perf_counter() - t0, 3)}
    manifest = run_manifest(out, snapshot, settings, started, timings)
    if collection is not None:
        manifest["collection"] = dict(collection)
    write_manifest(staging, manifest)
    return manifest


def run_manifest(
    out: Path, snapshot: Snapshot, settings: Settings, started: str, timings: dict[str, float]
) -> dict[str, Any]:
    return {
        "format_version": 1,
        "run_id": out.name,
        "taken_at": snapshot.taken_at,
        "started": started,
        "ended": now_iso(),
        "config_digest": config_digest(settings),
        # The TOML holds no secrets by construction (config.py refuses them), so a run can be
        # re-analysed later with the thresholds and switches it was taken with.
        "config": settings.raw,
        "versions": {
            "syncaudit": syncaudit_version(),
            "polars": pl.__version__,
            "python": platform.python_version(),
        },
        "counts": {
            "ad_users": snapshot.ad_users.height,
            "ad_users_in_scope": int(snapshot.ad_users["in_scope"].sum() or 0),
            "cloud_users": snapshot.cloud_users.height,
            "cloud_users_deleted": int(snapshot.cloud_users["deleted_at"].is_not_null().sum()),
            "cloud_objects": snapshot.cloud_objects.height,
        },
        "sources": source_reports_as_json(snapshot),
        "timings": timings,
    }


Progress = Callable[[str], None]


def _quiet(_message: str) -> None: ...


@dataclass(frozen=True)
class ImportResult:
    run_dir: Path
    settings: Settings
    counts: dict[str, int]  # the manifest's counts: AD users (in scope), cloud users (deleted)
    sources: tuple[SourceReport, ...]  # per input: format, rows, completeness, warnings
    outputs: dict[str, Path]  # manifest.json and every snapshot file


@dataclass(frozen=True)
class AnalyzeResult:
    run_dir: Path
    settings: Settings  # the operator's, else the run's stored config
    findings: pl.DataFrame
    counts_by_severity: dict[str, int]
    counts_by_code: list[tuple[str, str, int]]  # (code, severity, count), most severe first
    worst: Severity | None  # of the unwaived findings
    held_back: tuple[HeldBack, ...]  # rules not checked (or checked with a caveat), and why
    health: Health
    headline: str  # the report's first sentence
    fail_on: Severity
    outputs: dict[str, Path]  # every file written: findings.*, reports, remediation.ps1, manifest
    warnings: tuple[str, ...] = ()  # from the reports: a logo left out, a run left out...
    comparison: Comparison | None = None  # against the previous complete run beside it
    suspect: tuple[str, ...] = ()  # the safety guard's sentences: sources that shrank
    report: ReportModel | None = None  # what the reports (and the cycle's e-mail) show
    forecast: Verdict | None = None  # the planned scope change's verdict, when one was forecast

    @property
    def failed(self) -> bool:
        """The `fail_on` verdict: an unwaived finding at or above the threshold."""
        return self.worst is not None and self.worst >= self.fail_on


@dataclass(frozen=True)
class HardMatchResult:
    run_dir: Path
    plan: HardMatchPlan
    explanation: tuple[str, ...]  # the checks, one line each, for the operator
    outputs: dict[str, Path]  # the script

    blocked = property(lambda self: bool(self.plan.blocked))


def import_exports(
    *,
    settings: Settings,
    out: Path,
    ad: Sequence[tuple[str | None, Path]],
    cloud: Sequence[Path],
    deleted: Path | None = None,
    domains: Path | None = None,
    tenant: Path | None = None,
    roles: Sequence[Path] = (),
    taken_at: str | None = None,
    progress: Progress = _quiet,
) -> ImportResult:
    """Exports -> a new, complete run directory at `out` (or an InputError and nothing)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RunDirError(f"{out}: already exists; choose a new run directory")
    t0 = time.perf_counter()
    progress("reading exports")
    snapshot = import_files(
        ad=ad,
        cloud=cloud,
        deleted=deleted,
        domains=domains,
        tenant=tenant,
        roles=roles,
        settings=settings,
        taken_at=taken_at,
    )
    import_s = round(time.perf_counter() - t0, 3)
    for line in source_lines(snapshot.sources):
        progress(line)
    run_dir, manifest = write_run(out, snapshot, settings, {"import_s": import_s})
    return ImportResult(
        run_dir=run_dir,
        settings=settings,
        counts=dict(manifest["counts"]),
        sources=snapshot.sources,
        outputs=run_outputs(run_dir),
    )


@dataclass(frozen=True)
class CollectResult:
    run_dir: Path
    settings: Settings
    counts: dict[str, int]  # the manifest's counts
    sources: tuple[SourceReport, ...]  # per source: rows, completeness, notes (retries, refs)
    outputs: dict[str, Path]  # manifest.json, the snapshot files, raw/ad-<name>.ldif


def data_dir(settings: Settings) -> Path:
    """[run] data_dir, relative to the config file's directory."""
    return Path(config_relative(settings.run.data_dir, settings.source_path))


def new_run_dir(settings: Settings) -> Path:
    """<data_dir>/runs/<run_id>: the run id is the UTC time, made unique."""
    runs = data_dir(settings) / "runs"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    candidate, n = runs / stamp, 1
    while candidate.exists() or any(runs.glob(f".{candidate.name}.*.partial")):
        n += 1
        candidate = runs / f"{stamp}-{n}"
    return candidate


def collect(
    *,
    settings: Settings,
    out: Path | None = None,
    exports: CloudExports = NO_EXPORTS,
    environ: Mapping[str, str] | None = None,
    progress: Progress = _quiet,
    read_progress: Callable[[ReadProgress], None] | None = None,
) -> CollectResult:
    """Live sources (every [[ad]] table; the cloud side from exports when given) -> a new,
    complete run directory under [run] data_dir (or `out`), or an error and nothing: the run
    is staged under a temporary name, raw captures included, and renamed when complete."""
    target = out if out is not None else new_run_dir(settings)
    started = now_iso()
    t0 = time.perf_counter()
    progress("collecting")
    # The deltaLink of the tenant's last complete run (graph_delta.py) lives beside the runs.
    state = data_dir(settings) / STATE_DIR
    with staged_directory(target) as staging:
        collected = collect_snapshot(
            settings, raw_dir=staging / RAW_DIR, exports=exports, environ=environ,
            progress=read_progress, say=progress, entra_state=state,
        )  # fmt: skip
        snapshot, entra = collected.snapshot, collected.entra
        snapshot = in_run(snapshot, staging)
        collect_s = round(time.perf_counter() - t0, 3)
        for line in source_lines(snapshot.sources):
            progress(line)
        raw = sorted(
            str(p.relative_to(staging / RAW_DIR))
            for p in (staging / RAW_DIR).rglob("*")
            if p.is_file()
        )
        manifest = write_run_files(
            staging, target, snapshot, settings, started, {"collect_s": collect_s},
            {"kind": "collect", "raw": [f"{RAW_DIR}/{name}" for name in raw]}
            | ({"entra": entra.manifest()} if entra is not None else {}),
        )  # fmt: skip
    run_dir = target.parent.resolve() / target.name
    if entra is not None:  # only once the run it belongs to is complete
        save_state(state, settings, entra, run_dir)
    return CollectResult(
        run_dir=run_dir,
        settings=settings,
        counts=dict(manifest["counts"]),
        sources=snapshot.sources,
        outputs=run_outputs(run_dir),
    )


def source_lines(sources: Sequence[SourceReport]) -> list[str]:
    """What each source gave, for the operator: format, rows, completeness, notes, warnings."""
    lines = []
    for source in sources:
        state = (
            "complete"
            if source.complete
            else f"INCOMPLETE ({source.incomplete_reason or 'not read completely'})"
        )
        excluded = ", ".join(f"{n} {why}" for why, n in source.excluded.items() if n)
        lines.append(
            f"  {source.kind:<8} {source.path or source.name}: {source.format}, "
            f"{source.rows} rows, {state}" + (f" (excluded: {excluded})" if excluded else "")
        )
        lines += [f"    {note}" for note in source.notes]
        lines += [f"    warning: {warning}" for warning in source.warnings]
    return lines


def run_outputs(run_dir: Path) -> dict[str, Path]:
    """The files of a run directory as written by import or collect (manifest, snapshot and
    the raw captures of a collected run)."""
    files = [run_dir / MANIFEST, *sorted((run_dir / SNAPSHOT_DIR).iterdir())]
    if (run_dir / RAW_DIR).is_dir():
        files += sorted(p for p in (run_dir / RAW_DIR).rglob("*") if p.is_file())
    return {str(path.relative_to(run_dir)): path for path in files}


def settings_for_run(
    run_dir: Path, override: Settings | None, manifest: Mapping[str, Any] | None = None
) -> Settings:
    """The operator's config, else the one stored in the run's manifest. A run directory is
    input (it may come from anyone), so stored config never reads a local file: its logo is
    dropped, and relative paths have no base."""
    if override is not None:
        return override
    if manifest is None:
        manifest = read_manifest(run_dir)
    stored = settings_from_dict(manifest.get("config") or {}, f"{run_dir}/manifest.json")
    return replace(
        stored,
        run=replace(stored.run, waivers=""),
        report=replace(stored.report, logo=""),
        source_path=None,
    )


def analyze(
    run_dir: Path,
    settings: Settings | None = None,
    *,
    redact: bool | None = None,
    fail_on: Severity | None = None,
    accept_drop: bool = False,
    forecast: ScopeChange | None = None,
    progress: Progress = _quiet,
) -> AnalyzeResult:
    """Classify a run's snapshot and write, together or not at all, findings.{parquet,json,csv},
    the reports (report.html, report.pdf, findings.xlsx; masked when `redact`, default
    settings.report.redact) and remediation.ps1; then the manifest's ``analyzed`` section.
    `fail_on` defaults to the settings' [run] fail_on. `forecast`: a planned scope change to
    forecast too (forecast.* and the reports' section); without it, the one the run last had."""
    run_dir = run_dir.resolve()
    manifest = read_manifest(run_dir)
    settings = settings_for_run(run_dir, settings, manifest)
    run_id = str(manifest.get("run_id") or run_dir.name)
    # an invalid waivers file stops the analysis before anything is read or written
    accepted = (
        load_waivers(Path(config_relative(settings.run.waivers, settings.source_path)))
        if settings.run.waivers
        else []
    )
    progress("reading the snapshot")
    snapshot = prepared_for_rules(read_snapshot(run_dir))
    # The previous complete run beside this one: the safety guard's counts, then new / open,
    # first_seen and resolved. A source that shrank past max_drop_percent is taken as not
    # read completely, so nothing that rests on its absence is reported.
    previous = previous_complete_run(run_dir, snapshot.taken_at)
    drops = source_drops(snapshot, previous, settings.thresholds.max_drop_percent)
    # `accept_drop`: the operator says the shrink is real (an OU out of scope, a divestment):
    # the run is judged whole, says so, and is the baseline of the next
    accepted_drops = [f"accepted (--accept-drop): {d.sentence()}" for d in drops if accept_drop]
    drops = [] if accept_drop else drops
    snapshot = guarded(snapshot, drops)
    not_checked = coverage(all_rules(), snapshot.unmet_needs())
    progress("classifying")
    t0 = time.perf_counter()
    context = rule_context(snapshot, settings)
    findings = classify(snapshot, settings, context=context)
    classify_s = round(time.perf_counter() - t0, 3)
    # Before anything is written: a forecast asked for that cannot be made stops the run here.
    forecasted, forecast_notes = forecast_of(snapshot, settings, manifest, forecast, context)
    unchecked = frozenset(h.code for h in not_checked if h.status == "held back")
    comparison = compare(findings, snapshot.taken_at or generation_time(), previous, unchecked)
    # Waivers in force on the snapshot's day (re-analysing an old run gives the same answer).
    waivers = apply_waivers(
        comparison.findings, accepted, snapshot_day(snapshot.taken_at or generation_time())
    )
    findings = waivers.findings
    by_code = counts_by_code(findings)
    by_severity = {s.name: 0 for s in sorted(Severity, reverse=True)}
    for _code, severity, n in by_code:
        by_severity[severity] += n
    active = findings.filter(~pl.col("waived")) if findings.height else findings
    worst = (
        max(Severity.parse(s) for s in active["severity"].unique().to_list())
        if active.height
        else None
    )
    generated = generation_time()
    header = {
        "run_id": run_id,
        "taken_at": snapshot.taken_at,
        "generated": generated,
        "counts_by_severity": by_severity,
        # what was not checked is part of the answer: an empty code is not a clean code
        "held_back": [h.as_json() for h in not_checked],
    }
    # One plan for the script and the reports' Fix columns, so they cannot disagree.
    plan = plan_findings(findings, options_from_settings(settings, snapshot.tenant))
    held = [h.sentence() for h in not_checked]
    history_warnings: list[str] = []
    history = load_history(run_dir, snapshot.taken_at, warnings=history_warnings)
    do_redact = settings.report.redact if redact is None else redact
    redactor = Redactor(redaction_key(run_dir.parent)) if do_redact else None
    progress("building the report model")
    t0 = time.perf_counter()
    health = compute_health(snapshot, findings)
    model = build_report(
        findings,
        snapshot,
        settings,
        run_id=run_id,
        health=health,
        history=history,
        notes=[*accepted_drops, *held, *waivers.notes(), *history_warnings, *forecast_notes],
        redactor=redactor,
        generated=generated,
        plan=PlanSummary.of(plan, causes_of(findings)),
        since=comparison.since(),
        suspect=[d.sentence() for d in drops],
        forecast=forecast_section(forecasted, redactor, settings.report.pdf_rows_per_code),
    )
    timings = {"report_model_s": round(time.perf_counter() - t0, 3)}
    # Human-facing outputs are views of the same findings. All are staged and moved in
    # together, so a failure leaves the previous analysis whole.
    written: dict[str, Path] = {}
    with staged_outputs(run_dir) as staging:
        written.update(write_findings(staging, findings, header))
        progress("writing the reports")
        reports, render_timings = write_reports(model, staging)
        written.update(reports)
        timings.update(render_timings)
        progress("writing remediation.ps1")
        script = write_remediation(
            staging,
            findings,
            settings,
            tenant=snapshot.tenant,
            run_id=run_id,
            taken_at=snapshot.taken_at,
            generated=generated,
            plan=plan,
        )
        written[script.name] = script
        if forecasted:
            written.update(write_forecast(staging, forecasted, redactor, generated))
    remove_stale_forecast(run_dir, forecasted)
    warnings = (*model.warnings, *waivers.notes(), *history_warnings)
    manifest["analyzed"] = {
        "at": generated,
        "findings": findings.height,
        "counts_by_severity": by_severity,
        "classify_s": classify_s,
        "held_back": header["held_back"],
        "config_digest": config_digest(settings),
        "health": health.as_json(),
        "redacted": do_redact,
        "reports": list(reports),
        "report_warnings": list(warnings),
        "render_timings": timings,
        "since_previous": comparison.as_json(),
        "suspect": [d.sentence() for d in drops],
        "accepted_drop": accepted_drops,
        "waivers": waivers.as_json(),
    }
    record_forecast(manifest, forecasted)
    write_manifest(run_dir, manifest)
    outputs = {name: run_dir / name for name in written}
    outputs[MANIFEST] = run_dir / MANIFEST
    return AnalyzeResult(
        run_dir=run_dir,
        settings=settings,
        findings=findings,
        counts_by_severity=by_severity,
        counts_by_code=by_code,
        worst=worst,
        held_back=not_checked,
        health=health,
        headline=model.headline,
        fail_on=fail_on if fail_on is not None else settings.run.fail_on,
        outputs=outputs,
        warnings=warnings,
        comparison=comparison,
        suspect=tuple(d.sentence() for d in drops),
        report=model,
        forecast=forecasted.verdict if forecasted else None,
    )


def hardmatch(
    run_dir: Path,
    ad: str,
    cloud: str,
    *,
    settings: Settings | None = None,
    out: Path | None = None,
    progress: Progress = _quiet,
) -> HardMatchResult:
    """One AD user and one cloud user of a run: the checks Entra makes before a hard match,
    and a small script (default RUN_DIR/hardmatch-<ad>-<cloud>.ps1). A user that is not
    found or is ambiguous raises one line naming the candidates."""
    manifest = read_manifest(run_dir)
    settings = settings_for_run(run_dir, settings, manifest)
    progress("reading the snapshot")
    snapshot = read_snapshot(run_dir)
    directory = SnapshotDirectory(snapshot, effective_features(snapshot, settings))
    plan = plan_hardmatch(directory, ad, cloud, options_from_settings(settings))
    text = hardmatch_script(
        plan,
        run_id=str(manifest.get("run_id") or run_dir.name),
        tenant=snapshot.tenant,
        taken_at=snapshot.taken_at,
        generated=generation_time(),
    )
    path = write_script(out or default_script_path(run_dir, plan), text)
    return HardMatchResult(
        run_dir=run_dir,
        plan=plan,
        explanation=tuple(explanation(plan)),
        outputs={path.name: path},
    )
