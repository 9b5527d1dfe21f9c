"""The steps the CLI and the scheduler wire together: import -> run directory -> analyze.

Library first: every step takes settings and paths and returns data; printing and exit codes
belong to the CLI.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import polars as pl

from audit.classify import HeldBack, classify, coverage, prepared_for_rules
from audit.config import Settings, settings_from_dict
from audit.model import Severity, Snapshot
from audit.remediate import options_from_settings, plan_findings, write_remediation
from audit.render import render_reports
from audit.report import generation_time
from audit.rules import all_rules
from audit.store import (
    read_manifest,
    read_snapshot,
    source_reports_as_json,
    staged_directory,
    staged_outputs,
    write_findings,
    write_manifest,
    write_snapshot,
)


@dataclass(frozen=True)
class AnalyzeResult:
    run_dir: Path
    findings: pl.DataFrame
    counts_by_severity: dict[str, int]
    counts_by_code: list[tuple[str, str, int]]  # (code, severity, count), most severe first
    worst: Severity | None
    held_back: tuple[HeldBack, ...]  # rules not checked (or checked with a caveat), and why
    warnings: tuple[str, ...] = ()  # from the reports: a logo left out, a run left out...


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
    started = now_iso()
    # Stored in the order the rules want it, so analyze reads it ready to use.
    snapshot = prepared_for_rules(snapshot)
    with staged_directory(out) as staging:
        t0 = time.perf_counter()
        write_snapshot(staging, snapshot)
        timings = {**timings, "write_snapshot_s": round(time.perf_counter() - t0, 3)}
        write_manifest(staging, run_manifest(out, snapshot, settings, started, timings))
    return out.resolve()


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


def settings_for_run(run_dir: Path, override: Settings | None) -> Settings:
    """The operator's config, else the one stored in the run's manifest. A run directory is
    input (it may come from anyone), so stored config never reads a local file: its logo is
    dropped, and relative paths have no base."""
    if override is not None:
        return override
    manifest = read_manifest(run_dir)
    stored = settings_from_dict(manifest.get("config") or {}, f"{run_dir}/manifest.json")
    return replace(stored, report=replace(stored.report, logo=""), source_path=None)


def held_back(snapshot: Snapshot) -> tuple[HeldBack, ...]:
    """The rules (and cases) this snapshot cannot support, and those reported with a caveat."""
    return coverage(all_rules(), snapshot.unmet_needs())


def held_back_json(entry: HeldBack) -> dict[str, Any]:
    return {
        "code": entry.code,
        "case": entry.case,
        "status": entry.status,
        "needs": [n.name for n in entry.needs],
        "reasons": list(entry.reasons),
        "sentence": entry.sentence(),
    }


def analyze_run(
    run_dir: Path, settings: Settings | None = None, redact: bool | None = None
) -> AnalyzeResult:
    """Classify a run's snapshot and write findings.{parquet,json,csv} into the run, then the
    reports (report.html, report.pdf, findings.xlsx; masked when `redact`, default
    settings.report.redact)."""
    run_dir = run_dir.resolve()
    manifest = read_manifest(run_dir)
    settings = settings_for_run(run_dir, settings)
    snapshot = prepared_for_rules(read_snapshot(run_dir))
    not_checked = held_back(snapshot)
    t0 = time.perf_counter()
    findings = classify(snapshot, settings)
    classify_s = round(time.perf_counter() - t0, 3)
    counts = (
        findings.group_by("code", "severity").len().sort("len", descending=True)
        if findings.height
        else None
    )
    by_code: list[tuple[str, str, int]] = []
    if counts is not None:
        by_code = sorted(
            ((r["code"], r["severity"], r["len"]) for r in counts.iter_rows(named=True)),
            key=lambda t: (-Severity.parse(t[1]).value, t[0]),
        )
    by_severity = {s.name: 0 for s in sorted(Severity, reverse=True)}
    for _code, severity, n in by_code:
        by_severity[severity] += n
    active = findings.filter(~pl.col("waived")) if findings.height else findings
    worst = (
        max(Severity.parse(s) for s in active["severity"].unique().to_list())
        if active.height
        else None
    )
    header = {
        "run_id": manifest.get("run_id"),
        "taken_at": snapshot.taken_at,
        "generated": generation_time(),
        "counts_by_severity": by_severity,
        # what was not checked is part of the answer: an empty code is not a clean code
        "held_back": [held_back_json(h) for h in not_checked],
    }
    # Human-facing outputs are views of the same findings: reports, then remediation.ps1.
    # All are staged and moved in together, so a failure leaves the previous analysis whole.
    # One plan for the script and the reports' Fix columns, so they cannot disagree.
    plan = plan_findings(findings, options_from_settings(settings, snapshot.tenant))
    with staged_outputs(run_dir) as staging:
        write_findings(staging, findings, header)
        report_info = render_reports(
            run_dir,
            findings,
            snapshot,
            settings,
            manifest,
            redact=settings.report.redact if redact is None else redact,
            notes=[h.sentence() for h in not_checked],
            out_dir=staging,
            plan=plan,
        )
        write_remediation(
            staging,
            findings,
            settings,
            tenant=snapshot.tenant,
            run_id=str(manifest.get("run_id") or run_dir.name),
            taken_at=snapshot.taken_at,
            generated=str(header["generated"]),
            plan=plan,
        )
    manifest["analyzed"] = {
        "at": header["generated"],
        "findings": findings.height,
        "counts_by_severity": by_severity,
        "classify_s": classify_s,
        "held_back": header["held_back"],
        "config_digest": config_digest(settings),
        **report_info,
    }
    write_manifest(run_dir, manifest)
    return AnalyzeResult(
        run_dir=run_dir,
        findings=findings,
        counts_by_severity=by_severity,
        counts_by_code=by_code,
        worst=worst,
        held_back=not_checked,
        warnings=tuple(report_info.get("report_warnings", ())),
    )


def parse_ad_argument(value: str) -> tuple[str | None, Path]:
    """`--ad corp=export.ldif` picks the [[ad]] table named corp; a plain path uses the default."""
    name, sep, path = value.partition("=")
    if sep and name and "/" not in name and "\\" not in name and not Path(value).exists():
        return name, Path(path)
    return None, Path(value)
