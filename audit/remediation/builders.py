"""One builder per action: a finding row (and its parsed evidence) -> the call of that
action's function, or NotAutomatic when this instance of the action is not safe to automate. The
values go through the action's declared parameter checks (ActionSpec.call)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from audit.model import Action
from audit.powershell import ps_literal, valid_ad_attribute, valid_guid, valid_upn
from audit.remediation.actions import ACTIONS, Call, PlanOptions
from audit.sources.scope import split_first_rdn


class NotAutomatic(Exception):
    """The finding names an action, but this instance of it is not safe to automate."""


def _call(
    row: Mapping[str, Any], action: Action, title: str, options: PlanOptions, **values: Any
) -> Call:
    """The call of `action` for a finding row; `values` are its parameters as the row has them
    (ACTIONS[action] checks each)."""
    detail = str(row.get("detail") or "")
    return ACTIONS[action].call(
        fingerprint=str(row["fingerprint"]),
        code=str(row["code"]),
        title=title,
        values=values,
        options=options,
        notes=(detail,) if detail else (),
    )


def _restore(row: Mapping[str, Any], ev: dict[str, Any], o: PlanOptions) -> Call:
    return _call(
        row,
        Action.restore_deleted_holder,
        "restore the soft-deleted holder of the AD user's anchor",
        o,
        DeletedId=row.get("cloud_id"),
        DeletedUpn=row.get("cloud_upn"),
        Anchor=row.get("anchor"),
        AdUser=row.get("ad_dn"),
    )


def _purge(row: Mapping[str, Any], ev: dict[str, Any], o: PlanOptions) -> Call:
    waiting = ev.get("waiting_cloud_id")
    if not waiting:
        raise NotAutomatic(
            "no cloud-only account waits for this AD user: restore or purge is a judgement call"
        )
    return _call(
        row,
        Action.purge_deleted_holder,
        "purge the soft-deleted holder so the waiting cloud-only account can match",
        o,
        DeletedId=row.get("cloud_id"),
        DeletedUpn=row.get("cloud_upn"),
        Anchor=row.get("anchor"),
        AdUser=row.get("ad_dn"),
        WaitingId=waiting,
    )


def _set_anchor(row: Mapping[str, Any], ev: dict[str, Any], o: PlanOptions) -> Call:
    return _call(
        row,
        Action.set_anchor,
        "set the AD user's anchor on its cloud-only account (hard match)",
        o,
        UserId=row.get("cloud_id"),
        Upn=row.get("cloud_upn"),
        Anchor=row.get("anchor"),
        ExpectedImmutableId=ev.get("candidate_immutable_id"),
        AdUser=row.get("ad_dn"),
    )


def _fix_encoding(row: Mapping[str, Any], ev: dict[str, Any], o: PlanOptions) -> Call:
    if row.get("cloud_state") == "deleted":
        raise NotAutomatic(
            "the cloud user is soft-deleted: Graph cannot update it; restore it first (or purge "
            "it if it is not needed) and re-run the audit"
        )
    return _call(
        row,
        Action.fix_anchor_encoding,
        "replace the wrongly encoded immutableId with the value Entra Connect sends",
        o,
        UserId=row.get("cloud_id"),
        Upn=row.get("cloud_upn"),
        ExpectedImmutableId=row.get("value"),
        Anchor=row.get("proposed_value"),
        AdUser=row.get("ad_dn"),
    )


def _clear_anchor(row: Mapping[str, Any], ev: dict[str, Any], o: PlanOptions) -> Call:
    if ev.get("sync_enabled") is True:
        raise NotAutomatic("the cloud user is synced: its anchor can only change on-premises")
    domain = str(row.get("cloud_upn") or "").rpartition("@")[2].lower()
    if domain in o.federated_domains:
        # A federated UPN needs an immutableId (user-update, onPremisesImmutableId): cleared, the
        # user cannot keep or get back its UPN. The script re-checks the domain live too.
        raise NotAutomatic(
            f"{row.get('cloud_upn')} is in the federated domain {domain}: its immutableId is not "
            "cleared (a federated user must have one); set the right anchor on it, or move it to "
            "a managed domain first"
        )
    return _call(
        row,
        Action.clear_anchor,
        "clear the immutableId no AD user has, so the account can be matched again",
        o,
        UserId=row.get("cloud_id"),
        Upn=row.get("cloud_upn"),
        ExpectedImmutableId=row.get("anchor"),
    )


def _merge(row: Mapping[str, Any], ev: dict[str, Any], o: PlanOptions) -> Call:
    if ev.get("matched_looks_quarantined") is not True:
        raise NotAutomatic(
            f"the matched account {ev.get('matched_cloud_upn')} does not look like a quarantined "
            "<name>1234@<tenant>.onmicrosoft.com twin: " + keep_advice(row, ev)
        )
    if ev.get("other_sync_enabled") is True:
        raise NotAutomatic("the original account is synced: merging would be wrong")
    call = _call(
        row,
        Action.merge_duplicate_cloud,
        "after the AD user left sync scope: purge the soft-deleted twin, anchor the original",
        o,
        TwinId=ev.get("matched_cloud_id"),
        TwinUpn=ev.get("matched_cloud_upn"),
        OriginalId=row.get("cloud_id"),
        OriginalUpn=row.get("cloud_upn"),
        Anchor=row.get("anchor"),
        ExpectedImmutableId=ev.get("other_immutable_id"),
        AdUser=row.get("ad_dn"),
    )
    # The manual steps around the call name the same (checked) values.
    twin_id, twin_upn = call.arg("TwinId"), call.arg("TwinUpn")
    original_id, original_upn = call.arg("OriginalId"), call.arg("OriginalUpn")
    dn = str(call.arg("AdUser"))
    ad_guid = valid_guid(row.get("ad_object_guid"), "AD objectGUID")
    parent = parent_dn(dn)
    if parent is None:
        raise NotAutomatic(f"cannot tell the OU of {dn}, so its way back into scope is unknown")
    excluded = o.excluded_ous.get(str(row.get("ad_source") or ""), ())
    target = ps_literal(excluded[0]) if excluded else "'<an OU that is not synced>'"
    where = (
        f"the OU excluded from sync in the configuration ({excluded[0]})"
        if excluded
        else "an OU Entra Connect does not sync (Synchronization Service > Connectors > the AD "
        "connector > Configure Directory Partitions > Containers; Cloud Sync: the scoping "
        "filter)"
    )
    steps = (
        f"MANUAL STEP 1 of 3, on-premises, before this call: take AD user {dn} out of sync scope "
        f"by moving it to {where}: Move-ADObject -Identity {ps_literal(ad_guid)} -TargetPath "
        f"{target}; then Start-ADSyncSyncCycle -PolicyType Delta. Sync soft-deletes the twin "
        f"{twin_upn} ({twin_id}); a synced object is not deleted in the cloud.",
        "STEP 2 of 3, this call: purges the soft-deleted twin and sets the anchor on "
        f"{original_upn} ({original_id}), after the hardening re-check. Until step 1 is done it "
        "skips and says so.",
        "MANUAL STEP 3 of 3, on-premises, after this call: bring the AD user back: "
        f"Move-ADObject -Identity {ps_literal(ad_guid)} -TargetPath {ps_literal(parent)}; then "
        f"Start-ADSyncSyncCycle -PolicyType Delta: it hard-matches {original_upn}.",
    )
    return replace(call, steps=steps)


def keep_advice(row: Mapping[str, Any], ev: dict[str, Any]) -> str:
    """Which of two cloud accounts of one person to keep, when the run can tell: the older one
    holds the mailbox and history (the other was created by sync or by hand later)."""
    matched = f"{ev.get('matched_cloud_upn')} (id {ev.get('matched_cloud_id')})"
    other = f"{row.get('cloud_upn')} (id {row.get('cloud_id')})"
    matched_created, other_created = ev.get("matched_created"), ev.get("other_created")
    if not matched_created or not other_created or matched_created == other_created:
        return (
            f"the run cannot tell which of {matched} and {other} to keep (creation dates "
            "unknown): compare mailbox, licences and last sign-in, then merge by hand"
        )
    if str(other_created) < str(matched_created):
        return (
            f"keep {other}, created {other_created}, before the synced account {matched} "
            f"({matched_created}): take the AD user out of scope, purge {matched}, set the "
            f"anchor {row.get('anchor')} on {other}, bring the AD user back"
        )
    return (
        f"keep the synced account {matched}, created {matched_created}, before {other} "
        f"({other_created}): move what {other} holds (mailbox, licences) and delete it "
        f"(Remove-MgUser -UserId '{row.get('cloud_id')}')"
    )


def parent_dn(dn: str) -> str | None:
    """The DN of the container of `dn` (a comma escaped with a backslash is no separator)."""
    return split_first_rdn(dn)[1][1:].strip() or None


def _roles(row: Mapping[str, Any], ev: dict[str, Any], o: PlanOptions) -> Call:
    if not o.allow_role_changes:
        raise NotAutomatic(
            "admin role changes are off ([remediation] allow_role_changes = false): remove the "
            "role assignment/eligibility by hand, let the match happen "
            "(Start-ADSyncSyncCycle -PolicyType Delta), then add it back"
        )
    return _call(
        row,
        Action.roles_detour,
        "take the privileged roles off for the match, then put them back",
        o,
        UserId=row.get("cloud_id"),
        Upn=row.get("cloud_upn"),
        Anchor=row.get("anchor"),
        Mode="hard" if row.get("code") == "hard-match-blocked" else "soft",
        AdUser=row.get("ad_dn"),
    )


def _block_sign_in(row: Mapping[str, Any], ev: dict[str, Any], o: PlanOptions) -> Call:
    if ev.get("ad_enabled") is not False or ev.get("cloud_account_enabled") is not True:
        raise NotAutomatic("the cloud account is not one that signs in while AD says disabled")
    return _call(
        row,
        Action.block_sign_in,
        "block sign-in of the cloud account of a disabled AD user",
        o,
        UserId=row.get("cloud_id"),
        Upn=row.get("cloud_upn"),
        AdObjectGuid=row.get("ad_object_guid"),
        AdUser=row.get("ad_dn"),
    )


def _clear_object_id(row: Mapping[str, Any], ev: dict[str, Any], o: PlanOptions) -> Call:
    return _call(
        row,
        Action.clear_onprem_object_id,
        "clear onPremisesObjectIdentifier so Entra accepts the hard match",
        o,
        UserId=row.get("cloud_id"),
        Upn=row.get("cloud_upn"),
        ExpectedObjectIdentifier=ev.get("on_prem_object_id"),
        AdUser=row.get("ad_dn"),
    )


def _ad_set(row: Mapping[str, Any], ev: dict[str, Any], o: PlanOptions) -> Call:
    attribute = valid_ad_attribute(row.get("attribute"))  # named in the title
    proposed = row.get("proposed_value")
    if proposed is None:
        raise NotAutomatic("no proposed value")
    if attribute == "userPrincipalName":
        valid_upn(proposed)
    return _call(
        row,
        Action.ad_set_attribute,
        f"set {attribute} of the AD user to the proposed value",
        o,
        ObjectGuid=row.get("ad_object_guid"),
        Dn=row.get("ad_dn"),
        Attribute=attribute,
        Current=row.get("value"),
        Proposed=proposed,
    )


Builder = Callable[[Mapping[str, Any], dict[str, Any], PlanOptions], Call]
BUILDERS: dict[str, Builder] = {
    Action.restore_deleted_holder: _restore,
    Action.purge_deleted_holder: _purge,
    Action.set_anchor: _set_anchor,
    Action.fix_anchor_encoding: _fix_encoding,
    Action.clear_anchor: _clear_anchor,
    Action.merge_duplicate_cloud: _merge,
    Action.roles_detour: _roles,
    Action.clear_onprem_object_id: _clear_object_id,
    Action.ad_set_attribute: _ad_set,
    Action.block_sign_in: _block_sign_in,
}
