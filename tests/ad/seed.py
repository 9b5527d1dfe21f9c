"""Seeding a test DC through LDAP (issue 12 item 2): a small but realistic estate, written with
ldap3 over the connection a test passes in (LDAPS, verified), the way an administrator's tool
would, so what the DC stores is what AD would store. Every object is read back after writing:
a `Seeded` record holds what the DC stored, and the tests compare against that.

What the first forest (CORP) holds, each object there for a reason the tests name:
- OUs in and out of sync scope (OU=Sync,OU=Corp included, OU=Leavers inside it excluded,
  OU=Parked and OU=Corp itself outside), enabled and disabled users;
- computers (the people search leaves them out; an (objectClass=user) export has them);
- the system accounts IdFix skips, where Exchange and Entra Connect put them (HealthMailbox,
  SystemMailbox{...}, DiscoverySearchMailbox, FederatedEmail, MSOL_, a cn ending in $, a
  replication-conflict object), and people whose names only look like them (Guestrin, Iwamoto);
- mS-DS-ConsistencyGuid unset, equal to objectGUID, different, 15 bytes, the 36-byte ASCII
  text of the objectGUID, and its first 16 characters;
- values shared by two users (an smtp proxy, a UPN that is another user's alias, a
  targetAddress, a mailNickname), a `.local` UPN suffix, non-ASCII names, DNs and UPN, an
  escaped comma in a DN, 300 proxyAddresses, an inetOrgPerson.
The second forest (FABRIKAM) holds a user with the UPN of a CORP user: see FABRIKAM.

targetAddress and mailNickname are Exchange attributes: a forest without Exchange's schema has
neither, Samba's included. `exchange_attributes` adds them through LDAP as Exchange's
PrepareSchema does, which Samba refuses unless its smb.conf has `dsdb:schema update allowed =
true`; without it those values are not written (`Seeded.stored` says so) and tests that need
them say why.

The users carry no password (Samba accepts an enabled user without one, Windows would not:
tests must not rely on it beyond seeding; a password costs ~20 ms per user).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from tests.ad.client import ldap3

# Sync scope of the tests: OU=Sync,OU=Corp, without OU=Leavers inside it.
IN_SCOPE_OU = "OU=Sync,OU=Corp"
EXCLUDED_OU = "OU=Leavers,OU=Sync,OU=Corp"
STAFF = "OU=Staff,OU=Sync,OU=Corp"
UF_ACCOUNTDISABLE = 0x2
UF_NORMAL_ACCOUNT = 0x200
UF_WORKSTATION_TRUST_ACCOUNT = 0x1000
EXCHANGE_OBJECTS = "CN=Microsoft Exchange System Objects"
MONITORING = f"CN=Monitoring Mailboxes,{EXCHANGE_OBJECTS}"

Consistency = Literal["unset", "equal", "different", "short", "ascii", "text16"]
Kind = Literal["user", "inetOrgPerson", "computer"]
OBJECT_CLASSES: dict[str, list[str]] = {
    "user": ["top", "person", "organizationalPerson", "user"],
    "inetOrgPerson": ["top", "person", "organizationalPerson", "user", "inetOrgPerson"],
    "computer": ["top", "person", "organizationalPerson", "user", "computer"],
}
# What is read back of every seeded object (raw values).
READ_BACK = (
    "objectGUID",
    "mS-DS-ConsistencyGuid",
    "objectClass",
    "cn",
    "sAMAccountName",
    "userPrincipalName",
    "mail",
    "proxyAddresses",
    "targetAddress",
    "mailNickname",
    "userAccountControl",
    "displayName",
    "givenName",
    "sn",
)
EXCHANGE_ATTRIBUTES = ("targetAddress", "mailNickname")


@dataclass(frozen=True)
class SeedUser:
    """One object to write. `cn` defaults to `sam`; `ou` is its parent, relative to the base DN."""

    sam: str
    ou: str
    cn: str = ""
    kind: Kind = "user"
    enabled: bool = True
    consistency: Consistency = "unset"
    upn: str | None = None
    mail: str | None = None
    proxies: tuple[str, ...] = ()
    target: str | None = None  # targetAddress (Exchange schema)
    nickname: str | None = None  # mailNickname (Exchange schema)
    given: str = ""
    surname: str = ""
    display: str = ""
    # why a reader drops it (audit.sources.ad.exclusion_reason); None: a person it keeps
    excluded: str | None = None
    # a replication-conflict object: renamed to "<cn>\0ACNF:<its objectGUID>" once written
    conflict: bool = False
    # left out of scope by Entra Connect's default sync rules wherever it sits (kept, not dropped)
    sync_rules_skip: bool = False

    @property
    def name(self) -> str:
        return self.cn or self.sam


@dataclass(frozen=True)
class Seeded:
    """What the DC stored for one seeded object, as read back after writing."""

    user: SeedUser
    dn: str  # as the DC spells it
    object_guid: bytes  # 16 bytes, AD's (little-endian) order
    consistency_guid: bytes | None
    # every READ_BACK attribute the DC holds, lower-case name -> raw values
    stored: Mapping[str, tuple[bytes, ...]] = field(default_factory=dict)

    def text(self, attribute: str) -> list[str]:
        return [v.decode("utf-8") for v in self.stored.get(attribute.lower(), ())]


@dataclass(frozen=True)
class Estate:
    """Containers (relative DN, objectClass; parents first), the objects, and the sync scope
    (relative DNs) the tests configure for it."""

    containers: tuple[tuple[str, str], ...]
    users: tuple[SeedUser, ...]
    include_ous: tuple[str, ...]
    exclude_ous: tuple[str, ...] = ()

    def in_scope(self, user: SeedUser) -> bool:
        """In sync scope as configured (the reader keeps out-of-scope people, with a reason)."""
        if user.sync_rules_skip:
            return False
        best = max(
            ((len(ou), ou in self.include_ous) for ou in (*self.include_ous, *self.exclude_ous)
             if _under(user.ou, ou)),
            default=None,
        )  # fmt: skip
        return best is not None and best[1]

    def scope(self, base_dn: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(include_ous, exclude_ous) as an [[ad]] table names them."""
        return (
            tuple(f"{ou},{base_dn}" for ou in self.include_ous),
            tuple(f"{ou},{base_dn}" for ou in self.exclude_ous),
        )


def _under(ou: str, parent: str) -> bool:
    return ou.lower() == parent.lower() or ou.lower().endswith("," + parent.lower())


def person(
    sam: str, ou: str, *, domain: str = "contoso.com", local: str = "", **changes: Any
) -> SeedUser:
    """A mail-enabled person: UPN, mail and primary SMTP <local>@<domain> (local: the first part
    of the sAMAccountName), names from the sAMAccountName, unless `changes` say otherwise."""
    local = local or sam.split(".")[0]
    address = f"{local}@{domain}"
    defaults: dict[str, Any] = {
        "upn": address,
        "mail": address,
        "proxies": (f"SMTP:{address}",),
        "given": local.title(),
        "surname": sam.split(".")[-1].title(),
    }
    defaults.update(changes)
    user = SeedUser(sam, ou, **defaults)
    return user if user.display else replace(user, display=f"{user.given} {user.surname}")


def system(cn: str, ou: str, sam: str, reason: str, **changes: Any) -> SeedUser:
    """An account IdFix (and the reader) skips, with the reason the reader must give."""
    return SeedUser(sam, ou, cn=cn, excluded=reason, display=cn, **changes)


# Rex has had many names and list memberships: 300 proxyAddresses, one of them with a space
# (an alias typed by hand), which IdFix flags.
REX_PROXIES = (
    "SMTP:rex@contoso.com",
    *(f"smtp:rex.{n:03d}@contoso.com" for n in range(1, 299)),
    "smtp:rex old@contoso.com",
)

CORP = Estate(
    containers=(
        ("OU=Corp", "organizationalUnit"),
        ("OU=Sync,OU=Corp", "organizationalUnit"),
        (STAFF, "organizationalUnit"),
        ("OU=Contractors,OU=Sync,OU=Corp", "organizationalUnit"),
        ("OU=Workstations,OU=Sync,OU=Corp", "organizationalUnit"),
        (EXCLUDED_OU, "organizationalUnit"),
        ("OU=Parked,OU=Corp", "organizationalUnit"),
        (EXCHANGE_OBJECTS, "container"),
        (MONITORING, "container"),
    ),
    include_ous=(IN_SCOPE_OU,),
    exclude_ous=(EXCLUDED_OU,),
    users=(
        person("ada.sync", IN_SCOPE_OU),
        person(
            "bo.equal",
            STAFF,
            consistency="equal",
            proxies=("SMTP:bo@contoso.com", "smtp:bo.alias@contoso.com"),
        ),
        person("cy.migrated", STAFF, consistency="different"),  # ADMT kept its old anchor
        person("di.short", IN_SCOPE_OU, consistency="short"),
        person("ed.disabled", IN_SCOPE_OU, enabled=False),  # a leaver not yet moved
        person("fa.parked", "OU=Parked,OU=Corp", consistency="equal"),
        person("gus.toplevel", "OU=Corp", enabled=False),
        person("hal.leaver", EXCLUDED_OU, enabled=False),
        person("ivy.ascii", STAFF, consistency="ascii"),  # a script wrote the GUID's text
        person("jo.text16", STAFF, consistency="text16"),  # ...cut to 16 characters
        # one shared mailbox alias on two users
        person("lee.sales", STAFF, proxies=("SMTP:lee@contoso.com", "smtp:sales@contoso.com")),
        person("max.sales", STAFF, proxies=("SMTP:max@contoso.com", "smtp:sales@contoso.com")),
        # Oz took over Nia's address as an alias: one user's UPN is another's proxy
        person("nia.upn", STAFF),
        person("oz.alias", STAFF, proxies=("SMTP:oz@contoso.com", "smtp:nia@contoso.com")),
        person("pat.both", STAFF),  # FABRIKAM has a user with the same UPN
        person("quinn.local", IN_SCOPE_OU, upn="quinn@corp.local"),
        person(
            "zoe.nunez",
            STAFF,
            cn="Zoë Ñúñez",
            upn="zoë.ñúñez@contoso.com",
            local="zoe.nunez",
            given="Zoë",
            surname="Ñúñez",
        ),
        person(
            "lukasz.zolc",
            STAFF,
            cn="Łukasz Żółć",
            local="lukasz.zolc",
            given="Łukasz",
            surname="Żółć",
        ),
        person("john.smith", STAFF, cn="Smith, John", local="john.smith", surname="Smith"),
        person("rex.many", STAFF, proxies=REX_PROXIES),
        person("sky.contractor", "OU=Contractors,OU=Sync,OU=Corp", kind="inetOrgPerson"),
        # Exchange remote mailboxes; Uma's targetAddress was copied from Tia's
        person("tia.remote", STAFF, target="SMTP:tia@contoso.mail.onmicrosoft.com", nickname="tia"),
        person("uma.copy", STAFF, target="SMTP:tia@contoso.mail.onmicrosoft.com", nickname="uma"),
        person("vic.route", STAFF, target="SMTP:vic@corp.local", nickname="vic"),
        person("wes.helpdesk", STAFF, nickname="helpdesk"),
        person("xan.helpdesk", STAFF, nickname="helpdesk"),
        person("yul.disabled", STAFF, enabled=False),
        person("zed.returning", STAFF),  # its cloud account sits in the recycle bin
        person("jane.doe", STAFF, cn="Jane Doe"),
        # the loser of a create-create collision on two DCs (its sAMAccountName renamed too)
        system("Jane Doe", STAFF, "$DUPLICATE-451", "replication-conflict", conflict=True),
        person("carlos.guestrin", STAFF, cn="Carlos Guestrin", local="carlos.guestrin"),
        person("kenji.iwamoto", STAFF, cn="Kenji Iwamoto", local="kenji.iwamoto"),
        system("svc-template$", IN_SCOPE_OU, "svc-template$", "cn-ends-with-$"),
        system(
            "HealthMailbox1f2e3d4c5b6a47989a0b1c2d3e4f5a6b",
            MONITORING,
            "HealthMailbox1f2e3d4",
            "system-account",
            upn="HealthMailbox1f2e3d4c5b6a47989a0b1c2d3e4f5a6b@contoso.com",
        ),
        system(
            "SystemMailbox{1f05a927-3be2-4fb9-aa03-b59fe3b56f4c}",
            "CN=Users",
            "SM_1f05a9273be24fb9a",
            "system-account",
            enabled=False,
            upn="SystemMailbox{1f05a927-3be2-4fb9-aa03-b59fe3b56f4c}@contoso.com",
        ),
        system(
            "DiscoverySearchMailbox {D919BA05-46A6-415f-80AD-7E09334BB852}",
            "CN=Users",
            "SM_2d6b3c1a7e8f4a5b9",
            "system-account",
            enabled=False,
        ),
        system(
            "FederatedEmail.4c1f4d8b-8179-4148-93bf-00a95fa1e042",
            "CN=Users",
            "SM_4c1f4d8b81794148a",
            "system-account",
            enabled=False,
        ),
        system("MSOL_1a2b3c4d5e6f", "CN=Users", "MSOL_1a2b3c4d5e6f", "system-account"),
        # Entra Connect's service account when installed on a DC: a person to the reader,
        # out of scope by the default sync rules
        SeedUser("AAD_9f8e7d6c5b4a", "CN=Users", display="AAD_9f8e7d6c5b4a", sync_rules_skip=True),
        system(
            "WS-0142",
            "OU=Workstations,OU=Sync,OU=Corp",
            "WS-0142$",
            "computer",
            kind="computer",
        ),
        system(
            "LAPTOP-7F3K2Q",
            "OU=Workstations,OU=Sync,OU=Corp",
            "LAPTOP-7F3K2Q$",
            "computer",
            kind="computer",
        ),
    ),
)
ESTATE = CORP.users

# FABRIKAM, acquired. A duplicate UPN cannot be seeded in one forest: Windows (and Samba)
# refuse a UPN another object of the forest has, case-insensitively. Samba answered
#   constraintViolation "0000202F: samldb: userPrincipalName '<upn>' is already in use"
# to an add and to a modify with the same UPN, the same UPN in other case, and the UPN with a
# trailing space. Across two forests nothing stops it: FABRIKAM's Pat has CORP Pat's UPN.
FABRIKAM = Estate(
    containers=(("OU=Employees", "organizationalUnit"),),
    include_ous=("OU=Employees",),
    users=(
        person(
            "pat.fab",
            "OU=Employees",
            domain="fabrikam.com",
            upn="pat@contoso.com",
            given="Pat",
            surname="Fabrikam",
        ),
        person("ben.fab", "OU=Employees", domain="fabrikam.com"),
    ),
)


def dn_of(user: SeedUser, base_dn: str) -> str:
    """The DN the seed writes: a conflict object is written under a name of its own and
    renamed after (`Seeded.dn` is the DN the DC has)."""
    name = f"{user.name} (conflict)" if user.conflict else user.name
    return f"CN={ldap3.utils.dn.escape_rdn(name)},{user.ou},{base_dn}"


def seed(connection: Any, base_dn: str, estate: Estate = CORP) -> list[Seeded]:
    """Write the estate through `connection` (bound, TLS) and read back what was stored.

    An estate already there (its first container exists) is only read back: two test modules
    may each ask for the same forest's estate in one session."""
    exchange = exchange_attributes(connection, base_dn)
    first = f"{estate.containers[0][0]},{base_dn}"
    if not _exists(connection, first):
        for container, object_class in estate.containers:
            dn = f"{container},{base_dn}"
            _ok(connection, connection.add(dn, ["top", object_class]), dn)
        for user in estate.users:
            write(connection, user, base_dn, exchange)
    return read_back(connection, base_dn, estate)


def write(connection: Any, user: SeedUser, base_dn: str, exchange: bool) -> None:
    dn = dn_of(user, base_dn)
    uac = UF_WORKSTATION_TRUST_ACCOUNT if user.kind == "computer" else UF_NORMAL_ACCOUNT
    values: dict[str, Any] = {
        "sAMAccountName": user.sam,
        "userAccountControl": str(uac | (0 if user.enabled else UF_ACCOUNTDISABLE)),
        "userPrincipalName": user.upn,
        "mail": user.mail,
        "proxyAddresses": list(user.proxies),
        "givenName": user.given,
        "sn": user.surname,
        "displayName": user.display,
    }
    if exchange:
        values.update(targetAddress=user.target, mailNickname=user.nickname)
    if user.consistency == "different":
        values["mS-DS-ConsistencyGuid"] = uuid.uuid4().bytes_le
    elif user.consistency == "short":
        values["mS-DS-ConsistencyGuid"] = uuid.uuid4().bytes_le[:15]
    attributes = {name: value for name, value in values.items() if value}
    _ok(connection, connection.add(dn, OBJECT_CLASSES[user.kind], attributes), dn)
    if user.consistency in ("equal", "ascii", "text16") or user.conflict:
        guid = read_guids(connection, dn)[0]
        text = str(uuid.UUID(bytes_le=guid)).encode("ascii")
        stamped = {"equal": guid, "ascii": text, "text16": text[:16]}.get(user.consistency)
        if stamped is not None:
            change = {"mS-DS-ConsistencyGuid": [(ldap3.MODIFY_REPLACE, [stamped])]}
            _ok(connection, connection.modify(dn, change), dn)
        if user.conflict:
            # what replication names the loser: the cn, a line feed, CNF: and its objectGUID
            rdn = f"CN={user.name}\\0ACNF:{uuid.UUID(bytes_le=guid)}"
            _ok(connection, connection.modify_dn(dn, rdn), dn)


def read_back(connection: Any, base_dn: str, estate: Estate) -> list[Seeded]:
    """Every object of the estate as the DC stores it, in estate order; one paged search."""
    entries = connection.extend.standard.paged_search(
        base_dn,
        "(objectClass=user)",
        attributes=list(READ_BACK),
        paged_size=500,
        generator=False,
    )
    # sAMAccountName is unique in a domain (Samba refuses a second one, entryAlreadyExists)
    by_sam: dict[str, tuple[str, dict[str, tuple[bytes, ...]]]] = {}
    for entry in entries:
        if entry["type"] == "searchResEntry":
            raw = {k.lower(): tuple(v) for k, v in entry["raw_attributes"].items() if v}
            by_sam[raw["samaccountname"][0].decode().lower()] = (entry["dn"], raw)
    seeded = []
    for user in estate.users:
        if user.sam.lower() not in by_sam:
            raise AssertionError(f"seeding {user.sam}: not found under {base_dn}")
        dn, raw = by_sam[user.sam.lower()]
        consistency = raw.get("ms-ds-consistencyguid", (None,))[0]
        seeded.append(Seeded(user, dn, raw["objectguid"][0], consistency, raw))
    return seeded


def exchange_attributes(connection: Any, base_dn: str) -> bool:
    """Whether users can hold targetAddress and mailNickname: already in the schema, or added
    now as Exchange's PrepareSchema adds them (attributeSchema objects with Exchange's OIDs
    and schemaIDGUIDs, may-contain of the mailRecipient class every user has). False when the
    DC refuses schema updates (Samba without `dsdb:schema update allowed = true`)."""
    schema = f"CN=Schema,CN=Configuration,{base_dn}"
    missing = [name for name in EXCHANGE_ATTRIBUTES if not _in_schema(connection, schema, name)]
    if not missing:
        return True
    for name in missing:
        cn, oid, schema_id, upper, flags = _EXCHANGE_SCHEMA[name]
        values = {
            "attributeID": oid,
            "lDAPDisplayName": name,
            "adminDisplayName": cn,
            "attributeSyntax": "2.5.5.12",  # Unicode string
            "oMSyntax": "64",
            "isSingleValued": "TRUE",
            "rangeLower": "1",
            "rangeUpper": upper,
            "searchFlags": flags,
            "schemaIDGUID": uuid.UUID(schema_id).bytes_le,
        }
        if not connection.add(f"CN={cn},{schema}", ["top", "attributeSchema"], values):
            if connection.result.get("description") == "unwillingToPerform":
                return False  # "schema_data_add: updates are not allowed"
            _ok(connection, False, f"the schema attribute {name}")
    change = {"mayContain": [(ldap3.MODIFY_ADD, missing)]}
    _ok(connection, connection.modify(f"CN=Mail-Recipient,{schema}", change), "Mail-Recipient")
    schema_update_now(connection)
    return True


# Exchange's definitions: cn, attributeID, schemaIDGUID, rangeUpper, searchFlags.
_EXCHANGE_SCHEMA = {
    "targetAddress": (
        "ms-Exch-Target-Address",
        "1.2.840.113556.1.2.352",
        "f0f8ff9f-1191-11d0-a060-00aa006c33ed",
        "1123",
        "1",
    ),
    "mailNickname": (
        "ms-Exch-Mail-Nickname",
        "1.2.840.113556.1.2.447",
        "bf9679d3-0de6-11d0-a285-00aa003049e2",
        "64",
        "5",
    ),
}


def schema_update_now(connection: Any) -> None:
    """Load the changed schema before it is used, as Windows needs (Samba mostly reloads on
    its own, but not at a moment a test can count on; ~0.5 s). ldap3 refuses the rootDSE's
    empty DN unless its name check is off for the call."""
    checking, connection.check_names = connection.check_names, False
    try:
        done = connection.modify("", {"schemaUpdateNow": [(ldap3.MODIFY_REPLACE, ["1"])]})
    finally:
        connection.check_names = checking
    _ok(connection, done, "schemaUpdateNow")


def _in_schema(connection: Any, schema: str, name: str) -> bool:
    found = connection.search(
        schema, f"(lDAPDisplayName={name})", ldap3.LEVEL, attributes=["lDAPDisplayName"]
    )
    return bool(found and connection.response)


def _exists(connection: Any, dn: str) -> bool:
    connection.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["objectGUID"])
    if connection.result["result"] == 32:  # noSuchObject
        return False
    _ok(connection, connection.result["result"] == 0, dn)
    return True


def read_guids(connection: Any, dn: str) -> tuple[bytes, bytes | None]:
    """objectGUID and mS-DS-ConsistencyGuid of one object, as raw bytes."""
    found = connection.search(
        dn, "(objectClass=*)", ldap3.BASE, attributes=["objectGUID", "mS-DS-ConsistencyGuid"]
    )
    _ok(connection, found, dn)
    raw = connection.response[0]["raw_attributes"]
    consistency = raw.get("mS-DS-ConsistencyGuid") or [None]
    return raw["objectGUID"][0], consistency[0]


def _ok(connection: Any, done: bool, what: str) -> None:
    if not done:
        raise AssertionError(f"seeding {what}: {connection.result}")
