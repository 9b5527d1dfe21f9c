"""remediation.ps1: the findings of a run as a reviewable PowerShell script.

The script is a *view* of the findings, like the reports: one call per remediable finding (its
fingerprint and code in a comment above it), one function per action, and a commented-out,
clearly marked manual step for every finding that has no safe automatic fix or whose values fail
validation. The PowerShell itself (checks, changes, log, undo) lives in
report_templates/remediation.ps1.j2; this module decides which call each finding gets and with
which values.

Injection-proofing: a value from the directory enters the script only through the template's
``ps_literal`` filter (a verbatim literal with every quote character doubled, see
audit/powershell.py), or as comment text through ``ps_comment``. The Jinja environment's
``finalize`` refuses any other value, so a template edit that prints a raw value fails loudly.
Identifiers the script writes (anchors, object ids, UPNs, AD attribute names) are validated here
first; a value that fails becomes a manual step, never code.
"""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import polars as pl

from audit.config import DEFAULT_ANCHOR_ATTRIBUTE, Settings
from audit.model import Tenant
from audit.powershell import (
    PsCode,
    UnsafeValue,
    comment_text,
    identifier,
    literal_problem,
    ps_literal,
    valid_ad_attribute,
    valid_anchor,
    valid_guid,
    valid_text,
    valid_upn,
)
from audit.rules.base import (
    AD_SET_ATTRIBUTE,
    CLEAR_ANCHOR,
    CLEAR_ONPREM_OBJECT_ID,
    FIX_ANCHOR_ENCODING,
    MANUAL,
    MERGE_DUPLICATE_CLOUD,
    PURGE_DELETED_HOLDER,
    RESTORE_DELETED_HOLDER,
    ROLES_DETOUR,
    SET_ANCHOR,
)

TEMPLATE = "remediation.ps1.j2"
SCRIPT_NAME = "remediation.ps1"
CLOUD, ON_PREMISES = "cloud", "on-premises"

GRAPH_MODULES = (
    "Microsoft.Graph.Authentication",
    "Microsoft.Graph.Users",
    "Microsoft.Graph.Identity.DirectoryManagement",
)
ROLES_MODULE = "Microsoft.Graph.Identity.Governance"
BASE_SCOPES = ("User.ReadWrite.All", "Directory.ReadWrite.All")
ROLES_SCOPE = "RoleManagement.ReadWrite.Directory"
ONPREM_SYNC_SCOPE = "User.OnPremisesSync.ReadWrite.All"
# Least-privileged permission for deleting/restoring users in deleted items (and Remove-MgUser);
# Directory.ReadWrite.All explicitly excludes deletions.
DELETE_RESTORE_SCOPE = "User.DeleteRestore.All"
GUID_ANCHOR_ATTRIBUTES = frozenset({"objectguid", "ms-ds-consistencyguid"})


@dataclass(frozen=True)
class ActionSpec:
    """What one action id does in the script: the catalogue the tests and docs refer to."""

    action: str
    function: str
    phase: int  # order in the script: holders first, then anchors, merges, role detours
    section: str
    summary: str
    checks: tuple[str, ...]  # cmdlets of the live precondition check
    changes: tuple[str, ...]  # cmdlets that change the directory, in the order they run
    undo: str


ACTIONS: dict[str, ActionSpec] = {
    spec.action: spec
    for spec in (
        ActionSpec(
            RESTORE_DELETED_HOLDER,
            "Invoke-SaRestoreDeletedHolder",
            10,
            CLOUD,
            "restore the soft-deleted holder of the anchor",
            ("Get-MgDirectoryDeletedItemAsUser", "Get-MgUser"),
            ("Restore-MgDirectoryDeletedItem",),
            "Remove-MgUser (back to deleted items)",
        ),
        ActionSpec(
            PURGE_DELETED_HOLDER,
            "Invoke-SaPurgeDeletedHolder",
            10,
            CLOUD,
            "permanently delete the soft-deleted holder of the anchor",
            ("Get-MgDirectoryDeletedItemAsUser", "Get-MgUser"),
            ("Remove-MgDirectoryDeletedItem",),
            "none (a purge is final)",
        ),
        ActionSpec(
            CLEAR_ONPREM_OBJECT_ID,
            "Invoke-SaClearOnPremObjectId",
            20,
            CLOUD,
            "clear onPremisesObjectIdentifier (2026 hard-match hardening recovery)",
            ("Invoke-MgGraphRequest",),
            ("Invoke-MgGraphRequest",),
            "none (sync maintains the attribute)",
        ),
        ActionSpec(
            CLEAR_ANCHOR,
            "Invoke-SaClearAnchor",
            30,
            CLOUD,
            "clear a wrong immutableId, with read-back",
            ("Get-MgUser",),
            ("Invoke-MgGraphRequest",),
            "immutableId set back",
        ),
        ActionSpec(
            FIX_ANCHOR_ENCODING,
            "Invoke-SaFixAnchorEncoding",
            40,
            CLOUD,
            "replace a wrongly encoded immutableId with the right value",
            ("Get-MgUser", "Get-MgDirectoryDeletedItemAsUser"),
            ("Update-MgUser",),
            "immutableId set back",
        ),
        ActionSpec(
            SET_ANCHOR,
            "Invoke-SaSetAnchor",
            50,
            CLOUD,
            "set the anchor on a cloud-only user (hard match)",
            ("Get-MgUser", "Get-MgDirectoryDeletedItemAsUser"),
            ("Update-MgUser",),
            "immutableId set back",
        ),
        ActionSpec(
            MERGE_DUPLICATE_CLOUD,
            "Invoke-SaMergeDuplicateCloud",
            60,
            CLOUD,
            "delete and purge the quarantined twin, anchor the original account",
            ("Get-MgUser", "Get-MgDirectoryDeletedItemAsUser"),
            ("Remove-MgUser", "Remove-MgDirectoryDeletedItem", "Update-MgUser"),
            "immutableId of the original set back (the twin's purge is final)",
        ),
        ActionSpec(
            ROLES_DETOUR,
            "Invoke-SaRolesDetour",
            70,
            CLOUD,
            "take privileged roles off around the match, then put them back",
            (
                "Get-MgUser",
                "Get-MgRoleManagementDirectoryRoleAssignment",
                "Get-MgRoleManagementDirectoryRoleEligibilityScheduleInstance",
            ),
            (
                "Remove-MgRoleManagementDirectoryRoleAssignment",
                "New-MgRoleManagementDirectoryRoleEligibilityScheduleRequest",
                "Start-ADSyncSyncCycle",
                "New-MgRoleManagementDirectoryRoleAssignment",
                "New-MgRoleManagementDirectoryRoleEligibilityScheduleRequest",
            ),
            "roles put back (the function does it itself, in a finally block)",
        ),
        ActionSpec(
            AD_SET_ATTRIBUTE,
            "Invoke-SaAdSetAttribute",
            100,
            ON_PREMISES,
            "set an AD attribute to the IdFix-style proposed value",
            ("Get-ADUser", "Get-ADObject"),
            ("Set-ADUser",),
            "Set-ADUser back to the old value",
        ),
    )
}


@dataclass(frozen=True)
class Call:
    """One generated call: `action`'s function with these parameters, for one finding."""

    action: str
    fingerprint: str
    code: str
    title: str
    args: tuple[tuple[str, str | bool | None], ...]
    notes: tuple[str, ...] = ()

    @property
    def spec(self) -> ActionSpec:
        return ACTIONS[self.action]

    @property
    def function(self) -> str:
        return self.spec.function

    def arg(self, name: str) -> str | bool | None:
        return dict(self.args)[name]


@dataclass(frozen=True)
class ManualStep:
    """A finding the script does not fix by itself: documented, commented out, never code."""

    fingerprint: str
    code: str
    title: str
    reason: str
    detail: str = ""
    how: str = ""
    intended: str = MANUAL  # the action id the finding named


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
    def functions(self) -> set[str]:
        return {c.function for c in self.calls}

    @property
    def uses_roles(self) -> bool:
        return any(c.action == ROLES_DETOUR for c in self.calls)

    @property
    def scopes(self) -> list[str]:
        scopes = list(BASE_SCOPES)
        deleting = {PURGE_DELETED_HOLDER, RESTORE_DELETED_HOLDER, MERGE_DUPLICATE_CLOUD}
        if any(c.action in deleting for c in self.calls):
            scopes.append(DELETE_RESTORE_SCOPE)
        if self.uses_roles:
            scopes.append(ROLES_SCOPE)
        if any(c.action == CLEAR_ONPREM_OBJECT_ID for c in self.calls):
            scopes.append(ONPREM_SYNC_SCOPE)
        return scopes

    @property
    def modules(self) -> list[str]:
        return [*GRAPH_MODULES, *([ROLES_MODULE] if self.uses_roles else [])]


@dataclass(frozen=True)
class PlanOptions:
    allow_role_changes: bool = False
    text_anchors: bool = False  # a non-GUID anchor attribute is configured (employeeID...)


class NotAutomatic(Exception):
    """The finding names an action, but this instance of it is not safe to automate."""


# --- findings -> plan -----------------------------------------------------------------------------


def plan_findings(findings: pl.DataFrame, options: PlanOptions | None = None) -> Plan:
    options = options or PlanOptions()
    plan = Plan()
    if findings.is_empty():
        return plan
    for row in findings.sort("fingerprint").iter_rows(named=True):
        if row.get("waived"):
            plan.waived.append((row["fingerprint"], row["code"]))
            continue
        item = plan_finding(row, options)
        if item is None:
            plan.no_action[row["code"]] += 1
        elif isinstance(item, Call):
            plan.calls.append(item)
        else:
            plan.manual.append(item)
    return plan


def plan_finding(row: Mapping[str, Any], options: PlanOptions) -> Call | ManualStep | None:
    """The call (or manual step) for one finding row; None when it needs no remediation."""
    action = row.get("remediation")
    if action is None:
        return None
    builder = _BUILDERS.get(action)
    if builder is None:
        reason = (
            "no safe automatic fix: decide and act by hand"
            if action == MANUAL
            else f"the script has no automatic action {action!r}"
        )
        return manual_step(row, reason)
    try:
        return builder(row, _evidence(row), options)
    except NotAutomatic as exc:
        return manual_step(row, str(exc), intended=action)
    except UnsafeValue as exc:
        return manual_step(
            row,
            f"a value failed validation, so no code was generated for {action}: {exc}",
            intended=action,
        )


def manual_step(row: Mapping[str, Any], reason: str, intended: str = MANUAL) -> ManualStep:
    meta = _rule_meta(str(row.get("code")))
    return ManualStep(
        fingerprint=str(row.get("fingerprint") or ""),
        code=str(row.get("code") or ""),
        title=str(row.get("title") or (meta.title if meta else "")),
        reason=reason,
        detail=str(row.get("detail") or ""),
        how=meta.remediation if meta else "",
        intended=intended,
    )


def _rule_meta(code: str) -> Any:
    from audit.rules import rule_by_code

    rule = rule_by_code(code)
    return rule.meta if rule else None


def _evidence(row: Mapping[str, Any]) -> dict[str, Any]:
    try:
        data = json.loads(row.get("evidence") or "{}")
    except (TypeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _call(row: Mapping[str, Any], action: str, title: str, **args: str | bool | None) -> Call:
    ordered = (
        ("Fingerprint", valid_text(str(row["fingerprint"]), "fingerprint")),
        ("Code", valid_text(str(row["code"]), "code")),
        *args.items(),
    )
    detail = str(row.get("detail") or "")
    return Call(
        action=action,
        fingerprint=str(row["fingerprint"]),
        code=str(row["code"]),
        title=title,
        args=ordered,
        notes=(detail,) if detail else (),
    )


def _text(row: Mapping[str, Any], column: str) -> str | None:
    return valid_text(row.get(column), column)


def _restore(row: Mapping[str, Any], ev: dict[str, Any], _o: PlanOptions) -> Call:
    return _call(
        row,
        RESTORE_DELETED_HOLDER,
        "restore the soft-deleted holder of the AD user's anchor",
        DeletedId=valid_guid(row.get("cloud_id"), "deleted user id"),
        DeletedUpn=_text(row, "cloud_upn"),
        Anchor=_required(row, "anchor"),
        AdUser=_text(row, "ad_dn"),
    )


def _purge(row: Mapping[str, Any], ev: dict[str, Any], _o: PlanOptions) -> Call:
    waiting = ev.get("waiting_cloud_id")
    if not waiting:
        raise NotAutomatic(
            "no cloud-only account waits for this AD user: restore or purge is a judgement call"
        )
    return _call(
        row,
        PURGE_DELETED_HOLDER,
        "purge the soft-deleted holder so the waiting cloud-only account can match",
        DeletedId=valid_guid(row.get("cloud_id"), "deleted user id"),
        DeletedUpn=_text(row, "cloud_upn"),
        Anchor=_required(row, "anchor"),
        AdUser=_text(row, "ad_dn"),
        WaitingId=valid_guid(waiting, "waiting cloud user id"),
    )


def _set_anchor(row: Mapping[str, Any], ev: dict[str, Any], o: PlanOptions) -> Call:
    return _call(
        row,
        SET_ANCHOR,
        "set the AD user's anchor on its cloud-only account (hard match)",
        UserId=valid_guid(row.get("cloud_id"), "cloud user id"),
        Upn=_text(row, "cloud_upn"),
        Anchor=valid_anchor(row.get("anchor"), text_anchors=o.text_anchors),
        ExpectedImmutableId=valid_text(ev.get("candidate_immutable_id"), "current immutableId"),
        AdUser=_text(row, "ad_dn"),
    )


def _fix_encoding(row: Mapping[str, Any], ev: dict[str, Any], o: PlanOptions) -> Call:
    if row.get("cloud_state") == "deleted":
        raise NotAutomatic(
            "the cloud user is soft-deleted: Graph cannot update it; restore it first (or purge "
            "it if it is not needed) and re-run the audit"
        )
    return _call(
        row,
        FIX_ANCHOR_ENCODING,
        "replace the wrongly encoded immutableId with the value Entra Connect sends",
        UserId=valid_guid(row.get("cloud_id"), "cloud user id"),
        Upn=_text(row, "cloud_upn"),
        ExpectedImmutableId=_required(row, "value"),
        Anchor=valid_anchor(row.get("proposed_value"), text_anchors=o.text_anchors),
        AdUser=_text(row, "ad_dn"),
    )


def _clear_anchor(row: Mapping[str, Any], ev: dict[str, Any], _o: PlanOptions) -> Call:
    if ev.get("sync_enabled") is True:
        raise NotAutomatic("the cloud user is synced: its anchor can only change on-premises")
    return _call(
        row,
        CLEAR_ANCHOR,
        "clear the immutableId no AD user has, so the account can be matched again",
        UserId=valid_guid(row.get("cloud_id"), "cloud user id"),
        Upn=_text(row, "cloud_upn"),
        ExpectedImmutableId=_required(row, "anchor"),
    )


def _merge(row: Mapping[str, Any], ev: dict[str, Any], o: PlanOptions) -> Call:
    if ev.get("matched_looks_quarantined") is not True:
        raise NotAutomatic(
            f"the matched account {ev.get('matched_cloud_upn')} does not look like a quarantined "
            "<name>1234@<tenant>.onmicrosoft.com twin: decide which of the two accounts to keep"
        )
    if ev.get("other_sync_enabled") is True:
        raise NotAutomatic("the original account is synced: merging would be wrong")
    return _call(
        row,
        MERGE_DUPLICATE_CLOUD,
        "delete and purge the quarantined twin, then anchor the original account",
        TwinId=valid_guid(ev.get("matched_cloud_id"), "twin cloud user id"),
        TwinUpn=valid_text(ev.get("matched_cloud_upn"), "twin UPN"),
        OriginalId=valid_guid(row.get("cloud_id"), "original cloud user id"),
        OriginalUpn=_text(row, "cloud_upn"),
        Anchor=valid_anchor(row.get("anchor"), text_anchors=o.text_anchors),
        ExpectedImmutableId=valid_text(ev.get("other_immutable_id"), "current immutableId"),
        AdUser=_text(row, "ad_dn"),
    )


def _roles(row: Mapping[str, Any], ev: dict[str, Any], o: PlanOptions) -> Call:
    if not o.allow_role_changes:
        raise NotAutomatic(
            "admin role changes are off ([remediation] allow_role_changes = false): remove the "
            "role assignment/eligibility by hand, let the match happen "
            "(Start-ADSyncSyncCycle -PolicyType Delta), then add it back"
        )
    mode = "hard" if row.get("code") == "hard-match-blocked" else "soft"
    return _call(
        row,
        ROLES_DETOUR,
        "take the privileged roles off for the match, then put them back",
        UserId=valid_guid(row.get("cloud_id"), "cloud user id"),
        Upn=_text(row, "cloud_upn"),
        Anchor=_required(row, "anchor"),
        Mode=mode,
        AdUser=_text(row, "ad_dn"),
    )


def _clear_object_id(row: Mapping[str, Any], ev: dict[str, Any], _o: PlanOptions) -> Call:
    return _call(
        row,
        CLEAR_ONPREM_OBJECT_ID,
        "clear onPremisesObjectIdentifier so Entra accepts the hard match",
        UserId=valid_guid(row.get("cloud_id"), "cloud user id"),
        Upn=_text(row, "cloud_upn"),
        ExpectedObjectIdentifier=valid_guid(ev.get("on_prem_object_id"), "onPremisesObjectId"),
        AdUser=_text(row, "ad_dn"),
    )


def _ad_set(row: Mapping[str, Any], ev: dict[str, Any], _o: PlanOptions) -> Call:
    attribute = valid_ad_attribute(row.get("attribute"))
    proposed = row.get("proposed_value")
    if proposed is None:
        raise NotAutomatic("no proposed value")
    if attribute == "userPrincipalName":
        valid_upn(proposed)
    return _call(
        row,
        AD_SET_ATTRIBUTE,
        f"set {attribute} of the AD user to the proposed value",
        ObjectGuid=valid_guid(row.get("ad_object_guid"), "AD objectGUID"),
        Dn=_text(row, "ad_dn"),
        Attribute=attribute,
        Current=_text(row, "value"),
        Proposed=valid_text(proposed, "proposed value"),
    )


def _required(row: Mapping[str, Any], column: str) -> str:
    value = _text(row, column)
    if value is None:
        raise NotAutomatic(f"the finding has no {column}")
    return value


_Builder = Callable[[Mapping[str, Any], dict[str, Any], PlanOptions], Call]
_BUILDERS: dict[str, _Builder] = {
    RESTORE_DELETED_HOLDER: _restore,
    PURGE_DELETED_HOLDER: _purge,
    SET_ANCHOR: _set_anchor,
    FIX_ANCHOR_ENCODING: _fix_encoding,
    CLEAR_ANCHOR: _clear_anchor,
    MERGE_DUPLICATE_CLOUD: _merge,
    ROLES_DETOUR: _roles,
    CLEAR_ONPREM_OBJECT_ID: _clear_object_id,
    AD_SET_ATTRIBUTE: _ad_set,
}


# --- rendering ------------------------------------------------------------------------------------


def _template_dir() -> Path:
    """report_templates/: inside the wheel as audit/report_templates, else the repository's."""
    packaged = resources.files("audit") / "report_templates"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "report_templates"


def _finalize(value: object) -> object:
    # The only things a template may print: text made safe by this module, and numbers.
    if isinstance(value, PsCode):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(
        f"a {type(value).__name__} reached the PowerShell template without ps_literal/ps_comment"
    )


def comment_lines(text: object, width: int = 92, limit: int = 2000) -> list[PsCode]:
    """Comment text wrapped to lines (each made safe by comment_text: no line breaks inside)."""
    flat = str(comment_text(text, limit=limit))
    return [PsCode(line) for line in textwrap.wrap(flat, width) or [""]]


@cache
def ps_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_template_dir()),
        autoescape=False,  # noqa: S701 (PowerShell, not HTML: values go through ps_literal)
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ps_literal"] = ps_literal
    env.filters["ps_comment"] = comment_text
    env.filters["ps_comment_lines"] = comment_lines
    env.filters["ps_name"] = identifier
    return env


@dataclass(frozen=True)
class ScriptHeader:
    run_id: str
    tenant: str
    taken_at: str
    generated: str
    kind: str = "remediation"  # or "hardmatch"
    explanation: tuple[str, ...] = ()


def render_plan(plan: Plan, header: ScriptHeader) -> str:
    counts = Counter(c.action for c in plan.calls)
    codes: dict[str, Counter[str]] = {}
    for c in plan.calls:
        codes.setdefault(c.action, Counter())[c.code] += 1
    fixes = [
        (
            counts[a],
            a,
            ", ".join(f"{code} x{n}" for code, n in sorted(codes[a].items())),
            ACTIONS[a].summary,
        )
        for a in sorted(counts, key=lambda a: ACTIONS[a].phase)
    ]
    run_id = (
        header.run_id if literal_problem(header.run_id) is None else comment_text(header.run_id)
    )
    template = ps_environment().get_template(TEMPLATE)
    return template.render(
        header=header,
        run_id=run_id,
        plan=plan,
        fixes=fixes,
        manual=plan.ordered_manual(),
        cloud_calls=plan.ordered_calls(CLOUD),
        onprem_calls=plan.ordered_calls(ON_PREMISES),
        functions=plan.functions,
        scopes=plan.scopes,
        modules=plan.modules,
        no_action=sorted(plan.no_action.items()),
    )


# --- wiring ---------------------------------------------------------------------------------------


def options_from_settings(settings: Settings) -> PlanOptions:
    attributes = {(s.anchor_attribute or DEFAULT_ANCHOR_ATTRIBUTE).lower() for s in settings.ad}
    return PlanOptions(
        allow_role_changes=settings.remediation.allow_role_changes,
        text_anchors=bool(attributes - GUID_ANCHOR_ATTRIBUTES),
    )


def tenant_label(tenant: Tenant) -> str:
    parts = [p for p in (tenant.initial_domain, tenant.tenant_id) if p]
    return " / ".join(parts) if parts else "unknown tenant"


def remediation_script(
    findings: pl.DataFrame,
    settings: Settings,
    *,
    tenant: Tenant,
    run_id: str,
    taken_at: str | None,
    generated: str,
) -> str:
    plan = plan_findings(findings, options_from_settings(settings))
    header = ScriptHeader(
        run_id=run_id,
        tenant=tenant_label(tenant),
        taken_at=taken_at or "unknown",
        generated=generated,
    )
    return render_plan(plan, header)


def write_remediation(
    run_dir: Path,
    findings: pl.DataFrame,
    settings: Settings,
    *,
    tenant: Tenant,
    run_id: str,
    taken_at: str | None,
    generated: str,
) -> Path:
    """Write <run>/remediation.ps1 atomically (UTF-8 with BOM: Windows PowerShell 5.1 reads a
    BOM-less file as the ANSI code page and would garble non-ASCII names)."""
    from audit.store import write_file_atomically

    text = remediation_script(
        findings, settings, tenant=tenant, run_id=run_id, taken_at=taken_at, generated=generated
    )
    path = run_dir / SCRIPT_NAME
    write_file_atomically(path, lambda p: p.write_text(text, encoding="utf-8-sig", newline="\r\n"))
    return path


def calls_for(plan: Plan, codes: Iterable[str]) -> Sequence[Call]:
    wanted = set(codes)
    return [c for c in plan.calls if c.code in wanted]
