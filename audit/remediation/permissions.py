"""What the remediation actions ask for, and where that is documented: the least-privileged
delegated Microsoft Graph permission of every call the script makes, the Entra role each action
needs, and the reference pages the action catalogue (actions.py) cites. Declarations only."""

from __future__ import annotations

from dataclasses import dataclass

_GRAPH_DOCS = "https://learn.microsoft.com/graph/api/"


@dataclass(frozen=True)
class Permission:
    """A delegated Microsoft Graph permission the script asks for, and the page that names it as
    the least-privileged one for the call."""

    name: str
    used_for: str
    reference: str
    # broader permissions that grant this one: with one of them in the script it is redundant
    implied_by: tuple[str, ...] = ()


# The least-privileged delegated permission of every Graph call the script makes, each checked
# against the call's permissions table (see docs/ARCHITECTURE.md, "Remediation actions").
PERMISSIONS: dict[str, Permission] = {
    p.name: p
    for p in (
        Permission(
            "User.Read.All",
            "read users by id, UPN and onPremisesImmutableId, the deleted users, and the beta "
            "onPremisesObjectIdentifier",
            _GRAPH_DOCS + "directory-deleteditems-list?view=graph-rest-1.0",
            # not implied by User.ReadUpdate.All: the deleted-items list names User.Read.All,
            # and whether ReadUpdate covers it is not documented
            implied_by=("User.ReadWrite.All",),
        ),
        Permission(
            "User.ReadUpdate.All",
            "write onPremisesImmutableId and userPrincipalName (least privileged for "
            "PATCH /users/{id} since 2026; User.ReadWrite.All is the higher one)",
            _GRAPH_DOCS + "user-update?view=graph-rest-1.0",
            implied_by=("User.ReadWrite.All",),
        ),
        Permission(
            "User.ReadWrite.All",
            "-Undo of a restore only: delete the restored user again (DELETE /users/{id} names "
            "no lower permission)",
            _GRAPH_DOCS + "user-delete?view=graph-rest-1.0",
        ),
        Permission(
            "Domain.Read.All",
            "read a domain's authenticationType (federated or managed) and the initial domain",
            _GRAPH_DOCS + "domain-get?view=graph-rest-1.0",
        ),
        Permission(
            "User.DeleteRestore.All",
            "restore and permanently delete soft-deleted users",
            _GRAPH_DOCS + "directory-deleteditems-delete?view=graph-rest-1.0",
        ),
        Permission(
            "User-OnPremisesSyncBehavior.ReadWrite.All",
            "clear onPremisesObjectIdentifier (hard-match hardening recovery)",
            "https://learn.microsoft.com/entra/identity/hybrid/connect/"
            "how-to-connect-install-existing-tenant#hard-match-security-protections",
            # tshoot-clear-on-premises-attributes names it "specifically for the
            # onPremisesObjectIdentifier attribute"; Graph documents it only for
            # onPremisesSyncBehavior, so the Entra pages are the reference.
        ),
        Permission(
            "User.EnableDisableAccount.All",
            "block sign-in (accountEnabled = false) and unblock on undo",
            _GRAPH_DOCS + "user-update?view=graph-rest-1.0",
        ),
        Permission(
            "RoleManagement.Read.Directory",
            "read role definitions (which roles are privileged)",
            _GRAPH_DOCS + "rbacapplication-list-roledefinitions?view=graph-rest-1.0",
        ),
        Permission(
            "RoleAssignmentSchedule.Read.Directory",
            "read active role assignments with their schedules (roleAssignmentScheduleInstances)",
            _GRAPH_DOCS
            + "rbacapplication-list-roleassignmentscheduleinstances?view=graph-rest-1.0",
            implied_by=("RoleAssignmentSchedule.ReadWrite.Directory",),
        ),
        Permission(
            "RoleEligibilitySchedule.Read.Directory",
            "read role eligibilities with their schedules (roleEligibilityScheduleInstances)",
            _GRAPH_DOCS
            + "rbacapplication-list-roleeligibilityscheduleinstances?view=graph-rest-1.0",
            implied_by=("RoleEligibilitySchedule.ReadWrite.Directory",),
        ),
        Permission(
            "RoleAssignmentSchedule.ReadWrite.Directory",
            "remove and restore active role assignments through roleAssignmentScheduleRequests",
            _GRAPH_DOCS + "rbacapplication-post-roleassignmentschedulerequests?view=graph-rest-1.0",
        ),
        Permission(
            "RoleEligibilitySchedule.ReadWrite.Directory",
            "remove and restore role eligibilities through roleEligibilityScheduleRequests",
            _GRAPH_DOCS
            + "rbacapplication-post-roleeligibilityschedulerequests?view=graph-rest-1.0",
        ),
    )
}

# The hard-match hardening re-check (onPremisesObjectIdentifier, privileged roles assigned or
# eligible) runs before every action that sets or fixes an anchor.
HARDENING_READS = (
    "User.Read.All",
    "RoleManagement.Read.Directory",
    "RoleAssignmentSchedule.Read.Directory",
    "RoleEligibilitySchedule.Read.Directory",
)
ANCHOR_WRITE = ("User.ReadUpdate.All", "Domain.Read.All")
ROLE_WRITES = (
    "User.Read.All",
    "RoleManagement.Read.Directory",
    "RoleAssignmentSchedule.ReadWrite.Directory",
    "RoleEligibilitySchedule.ReadWrite.Directory",
)

USER_ADMIN = "User Administrator"
# Reading role assignment/eligibility instances is open to Global Reader, Security Reader and up,
# not to User Administrator: the hardening re-check needs one of them beside it.
ANCHOR_ADMIN = "User Administrator + Global Reader"
HYBRID_ADMIN = "Hybrid Identity Administrator (or Global Administrator)"
ROLE_ADMIN = "Privileged Role Administrator"
PRIVILEGED_TARGET = (
    "; a target that holds an admin role needs Privileged Authentication Administrator"
)

REF_EXISTING_TENANT = (
    "https://learn.microsoft.com/entra/identity/hybrid/connect/"
    "how-to-connect-install-existing-tenant"
)
REF_DELETED_ITEMS = _GRAPH_DOCS + "directory-deleteditems-delete?view=graph-rest-1.0"
REF_RESTORE = _GRAPH_DOCS + "directory-deleteditems-restore?view=graph-rest-1.0"
REF_USER_UPDATE = _GRAPH_DOCS + "user-update?view=graph-rest-1.0"
REF_REVOKE = "https://learn.microsoft.com/entra/identity/users/users-revoke-access"
REF_DUPLICATE = (
    "https://learn.microsoft.com/entra/identity/hybrid/connect/"
    "how-to-connect-syncservice-duplicate-attribute-resiliency"
)
REF_PIM_REQUESTS = (
    _GRAPH_DOCS + "rbacapplication-post-roleassignmentschedulerequests?view=graph-rest-1.0"
)
REF_SET_ADUSER = "https://learn.microsoft.com/powershell/module/activedirectory/set-aduser"
REF_MOVE_ADOBJECT = "https://learn.microsoft.com/powershell/module/activedirectory/move-adobject"
