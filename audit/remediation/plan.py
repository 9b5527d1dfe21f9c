"""Findings -> a Plan: one checked call (builders.py) or one documented manual step per
finding that needs remediation, and the PlanSummary the reports count."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

import polars as pl

from audit.anchor import GUID_ANCHOR_ATTRIBUTES
from audit.config import DEFAULT_ANCHOR_ATTRIBUTE, Settings
from audit.model import Action, Tenant
from audit.powershell import UnsafeValue, ps_literal, valid_guid, valid_text
from audit.remediation.actions import (
    ACTIONS,
    CLOUD,
    ROLES_DETOUR_FOLLOWS,
    Call,
    MissingValue,
    PlanOptions,
    least_scopes,
)
from audit.remediation.builders import BUILDERS, NotAutomatic
from audit.rules import rule_by_code

GRAPH_MODULES = (
    "Microsoft.Graph.Authentication",
    "Microsoft.Graph.Users",
    "Microsoft.Graph.Identity.DirectoryManagement",
)

ROLES_MODULE = "Microsoft.Graph.Identity.Governance"


@dataclass(frozen=True)
class ManualStep:
    """A finding the script does not fix by itself: documented, commented out, never code."""

    fingerprint: str
    code: str
    title: str
    reason: str
    detail: str = ""
    how: str = ""
    intended: str = Action.manual  # the action id the finding named


@dataclass
class Plan:
    calls: list[Call] = field(default_factory=list)
    manual: list[ManualStep] = field(default_factory=list)
    no_action: Counter[str] = field(default_factory=Counter)  # code -> findings needing none
    waived: list[tuple[str, str]] = field(default_factory=list)  # (fingerprint, code)

    def ordered_calls(self, section: str) -> list[Call]:
        calls = [c for c in self.calls if c.spec.section == section]
        return sorted(calls, key=lambda c: (c.spec.phase, c.code, c.fingerprint))

    def ordered_manual(self) -> list[ManualStep]:
        return sorted(self.manual, key=lambda m: (m.code, m.fingerprint))

    @property
    def uses_roles(self) -> bool:
        return any(c.action == Action.roles_detour for c in self.calls)

    @property
    def actions(self) -> list[str]:
        return sorted({c.action for c in self.calls}, key=lambda a: (ACTIONS[a].phase, a))

    @property
    def scopes(self) -> list[str]:
        return least_scopes(self.actions)

    @property
    def undo_scopes(self) -> list[str]:
        return least_scopes(self.actions, undo=True)

    @property
    def roles(self) -> list[tuple[str, str]]:
        """(Entra role, actions needing it) for the header, in phase order."""
        by_role: dict[str, list[str]] = {}
        for action in self.actions:
            spec = ACTIONS[action]
            if spec.section == CLOUD:
                by_role.setdefault(spec.role, []).append(action)
        return [(role, ", ".join(actions)) for role, actions in by_role.items()]

    @property
    def modules(self) -> list[str]:
        return [*GRAPH_MODULES, *([ROLES_MODULE] if self.uses_roles else [])]


@dataclass(frozen=True)
class PlanSummary:
    """What a plan does per finding code, as counts: all the reports need (a Plan keeps every
    call and manual step, which at 100k findings is a few hundred MB)."""

    calls: Mapping[str, Mapping[str, int]]  # code -> action -> calls, in script (phase) order
    manual: Mapping[str, int]
    waived: Mapping[str, int]
    calls_by_cause: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    manual_by_cause: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, plan: Plan, causes: Mapping[str, str] | None = None) -> PlanSummary:
        """`causes`: fingerprint -> cause key, for the per-cause counts."""
        causes = causes or {}
        return cls._build(
            Counter((c.code, c.action) for c in plan.calls),
            Counter(m.code for m in plan.manual),
            Counter(code for _fp, code in plan.waived),
            Counter((causes.get(c.fingerprint, c.code), c.action) for c in plan.calls),
            Counter(causes.get(m.fingerprint, m.code) for m in plan.manual),
        )

    @classmethod
    def _build(
        cls,
        calls: Counter[tuple[str, str]],
        manual: Counter[str],
        waived: Counter[str],
        cause_calls: Counter[tuple[str, str]],
        cause_manual: Counter[str],
    ) -> PlanSummary:
        def nest(counter: Counter[tuple[str, str]]) -> dict[str, dict[str, int]]:
            nested: dict[str, dict[str, int]] = {}
            for key, action in sorted(counter, key=lambda k: (ACTIONS[k[1]].phase, k[1])):
                nested.setdefault(key, {})[action] = counter[(key, action)]
            return nested

        return cls(
            nest(calls),
            dict(manual),
            dict(waived),
            nest(cause_calls),
            dict(cause_manual),
        )


def causes_of(findings: pl.DataFrame) -> dict[str, str]:
    """fingerprint -> cause key (the plan knows fingerprints, the reports group by cause)."""
    if findings.is_empty() or "cause" not in findings.columns:
        return {}
    pairs = findings.select("fingerprint", pl.col("cause").fill_null(pl.col("code")))
    return dict(pairs.iter_rows())


def summarize_findings(findings: pl.DataFrame, options: PlanOptions | None = None) -> PlanSummary:
    """The PlanSummary of plan_findings(findings, options), without keeping the plan."""
    options = options or PlanOptions()
    calls: Counter[tuple[str, str]] = Counter()
    manual: Counter[str] = Counter()
    waived: Counter[str] = Counter()
    cause_calls: Counter[tuple[str, str]] = Counter()
    cause_manual: Counter[str] = Counter()
    for row, item in _planned_rows(findings, options):
        code = row["code"]
        cause = row.get("cause") or code
        if item is WAIVED:
            waived[code] += 1
        elif item is None:
            continue  # the finding needs no action
        elif isinstance(item, Call):
            calls[(code, item.action)] += 1
            cause_calls[(cause, item.action)] += 1
        else:
            manual[code] += 1
            cause_manual[cause] += 1
    return PlanSummary._build(calls, manual, waived, cause_calls, cause_manual)


# --- findings -> plan -----------------------------------------------------------------------------


# What _planned_rows yields for a waived finding (planned as nothing, counted apart).
WAIVED = object()


def _planned_rows(
    findings: pl.DataFrame, options: PlanOptions
) -> Iterator[tuple[dict[str, Any], Call | ManualStep | object | None]]:
    """Each finding row with what the script does for it: a Call, a ManualStep, None (nothing
    needed) or WAIVED. plan_findings keeps the items; summarize_findings only counts them."""
    if findings.is_empty():
        return
    for row in findings.iter_rows(named=True):
        yield row, WAIVED if row.get("waived") else plan_finding(row, options)


def plan_findings(findings: pl.DataFrame, options: PlanOptions | None = None) -> Plan:
    options = options or PlanOptions()
    plan = Plan()
    for row, item in _planned_rows(findings.sort("fingerprint"), options):
        if item is WAIVED:
            plan.waived.append((row["fingerprint"], row["code"]))
        elif item is None:
            plan.no_action[row["code"]] += 1
        elif isinstance(item, Call):
            plan.calls.append(item)
        elif isinstance(item, ManualStep):
            plan.manual.append(item)
    plan.calls = link_role_detours(plan.calls)
    return plan


def link_role_detours(calls: list[Call]) -> list[Call]:
    """An anchor write onto a user whose privileged roles a later roles-detour call takes off
    may go ahead despite those roles (the detour completes the documented recovery); any other
    hardening blocker still stops it. The flag tells the script which writes those are."""
    detoured = {c.arg(c.spec.user_param) for c in calls if c.action == Action.roles_detour}
    linked = []
    for c in calls:
        if ROLES_DETOUR_FOLLOWS in c.spec.params:
            follows = c.arg(c.spec.user_param) in detoured
            c = replace(c, args=(*c.args, (ROLES_DETOUR_FOLLOWS.name, follows)))
        linked.append(c)
    return linked


def plan_finding(row: Mapping[str, Any], options: PlanOptions) -> Call | ManualStep | None:
    """The call (or manual step) for one finding row; None when it needs no remediation."""
    action = row.get("remediation")
    if action is None:
        return None
    builder = BUILDERS.get(action)
    if builder is None:
        reason = (
            "no safe automatic fix: decide and act by hand"
            if action == Action.manual
            else f"the script has no automatic action {action!r}"
        )
        return manual_step(row, reason)
    try:
        return builder(row, _evidence(row), options)
    except (NotAutomatic, MissingValue) as exc:
        return manual_step(row, str(exc), intended=action)
    except UnsafeValue as exc:
        return manual_step(
            row,
            f"a value failed validation, so no code was generated for {action}: {exc}",
            intended=action,
        )


def manual_step(row: Mapping[str, Any], reason: str, intended: str = Action.manual) -> ManualStep:
    meta = _rule_meta(str(row.get("code")))
    return ManualStep(
        fingerprint=str(row.get("fingerprint") or ""),
        code=str(row.get("code") or ""),
        title=str(row.get("title") or (meta.title if meta else "")),
        reason=reason,
        detail=str(row.get("detail") or ""),
        how=with_run_values(meta.remediation, row) if meta else "",
        intended=intended,
    )


def with_run_values(text: str, row: Mapping[str, Any]) -> str:
    """A rule's remediation text with the placeholders this finding knows filled in, so the
    manual step names the real object: <id>/<B> the cloud user id, <dn>/<user> the AD user's
    objectGUID (both bare: a GUID needs no quotes, and may sit inside a quoted URI), <anchor>
    and <AD UPN> as PowerShell literals. A value that fails validation leaves the placeholder
    (the text is a comment either way)."""
    if "<" not in text:
        return text
    for placeholder, column in (
        ("<id>", "cloud_id"),
        ("<B>", "cloud_id"),
        ("<dn>", "ad_object_guid"),
        ("<user>", "ad_object_guid"),
    ):
        if placeholder not in text:
            continue
        try:
            text = text.replace(placeholder, valid_guid(row.get(column)))
        except UnsafeValue:
            continue
    for placeholder, column in (("<anchor>", "anchor"), ("<AD UPN>", "ad_upn")):
        if placeholder not in text:
            continue
        try:
            value = valid_text(row.get(column))
        except UnsafeValue:
            continue
        if value:
            literal = str(ps_literal(value))
            text = text.replace(f"'{placeholder}'", literal).replace(placeholder, literal)
    return text


@cache
def _rule_meta(code: str) -> Any:
    rule = rule_by_code(code)
    return rule.meta if rule else None


def _evidence(row: Mapping[str, Any]) -> dict[str, Any]:
    try:
        data = json.loads(row.get("evidence") or "{}")
    except (TypeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def options_from_settings(settings: Settings, tenant: Tenant | None = None) -> PlanOptions:
    attributes = {(s.anchor_attribute or DEFAULT_ANCHOR_ATTRIBUTE).lower() for s in settings.ad}
    return PlanOptions(
        allow_role_changes=settings.remediation.allow_role_changes,
        text_anchors=bool(attributes - GUID_ANCHOR_ATTRIBUTES),
        federated_domains=frozenset(d.lower() for d in tenant.federated_domains())
        if tenant
        else frozenset(),
        excluded_ous={s.name: s.exclude_ous for s in settings.ad if s.exclude_ous},
    )
