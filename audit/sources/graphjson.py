"""Microsoft Graph responses saved to files: users, deleted users, domains, tenant, roles.

One reader takes every shape people save: a response page ``{"value": [...]}``, a bare array,
several pages concatenated (``}{``), and JSON Lines. Property names are matched without case
(PowerShell round-trips change it). Calls and field meanings: FACTS.md section 3.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from audit.model import Domain, Feature, TenantFeatures
from audit.sources.csvfile import TYPE_NAME_CELLS, split_multi
from audit.sources.detect import InputError, Notes, bool_from_text, datetime_from_text

_WHITESPACE_RE = re.compile(r"[ \t\r\n]*")
_DOMAIN_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")
_INITIAL_DOMAIN_RE = re.compile(r"^[^.]+\.onmicrosoft\.com$", re.IGNORECASE)

GROUP_TYPES = {"#microsoft.graph.group": "group", "#microsoft.graph.orgcontact": "contact"}

# Privileged built-in roles by template id (= roleDefinitionId of built-in roles), verified
# against the "Microsoft Entra built-in roles" reference (entra-docs permissions-reference.md,
# ms.date 01/20/2026). Used only when the response lacks the expanded roleDefinition.isPrivileged.
# Exchange, SharePoint and Billing Administrator carry no "privileged" label there but are admin
# roles that block a soft match ("Existing Admin Role Conflict", FACTS.md section 1).
PRIVILEGED_ROLES: Mapping[str, str] = {
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
    "e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13": "Privileged Authentication Administrator",
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
    "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2": "Hybrid Identity Administrator",
    "29232cdf-9323-42fd-ade2-1d097af3e4de": "Exchange Administrator",
    "f28a1f50-f6e7-4571-818b-6a12f2af6b6c": "SharePoint Administrator",
    "194ae4cb-b126-40b2-bd5b-6091b380977d": "Security Administrator",
    "c4e39bd9-1100-46d3-8c65-fb160da0071f": "Authentication Administrator",
    "729827e3-9c14-49f7-bb1b-9608f156bbb8": "Helpdesk Administrator",
    "966707d0-3269-4727-9be2-8c3a10f19b9d": "Password Administrator",
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3": "Application Administrator",
    "158c047a-c907-4556-b7ef-446551a6b5f7": "Cloud Application Administrator",
    "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9": "Conditional Access Administrator",
    "3a2c62db-5318-420d-8d74-23affee5d9d5": "Intune Administrator",
    "b0f54661-2d74-4c50-afa3-1ec803f12efe": "Billing Administrator",
    "8329153b-31d0-4727-b945-745eb3bc5f31": "Domain Name Administrator",
    "be2f45a1-457d-42af-a067-6ec1fa63bc45": "External Identity Provider Administrator",
    "9360feb5-f418-4baa-8175-e2a00bac4301": "Directory Writers",
    "7698a772-787b-4ac8-901f-60d6b08affd2": "Cloud Device Administrator",
    "25a516ed-2fa0-40ea-a2d0-12923a21473a": "Authentication Extensibility Administrator",
    "aaf43236-0c0d-4d5f-883a-6955382ac081": "B2C IEF Keyset Administrator",
    "59d46f88-662b-457b-bceb-5c3809e5908f": "Lifecycle Workflows Administrator",
    "5f2222b1-57c3-48ba-8ad5-d4759f1fde6f": "Security Operator",
    "cf1c38e5-3621-4004-a7cb-879624dced7c": "Application Developer",
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451": "Global Reader",
    "5d6b6bb7-de71-4623-b4af-96380a352509": "Security Reader",
    "db506228-d27e-4b7d-95e5-295956d6615f": "Agent ID Administrator",
    "ecb2c6bf-0ab6-418e-bd87-7986f8d63bbe": "Attribute Provisioning Administrator",
    "422218e4-db15-4ef9-bbe0-8afb41546d79": "Attribute Provisioning Reader",
    "4ba39ca4-527c-499a-b93d-d9b492c50246": "Partner Tier1 Support",
    "e00e864a-17c5-4a4b-9c06-f5b95a8d5bd8": "Partner Tier2 Support",
}


@dataclass(frozen=True)
class Document:
    value: Any
    line: int


def json_documents(text: str, path: Path) -> Iterator[Document]:
    """Every JSON document in the text: one, several concatenated, or one per line."""
    decoder = json.JSONDecoder()
    pos = _WHITESPACE_RE.match(text, 0).end()  # type: ignore[union-attr]
    line = 1 + text.count("\n", 0, pos)
    while pos < len(text):
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise InputError(path, f"invalid JSON: {exc.msg}", line=exc.lineno) from None
        yield Document(value=value, line=line)
        next_pos = _WHITESPACE_RE.match(text, end).end()  # type: ignore[union-attr]
        line += text.count("\n", pos, next_pos)
        pos = next_pos


def lower_keys(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in obj.items()}


@dataclass
class Page:
    """The objects of one document, and what its envelope says."""

    items: list[dict[str, Any]]
    context: str
    next_link: str | None
    line: int


def pages(text: str, path: Path) -> Iterator[Page]:
    """Documents as pages of lower-cased objects; a Graph error response is an InputError."""
    for doc in json_documents(text, path):
        if isinstance(doc.value, list):
            items = [_object(x, path, doc.line) for x in doc.value]
            yield Page(items=items, context="", next_link=None, line=doc.line)
            continue
        if not isinstance(doc.value, dict):
            raise InputError(path, "expected a JSON object or array", line=doc.line)
        envelope = lower_keys(doc.value)
        if "error" in envelope and "value" not in envelope:
            raise InputError(
                path,
                f"the file holds a Graph error response: {_error_text(envelope)}",
                line=doc.line,
            )
        context = str(envelope.get("@odata.context") or "")
        values = envelope.get("value")
        if isinstance(values, list):
            items = [_object(x, path, doc.line) for x in values]
            next_link = envelope.get("@odata.nextlink")
            yield Page(
                items=items,
                context=context,
                next_link=str(next_link) if next_link else None,
                line=doc.line,
            )
        else:  # JSON Lines row, or a single-object response (GET /organization/{id})
            yield Page(items=[envelope], context=context, next_link=None, line=doc.line)


def _object(value: Any, path: Path, line: int) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InputError(
            path, f"expected an object in 'value', got {type(value).__name__}", line=line
        )
    return lower_keys(value)


def _error_text(envelope: Mapping[str, Any]) -> str:
    error = envelope.get("error")
    if isinstance(error, dict):
        err = lower_keys(error)
        return f"{err.get('code', '?')}: {err.get('message', '')}"
    return str(error)[:200]


# --- users ----------------------------------------------------------------------------------

# (column, Graph property lower-cased, converter)
_TEXT_PROPERTIES = (
    ("upn", "userprincipalname"),
    ("mail", "mail"),
    ("mail_nickname", "mailnickname"),
    ("display_name", "displayname"),
    ("immutable_id", "onpremisesimmutableid"),
    ("on_prem_dn", "onpremisesdistinguishedname"),
    ("on_prem_sam", "onpremisessamaccountname"),
    ("on_prem_sid", "onpremisessecurityidentifier"),
    ("on_prem_upn", "onpremisesuserprincipalname"),
    ("on_prem_domain", "onpremisesdomainname"),
    ("on_prem_object_id", "onpremisesobjectidentifier"),
    ("user_type", "usertype"),
    ("employee_id", "employeeid"),
)
_BOOL_PROPERTIES = (
    ("sync_enabled", "onpremisessyncenabled"),
    ("account_enabled", "accountenabled"),
)
_TIME_PROPERTIES = (
    ("last_sync", "onpremiseslastsyncdatetime"),
    ("created", "createddatetime"),
    ("deleted_at", "deleteddatetime"),
)
# Returned only when named in $select (FACTS.md section 3): missing everywhere = not exported.
_SELECT_ONLY = ("onPremisesImmutableId", "proxyAddresses", "onPremisesSyncEnabled")


@dataclass
class CloudUsers:
    """Cloud users (and groups/contacts) collected column by column over several inputs."""

    columns: dict[str, list[Any]] = field(default_factory=dict)
    objects: dict[str, list[Any]] = field(default_factory=dict)
    where: dict[str, tuple[str, int, bool]] = field(
        default_factory=dict
    )  # id -> (path, line, deleted)

    def column(self, name: str) -> list[Any]:
        return self.columns.setdefault(name, [])


@dataclass
class UserFileResult:
    rows: int = 0
    complete: bool = True
    excluded: dict[str, int] = field(default_factory=dict)


def add_user_objects(
    target: CloudUsers,
    items: Iterator[tuple[int, dict[str, Any], str]],
    path: Path,
    notes: Notes,
    *,
    deleted: bool,
    taken_at: datetime,
) -> UserFileResult:
    """Users -> cloud_users columns, groups/contacts -> cloud_objects; counts what was skipped."""
    result = UserFileResult()
    seen_keys: set[str] = set()
    for line, obj, page_type in items:
        kind = object_kind(obj, page_type)
        if kind == "removed":
            result.excluded["removed (delta)"] = result.excluded.get("removed (delta)", 0) + 1
            continue
        if kind in ("group", "contact"):
            _add_object(target, obj, kind, path, line, notes)
            # not users, but kept: they own addresses (ObjectTypeMismatch, value conflicts)
            routed = f"{kind} (kept as cloud object)"
            result.excluded[routed] = result.excluded.get(routed, 0) + 1
            continue
        if kind != "user":
            result.excluded[kind] = result.excluded.get(kind, 0) + 1
            continue
        seen_keys.update(obj)
        _add_user(target, obj, path, line, notes, deleted=deleted, taken_at=taken_at)
        result.rows += 1
    if result.rows:
        for prop in _SELECT_ONLY:
            if prop.lower() not in seen_keys:
                notes.add(f"no user has {prop!r}: it is returned only when named in $select")
    return result


def object_kind(obj: Mapping[str, Any], page_type: str) -> str:
    """user, group, contact, removed, or another directory object type."""
    if "@removed" in obj:
        return "removed"
    odata_type = str(obj.get("@odata.type") or "").lower()
    if odata_type:
        if odata_type == "#microsoft.graph.user":
            return "user"
        return GROUP_TYPES.get(odata_type, odata_type.rsplit(".", 1)[-1] or "unknown")
    return page_type


def page_object_type(context: str) -> str:
    """The type an @odata.context names for a page whose objects carry no @odata.type."""
    lowered = context.lower()
    if "#groups" in lowered:
        return "group"
    if "#contacts" in lowered:
        return "contact"
    return "user"


def _add_object(
    target: CloudUsers, obj: Mapping[str, Any], kind: str, path: Path, line: int, notes: Notes
) -> None:
    object_id = _text(obj.get("id"))
    if object_id is None:
        raise InputError(path, f"{kind} without an id", line=line)
    cols = target.objects
    cols.setdefault("id", []).append(object_id)
    cols.setdefault("object_type", []).append(kind)
    cols.setdefault("display_name", []).append(_text(obj.get("displayname")))
    cols.setdefault("mail", []).append(_text(obj.get("mail")))
    cols.setdefault("proxy_addresses", []).append(
        _strings(obj.get("proxyaddresses"), "proxyAddresses", notes)
    )


def _add_user(
    target: CloudUsers,
    obj: Mapping[str, Any],
    path: Path,
    line: int,
    notes: Notes,
    *,
    deleted: bool,
    taken_at: datetime,
) -> None:
    user_id = _text(obj.get("id"))
    if user_id is None:
        raise InputError(path, "user without an id", line=line)
    previous = target.where.get(user_id)
    if previous is not None:
        if previous[2] != deleted:
            first = f"{previous[0]}:{previous[1]}"
            raise InputError(
                path,
                f"user {user_id} is both active and soft-deleted (also at {first}); "
                "export both lists at the same time",
                line=line,
            )
        # /users/delta repeats a user changed twice; the later page is the newer state
        # (duplicates are dropped when the frame is built).
        notes.add("user ids listed more than once: the later entry is kept")
    target.where[user_id] = (str(path), line, deleted)
    target.column("id").append(user_id)
    for column, prop in _TEXT_PROPERTIES:
        target.column(column).append(_text(obj.get(prop)))
    for column, prop in _BOOL_PROPERTIES:
        target.column(column).append(bool_from_text(obj.get(prop)))
    for column, prop in _TIME_PROPERTIES:
        target.column(column).append(_time(obj.get(prop), prop, notes))
    if deleted and target.columns["deleted_at"][-1] is None:
        notes.add("deleted users without deletedDateTime: the snapshot time is used")
        target.columns["deleted_at"][-1] = taken_at
    elif not deleted and target.columns["deleted_at"][-1] is not None:
        notes.add("users with deletedDateTime in an active-users file: kept as active")
        target.columns["deleted_at"][-1] = None
    proxies = _strings(obj.get("proxyaddresses"), "proxyAddresses", notes)
    target.column("proxy_addresses").append(proxies)
    target.column("primary_smtp").append(primary_smtp(proxies))
    target.column("provisioning_errors").append(
        _provisioning_errors(obj.get("onpremisesprovisioningerrors"), notes)
    )


def primary_smtp(proxies: Sequence[str] | None) -> str | None:
    """The address of the `SMTP:` value: the upper-case prefix marks the primary address."""
    for value in proxies or ():
        if value.startswith("SMTP:"):
            return value[5:]
    return None


def _text(value: Any) -> str | None:
    """A string property as stored. The text "System.Byte[]" in onPremisesImmutableId is a real
    (wrong) value someone wrote, which the anchor rules must see: type names are only dropped
    from array properties, where Export-Csv prints them instead of the values."""
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _time(value: Any, prop: str, notes: Notes) -> datetime | None:
    if value is None or value == "":
        return None
    parsed = datetime_from_text(str(value))
    if parsed is None:
        notes.add(f"{prop}: unreadable date/time values read as empty")
    return parsed


def _strings(value: Any, prop: str, notes: Notes) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, list):
        return [str(v) for v in value if v is not None]
    text = str(value).strip()
    if text.lower() in TYPE_NAME_CELLS:
        notes.add(f"column {prop}: {text} cells (not flattened by Export-Csv; read as empty)")
        return None
    return split_multi(text)


def _provisioning_errors(value: Any, notes: Notes) -> list[dict[str, Any]] | None:
    if value is None or value == "":
        return []
    if not isinstance(value, list):
        notes.add("onPremisesProvisioningErrors: values that are not a JSON list were ignored")
        return None
    errors = []
    for item in value:
        if isinstance(item, dict):
            err = lower_keys(item)
            errors.append(
                {
                    "category": _text(err.get("category")),
                    "occurred": _time(err.get("occurreddatetime"), "occurredDateTime", notes),
                    "property": _text(err.get("propertycausingerror")),
                    "value": _text(err.get("value")),
                }
            )
    return errors


# --- domains and tenant -----------------------------------------------------------------------


def domains_from_json(text: str, path: Path) -> list[Domain]:
    """GET /domains: id, isVerified, isInitial, isDefault, authenticationType."""
    found: list[Domain] = []
    for page in pages(text, path):
        for item in page.items:
            name = _text(item.get("id"))
            if name is None:
                raise InputError(path, "domain without an id", line=page.line)
            found.append(
                Domain(
                    name=name,
                    verified=bool(bool_from_text(item.get("isverified"))),
                    initial=bool(bool_from_text(item.get("isinitial"))),
                    default=bool(bool_from_text(item.get("isdefault"))),
                    authentication_type=_text(item.get("authenticationtype")) or "Managed",
                )
            )
    return found


def domains_from_text(text: str, path: Path) -> list[Domain]:
    """One verified domain name per line; '#' starts a comment."""
    names: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        name = raw.split("#", 1)[0].strip().rstrip(".")
        if not name:
            continue
        if not _DOMAIN_RE.match(name):
            raise InputError(path, f"not a domain name: {name[:60]!r}", line=number)
        names.append(name)
    initial = next((n for n in names if _INITIAL_DOMAIN_RE.match(n)), None)
    return [Domain(name=n, verified=True, initial=n == initial) for n in names]


@dataclass
class TenantFacts:
    tenant_id: str | None = None
    dirsync_enabled: bool | None = None
    last_dirsync: datetime | None = None
    domains: list[Domain] = field(default_factory=list)
    features: dict[str, bool | None] = field(default_factory=dict)
    kinds: list[str] = field(default_factory=list)  # organization, onPremisesSynchronization


_FEATURE_KEYS = {
    "blocksoftmatchenabled": "block_soft_match",
    "blockcloudobjecttakeoverthroughhardmatchenabled": "block_hard_match_takeover",
    "softmatchonupnenabled": "soft_match_on_upn",
}


def tenant_from_json(text: str, path: Path, notes: Notes) -> TenantFacts:
    """GET /organization and/or GET /directory/onPremisesSynchronization, in any order."""
    facts = TenantFacts()
    for doc in json_documents(text, path):
        if not isinstance(doc.value, dict | list):
            raise InputError(path, "expected a JSON object", line=doc.line)
        envelope = lower_keys(doc.value) if isinstance(doc.value, dict) else {"value": doc.value}
        if "error" in envelope and "value" not in envelope:
            # App-only tokens get 403 on onPremisesSynchronization: switches stay unknown.
            notes.add(f"Graph error response in the tenant file ({_error_text(envelope)}): skipped")
            continue
        context = str(envelope.get("@odata.context") or "").lower()
        values = envelope.get("value")
        items = values if isinstance(values, list) else [doc.value]
        for item in items:
            if not isinstance(item, dict):
                raise InputError(path, "expected objects in the tenant response", line=doc.line)
            _tenant_item(facts, lower_keys(item), context, path, doc.line)
    return facts


def _tenant_item(
    facts: TenantFacts, item: dict[str, Any], context: str, path: Path, line: int
) -> None:
    if "features" in item or "onpremisessynchronization" in context:
        features = item.get("features")
        if isinstance(features, dict):
            flags = lower_keys(features)
            for key, name in _FEATURE_KEYS.items():
                if key in flags:
                    facts.features[name] = bool_from_text(flags[key])
        facts.kinds.append("onPremisesSynchronization")
        return
    if "verifieddomains" in item or "#organization" in context:
        facts.tenant_id = _text(item.get("id"))
        facts.dirsync_enabled = bool_from_text(item.get("onpremisessyncenabled"))
        last = item.get("onpremiseslastsyncdatetime")
        facts.last_dirsync = datetime_from_text(str(last)) if last else None
        for domain in item.get("verifieddomains") or ():
            d = lower_keys(domain)
            facts.domains.append(
                Domain(
                    name=str(d.get("name")),
                    verified=True,
                    initial=bool(bool_from_text(d.get("isinitial"))),
                    default=bool(bool_from_text(d.get("isdefault"))),
                    authentication_type=_text(d.get("type")) or "Managed",
                )
            )
        facts.kinds.append("organization")
        return
    raise InputError(
        path,
        "not a GET /organization or GET /directory/onPremisesSynchronization response",
        line=line,
    )


def tenant_features(
    facts: Mapping[str, bool | None], config: Mapping[str, Feature]
) -> TenantFeatures:
    """Graph's value when it was read, else the config's, else unknown."""
    chosen: dict[str, Feature] = {}
    for name in ("block_soft_match", "block_hard_match_takeover", "soft_match_on_upn"):
        if facts.get(name) is not None:
            chosen[name] = Feature(value=facts[name], source="graph")
        elif name in config:
            chosen[name] = config[name]
        else:
            chosen[name] = Feature()
    return TenantFeatures(**chosen)


# --- roles ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoleGrant:
    principal_id: str
    role: str  # display name, or the id of an unnamed privileged role
    eligible: bool


def role_grants(text: str, path: Path, notes: Notes) -> list[RoleGrant]:
    """Privileged roles from roleAssignments / roleEligibilityScheduleInstances responses."""
    grants: list[RoleGrant] = []
    for page in pages(text, path):
        page_eligible = _eligible_context(page.context)
        for item in page.items:
            principal = _text(item.get("principalid"))
            role_id = _text(item.get("roledefinitionid"))
            if principal is None or role_id is None:
                raise InputError(
                    path, "role entry without principalId and roleDefinitionId", line=page.line
                )
            eligible = (
                page_eligible if page_eligible is not None else "roleeligibilityscheduleid" in item
            )
            role = privileged_role_name(item, role_id, notes)
            if role is not None:
                grants.append(RoleGrant(principal, role, eligible))
    return grants


def _eligible_context(context: str) -> bool | None:
    lowered = context.lower()
    if "roleeligibility" in lowered:
        return True
    if "roleassignment" in lowered:
        return False
    return None


def privileged_role_name(item: Mapping[str, Any], role_id: str, notes: Notes) -> str | None:
    """The role's name when it is privileged: the expanded isPrivileged flag, else the table."""
    definition = item.get("roledefinition")
    if isinstance(definition, dict):
        rd = lower_keys(definition)
        template = _text(rd.get("templateid")) or role_id
        name = _text(rd.get("displayname")) or PRIVILEGED_ROLES.get(template.lower()) or role_id
        if "isprivileged" in rd:
            return name if bool_from_text(rd.get("isprivileged")) else None
        return name if template.lower() in PRIVILEGED_ROLES else None
    known = PRIVILEGED_ROLES.get(role_id.lower())
    if known is None:
        notes.add(
            "role assignments of roles outside the built-in privileged list were not counted "
            "(custom or non-privileged roles; $expand=roleDefinition lets isPrivileged decide)"
        )
    return known
