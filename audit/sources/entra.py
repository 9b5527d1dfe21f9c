"""Entra ID objects -> cloud frames and tenant: a Graph object is mapped here whether it came
from a JSON file, a Get-MgUser CSV row or a live page (FACTS.md section 3)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from audit.errors import InputError, Origin
from audit.model import (
    CLOUD_OBJECTS_SCHEMA,
    CLOUD_USERS_SCHEMA,
    Domain,
    Feature,
    Tenant,
    TenantFeatures,
    conform,
    empty_frame,
)
from audit.sources.csvfile import TYPE_NAME_CELLS, split_multi
from audit.sources.detect import Notes, bool_from_text, datetime_from_text
from audit.sources.graph_pages import (
    context_entity,
    error_text,
    flag_for,
    json_documents,
    lower_keys,
    pages,
)

_DOMAIN_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")
_INITIAL_DOMAIN_RE = re.compile(r"^[^.]+\.onmicrosoft\.com$", re.IGNORECASE)
GROUP_TYPES = {"#microsoft.graph.group": "group", "#microsoft.graph.orgcontact": "contact"}


# --- users ----------------------------------------------------------------------------------

# The user properties read, in Graph's spelling -> their cloud_users column. One table for the
# exact path (which matches names without case) and the bulk path (entra_bulk, which reads
# Graph's spelling only).
TEXT_PROPERTIES = {
    "userPrincipalName": "upn",
    "mail": "mail",
    "mailNickname": "mail_nickname",
    "displayName": "display_name",
    "onPremisesImmutableId": "immutable_id",
    "onPremisesDistinguishedName": "on_prem_dn",
    "onPremisesSamAccountName": "on_prem_sam",
    "onPremisesSecurityIdentifier": "on_prem_sid",
    "onPremisesUserPrincipalName": "on_prem_upn",
    "onPremisesDomainName": "on_prem_domain",
    "onPremisesObjectIdentifier": "on_prem_object_id",
    "userType": "user_type",
    "employeeId": "employee_id",
}
BOOL_PROPERTIES = {"onPremisesSyncEnabled": "sync_enabled", "accountEnabled": "account_enabled"}
TIME_PROPERTIES = {
    "onPremisesLastSyncDateTime": "last_sync",
    "createdDateTime": "created",
    "deletedDateTime": "deleted_at",
}
# (column, Graph property lower-cased): how the exact path looks them up
_TEXT_PROPERTIES = tuple((column, prop.lower()) for prop, column in TEXT_PROPERTIES.items())
_BOOL_PROPERTIES = tuple((column, prop.lower()) for prop, column in BOOL_PROPERTIES.items())
_TIME_PROPERTIES = tuple((column, prop.lower()) for prop, column in TIME_PROPERTIES.items())
# Returned only when named in $select (FACTS.md section 3): missing everywhere = not exported.
SELECT_ONLY = ("onPremisesImmutableId", "proxyAddresses", "onPremisesSyncEnabled")


@dataclass
class CloudUsers:
    """Cloud users (and groups/contacts) collected column by column over several inputs."""

    columns: dict[str, list[Any]] = field(default_factory=dict)
    objects: dict[str, list[Any]] = field(default_factory=dict)
    where: dict[str, tuple[str, int, bool]] = field(
        default_factory=dict
    )  # id -> (path, line, deleted)

    # Frames added in bulk (entra_bulk), in order with the rows above: see add_frame.
    parts: list[pl.DataFrame] = field(default_factory=list)
    # Where the bulk rows came from, a page at a time: (its ids, path, line, deleted). The ids
    # are the frame's own column (no copy); a row per user with its path would cost ~0.2x the
    # frame.
    bulk_where: list[tuple[pl.Series, str, int, bool]] = field(default_factory=list)

    def column(self, name: str) -> list[Any]:
        return self.columns.setdefault(name, [])

    def add_frame(
        self, frame: pl.DataFrame, where: list[tuple[pl.Series, str, int]], *, deleted: bool
    ) -> None:
        """cloud_users rows read in bulk, after the rows collected so far; `where` gives each
        page's ids, path and line."""
        self._flush()
        self.parts.append(frame)
        self.bulk_where += [(ids, path, line, deleted) for ids, path, line in where]

    def taken_ids(self) -> pl.Series | None:
        """Every user id added so far, or None when there is none."""
        ids = [ids for ids, *_ in self.bulk_where] + (
            [pl.Series(list(self.where), dtype=pl.String)] if self.where else []
        )
        return pl.concat(ids) if ids else None

    def exact_where(self) -> dict[str, tuple[str, int, bool]]:
        """`where` with the users added in bulk too, for the exact path's repeat checks."""
        for ids, path, line, deleted in self.bulk_where:
            for user_id in ids:
                self.where[user_id] = (path, line, deleted)
        self.bulk_where.clear()
        return self.where

    def _flush(self) -> None:
        if self.columns.get("id"):
            self.parts.append(_users_part(self.columns))
            self.columns = {}


@dataclass
class UserFileResult:
    rows: int = 0
    excluded: dict[str, int] = field(default_factory=dict)


# (where: a file, or a live page's Origin; line in a file; the object; the object type its
# page's @odata.context names)
UserItem = tuple[Path | Origin, int, dict[str, Any], str]


def add_user_objects(
    target: CloudUsers,
    items: Iterable[UserItem],
    notes: Notes,
    *,
    deleted: bool,
    taken_at: datetime,
) -> UserFileResult:
    """Users -> cloud_users columns, groups/contacts -> cloud_objects; counts what was skipped."""
    result = UserFileResult()
    seen_keys: set[str] = set()
    target.exact_where()
    for path, line, obj, page_type in items:
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
        note_select_only(seen_keys, notes)
    return result


def note_select_only(seen_keys: set[str] | frozenset[str], notes: Notes) -> None:
    """A property Graph returns only when named in $select that no user of an export has:
    the export did not ask for it (`seen_keys`: lower-case names)."""
    for prop in SELECT_ONLY:
        if prop.lower() not in seen_keys:
            notes.add(f"no user has {prop!r}: it is returned only when named in $select")


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
    target: CloudUsers,
    obj: Mapping[str, Any],
    kind: str,
    path: Path | Origin,
    line: int,
    notes: Notes,
) -> None:
    object_id = text_value(obj.get("id"))
    if object_id is None:
        raise InputError(path, f"{kind} without an id", line=line)
    cols = target.objects
    cols.setdefault("id", []).append(object_id)
    cols.setdefault("object_type", []).append(kind)
    cols.setdefault("display_name", []).append(text_value(obj.get("displayname")))
    cols.setdefault("mail", []).append(text_value(obj.get("mail")))
    cols.setdefault("proxy_addresses", []).append(
        _strings(obj.get("proxyaddresses"), "proxyAddresses", notes)
    )


def _add_user(
    target: CloudUsers,
    obj: Mapping[str, Any],
    path: Path | Origin,
    line: int,
    notes: Notes,
    *,
    deleted: bool,
    taken_at: datetime,
) -> None:
    user_id = text_value(obj.get("id"))
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
        target.column(column).append(text_value(obj.get(prop)))
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


def text_value(value: Any) -> str | None:
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
                    "category": text_value(err.get("category")),
                    "occurred": _time(err.get("occurreddatetime"), "occurredDateTime", notes),
                    "property": text_value(err.get("propertycausingerror")),
                    "value": text_value(err.get("value")),
                }
            )
    return errors


# --- domains and tenant -----------------------------------------------------------------------


_DOMAIN_PROPERTIES = frozenset({"isverified", "isinitial", "isdefault", "authenticationtype"})
# Properties only an organization object has (GET /organization), so a bare object saved
# without @odata.context is still recognised (Get-MgOrganization | ConvertTo-Json).
_ORGANIZATION_PROPERTIES = frozenset(
    {
        "verifieddomains",
        "tenanttype",
        "directorysizequota",
        "technicalnotificationmails",
        "securitycompliancenotificationmails",
        "marketingnotificationemails",
        "countrylettercode",
        "privacyprofile",
    }
)


def _entity_of(item: Mapping[str, Any]) -> str:
    """What kind of Graph object an item looks like, for the hint in an error."""
    if "userprincipalname" in item:
        return "users"
    if "principalid" in item:
        return "rolemanagement"
    if _ORGANIZATION_PROPERTIES & item.keys():
        return "organization"
    return ""


def domains_from_json(text: str, path: Path) -> list[Domain]:
    """GET /domains: id, isVerified, isInitial, isDefault, authenticationType."""
    found: list[Domain] = []
    for page in pages(text, path):
        entity = page.entity
        if page.context and not entity.startswith("domains"):
            raise InputError(
                path,
                f"this is not a GET /domains response ({page.context}){flag_for(entity)}",
                line=page.line,
            )
        for item in page.items:
            name = text_value(item.get("id"))
            if name is None:
                raise InputError(path, "domain without an id", line=page.line)
            # a domain object is named by its DNS name and says whether it is verified; a user
            # or role export given to --domains would otherwise become domains named by GUIDs
            if not _DOMAIN_RE.match(name) or not _DOMAIN_PROPERTIES & item.keys():
                raise InputError(
                    path,
                    f"not a domain: {name[:60]!r} (GET /domains objects have a domain name as id "
                    "and isVerified)" + flag_for(_entity_of(item)),
                    line=page.line,
                )
            found.append(
                Domain(
                    name=name,
                    verified=bool(bool_from_text(item.get("isverified"))),
                    initial=bool(bool_from_text(item.get("isinitial"))),
                    default=bool(bool_from_text(item.get("isdefault"))),
                    authentication_type=text_value(item.get("authenticationtype")) or "Managed",
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
    "synchronizeupnformanagedusersenabled": "synchronize_upn_for_managed_users",
}


def tenant_error(envelope: Mapping[str, Any]) -> str:
    """The warning for an error answer among the tenant's responses. Organization.Read.All
    reads /organization app-only; /directory/onPremisesSynchronization takes a delegated token
    only (OnPremDirectorySynchronization.Read.All; application: not supported, Microsoft's
    onpremisesdirectorysynchronization-get page), so a refusal there is the usual one."""
    said = error_text(envelope)
    if said.startswith("Authorization_RequestDenied"):
        return (
            f"a tenant call was refused ({said}): GET /directory/onPremisesSynchronization "
            "needs a delegated token (OnPremDirectorySynchronization.Read.All), so the matching "
            "switches are unknown unless [entra.features] sets them"
        )
    return f"Graph error response in the tenant file ({said}): skipped"


def tenant_from_json(text: str, path: Path, notes: Notes) -> TenantFacts:
    """GET /organization and/or GET /directory/onPremisesSynchronization, in any order."""
    facts = TenantFacts()
    for doc in json_documents(text, path):
        if not isinstance(doc.value, dict | list):
            raise InputError(path, "expected a JSON object", line=doc.line)
        envelope = lower_keys(doc.value) if isinstance(doc.value, dict) else {"value": doc.value}
        if "error" in envelope and "value" not in envelope:
            notes.add(tenant_error(envelope))
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
    organization = _ORGANIZATION_PROPERTIES & item.keys() and "userprincipalname" not in item
    if organization or "#organization" in context:
        facts.tenant_id = text_value(item.get("id"))
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
                    authentication_type=text_value(d.get("type")) or "Managed",
                )
            )
        facts.kinds.append("organization")
        return
    raise InputError(
        path,
        "not a GET /organization or GET /directory/onPremisesSynchronization response"
        + flag_for(context_entity(context) or _entity_of(item)),
        line=line,
    )


def tenant_features(facts: Mapping[str, bool | None]) -> TenantFeatures:
    """The switches GET /directory/onPremisesSynchronization returned; unknown otherwise."""
    return TenantFeatures(
        **{
            name: Feature(value=facts[name], source="graph")
            if facts.get(name) is not None
            else Feature()
            for name in _FEATURE_KEYS.values()
        }
    )


# --- frames -----------------------------------------------------------------------------------


def _users_part(columns: Mapping[str, list[Any]]) -> pl.DataFrame:
    height = len(columns["id"])
    data = {name: columns.get(name, [None] * height) for name in CLOUD_USERS_SCHEMA}
    nested = [name for name, dtype in CLOUD_USERS_SCHEMA.items() if isinstance(dtype, pl.List)]
    frame = pl.DataFrame(
        {name: values for name, values in data.items() if name not in nested},
        schema={name: dtype for name, dtype in CLOUD_USERS_SCHEMA.items() if name not in nested},
    )
    return frame.with_columns(
        _lists(name, data[name], CLOUD_USERS_SCHEMA[name]) for name in nested
    ).select(list(CLOUD_USERS_SCHEMA))


def _lists(name: str, values: list[Any], dtype: pl.DataType) -> pl.Series:
    """A list column from Python lists (None for null). Polars builds a nested column a row at
    a time (~35 us a row for lists of structs, most of a delta run's time at 1M users); here the
    items are one flat column, gathered back into rows by a group_by."""
    assert isinstance(dtype, pl.List)
    rows = [row for row, items in enumerate(values) if items for _ in items]
    flat = pl.Series(name, [item for items in values if items for item in items], dtype.inner)
    grouped = (
        pl.DataFrame({"row": pl.Series(rows, dtype=pl.Int64), name: flat})
        .group_by("row")
        .agg(pl.col(name))
    )
    every = pl.DataFrame(
        {
            "row": pl.int_range(len(values), eager=True),
            "null": pl.Series([v is None for v in values], dtype=pl.Boolean()),
        }
    )
    return (
        every.join(grouped, on="row", how="left", maintain_order="left")
        .select(
            pl.when(pl.col("null"))
            .then(None)
            .otherwise(pl.col(name).fill_null(pl.lit([], dtype=dtype)))
            .alias(name)
        )
        .to_series()
    )


def cloud_users_frame(users: CloudUsers) -> pl.DataFrame:
    parts = users.parts + ([_users_part(users.columns)] if users.columns.get("id") else [])
    if not parts:
        return empty_frame(CLOUD_USERS_SCHEMA)
    # Parts stay chunks of one frame (a rechunk would copy every user once more), and only a
    # frame with an id twice is de-duplicated (unique() copies it whole): at 1M users each
    # copy is ~600 MB beside the frame the read ends with.
    frame = parts[0] if len(parts) == 1 else pl.concat(parts, how="vertical", rechunk=False)
    if frame.get_column("id").n_unique() != frame.height:
        frame = frame.unique(subset=["id"], keep="last", maintain_order=True)
    return conform(frame, CLOUD_USERS_SCHEMA)


def cloud_objects_frame(users: CloudUsers) -> pl.DataFrame:
    if not users.objects.get("id"):
        return empty_frame(CLOUD_OBJECTS_SCHEMA)
    frame = pl.DataFrame(users.objects, schema=CLOUD_OBJECTS_SCHEMA)
    return conform(
        frame.unique(subset=["id"], keep="last", maintain_order=True), CLOUD_OBJECTS_SCHEMA
    )


def tenant_from(
    domains: Sequence[Domain], facts: TenantFacts, configured_tenant_id: str | None
) -> Tenant:
    """The tenant as Graph described it: domains (from GET /domains, else the organization's
    verifiedDomains), sync state and the matching switches. [entra.features] is applied when the
    run is analysed (classify.effective_features), so the snapshot holds only what Graph said."""
    domain_list = list(domains) or facts.domains
    initial = next((d.name for d in domain_list if d.initial), None)
    return Tenant(
        tenant_id=facts.tenant_id or configured_tenant_id or None,
        initial_domain=initial,
        domains=tuple(domain_list),
        dirsync_enabled=facts.dirsync_enabled,
        last_dirsync=facts.last_dirsync.isoformat().replace("+00:00", "Z")
        if facts.last_dirsync
        else None,
        features=tenant_features(facts.features),
        known=True,
    )
