"""What a run knows of the runs before it, in the same parent folder: the trend of earlier
analyses, and the redaction key they share so masks stay the same from week to week.

Trend: the run directories beside this one (same parent folder). Each analyzed run's
``manifest.json`` has an ``analyzed`` section with ``counts_by_severity`` and ``health``. Runs
taken after this run's snapshot are left out (re-analysing an old run shows the trend up to
it), as are hidden and unreadable directories; a sibling whose manifest is malformed is left
out with a warning. At most ``HISTORY_RUNS`` earlier runs are shown.

Comparison: each analysis is compared, by fingerprint (code + AD object + cloud object +
attribute/value, classify.py), with the previous complete run beside it: the latest one taken
before it, analyzed, and whose every source was read completely (an incomplete read's
findings rest on what it did not see). A finding it also had is ``open`` and keeps its
``first_seen``; any other is ``new``, first seen at this run's snapshot time; what it had and
this run has not is resolved. ``syncaudit diff`` compares any two analyzed runs the same way.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from audit.errors import ConfigError, RunDirError
from audit.model import UTC_DATETIME, Snapshot
from audit.outputs.model import SEVERITIES
from audit.outputs.runs import SinceRun, TrendPoint
from audit.store import read_manifest

HISTORY_RUNS = 25
KEY_ENV = "SYNCAUDIT_REDACT_KEY"
KEY_FILE = ".syncaudit-redact-key"


def load_history(
    run_dir: Path,
    taken_at: str | None,
    limit: int = HISTORY_RUNS,
    warnings: list[str] | None = None,
) -> list[TrendPoint]:
    """Earlier analyzed runs beside `run_dir` (the module docstring says which), oldest first. A
    sibling whose manifest cannot be read is skipped, with a line in `warnings`."""
    points: list[TrendPoint] = []
    for directory in runs_beside(run_dir):
        try:
            point = _trend_point(directory)
        except (ValueError, TypeError, AttributeError, ArithmeticError, RecursionError) as exc:
            if warnings is not None:
                warnings.append(
                    f"earlier run {directory.name} left out of the trend: its manifest is "
                    f"malformed ({type(exc).__name__})"
                )
            continue
        if point is not None and (taken_at is None or _before(point.taken_at, taken_at)):
            points.append(point)
    points.sort(key=lambda p: _sort_key(p.taken_at))
    return points[-limit:]


def run_dirs(parent: Path) -> list[Path]:
    """The directories of `parent` that may be runs: hidden ones (a run or an analysis being
    staged) are not; none when `parent` cannot be listed."""
    try:
        return [d for d in parent.iterdir() if d.is_dir() and not d.name.startswith(".")]
    except OSError:
        return []


def runs_beside(run_dir: Path) -> list[Path]:
    """The other runs in `run_dir`'s folder."""
    here = run_dir.resolve()
    return [d for d in run_dirs(here.parent) if d.resolve() != here]


def _trend_point(directory: Path) -> TrendPoint | None:
    try:
        text = (directory / "manifest.json").read_text(encoding="utf-8")
    except OSError:
        return None  # not a run (or not readable): nothing to say
    manifest = json.loads(text)
    analyzed = manifest.get("analyzed") if isinstance(manifest, dict) else None
    if not isinstance(analyzed, dict) or not isinstance(analyzed.get("counts_by_severity"), dict):
        return None
    counts = {s: int(analyzed["counts_by_severity"].get(s, 0) or 0) for s in SEVERITIES}
    health = analyzed.get("health")
    percent = health.get("percent") if isinstance(health, dict) else None
    taken = manifest.get("taken_at") or analyzed.get("at")
    if not isinstance(taken, str):
        return None
    return TrendPoint(
        run_id=str(manifest.get("run_id") or directory.name),
        taken_at=taken,
        counts_by_severity=counts,
        health_percent=float(percent) if isinstance(percent, int | float) else None,
    )


def snapshot_day(iso: str) -> date:
    """The UTC day of a snapshot time (waivers are in force through their date)."""
    return _sort_key(iso).date()


def _sort_key(iso: str) -> datetime:
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _before(iso: str, reference: str) -> bool:
    return _sort_key(iso) <= _sort_key(reference)


FINDINGS_FILE = "findings.parquet"
# what a comparison lists of each finding (the rest is in the runs' own outputs)
LISTED = ("fingerprint", "code", "severity", "title", "detail", "first_seen")


@dataclass(frozen=True)
class Baseline:
    """An analyzed run another is compared with."""

    run_id: str
    taken_at: str
    findings: pl.DataFrame
    counts: Mapping[str, int] = field(default_factory=dict)  # its manifest's object counts


@dataclass(frozen=True)
class Comparison:
    """This run's findings with status and first_seen, against `previous` (None: no earlier
    complete run, every finding is new)."""

    findings: pl.DataFrame
    resolved: pl.DataFrame  # the previous run's findings this one has not (LISTED columns)
    previous: Baseline | None

    @property
    def counts(self) -> dict[str, int]:
        status = self.findings.get_column("status")
        return {
            "new": int((status == "new").sum()),
            "persisting": int((status == "open").sum()),
            "resolved": self.resolved.height,
        }

    def since(self) -> SinceRun:
        """The figures the reports show."""
        previous = self.previous
        new = self.findings.filter(pl.col("status") == "new")
        return SinceRun(
            run_id=previous.run_id if previous else None,
            taken_at=previous.taken_at if previous else None,
            new_by_severity=_by_severity(new),
            resolved_by_severity=_by_severity(self.resolved),
            persisting=self.counts["persisting"],
        )

    def as_json(self) -> dict[str, object]:
        previous = self.previous
        return {
            "previous_run": previous.run_id if previous else None,
            "previous_taken_at": previous.taken_at if previous else None,
            **self.counts,
        }


def baseline(run_dir: Path) -> Baseline:
    """An analyzed run's findings; RunDirError when it has none."""
    manifest = read_manifest(run_dir)
    path = run_dir / FINDINGS_FILE
    if not isinstance(manifest.get("analyzed"), dict) or not path.is_file():
        raise RunDirError(f"{run_dir}: not analyzed yet (run syncaudit analyze {run_dir})")
    try:
        findings = pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise RunDirError(f"{path}: unreadable ({type(exc).__name__})") from None
    taken = manifest.get("taken_at")
    counts = manifest.get("counts")
    return Baseline(
        run_id=str(manifest.get("run_id") or run_dir.name),
        taken_at=taken if isinstance(taken, str) else "",
        findings=findings,
        counts={
            str(k): int(v)
            for k, v in (counts.items() if isinstance(counts, dict) else ())
            if isinstance(v, int)
        },
    )


def can_be_baseline(directory: Path, manifest: Mapping[str, Any]) -> bool:
    """Whether a later run may be compared with this one (and retention must keep the newest
    such run): analyzed, its findings on disk, every source read completely, not suspect."""
    analyzed = manifest.get("analyzed")
    sources = manifest.get("sources")
    return (
        isinstance(manifest.get("taken_at"), str)
        and isinstance(analyzed, dict)
        and not analyzed.get("suspect")  # the guard held its absences back
        and (directory / FINDINGS_FILE).is_file()
        and isinstance(sources, list)
        and all(isinstance(s, dict) and s.get("complete") is True for s in sources)
    )


def previous_complete_run(run_dir: Path, taken_at: str | None) -> Baseline | None:
    """The latest analyzed run beside `run_dir` taken before `taken_at` whose every source was
    read completely; None when there is none."""
    if taken_at is None:
        return None
    candidates: list[tuple[datetime, Path]] = []
    for directory in runs_beside(run_dir):
        try:
            manifest = read_manifest(directory)
        except (RunDirError, OSError):
            continue
        taken = manifest.get("taken_at")
        if (
            not isinstance(taken, str)
            or not can_be_baseline(directory, manifest)
            or _sort_key(taken) >= _sort_key(taken_at)
        ):
            continue
        candidates.append((_sort_key(taken), directory))
    for _, directory in sorted(candidates, reverse=True):
        try:
            return baseline(directory)
        except RunDirError:
            continue  # its findings went missing or unreadable: the one before it
    return None


def compare(
    findings: pl.DataFrame,
    taken_at: str,
    previous: Baseline | None,
    unchecked: frozenset[str] = frozenset(),
) -> Comparison:
    """`findings` with status (new / open) and first_seen from `previous`, and what it had that
    `findings` has not, except findings of the `unchecked` codes (held back now, whole or in
    part): those are not resolved, only not looked at."""
    seen_now = pl.lit(_sort_key(taken_at), UTC_DATETIME)
    if previous is None:
        marked = findings.with_columns(status=pl.lit("new"), first_seen=seen_now)
        return Comparison(marked, _listed(findings.clear()), None)
    before = previous.findings.select(
        "fingerprint",
        pl.col("first_seen")
        .cast(UTC_DATETIME)
        .fill_null(pl.lit(_sort_key(previous.taken_at), UTC_DATETIME))
        .alias("_first_seen"),
    ).unique("fingerprint", keep="first", maintain_order=True)
    joined = findings.join(before, on="fingerprint", how="left", maintain_order="left")
    known = pl.col("_first_seen").is_not_null()
    marked = joined.with_columns(
        status=pl.when(known).then(pl.lit("open")).otherwise(pl.lit("new")),
        first_seen=pl.when(known).then(pl.col("_first_seen")).otherwise(seen_now),
    ).drop("_first_seen")
    resolved = previous.findings.join(
        findings.select("fingerprint"), on="fingerprint", how="anti"
    ).filter(~pl.col("code").is_in(list(unchecked)))
    return Comparison(marked.select(findings.columns), _listed(resolved), previous)


@dataclass(frozen=True)
class Drop:
    """A source that shrank past [thresholds] max_drop_percent since the run compared with."""

    kind: str  # the source kind whose absences are held back: "ad" or "cloud"
    label: str
    before: int
    now: int
    run_id: str
    limit: float

    @property
    def percent(self) -> float:
        return 100.0 * (self.before - self.now) / self.before

    def sentence(self) -> str:
        return (
            f"{self.label} fell from {self.before:,} to {self.now:,} (-{self.percent:.0f}%) since "
            f"run {self.run_id}, more than max_drop_percent = {self.limit:g}: a read that came "
            "back short is not evidence that those objects are gone, so what rests on their "
            "absence is held back"
        )


def source_drops(snapshot: Snapshot, previous: Baseline | None, limit: float) -> list[Drop]:
    """The safety guard (Entra Connect's export-deletion threshold, for findings): AD users
    and active cloud users against the previous complete run's counts."""
    if previous is None:
        return []
    cloud = snapshot.cloud_users
    now = {
        "ad": snapshot.ad_users.height,
        "cloud": int(cloud.get_column("deleted_at").is_null().sum()) if cloud.height else 0,
    }
    counts = previous.counts
    before = {
        "ad": counts.get("ad_users"),
        "cloud": (
            counts["cloud_users"] - counts.get("cloud_users_deleted", 0)
            if "cloud_users" in counts
            else None
        ),
    }
    labels = {"ad": "AD users", "cloud": "Active cloud users"}
    drops = []
    for kind, was in before.items():
        if was and 100.0 * (was - now[kind]) / was > limit:
            drops.append(Drop(kind, labels[kind], was, now[kind], previous.run_id, limit))
    return drops


def guarded(snapshot: Snapshot, drops: list[Drop]) -> Snapshot:
    """The snapshot with each dropped kind's sources taken as incomplete (the drop says why), so
    classify holds back what rests on their absence as for any read that did not finish."""
    why = {d.kind: d.sentence() for d in drops}
    if not why:
        return snapshot
    sources = tuple(
        replace(s, complete=False, incomplete_reason=why[s.kind]) if s.kind in why else s
        for s in snapshot.sources
    )
    return replace(snapshot, sources=sources)


def _by_severity(findings: pl.DataFrame) -> dict[str, int]:
    counts = dict(findings.group_by("severity").len().iter_rows())
    return {s: int(counts.get(s, 0)) for s in SEVERITIES}


def _listed(findings: pl.DataFrame) -> pl.DataFrame:
    return findings.select(LISTED).with_columns(pl.col("first_seen").cast(UTC_DATETIME))


def redaction_key(runs_parent: Path | None) -> bytes:
    """The HMAC key: $SYNCAUDIT_REDACT_KEY, else a random key kept beside the run directories."""
    from_env = os.environ.get(KEY_ENV)
    if from_env:
        return _long_enough(from_env.encode("utf-8"), f"${KEY_ENV}")
    if runs_parent is None:
        return secrets.token_bytes(32)
    path = runs_parent / KEY_FILE
    if path.is_symlink():
        # a key someone else chose would make every mask computable by them
        raise ConfigError(f"{path}: is a symbolic link; the redaction key must be a plain file")
    if path.exists():
        return _long_enough(path.read_text(encoding="ascii").strip().encode("ascii"), str(path))
    # Written to a private temporary file and linked into place, so the key file is never
    # visible empty (an empty key would make every mask computable by anyone).
    key = secrets.token_hex(32)
    fd, tmp = tempfile.mkstemp(prefix=".redact-key.", dir=runs_parent)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(key + "\n")
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:  # another run created it first: use theirs
            return _long_enough(path.read_text(encoding="ascii").strip().encode("ascii"), str(path))
    finally:
        os.unlink(tmp)
    return key.encode("ascii")


MIN_KEY_BYTES = 32


def _long_enough(key: bytes, where: str) -> bytes:
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(
            f"{where}: redaction key shorter than {MIN_KEY_BYTES} bytes; masks would be guessable"
        )
    return key
