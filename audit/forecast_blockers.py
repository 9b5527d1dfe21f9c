"""The blockers a forecast can meet: title, whether it decides NO-GO, and its fix (the
remediation.ps1 action or manual step that exists for it). The verdict lists them; a person's
row carries the same fix when it does not depend on the person (forecast_rows)."""

from __future__ import annotations

# blocker kind -> (title, decides NO-GO, the fix as one line). The commands named: Entra
# Connect's Enable-ADSyncExportDeletionThreshold (entra-docs
# how-to-connect-sync-feature-prevent-accidental-deletes.md), the ActiveDirectory module's
# Set-ADUser -Clear (learn.microsoft.com/powershell/module/activedirectory/set-aduser); the
# remediation.ps1 action ids are remediation.actions'.
BLOCKERS: dict[str, tuple[str, bool, str]] = {
    "deletion-threshold": (
        "The export stops: more deletions than the export-deletion threshold",
        True,
        "Stage the scope change in batches under the threshold, or raise it for this one export "
        "(Enable-ADSyncExportDeletionThreshold -DeletionThreshold <n> on the Entra Connect "
        "server; Cloud Sync: the job's accidental-deletes setting) and set it back after.",
    ),
    "wrong-person": (
        "An anchor links two different people",
        True,
        "Find whose cloud account it is and correct or clear its onPremisesImmutableId before "
        "the sync (anchor-held-by-other).",
    ),
    "duplicate-anchor": (
        "Two in-scope AD users send the same anchor",
        True,
        "Clear the copied mS-DS-ConsistencyGuid on the copy (Set-ADUser -Clear "
        "mS-DS-ConsistencyGuid) or take one of them out of scope.",
    ),
    "hard-match-refused": (
        "Hard match refused (2026 hardening or the tenant's takeover block)",
        False,
        "Clear onPremisesObjectIdentifier (clear-onprem-object-id), or take the privileged "
        "role off for the match and give it back (roles-detour).",
    ),
    "objectguid-anchored": (
        "The cloud account holds the objectGUID while sync sends mS-DS-ConsistencyGuid",
        False,
        "Set the cloud account's onPremisesImmutableId to the anchor sync sends (set-anchor).",
    ),
    "invalid-soft-match": (
        "The soft-match candidate already holds another immutableId (InvalidSoftMatch)",
        False,
        "Hard-match instead: set the right anchor on the account (set-anchor, or "
        "fix-anchor-encoding for a misencoded one).",
    ),
    "admin-role-conflict": (
        "Admin accounts are never soft-matched (Existing Admin Role Conflict)",
        False,
        "Take the directory roles off for the sync and give them back (roles-detour).",
    ),
    "object-type-mismatch": (
        "The address belongs to a group or contact (ObjectTypeMismatch)",
        False,
        "Remove the address from the group or contact, or change the user's primary SMTP.",
    ),
    "address-not-unique": (
        "An address is owned by a group or contact (AttributeValueMustBeUnique)",
        False,
        "Remove the address from the group or contact that owns it, or from the AD user.",
    ),
    "restore-collides": (
        "A restored soft-deleted user collides with a waiting cloud account",
        False,
        "Purge the soft-deleted user (purge-deleted-holder) so the waiting account is "
        "soft-matched, or restore it and retire the waiting one.",
    ),
    "duplicate-account": (
        "The person has a second cloud account that owns the UPN or address sync writes",
        False,
        "Merge the accounts: keep the synced one, move what matters from the original and "
        "delete it (merge-duplicate-cloud).",
    ),
    "contested-candidate": (
        "Two AD users soft-match the same cloud account: only one of them gets it",
        False,
        "Decide whose account it is: hard-match the right person (set-anchor) and give the "
        "other a different primary SMTP or UPN.",
    ),
    "quarantine": (
        "UPN or addresses quarantined: a second account, or a value another object owns "
        "(PropertyConflict)",
        False,
        "If the person already has that cloud account, hard-match it first (set-anchor); "
        "otherwise change the colliding address.",
    ),
    "unverified-upn-suffix": (
        "New users get the initial domain: their UPN suffix is not verified",
        False,
        "Verify the domain in the tenant, or change the UPN suffix (ad-set-attribute).",
    ),
}
