"""remediation.ps1: the findings of a run as a reviewable PowerShell script.

The script is a *view* of the findings, like the reports: one call per remediable finding (its
fingerprint and code in a comment above it), one function per action, and a commented-out,
clearly marked manual step for every finding that has no safe automatic fix or whose values fail
validation. The PowerShell itself (checks, changes, log, undo) lives in
report_templates/remediation/: static PowerShell for the runtime and -Undo, one small template per
action, and main.ps1.j2 that puts them together; this module decides which call each finding gets
and with which values.

Injection-proofing: a value from the directory enters the script only through the template's
``ps_literal`` filter (a verbatim literal with every quote character doubled, see
audit/powershell.py), or as comment text through ``ps_comment``. The Jinja environment's
``finalize`` refuses any other value, so a template edit that prints a raw value fails loudly.
Each action's parameters are declared once, in ACTIONS (ActionSpec.params): its function's
param(...) list in the script is written from the declaration, and every call, the plan's and
hardmatch's, passes each value through the parameter's check. Identifiers the script writes
(anchors, object ids, UPNs, AD attribute names) are checked strictly; a value that fails becomes
a manual step, never code.
"""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import polars as pl

from audit.anchor import GUID_ANCHOR_ATTRIBUTES
from audit.config import DEFAULT_ANCHOR_ATTRIBUTE, Settings
from audit.model import Action, Tenant
from audit.powershell import (
    AD_WRITABLE_ATTRIBUTES,
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
from audit.sources.scope import split_first_rdn
from audit.templates import templates_dir

# report_templates/remediation/: the main template, the static PowerShell it inserts verbatim
# (runtime.ps1, roles.ps1, undo.ps1: no Jinja syntax, linted as PowerShell by the tests) and one
# template per action (actions/<action id>.ps1.j2).
TEMPLATE_DIR = "remediation"
TEMPLATE = f"{TEMPLATE_DIR}/main.ps1.j2"
SCRIPT_NAME = "remediation.ps1"
CLOUD, ON_PREMISES = "cloud", "on-premises"

GRAPH_MODULES = (
    "Microsoft.Graph.Authentication",
    "Microsoft.Graph.Users",
    "Microsoft.Graph.Identity.DirectoryManagement",
)
ROLES_MODULE = "Microsoft.Graph.Identity.Governance"

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
_HARDENING_READS = (
    "User.Read.All",
    "RoleManagement.Read.Directory",
    "RoleAssignmentSchedule.Read.Directory",
    "RoleEligibilitySchedule.Read.Directory",
)
_ANCHOR_WRITE = ("User.ReadUpdate.All", "Domain.Read.All")
_ROLE_WRITES = (
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
_PRIVILEGED_TARGET = (
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


# --- the parameters of an action's function -----------------------------------------------------

# A parameter's check: the value as the caller has it (a finding's column, a hardmatch user's
# field) -> the value the call writes; raises UnsafeValue for one that may not be written.
Check = Callable[[Any, "PlanOptions"], str | bool | None]


def _guid(what: str) -> Check:
    def check(value: Any, _options: PlanOptions) -> str:
        return valid_guid(value, what)

    return check


def _text(what: str) -> Check:
    """Any text a verbatim literal can hold; None is written as $null."""

    def check(value: Any, _options: PlanOptions) -> str | None:
        return valid_text(value, what)

    return check


def _required(what: str) -> Check:
    def check(value: Any, _options: PlanOptions) -> str:
        checked = valid_text(value, what)
        if checked is None:
            raise UnsafeValue(f"{what} is empty")
        return checked

    return check


def _anchor(value: Any, options: PlanOptions) -> str:
    """An anchor the call writes into the directory: stricter than text (see valid_anchor)."""
    return valid_anchor(value, text_anchors=options.text_anchors)


def _ad_attribute(value: Any, _options: PlanOptions) -> str:
    return valid_ad_attribute(value)


def _flag(value: Any, _options: PlanOptions) -> bool:
    if not isinstance(value, bool):
        raise UnsafeValue(f"not true or false: {type(value).__name__}")
    return value


@dataclass(frozen=True)
class Param:
    """One parameter of an action's function, declared once: the param(...) list of the function
    in the script is written from it, and every call (remediation plan or hardmatch) passes its
    value through `check` (and `choices`). A value that fails makes the finding a manual step."""

    name: str
    check: Check = field(compare=False)
    ps_type: str = "string"
    default: str | bool | None = None  # the function's default ('' / $false); None: none
    choices: tuple[str, ...] = ()  # [ValidateSet(...)] in the script, enforced here too
    allow_empty: bool = False  # [AllowEmptyString()] in the script
    from_plan: bool = False  # set once the plan is complete (link_role_detours), not by callers

    def validate(self, value: Any, options: PlanOptions) -> str | bool | None:
        checked = self.check(value, options)
        if self.choices and checked not in self.choices:
            raise UnsafeValue(f"{self.name} is none of {', '.join(self.choices)}")
        return checked

    def declaration(self) -> str:
        """The parameter as the function's param(...) list declares it."""
        out = ""
        if self.choices:
            out += "[ValidateSet(" + ", ".join(ps_literal(c) for c in self.choices) + ")]"
        if self.allow_empty:
            out += "[AllowEmptyString()]"
        out += f"[{identifier(self.ps_type)}]${identifier(self.name)}"
        if self.default is not None:
            out += f" = {ps_literal(self.default)}"
        return out


# Every function starts with these two: the finding (or hardmatch pair) the call is for.
COMMON_PARAMS = (Param("Fingerprint", _required("fingerprint")), Param("Code", _required("code")))
# Parameters several actions share.
_USER_ID = Param("UserId", _guid("cloud user id"))
_UPN = Param("Upn", _text("cloud user's UPN"))
_AD_USER = Param("AdUser", _text("AD user's DN"))
_ANCHOR_WRITTEN = Param("Anchor", _anchor)  # the action writes it into the directory
_ANCHOR_SEEN = Param("Anchor", _required("anchor"))  # compared and shown, never written
_EXPECTED_IMMUTABLE_ID = Param("ExpectedImmutableId", _required("current immutableId"))
_EXPECTED_IF_ANY = Param("ExpectedImmutableId", _text("current immutableId"), default="")
# Whether a roles detour for the same user follows later in the script (link_role_detours).
ROLES_DETOUR_FOLLOWS = Param("RolesDetourFollows", _flag, "bool", default=False, from_plan=True)


@dataclass(frozen=True)
class ActionSpec:
    """What one action id does in the script: the catalogue the tests and docs refer to."""

    action: Action
    function: str
    phase: int  # order in the script: holders first, then anchors, merges, role detours
    section: str
    summary: str
    checks: tuple[str, ...]  # cmdlets of the live precondition check
    changes: tuple[str, ...]  # cmdlets that change the directory, in the order they run
    undo: str
    scopes: tuple[str, ...] = ()  # delegated Graph permissions (PERMISSIONS keys)
    undo_scopes: tuple[str, ...] = ()  # what -Undo of its logged changes needs
    role: str = ""  # the least-privileged Entra role (or AD right) the action needs
    documented: str = ""  # the documented path the action follows
    references: tuple[str, ...] = ()
    # the parameters of its function after COMMON_PARAMS, in order
    params: tuple[Param, ...] = ()
    # the parameter naming the cloud user whose anchor it writes, or whose roles it takes off
    user_param: str = ""

    @property
    def template(self) -> str:
        """Its function in the script: the template that defines it."""
        return f"{TEMPLATE_DIR}/actions/{self.action}.ps1.j2"

    @property
    def parameters(self) -> tuple[Param, ...]:
        return (*COMMON_PARAMS, *self.params)

    @property
    def ps_parameters(self) -> PsCode:
        """What goes between the parentheses of its function's param(...)."""
        return PsCode(", ".join(p.declaration() for p in self.parameters))

    def call(
        self,
        *,
        fingerprint: str,
        code: str,
        title: str,
        values: Mapping[str, Any],
        options: PlanOptions,
        notes: tuple[str, ...] = (),
        steps: tuple[str, ...] = (),
    ) -> Call:
        """The call of its function for one finding (or hardmatch pair): every parameter the caller
        gives (all but those set from the plan), each value through its check. Raises UnsafeValue
        for a value that may not be written."""
        wanted = [p.name for p in self.params if not p.from_plan]
        if sorted(values) != sorted(wanted):
            raise TypeError(f"{self.action} takes {', '.join(wanted)}; got {', '.join(values)}")
        given = {"Fingerprint": fingerprint, "Code": code, **values}
        return Call(
            action=self.action,
            fingerprint=fingerprint,
            code=code,
            title=title,
            args=tuple(
                (p.name, p.validate(given[p.name], options))
                for p in self.parameters
                if not p.from_plan
            ),
            notes=notes,
            steps=steps,
        )


ACTIONS: dict[str, ActionSpec] = {
    spec.action: spec
    for spec in (
        ActionSpec(
            Action.restore_deleted_holder,
            "Invoke-SaRestoreDeletedHolder",
            10,
            CLOUD,
            "restore the soft-deleted holder of the anchor",
            ("Invoke-MgGraphRequest",),
            ("Restore-MgDirectoryDeletedItem",),
            "Remove-MgUser (back to deleted items)",
            scopes=("User.DeleteRestore.All", "User.Read.All"),
            undo_scopes=("User.ReadWrite.All",),
            role=USER_ADMIN,
            documented="restore the deleted user so the AD user matches it again",
            references=(REF_RESTORE,),
            params=(
                Param("DeletedId", _guid("deleted user id")),
                Param("DeletedUpn", _text("deleted user's UPN")),
                _ANCHOR_SEEN,
                _AD_USER,
            ),
        ),
        ActionSpec(
            Action.purge_deleted_holder,
            "Invoke-SaPurgeDeletedHolder",
            10,
            CLOUD,
            "permanently delete the soft-deleted holder of the anchor",
            ("Invoke-MgGraphRequest",),
            ("Remove-MgDirectoryDeletedItem",),
            "none (a purge is final)",
            scopes=("User.DeleteRestore.All", "User.Read.All"),
            role=USER_ADMIN,
            documented="hard-delete the deleted holder so the waiting account can match",
            references=(REF_DELETED_ITEMS,),
            params=(
                Param("DeletedId", _guid("deleted user id")),
                Param("DeletedUpn", _text("deleted user's UPN")),
                _ANCHOR_SEEN,
                _AD_USER,
                Param("WaitingId", _guid("waiting cloud user id"), default=""),
            ),
        ),
        ActionSpec(
            Action.clear_onprem_object_id,
            "Invoke-SaClearOnPremObjectId",
            20,
            CLOUD,
            "clear onPremisesObjectIdentifier (2026 hard-match hardening recovery)",
            ("Invoke-MgGraphRequest",),
            ("Invoke-MgGraphRequest",),
            "none (sync maintains the attribute)",
            scopes=("User-OnPremisesSyncBehavior.ReadWrite.All", "User.Read.All"),
            role=HYBRID_ADMIN,
            documented=(
                "validate the intended source object, clear onPremisesObjectIdentifier to null, "
                "rerun synchronization"
            ),
            references=(REF_EXISTING_TENANT + "#hard-match-security-protections",),
            params=(
                _USER_ID,
                _UPN,
                Param("ExpectedObjectIdentifier", _guid("onPremisesObjectIdentifier")),
                _AD_USER,
            ),
        ),
        ActionSpec(
            Action.clear_anchor,
            "Invoke-SaClearAnchor",
            30,
            CLOUD,
            "clear a wrong immutableId, with read-back (never on a federated UPN)",
            ("Invoke-MgGraphRequest", "Get-MgDomain"),
            ("Invoke-MgGraphRequest",),
            "immutableId set back",
            scopes=_ANCHOR_WRITE,
            undo_scopes=_ANCHOR_WRITE,
            role=USER_ADMIN + _PRIVILEGED_TARGET,
            documented=(
                "PATCH onPremisesImmutableId to null on a cloud-only user in a managed domain"
            ),
            references=(REF_USER_UPDATE,),
            params=(_USER_ID, _UPN, _EXPECTED_IMMUTABLE_ID),
        ),
        ActionSpec(
            Action.fix_anchor_encoding,
            "Invoke-SaFixAnchorEncoding",
            40,
            CLOUD,
            "replace a wrongly encoded immutableId with the right value",
            ("Invoke-MgGraphRequest", "Get-MgDomain"),
            ("Update-MgUser",),
            "immutableId set back",
            scopes=(*_ANCHOR_WRITE, *_HARDENING_READS),
            undo_scopes=_ANCHOR_WRITE,
            role=ANCHOR_ADMIN + _PRIVILEGED_TARGET,
            documented=(
                "set onPremisesImmutableId to the value Entra Connect sends (federated UPN: "
                "through the onmicrosoft.com domain and back)"
            ),
            references=(REF_USER_UPDATE, REF_EXISTING_TENANT),
            params=(
                _USER_ID,
                _UPN,
                _EXPECTED_IMMUTABLE_ID,
                _ANCHOR_WRITTEN,
                _AD_USER,
                ROLES_DETOUR_FOLLOWS,
            ),
            user_param="UserId",
        ),
        ActionSpec(
            Action.set_anchor,
            "Invoke-SaSetAnchor",
            50,
            CLOUD,
            "set the anchor on a cloud-only user (hard match)",
            ("Invoke-MgGraphRequest", "Get-MgDomain"),
            ("Update-MgUser",),
            "immutableId set back",
            scopes=(*_ANCHOR_WRITE, *_HARDENING_READS),
            undo_scopes=_ANCHOR_WRITE,
            role=ANCHOR_ADMIN + _PRIVILEGED_TARGET,
            documented=(
                "hard match: set onPremisesImmutableId on the cloud-only user, then sync; the "
                "2026 hardening is re-checked first"
            ),
            references=(REF_EXISTING_TENANT, REF_USER_UPDATE),
            params=(
                _USER_ID,
                _UPN,
                _ANCHOR_WRITTEN,
                _EXPECTED_IF_ANY,
                _AD_USER,
                ROLES_DETOUR_FOLLOWS,
            ),
            user_param="UserId",
        ),
        ActionSpec(
            Action.merge_duplicate_cloud,
            "Invoke-SaMergeDuplicateCloud",
            60,
            CLOUD,
            "after the AD user left sync scope: purge the soft-deleted twin, anchor the "
            "original account",
            ("Invoke-MgGraphRequest",),
            ("Remove-MgDirectoryDeletedItem", "Update-MgUser"),
            "immutableId of the original set back (the twin's purge is final)",
            scopes=(*_ANCHOR_WRITE, "User.DeleteRestore.All", *_HARDENING_READS),
            undo_scopes=_ANCHOR_WRITE,
            role=ANCHOR_ADMIN + "; on-premises: move the AD user between OUs",
            documented=(
                "take the AD user out of sync scope, let sync soft-delete the twin, purge it, "
                "set the anchor on the original account, bring the AD user back"
            ),
            references=(REF_DUPLICATE, REF_DELETED_ITEMS, REF_EXISTING_TENANT, REF_MOVE_ADOBJECT),
            params=(
                Param("TwinId", _guid("twin cloud user id")),
                Param("TwinUpn", _text("twin's UPN")),
                Param("OriginalId", _guid("original cloud user id")),
                Param("OriginalUpn", _text("original account's UPN")),
                _ANCHOR_WRITTEN,
                _EXPECTED_IF_ANY,
                Param("AdUser", _required("AD user's DN")),  # its OU is in the manual steps
                ROLES_DETOUR_FOLLOWS,
            ),
            user_param="OriginalId",
        ),
        ActionSpec(
            Action.roles_detour,
            "Invoke-SaRolesDetour",
            70,
            CLOUD,
            "take the admin roles off around the match, then put them back with their "
            "original schedules",
            ("Invoke-MgGraphRequest",),
            (
                "New-MgRoleManagementDirectoryRoleEligibilityScheduleRequest",
                "New-MgRoleManagementDirectoryRoleAssignmentScheduleRequest",
                "Start-ADSyncSyncCycle",
                "New-MgRoleManagementDirectoryRoleEligibilityScheduleRequest",
                "New-MgRoleManagementDirectoryRoleAssignmentScheduleRequest",
            ),
            "roles put back with their schedules (the function does it itself, in a finally block)",
            scopes=_ROLE_WRITES,
            undo_scopes=_ROLE_WRITES,
            role=ROLE_ADMIN,
            documented=(
                "temporarily remove the role or eligibility, complete the match, then reassign it"
            ),
            references=(REF_EXISTING_TENANT + "#hard-match-security-protections", REF_PIM_REQUESTS),
            params=(
                _USER_ID,
                _UPN,
                _ANCHOR_SEEN,
                Param("Mode", _required("match mode"), choices=("hard", "soft")),
                _AD_USER,
            ),
            user_param="UserId",
        ),
        ActionSpec(
            Action.block_sign_in,
            "Invoke-SaBlockSignIn",
            80,
            CLOUD,
            "block sign-in of a cloud user whose AD account is disabled",
            ("Invoke-MgGraphRequest",),
            ("Update-MgUser",),
            "accountEnabled set back to true",
            scopes=("User.EnableDisableAccount.All", "User.Read.All"),
            undo_scopes=("User.EnableDisableAccount.All", "User.Read.All"),
            role=USER_ADMIN + _PRIVILEGED_TARGET,
            documented="disable the user in Microsoft Entra ID (Update-MgUser -AccountEnabled)",
            references=(REF_REVOKE, REF_USER_UPDATE),
            params=(
                _USER_ID,
                _UPN,
                Param("AdObjectGuid", _guid("AD objectGUID"), default=""),
                _AD_USER,
            ),
        ),
        ActionSpec(
            Action.ad_set_attribute,
            "Invoke-SaAdSetAttribute",
            100,
            ON_PREMISES,
            "set an AD attribute to the IdFix-style proposed value",
            ("Get-ADUser", "Get-ADObject"),
            ("Set-ADUser",),
            "Set-ADUser back to the old value",
            role="write access to the AD user's attributes (no Graph permission)",
            documented="Set-ADUser -Replace (proxyAddresses: -Remove the old, -Add the new)",
            references=(REF_SET_ADUSER,),
            params=(
                Param("ObjectGuid", _guid("AD objectGUID")),
                Param("Dn", _text("AD user's DN")),
                Param("Attribute", _ad_attribute, choices=AD_WRITABLE_ATTRIBUTES),
                Param("Current", _text("current value"), default="", allow_empty=True),
                Param("Proposed", _text("proposed value")),
            ),
        ),
    )
}


def least_scopes(actions: Iterable[str], *, undo: bool = False) -> list[str]:
    """The delegated permissions the given actions (or the undo of their logged changes) need,
    in catalogue order, without one that a broader permission in the same list grants."""
    wanted = {
        scope
        for action in actions
        for scope in (ACTIONS[action].undo_scopes if undo else ACTIONS[action].scopes)
    }
    return [
        name
        for name, permission in PERMISSIONS.items()
        if name in wanted and not wanted.intersection(permission.implied_by)
    ]


@dataclass(frozen=True)
class Call:
    """One generated call: `action`'s function with these parameters, for one finding. Made by
    ActionSpec.call, which checks every value against the action's declared parameters."""

    action: Action
    fingerprint: str
    code: str
    title: str
    args: tuple[tuple[str, str | bool | None], ...]
    notes: tuple[str, ...] = ()
    # reviewed manual steps around the call (the on-premises half of a documented path), with
    # the run's values in them; comments only
    steps: tuple[str, ...] = ()

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
    no_action: Mapping[str, int]
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
            Counter(plan.no_action),
            Counter(code for _fp, code in plan.waived),
            Counter((causes.get(c.fingerprint, c.code), c.action) for c in plan.calls),
            Counter(causes.get(m.fingerprint, m.code) for m in plan.manual),
        )

    @classmethod
    def _build(
        cls,
        calls: Counter[tuple[str, str]],
        manual: Counter[str],
        no_action: Counter[str],
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
            dict(no_action),
            dict(waived),
            nest(cause_calls),
            dict(cause_manual),
        )


def summarize_findings(findings: pl.DataFrame, options: PlanOptions | None = None) -> PlanSummary:
    """The PlanSummary of plan_findings(findings, options), without keeping the plan."""
    options = options or PlanOptions()
    calls: Counter[tuple[str, str]] = Counter()
    manual: Counter[str] = Counter()
    no_action: Counter[str] = Counter()
    waived: Counter[str] = Counter()
    cause_calls: Counter[tuple[str, str]] = Counter()
    cause_manual: Counter[str] = Counter()
    for row, item in _planned_rows(findings, options):
        code = row["code"]
        cause = row.get("cause") or code
        if item is WAIVED:
            waived[code] += 1
        elif item is None:
            no_action[code] += 1
        elif isinstance(item, Call):
            calls[(code, item.action)] += 1
            cause_calls[(cause, item.action)] += 1
        else:
            manual[code] += 1
            cause_manual[cause] += 1
    return PlanSummary._build(calls, manual, no_action, waived, cause_calls, cause_manual)


@dataclass(frozen=True)
class PlanOptions:
    allow_role_changes: bool = False
    text_anchors: bool = False  # a non-GUID anchor attribute is configured (employeeID...)
    federated_domains: frozenset[str] = frozenset()  # from the run's domains export
    # per AD source: OUs configured as excluded from sync, where a user can be parked out of
    # scope (the duplicate-account path)
    excluded_ous: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


class NotAutomatic(Exception):
    """The finding names an action, but this instance of it is not safe to automate."""


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
    builder = _BUILDERS.get(action)
    if builder is None:
        reason = (
            "no safe automatic fix: decide and act by hand"
            if action == Action.manual
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
    from audit.rules import rule_by_code

    rule = rule_by_code(code)
    return rule.meta if rule else None


def _evidence(row: Mapping[str, Any]) -> dict[str, Any]:
    try:
        data = json.loads(row.get("evidence") or "{}")
    except (TypeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


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


_Builder = Callable[[Mapping[str, Any], dict[str, Any], PlanOptions], Call]
_BUILDERS: dict[str, _Builder] = {
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


# --- rendering ------------------------------------------------------------------------------------


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
        loader=jinja2.FileSystemLoader(templates_dir()),
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
    env.globals["ps_static"] = static_part
    return env


@cache
def static_part(name: str) -> PsCode:
    """A static PowerShell part of the script (report_templates/remediation/<name>), inserted as
    it is: the template never interprets it. Without its last line break, which the template
    line that inserts it supplies."""
    path = templates_dir() / TEMPLATE_DIR / name
    return PsCode(path.read_text(encoding="ascii").removesuffix("\n"))


@dataclass(frozen=True)
class ScriptHeader:
    run_id: str
    tenant: str
    taken_at: str
    generated: str
    kind: str = "remediation"  # or "hardmatch"
    explanation: tuple[str, ...] = ()
    tenant_id: str | None = None  # the script connects to this tenant only


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
        for a in sorted(counts, key=lambda a: (ACTIONS[a].phase, a))
    ]
    run_id = (
        header.run_id if literal_problem(header.run_id) is None else comment_text(header.run_id)
    )
    try:
        tenant_id = valid_guid(header.tenant_id, "tenant id") if header.tenant_id else ""
    except UnsafeValue:
        tenant_id = ""  # the script then asks for -TenantId instead of trusting the value
    template = ps_environment().get_template(TEMPLATE)
    return template.render(
        header=header,
        run_id=run_id,
        plan=plan,
        fixes=fixes,
        manual=plan.ordered_manual(),
        cloud_calls=plan.ordered_calls(CLOUD),
        onprem_calls=plan.ordered_calls(ON_PREMISES),
        action_specs=[spec for spec in ACTIONS.values() if spec.action in counts],
        scopes=[PERMISSIONS[name] for name in plan.scopes],
        undo_scopes=plan.undo_scopes,
        roles=plan.roles,
        uses_roles=plan.uses_roles,
        tenant_id=tenant_id,
        modules=plan.modules,
        no_action=sorted(plan.no_action.items()),
    )


# --- wiring ---------------------------------------------------------------------------------------


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
    plan: Plan | None = None,
) -> str:
    if plan is None:
        plan = plan_findings(findings, options_from_settings(settings, tenant))
    header = ScriptHeader(
        run_id=run_id,
        tenant=tenant_label(tenant),
        taken_at=taken_at or "unknown",
        generated=generated,
        tenant_id=tenant.tenant_id,
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
    plan: Plan | None = None,
) -> Path:
    """Write <run>/remediation.ps1 atomically, as pure ASCII with CRLF: Windows PowerShell 5.1
    reads a file without BOM in the ANSI code page (cp1252), where UTF-8 bytes can turn into
    quote characters; ASCII reads the same everywhere (non-ASCII values are [char] casts)."""
    from audit.store import write_file_atomically

    text = remediation_script(
        findings,
        settings,
        tenant=tenant,
        run_id=run_id,
        taken_at=taken_at,
        generated=generated,
        plan=plan,
    )
    path = run_dir / SCRIPT_NAME
    write_file_atomically(path, lambda p: p.write_text(text, encoding="ascii", newline="\r\n"))
    return path


def markdown_tables() -> str:
    """The action and permission catalogues as the Markdown tables in docs/ARCHITECTURE.md (a
    test keeps the two equal)."""
    lines = [
        "| action | Graph permissions (delegated) | Entra role | documented path | source |",
        "|---|---|---|---|---|",
    ]
    for spec in sorted(ACTIONS.values(), key=lambda s: (s.phase, s.action)):
        scopes = ", ".join(least_scopes([spec.action])) or "none (ActiveDirectory module)"
        undo = least_scopes([spec.action], undo=True)
        if undo and undo != least_scopes([spec.action]):
            scopes += f"; -Undo: {', '.join(undo)}"
        sources = " ".join(f"<{ref}>" for ref in spec.references)
        lines.append(
            f"| `{spec.action}` | {scopes} | {spec.role} | {spec.documented} | {sources} |"
        )
    lines += [
        "",
        "| permission | what the script does with it | least-privileged per |",
        "|---|---|---|",
    ]
    for permission in PERMISSIONS.values():
        lines.append(f"| `{permission.name}` | {permission.used_for} | <{permission.reference}> |")
    return "\n".join(lines) + "\n"
