"""Microsoft Entra built-in directory roles: template id -> (display name, privileged).

Used when a role export does not say whether a role is privileged: Graph v1.0's
unifiedRoleDefinition has no isPrivileged (only beta has it), and an assignment names its role
by roleDefinitionId alone unless the export expanded roleDefinition.

Source: "Microsoft Entra built-in roles" (learn.microsoft.com/entra/identity/role-based-access-
control/permissions-reference), MicrosoftDocs/entra-docs
docs/identity/role-based-access-control/permissions-reference.md, ms.date 01/20/2026, commit
00fe95d60143bbf5f832cdd8bb74765b182c2d8f: the "All roles" table, 123 roles, 29 of them carrying
the PRIVILEGED label (the label Graph beta exposes as unifiedRoleDefinition.isPrivileged). For
built-in roles the role definition id equals the template id in every tenant.

A role missing here (newer than that page, or a custom role) is still a directory role, so it
still blocks a soft match; whether it is privileged is then unknown and the importer says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl

from audit.errors import InputError
from audit.model import CLOUD_USERS_SCHEMA, SourceReport, conform
from audit.sources.detect import bool_from_text
from audit.sources.entra import text_value
from audit.sources.graph_pages import lower_keys, pages

# The built-in table below as of this date, from
# https://learn.microsoft.com/entra/identity/role-based-access-control/permissions-reference
AS_OF = "2026-01-20"

# template id -> (display name, privileged)
BUILT_IN_ROLES: Mapping[str, tuple[str, bool]] = {
    "db506228-d27e-4b7d-95e5-295956d6615f": ("Agent ID Administrator", True),
    "adb2368d-a9be-41b5-8667-d96778e081b0": ("Agent ID Developer", False),
    "6b942400-691f-4bf0-9d12-d8a254a2baf5": ("Agent Registry Administrator", False),
    "d2562ede-74db-457e-a7b6-544e236ebb61": ("AI Administrator", False),
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3": ("Application Administrator", True),
    "cf1c38e5-3621-4004-a7cb-879624dced7c": ("Application Developer", True),
    "9c6df0f2-1e7c-4dc3-b195-66dfbd24aa8f": ("Attack Payload Author", False),
    "c430b396-e693-46cc-96f3-db01bf8bb62a": ("Attack Simulation Administrator", False),
    "58a13ea3-c632-46ae-9ee0-9c0d43cd7f3d": ("Attribute Assignment Administrator", False),
    "ffd52fa5-98dc-465c-991d-fc073eb59f8f": ("Attribute Assignment Reader", False),
    "8424c6f0-a189-499e-bbd0-26c1753c96d4": ("Attribute Definition Administrator", False),
    "1d336d2c-4ae8-42ef-9711-b3604ce3fc2c": ("Attribute Definition Reader", False),
    "5b784334-f94b-471a-a387-e7219fc49ca2": ("Attribute Log Administrator", False),
    "9c99539d-8186-4804-835f-fd51ef9e2dcd": ("Attribute Log Reader", False),
    "ecb2c6bf-0ab6-418e-bd87-7986f8d63bbe": ("Attribute Provisioning Administrator", True),
    "422218e4-db15-4ef9-bbe0-8afb41546d79": ("Attribute Provisioning Reader", True),
    "c4e39bd9-1100-46d3-8c65-fb160da0071f": ("Authentication Administrator", True),
    "25a516ed-2fa0-40ea-a2d0-12923a21473a": ("Authentication Extensibility Administrator", True),
    "0526716b-113d-4c15-b2c8-68e3c22b9f80": ("Authentication Policy Administrator", False),
    "e3973bdf-4987-49ae-837a-ba8e231c7286": ("Azure DevOps Administrator", False),
    "7495fdc4-34c4-4d15-a289-98788ce399fd": ("Azure Information Protection Administrator", False),
    "aaf43236-0c0d-4d5f-883a-6955382ac081": ("B2C IEF Keyset Administrator", True),
    "3edaf663-341e-4475-9f94-5c398ef6c070": ("B2C IEF Policy Administrator", False),
    "b0f54661-2d74-4c50-afa3-1ec803f12efe": ("Billing Administrator", False),
    "892c5842-a9a6-463a-8041-72aa08ca3cf6": ("Cloud App Security Administrator", False),
    "158c047a-c907-4556-b7ef-446551a6b5f7": ("Cloud Application Administrator", True),
    "7698a772-787b-4ac8-901f-60d6b08affd2": ("Cloud Device Administrator", True),
    "17315797-102d-40b4-93e0-432062caca18": ("Compliance Administrator", False),
    "e6d1a23a-da11-4be4-9570-befc86d067a7": ("Compliance Data Administrator", False),
    "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9": ("Conditional Access Administrator", True),
    "5c4f9dcd-47dc-4cf7-8c9a-9e4207cbfc91": ("Customer LockBox Access Approver", False),
    "38a96431-2bdf-4b4c-8b6e-5d3d8abac1a4": ("Desktop Analytics Administrator", False),
    "88d8e3e3-8f55-4a1e-953a-9b9898b8876b": ("Directory Readers", False),
    "d29b2b05-8046-44ba-8758-1e26182fcf32": ("Directory Synchronization Accounts", False),
    "9360feb5-f418-4baa-8175-e2a00bac4301": ("Directory Writers", True),
    "8329153b-31d0-4727-b945-745eb3bc5f31": ("Domain Name Administrator", True),
    "e93e3737-fa85-474a-aee4-7d3fb86510f3": ("Dragon Administrator", False),
    "44367163-eba1-44c3-98af-f5787879f96a": ("Dynamics 365 Administrator", False),
    "963797fb-eb3b-4cde-8ce3-5878b3f32a3f": ("Dynamics 365 Business Central Administrator", False),
    "3f1acade-1e04-4fbc-9b69-f0302cd84aef": ("Edge Administrator", False),
    "29232cdf-9323-42fd-ade2-1d097af3e4de": ("Exchange Administrator", False),
    "49eb8f75-97e9-4e37-9b2b-6c3ebfcffa31": ("Exchange Backup Administrator", False),
    "31392ffb-586c-42d1-9346-e59415a2cc4e": ("Exchange Recipient Administrator", False),
    "dd13091a-6207-4fc0-82ba-3641e056ab95": ("Extended Directory User Administrator", False),
    "6e591065-9bad-43ed-90f3-e9424366d2f0": ("External ID User Flow Administrator", False),
    "0f971eea-41eb-4569-a71e-57bb8a3eff1e": (
        "External ID User Flow Attribute Administrator",
        False,
    ),
    "be2f45a1-457d-42af-a067-6ec1fa63bc45": ("External Identity Provider Administrator", True),
    "a9ea8996-122f-4c74-9520-8edcd192826c": ("Fabric Administrator", False),
    "62e90394-69f5-4237-9190-012177145e10": ("Global Administrator", True),
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451": ("Global Reader", True),
    "ac434307-12b9-4fa1-a708-88bf58caabc1": ("Global Secure Access Administrator", False),
    "843318fb-79a6-4168-9e6f-aa9a07481cc4": ("Global Secure Access Log Reader", False),
    "fdd7a751-b60b-444a-984c-02652fe8fa1c": ("Groups Administrator", False),
    "95e79109-95c0-4d8e-aee3-d01accf2d47b": ("Guest Inviter", False),
    "729827e3-9c14-49f7-bb1b-9608f156bbb8": ("Helpdesk Administrator", True),
    "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2": ("Hybrid Identity Administrator", True),
    "45d8d3c5-c802-45c6-b32a-1d70b5e1e86e": ("Identity Governance Administrator", False),
    "eb1f4a8d-243a-41f0-9fbd-c7cdf6c5ef7c": ("Insights Administrator", False),
    "25df335f-86eb-4119-b717-0ff02de207e9": ("Insights Analyst", False),
    "31e939ad-9672-4796-9c2e-873181342d2d": ("Insights Business Leader", False),
    "3a2c62db-5318-420d-8d74-23affee5d9d5": ("Intune Administrator", True),
    "2ea5ce4c-b2d8-4668-bd81-3680bd2d227a": ("IoT Device Administrator", False),
    "74ef975b-6605-40af-a5d2-b9539d836353": ("Kaizala Administrator", False),
    "b5a8dcf3-09d5-43a9-a639-8e29ef291470": ("Knowledge Administrator", False),
    "744ec460-397e-42ad-a462-8b3f9747a02c": ("Knowledge Manager", False),
    "4d6ac14f-3453-41d0-bef9-a3e0c569773a": ("License Administrator", False),
    "59d46f88-662b-457b-bceb-5c3809e5908f": ("Lifecycle Workflows Administrator", True),
    "ac16e43d-7b2d-40e0-ac05-243ff356ab5b": ("Message Center Privacy Reader", False),
    "790c1fb9-7f7d-4f88-86a1-ef1f95c05c1b": ("Message Center Reader", False),
    "1707125e-0aa2-4d4d-8655-a7c786c76a25": ("Microsoft 365 Backup Administrator", False),
    "8c8b803f-96e1-4129-9349-20738d9f9652": ("Microsoft 365 Migration Administrator", False),
    "00cf5c54-4693-4f59-a0ac-ab79ef0a974d": ("Microsoft 365 Support Engineer", False),
    "9f06204d-73c1-4d4c-880a-6edb90606fd8": (
        "Microsoft Entra Joined Device Local Administrator",
        False,
    ),
    "ee67aa9c-e510-4759-b906-227085a7fd4d": ("Microsoft Graph Data Connect Administrator", False),
    "1501b917-7653-4ff9-a4b5-203eaf33784f": ("Microsoft Hardware Warranty Administrator", False),
    "281fe777-fb20-4fbb-b7a3-ccebce5b0d96": ("Microsoft Hardware Warranty Specialist", False),
    "d37c8bed-0711-4417-ba38-b4abe66ce4c2": ("Network Administrator", False),
    "2b745bdf-0803-4d80-aa65-822c4493daac": ("Office Apps Administrator", False),
    "92ed04bf-c94a-4b82-9729-b799a7a4c178": ("Organizational Branding Administrator", False),
    "9d70768a-0cbc-4b4c-aea3-2e124b2477f4": ("Organizational Data Source Administrator", False),
    "e48398e2-f4bb-4074-8f31-4586725e205b": ("Organizational Messages Approver", False),
    "507f53e4-4e52-4077-abd3-d2e1558b6ea2": ("Organizational Messages Writer", False),
    "4ba39ca4-527c-499a-b93d-d9b492c50246": ("Partner Tier1 Support", True),
    "e00e864a-17c5-4a4b-9c06-f5b95a8d5bd8": ("Partner Tier2 Support", True),
    "966707d0-3269-4727-9be2-8c3a10f19b9d": ("Password Administrator", True),
    "024906de-61e5-49c8-8572-40335f1e0e10": ("People Administrator", False),
    "af78dc32-cf4d-46f9-ba4e-4428526346b5": ("Permissions Management Administrator", False),
    "78b0ccd1-afc2-4f92-9116-b41aedd09592": ("Places Administrator", False),
    "11648597-926c-4cf3-9c36-bcebb0ba8dcc": ("Power Platform Administrator", False),
    "644ef478-e28f-4e28-b9dc-3fdde9aa0b1f": ("Printer Administrator", False),
    "e8cef6f1-e4bd-4ea8-bc07-4b8d950f4477": ("Printer Technician", False),
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13": ("Privileged Authentication Administrator", True),
    "e8611ab8-c189-46e8-94e1-60213ab1f814": ("Privileged Role Administrator", True),
    "4a5d8f65-41da-4de4-8968-e035b65339cf": ("Reports Reader", False),
    "0964bb5e-9bdb-4d7b-ac29-58e794862a40": ("Search Administrator", False),
    "8835291a-918c-4fd7-a9ce-faa49f0cf7d9": ("Search Editor", False),
    "194ae4cb-b126-40b2-bd5b-6091b380977d": ("Security Administrator", True),
    "5f2222b1-57c3-48ba-8ad5-d4759f1fde6f": ("Security Operator", True),
    "5d6b6bb7-de71-4623-b4af-96380a352509": ("Security Reader", True),
    "f023fd81-a637-4b56-95fd-791ac0226033": ("Service Support Administrator", False),
    "f28a1f50-f6e7-4571-818b-6a12f2af6b6c": ("SharePoint Administrator", False),
    "99009c4a-3b3f-4957-82a9-9d35e12db77e": ("SharePoint Advanced Management Administrator", False),
    "9d3e04ba-3ee4-4d1b-a3a7-9aef423a09be": ("SharePoint Backup Administrator", False),
    "1a7d78b6-429f-476b-b8eb-35fb715fffd4": ("SharePoint Embedded Administrator", False),
    "75941009-915a-4869-abe7-691bff18279e": ("Skype for Business Administrator", False),
    "69091246-20e8-4a56-aa4d-066075b2a7a8": ("Teams Administrator", False),
    "baf37b3a-610e-45da-9e62-d9d1e5e8914b": ("Teams Communications Administrator", False),
    "f70938a0-fc10-4177-9e90-2178f8765737": ("Teams Communications Support Engineer", False),
    "fcf91098-03e3-41a9-b5ba-6f0ec8188a12": ("Teams Communications Support Specialist", False),
    "3d762c5a-1b6c-493f-843e-55a3b42923d4": ("Teams Devices Administrator", False),
    "1076ac91-f3d9-41a7-a339-dcdf5f480acc": ("Teams Reader", False),
    "aa38014f-0993-46e9-9b45-30501a20909d": ("Teams Telephony Administrator", False),
    "112ca1a2-15ad-4102-995e-45b0bc479a6a": ("Tenant Creator", False),
    "75934031-6c7e-415a-99d7-48dbd49e875e": ("Usage Summary Reports Reader", False),
    "fe930be7-5e62-47db-91af-98c3a49a38b1": ("User Administrator", True),
    "27460883-1df1-4691-b032-3b79643e5e63": ("User Experience Success Manager", False),
    "e300d9e7-4a2b-4295-9eff-f1c78b36cc98": ("Virtual Visits Administrator", False),
    "0ec3f692-38d6-4d14-9e69-0377ca7797ad": ("Viva Glint Tenant Administrator", False),
    "92b086b3-e367-4ef2-b869-1de128fb986e": ("Viva Goals Administrator", False),
    "87761b17-1ed2-4af3-9acd-92a150038160": ("Viva Pulse Administrator", False),
    "11451d60-acb2-45eb-a7d6-43d0f0125c13": ("Windows 365 Administrator", False),
    "32696413-001a-46ae-978c-ce0f6b3620d2": ("Windows Update Deployment Administrator", False),
    "810a2642-a034-447f-a5e8-41beaa378541": ("Yammer Administrator", False),
}


# --- roles ------------------------------------------------------------------------------------
#
# Entra refuses to soft-match a cloud user holding ANY directory role ("Existing Admin Role
# Conflict"; entra-docs how-to-connect-install-existing-tenant.md: "won't match on-premises users
# with cloud users that have an admin role"; tshoot-connect-sync-errors.md: "remove the account
# from all admin roles"), while the 2026 hard-match hardening blocks only targets that are
# assigned or eligible for a PRIVILEGED role (same page, "Hard match security protections").
# So every assignment is kept, and each role is judged privileged or not separately.


@dataclass(frozen=True)
class RoleGrant:
    principal_id: str  # a user, or a role-assignable group
    role_id: str  # roleDefinitionId (= template id for built-in roles)
    eligible: bool  # PIM eligibility, not an active assignment
    name: str | None = None  # from an expanded roleDefinition
    privileged: bool | None = None  # from an expanded roleDefinition's isPrivileged (beta)
    template_id: str | None = None
    path: Path | None = None  # the file it came from


@dataclass(frozen=True)
class RoleDefinition:
    id: str
    template_id: str | None
    name: str | None
    privileged: bool | None  # isPrivileged: Graph beta only; v1.0 leaves it out


@dataclass
class RoleFacts:
    """Everything --roles files said: assignments, eligibilities, role definitions and the
    members of role-assignable groups."""

    grants: list[RoleGrant] = field(default_factory=list)
    definitions: dict[str, RoleDefinition] = field(default_factory=dict)  # by id and template
    group_members: dict[str, set[str]] = field(default_factory=dict)
    groups_maybe_cut: dict[str, Path] = field(default_factory=dict)  # group id -> its file

    def role(self, grant: RoleGrant) -> tuple[str, bool | None]:
        """(display name, privileged or None when unknown) of a grant's role."""
        definition = self.definitions.get(grant.role_id.lower())
        template = (
            grant.template_id or (definition.template_id if definition else None) or grant.role_id
        ).lower()
        built_in = BUILT_IN_ROLES.get(template)
        name = (
            grant.name
            or (definition.name if definition else None)
            or (built_in[0] if built_in else grant.role_id)
        )
        privileged = grant.privileged
        if privileged is None and definition is not None:
            privileged = definition.privileged
        if privileged is None and built_in is not None:
            privileged = built_in[1]
        return name, privileged


# Graph's $expand returns at most 20 directory objects and no nextLink (known-issues.md,
# "$expand: For directory objects, returns a maximum of 20 objects").
EXPAND_LIMIT = 20


def read_roles(text: str, path: Path, facts: RoleFacts) -> dict[str, int]:
    """Add one --roles file to `facts`; returns how many objects of each kind it held
    (roleAssignments, roleEligibility, roleDefinitions, groups).

    Accepted: GET /roleManagement/directory/roleAssignments and
    /roleEligibilityScheduleInstances (optionally with $expand=roleDefinition),
    /roleManagement/directory/roleDefinitions (v1.0, or beta with isPrivileged), and the
    role-assignable groups with their members (GET /groups?$filter=isAssignableToRole eq true
    &$expand=members, or one object {id, members: [...]} per group from Get-MgGroupMember -All,
    Microsoft.Graph.Groups: MicrosoftDocs/microsoftgraph-docs-powershell
    graph-powershell-1.0/Microsoft.Graph.Groups/Get-MgGroupMember.md).
    """
    kinds: dict[str, int] = {}
    for page in pages(text, path):
        context = page.context.lower()
        for item in page.items:
            kind = _role_item_kind(item, context)
            if kind is None:
                raise InputError(
                    path,
                    "not a role assignment, eligibility, role definition or role-assignable "
                    "group with members: pass users with --cloud, domains with --domains",
                    line=page.line,
                )
            kinds[kind] = kinds.get(kind, 0) + 1
            if kind == "roleDefinitions":
                definition = _role_definition(item, path, page.line)
                facts.definitions[definition.id] = definition
                if definition.template_id:
                    facts.definitions.setdefault(definition.template_id, definition)
            elif kind == "groups":
                group_id = text_value(item.get("id"))
                members = item.get("members")
                if group_id is None or not isinstance(members, list):
                    raise InputError(path, "group without id or members", line=page.line)
                ids = {
                    str(lower_keys(m).get("id"))
                    for m in members
                    if isinstance(m, dict) and lower_keys(m).get("id")
                }
                facts.group_members.setdefault(group_id, set()).update(ids)
                if len(members) == EXPAND_LIMIT and "members" in context:
                    facts.groups_maybe_cut[group_id] = path
            else:
                facts.grants.append(
                    _role_grant(item, path, page.line, eligible=kind == "roleEligibility")
                )
    return kinds


def _role_item_kind(item: Mapping[str, Any], context: str) -> str | None:
    if "principalid" in item and "roledefinitionid" in item:
        if "roleeligibility" in context or "roleeligibilityscheduleid" in item:
            return "roleEligibility"
        return "roleAssignments"
    if "roledefinitions" in context or "rolepermissions" in item or "isbuiltin" in item:
        return "roleDefinitions"
    if "members" in item:
        return "groups"
    return None


def _role_definition(item: Mapping[str, Any], path: Path, line: int) -> RoleDefinition:
    role_id = text_value(item.get("id"))
    if role_id is None:
        raise InputError(path, "role definition without an id", line=line)
    template = text_value(item.get("templateid"))
    return RoleDefinition(
        id=role_id.lower(),
        template_id=template.lower() if template else None,
        name=text_value(item.get("displayname")),
        privileged=bool_from_text(item.get("isprivileged")),
    )


def _role_grant(item: Mapping[str, Any], path: Path, line: int, *, eligible: bool) -> RoleGrant:
    principal = text_value(item.get("principalid"))
    role_id = text_value(item.get("roledefinitionid"))
    if principal is None or role_id is None:
        raise InputError(path, "role entry without principalId and roleDefinitionId", line=line)
    expanded = item.get("roledefinition")
    definition = lower_keys(expanded) if isinstance(expanded, dict) else {}
    template = text_value(definition.get("templateid"))
    return RoleGrant(
        principal_id=principal,
        role_id=role_id.lower(),
        eligible=eligible,
        name=text_value(definition.get("displayname")),
        privileged=bool_from_text(definition.get("isprivileged")),
        template_id=template.lower() if template else None,
        path=path,
    )


def with_role_columns(
    cloud: pl.DataFrame, facts: RoleFacts, reports: Sequence[SourceReport]
) -> tuple[pl.DataFrame, list[SourceReport]]:
    """cloud_users with directory_roles (every role assigned, directly or through a
    role-assignable group), admin_roles (the privileged ones) and eligible_roles (privileged
    roles PIM-eligible); the reports of the role sources get the warnings of what could not be
    resolved."""
    reports = list(reports)
    # Only the ids a grant or a group's member list names are looked up: a set of every user's
    # id cost 0.3 s at 1M users.
    named = {grant.principal_id for grant in facts.grants}.union(*facts.group_members.values())
    known = set(cloud.get_column("id").filter(cloud.get_column("id").is_in(list(named))))
    assigned: dict[str, set[str]] = {}
    privileged: dict[str, set[str]] = {}
    eligible: dict[str, set[str]] = {}
    unresolved: dict[Path | None, set[str]] = {}
    unknown_privilege: dict[Path | None, set[str]] = {}
    for grant in facts.grants:
        name, is_privileged = facts.role(grant)
        if is_privileged is None:
            unknown_privilege.setdefault(grant.path, set()).add(name)
        if grant.principal_id in known:
            principals = {grant.principal_id}
        elif grant.principal_id in facts.group_members:
            # role-assignable groups cannot contain groups (groups-concept.md): one level
            principals = facts.group_members[grant.principal_id] & known
        else:
            unresolved.setdefault(grant.path, set()).add(grant.principal_id)
            continue
        for principal in principals:
            if grant.eligible:
                if is_privileged:
                    eligible.setdefault(principal, set()).add(name)
                continue  # an eligibility is not an assignment: it does not block soft match
            assigned.setdefault(principal, set()).add(name)
            if is_privileged:
                privileged.setdefault(principal, set()).add(name)
    warnings: dict[str, list[str]] = {r.name: [] for r in reports}

    def warn(origin: Path | None, text: str) -> None:
        warnings[origin.name if origin else reports[0].name].append(text)

    for origin, principals in unresolved.items():
        warn(
            origin,
            f"{len(principals)} principals with roles are neither users of the cloud export nor "
            "role-assignable groups whose members --roles lists (service principals, or groups: "
            "add their members): their roles are not counted",
        )
    for origin, names in unknown_privilege.items():
        shown = ", ".join(sorted(names)[:5])
        warn(
            origin,
            f"{len(names)} roles of unknown privilege ({shown}{'...' if len(names) > 5 else ''}; "
            f"custom, or newer than the built-in table of {AS_OF}): they block soft "
            "match but are not counted as privileged; add GET "
            "/beta/roleManagement/directory/roleDefinitions to --roles to let isPrivileged decide",
        )
    cut: dict[Path, int] = {}
    for origin in facts.groups_maybe_cut.values():
        cut[origin] = cut.get(origin, 0) + 1
    for origin, count in cut.items():
        warn(
            origin,
            f"{count} role-assignable groups list exactly {EXPAND_LIMIT} members, the "
            "most $expand returns: export their members with Get-MgGroupMember -All instead",
        )
    reports = [replace(r, warnings=tuple(warnings[r.name])) for r in reports]
    # Only the few users holding a role get a list built in Python; everyone else's empty list
    # comes from a join (one list per user cost ~2.5 s at 100k users).
    roles = pl.DataFrame(
        [
            (user, *(sorted(held.get(user, ())) for held in (assigned, privileged, eligible)))
            for user in assigned.keys() | privileged.keys() | eligible.keys()
        ],
        schema={
            "id": pl.String(),
            "directory_roles": pl.List(pl.String()),
            "admin_roles": pl.List(pl.String()),
            "eligible_roles": pl.List(pl.String()),
        },
        orient="row",
    )
    empty = pl.lit([], dtype=pl.List(pl.String()))
    # The join takes the id column alone: joining the whole frame would copy every user's row.
    lists = (
        cloud.select("id")
        .join(roles, on="id", how="left", maintain_order="left")
        .select(pl.col(name).fill_null(empty) for name in ROLE_COLUMNS)
    )
    cloud = cloud.drop(ROLE_COLUMNS, strict=False).hstack(_chunked_like(lists, cloud).get_columns())
    return conform(cloud, CLOUD_USERS_SCHEMA), reports


ROLE_COLUMNS = ("directory_roles", "admin_roles", "eligible_roles")


def _chunked_like(columns: pl.DataFrame, frame: pl.DataFrame) -> pl.DataFrame:
    """`columns` cut at the chunk boundaries of `frame`'s columns: a frame whose columns are
    chunked alike is not rechunked by the next select, which would copy every string's view
    (16 bytes a value: ~330 MB at 1M users read in bulk, a chunk per page)."""
    lengths = frame.get_column(frame.columns[0]).chunk_lengths() if frame.width else []
    if len(lengths) <= 1:
        return columns
    parts, offset = [], 0
    for length in lengths:
        parts.append(columns.slice(offset, length))
        offset += length
    return pl.concat(parts, rechunk=False)
