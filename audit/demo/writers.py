"""The demo's export files, written as a consultant receives them, and its config.

An ldifde export of the ``corp.contoso.com`` forest; Graph JSON pages of the tenant's users
(paged with ``@odata.nextLink`` like the real API, one file per page as Graph Explorer saves
them); the soft-deleted users, ``/domains``, ``/organization`` with
``/directory/onPremisesSynchronization``, the role assignments, PIM eligibilities, beta role
definitions and role-assignable groups; and a config TOML pointing at them.
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from audit.config import Settings, load_settings
from audit.demo.estate import (
    AD_DNS_DOMAIN,
    BASE_DN,
    DEMO_TAKEN_AT,
    DISABLED_OU,
    DOMAIN,
    EXCHANGE_ADMIN,
    FEDERATED,
    GLOBAL_ADMIN,
    HELPDESK_ADMIN,
    INITIAL,
    MAIL_ROUTING,
    MAILBOX_AUDITOR,
    PRIV_ROLE_ADMIN,
    TENANT_ID,
    TENANT_LAST_SYNC,
    USER_ADMIN,
    AdEntry,
    iso,
)
from audit.demo.planned import CONTRACTORS_OU
from audit.demo.plants import build_estate

GRAPH = "https://graph.microsoft.com/v1.0"
USERS_PAGE_SIZE = 999  # Graph's $top maximum
USER_SELECT = (
    "id,userPrincipalName,mail,mailNickname,proxyAddresses,displayName,givenName,surname,"
    "onPremisesImmutableId,onPremisesSyncEnabled,onPremisesLastSyncDateTime,"
    "onPremisesDistinguishedName,onPremisesSamAccountName,onPremisesSecurityIdentifier,"
    "onPremisesUserPrincipalName,onPremisesDomainName,onPremisesObjectIdentifier,"
    "accountEnabled,createdDateTime,userType,employeeId,onPremisesProvisioningErrors"
)


@dataclass(frozen=True)
class DemoInputs:
    ad_files: list[tuple[str | None, Path]]
    cloud_files: list[Path]
    deleted: Path
    domains: Path
    tenant: Path
    roles: list[Path]
    config_path: Path
    settings: Settings
    taken_at: str

    def import_arguments(self) -> dict[str, Any]:
        """The keyword arguments of sources.files.import_files for these exports."""
        return {
            "ad": self.ad_files,
            "cloud": self.cloud_files,
            "deleted": self.deleted,
            "domains": self.domains,
            "tenant": self.tenant,
            "roles": self.roles,
            "settings": self.settings,
            "taken_at": self.taken_at,
        }


def write_demo_inputs(directory: Path) -> DemoInputs:
    """Write the Contoso exports and a config into `directory` (created if missing)."""
    estate = build_estate()
    directory.mkdir(parents=True, exist_ok=True)
    ad_path = directory / "corp-ldifde.ldf"
    ad_path.write_text(_ldif(estate.ad), encoding="utf-8", newline="\r\n")
    # Graph pages users in object-id order, not in the order they were created; saved one page
    # per file, as Graph Explorer shows them.
    pages = _write_user_pages(directory, sorted(estate.cloud, key=lambda u: str(u["id"])))
    objects = directory / "graph-directory-objects.json"
    _write_json(
        objects,
        {"@odata.context": f"{GRAPH}/$metadata#directoryObjects", "value": estate.objects},
    )
    cloud_files = [*pages, objects]
    deleted = directory / "graph-deleted-users.json"
    _write_json(
        deleted,
        {
            "@odata.context": f"{GRAPH}/$metadata#directoryObjects/microsoft.graph.user",
            "value": estate.deleted,
        },
    )
    domains = directory / "graph-domains.json"
    _write_json(domains, _domains_page())
    # GET /organization and GET /directory/onPremisesSynchronization, one after the other.
    tenant = directory / "graph-tenant.json"
    _write_json(tenant, _organization_page(), _sync_settings_page())
    assignments = directory / "graph-role-assignments.json"
    _write_json(
        assignments,
        {
            "@odata.context": f"{GRAPH}/$metadata#roleManagement/directory/roleAssignments"
            "(roleDefinition())",
            "value": estate.assignments,
        },
    )
    eligibilities = directory / "graph-role-eligibility.json"
    _write_json(
        eligibilities,
        {
            "@odata.context": f"{GRAPH}/$metadata#roleManagement/directory/"
            "roleEligibilityScheduleInstances(roleDefinition())",
            "value": estate.eligibilities,
        },
    )
    # GET /beta/roleManagement/directory/roleDefinitions: v1.0 has no isPrivileged.
    definitions = directory / "graph-role-definitions-beta.json"
    _write_json(definitions, _role_definitions_page())
    # GET /groups?$filter=isAssignableToRole eq true&$select=id,displayName&$expand=members
    groups = directory / "graph-role-assignable-groups.json"
    _write_json(
        groups,
        {
            "@odata.context": f"{GRAPH}/$metadata#groups(id,displayName,members())",
            "value": estate.role_groups,
        },
    )
    config_path = directory / "syncaudit-demo.toml"
    config_path.write_text(_config_toml(directory), encoding="utf-8")
    return DemoInputs(
        ad_files=[("corp", ad_path)],
        cloud_files=cloud_files,
        deleted=deleted,
        domains=domains,
        tenant=tenant,
        roles=[assignments, eligibilities, definitions, groups],
        config_path=config_path,
        settings=load_settings(config_path),
        taken_at=DEMO_TAKEN_AT,
    )


def _write_user_pages(directory: Path, users: list[dict[str, Any]]) -> list[Path]:
    """The responses of a paged GET /users, one file per page as Graph Explorer gives them
    (graph-users-0.json, -1, -2...); every page but the last carries @odata.nextLink."""
    pages = [users[i : i + USERS_PAGE_SIZE] for i in range(0, len(users), USERS_PAGE_SIZE)]
    paths = []
    for number, page in enumerate(pages, start=1):
        body: dict[str, Any] = {"@odata.context": f"{GRAPH}/$metadata#users({USER_SELECT})"}
        if number < len(pages):
            token = base64.b64encode(f"RFNwdAIAAQAAAB{number:08d}".encode()).decode()
            body["@odata.nextLink"] = (
                f"{GRAPH}/users?$select={USER_SELECT}&$top={USERS_PAGE_SIZE}&$skiptoken={token}"
            )
        body["value"] = page
        path = directory / f"graph-users-{number - 1}.json"
        _write_json(path, body)
        paths.append(path)
    return paths


def _role_definitions_page() -> dict[str, Any]:
    """The roles the demo assigns, as Graph beta lists them (with isPrivileged)."""
    roles = (GLOBAL_ADMIN, EXCHANGE_ADMIN, PRIV_ROLE_ADMIN, HELPDESK_ADMIN, USER_ADMIN)
    value = [
        {
            "id": template,
            "templateId": template,
            "displayName": name,
            "isBuiltIn": True,
            "isEnabled": True,
            "isPrivileged": privileged,
        }
        for template, name, privileged in roles
    ]
    template, name, privileged = MAILBOX_AUDITOR
    value.append(
        {
            "id": template,
            "templateId": template,
            "displayName": name,
            "isBuiltIn": False,
            "isEnabled": True,
            "isPrivileged": privileged,
            "rolePermissions": [
                {"allowedResourceActions": ["microsoft.directory/users/standard/read"]}
            ],
        }
    )
    return {
        "@odata.context": "https://graph.microsoft.com/beta/$metadata#roleManagement/directory/"
        "roleDefinitions",
        "value": value,
    }


def _domains_page() -> dict[str, Any]:
    def domain(name: str, **kwargs: Any) -> dict[str, Any]:
        return {
            "id": name,
            "authenticationType": kwargs.get("auth", "Managed"),
            "isAdminManaged": True,
            "isDefault": kwargs.get("default", False),
            "isInitial": kwargs.get("initial", False),
            "isRoot": True,
            "isVerified": kwargs.get("verified", True),
            "supportedServices": ["Email", "OfficeCommunicationsOnline"],
        }

    return {
        "@odata.context": f"{GRAPH}/$metadata#domains",
        "value": [
            domain(DOMAIN, default=True),
            domain(FEDERATED, auth="Federated"),
            domain(INITIAL, initial=True),
            domain(MAIL_ROUTING),
            domain(AD_DNS_DOMAIN, verified=False),
        ],
    }


def _organization_page() -> dict[str, Any]:
    verified = [
        {
            "capabilities": "Email, OfficeCommunicationsOnline",
            "isDefault": name == DOMAIN,
            "isInitial": name == INITIAL,
            "name": name,
            "type": "Federated" if name == FEDERATED else "Managed",
        }
        for name in (DOMAIN, FEDERATED, INITIAL, MAIL_ROUTING)
    ]
    return {
        "@odata.context": f"{GRAPH}/$metadata#organization",
        "value": [
            {
                "id": TENANT_ID,
                "displayName": "Contoso",
                "onPremisesSyncEnabled": True,
                "onPremisesLastSyncDateTime": iso(TENANT_LAST_SYNC),
                "verifiedDomains": verified,
            }
        ],
    }


def _sync_settings_page() -> dict[str, Any]:
    return {
        "@odata.context": f"{GRAPH}/$metadata#directory/onPremisesSynchronization",
        "value": [
            {
                "id": TENANT_ID,
                "configuration": {
                    "accidentalDeletionPrevention": {
                        "synchronizationPreventionType": "enabledForCount",
                        "alertThreshold": 500,
                    },
                    "synchronizationInterval": "PT30M",
                },
                "features": {
                    "blockCloudObjectTakeoverThroughHardMatchEnabled": False,
                    "blockSoftMatchEnabled": False,
                    "softMatchOnUpnEnabled": True,
                    "synchronizeUpnForManagedUsersEnabled": False,
                    "passwordSyncEnabled": True,
                    "userWritebackEnabled": False,
                },
            }
        ],
    }


def _config_toml(directory: Path) -> str:
    return f"""# syncaudit demo: the Contoso estate (written by audit.demo)
[run]
fail_on = "high"

[[ad]]
name = "corp"
exclude_ous = ["{DISABLED_OU}", "{CONTRACTORS_OU}"]
anchor_attribute = "mS-DS-ConsistencyGuid"

[entra]
tenant_id = "{TENANT_ID}"

[thresholds]
stale_sync_hours = 3
stale_object_days = 7
unmatched_grace_days = 2

[report]
company = "Contoso"
"""


def _ldif(entries: list[AdEntry]) -> str:
    # ldifde ends every entry, the last one included, with an empty line.
    lines = ["version: 1", ""]
    for entry in entries:
        lines.extend(_ldif_record(entry))
        lines.append("")
    return "\n".join(lines) + "\n"


def _ldif_record(entry: AdEntry) -> list[str]:
    attrs: list[tuple[str, str | bytes | None]] = [("dn", entry.dn), ("changetype", "add")]
    attrs += [("objectClass", c) for c in entry.object_classes]
    cn = entry.dn.split(",", 1)[0][3:]
    attrs += [
        ("cn", cn),
        ("sn", entry.surname),
        ("givenName", entry.given_name),
        ("distinguishedName", entry.dn),
        ("instanceType", "4"),
        ("whenCreated", _generalized(entry.when_created)),
        ("whenChanged", _generalized(entry.when_changed)),
        ("displayName", entry.display_name),
        ("name", cn),
        ("objectGUID", entry.guid.bytes_le),
        ("userAccountControl", str(entry.uac)),
        ("employeeID", entry.employee_id),
        ("objectSid", _sid_bytes(entry.sid)),
        ("sAMAccountName", entry.sam),
        ("sAMAccountType", "805306369" if entry.category == "Computer" else "805306368"),
        ("userPrincipalName", entry.upn),
        ("objectCategory", f"CN={entry.category},CN=Schema,CN=Configuration,{BASE_DN}"),
        ("isCriticalSystemObject", "TRUE" if entry.critical else None),
        ("mail", entry.mail),
        ("mailNickname", entry.mail_nickname),
        ("targetAddress", entry.target_address),
        ("mS-DS-ConsistencyGuid", entry.consistency_guid),
    ]
    attrs += [("proxyAddresses", p) for p in entry.proxies]
    if entry.last_logon is not None:
        attrs.append(("lastLogonTimestamp", str(_filetime(entry.last_logon))))
    lines = []
    for name, value in attrs:
        if value is None:
            continue
        lines.extend(_fold(_ldif_line(name, value)))
    return lines


def _ldif_line(name: str, value: str | bytes) -> str:
    """RFC 2849: binary, non-ASCII, or leading/trailing-space values are written base64."""
    if isinstance(value, bytes):
        return f"{name}:: {base64.b64encode(value).decode('ascii')}"
    unsafe = (
        not value.isascii()
        or value != value.strip()
        or value[:1] in (":", "<")
        or any(c in value for c in "\r\n\x00")
    )
    if unsafe:
        return f"{name}:: {base64.b64encode(value.encode('utf-8')).decode('ascii')}"
    return f"{name}: {value}"


def _fold(line: str, width: int = 76) -> list[str]:
    if len(line) <= width:
        return [line]
    parts = [line[:width]]
    rest = line[width:]
    while rest:
        parts.append(" " + rest[: width - 1])
        rest = rest[width - 1 :]
    return parts


def _sid_bytes(sid: str) -> bytes:
    parts = sid.split("-")
    revision, authority = int(parts[1]), int(parts[2])
    subs = [int(p) for p in parts[3:]]
    return (
        struct.pack("<BB", revision, len(subs))
        + authority.to_bytes(6, "big")
        + b"".join(struct.pack("<I", s) for s in subs)
    )


def _generalized(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S.0Z")


def _filetime(moment: datetime) -> int:
    return (int(moment.timestamp()) + 11644473600) * 10_000_000


def _write_json(path: Path, *documents: dict[str, Any]) -> None:
    text = "\n".join(json.dumps(d, indent=1, ensure_ascii=False) for d in documents)
    path.write_text(text + "\n", encoding="utf-8")
