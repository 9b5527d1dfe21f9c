"""The built-in "Contoso" estate: realistic export files with known ground truth.

``write_demo_inputs`` writes what a consultant is handed for a readiness assessment: an ldifde
export of the ``corp.contoso.com`` forest, Graph JSON pages of the tenant's users (paged with
``@odata.nextLink`` like the real API, one file per page as Graph Explorer saves them), the
soft-deleted users, ``/domains``, ``/organization``
with ``/directory/onPremisesSynchronization``, the role assignments and PIM eligibilities, and a
config TOML. ``expected_findings`` is the ground truth: every finding code of the design's
table is planted on purpose, each in a few realistic variants, together with the secondary
findings the planted problem really causes. The background population (about 2,900 people) is
clean: matched, verified suffixes, valid attributes, synced minutes before the tenant's last
cycle, so "nothing found that was not planted" is a meaningful test of the rules.

Everything is deterministic: a seeded generator and dates relative to ``DEMO_TAKEN_AT``.

Ground-truth keys (``finding_key``): a finding is identified by ``(code, key)`` where key is the
finding's ``ad_dn`` when it names an AD user, else its ``cloud_id``, else its ``attribute``
(tenant-wide findings: the switch or setting name), else ``"tenant"``.
"""

from __future__ import annotations

import base64
import json
import random
import struct
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from audit.config import Settings, load_settings

DEMO_TAKEN_AT = "2026-11-23T06:00:00+00:00"
TAKEN = datetime.fromisoformat(DEMO_TAKEN_AT)
TENANT_LAST_SYNC = TAKEN - timedelta(hours=5)  # tenant-sync-stale at the 3 h threshold
SEED = 20261123

TENANT_ID = "6f1c3a52-8d4e-4b7a-9c21-5e0f7d3b9a10"
BASE_DN = "DC=corp,DC=contoso,DC=com"
AD_DNS_DOMAIN = "corp.contoso.com"
DOMAIN = "contoso.com"
FEDERATED = "fabrikam.com"
INITIAL = "contoso.onmicrosoft.com"
MAIL_ROUTING = "contoso.mail.onmicrosoft.com"
DISABLED_OU = f"OU=Disabled,{BASE_DN}"
SERVICE_OU = f"OU=Service Accounts,{BASE_DN}"
DOMAIN_SID = "S-1-5-21-3623811015-3361044348-30300820"
OLD_FOREST_DN = "DC=fabrikam,DC=local"
GRAPH = "https://graph.microsoft.com/v1.0"

# Directory role template ids (public, identical in every tenant) and Microsoft's PRIVILEGED
# label (permissions-reference, 2026-01-20): Exchange Administrator does not carry it.
GLOBAL_ADMIN = ("62e90394-69f5-4237-9190-012177145e10", "Global Administrator", True)
EXCHANGE_ADMIN = ("29232cdf-9323-42fd-ade2-1d097af3e4de", "Exchange Administrator", False)
PRIV_ROLE_ADMIN = ("e8611ab8-c189-46e8-94e1-60213ab1f814", "Privileged Role Administrator", True)
HELPDESK_ADMIN = ("729827e3-9c14-49f7-bb1b-9608f156bbb8", "Helpdesk Administrator", True)
USER_ADMIN = ("fe930be7-5e62-47db-91af-98c3a49a38b1", "User Administrator", True)
# A custom role: only the beta roleDefinitions export says whether it is privileged.
MAILBOX_AUDITOR = ("7d3c9b2a-5e41-4f08-9a6b-2c1d0e9f8a71", "Contoso Mailbox Auditor", False)

USERS_PAGE_SIZE = 999  # Graph's $top maximum
USER_SELECT = (
    "id,userPrincipalName,mail,mailNickname,proxyAddresses,displayName,givenName,surname,"
    "onPremisesImmutableId,onPremisesSyncEnabled,onPremisesLastSyncDateTime,"
    "onPremisesDistinguishedName,onPremisesSamAccountName,onPremisesSecurityIdentifier,"
    "onPremisesUserPrincipalName,onPremisesDomainName,onPremisesObjectIdentifier,"
    "accountEnabled,createdDateTime,userType,employeeId,onPremisesProvisioningErrors"
)

FIRST_NAMES = (  # noqa: SIM905 (a word list reads better as text)
    "James Mary Robert Patricia Michael Jennifer William Linda David Elizabeth Richard "
    "Barbara Joseph Susan Thomas Jessica Charles Sarah Daniel Karen Matthew Lisa Anthony "
    "Nancy Mark Betty Donald Sandra Steven Ashley Paul Kimberly Andrew Emily Joshua Donna "
    "Kenneth Michelle Brian Carol George Amanda Timothy Melissa Ronald Deborah Jason "
    "Stephanie Ryan Rebecca Jacob Laura Gary Sharon Nicholas Cynthia Eric Kathleen Jonathan "
    "Amy Stephen Angela Larry Shirley Justin Anna Scott Brenda Frank Pamela Benjamin Nicole "
    "Samuel Ruth"
).split()
LAST_NAMES = (  # noqa: SIM905 (a word list reads better as text)
    "Anderson Baker Bennett Brooks Butler Campbell Carter Clark Collins Cook Cooper Cox Cruz "
    "Edwards Evans Fisher Flores Foster Gomez Gray Green Hall Harris Hayes Hill Howard Hughes "
    "Jackson James Jenkins Jones Kelly Kim King Lee Lewis Long Martin Meyer Miller Mitchell "
    "Moore Morgan Morris Murphy Myers Nelson Nguyen Parker Perez Perry Peterson Phillips "
    "Powell Price Reed Reyes Richardson Rivera Roberts Rogers Ross Russell Sanders Scott "
    "Stewart Sullivan Taylor Thomas Thompson Torres Turner Walker Ward Watson White Williams "
    "Wilson Wood Wright Young Schneider Fischer Weber Wagner Becker Hoffmann Janssen"
).split()
# A few background people whose names carry diacritics: legal in displayName/givenName/sn,
# so they must NOT be findings (their UPNs and addresses are plain ASCII).
ACCENTED_PEOPLE = (
    ("José", "García", "jose.garcia"),
    ("Renée", "Lefèvre", "renee.lefevre"),
    ("Søren", "Kierkegård", "soren.kierkegard"),
    ("Zoltán", "Kovács", "zoltan.kovacs"),
    ("Björn", "Åkesson", "bjorn.akesson"),
)
STAFF_OUS = (
    ("Staff", 1150, DOMAIN),
    ("Sales", 700, DOMAIN),
    ("Engineering", 720, DOMAIN),
    ("Finance", 300, FEDERATED),  # the Fabrikam subsidiary signs in through its own IdP
)
CASCADE_PEOPLE = (
    ("Agnes", "Lindqvist"), ("Bruno", "Carvalho"), ("Chidi", "Okonkwo"), ("Dagny", "Moe"),
    ("Emil", "Sandberg"), ("Farah", "Haddad"), ("Gustav", "Ek"), ("Hana", "Novak"),
    ("Ivo", "Petrov"), ("Jonas", "Berg"), ("Kaja", "Strand"), ("Lior", "Ben-David"),
    ("Mette", "Holm"), ("Nils", "Dahl"),
)  # fmt: skip
SERVICE_ACCOUNTS = 24
DISABLED_PEOPLE = 60
DISABLED_WITH_DELETED_TWIN = 15


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


@dataclass
class AdEntry:
    """One AD object as ldifde exports it."""

    dn: str
    object_classes: tuple[str, ...]
    guid: uuid.UUID
    rid: int
    sam: str
    upn: str | None
    mail: str | None = None
    mail_nickname: str | None = None
    proxies: list[str] = field(default_factory=list)
    display_name: str | None = None
    given_name: str | None = None
    surname: str | None = None
    employee_id: str | None = None
    uac: int = 512
    consistency_guid: bytes | None = None
    target_address: str | None = None
    when_created: datetime = TAKEN - timedelta(days=900)
    when_changed: datetime = TAKEN - timedelta(days=30)
    last_logon: datetime | None = TAKEN - timedelta(days=2)
    critical: bool = False
    category: str = "Person"

    @property
    def anchor(self) -> str:
        """The effective sourceAnchor: ConsistencyGuid when set, else objectGUID (FACTS 1)."""
        raw = self.consistency_guid if self.consistency_guid is not None else self.guid.bytes_le
        return base64.b64encode(raw).decode("ascii")

    @property
    def sid(self) -> str:
        return f"{DOMAIN_SID}-{self.rid}"

    @property
    def enabled(self) -> bool:
        return not self.uac & 0x2


@dataclass
class Estate:
    rng: random.Random
    ad: list[AdEntry] = field(default_factory=list)
    cloud: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[dict[str, Any]] = field(default_factory=list)
    objects: list[dict[str, Any]] = field(default_factory=list)
    assignments: list[dict[str, Any]] = field(default_factory=list)
    eligibilities: list[dict[str, Any]] = field(default_factory=list)
    role_groups: list[dict[str, Any]] = field(default_factory=list)  # role-assignable, members
    expected: set[tuple[str, str]] = field(default_factory=set)
    used: set[str] = field(default_factory=set)
    next_rid: int = 1105

    # -- identifiers -------------------------------------------------------------------------

    def guid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def rid(self) -> int:
        self.next_rid += 1
        return self.next_rid

    def claim(self, *names: str) -> None:
        for name in names:
            key = name.lower()
            if key in self.used:
                raise ValueError(f"demo estate: {name!r} used twice")
            self.used.add(key)

    def unique_sam(self, base: str) -> str:
        """sAMAccountName is unique per domain: jsmith, jsmith2, jsmith3..."""
        candidate, number = base, 1
        while f"sam:{candidate}" in self.used:
            number += 1
            candidate = f"{base[: 20 - len(str(number))]}{number}"
        self.used.add(f"sam:{candidate}")
        return candidate

    def expect(self, code: str, key: str) -> None:
        self.expected.add((code, key))

    # -- builders ----------------------------------------------------------------------------

    def person(
        self,
        first: str,
        last: str,
        ou: str,
        *,
        alias: str | None = None,
        domain: str = DOMAIN,
        created_days: float = 900,
        **overrides: Any,
    ) -> AdEntry:
        """A clean, in-scope AD person; overrides change what the case needs."""
        alias = alias or f"{first}.{last}".lower().replace(" ", "")
        address = f"{alias}@{domain}"
        entry = AdEntry(
            dn=f"CN={first} {last},{ou}",
            object_classes=("top", "person", "organizationalPerson", "user"),
            guid=self.guid(),
            rid=self.rid(),
            sam=self.unique_sam(_sam(first, last)),
            upn=address,
            mail=address,
            mail_nickname=alias,
            proxies=[f"SMTP:{address}", f"smtp:{alias}@{MAIL_ROUTING}"],
            display_name=f"{first} {last}",
            given_name=first,
            surname=last,
            employee_id=str(100000 + self.next_rid),
            when_created=TAKEN - timedelta(days=created_days),
            when_changed=TAKEN - timedelta(days=min(created_days, self.rng.uniform(1, 60))),
            last_logon=TAKEN - timedelta(hours=self.rng.uniform(2, 200)),
        )
        for key, value in overrides.items():
            setattr(entry, key, value)
        entry.when_changed = max(entry.when_changed, entry.when_created)
        if entry.last_logon is not None and entry.last_logon < entry.when_created:
            entry.last_logon = None
        self.claim(entry.dn, *([entry.upn] if entry.upn else []))
        self.ad.append(entry)
        return entry

    def twin(self, entry: AdEntry, **overrides: Any) -> dict[str, Any]:
        """The synced cloud user of `entry`, as Graph returns it; overrides make it differ."""
        created = entry.when_created + timedelta(minutes=self.rng.uniform(20, 90))
        user: dict[str, Any] = {
            "id": str(self.guid()),
            "userPrincipalName": entry.upn,
            "mail": entry.mail,
            "mailNickname": entry.mail_nickname or entry.sam,
            "proxyAddresses": list(entry.proxies),
            "displayName": entry.display_name,
            "givenName": entry.given_name,
            "surname": entry.surname,
            "onPremisesImmutableId": entry.anchor,
            "onPremisesSyncEnabled": True,
            "onPremisesLastSyncDateTime": _iso(
                TENANT_LAST_SYNC - timedelta(seconds=self.rng.uniform(0, 1800))
            ),
            "onPremisesDistinguishedName": entry.dn,
            "onPremisesSamAccountName": entry.sam,
            "onPremisesSecurityIdentifier": entry.sid,
            "onPremisesUserPrincipalName": entry.upn,
            "onPremisesDomainName": AD_DNS_DOMAIN,
            # Entra Connect 2.2.8.0+ syncs it for every synced user: healthy pairs carry it.
            "onPremisesObjectIdentifier": str(entry.guid),
            "accountEnabled": entry.enabled,
            "createdDateTime": _iso(min(created, TAKEN - timedelta(hours=6))),
            "userType": "Member",
            "employeeId": entry.employee_id,
            "onPremisesProvisioningErrors": [],
        }
        user.update(overrides)
        self.cloud.append(user)
        return user

    def cloud_only(
        self, upn: str, display_name: str, *, created_days: float = 200, **overrides: Any
    ) -> dict[str, Any]:
        alias = upn.split("@", 1)[0]
        first, _, last = display_name.partition(" ")
        user: dict[str, Any] = {
            "id": str(self.guid()),
            "userPrincipalName": upn,
            "mail": upn,
            "mailNickname": alias,
            "proxyAddresses": [f"SMTP:{upn}", f"smtp:{alias}@{MAIL_ROUTING}"],
            "displayName": display_name,
            "givenName": first or None,
            "surname": last or None,
            "onPremisesImmutableId": None,
            "onPremisesSyncEnabled": None,
            "onPremisesLastSyncDateTime": None,
            "onPremisesDistinguishedName": None,
            "onPremisesSamAccountName": None,
            "onPremisesSecurityIdentifier": None,
            "onPremisesUserPrincipalName": None,
            "onPremisesDomainName": None,
            "onPremisesObjectIdentifier": None,
            "accountEnabled": True,
            "createdDateTime": _iso(TAKEN - timedelta(days=created_days)),
            "userType": "Member",
            "employeeId": None,
            "onPremisesProvisioningErrors": [],
        }
        user.update(overrides)
        self.cloud.append(user)
        return user

    def soft_delete(self, user: dict[str, Any], days_ago: float) -> None:
        """Move a cloud user to the recycle bin (it keeps its immutableId: FACTS 3)."""
        self.cloud.remove(user)
        user["deletedDateTime"] = _iso(TAKEN - timedelta(days=days_ago))
        user["accountEnabled"] = False
        self.deleted.append(user)

    def role(
        self, principal: dict[str, Any], role: tuple[str, str, bool], *, eligible: bool
    ) -> None:
        """An assignment as GET /v1.0/roleManagement/directory/roleAssignments?$expand=
        roleDefinition returns it: v1.0 has no isPrivileged (beta only), so the importer takes
        the flag from its built-in table or the beta roleDefinitions export."""
        template, name, _privileged = role
        item: dict[str, Any] = {
            "id": f"{template[:8]}-{principal['id']}",
            "principalId": principal["id"],
            "roleDefinitionId": template,
            "directoryScopeId": "/",
            "roleDefinition": {
                "id": template,
                "templateId": template,
                "displayName": name,
                "isBuiltIn": template != MAILBOX_AUDITOR[0],
            },
        }
        if eligible:
            item.update(
                memberType="Direct",
                startDateTime=_iso(TAKEN - timedelta(days=120)),
                endDateTime=None,
                roleEligibilityScheduleId=str(self.guid()),
            )
            self.eligibilities.append(item)
        else:
            self.assignments.append(item)


# -- the estate --------------------------------------------------------------------------------


def build_estate() -> Estate:
    estate = Estate(rng=random.Random(SEED))
    _system_objects(estate)
    _background(estate)
    _plant_anchor_cases(estate)
    _plant_matching_cases(estate)
    _plant_duplicate_cases(estate)
    _plant_drift_cases(estate)
    _plant_tenant_cases(estate)
    _plant_idfix_cases(estate)
    _plant_late_cases(estate)
    return estate


def _system_objects(estate: Estate) -> None:
    """Accounts every domain has and importers must drop: never findings."""
    users = f"CN=Users,{BASE_DN}"
    for cn, rid, uac in (
        ("Administrator", 500, 66048),
        ("Guest", 501, 66082),
        ("krbtgt", 502, 514),
    ):
        entry = AdEntry(
            dn=f"CN={cn},{users}",
            object_classes=("top", "person", "organizationalPerson", "user"),
            guid=estate.guid(),
            rid=rid,
            sam=cn,
            upn=None,
            uac=uac,
            critical=True,
            when_created=TAKEN - timedelta(days=2900),
            last_logon=None,
        )
        estate.ad.append(entry)
    exchange = f"CN=Monitoring Mailboxes,CN=Microsoft Exchange System Objects,{BASE_DN}"
    for suffix in ("7f1e2d3c4b5a49688776655443322110", "0a1b2c3d4e5f40718293a4b5c6d7e8f9"):
        estate.ad.append(
            AdEntry(
                dn=f"CN=HealthMailbox{suffix[:7]},{exchange}",
                object_classes=("top", "person", "organizationalPerson", "user"),
                guid=estate.guid(),
                rid=estate.rid(),
                sam=f"HealthMailbox{suffix[:7]}",
                upn=f"HealthMailbox{suffix}@{AD_DNS_DOMAIN}",
                mail=f"HealthMailbox{suffix}@{DOMAIN}",
                proxies=[f"SMTP:HealthMailbox{suffix}@{DOMAIN}"],
                display_name=f"HealthMailbox-EXCH01-{suffix[:3]}",
                uac=66048,
                last_logon=None,
            )
        )
    for cn in ("DiscoverySearchMailbox {D919BA05-46A6-415f-80AD-7E09334BB852}",):
        estate.ad.append(
            AdEntry(
                dn=f"CN={cn},{users}",
                object_classes=("top", "person", "organizationalPerson", "user"),
                guid=estate.guid(),
                rid=estate.rid(),
                sam="SM_2a8d1f0c4b7e4a3c9",
                upn=f"DiscoverySearchMailbox{{D919BA05-46A6-415f-80AD-7E09334BB852}}@{DOMAIN}",
                display_name="Discovery Search Mailbox",
                uac=514,
                last_logon=None,
            )
        )
    for name, ou in (("DC01", "OU=Domain Controllers"), ("WKS-0142", "OU=Workstations")):
        estate.ad.append(
            AdEntry(
                dn=f"CN={name},{ou},{BASE_DN}",
                object_classes=("top", "person", "organizationalPerson", "user", "computer"),
                guid=estate.guid(),
                rid=estate.rid(),
                sam=f"{name}$",
                upn=None,
                uac=532480 if name == "DC01" else 4096,
                critical=name == "DC01",
                category="Computer",
            )
        )


def _background(estate: Estate) -> None:
    rng = estate.rng
    names = [(f, last) for f in FIRST_NAMES for last in LAST_NAMES]
    rng.shuffle(names)
    pool = iter(names)
    for ou_name, count, domain in STAFF_OUS:
        ou = f"OU={ou_name},OU=Users,{BASE_DN}"
        for _ in range(count):
            first, last = next(pool)
            entry = estate.person(
                first, last, ou, domain=domain, created_days=rng.uniform(40, 3000)
            )
            if rng.random() < 0.1:
                # Exchange leaves X500 addresses behind after migrations; parentheses and spaces
                # are legal in X500 values (IdFix only rejects \f \n \r \t \v [ ] " ').
                entry.proxies.append(
                    "X500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)"
                    f"/cn=Recipients/cn={entry.guid.hex[:32]}-{entry.sam}"
                )
            if rng.random() < 0.5:
                # Half the users have been through Entra Connect's write-back of the anchor.
                entry.consistency_guid = entry.guid.bytes_le
            if entry.rid % 3 == 0:
                # Remote mailboxes (hybrid Exchange): targetAddress is the routing address,
                # which the user's own proxies hold too; not a duplicate of anyone. (Chosen by
                # RID, not by the generator, so the estate's other values stay as they were.)
                entry.target_address = f"SMTP:{entry.mail_nickname}@{MAIL_ROUTING}"
            estate.twin(entry)
    ou = f"OU=Staff,OU=Users,{BASE_DN}"
    for first, last, alias in ACCENTED_PEOPLE:
        entry = estate.person(first, last, ou, alias=alias)
        entry.sam = alias[:20]
        estate.twin(entry)
    for index in range(SERVICE_ACCOUNTS):
        name = f"svc-app{index:02d}"
        entry = estate.person("svc", f"app{index:02d}", SERVICE_OU, alias=name)
        entry.dn = f"CN={name},{SERVICE_OU}"
        entry.sam = name
        entry.display_name = f"Service account {index:02d}"
        entry.given_name = entry.surname = None
        if index % 3:
            entry.mail = entry.mail_nickname = None
            entry.proxies = []
        estate.twin(entry)
    # Leavers: disabled, moved out of sync scope. Connect deleted their cloud users, some of
    # which are still in the recycle bin holding the anchor: normal lifecycle, not a finding.
    for index in range(DISABLED_PEOPLE):
        first, last = next(pool)
        entry = estate.person(
            first, last, DISABLED_OU, uac=514, created_days=rng.uniform(400, 3000)
        )
        entry.last_logon = TAKEN - timedelta(days=rng.uniform(40, 300))
        if index < DISABLED_WITH_DELETED_TWIN:
            user = estate.twin(entry, accountEnabled=True)
            estate.soft_delete(user, days_ago=rng.uniform(1, 29))
    # Cloud-only accounts every tenant has: break-glass admins, room and shared mailboxes,
    # guests. Nobody on-premises claims their addresses.
    for alias in ("breakglass01", "breakglass02"):
        admin = estate.cloud_only(f"{alias}@{INITIAL}", f"Break Glass {alias[-2:]}", mail=None)
        admin["proxyAddresses"] = []
        estate.role(admin, GLOBAL_ADMIN, eligible=False)
    for alias, name in (("conf-room-a", "Conference Room A"), ("sales", "Sales Team Mailbox")):
        estate.cloud_only(f"{alias}@{DOMAIN}", name, accountEnabled=False)
    for guest, home in (
        ("ana.souza", "partner.com"),
        ("li.wei", "supplier.cn"),
        ("tom", "ext.org"),
    ):
        estate.cloud_only(
            f"{guest}_{home}#EXT#@{INITIAL}",
            guest.replace(".", " ").title(),
            mail=f"{guest}@{home}",
            mailNickname=f"{guest}_{home}#EXT#",
            proxyAddresses=[f"SMTP:{guest}@{home}"],
            userType="Guest",
        )
    # Synced admins, matched long ago: hardening only matters for a NEW hard match.
    for first, last, role, eligible in (
        ("Hilda", "Brandt", HELPDESK_ADMIN, False),
        ("Oscar", "Lindgren", USER_ADMIN, True),
    ):
        entry = estate.person(first, last, f"OU=Engineering,OU=Users,{BASE_DN}")
        estate.role(estate.twin(entry), role, eligible=eligible)


# -- planted cases -----------------------------------------------------------------------------


def _ou(name: str) -> str:
    return f"OU={name},OU=Users,{BASE_DN}"


def _plant_anchor_cases(estate: Estate) -> None:
    staff, sales, eng = _ou("Staff"), _ou("Sales"), _ou("Engineering")

    # anchor-held-by-deleted: the cloud user was deleted (cleanup script, or the AD object left
    # scope for a while); only the recycle-bin copy holds the anchor.
    for first, last, ou, days in (("Alex", "Wilber", staff, 6), ("Diego", "Siciliani", eng, 17)):
        entry = estate.person(first, last, ou)
        estate.soft_delete(estate.twin(entry), days_ago=days)
        estate.expect("anchor-held-by-deleted", entry.dn)
    # ...the classic: a helpdesk recreated the mailbox as a cloud-only user with the same UPN
    # while the old one sits in the recycle bin holding the anchor.
    megan = estate.person("Megan", "Bowen", sales)
    estate.soft_delete(estate.twin(megan), days_ago=12)
    estate.cloud_only(megan.upn or "", "Megan Bowen", created_days=10)
    # Not also soft-match-pending: the deleted holder decides (restore or purge first), and
    # the anchor-held-by-deleted finding names the waiting cloud-only user.
    estate.expect("anchor-held-by-deleted", megan.dn)

    # anchor-held-by-other: an active cloud user holds the anchor but is someone else entirely
    # (an AD object restored from backup over a deleted colleague's record, say).
    for first, last, other_first, other_last in (
        ("Isaiah", "Langer", "Lee", "Gu"),
        ("Nestor", "Wilke", "Pradeep", "Gupta"),
    ):
        entry = estate.person(first, last, eng)
        other = f"{other_first}.{other_last}".lower()
        estate.claim(f"{other}@{DOMAIN}")
        estate.twin(
            entry,
            userPrincipalName=f"{other}@{DOMAIN}",
            mail=f"{other}@{DOMAIN}",
            mailNickname=other,
            proxyAddresses=[f"SMTP:{other}@{DOMAIN}"],
            displayName=f"{other_first} {other_last}",
            givenName=other_first,
            surname=other_last,
            onPremisesDistinguishedName=f"CN={other_first} {other_last},{eng}",
            onPremisesSamAccountName=_sam(other_first, other_last),
            onPremisesSecurityIdentifier=f"{DOMAIN_SID}-{estate.rid()}",
            onPremisesUserPrincipalName=f"{other}@{DOMAIN}",
            onPremisesObjectIdentifier=str(estate.guid()),
        )
        estate.expect("anchor-held-by-other", entry.dn)

    # anchor-format-invalid: an admin pre-created the cloud mailbox and stamped the anchor with a
    # home-made conversion. The AD user stays unmatched and soft match would fail on the
    # candidate's immutableId (InvalidSoftMatch), but the finding names the AD user and the right
    # value, so it is reported once, not again as soft-match-blocked or cloud-orphan.
    def wrong_encodings() -> Iterable[tuple[str, str, str]]:
        yield "Johanna", "Lorenz", "guid-text"
        yield "Joni", "Sherman", "big-endian"
        yield "Lynne", "Robbins", "guid-text-base64"
        yield "Miriam", "Graham", "url-safe"

    for first, last, mistake in wrong_encodings():
        entry = estate.person(first, last, sales, created_days=3)
        if mistake == "url-safe":
            while "+" not in entry.anchor and "/" not in entry.anchor:
                entry.guid = estate.guid()
        value = _wrong_anchor(entry.guid, mistake)
        estate.cloud_only(
            entry.upn or "", f"{first} {last}", created_days=30, onPremisesImmutableId=value
        )
        estate.expect("anchor-format-invalid", entry.dn)
    # ...and "System.Byte[]" (a byte array passed where a string was expected): no AD user can
    # be named from it, so the candidate is also soft-match-blocked.
    grady = estate.person("Grady", "Archie", sales, created_days=3)
    byte_array = estate.cloud_only(
        grady.upn or "", "Grady Archie", created_days=30, onPremisesImmutableId="System.Byte[]"
    )
    estate.expect("anchor-format-invalid", byte_array["id"])
    estate.expect("soft-match-blocked", grady.dn)

    # anchor-duplicate-ad: a "copy user" script cloned the ConsistencyGuid into a second account.
    for first, last, suffix in (("Debra", "Berger", "test"), ("Enrico", "Cattaneo", "adm")):
        original = estate.person(first, last, staff)
        original.consistency_guid = original.guid.bytes_le
        estate.twin(original)
        clone = estate.person(
            first,
            f"{last} ({suffix})",
            staff,
            alias=f"{first}.{last}.{suffix}".lower(),
            created_days=4,
            consistency_guid=original.guid.bytes_le,
        )
        clone.sam = f"{first[0]}{last}-{suffix}".lower()[:20]
        estate.expect("anchor-duplicate-ad", original.dn)
        estate.expect("anchor-duplicate-ad", clone.dn)
        estate.expect("consistency-guid-differs", clone.dn)
        # The clone hard-matches the original's cloud user: linked to the wrong person.
        estate.expect("anchor-held-by-other", clone.dn)

    # consistency-guid-invalid: the GUID written as ASCII text (36 or 38 bytes). Connect synced
    # those bytes as the anchor, so the pair is matched, but on an anchor no tool converts.
    for first, last, text in (("Irvin", "Sayers", "plain"), ("Allan", "Deyoung", "braced")):
        entry = estate.person(first, last, eng)
        guid_text = str(entry.guid) if text == "plain" else "{" + str(entry.guid).upper() + "}"
        entry.consistency_guid = guid_text.encode("ascii")
        estate.twin(entry)
        estate.expect("consistency-guid-invalid", entry.dn)
    # ...the first 16 characters of the GUID's text, cut to the size of a GUID by the script:
    # 16 bytes like a real value, but text.
    yara = estate.person("Yara", "Haddad", eng)
    yara.consistency_guid = str(yara.guid)[:16].encode("ascii")
    estate.twin(yara)
    estate.expect("consistency-guid-invalid", yara.dn)
    # ...and a 15-byte value (a script that dropped the last byte), on a new hire not yet synced.
    raul = estate.person("Raul", "Razo", eng, created_days=1)
    raul.consistency_guid = raul.guid.bytes_le[:15]
    estate.expect("consistency-guid-invalid", raul.dn)
    estate.expect("unmatched-ad", raul.dn)

    # consistency-guid-differs: migrated from the fabrikam.local forest with ADMT; the
    # ConsistencyGuid carries the old forest's objectGUID and the cloud user holds it.
    for first, last in (("Emily", "Braun"), ("Gerhart", "Moller"), ("Sakura", "Tanaka")):
        entry = estate.person(first, last, _ou("Finance"), domain=FEDERATED)
        entry.consistency_guid = estate.guid().bytes_le
        estate.twin(entry)
        estate.expect("consistency-guid-differs", entry.dn)


def _plant_matching_cases(estate: Estate) -> None:
    staff, sales = _ou("Staff"), _ou("Sales")

    # cloud-orphan: the AD object is gone (deleted while the export deletion threshold held the
    # deletes back) but its cloud user is active and still marked synced.
    for first, last, days in (("Pavel", "Bansky", 3.0), ("Ben", "Walters", 45.0)):
        # Built like a person, then removed from AD: only its cloud user remains.
        ghost = estate.person(first, last, sales)
        estate.ad.remove(ghost)
        orphan = estate.twin(
            ghost, onPremisesLastSyncDateTime=_iso(TENANT_LAST_SYNC - timedelta(days=days))
        )
        estate.expect("cloud-orphan", orphan["id"])
        if days > 7:
            estate.expect("stale-sync-object", orphan["id"])
    # ...and one whose AD user still exists but was moved out of scope (OU=Disabled).
    cameron = estate.person("Cameron", "White", DISABLED_OU, uac=514)
    estate.twin(
        cameron,
        accountEnabled=True,
        onPremisesLastSyncDateTime=_iso(TENANT_LAST_SYNC - timedelta(days=2)),
    )
    estate.expect("cloud-orphan", cameron.dn)  # the finding names the out-of-scope AD user

    # soft-match-pending: mailboxes created in Exchange Online before the AD account existed.
    for first, last in (("Christie", "Cline"), ("Priya", "Raman")):
        entry = estate.person(first, last, staff, created_days=2)
        estate.cloud_only(entry.upn or "", f"{first} {last}", created_days=20)
        estate.expect("soft-match-pending", entry.dn)
    # ...on UPN only (softMatchOnUpnEnabled is on): the primary SMTP differs.
    kaito = estate.person("Kaito", "Nakamura", staff, created_days=2)
    kaito.mail = f"k.nakamura@{DOMAIN}"
    kaito.proxies = [f"SMTP:k.nakamura@{DOMAIN}", f"smtp:kaito.nakamura@{MAIL_ROUTING}"]
    estate.cloud_only(kaito.upn or "", "Kaito Nakamura", created_days=20)
    estate.expect("soft-match-pending", kaito.dn)

    # soft-match-blocked: the candidate holds an admin role ("Existing Admin Role Conflict":
    # any directory role, privileged or not); Exchange Administrator is not privileged, so
    # Microsoft's fix (remove the role, sync, re-add) is not refused by the 2026 hardening.
    bianca = estate.person("Bianca", "Pisani", staff, created_days=2)
    admin = estate.cloud_only(bianca.upn or "", "Bianca Pisani", created_days=300)
    estate.role(admin, EXCHANGE_ADMIN, eligible=False)
    estate.expect("soft-match-blocked", bianca.dn)
    # ...a custom role no built-in table knows: still a directory role, so still blocked.
    wendy = estate.person("Wendy", "Tran", sales, created_days=2)
    auditor = estate.cloud_only(wendy.upn or "", "Wendy Tran", created_days=250)
    estate.role(auditor, MAILBOX_AUDITOR, eligible=False)
    estate.expect("soft-match-blocked", wendy.dn)
    # A non-privileged admin is NOT a hardening target: the anchor pre-stamped on Nadia's
    # Exchange Administrator account is taken over by the next sync. No finding.
    nadia = estate.person("Nadia", "Okafor", staff, created_days=2)
    exchange_admin = estate.cloud_only(
        nadia.upn or "", "Nadia Okafor", created_days=650, onPremisesImmutableId=nadia.anchor
    )
    estate.role(exchange_admin, EXCHANGE_ADMIN, eligible=False)
    # ...the candidate holds another immutableId: synced from the decommissioned fabrikam.local
    # forest, sync stopped, anchor left behind. That anchor is an orphan too.
    omar = estate.person("Omar", "Haddad", _ou("Finance"), domain=FEDERATED, created_days=5)
    old = estate.cloud_only(
        omar.upn or "",
        "Omar Haddad",
        created_days=1400,
        onPremisesImmutableId=base64.b64encode(estate.guid().bytes_le).decode(),
        onPremisesSyncEnabled=False,
        onPremisesLastSyncDateTime=_iso(TAKEN - timedelta(days=400)),
        onPremisesDistinguishedName=f"CN=Omar Haddad,OU=Users,{OLD_FOREST_DN}",
        onPremisesSamAccountName="ohaddad",
        onPremisesDomainName="fabrikam.local",
    )
    estate.expect("soft-match-blocked", omar.dn)
    estate.expect("cloud-orphan", old["id"])
    # ...not a user: a Microsoft 365 group created in Teams owns the new service mailbox's
    # address (ObjectTypeMismatch).
    helpdesk = estate.person("Helpdesk", "Desk", SERVICE_OU, alias="helpdesk", created_days=5)
    helpdesk.dn = f"CN=Helpdesk,{SERVICE_OU}"
    helpdesk.display_name, helpdesk.given_name, helpdesk.surname = "Helpdesk", None, None
    helpdesk.sam = "helpdesk"
    estate.objects.append(
        {
            "@odata.type": "#microsoft.graph.group",
            "id": str(estate.guid()),
            "displayName": "Helpdesk",
            "mail": f"helpdesk@{DOMAIN}",
            "mailNickname": "helpdesk",
            "mailEnabled": True,
            "securityEnabled": False,
            "groupTypes": ["Unified"],
            "proxyAddresses": [f"SMTP:helpdesk@{DOMAIN}", f"smtp:helpdesk@{MAIL_ROUTING}"],
        }
    )
    estate.expect("soft-match-blocked", helpdesk.dn)

    # unmatched-ad: new hires waiting for the next cycle (info) and one that has waited a month.
    for first, last, days in (("Nora", "Lindqvist", 1.0), ("Tomasz", "Kowalski", 0.5)):
        entry = estate.person(first, last, sales, created_days=days)
        estate.expect("unmatched-ad", entry.dn)
    fatima = estate.person("Fatima", "Zahra", sales, created_days=30)
    estate.expect("unmatched-ad", fatima.dn)

    # hard-match-blocked: the admin pre-stamped the anchor on an existing cloud account so the
    # next cycle hard-matches it; the 2026 hardening refuses the takeover.
    patti = estate.person("Patti", "Fernandez", staff, created_days=2)
    estate.cloud_only(
        patti.upn or "",
        "Patti Fernandez",
        created_days=1200,
        onPremisesImmutableId=patti.anchor,
        onPremisesSyncEnabled=False,  # synced from the old forest once: identifier left behind
        onPremisesLastSyncDateTime=_iso(TAKEN - timedelta(days=200)),
        onPremisesObjectIdentifier=str(estate.guid()),
    )
    estate.expect("hard-match-blocked", patti.dn)
    adele = estate.person("Adele", "Vance", staff, created_days=2)
    target = estate.cloud_only(
        adele.upn or "", "Adele Vance", created_days=700, onPremisesImmutableId=adele.anchor
    )
    estate.role(target, GLOBAL_ADMIN, eligible=True)
    estate.expect("hard-match-blocked", adele.dn)
    ravi = estate.person("Ravi", "Shankar", _ou("Engineering"), created_days=2)
    target = estate.cloud_only(
        ravi.upn or "", "Ravi Shankar", created_days=500, onPremisesImmutableId=ravi.anchor
    )
    estate.role(target, PRIV_ROLE_ADMIN, eligible=False)
    estate.expect("hard-match-blocked", ravi.dn)
    # ...a privileged role through a role-assignable group: Ezra's account is a member of
    # "Tier1 Helpdesk", which holds Helpdesk Administrator.
    ezra = estate.person("Ezra", "Klein", staff, created_days=2)
    member = estate.cloud_only(
        ezra.upn or "", "Ezra Klein", created_days=420, onPremisesImmutableId=ezra.anchor
    )
    group = {
        "id": str(estate.guid()),
        "displayName": "Tier1 Helpdesk",
        "members": [{"@odata.type": "#microsoft.graph.user", "id": member["id"]}],
    }
    estate.role_groups.append(group)
    estate.role(group, HELPDESK_ADMIN, eligible=False)
    estate.expect("hard-match-blocked", ezra.dn)


def _plant_duplicate_cases(estate: Estate) -> None:
    staff, sales = _ou("Staff"), _ou("Sales")
    conflict_at = _iso(TAKEN - timedelta(days=9))

    # duplicate-cloud-account: soft match did not happen when the AD user first synced, so Entra
    # created a second user and quarantined the UPN (name1234@tenant.onmicrosoft.com).
    john = estate.person("John", "Smith", staff, created_days=9)
    estate.cloud_only(john.upn or "", "John Smith", created_days=600)
    estate.twin(
        john,
        userPrincipalName=f"john.smith4821@{INITIAL}",
        mail=None,
        proxyAddresses=[f"SMTP:john.smith4821@{INITIAL}", f"smtp:john.smith@{MAIL_ROUTING}"],
        onPremisesProvisioningErrors=[
            _error("UserPrincipalName", john.upn, conflict_at),
            _error("ProxyAddresses", f"SMTP:{john.upn}", conflict_at),
        ],
    )
    estate.expect("duplicate-cloud-account", john.dn)
    estate.expect("provisioning-error", john.dn)
    # The drift rule reports a quarantined twin UPN as upn-drift by design (cause named).
    estate.expect("upn-drift", john.dn)
    # ...the primary SMTP quarantined: a cloud-only shared account already owned it.
    sara = estate.person("Sara", "Davis", staff, created_days=9)
    estate.cloud_only(
        f"s.davis@{DOMAIN}",
        "Sara Davis",
        created_days=700,
        proxyAddresses=[f"SMTP:{sara.mail}", f"smtp:s.davis@{DOMAIN}"],
        mail=sara.mail,
    )
    estate.twin(
        sara,
        mail=None,
        proxyAddresses=[f"SMTP:sara.davis@{MAIL_ROUTING}"],
        onPremisesProvisioningErrors=[_error("ProxyAddresses", f"SMTP:{sara.mail}", conflict_at)],
    )
    estate.expect("duplicate-cloud-account", sara.dn)
    estate.expect("provisioning-error", sara.dn)

    # duplicate-ad-attribute: the same smtp alias on two users; the second one's export of it
    # failed, so its cloud user lacks it and carries the conflict.
    lynn = estate.person("Lynn", "Hart", sales)
    lynn.proxies.append(f"smtp:info@{DOMAIN}")
    estate.twin(lynn)
    marcus = estate.person("Marcus", "Reed", sales)
    marcus.proxies.append(f"smtp:info@{DOMAIN}")
    estate.twin(
        marcus,
        proxyAddresses=[p for p in marcus.proxies if "info@" not in p],
        onPremisesProvisioningErrors=[_error("ProxyAddresses", f"smtp:info@{DOMAIN}", conflict_at)],
    )
    for entry in (lynn, marcus):
        estate.expect("duplicate-ad-attribute", entry.dn)
    estate.expect("attribute-conflict-cloud", marcus.dn)
    estate.expect("provisioning-error", marcus.dn)
    # ...the same mailNickname on two users (not unique in Entra, but IdFix and Exchange care).
    for first in ("John", "Jane"):
        entry = estate.person(first, "Doe", staff, alias=f"{first}.doe".lower())
        entry.mail_nickname = "jdoe"
        estate.twin(entry)
        estate.expect("duplicate-ad-attribute", entry.dn)

    # attribute-conflict-cloud: a secondary address owned by a mail contact, and one owned by a
    # cloud-only shared mailbox. Both exports failed and left a provisioning error.
    lidia = estate.person("Lidia", "Holloway", _ou("Finance"), domain=FEDERATED)
    lidia.proxies.append(f"smtp:lidia.holloway@{DOMAIN}")
    estate.objects.append(
        {
            "@odata.type": "#microsoft.graph.orgContact",
            "id": str(estate.guid()),
            "displayName": "Lidia Holloway (Contoso)",
            "mail": f"lidia.holloway@{DOMAIN}",
            "mailNickname": "lidia.holloway.contoso",
            "proxyAddresses": [f"SMTP:lidia.holloway@{DOMAIN}"],
        }
    )
    estate.twin(
        lidia,
        proxyAddresses=lidia.proxies[:-1],
        onPremisesProvisioningErrors=[
            _error("ProxyAddresses", f"smtp:lidia.holloway@{DOMAIN}", conflict_at)
        ],
    )
    estate.expect("attribute-conflict-cloud", lidia.dn)
    estate.expect("provisioning-error", lidia.dn)
    carlos = estate.person("Carlos", "Ruiz", sales)
    carlos.proxies.append(f"smtp:sales@{DOMAIN}")  # owned by the cloud-only Sales Team Mailbox
    estate.twin(
        carlos,
        proxyAddresses=carlos.proxies[:-1],
        onPremisesProvisioningErrors=[
            _error("ProxyAddresses", f"smtp:sales@{DOMAIN}", conflict_at)
        ],
    )
    estate.expect("attribute-conflict-cloud", carlos.dn)
    estate.expect("provisioning-error", carlos.dn)
    # ...a targetAddress pointed at the cloud-only room mailbox by hand: targetAddress is in
    # the same uniqueness space as UPN, mail and proxyAddresses.
    ursula = estate.person("Ursula", "Meyer", sales)
    ursula.target_address = f"SMTP:conf-room-a@{DOMAIN}"
    estate.twin(ursula)
    estate.expect("attribute-conflict-cloud", ursula.dn)

    # provisioning-error on its own: a conflict that was resolved in AD; the error stays on the
    # cloud user until Entra re-evaluates it.
    grant = estate.person("Grant", "Hughes", staff)
    estate.twin(
        grant,
        onPremisesProvisioningErrors=[
            _error("ProxyAddresses", f"smtp:grant@{DOMAIN}", _iso(TAKEN - timedelta(days=60)))
        ],
    )
    estate.expect("provisioning-error", grant.dn)


def _plant_drift_cases(estate: Estate) -> None:
    staff, eng = _ou("Staff"), _ou("Engineering")

    # upn-suffix-unverified: .local and the unverified AD DNS domain. Synced users got
    # <mailNickname>@contoso.onmicrosoft.com in the cloud.
    kevin = estate.person("Kevin", "Brooks", staff)
    kevin.upn = "kevin.brooks@contoso.local"
    estate.twin(kevin, userPrincipalName=f"kevin.brooks@{INITIAL}")
    olivia = estate.person("Olivia", "Chen", staff)
    olivia.upn = f"olivia.chen@{AD_DNS_DOMAIN}"
    estate.twin(olivia, userPrincipalName=f"olivia.chen@{INITIAL}")
    # (upn-drift does not repeat upn-suffix-unverified for the onmicrosoft.com fallback.)
    for entry in (kevin, olivia):
        estate.expect("upn-suffix-unverified", entry.dn)
    # (IdFix's topleveldomain error on the same UPN is folded into upn-suffix-unverified:
    # one cause, one line; see rules/overlaps.py.)
    # ...a lab suffix no deny-list knew: .lab is not a delegated top-level domain.
    quinn = estate.person("Quinn", "Harper", eng)
    quinn.upn = "quinn.harper@contoso.lab"
    estate.twin(quinn, userPrincipalName=f"quinn.harper@{INITIAL}")
    estate.expect("upn-suffix-unverified", quinn.dn)
    samir = estate.person("Samir", "Patel", eng, created_days=1)
    samir.upn = "samir.patel@contoso.local"
    estate.expect("upn-suffix-unverified", samir.dn)
    estate.expect("unmatched-ad", samir.dn)

    # upn-drift: renamed in AD, the cloud UPN did not follow (synchronizeUpnForManagedUsers
    # off; on a federated domain it never follows on its own).
    hannah = estate.person("Hannah", "Weber", staff, alias="hannah.weber")
    hannah.proxies.append(f"smtp:hannah.schmidt@{DOMAIN}")
    estate.twin(hannah, userPrincipalName=f"hannah.schmidt@{DOMAIN}")
    marco = estate.person("Marco", "Rossi", _ou("Finance"), domain=FEDERATED)
    marco.proxies.append(f"smtp:m.rossi@{FEDERATED}")
    estate.twin(marco, userPrincipalName=f"m.rossi@{FEDERATED}")
    for entry in (hannah, marco):
        estate.expect("upn-drift", entry.dn)

    # enabled-drift: disabled in AD but enabled in the cloud (high) ...
    for first, last in (("Greg", "Winston"), ("Leah", "Porter")):
        entry = estate.person(first, last, staff, uac=514)
        estate.twin(entry, accountEnabled=True)
        estate.expect("enabled-drift", entry.dn)
    # ... and blocked in the cloud by the security team while enabled in AD (low).
    for first, last in (("Chris", "Green"), ("Tara", "Singh")):
        entry = estate.person(first, last, eng)
        estate.twin(entry, accountEnabled=False)
        estate.expect("enabled-drift", entry.dn)

    # stale-sync-object: matched users whose export keeps failing; last synced three weeks ago.
    for first, last in (("Victor", "Hale"), ("Yuki", "Sato")):
        entry = estate.person(first, last, eng)
        estate.twin(entry, onPremisesLastSyncDateTime=_iso(TENANT_LAST_SYNC - timedelta(days=21)))
        estate.expect("stale-sync-object", entry.dn)


def _plant_tenant_cases(estate: Estate) -> None:
    # The sync server has not exported for five hours (threshold 3 h); the switches are read
    # from /directory/onPremisesSynchronization and reported as they are.
    estate.expect("tenant-sync-stale", "onPremisesLastSyncDateTime")
    for switch in (
        "blockSoftMatchEnabled",
        "blockCloudObjectTakeoverThroughHardMatchEnabled",
        "softMatchOnUpnEnabled",
    ):
        estate.expect("tenant-matching-settings", switch)


def _plant_idfix_cases(estate: Estate) -> None:
    staff = _ou("Staff")
    # A diacritic and a space in the UPN (character). Entra replaced both cloud UPNs with
    # <mailNickname>@<initial domain>: upn-drift as well.
    zoe = estate.person("Zoë", "Müller", staff, alias="zoe.mueller")
    zoe.upn = f"zoë.müller@{DOMAIN}"
    estate.twin(zoe, userPrincipalName=f"zoe.mueller@{INITIAL}")
    anne = estate.person("Anne Marie", "Dubois", staff, alias="annemarie.dubois")
    anne.upn = f"anne marie.dubois@{DOMAIN}"
    estate.twin(anne, userPrincipalName=f"annemarie.dubois@{INITIAL}")
    for entry in (zoe, anne):
        estate.expect("invalid-attribute", entry.dn)
        estate.expect("upn-drift", entry.dn)
    # A space in an smtp proxy value (character).
    peter = estate.person("Peter", "Mueller", staff)
    peter.proxies.append(f"smtp:peter mueller@{DOMAIN}")
    estate.twin(peter, proxyAddresses=peter.proxies[:-1])
    estate.expect("invalid-attribute", peter.dn)
    # A SIP address with a space, from an old Lync deployment (character).
    sven = estate.person("Sven", "Lindberg", staff)
    sven.proxies.append(f"SIP:sven lindberg@{DOMAIN}")
    estate.twin(sven, proxyAddresses=sven.proxies[:-1])
    estate.expect("invalid-attribute", sven.dn)
    # Kenji Iwamoto (cn "Iwamoto Kenji"): IdFix skips any cn starting with "iwam", so his invalid
    # UPN never showed up there; Entra gave his cloud account the fallback UPN.
    kenji = estate.person("Kenji", "Iwamoto", staff, alias="kenji.iwamoto")
    kenji.dn = f"CN=Iwamoto Kenji,{staff}"
    kenji.upn = f"iwamoto kenji@{DOMAIN}"
    estate.twin(kenji, userPrincipalName=f"kenji.iwamoto@{INITIAL}")
    estate.expect("invalid-attribute", kenji.dn)
    estate.expect("upn-drift", kenji.dn)
    # O'Brien's UPN is valid (Microsoft allows the apostrophe; IdFix flags it): no finding.
    aoife = estate.person("Aoife", "O'Brien", staff, alias="aoife.obrien")
    aoife.upn = f"aoife.o'brien@{DOMAIN}"
    estate.twin(aoife)
    # A mailNickname starting with a dot (format).
    ines = estate.person("Ines", "Ortega", staff)
    ines.mail_nickname = ".ines.ortega"
    estate.twin(ines, mailNickname="ines.ortega")
    estate.expect("invalid-attribute", ines.dn)
    # A blank displayName (a single space) on a service account (blank).
    printer = estate.person("svc", "print", SERVICE_OU, alias="svc-print")
    printer.dn, printer.sam, printer.display_name = f"CN=svc-print,{SERVICE_OU}", "svc-print", " "
    printer.given_name = printer.surname = None
    estate.twin(printer, displayName="svc-print")
    estate.expect("invalid-attribute", printer.dn)
    # A UPN prefix over 64 characters and a sAMAccountName over 20 (length) on a new service
    # account: Entra refuses the export, so it is also unmatched.
    alias = "svc-sharepoint-search-crawler-content-source-full-crawl-account-01"
    crawler = estate.person("svc", "crawler", SERVICE_OU, alias=alias, created_days=1.5)
    crawler.dn = f"CN=svc-sharepoint-crawler01,{SERVICE_OU}"
    crawler.sam = "svc-sharepoint-crawler01"
    crawler.mail = crawler.mail_nickname = None
    crawler.proxies = []
    crawler.given_name = crawler.surname = None
    crawler.display_name = "SharePoint crawler"
    estate.expect("invalid-attribute", crawler.dn)
    estate.expect("unmatched-ad", crawler.dn)


def _plant_late_cases(estate: Estate) -> None:
    """Cases added after the rest (last, so the seeded ids of everything above stay put)."""
    # A leftover of the fabrikam.local forest in a MANAGED domain: nobody on-premises has its
    # anchor and it is cloud-only now, so remediation.ps1 clears the anchor (Omar Haddad's,
    # in the federated fabrikam.com, is left to a manual step: a federated user needs one).
    ingrid = estate.cloud_only(
        f"ingrid.berg@{DOMAIN}",
        "Ingrid Berg",
        created_days=1500,
        onPremisesImmutableId=base64.b64encode(estate.guid().bytes_le).decode(),
        onPremisesSyncEnabled=False,
        onPremisesLastSyncDateTime=_iso(TAKEN - timedelta(days=420)),
        onPremisesDistinguishedName=f"CN=Ingrid Berg,OU=Users,{OLD_FOREST_DN}",
        onPremisesSamAccountName="iberg",
        onPremisesDomainName="fabrikam.local",
    )
    estate.expect("cloud-orphan", ingrid["id"])

    # Many users, one cause: the Cascade branch office joined from its own forest with UPNs in
    # cascade.local, which is not routable. Synced, they got <alias>@contoso.onmicrosoft.com.
    # One fix (a routable UPN suffix) for 14 people: one upn-suffix-unverified finding each,
    # and one line in the reports' top actions.
    branch = _ou("Cascade")
    for first, last in CASCADE_PEOPLE:
        entry = estate.person(first, last, branch)
        alias = (entry.upn or "").split("@")[0]
        entry.upn = f"{alias}@cascade.local"
        estate.twin(entry, userPrincipalName=f"{alias}@{INITIAL}")
        estate.expect("upn-suffix-unverified", entry.dn)


# -- writers ----------------------------------------------------------------------------------


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


def expected_findings() -> frozenset[tuple[str, str]]:
    """The ground truth: every (code, key) the demo estate must produce, and nothing else."""
    return frozenset(build_estate().expected)


def finding_key(row: dict[str, Any]) -> str:
    """The key of one finding: AD DN, else cloud id, else attribute, else "tenant"."""
    for column in ("ad_dn", "cloud_id", "attribute"):
        value = row.get(column)
        if value:
            return str(value)
    return "tenant"


def finding_keys(findings: pl.DataFrame) -> frozenset[tuple[str, str]]:
    """The (code, key) pairs of a findings frame, comparable with ``expected_findings()``."""
    keyed = findings.select(
        pl.col("code"),
        pl.coalesce(
            pl.col("ad_dn").replace("", None),
            pl.col("cloud_id").replace("", None),
            pl.col("attribute").replace("", None),
            pl.lit("tenant"),
        ).alias("key"),
    )
    return frozenset(keyed.iter_rows())


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
                "onPremisesLastSyncDateTime": _iso(TENANT_LAST_SYNC),
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
data_dir = "{(directory / "data").as_posix()}"
keep_runs = 52
fail_on = "high"

[[ad]]
name = "corp"
base_dn = "{BASE_DN}"
exclude_ous = ["{DISABLED_OU}"]
anchor_attribute = "mS-DS-ConsistencyGuid"

[entra]
tenant_id = "{TENANT_ID}"

[thresholds]
stale_sync_hours = 3
stale_object_days = 7
unmatched_grace_days = 2
max_drop_percent = 10

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


def _wrong_anchor(guid: uuid.UUID, mistake: str) -> str:
    """The home-made conversions FACTS section 1 lists."""
    if mistake == "guid-text":
        return str(guid)
    if mistake == "big-endian":
        return base64.b64encode(guid.bytes).decode()
    if mistake == "guid-text-base64":
        return base64.b64encode(str(guid).encode("ascii")).decode()
    if mistake == "url-safe":
        return base64.urlsafe_b64encode(guid.bytes_le).decode()
    raise ValueError(mistake)


def _error(prop: str, value: str | None, occurred: str) -> dict[str, Any]:
    return {
        "category": "PropertyConflict",
        "occurredDateTime": occurred,
        "propertyCausingError": prop,
        "value": value,
    }


def _sam(first: str, last: str) -> str:
    return f"{first[0]}{last}".lower().replace(" ", "")[:20]


def _generalized(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S.0Z")


def _filetime(moment: datetime) -> int:
    return (int(moment.timestamp()) + 11644473600) * 10_000_000


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_json(path: Path, *documents: dict[str, Any]) -> None:
    text = "\n".join(json.dumps(d, indent=1, ensure_ascii=False) for d in documents)
    path.write_text(text + "\n", encoding="utf-8")
