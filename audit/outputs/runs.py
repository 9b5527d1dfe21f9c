"""What a report shows of other runs and of time: the trend's points, the comparison with the
previous complete run (audit.history builds both), and times as people read them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from audit.model import Severity


@dataclass(frozen=True)
class SinceRun:
    """This run against the previous complete run beside it (audit.history.compare): how many
    findings are new, resolved and still open; `run_id` None when there is no such run."""

    run_id: str | None
    taken_at: str | None
    new_by_severity: Mapping[str, int]
    resolved_by_severity: Mapping[str, int]
    persisting: int

    @property
    def new(self) -> int:
        return sum(self.new_by_severity.values())

    @property
    def resolved(self) -> int:
        return sum(self.resolved_by_severity.values())

    @property
    def taken_at_text(self) -> str:
        return human_time(self.taken_at) if self.taken_at else "unknown"

    def worst_new(self) -> str:
        """'2 critical, 5 high' of the new findings (the most severe two that occur), or ''."""
        order = [s.name for s in sorted(Severity, reverse=True)]
        found = [f"{n} {s}" for s in order if (n := self.new_by_severity.get(s, 0))]
        return ", ".join(found[:2])


@dataclass(frozen=True)
class TrendPoint:
    run_id: str
    taken_at: str  # ISO 8601
    counts_by_severity: Mapping[str, int]
    health_percent: float | None

    @property
    def total(self) -> int:
        return sum(self.counts_by_severity.values())


def human_time(iso: str) -> str:
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%d %B %Y, %H:%M UTC").lstrip("0")


def generation_time() -> str:
    """Now, or $SOURCE_DATE_EPOCH (the reproducible-builds convention) so that regenerating
    sample_reports/ from the same demo gives the same files."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    moment = datetime.fromtimestamp(int(epoch), UTC) if epoch.isdigit() else datetime.now(UTC)
    return moment.isoformat(timespec="seconds")
