"""Microsoft Graph responses saved to files: users, deleted users, domains, tenant, roles.

One reader takes every shape people save: a response page ``{"value": [...]}``, a bare array,
several pages concatenated (``}{``), and JSON Lines. Property names are matched without case
(PowerShell round-trips change it). Calls and field meanings: FACTS.md section 3.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from audit.model import Domain, Feature, TenantFeatures
from audit.sources.csvfile import TYPE_NAME_CELLS, split_multi
from audit.sources.detect import InputError, Notes, bool_from_text, datetime_from_text
from audit.sources.entra_roles import BUILT_IN_ROLES

_WHITESPACE_RE = re.compile(r"[ \t\r\n]*")
_DOMAIN_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")
_INITIAL_DOMAIN_RE = re.compile(r"^[^.]+\.onmicrosoft\.com$", re.IGNORECASE)

GROUP_TYPES = {"#microsoft.graph.group": "group", "#microsoft.graph.orgcontact": "contact"}


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
        except RecursionError:
            # No Graph response nests more than a few levels; thousands of [[[... are an attack
            # or a broken file, and would otherwise end in a traceback.
            raise InputError(
                path, "JSON nested too deeply to be a Graph export", line=line
            ) from None
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
    path: Path
    delta_link: str | None = None  # /users/delta ends with @odata.deltaLink instead
    count: int | None = None  # @odata.count, when the export asked for $count=true

    @property
    def entity(self) -> str:
        """What the @odata.context names, lower-cased: `users(id,...)`, `domains`..."""
        return context_entity(self.context)

    @property
    def final(self) -> bool:
        """The last page of its export: Graph leaves out @odata.nextLink only there."""
        return self.next_link is None


def context_entity(context: str) -> str:
    """`https://graph.microsoft.com/v1.0/$metadata#users(id)` -> `users(id)` (lower-cased)."""
    return context.lower().rsplit("#", 1)[-1]


def pages(text: str, path: Path) -> Iterator[Page]:
    """Documents as pages of lower-cased objects; a Graph error response is an InputError.

    A JSON array is either a bare list of objects or a list of saved response pages (what
    PowerShell's ConvertTo-Json makes of responses collected in an array).
    """
    for doc in json_documents(text, path):
        if isinstance(doc.value, list):
            if doc.value and all(_is_envelope(x) for x in doc.value):
                for envelope in doc.value:
                    yield _envelope_page(lower_keys(envelope), path, doc.line)
                continue
            items = [_object(x, path, doc.line) for x in doc.value]
            yield Page(items=items, context="", next_link=None, line=doc.line, path=path)
            continue
        if not isinstance(doc.value, dict):
            raise InputError(path, "expected a JSON object or array", line=doc.line)
        yield _envelope_page(lower_keys(doc.value), path, doc.line)


def _is_envelope(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(lower_keys(value).get("value"), list)


def _envelope_page(envelope: dict[str, Any], path: Path, line: int) -> Page:
    if "error" in envelope and "value" not in envelope:
        raise InputError(
            path, f"the file holds a Graph error response: {_error_text(envelope)}", line=line
        )
    context = str(envelope.get("@odata.context") or "")
    values = envelope.get("value")
    if not isinstance(values, list):  # JSON Lines row, or a single-object response
        return Page(items=[envelope], context=context, next_link=None, line=line, path=path)
    next_link = envelope.get("@odata.nextlink")
    delta_link = envelope.get("@odata.deltalink")
    count = envelope.get("@odata.count")
    return Page(
        items=[_object(x, path, line) for x in values],
        context=context,
        next_link=str(next_link) if next_link else None,
        line=line,
        path=path,
        delta_link=str(delta_link) if delta_link else None,
        count=count if isinstance(count, int) and not isinstance(count, bool) else None,
    )


@dataclass(frozen=True)
class Export:
    """The pages that answer one Graph query, from one file or several (Graph Explorer shows
    one page at a time, so people save `users-0.json users-1.json ...`)."""

    pages: tuple[Page, ...]
    complete: bool
    incomplete_reason: str | None = None
    note: str | None = None  # how the pages were put together

    @property
    def files(self) -> tuple[Path, ...]:
        return tuple(dict.fromkeys(page.path for page in self.pages))

    @property
    def enveloped(self) -> bool:
        """Saved as response pages (@odata.context / nextLink), not as bare objects."""
        return any(page.context or page.next_link or page.delta_link for page in self.pages)


def exports(pages: Sequence[Page]) -> list[Export]:
    """Group pages into the queries they answer and judge whether each query is complete.

    Pages of one query share their @odata.context (it names the entity set and the $select),
    whatever file they were saved in; pages without one (bare arrays, JSON Lines) are their
    file's own export. A query is complete when its pages form a chain: Graph puts an
    @odata.nextLink on every page but the last (paging.md), so exactly one page lacks it, no
    two pages carry the same nextLink (a page saved twice), no object id is on two pages, and
    the object count equals @odata.count when the export asked for it. The order of the pages
    is not needed: a nextLink is opaque, and the page it leads to does not repeat it.
    """
    groups: dict[tuple[str, str], list[Page]] = {}
    for page in pages:
        key = (
            ("context", page.context.strip().lower()) if page.context else ("file", str(page.path))
        )
        groups.setdefault(key, []).append(page)
    return [_judged(tuple(group)) for group in groups.values()]


def _judged(pages: tuple[Page, ...]) -> Export:
    if not any(page.context or page.next_link for page in pages):
        return Export(pages, complete=True)  # bare objects: nothing says more pages exist
    delta = any(p.delta_link for p in pages) or any("@removed" in o for p in pages for o in p.items)
    finals = [p for p in pages if p.final]
    objects = sum(len(p.items) for p in pages)

    def where(page: Page) -> str:
        return f"{page.path.name}:{page.line}"

    problem: str | None = None
    if not finals:
        last = "the page" if len(pages) == 1 else "every page"
        problem = (
            f"{last} has an @odata.nextLink: the export stopped before the end "
            "(save the page that nextLink returns too, up to one without it)"
        )
    elif len(finals) > 1:
        problem = (
            f"{len(finals)} pages without @odata.nextLink ({', '.join(map(where, finals[:4]))}): "
            "pages of more than one export of the same query"
        )
    else:
        links: dict[str, Page] = {}
        for page in pages:
            if page.next_link is not None:
                if page.next_link in links:
                    first = links[page.next_link]
                    problem = f"{where(first)} and {where(page)} are the same page saved twice"
                    break
                links[page.next_link] = page
    if problem is None and not delta:
        problem = _repeated_id(pages)
    counts = {p.count for p in pages if p.count is not None}
    if problem is None and counts and counts != {objects}:
        problem = f"@odata.count says {min(counts):,} objects, the pages hold {objects:,}"
    note = None
    if len(pages) > 1:
        files = tuple(dict.fromkeys(p.path.name for p in pages))
        spread = f"{len(files)} files" if len(files) > 1 else files[0]
        note = (
            f"{len(pages)} pages from {spread} read as one export of "
            f"{_query_name(pages[0].context)}: {len(pages) - len(finals)} with @odata.nextLink, "
            f"{len(finals)} without; {objects:,} objects"
            + ("" if delta else ", no id on two pages")
            + (", as @odata.count says" if counts == {objects} else "")
        )
    if problem is not None:
        return Export(pages, complete=False, incomplete_reason=problem, note=note)
    return Export(pages, complete=True, note=note)


def _repeated_id(pages: tuple[Page, ...]) -> str | None:
    seen: dict[str, Page] = {}
    for page in pages:
        for obj in page.items:
            object_id = obj.get("id")
            if not isinstance(object_id, str):
                continue
            first = seen.setdefault(object_id, page)
            if first is not page:
                return (
                    f"id {object_id} is on two pages ({first.path.name}:{first.line} and "
                    f"{page.path.name}:{page.line}): a page saved twice, or pages of two exports"
                )
    return None


def _query_name(context: str) -> str:
    """`$metadata#users(id,...)` -> users; for the import summary."""
    name = context.rsplit("#", 1)[-1].split("(", 1)[0]
    return name or "the same query"


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
    excluded: dict[str, int] = field(default_factory=dict)


# (file, line, object, the object type its page's @odata.context names)
UserItem = tuple[Path, int, dict[str, Any], str]


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


# The entity set an @odata.context names (`$metadata#<entity>`) -> the import flag it belongs to.
RESPONSE_FLAGS = (
    ("users", "--cloud"),
    ("directory/deleteditems", "--deleted"),
    ("domains", "--domains"),
    ("organization", "--tenant"),
    ("directory/onpremisessynchronization", "--tenant"),
    ("rolemanagement", "--roles"),
)


def import_flag(entity: str) -> str | None:
    """The import flag for a response about `entity` (lower-cased, after the '#')."""
    return next((flag for prefix, flag in RESPONSE_FLAGS if entity.startswith(prefix)), None)


def flag_for(entity: str) -> str:
    """`: pass it with --cloud` for a response that belongs to an import flag."""
    flag = import_flag(entity)
    return f": pass it with {flag}" if flag else ""


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
            name = _text(item.get("id"))
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
    organization = _ORGANIZATION_PROPERTIES & item.keys() and "userprincipalname" not in item
    if organization or "#organization" in context:
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
            for name in ("block_soft_match", "block_hard_match_takeover", "soft_match_on_upn")
        }
    )


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
                group_id = _text(item.get("id"))
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
    role_id = _text(item.get("id"))
    if role_id is None:
        raise InputError(path, "role definition without an id", line=line)
    template = _text(item.get("templateid"))
    return RoleDefinition(
        id=role_id.lower(),
        template_id=template.lower() if template else None,
        name=_text(item.get("displayname")),
        privileged=bool_from_text(item.get("isprivileged")),
    )


def _role_grant(item: Mapping[str, Any], path: Path, line: int, *, eligible: bool) -> RoleGrant:
    principal = _text(item.get("principalid"))
    role_id = _text(item.get("roledefinitionid"))
    if principal is None or role_id is None:
        raise InputError(path, "role entry without principalId and roleDefinitionId", line=line)
    expanded = item.get("roledefinition")
    definition = lower_keys(expanded) if isinstance(expanded, dict) else {}
    template = _text(definition.get("templateid"))
    return RoleGrant(
        principal_id=principal,
        role_id=role_id.lower(),
        eligible=eligible,
        name=_text(definition.get("displayname")),
        privileged=bool_from_text(definition.get("isprivileged")),
        template_id=template.lower() if template else None,
        path=path,
    )
