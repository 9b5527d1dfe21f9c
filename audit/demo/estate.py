"""The Contoso estate: its tenant and forest, the people, and the builders the plants use.

``base_estate()`` is the clean population every plant is added to: the accounts every domain has
(Administrator, krbtgt, health mailboxes, computers: importers must drop them), about 2,900
people in four OUs, service accounts, leavers moved out of sync scope, and the cloud-only
accounts every tenant has. All of it is matched, on verified suffixes, with valid attributes,
synced minutes before the tenant's last cycle: none of it is a finding.

``Estate`` holds the AD entries and Graph objects as they will be exported, the ground truth
(``expect``) and the seeded generator; its builders (``person``, ``twin``, ``cloud_only``,
``soft_delete``, ``role``) make one clean object each, which a plant then changes.
"""

from __future__ import annotations

import base64
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

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

# Directory role template ids (public, identical in every tenant) and Microsoft's PRIVILEGED
# label (permissions-reference, 2026-01-20): Exchange Administrator does not carry it.
GLOBAL_ADMIN = ("62e90394-69f5-4237-9190-012177145e10", "Global Administrator", True)
EXCHANGE_ADMIN = ("29232cdf-9323-42fd-ade2-1d097af3e4de", "Exchange Administrator", False)
PRIV_ROLE_ADMIN = ("e8611ab8-c189-46e8-94e1-60213ab1f814", "Privileged Role Administrator", True)
HELPDESK_ADMIN = ("729827e3-9c14-49f7-bb1b-9608f156bbb8", "Helpdesk Administrator", True)
USER_ADMIN = ("fe930be7-5e62-47db-91af-98c3a49a38b1", "User Administrator", True)
# A custom role: only the beta roleDefinitions export says whether it is privileged.
MAILBOX_AUDITOR = ("7d3c9b2a-5e41-4f08-9a6b-2c1d0e9f8a71", "Contoso Mailbox Auditor", False)

# The Cascade branch office (plants._plant_late_cases): one cause, fourteen people.
CASCADE_PEOPLE = (
    ("Agnes", "Lindqvist"), ("Bruno", "Carvalho"), ("Chidi", "Okonkwo"), ("Dagny", "Moe"),
    ("Emil", "Sandberg"), ("Farah", "Haddad"), ("Gustav", "Ek"), ("Hana", "Novak"),
    ("Ivo", "Petrov"), ("Jonas", "Berg"), ("Kaja", "Strand"), ("Lior", "Ben-David"),
    ("Mette", "Holm"), ("Nils", "Dahl"),
)  # fmt: skip

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
SERVICE_ACCOUNTS = 24
DISABLED_PEOPLE = 60
DISABLED_WITH_DELETED_TWIN = 15


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
    # the planned scope change's known outcomes: AD DN -> (outcome, Entra's error name)
    forecast: dict[str, tuple[str, str | None]] = field(default_factory=dict)
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
            sam=self.unique_sam(default_sam(first, last)),
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
            "onPremisesLastSyncDateTime": iso(
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
            "createdDateTime": iso(min(created, TAKEN - timedelta(hours=6))),
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
            "createdDateTime": iso(TAKEN - timedelta(days=created_days)),
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
        user["deletedDateTime"] = iso(TAKEN - timedelta(days=days_ago))
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
                startDateTime=iso(TAKEN - timedelta(days=120)),
                endDateTime=None,
                roleEligibilityScheduleId=str(self.guid()),
            )
            self.eligibilities.append(item)
        else:
            self.assignments.append(item)


def base_estate() -> Estate:
    """The seeded estate with the system accounts and the clean background population."""
    estate = Estate(rng=random.Random(SEED))
    _system_objects(estate)
    _background(estate)
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
        ou = users_ou(ou_name)
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
    ou = users_ou("Staff")
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
        entry = estate.person(first, last, users_ou("Engineering"))
        estate.role(estate.twin(entry), role, eligible=eligible)


def users_ou(name: str) -> str:
    """The OU of one office's (or department's) people."""
    return f"OU={name},OU=Users,{BASE_DN}"


def default_sam(first: str, last: str) -> str:
    return f"{first[0]}{last}".lower().replace(" ", "")[:20]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def wrong_anchor(guid: uuid.UUID, mistake: str) -> str:
    """A GUID turned into an ImmutableId by one of the home-made conversions FACTS section 1
    lists."""
    if mistake == "guid-text":
        return str(guid)
    if mistake == "big-endian":
        return base64.b64encode(guid.bytes).decode()
    if mistake == "guid-text-base64":
        return base64.b64encode(str(guid).encode("ascii")).decode()
    if mistake == "url-safe":
        return base64.urlsafe_b64encode(guid.bytes_le).decode()
    raise ValueError(mistake)


def provisioning_error(prop: str, value: str | None, occurred: str) -> dict[str, Any]:
    """An onPremisesProvisioningErrors entry as Graph returns it."""
    return {
        "category": "PropertyConflict",
        "occurredDateTime": occurred,
        "propertyCausingError": prop,
        "value": value,
    }
