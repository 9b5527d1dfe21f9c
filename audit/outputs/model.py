"""The one report model every format (HTML, PDF, XLSX) renders from.

``build_report`` is called once per analyze with the findings, the snapshot, the rule metadata
(through the rule registry) and the run history; the writers in ``audit.outputs`` only lay it
out. Nothing here does I/O except reading the configured logo.

Sync health
    The share of in-scope, enabled AD users that are *cleanly matched*: hard-matched (their
    effective sourceAnchor equals the onPremisesImmutableId of an active, not soft-deleted,
    cloud user) AND named as the AD object (``ad_object_guid``) of no unwaived finding of
    severity medium or above. The report shows the numerator and the denominator. Tenant-wide
    findings (``tenant-sync-stale``...) name no AD user and do not lower it; they show in the
    severity counts. Waived findings do not lower it either: a waiver is an accepted state.

Trend
    The earlier runs' points (``audit.history.load_history``) and this one, when there
    are earlier runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from audit.config import Settings
from audit.model import FINDINGS_SCHEMA, RuleMeta, Severity, Snapshot, SourceReport, conform
from audit.outputs.logo import load_logo
from audit.outputs.redact import Redactor, redact_findings
from audit.outputs.runs import SinceRun, TrendPoint, generation_time, human_time
from audit.remediation.actions import ACTIONS
from audit.remediation.plan import PlanSummary, options_from_settings, summarize_findings
from audit.rules import all_rules
from audit.rules.idfix_values import KIND_TEXT as _KIND_TEXT

if TYPE_CHECKING:  # outputs.forecast imports this module's neighbours
    from audit.outputs.forecast import ForecastSection

TOP_ACTIONS = 8  # causes at the top of the HTML
HTML_CAUSES = 60  # causes the HTML lists in all (the rest: by code, and in findings.xlsx)
SEVERITIES = tuple(s.name for s in sorted(Severity, reverse=True))  # critical ... info
HEALTH_SEVERITIES = tuple(s.name for s in Severity if s >= Severity.medium)
FAMILY_LABELS = {
    "anchor": "Source anchor",
    "matching": "Matching",
    "duplicates": "Duplicate values",
    "drift": "Drift between AD and Entra ID",
    "tenant": "Tenant and sync service",
    "attributes": "Attribute validity (IdFix)",
}
# A finding whose fix is not in the script: its code's fix says what to do.
MANUAL_TEXT = "Manual steps (see the finding's fix)"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(])")


@dataclass(frozen=True)
class Health:
    clean: int
    total: int

    @property
    def percent(self) -> float | None:
        return round(100.0 * self.clean / self.total, 1) if self.total else None

    def as_json(self) -> dict[str, Any]:
        return {"clean": self.clean, "total": self.total, "percent": self.percent}


@dataclass(frozen=True)
class CodeSection:
    """One finding code: its metadata, its counts and its rows (sorted like classify)."""

    code: str
    family: str
    title: str
    severity: str  # the worst severity among its findings
    count: int
    counts_by_severity: Mapping[str, int]
    what: str  # first sentence of the explanation
    why: str  # the rest of it
    fix: str
    references: tuple[str, ...]
    action: str  # what to do, in one sentence (RuleMeta.action)
    # What this run's remediation.ps1 does for the code: action id -> calls, in script order,
    # and how many of its findings are manual steps or are waived.
    script: Mapping[str, int]
    manual: int
    rows: pl.DataFrame  # this code's findings
    waived: int = 0

    @property
    def actions(self) -> tuple[str, ...]:
        return (*self.script, *(("manual",) if self.manual else ()))

    @property
    def fix_label(self) -> str:
        return fix_label(self.script, self.manual, self.waived)

    @property
    def severity_split(self) -> str:
        """ "1 medium, 5 info" when the code's findings have more than one severity."""
        if len(self.counts_by_severity) < 2:
            return ""
        return ", ".join(f"{n:,} {s}" for s, n in self.counts_by_severity.items())

    def head(self, n: int) -> pl.DataFrame:
        return self.rows.head(n)


@dataclass(frozen=True)
class FamilySection:
    family: str
    label: str
    codes: tuple[CodeSection, ...]

    @property
    def count(self) -> int:
        return sum(c.count for c in self.codes)


@dataclass(frozen=True)
class TopAction:
    """One root cause: the findings that share a `cause` key, with its one fix."""

    rank: int
    code: str
    title: str  # the cause, in a sentence
    severity: str
    count: int  # people (objects) affected
    actions: tuple[str, ...]
    fix_label: str = ""
    cause: str = ""
    todo: str = ""  # what to do about this cause, with its count
    findings: int = 0

    @property
    def action_text(self) -> str:
        if self.todo:
            return self.todo
        named = [ACTIONS[a].summary for a in self.actions if a in ACTIONS]
        return "; ".join(named).capitalize() if named else MANUAL_TEXT


@dataclass(frozen=True)
class SourceLine:
    """One input of the run as the report lists it: where it was read from, what it gave,
    whether it was complete, and how it was read (pages, retries, references not followed,
    TLS verification off) or what in it could not be judged."""

    name: str
    kind: str
    read_from: str  # a file path or a live source's URL
    format: str
    rows: int
    complete: bool
    excluded: str  # "computer 3, system-account 5"
    remarks: tuple[str, ...]  # warnings first, then notes; withheld when redacted


def _read_from(path: str | None) -> str:
    """A live source's URL; a file's name only (its full path, a path on the machine that
    ran the import, is in manifest.json)."""
    if not path:
        return ""
    return path if "://" in path else Path(path).name


def report_sources(sources: Sequence[SourceReport], redacted: bool) -> tuple[SourceLine, ...]:
    """A redacted report keeps the counts but not the sources' free text, which may name
    objects (a value cut to length names its holder): manifest.json has it."""
    return tuple(
        SourceLine(
            name=s.name,
            kind=s.kind,
            read_from=_read_from(s.path),
            format=s.format,
            rows=s.rows,
            complete=s.complete,
            excluded=", ".join(f"{reason} {n:,}" for reason, n in sorted(s.excluded.items())),
            remarks=(
                ("withheld in a redacted report (manifest.json has them)",)
                if redacted and (s.warnings or s.notes)
                else (*s.warnings, *s.notes)
            ),
        )
        for s in sources
    )


@dataclass(frozen=True)
class ReportModel:
    title: str
    company: str
    logo_data_uri: str | None
    run_id: str
    taken_at: str | None
    generated: str
    redacted: bool
    health: Health
    counts_by_severity: Mapping[str, int]  # all findings, waived included
    total: int
    families: tuple[FamilySection, ...]
    codes: tuple[CodeSection, ...]  # most severe first, then most findings
    trend: tuple[TrendPoint, ...]  # earlier runs then this one; empty without history
    estate: Mapping[str, int]
    notes: tuple[str, ...]
    findings: pl.DataFrame  # conformed to FINDINGS_SCHEMA; redacted when `redacted`
    pdf_rows_per_code: int = 25
    warnings: tuple[str, ...] = field(default=())
    causes: tuple[TopAction, ...] = ()  # every root cause the HTML lists (capped)
    cause_count: int = 0
    sources: tuple[SourceLine, ...] = ()  # every input of the run, in the order read
    since: SinceRun | None = None  # against the previous complete run (None: not compared)
    suspect: tuple[str, ...] = ()  # the safety guard: sources that shrank, shown first
    forecast: ForecastSection | None = None  # `syncaudit forecast` ran on this run

    @property
    def top_actions(self) -> tuple[TopAction, ...]:
        """The first causes: the top of the HTML (the PDF shows the ones that fit its page)."""
        return self.causes[:TOP_ACTIONS]

    # unwaived findings per severity: what the headline and the health caveat speak of
    active_by_severity: Mapping[str, int] = field(default_factory=dict)
    health_status: str = "unknown"  # good / warn / bad / unknown: the colour of the figure
    health_caveat: str = ""  # a critical finding shown beside the figure

    @property
    def taken_at_text(self) -> str:
        return human_time(self.taken_at) if self.taken_at else "unknown"

    @property
    def generated_text(self) -> str:
        return human_time(self.generated)

    @property
    def headline(self) -> str:
        """One plain-English sentence for the top of the summary."""
        counts = [(s, n) for s in ("critical", "high") if (n := self.active_by_severity.get(s, 0))]
        if not self.total:
            return "No problems found: every check passed."
        if counts:
            total = sum(n for _s, n in counts)
            listed = " and ".join(f"{n:,} {s}" for s, n in counts)
            noun, verb = ("finding", "needs") if total == 1 else ("findings", "need")
            return f"{listed} {noun} {verb} action before the next sync cycle."
        if self.health.total and not self.health.clean:
            return (
                "No critical or high findings, but none of the in-scope, enabled AD users is "
                "cleanly matched: see the medium findings."
            )
        return "No critical or high findings; the remaining findings are housekeeping."


def compute_health(snapshot: Snapshot, findings: pl.DataFrame) -> Health:
    """Cleanly matched in-scope enabled AD users (see the module docstring)."""
    ad = snapshot.ad_users.lazy().filter(
        pl.col("in_scope").fill_null(False) & pl.col("enabled").fill_null(False)
    )
    holders = (
        snapshot.cloud_users.lazy()
        .filter(pl.col("deleted_at").is_null() & pl.col("immutable_id").is_not_null())
        .select(pl.col("immutable_id").alias("anchor"))
    )
    blocking = (
        findings.lazy()
        .filter(
            ~pl.col("waived").fill_null(False)
            & pl.col("severity").is_in(HEALTH_SEVERITIES)
            & pl.col("ad_object_guid").is_not_null()
        )
        .select(pl.col("ad_object_guid").alias("object_guid"))
        .unique()
    )
    total, clean = (
        pl.concat(
            [
                ad.select(pl.len().alias("n")),
                ad.filter(pl.col("anchor").is_not_null())
                .join(holders.unique(), on="anchor", how="semi")
                .join(blocking, on="object_guid", how="anti")
                .select(pl.len().alias("n")),
            ]
        )
        .collect()["n"]
        .to_list()
    )
    return Health(clean=int(clean), total=int(total))


def _split_explanation(text: str) -> tuple[str, str]:
    parts = _SENTENCE_END.split(text.strip(), maxsplit=1)
    return parts[0], parts[1] if len(parts) > 1 else ""


def build_report(
    findings: pl.DataFrame,
    snapshot: Snapshot,
    settings: Settings,
    *,
    run_id: str,
    health: Health | None = None,
    history: Sequence[TrendPoint] = (),
    notes: Sequence[str] = (),
    redactor: Redactor | None = None,
    generated: str | None = None,
    plan: PlanSummary | None = None,
    since: SinceRun | None = None,
    suspect: Sequence[str] = (),
    forecast: ForecastSection | None = None,
) -> ReportModel:
    """The report model. `health` is computed from the unredacted findings when not given;
    a `redactor` masks the findings every format shows; `plan` is this run's remediation plan
    (computed when not given)."""
    findings = conform(findings, FINDINGS_SCHEMA)
    if health is None:
        health = compute_health(snapshot, findings)
    # The Fix column says what this run's remediation.ps1 does, so plan it (before masking).
    if plan is None:
        plan = summarize_findings(findings, options_from_settings(settings, snapshot.tenant))
    if redactor is not None:
        findings = redact_findings(findings, redactor, snapshot)
    metas = {r.meta.code: r.meta for r in all_rules()}
    family_order = list(dict.fromkeys(m.family for m in metas.values()))
    counts_by_severity = {s: 0 for s in SEVERITIES}
    for severity, n in findings.group_by("severity").len().iter_rows():
        counts_by_severity[severity] = counts_by_severity.get(severity, 0) + int(n)

    codes = _code_sections(findings, metas, plan)
    families = []
    # Families with the worst findings first (critical before high...), then in catalogue order.
    worst: dict[str, int] = {}
    for c in codes:
        worst[c.family] = max(worst.get(c.family, -1), Severity[c.severity].value)
    ordered = family_order + sorted(set(worst) - set(family_order))
    ordered.sort(key=lambda f: -worst.get(f, -1))
    for family in ordered:
        members = tuple(c for c in codes if c.family == family)
        if members:
            label = FAMILY_LABELS.get(family, family.title())
            families.append(FamilySection(family=family, label=label, codes=members))
    causes = root_causes(findings, {c.code: c for c in codes}, plan)
    generated = generated or generation_time()
    trend: tuple[TrendPoint, ...] = ()
    if history:
        current = TrendPoint(
            run_id=run_id,
            taken_at=snapshot.taken_at or generated,
            counts_by_severity=counts_by_severity,
            health_percent=health.percent,
        )
        trend = (*history, current)
    base = Path(settings.source_path).parent if settings.source_path else None
    logo, logo_warning = load_logo(settings.report.logo, base)
    ad = snapshot.ad_users
    estate = {
        "ad_users": ad.height,
        "ad_users_in_scope_enabled": health.total,
        "cloud_users": int(snapshot.cloud_users["deleted_at"].is_null().sum()),
        "cloud_users_deleted": int(snapshot.cloud_users["deleted_at"].is_not_null().sum()),
    }
    active = findings.filter(~pl.col("waived").fill_null(False))
    open_critical = set(active.filter(pl.col("severity") == "critical")["code"].to_list())
    status, caveat = health_status(
        health, [c.title for c in codes if c.code in open_critical], settings
    )
    active_by_severity = {s: 0 for s in SEVERITIES}
    for severity, n in active.group_by("severity").len().iter_rows():
        active_by_severity[severity] = active_by_severity.get(severity, 0) + int(n)
    return ReportModel(
        active_by_severity=active_by_severity,
        health_status=status,
        health_caveat=caveat,
        title=settings.report.title or "Hybrid identity sync audit",
        company=settings.report.company,
        logo_data_uri=logo,
        run_id=run_id,
        taken_at=snapshot.taken_at,
        generated=generated,
        redacted=redactor is not None,
        health=health,
        counts_by_severity=counts_by_severity,
        total=findings.height,
        families=tuple(families),
        codes=tuple(codes),
        causes=causes[:HTML_CAUSES],
        cause_count=len(causes),
        trend=trend,
        estate=estate,
        notes=tuple(notes),
        findings=findings,
        pdf_rows_per_code=max(0, settings.report.pdf_rows_per_code),
        warnings=(logo_warning,) if logo_warning else (),
        sources=report_sources(snapshot.sources, redacted=redactor is not None),
        since=since,
        suspect=tuple(suspect),
        forecast=forecast,
    )


def fix_label(calls: Mapping[str, int], manual: int, waived: int = 0) -> str:
    """What remediation.ps1 does for a set of findings, with counts: "fix-anchor-encoding x4,
    manual x1" (x as the multiplication sign)."""
    parts = [f"{action} \u00d7{n}" for action, n in calls.items()]
    if manual:
        parts.append(f"manual \u00d7{manual}")
    if waived:
        parts.append(f"waived \u00d7{waived}")
    return ", ".join(parts) if parts else "no fix needed"


def root_causes(
    findings: pl.DataFrame, codes: Mapping[str, CodeSection], plan: PlanSummary
) -> tuple[TopAction, ...]:
    """The unwaived findings of severity low or worse grouped by cause, worst and widest first:
    one line per cause, however many objects share it."""
    active = findings.filter(~pl.col("waived").fill_null(False))
    rank = pl.col("severity").replace_strict(
        {s.name: s.value for s in Severity}, return_dtype=pl.Int8
    )
    active = active.filter(rank >= Severity.low.value)
    if active.is_empty():
        return ()
    grouped = (
        active.group_by(pl.col("cause").fill_null(pl.col("code")).alias("cause"))
        .agg(
            pl.col("code").mode().sort().first().alias("code"),
            rank.max().alias("rank"),
            pl.len().alias("findings"),
            pl.coalesce("ad_object_guid", "ad_dn", "cloud_id", "fingerprint")
            .n_unique()
            .alias("people"),
            pl.col("cloud_upn").drop_nulls().first().alias("cloud_upn"),
            pl.col("attribute").drop_nulls().first().alias("attribute"),
            pl.col("evidence").first().alias("evidence"),
        )
        .sort(["rank", "people", "cause"], descending=[True, True, False])
    )
    out = []
    for i, row in enumerate(grouped.iter_rows(named=True)):
        section = codes.get(row["code"])
        title, todo = cause_sentences(row, section)
        calls = plan.calls_by_cause.get(row["cause"], {})
        manual = plan.manual_by_cause.get(row["cause"], 0)
        out.append(
            TopAction(
                rank=i + 1,
                code=row["code"],
                title=title,
                severity=Severity(row["rank"]).name,
                count=int(row["people"]),
                actions=(*calls, *(("manual",) if manual else ())),
                fix_label=fix_label(calls, manual),
                cause=row["cause"],
                todo=todo,
                findings=int(row["findings"]),
            )
        )
    return tuple(out)


def cause_sentences(row: Mapping[str, Any], section: CodeSection | None) -> tuple[str, str]:
    """(the cause, what to do about it) in plain words, with the number of people."""
    cause, code, n = str(row["cause"]), str(row["code"]), int(row["people"])
    users = "1 user's" if n == 1 else f"{n:,} users'"
    title = section.title if section else code
    todo = section.action if section and section.action else MANUAL_TEXT
    kind, _, rest = cause.partition(":")
    if kind == "upn-suffix" and rest:
        never = '"suffix_never_verifiable":true' in str(row.get("evidence") or "")
        if never:
            return (
                f"{rest} is not a routable domain, so it can never be verified",
                f"Add a routable UPN suffix and change {users} UPN{'s' if n != 1 else ''}.",
            )
        return (
            f"{rest} is not a verified domain of the tenant",
            f"Verify {rest} in the tenant, or change {users} UPN{'s' if n != 1 else ''}.",
        )
    if kind == "invalid-attribute" and rest:
        attribute, _, what = rest.partition(":")
        if what.startswith("tld:"):
            tld = what[4:]
            return (
                f"{attribute} values end in .{tld}, not a real top-level domain",
                f"Change {users} {attribute} to a routable domain.",
            )
        return (
            f"{attribute} {_KIND_TEXT.get(what, 'fails an IdFix rule')}",
            f"Correct {users} {attribute} (a proposed value is given for most).",
        )
    if kind in ("anchor-held-by-other", "attribute-conflict-cloud") and row.get("cloud_upn"):
        return f"{title}: cloud user {row['cloud_upn']}", todo
    if kind == "scope" and rest:
        return (
            f"Synced cloud accounts whose AD users are out of sync scope ({rest})",
            f"Bring the {n:,} AD user{'s' if n != 1 else ''} back into scope, or retire the "
            "cloud accounts.",
        )
    if kind == "tenant-matching-settings" and row.get("attribute"):
        return f"{title} ({row['attribute']})", todo
    return title, todo


def health_status(health: Health, critical: Sequence[str], settings: Settings) -> tuple[str, str]:
    """(good / warn / bad / unknown, caveat): the figure's colour from the configured
    thresholds, never good while a critical finding is open (sync stopped makes 98 % stale).
    `critical`: the titles of the codes with an unwaived critical finding."""
    percent = health.percent
    caveat = ""
    if critical:
        caveat = "but critical: " + "; ".join(critical)
    if percent is None:
        return "unknown", caveat
    t = settings.thresholds
    status = (
        "good"
        if percent >= t.health_good_percent
        else "warn"
        if percent >= t.health_warn_percent
        else "bad"
    )
    if critical:
        status = "bad"
    return status, caveat


def _code_sections(
    findings: pl.DataFrame, metas: Mapping[str, RuleMeta], plan: PlanSummary
) -> list[CodeSection]:
    if findings.is_empty():
        return []
    sections = []
    stats = findings.group_by("code").agg(
        pl.len().alias("count"),
        *[(pl.col("severity") == s).sum().alias(s) for s in SEVERITIES],
        pl.col("family").first(),
        pl.col("title").first(),
    )
    partitions = findings.partition_by("code", as_dict=True, maintain_order=True)
    for row in stats.iter_rows(named=True):
        code = row["code"]
        meta = metas.get(code)
        by_severity = {s: int(row[s]) for s in SEVERITIES if row[s]}
        worst = next(iter(by_severity), "info")
        what, why = _split_explanation(meta.explanation) if meta else (row["title"] or code, "")
        script = dict(plan.calls.get(code, {}))
        sections.append(
            CodeSection(
                code=code,
                family=meta.family if meta else row["family"] or "other",
                title=meta.title if meta else row["title"] or code,
                severity=worst,
                count=int(row["count"]),
                counts_by_severity=by_severity,
                what=what,
                why=why,
                fix=meta.remediation if meta else "",
                action=meta.action if meta else "",
                references=meta.references if meta else (),
                script=script,
                manual=plan.manual.get(code, 0),
                waived=plan.waived.get(code, 0),
                rows=partitions[(code,)],
            )
        )
    sections.sort(key=lambda c: (-Severity[c.severity].value, -c.count, c.code))
    return sections
