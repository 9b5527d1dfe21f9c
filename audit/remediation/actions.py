"""The action catalogue: what each remediation action's function in the script does, what it
needs, and its parameters, declared once.

Each action's function's param(...) list in the script is written from its declaration
(ActionSpec.params), and every call, the plan's and hardmatch's, passes each value through the
parameter's check (ActionSpec.call -> Call). A value that fails raises UnsafeValue, which the
caller turns into a manual step, never code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from audit.model import Action
from audit.powershell import (
    AD_WRITABLE_ATTRIBUTES,
    PsCode,
    UnsafeValue,
    identifier,
    ps_literal,
    valid_ad_attribute,
    valid_anchor,
    valid_guid,
    valid_text,
)
from audit.remediation.permissions import (
    ANCHOR_ADMIN,
    ANCHOR_WRITE,
    HARDENING_READS,
    HYBRID_ADMIN,
    PERMISSIONS,
    PRIVILEGED_TARGET,
    REF_DELETED_ITEMS,
    REF_DUPLICATE,
    REF_EXISTING_TENANT,
    REF_MOVE_ADOBJECT,
    REF_PIM_REQUESTS,
    REF_RESTORE,
    REF_REVOKE,
    REF_SET_ADUSER,
    REF_USER_UPDATE,
    ROLE_ADMIN,
    ROLE_WRITES,
    USER_ADMIN,
)

# report_templates/remediation/: the main template, the static PowerShell it inserts verbatim
# (runtime.ps1, roles.ps1, undo.ps1: no Jinja syntax, linted as PowerShell by the tests) and one
# template per action (actions/<action id>.ps1.j2).
TEMPLATE_DIR = "remediation"
CLOUD, ON_PREMISES = "cloud", "on-premises"


@dataclass(frozen=True)
class PlanOptions:
    """What the run allows and knows, for the parameter checks (text_anchors) and the builders."""

    allow_role_changes: bool = False
    text_anchors: bool = False  # a non-GUID anchor attribute is configured (employeeID...)
    federated_domains: frozenset[str] = frozenset()  # from the run's domains export
    # per AD source: OUs configured as excluded from sync, where a user can be parked out of
    # scope (the duplicate-account path)
    excluded_ous: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


# --- the parameters of an action's function -----------------------------------------------------

# A parameter's check: the value as the caller has it (a finding's column, a hardmatch user's
# field) -> the value the call writes; raises UnsafeValue for one that may not be written.
Check = Callable[[Any, PlanOptions], str | bool | None]


class MissingValue(UnsafeValue):
    """A value the call needs is absent (not hostile, just not there)."""


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
            raise MissingValue(f"the finding has no {what}")
        return checked

    return check


def _anchor(value: Any, options: PlanOptions) -> str:
    """An anchor the call writes into the directory: stricter than text (see valid_anchor)."""
    if value is None:
        raise MissingValue("the finding has no anchor")
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
            scopes=ANCHOR_WRITE,
            undo_scopes=ANCHOR_WRITE,
            role=USER_ADMIN + PRIVILEGED_TARGET,
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
            scopes=(*ANCHOR_WRITE, *HARDENING_READS),
            undo_scopes=ANCHOR_WRITE,
            role=ANCHOR_ADMIN + PRIVILEGED_TARGET,
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
            scopes=(*ANCHOR_WRITE, *HARDENING_READS),
            undo_scopes=ANCHOR_WRITE,
            role=ANCHOR_ADMIN + PRIVILEGED_TARGET,
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
            scopes=(*ANCHOR_WRITE, "User.DeleteRestore.All", *HARDENING_READS),
            undo_scopes=ANCHOR_WRITE,
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
            scopes=ROLE_WRITES,
            undo_scopes=ROLE_WRITES,
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
            role=USER_ADMIN + PRIVILEGED_TARGET,
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
