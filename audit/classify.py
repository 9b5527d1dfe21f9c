"""Run every rule over a snapshot and return the findings frame."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import polars as pl

from audit.config import Settings
from audit.model import (
    FINDINGS_SCHEMA,
    RULE_OUTPUT_COLUMNS,
    Feature,
    Need,
    Severity,
    Snapshot,
    TenantFeatures,
    conform,
    empty_frame,
)
from audit.rules import Rule, RuleContext, all_rules
from audit.rules.overlaps import cause_key, fold_overlaps

_RULE_OUTPUT_SCHEMA = {c: FINDINGS_SCHEMA[c] for c in RULE_OUTPUT_COLUMNS}
# What makes a finding the same finding next week: code + AD object + cloud object + the
# attribute/value it is about. Names and details may change without creating a "new" finding.
_FINGERPRINT_PARTS = ("code", "ad_object_guid", "cloud_id", "attribute", "value")


def effective_features(snapshot: Snapshot, settings: Settings) -> TenantFeatures:
    """Switches read from Graph win; config fills in what Graph could not tell (403)."""
    read = snapshot.tenant.features
    merged: dict[str, Feature] = {}
    for name in TenantFeatures.__dataclass_fields__:
        from_graph: Feature = getattr(read, name)
        from_config = settings.entra.features.get(name)
        if from_graph.value is None and from_config is not None:
            merged[name] = from_config
        else:
            merged[name] = from_graph
    return replace(read, **merged)


def snapshot_time(snapshot: Snapshot) -> datetime:
    if snapshot.taken_at:
        taken = datetime.fromisoformat(snapshot.taken_at.replace("Z", "+00:00"))
        return taken if taken.tzinfo else taken.replace(tzinfo=UTC)
    return datetime.now(UTC)


def prepared_for_rules(snapshot: Snapshot) -> Snapshot:
    """The snapshot with in-scope AD users and active cloud users first, each column in one
    chunk; returned as is when it already is (so callers can prepare once and drop the
    original, e.g. right after reading a run's Parquet files).

    Frames read from Parquet come in many chunks, and gathers over chunked columns (every
    join's output) cost several times the time and memory at 1M users; with the order, the
    rules' in-scope and active subsets are zero-copy slices (RuleContext.in_scope_ad,
    active_cloud) instead of filtered copies.
    """
    ad_key = pl.col("in_scope").fill_null(False)
    cloud_key = pl.col("deleted_at").is_not_null()
    ad, cloud = snapshot.ad_users, snapshot.cloud_users
    if ad.n_chunks() > 1 or not ad.select(ad_key.not_().is_sorted()).item():
        ad = ad.sort(ad_key, descending=True, maintain_order=True)
    if cloud.n_chunks() > 1 or not cloud.select(cloud_key.is_sorted()).item():
        cloud = cloud.sort(cloud_key, maintain_order=True)
    if ad is snapshot.ad_users and cloud is snapshot.cloud_users:
        return snapshot
    return replace(snapshot, ad_users=ad, cloud_users=cloud)


def rule_context(
    snapshot: Snapshot, settings: Settings, now: datetime | None = None
) -> RuleContext:
    """What every rule of one classification sees (the snapshot must be prepared_for_rules)."""
    return RuleContext(
        snapshot=snapshot,
        thresholds=settings.thresholds,
        now=now or snapshot_time(snapshot),
        features=effective_features(snapshot, settings),
        unmet=snapshot.unmet_needs(),
    )


@dataclass(frozen=True)
class HeldBack:
    """A rule, or one case of it, that was not checked (or was checked with a caveat) because
    the snapshot could not meet what it needs: ScubaGear/Maester's "not checked", per rule."""

    code: str
    case: str | None  # None: the whole rule
    status: str  # "held back" or "caveat"
    needs: tuple[Need, ...]
    reasons: tuple[str, ...]  # why each need is unmet, naming the sources
    what: str = ""  # for a case: what is not checked

    def as_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "case": self.case,
            "status": self.status,
            "needs": [n.name for n in self.needs],
            "reasons": list(self.reasons),
            "sentence": self.sentence(),
        }

    def sentence(self) -> str:
        needs = " and ".join(n.value for n in self.needs)
        why = "; ".join(self.reasons)
        if self.status == "caveat":
            return (
                f"{self.code}: reported without {needs}, so its findings may miss a blocker ({why})"
            )
        if self.case is None:
            return f"{self.code} held back: needs {needs} ({why})"
        return f"{self.code} partly held back ({self.what}): needs {needs} ({why})"


def coverage(rules: Iterable[Rule], unmet: Mapping[Need, str]) -> tuple[HeldBack, ...]:
    """Which rules and cases the unmet needs hold back, and which run with a caveat."""
    out: list[HeldBack] = []

    def entry(code: str, case: str | None, status: str, needs: Iterable[Need], what: str) -> None:
        missing = tuple(n for n in needs if n in unmet)
        if missing:
            reasons = tuple(dict.fromkeys(unmet[n] for n in missing))
            out.append(HeldBack(code, case, status, missing, reasons, what))

    for rule in rules:
        meta = rule.meta
        entry(meta.code, None, "held back", meta.requires, "")
        if any(n in unmet for n in meta.requires):
            continue
        for case in meta.cases:
            entry(meta.code, case.name, "held back", case.requires, case.what)
        entry(meta.code, None, "caveat", meta.caveats, "")
    return tuple(out)


def classify(
    snapshot: Snapshot,
    settings: Settings,
    rules: Iterable[Rule] | None = None,
    now: datetime | None = None,
    context: RuleContext | None = None,
) -> pl.DataFrame:
    """Every rule (or `rules`) over the snapshot. `context`: one already made for this
    snapshot (rule_context), whose joins a forecast of the same run then reuses."""
    if context is None:
        snapshot = prepared_for_rules(snapshot)
        context = rule_context(snapshot, settings, now)
    chosen = rules if rules is not None else all_rules()
    runnable = [r for r in chosen if context.met_all(r.meta.requires)]
    frames = [_run_rule(rule, context) for rule in runnable]
    frames = [f for f in frames if f.height]
    if not frames:
        return empty_frame(FINDINGS_SCHEMA)
    findings = pl.concat(frames, how="vertical")
    findings = findings.with_columns(
        fingerprint=pl.Series(_fingerprints(findings), dtype=pl.String),
        # No waivers exist yet. Status and first_seen need the runs before this one: the
        # pipeline fills them (history.compare), classify alone leaves them empty.
        waived=pl.lit(False),
    )
    # One cause, one line: fold the findings the overlap policy says another code reports.
    findings = fold_overlaps(findings).with_columns(cause_key())
    findings = conform(findings, FINDINGS_SCHEMA)
    severity_rank = pl.col("severity").replace_strict(
        {s.name: -s.value for s in Severity}, return_dtype=pl.Int8
    )
    return findings.sort(
        [severity_rank, "family", "code", "ad_dn", "cloud_upn", "value"], nulls_last=True
    )


def _run_rule(rule: Rule, context: RuleContext) -> pl.DataFrame:
    frame = rule.evaluate(context)
    if not frame.height:
        return empty_frame({**_RULE_OUTPUT_SCHEMA, "family": pl.String(), "title": pl.String()})
    if "severity" not in frame.columns:
        frame = frame.with_columns(severity=pl.lit(rule.meta.severity.name))
    frame = frame.with_columns(code=pl.lit(rule.meta.code))
    frame = conform(frame, _RULE_OUTPUT_SCHEMA)
    return frame.with_columns(
        severity=pl.col("severity").fill_null(rule.meta.severity.name),
        family=pl.lit(rule.meta.family),
        title=pl.lit(rule.meta.title),
    )


def _fingerprints(findings: pl.DataFrame) -> list[str]:
    # The AD object is its objectGUID; its DN only stands in when the GUID is unknown.
    parts = [
        pl.coalesce("ad_object_guid", "ad_dn").fill_null("")
        if c == "ad_object_guid"
        else pl.col(c).fill_null("")
        for c in _FINGERPRINT_PARTS
    ]
    keys = findings.select(pl.concat_str(parts, separator="\x1f")).to_series()
    return [hashlib.sha256(k.encode("utf-8")).hexdigest()[:20] for k in keys]


def counts_by_code(findings: pl.DataFrame) -> list[tuple[str, str, int]]:
    """(code, severity, count), most severe first, then by code."""
    if not findings.height:
        return []
    counts = findings.group_by("code", "severity").len()
    return sorted(
        ((r["code"], r["severity"], r["len"]) for r in counts.iter_rows(named=True)),
        key=lambda t: (-Severity.parse(t[1]).value, t[0]),
    )
