"""The forecast's verdict: GO, GO WITH FIXES or NO-GO, with the blockers that decide it ordered
by how many people each affects, and each blocker's fix (a remediation.ps1 action or the manual
step that already exists for it).

NO-GO is kept for what fixing users one by one does not cure before the change: an export that
stops as a whole (more deletions than the threshold: entra-docs accidental-deletes.md, the run
profile then reads stopped-deletion-threshold-exceeded), an anchor that joins two different
people, two AD users sending one anchor. Every other blocker has a per-person fix.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from audit.config import Settings
from audit.forecast import OUTCOMES, Forecast, ForecastError, ScopeChange, forecast
from audit.forecast_blockers import BLOCKERS
from audit.model import Snapshot
from audit.rules.base import RuleContext

GO = "GO"
GO_WITH_FIXES = "GO WITH FIXES"
NO_GO = "NO-GO"

CHART_OUS = 12  # the per-OU chart shows the OUs with the most people affected


@dataclass(frozen=True)
class Blocker:
    kind: str
    title: str
    people: int
    no_go: bool
    errors: tuple[str, ...]  # Entra's error names among its people
    fix: str
    fix_actions: tuple[str, ...]  # remediation.ps1 action ids among its people

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "title": self.title,
            "people": self.people,
            "no_go": self.no_go,
            "errors": list(self.errors),
            "fix": self.fix,
            "fix_actions": list(self.fix_actions),
        }


@dataclass(frozen=True)
class OuCounts:
    ou: str
    counts: dict[str, int]  # outcome -> people

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Verdict:
    decision: str
    blockers: tuple[Blocker, ...]
    counts: dict[str, int]  # outcome -> people, every outcome named
    by_ou: tuple[OuCounts, ...]  # the CHART_OUS OUs with the most people not unchanged
    ous: int  # OUs in the forecast
    deletions: int
    deletion_threshold: int
    change: str
    notes: tuple[str, ...]

    @property
    def people(self) -> int:
        return sum(self.counts.values())

    def sentence(self) -> str:
        """The verdict and what decides it, in one sentence."""
        if not self.blockers:
            return f"{self.decision}: nothing blocks the change ({_people(self.people)} forecast)"
        deciding = [b for b in self.blockers if b.no_go]
        fixable = [b for b in self.blockers if not b.no_go]
        parts = []
        if deciding:
            parts.append("; ".join(f"{b.title} ({_people(b.people)})" for b in deciding))
        if fixable:
            affected = sum(b.people for b in fixable)
            kinds = "blocker" if len(fixable) == 1 else "blockers"
            other = "other " if deciding else ""
            parts.append(
                f"{len(fixable)} {other}{kinds} with a fix before the change ({_people(affected)})"
            )
        return f"{self.decision}: " + "; ".join(parts)

    def as_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "sentence": self.sentence(),
            "change": self.change,
            "counts": self.counts,
            "deletions": self.deletions,
            "deletion_threshold": self.deletion_threshold,
            "blockers": [b.as_json() for b in self.blockers],
            "by_ou": [{"ou": o.ou, "counts": o.counts} for o in self.by_ou],
            "ous": self.ous,
            "notes": list(self.notes),
        }


def verdict(result: Forecast) -> Verdict:
    people = result.people
    counts = dict.fromkeys(OUTCOMES, 0)
    for outcome, n in people.group_by("outcome").len().iter_rows():
        counts[outcome] = n
    grouped = (
        people.filter(pl.col("blocker").is_not_null())
        .group_by("blocker")
        .agg(
            pl.len().alias("people"),
            pl.col("error").drop_nulls().unique().sort().alias("errors"),
            pl.col("fix_action").drop_nulls().unique().sort().alias("actions"),
        )
    )
    blockers = []
    for kind, n, errors, actions in grouped.iter_rows():
        title, no_go, fix = BLOCKERS[kind]
        if kind == "deletion-threshold":
            title = f"{title} ({n} > {result.deletion_threshold})"
        blockers.append(Blocker(kind, title, n, no_go, tuple(errors), fix, tuple(actions)))
    blockers.sort(key=lambda b: (-b.people, b.kind))
    decision = NO_GO if any(b.no_go for b in blockers) else GO_WITH_FIXES if blockers else GO
    return Verdict(
        decision=decision,
        blockers=tuple(blockers),
        counts=counts,
        by_ou=ou_counts(people),
        ous=people["ou"].n_unique(),
        deletions=counts["soft-delete"],
        deletion_threshold=result.deletion_threshold,
        change=result.change.sentence(),
        notes=result.notes,
    )


def ou_counts(people: pl.DataFrame, limit: int = CHART_OUS) -> tuple[OuCounts, ...]:
    """Outcome counts of the OUs with the most people whose outcome is not `unchanged` (then
    the largest): the chart's rows."""
    table = (
        people.group_by("ou", "outcome")
        .len()
        .with_columns(
            affected=pl.col("len").filter(pl.col("outcome") != "unchanged").sum().over("ou"),
            total=pl.col("len").sum().over("ou"),
        )
    )
    top = (
        table.select("ou", "affected", "total")
        .unique()
        .sort(["affected", "total", "ou"], descending=[True, True, False])
        .head(limit)
    )
    rows = []
    for ou in top["ou"].to_list():
        part = table.filter(pl.col("ou") == ou)
        rows.append(OuCounts(ou or "(root)", dict(zip(part["outcome"], part["len"], strict=True))))
    return tuple(rows)


def _people(n: int) -> str:
    return f"{n:,} {'person' if n == 1 else 'people'}"


@dataclass(frozen=True)
class Forecasted:
    """A run's forecast: every person (result.people) and the verdict."""

    result: Forecast
    verdict: Verdict
    seconds: float


def forecast_of(
    snapshot: Snapshot,
    settings: Settings,
    manifest: Mapping[str, Any],
    change: ScopeChange | None,
    context: RuleContext,
) -> tuple[Forecasted | None, list[str]]:
    """The forecast analyze writes: of `change`, else of the change the run was last forecast
    with (manifest "forecast"), so re-analysing keeps it computed from this analysis. One that
    was asked for and cannot be made raises ForecastError; a stored one that no longer can
    (the run is now judged suspect) is left out, with a note saying why."""
    stored = manifest.get("forecast")
    if change is None and isinstance(stored, dict):
        planned: ScopeChange | None = ScopeChange.from_json(stored.get("change"))
    else:
        planned = change
    if planned is None:
        return None, []
    start = time.perf_counter()
    try:
        result = forecast(snapshot, settings, planned, context=context)
    except ForecastError as error:
        if change is not None:
            raise
        return None, [f"the run's forecast of a planned scope change was not redone: {error}"]
    decided = verdict(result)
    return Forecasted(result, decided, round(time.perf_counter() - start, 3)), []
