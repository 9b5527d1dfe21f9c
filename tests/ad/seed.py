"""Seeding a test DC through LDAP (issue 12 item 2, first part): OUs in and out of sync scope,
enabled and disabled users, mS-DS-ConsistencyGuid unset / equal to objectGUID / different /
15 bytes, proxyAddresses. Written with ldap3 over the connection a test passes in (LDAPS,
verified), the way an administrator's tool would, so what the DC stores is what AD would store.

The users carry no password (Samba accepts an enabled user without one, Windows would not:
tests must not rely on it beyond seeding; a password costs ~20 ms per user).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from tests.ad.client import ldap3

# OUs relative to the base DN, parents first. Sync scope of the tests: OU=Sync,OU=Corp.
OUS = ("OU=Corp", "OU=Sync,OU=Corp", "OU=Staff,OU=Sync,OU=Corp", "OU=Parked,OU=Corp")
IN_SCOPE_OU = "OU=Sync,OU=Corp"
UF_ACCOUNTDISABLE = 0x2
UF_NORMAL_ACCOUNT = 0x200

Consistency = Literal["unset", "equal", "different", "short"]


@dataclass(frozen=True)
class SeedUser:
    sam: str
    ou: str  # relative to the base DN, one of OUS
    enabled: bool = True
    consistency: Consistency = "unset"
    proxies: tuple[str, ...] = ()
    given: str = "Test"


@dataclass(frozen=True)
class Seeded:
    """What the DC stored for one seeded user, as read back after writing."""

    user: SeedUser
    dn: str
    object_guid: bytes  # 16 bytes, AD's (little-endian) order
    consistency_guid: bytes | None


ESTATE = (
    SeedUser("ada.sync", "OU=Sync,OU=Corp", proxies=("SMTP:ada@corp.example.test",)),
    SeedUser(
        "bo.equal",
        "OU=Staff,OU=Sync,OU=Corp",
        consistency="equal",
        proxies=("SMTP:bo@corp.example.test", "smtp:bo.alias@corp.example.test"),
    ),
    SeedUser("cy.migrated", "OU=Staff,OU=Sync,OU=Corp", consistency="different"),
    SeedUser("di.short", "OU=Sync,OU=Corp", consistency="short"),
    SeedUser("ed.disabled", "OU=Sync,OU=Corp", enabled=False),
    SeedUser("fa.parked", "OU=Parked,OU=Corp", consistency="equal"),
    SeedUser("gus.toplevel", "OU=Corp", enabled=False),
)


def dn_of(user: SeedUser, base_dn: str) -> str:
    return f"CN={user.sam},{user.ou},{base_dn}"


def upn_of(user: SeedUser, base_dn: str) -> str:
    realm = ".".join(part.split("=", 1)[1] for part in base_dn.split(","))
    return f"{user.sam}@{realm.lower()}"


def seed(connection: Any, base_dn: str, users: Iterable[SeedUser] = ESTATE) -> list[Seeded]:
    """Write the OUs and users through `connection` (bound, TLS) and read back what was stored."""
    for ou in OUS:
        _ok(connection, connection.add(f"{ou},{base_dn}", ["top", "organizationalUnit"]), ou)
    seeded = []
    for user in users:
        dn = dn_of(user, base_dn)
        attributes: dict[str, Any] = {
            "sAMAccountName": user.sam,
            "userPrincipalName": upn_of(user, base_dn),
            "givenName": user.given,
            "sn": user.sam.split(".")[-1].title(),
            "displayName": f"{user.given} {user.sam}",
            "userAccountControl": str(
                UF_NORMAL_ACCOUNT | (0 if user.enabled else UF_ACCOUNTDISABLE)
            ),
        }
        if user.proxies:
            attributes["proxyAddresses"] = list(user.proxies)
            attributes["mail"] = user.proxies[0].split(":", 1)[1]
        if user.consistency == "different":
            attributes["mS-DS-ConsistencyGuid"] = uuid.uuid4().bytes_le
        elif user.consistency == "short":
            attributes["mS-DS-ConsistencyGuid"] = uuid.uuid4().bytes_le[:15]
        object_classes = ["top", "person", "organizationalPerson", "user"]
        _ok(connection, connection.add(dn, object_classes, attributes), dn)
        guid, consistency = read_guids(connection, dn)
        if user.consistency == "equal":
            change = {"mS-DS-ConsistencyGuid": [(ldap3.MODIFY_REPLACE, [guid])]}
            _ok(connection, connection.modify(dn, change), dn)
            guid, consistency = read_guids(connection, dn)
        seeded.append(Seeded(user, dn, guid, consistency))
    return seeded


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
