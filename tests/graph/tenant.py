"""The emulated tenant's truth, as plain Python data a test controls: users (live and
soft-deleted), domains, the organization, the sync switches, role definitions, assignments,
eligibilities and groups. Users are kept in an ordered store that a generator can back for
100k-1M users without building them: a generated user is a pure function of its index, and only
users a test touched are materialised. Every user mutation is journalled, which is what /users/delta
answers from.

Property names and shapes follow the user resource (FACTS.md section 3;
https://learn.microsoft.com/graph/api/resources/user?view=graph-rest-1.0), with the properties
audit/sources/entra.py reads (TEXT/BOOL/TIME_PROPERTIES, proxyAddresses,
onPremisesProvisioningErrors)."""

from __future__ import annotations

import base64
import copy
import json
import operator
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# GET /users without $select returns only these (List users, "By default, only a limited set of
# properties are returned": https://learn.microsoft.com/graph/api/user-list?view=graph-rest-1.0).
DEFAULT_USER_PROPERTIES = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
# Every user property the emulator holds, in the order it writes them. onPremisesObjectIdentifier
# is a beta property (not in v1.0's user resource nor msgraph-sdk 1.x's v1.0 User model):
# selecting it on v1.0 is a 400, as for any name the type lacks.
USER_PROPERTIES = (
    "id",
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "accountEnabled",
    "createdDateTime",
    "deletedDateTime",
    "employeeId",
    "mailNickname",
    "userType",
    "proxyAddresses",
    "onPremisesImmutableId",
    "onPremisesSyncEnabled",
    "onPremisesLastSyncDateTime",
    "onPremisesDistinguishedName",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesUserPrincipalName",
    "onPremisesDomainName",
    "onPremisesProvisioningErrors",
    "onPremisesObjectIdentifier",
)
BETA_ONLY_USER_PROPERTIES = frozenset({"onPremisesObjectIdentifier"})
# Other documented user properties a client may name: accepted in $select, always null here.
OTHER_USER_PROPERTIES = (
    "department",
    "companyName",
    "city",
    "country",
    "usageLocation",
    "otherMails",
    "onPremisesExtensionAttributes",
    "externalUserState",
    "creationType",
    "employeeType",
    "identities",
)

GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"


def user_property_names(version: str) -> dict[str, str]:
    """lower-case name -> Graph's spelling, for a case-insensitive $select (OData names are
    matched without case by Graph; the response uses the declared spelling)."""
    names = [*USER_PROPERTIES, *OTHER_USER_PROPERTIES]
    if version != "beta":
        names = [n for n in names if n not in BETA_ONLY_USER_PROPERTIES]
    return {n.lower(): n for n in names}


def new_id() -> str:
    return str(uuid.uuid4())


def user(
    upn: str,
    *,
    id: str | None = None,
    synced: bool = False,
    immutable_id: str | None = None,
    **properties: Any,
) -> dict[str, Any]:
    """A user dict with every property in USER_PROPERTIES (null when not given). `synced` fills
    the onPremises* properties as Entra Connect leaves them; any property can be overridden by
    its Graph name."""
    local = upn.split("@", 1)[0]
    obj: dict[str, Any] = dict.fromkeys(USER_PROPERTIES)
    obj.update(
        id=id or new_id(),
        businessPhones=[],
        displayName=local,
        mail=upn,
        userPrincipalName=upn,
        accountEnabled=True,
        createdDateTime="2025-01-15T09:00:00Z",
        mailNickname=local,
        userType="Member",
        proxyAddresses=[f"SMTP:{upn}"],
        onPremisesProvisioningErrors=[],
    )
    if synced:
        object_guid = uuid.uuid4()
        obj.update(
            onPremisesSyncEnabled=True,
            onPremisesImmutableId=immutable_id
            or base64.b64encode(object_guid.bytes_le).decode("ascii"),
            onPremisesLastSyncDateTime="2026-11-30T06:00:00Z",
            onPremisesDistinguishedName=f"CN={local},OU=Users,DC=corp,DC=example",
            onPremisesSamAccountName=local[:20],
            onPremisesSecurityIdentifier="S-1-5-21-1004336348-1177238915-682003330-"
            + str(object_guid.int % 90000 + 1000),
            onPremisesUserPrincipalName=f"{local}@corp.example",
            onPremisesDomainName="corp.example",
            onPremisesObjectIdentifier=str(object_guid),
        )
    elif immutable_id is not None:
        obj["onPremisesImmutableId"] = immutable_id
    unknown = set(properties) - set(USER_PROPERTIES)
    if unknown:
        raise ValueError(f"not user properties: {', '.join(sorted(unknown))}")
    obj.update(properties)
    return obj


# --- generated users --------------------------------------------------------------------------

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_PAIRS = tuple(_B64[k >> 6] + _B64[k & 63] for k in range(4096))
_DATES = tuple(f"2024-{1 + k % 12:02d}-{1 + k % 28:02d}" for k in range(84))  # lcm(12, 28)
_PLACEHOLDER_RE = re.compile(r"%\((\w+)\)s")


@dataclass(frozen=True)
class Template:
    text: str  # JSON with %s where a per-user value goes
    fields: Callable[[tuple[str, ...]], tuple[str, ...]] | None  # picks them from _values()


class GeneratedUsers:
    """`count` users that are a pure function of their index: nothing is stored per user, and a
    page of them is written by string templates (no dict, no json.dumps per user). Every 5th user
    is cloud-only; the others are synced, with an onPremisesImmutableId that is the base64 of
    their on-premises objectGUID (onPremisesObjectIdentifier); every 1000th synced user carries a
    provisioning error; every 50th is disabled; every 10th has no employeeId."""

    def __init__(self, count: int, *, seed: int = 1, domain: str = "contoso.example") -> None:
        self.count = count
        self.seed = seed & 0xFFFF
        self.domain = domain
        self._tail = f"-{self.seed:04x}-4000-8000-"
        # objectGUID = i (data1, < 2**24) + fixed data2..data4: bytes_le starts with i
        self._guid_fixed = uuid.UUID(f"00000000-{self.seed:04x}-4abc-9def-0123456789ab").bytes_le[
            4:
        ]
        if count > 1 << 24:
            raise ValueError("at most 16,777,216 generated users (3 bytes of the objectGUID)")
        self._b64_tail = base64.b64encode(bytes(4) + self._guid_fixed)[4:].decode("ascii")
        self._guid_rest = str(uuid.UUID(bytes_le=bytes(4) + self._guid_fixed))[8:]
        self._templates: dict[tuple[str, ...], tuple[Template, Template]] = {}

    def user(self, i: int) -> dict[str, Any]:
        """The full user dict of index i (what a test compares with, and the base a mutation
        starts from)."""
        obj: dict[str, Any] = json.loads(self.encode(i, USER_PROPERTIES))
        return obj

    def object_guid(self, i: int) -> uuid.UUID:
        return uuid.UUID(bytes_le=i.to_bytes(4, "little") + self._guid_fixed)

    def user_id(self, i: int) -> str:
        return f"{i:08x}{self._tail}{i:012x}"

    def index_of(self, user_id: str) -> int | None:
        head = user_id.partition("-")[0]
        try:
            i = int(head, 16)
        except ValueError:
            return None
        return i if 0 <= i < self.count and self.user_id(i) == user_id else None

    # The per-user values a template takes, in this order: computed column by column for a run
    # of users (list comprehensions), then one positional % per user (the fastest formatting
    # CPython has); a template picks the values it uses.
    _FIELDS = ("id", "n", "b64", "guid", "rid", "date")

    def _columns(self, indexes: Sequence[int]) -> Iterator[tuple[str, ...]]:
        tail, guid_rest, b64_tail = self._tail, self._guid_rest, self._b64_tail
        # base64(objectGUID bytes_le): i fills bytes 0-2, so it makes the first 4 characters
        # (two 12-bit table look-ups) and the 13 fixed bytes the other 20.
        heads = [(i & 0xFF) << 16 | (i & 0xFF00) | (i >> 16) & 0xFF for i in indexes]
        return zip(
            [f"{i:08x}{tail}{i:012x}" for i in indexes],
            [f"{i:07d}" for i in indexes],
            [_B64_PAIRS[v >> 12] + _B64_PAIRS[v & 0xFFF] + b64_tail for v in heads],
            [f"{i:08x}{guid_rest}" for i in indexes],
            [str(1000 + i) for i in indexes],
            [_DATES[i % 84] for i in indexes],
            strict=True,
        )

    def _template(self, select: tuple[str, ...]) -> tuple[str, str]:
        found = self._templates.get(select)
        if found is None:
            found = self._templates[select] = (
                self._build(select, synced=True),
                self._build(select, synced=False),
            )
        return found

    def _build(self, select: tuple[str, ...], *, synced: bool) -> Template:
        d = self.domain
        mail = f"user%(n)s@{d}"
        on_prem: dict[str, Any] = {
            "onPremisesImmutableId": "%(b64)s",
            "onPremisesSyncEnabled": True,
            "onPremisesLastSyncDateTime": "2026-11-30T06:00:00Z",
            "onPremisesDistinguishedName": "CN=User %(n)s,OU=Users,DC=corp,DC=example",
            "onPremisesSamAccountName": "u%(n)s",
            "onPremisesSecurityIdentifier": "S-1-5-21-1004336348-1177238915-682003330-%(rid)s",
            "onPremisesUserPrincipalName": "user%(n)s@corp.example",
            "onPremisesDomainName": "corp.example",
            "onPremisesObjectIdentifier": "%(guid)s",
        }
        values: dict[str, Any] = dict.fromkeys(USER_PROPERTIES)
        values.update(
            id="%(id)s",
            businessPhones=[],
            displayName="User %(n)s",
            givenName="User",
            surname="%(n)s",
            mail=mail,
            userPrincipalName=mail,
            accountEnabled=True,
            createdDateTime="%(date)sT08:00:00Z",
            employeeId="E%(n)s",
            mailNickname="user%(n)s",
            userType="Member",
            proxyAddresses=[
                f"SMTP:{mail}",
                f"smtp:user%(n)s@{d.split('.')[0]}.mail.onmicrosoft.com",
            ],
            onPremisesProvisioningErrors=[],
        )
        if synced:
            values.update(on_prem)
        named = (
            "{"
            + ",".join(
                f'"{name}":{json.dumps(values.get(name), separators=(",", ":"))}' for name in select
            )
            + "}"
        )
        used = [self._FIELDS.index(m) for m in _PLACEHOLDER_RE.findall(named)]
        text = _PLACEHOLDER_RE.sub("%s", named)
        if not used:
            return Template(text, None)
        getter = operator.itemgetter(*used) if len(used) > 1 else lambda v: (v[used[0]],)
        return Template(text, getter)

    def encode(self, i: int, select: tuple[str, ...]) -> str:
        """User i as compact JSON with exactly the `select` properties, in that order."""
        return self.encode_many([i], select)[0]

    def encode_many(self, indexes: Sequence[int], select: tuple[str, ...]) -> list[str]:
        synced, cloud = self._template(select)
        out = []
        append = out.append
        for i, values in zip(indexes, self._columns(indexes), strict=True):
            template = cloud if i % 5 == 0 else synced
            text = (
                template.text
                if template.fields is None
                else template.text % template.fields(values)
            )
            if i % 10 == 0 or i % 1000 == 3:
                text = self._quirks(i, text, select)
            append(text)
        return out

    def _quirks(self, i: int, text: str, select: tuple[str, ...]) -> str:
        # The few users that differ from their template, patched as text (rare, so cheap).
        if i % 50 == 0 and "accountEnabled" in select:
            text = text.replace('"accountEnabled":true', '"accountEnabled":false', 1)
        if i % 10 == 0 and "employeeId" in select:
            text = text.replace(f'"employeeId":"E{i:07d}"', '"employeeId":null', 1)
        if i % 1000 == 3 and "onPremisesProvisioningErrors" in select:
            error = {
                "category": "PropertyConflict",
                "occurredDateTime": "2026-11-29T22:10:00Z",
                "propertyCausingError": "ProxyAddresses",
                "value": f"smtp:user{i:07d}@{self.domain}",
            }
            text = text.replace(
                '"onPremisesProvisioningErrors":[]',
                '"onPremisesProvisioningErrors":[' + json.dumps(error, separators=(",", ":")) + "]",
                1,
            )
        return text


# --- the user store ---------------------------------------------------------------------------

_GONE = object()  # a slot whose user left the live set (soft-deleted or purged)


@dataclass(frozen=True)
class Change:
    """One journalled user mutation: the user's state just before it (None: did not exist, or
    was not live) and where it was (live, soft-deleted or nowhere) before and after."""

    version: int
    user_id: str
    before: dict[str, Any] | None
    was: str  # "live" | "deleted" | "absent"
    now: str


class UserStore:
    """Live users in a stable order (a slot per user, kept when the user leaves, so paging by
    position never skips anyone), soft-deleted users, and the change journal."""

    def __init__(
        self, users: Sequence[Mapping[str, Any]] = (), generated: GeneratedUsers | None = None
    ):
        self.lock = threading.RLock()
        self.generated = generated
        self._base = generated.count if generated else 0
        self._overrides: dict[int, Any] = {}  # generated slot -> user dict or _GONE
        self._extra: list[Any] = []  # slots after the generated ones: user dict or _GONE
        self._slot: dict[str, int] = {}  # id -> slot, for users not generated-and-untouched
        self.deleted: dict[str, dict[str, Any]] = {}  # soft-deleted users by id
        self.journal: list[Change] = []
        self.version = 0
        self.live_count = self._base
        for obj in users:
            self._append(copy.deepcopy(dict(obj)))
            self.live_count += 1

    # slots
    @property
    def slots(self) -> int:
        return self._base + len(self._extra)

    def _append(self, obj: dict[str, Any]) -> None:
        if obj["id"] in self._slot or self._generated_index(obj["id"]) is not None:
            raise ValueError(f"user {obj['id']} exists")
        self._slot[obj["id"]] = self.slots
        self._extra.append(obj)

    def _generated_index(self, user_id: str) -> int | None:
        if self.generated is None or user_id in self._slot:
            return None
        i = self.generated.index_of(user_id)
        return i if i is not None and i not in self._overrides else None

    def slot_value(self, slot: int) -> dict[str, Any] | int | None:
        """A live user's dict, its generated index (untouched generated user), or None."""
        if slot < self._base:
            found = self._overrides.get(slot)
            if found is None:
                return slot
            return None if found is _GONE else found
        found = self._extra[slot - self._base]
        return None if found is _GONE else found

    def get(self, user_id: str) -> dict[str, Any] | None:
        """A live user's full dict (a copy), or None."""
        with self.lock:
            i = self._generated_index(user_id)
            if i is not None:
                assert self.generated is not None
                return self.generated.user(i)
            slot = self._slot.get(user_id)
            if slot is None:
                return None
            value = self.slot_value(slot)
            return copy.deepcopy(value) if isinstance(value, dict) else None

    def live(self) -> Iterator[dict[str, Any]]:
        """Every live user, in order (materialises generated ones: for tests, not benchmarks)."""
        for slot in range(self.slots):
            value = self.slot_value(slot)
            if isinstance(value, int):
                assert self.generated is not None
                yield self.generated.user(value)
            elif value is not None:
                yield copy.deepcopy(value)

    def _set_slot(self, user_id: str, value: Any) -> None:
        slot = self._slot.get(user_id)
        if slot is None:
            assert self.generated is not None
            i = self.generated.index_of(user_id)
            assert i is not None
            self._slot[user_id] = slot = i
        if slot < self._base:
            self._overrides[slot] = value
        else:
            self._extra[slot - self._base] = value

    def _record(self, user_id: str, before: dict[str, Any] | None, was: str, now: str) -> None:
        self.version += 1
        self.journal.append(Change(self.version, user_id, before, was, now))

    # mutations (what a test scripts between two delta rounds)
    def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            new = copy.deepcopy(dict(obj))
            if new["id"] in self.deleted:
                raise ValueError(f"user {new['id']} is soft-deleted: restore it")
            self._append(new)
            self.live_count += 1
            self._record(new["id"], None, "absent", "live")
            return copy.deepcopy(new)

    def update(self, user_id: str, **properties: Any) -> dict[str, Any]:
        with self.lock:
            before = self._require_live(user_id)
            unknown = set(properties) - set(USER_PROPERTIES) - {"id"}
            if unknown or "id" in properties:
                raise ValueError(
                    f"cannot set: {', '.join(sorted(unknown | ({'id'} & set(properties))))}"
                )
            after = {**before, **copy.deepcopy(properties)}
            self._set_slot(user_id, after)
            self._record(user_id, before, "live", "live")
            return copy.deepcopy(after)

    def soft_delete(self, user_id: str, when: str = "2026-12-01T10:00:00Z") -> None:
        """Delete as DELETE /users/{id} does: the user moves to deletedItems for 30 days,
        keeping its properties (and its onPremisesImmutableId: FACTS.md section 3)."""
        with self.lock:
            before = self._require_live(user_id)
            self._set_slot(user_id, _GONE)
            self.live_count -= 1
            self.deleted[user_id] = {**copy.deepcopy(before), "deletedDateTime": when}
            self._record(user_id, before, "live", "deleted")

    def restore(self, user_id: str) -> dict[str, Any]:
        """POST /directory/deletedItems/{id}/restore: back in the live set, in a new slot (a
        restored user shows up at the end of a later enumeration)."""
        with self.lock:
            obj = self.deleted.pop(user_id, None)
            if obj is None:
                raise KeyError(f"user {user_id} is not soft-deleted")
            obj["deletedDateTime"] = None
            self._slot.pop(user_id, None)
            self._append(obj)
            self.live_count += 1
            self._record(user_id, None, "deleted", "live")
            return copy.deepcopy(obj)

    def purge(self, user_id: str) -> None:
        """Hard delete: a live user (for a test's shortcut) or a soft-deleted one
        (DELETE /directory/deletedItems/{id}) is gone for good."""
        with self.lock:
            if user_id in self.deleted:
                del self.deleted[user_id]
                self._record(user_id, None, "deleted", "absent")
                return
            before = self._require_live(user_id)
            self._set_slot(user_id, _GONE)
            self.live_count -= 1
            self._record(user_id, before, "live", "absent")

    def _require_live(self, user_id: str) -> dict[str, Any]:
        found = self.get(user_id)
        if found is None:
            raise KeyError(f"no live user {user_id}")
        return found

    def changes_since(self, version: int) -> list[tuple[str, Change, Change, bool]]:
        """(id, first change after `version`, last change, whether it was soft-deleted in
        between) per user touched since, in the order of their last change."""
        with self.lock:
            first: dict[str, Change] = {}
            last: dict[str, Change] = {}
            deleted_between: set[str] = set()
            for change in self.journal:
                if change.version <= version:
                    continue
                first.setdefault(change.user_id, change)
                if change.was == "deleted":
                    deleted_between.add(change.user_id)
                last.pop(change.user_id, None)
                last[change.user_id] = change
            return [(uid, first[uid], c, uid in deleted_between) for uid, c in last.items()]


# --- the tenant -------------------------------------------------------------------------------


def _default_domains(tenant_name: str) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{tenant_name}.onmicrosoft.com",
            "authenticationType": "Managed",
            "isDefault": False,
            "isInitial": True,
            "isRoot": True,
            "isVerified": True,
            "supportedServices": ["Email", "OfficeCommunicationsOnline"],
        },
        {
            "id": "contoso.example",
            "authenticationType": "Managed",
            "isDefault": True,
            "isInitial": False,
            "isRoot": True,
            "isVerified": True,
            "supportedServices": ["Email"],
        },
    ]


def _default_role_definitions() -> list[dict[str, Any]]:
    def role(id_: str, name: str, privileged: bool) -> dict[str, Any]:
        return {
            "id": id_,
            "displayName": name,
            "description": name,
            "isBuiltIn": True,
            "isEnabled": True,
            "isPrivileged": privileged,
            "templateId": id_,
            "version": "1",
            "resourceScopes": ["/"],
            "rolePermissions": [],
        }

    return [
        role(GLOBAL_ADMINISTRATOR, "Global Administrator", True),
        role("fe930be7-5e62-47db-91af-98c3a49a38b1", "User Administrator", True),
        role("f2ef992c-3afb-46b9-b7cf-a126ee74c451", "Global Reader", True),
        role("29232cdf-9323-42fd-ade2-1d097af3e4de", "Exchange Administrator", False),
        role("fdd7a751-b60b-444a-984c-02652fe8fa1c", "Groups Administrator", False),
    ]


@dataclass
class Tenant:
    """Everything the emulator answers from. Mutate users through `users` (journalled, so delta
    sees it); the other fields are plain data a test may edit directly."""

    tenant_id: str = "8f1c2b4e-0a6d-4b7e-9c3f-5d2e1a0b9c8d"
    name: str = "contoso"
    users: UserStore = field(default_factory=UserStore)
    domains: list[dict[str, Any]] = field(default_factory=list)
    organization: dict[str, Any] = field(default_factory=dict)
    sync: dict[str, Any] = field(default_factory=dict)  # the onPremisesSynchronization object
    role_definitions: list[dict[str, Any]] = field(default_factory=_default_role_definitions)
    role_assignments: list[dict[str, Any]] = field(default_factory=list)
    role_eligibilities: list[dict[str, Any]] = field(default_factory=list)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> group, with "members"

    def __post_init__(self) -> None:
        if not self.domains:
            self.domains = _default_domains(self.name)
        if not self.organization:
            self.organization = {
                "id": self.tenant_id,
                "displayName": f"{self.name.title()} Ltd",
                "onPremisesSyncEnabled": True,
                "onPremisesLastSyncDateTime": "2026-11-30T06:00:00Z",
                "verifiedDomains": [],
            }
        if not self.organization.get("verifiedDomains"):
            self.organization["verifiedDomains"] = [
                {
                    "capabilities": ",".join(d.get("supportedServices", [])),
                    "isDefault": d["isDefault"],
                    "isInitial": d["isInitial"],
                    "name": d["id"],
                    "type": d["authenticationType"],
                }
                for d in self.domains
                if d["isVerified"]
            ]
        if not self.sync:
            self.sync = {
                "id": self.tenant_id,
                "configuration": {
                    "accidentalDeletionPrevention": {
                        "synchronizationPreventionType": "enabledForCount",
                        "alertThreshold": 500,
                    }
                },
                "features": {
                    "passwordSyncEnabled": True,
                    "softMatchOnUpnEnabled": True,
                    "blockSoftMatchEnabled": False,
                    "blockCloudObjectTakeoverThroughHardMatchEnabled": True,
                    "synchronizeUpnForManagedUsersEnabled": True,
                    "quarantineUponUpnConflictEnabled": True,
                    "quarantineUponProxyAddressesConflictEnabled": True,
                },
            }

    @property
    def initial_domain(self) -> str:
        return next(d["id"] for d in self.domains if d["isInitial"])

    def knows(self, tenant: str) -> bool:
        """Whether an authority's tenant segment names this tenant (its id or a verified
        domain; `organizations`/`common` are accepted for any work account)."""
        names = {self.tenant_id, *(d["id"].lower() for d in self.domains if d["isVerified"])}
        return tenant.lower() in names or tenant.lower() in ("organizations", "common")

    def add_group(self, display_name: str, members: Sequence[str], *, id: str | None = None) -> str:
        group_id = id or new_id()
        self.groups[group_id] = {
            "id": group_id,
            "displayName": display_name,
            "isAssignableToRole": True,
            "securityEnabled": True,
            "mailEnabled": False,
            "members": list(members),
        }
        return group_id

    def assign(self, principal_id: str, role_id: str = GLOBAL_ADMINISTRATOR) -> dict[str, Any]:
        item = {
            "id": new_id(),
            "principalId": principal_id,
            "roleDefinitionId": role_id,
            "directoryScopeId": "/",
        }
        self.role_assignments.append(item)
        return item

    def make_eligible(
        self, principal_id: str, role_id: str = GLOBAL_ADMINISTRATOR
    ) -> dict[str, Any]:
        item = {
            "id": new_id(),
            "principalId": principal_id,
            "roleDefinitionId": role_id,
            "directoryScopeId": "/",
            "appScopeId": None,
            "startDateTime": "2026-11-01T00:00:00Z",
            "endDateTime": None,
            "memberType": "Direct",
            "roleEligibilityScheduleId": new_id(),
        }
        self.role_eligibilities.append(item)
        return item


def generated_tenant(count: int, *, seed: int = 1) -> Tenant:
    """A tenant of `count` generated users (see GeneratedUsers), none materialised."""
    return Tenant(users=UserStore(generated=GeneratedUsers(count, seed=seed)))
