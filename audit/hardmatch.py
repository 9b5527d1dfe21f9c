"""`syncaudit hardmatch`: the classic manual hard match of one AD user to one cloud user, made safe.

The admin names the two users; this computes the anchor, finds the cloud users (active and
soft-deleted) that already hold it, checks what would make Entra refuse the match (the cloud user
is synced, holds a privileged role, has onPremisesObjectIdentifier set; the tenant blocks
takeover; a federated domain needs the UPN detour) and writes a small script for that one pair
with the same functions, checks and log as remediation.ps1. Every step is explained.

The lookup sits behind :class:`UserDirectory`: :class:`SnapshotDirectory` answers from a run's
snapshot; a live implementation (LDAP + Graph) can come with live collection.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from audit.anchor import GUID_ANCHOR_ATTRIBUTES, GUID_PATTERN
from audit.errors import LookupFailed
from audit.model import Action, Snapshot, Tenant, TenantFeatures
from audit.powershell import UnsafeValue, valid_anchor
from audit.remediation.actions import ACTIONS, PlanOptions
from audit.remediation.plan import ManualStep, Plan, link_role_detours
from audit.remediation.script import ScriptHeader, render_plan, tenant_label
from audit.store import write_file_atomically

CODE = "hardmatch"
_GUID = re.compile(rf"\{{?{GUID_PATTERN}\}}?")


@dataclass(frozen=True)
class AdUser:
    source: str | None
    dn: str
    object_guid: str | None
    upn: str | None
    sam_account_name: str | None
    anchor: str | None
    anchor_attribute: str | None
    consistency_guid: str | None
    enabled: bool | None
    in_scope: bool | None
    out_of_scope_reason: str | None


@dataclass(frozen=True)
class CloudUser:
    id: str
    upn: str | None
    immutable_id: str | None
    sync_enabled: bool | None
    on_prem_object_id: str | None
    admin_roles: tuple[str, ...] = ()
    eligible_roles: tuple[str, ...] = ()
    deleted: bool = False

    @property
    def label(self) -> str:
        return f"{self.upn} (id {self.id}{', soft-deleted' if self.deleted else ''})"


class UserDirectory(Protocol):
    """Where the two users and the anchor's holders are looked up."""

    def find_ad_users(self, query: str) -> list[AdUser]: ...

    def find_cloud_users(self, query: str) -> list[CloudUser]: ...

    def anchor_holders(self, anchor: str) -> list[CloudUser]: ...

    @property
    def tenant(self) -> Tenant: ...

    @property
    def features(self) -> TenantFeatures: ...


class SnapshotDirectory:
    """A run's snapshot as the directory (what the audit saw when it was taken)."""

    def __init__(self, snapshot: Snapshot, features: TenantFeatures | None = None) -> None:
        self._snapshot = snapshot
        self._features = features or snapshot.tenant.features

    @property
    def tenant(self) -> Tenant:
        return self._snapshot.tenant

    @property
    def features(self) -> TenantFeatures:
        return self._features

    def find_ad_users(self, query: str) -> list[AdUser]:
        text = query.strip()
        ad = self._snapshot.ad_users
        if _GUID.fullmatch(text):
            where = pl.col("object_guid").str.to_lowercase() == text.strip("{}").lower()
        elif "=" in text and "," in text:
            where = pl.col("dn").str.to_lowercase() == text.lower()
        elif "@" in text:
            where = pl.col("upn").str.to_lowercase() == text.lower()
        else:
            where = pl.col("sam_account_name").str.to_lowercase() == text.lower()
        return [_ad_user(r) for r in ad.filter(where.fill_null(False)).iter_rows(named=True)]

    def find_cloud_users(self, query: str) -> list[CloudUser]:
        text = query.strip()
        cloud = self._snapshot.cloud_users
        if _GUID.fullmatch(text):
            where = pl.col("id").str.to_lowercase() == text.strip("{}").lower()
        else:
            where = pl.col("upn").str.to_lowercase() == text.lower()
        return [_cloud_user(r) for r in cloud.filter(where.fill_null(False)).iter_rows(named=True)]

    def anchor_holders(self, anchor: str) -> list[CloudUser]:
        cloud = self._snapshot.cloud_users.filter(pl.col("immutable_id") == anchor)
        return [_cloud_user(r) for r in cloud.iter_rows(named=True)]


def _ad_user(row: dict[str, Any]) -> AdUser:
    return AdUser(
        source=row["source"],
        dn=row["dn"],
        object_guid=row["object_guid"],
        upn=row["upn"],
        sam_account_name=row["sam_account_name"],
        anchor=row["anchor"],
        anchor_attribute=row["anchor_attribute"],
        consistency_guid=row["consistency_guid"],
        enabled=row["enabled"],
        in_scope=row["in_scope"],
        out_of_scope_reason=row["out_of_scope_reason"],
    )


def _cloud_user(row: dict[str, Any]) -> CloudUser:
    return CloudUser(
        id=row["id"],
        upn=row["upn"],
        immutable_id=row["immutable_id"],
        sync_enabled=row["sync_enabled"],
        on_prem_object_id=row["on_prem_object_id"],
        admin_roles=tuple(row["admin_roles"] or ()),
        eligible_roles=tuple(row["eligible_roles"] or ()),
        deleted=row["deleted_at"] is not None,
    )


# --- the flow -------------------------------------------------------------------------------------

OK, ACTION, INFO, WARNING, BLOCKER = "ok", "action", "info", "warning", "blocker"


@dataclass
class Step:
    title: str
    status: str  # ok / action / info / warning / blocker
    lines: list[str] = field(default_factory=list)


@dataclass
class HardMatchResult:
    ad: AdUser
    cloud: CloudUser
    anchor: str | None
    steps: list[Step]
    plan: Plan

    @property
    def blocked(self) -> bool:
        return any(s.status == BLOCKER for s in self.steps)

    @property
    def blockers(self) -> list[Step]:
        return [s for s in self.steps if s.status == BLOCKER]


def resolve_ad(directory: UserDirectory, query: str) -> AdUser:
    found = directory.find_ad_users(query)
    if not found:
        raise LookupFailed(f"no AD user with sAMAccountName, UPN or DN {query!r}")
    if len(found) > 1:
        names = "; ".join(f"{u.dn} ({u.source})" for u in found[:10])
        raise LookupFailed(f"{len(found)} AD users match {query!r}: {names}; give the DN instead")
    return found[0]


def resolve_cloud(directory: UserDirectory, query: str) -> CloudUser:
    found = directory.find_cloud_users(query)
    active = [u for u in found if not u.deleted]
    if not active:
        if found:
            raise LookupFailed(
                f"cloud user {query!r} is soft-deleted ({found[0].label}): restore it first "
                "(Restore-MgDirectoryDeletedItem) or pick the active account"
            )
        raise LookupFailed(f"no active cloud user with UPN or id {query!r}")
    if len(active) > 1:
        names = "; ".join(u.label for u in active[:10])
        raise LookupFailed(
            f"{len(active)} cloud users match {query!r}: {names}; give the object id instead"
        )
    return active[0]


def plan_hardmatch(
    directory: UserDirectory, ad_query: str, cloud_query: str, options: PlanOptions
) -> HardMatchResult:
    ad = resolve_ad(directory, ad_query)
    cloud = resolve_cloud(directory, cloud_query)
    fingerprint = hashlib.sha256(f"{ad.object_guid}|{cloud.id}".encode()).hexdigest()[:20]
    steps: list[Step] = []
    plan = Plan()

    def call(action: Action, title: str, **values: Any) -> None:
        # the same parameters and checks as remediation.ps1's calls (remediation.actions.ACTIONS)
        plan.calls.append(
            ACTIONS[action].call(
                fingerprint=fingerprint, code=CODE, title=title, values=values, options=options
            )
        )

    def manual(title: str, reason: str, how: str) -> None:
        plan.manual.append(ManualStep(fingerprint, CODE, title, reason, how=how))

    # 1. The AD user and its anchor.
    anchor = ad.anchor
    steps.append(_ad_step(ad))
    anchor_step = _anchor_step(ad, options)
    steps.append(anchor_step)
    if anchor_step.status == BLOCKER:
        anchor = None

    # 2. The cloud user.
    cloud_step, already = _cloud_step(cloud, anchor)
    steps.append(cloud_step)

    # 3. Who holds the anchor now.
    holders = directory.anchor_holders(anchor) if anchor else []
    others = [h for h in holders if h.id != cloud.id]
    active_others = [h for h in others if not h.deleted]
    deleted_others = [h for h in others if h.deleted]
    holder_step = Step("Holders of the anchor", OK, ["no other cloud user holds it"])
    if active_others:
        holder_step = Step(
            "Holders of the anchor",
            BLOCKER,
            [
                f"active cloud user {h.label} holds the anchor: it is already matched (or "
                "prepared) to this AD user; merge or clear that account first "
                "(see duplicate-cloud-account / cloud-orphan in the audit)"
                for h in active_others
            ],
        )
    elif deleted_others:
        holder_step = Step(
            "Holders of the anchor",
            ACTION,
            [
                f"soft-deleted cloud user {h.label} still holds the anchor (deleted users keep "
                "onPremisesImmutableId for 30 days) and would win the hard match: the script "
                "purges it first (Remove-MgDirectoryDeletedItem)"
                for h in deleted_others
            ],
        )
    steps.append(holder_step)

    # 4. The 2026 hardening and admin roles.
    hardening = _hardening_step(cloud, options)
    steps.append(hardening)

    # 5. Federated domain: the UPN detour.
    steps.append(_federation_step(cloud, directory.tenant))

    # 6. Matching switches.
    switches = _switches_step(directory.features)
    steps.append(switches)

    # 7. Sync scope and timing.
    steps.append(_scope_step(ad))

    # The script, in the order the steps must run.
    if anchor and cloud_step.status != BLOCKER and not active_others:
        try:
            for h in deleted_others:
                call(
                    Action.purge_deleted_holder,
                    "purge the soft-deleted holder of the anchor",
                    DeletedId=h.id,
                    DeletedUpn=h.upn,
                    Anchor=anchor,
                    AdUser=ad.dn,
                    WaitingId=cloud.id,
                )
            if cloud.on_prem_object_id:
                call(
                    Action.clear_onprem_object_id,
                    "clear onPremisesObjectIdentifier so Entra accepts the hard match",
                    UserId=cloud.id,
                    Upn=cloud.upn,
                    ExpectedObjectIdentifier=cloud.on_prem_object_id,
                    AdUser=ad.dn,
                )
            if not already:
                call(
                    Action.set_anchor,
                    "set the AD user's anchor on the cloud user (hard match)",
                    UserId=cloud.id,
                    Upn=cloud.upn,
                    Anchor=anchor,
                    ExpectedImmutableId=cloud.immutable_id,
                    AdUser=ad.dn,
                )
            if (cloud.admin_roles or cloud.eligible_roles) and options.allow_role_changes:
                call(
                    Action.roles_detour,
                    "take the privileged roles off for the match, then put them back",
                    UserId=cloud.id,
                    Upn=cloud.upn,
                    Anchor=anchor,
                    Mode="hard",
                    AdUser=ad.dn,
                )
        except UnsafeValue as exc:
            plan.calls.clear()
            steps.append(Step("Script", BLOCKER, [f"a value failed validation: {exc}"]))
    plan.calls = link_role_detours(plan.calls)
    for step in steps:
        if step.status == BLOCKER:
            manual(step.title, "blocks the hard match", " ".join(step.lines))
    return HardMatchResult(ad=ad, cloud=cloud, anchor=anchor, steps=steps, plan=plan)


def _ad_step(ad: AdUser) -> Step:
    lines = [f"{ad.dn} (UPN {ad.upn}, sAMAccountName {ad.sam_account_name}, source {ad.source})"]
    if ad.enabled is False:
        lines.append("the account is disabled on-premises: it syncs disabled")
    return Step("AD user", INFO, lines)


def _anchor_step(ad: AdUser, options: PlanOptions) -> Step:
    attribute = (ad.anchor_attribute or "").lower()
    if ad.anchor is None:
        return Step("Anchor", BLOCKER, ["the AD user has no anchor value (attribute empty)"])
    lines = [f"sourceAnchor = {ad.anchor}"]
    if attribute in GUID_ANCHOR_ATTRIBUTES or not attribute:
        if ad.consistency_guid:
            lines.append(
                "from mS-DS-ConsistencyGuid (base64 of its 16 raw bytes), which Entra Connect "
                "prefers over objectGUID"
            )
        else:
            lines.append(
                f"from objectGUID {ad.object_guid} (mS-DS-ConsistencyGuid is empty): "
                "[Convert]::ToBase64String(([guid]'<objectGUID>').ToByteArray()), the bytes in "
                ".NET order; Entra Connect writes them back to mS-DS-ConsistencyGuid"
            )
    else:
        lines.append(f"from the configured anchor attribute {ad.anchor_attribute} (text anchor)")
    try:
        valid_anchor(ad.anchor, text_anchors=options.text_anchors)
    except UnsafeValue as exc:
        return Step("Anchor", BLOCKER, [*lines, f"cannot be written safely: {exc}"])
    return Step("Anchor", OK, lines)


def _cloud_step(cloud: CloudUser, anchor: str | None) -> tuple[Step, bool]:
    head = f"{cloud.label}"
    if cloud.sync_enabled is True:
        if anchor and cloud.immutable_id == anchor:
            return Step("Cloud user", OK, [head, "already synced from this AD user"]), True
        return (
            Step(
                "Cloud user",
                BLOCKER,
                [
                    head,
                    "is synced from another on-premises object (onPremisesSyncEnabled true): "
                    "Graph refuses anchor changes on synced users ('originated within an "
                    "external service'); fix it on-premises or take that object out of scope",
                ],
            ),
            False,
        )
    state = "was synced, now cloud-only" if cloud.sync_enabled is False else "cloud-only"
    if anchor and cloud.immutable_id == anchor:
        return (
            Step("Cloud user", OK, [head, f"{state}; already holds the anchor (prepared)"]),
            True,
        )
    if cloud.immutable_id:
        return (
            Step(
                "Cloud user",
                ACTION,
                [
                    head,
                    f"{state}; holds another immutableId {cloud.immutable_id}, which the script "
                    "replaces (it re-checks the value first)",
                ],
            ),
            False,
        )
    return Step("Cloud user", ACTION, [head, f"{state}; immutableId empty: the script sets it"]), (
        False
    )


def _hardening_step(cloud: CloudUser, options: PlanOptions) -> Step:
    lines: list[str] = []
    status = OK
    if cloud.on_prem_object_id:
        status = ACTION
        lines.append(
            f"onPremisesObjectIdentifier is set ({cloud.on_prem_object_id}): since 2026-07 Entra "
            "refuses a hard match onto an account that was synced before; the script clears it "
            "(beta PATCH, needs User-OnPremisesSyncBehavior.ReadWrite.All and the Hybrid "
            "Identity Administrator role)"
        )
    roles = [*cloud.admin_roles, *(f"{r} (PIM-eligible)" for r in cloud.eligible_roles)]
    if roles:
        if options.allow_role_changes:
            status = ACTION if status != BLOCKER else status
            lines.append(
                f"privileged roles {', '.join(roles)}: the hardening refuses the match while "
                "they are assigned or eligible; the script takes them off, waits for the match "
                "and puts them back (Microsoft advises against hard-matching admin accounts)"
            )
        else:
            status = BLOCKER
            lines.append(
                f"privileged roles {', '.join(roles)}: the hardening refuses the match while "
                "they are assigned or eligible, and role changes are off ([remediation] "
                "allow_role_changes = false): remove them by hand, match, re-add them - or "
                "better, keep admin accounts cloud-only"
            )
    if not lines:
        lines.append("no onPremisesObjectIdentifier and no privileged role: not affected")
    return Step("Hard-match hardening", status, lines)


def _federation_step(cloud: CloudUser, tenant: Tenant) -> Step:
    domain = (cloud.upn or "").rpartition("@")[2].lower()
    if domain and domain in tenant.federated_domains():
        return Step(
            "Federated domain",
            ACTION,
            [
                f"{domain} is federated: Graph cannot set the anchor of a user in a federated "
                f"domain, so the script moves the UPN to {tenant.initial_domain or 'the initial'}"
                " domain, sets the anchor, and moves it back (it checks the domain live too)"
            ],
        )
    if not tenant.known:
        return Step("Federated domain", WARNING, ["domains unknown: the script checks live"])
    return Step("Federated domain", OK, [f"{domain or 'the UPN domain'} is managed: no detour"])


def _switches_step(features: TenantFeatures) -> Step:
    takeover = features.block_hard_match_takeover
    lines = []
    status = OK
    if takeover.value is True:
        status = BLOCKER
        lines.append(
            "blockCloudObjectTakeoverThroughHardMatchEnabled is on: the export fails with "
            "InvalidHardMatch; switch it off for the match window "
            "(Update-MgDirectoryOnPremiseSynchronization) and back on"
        )
    elif takeover.value is None:
        status = WARNING
        lines.append(
            "blockCloudObjectTakeoverThroughHardMatchEnabled is unknown (not readable with an "
            "app-only token): if it is on, the export fails with InvalidHardMatch"
        )
    else:
        lines.append(f"hard-match takeover allowed ({takeover.source})")
    soft = features.block_soft_match.value
    lines.append(
        "soft match "
        + ("blocked" if soft else "allowed" if soft is False else "unknown")
        + ": irrelevant for a hard match"
    )
    return Step("Matching switches", status, lines)


def _scope_step(ad: AdUser) -> Step:
    if ad.in_scope:
        return Step(
            "Sync scope",
            WARNING,
            [
                "the AD user is in sync scope: prepare the match with sync paused "
                "(Set-ADSyncScheduler -SyncCycleEnabled $false) or before its first export, or "
                "it may be created as a new cloud user first; run the script, then "
                "Start-ADSyncSyncCycle -PolicyType Delta"
            ],
        )
    reason = f" ({ad.out_of_scope_reason})" if ad.out_of_scope_reason else ""
    return Step(
        "Sync scope",
        INFO,
        [
            f"the AD user is out of sync scope{reason}: run the script, then bring it into "
            "scope; its first export hard-matches the prepared cloud user"
        ],
    )


# --- output ---------------------------------------------------------------------------------------


def explanation(result: HardMatchResult) -> list[str]:
    lines = [f"Hard match of AD user {result.ad.dn} to cloud user {result.cloud.label}"]
    for i, step in enumerate(result.steps, 1):
        lines.append(f"{i}. {step.title} [{step.status}]")
        lines.extend(f"   {line}" for line in step.lines)
    if result.blocked:
        lines.append(
            "BLOCKED: " + "; ".join(s.title for s in result.blockers) + " (see above; the "
            "script documents them as manual steps)"
        )
    return lines


def hardmatch_script(
    result: HardMatchResult, *, run_id: str, tenant: Tenant, taken_at: str | None, generated: str
) -> str:
    header = ScriptHeader(
        run_id=run_id,
        tenant=tenant_label(tenant),
        taken_at=taken_at or "unknown",
        generated=generated,
        kind="hardmatch",
        explanation=tuple(explanation(result)),
        tenant_id=tenant.tenant_id,
    )
    return render_plan(result.plan, header)


def default_script_path(run_dir: Path, result: HardMatchResult) -> Path:
    # Ids come from the directory: only hex digits reach the file name, so no id can steer
    # the script out of the run directory ('/../', '..\\', drive letters).
    ad = _hex_prefix(result.ad.object_guid) or "ad"
    cloud = _hex_prefix(result.cloud.id) or "cloud"
    return run_dir / f"hardmatch-{ad}-{cloud}.ps1"


def _hex_prefix(value: str | None) -> str:
    return "".join(c for c in (value or "") if c in "0123456789abcdefABCDEF")[:8].lower()


def write_script(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file_atomically(path, lambda p: p.write_text(text, encoding="ascii", newline="\r\n"))
    return path
