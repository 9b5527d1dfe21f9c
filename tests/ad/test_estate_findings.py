"""The seeded estate of both forests (tests/ad/seed.py), collected live and analyzed against a
small Graph export written here, gives exactly one set of findings per seeded anomaly and
nothing else; the run's source reports count the dropped objects by reason.

Every expected value is exact: anchors are the base64 of what the DC stored (the seed's
`Seeded` records), cloud users are the ones written below. Findings are keyed by code and the
AD user's sAMAccountName (a cloud user's UPN when no AD user is named; the switch's name for
tenant-matching-settings); each key maps to its set of (severity, anchor, attribute, value,
proposed value, cloud UPN).
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from audit import pipeline
from audit.config import AdSource, Settings
from audit.sources.files import CloudExports
from tests.ad.samba_dc import DcInfo
from tests.ad.seed import CORP, EXCHANGE_ATTRIBUTES, FABRIKAM, Estate, Seeded

pytestmark = pytest.mark.ad

Expected = tuple[str, str | None, str | None, str | None, str | None, str | None]
CREATED = "2024-03-04T09:00:00Z"
CORP_BASE = "DC=corp,DC=example,DC=test"
GONE_GUID = uuid.UUID("5c0f2e9a-7d41-4b8e-9a3f-2e6d1c8b7a90")  # an AD user deleted long ago


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def anchor(seeded: Seeded) -> str:
    """The sourceAnchor Entra Connect sends: mS-DS-ConsistencyGuid when set, else objectGUID."""
    return b64(seeded.consistency_guid or seeded.object_guid)


def cloud_id(upn: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://graph.microsoft.com/users/{upn}"))


def synced(seeded: Seeded, **changes: Any) -> dict[str, Any]:
    """The cloud user Entra Connect made of an AD user: its anchor, UPN, mail and primary SMTP
    (the cloud keeps only verified-domain addresses; secondary ones are left out here)."""
    user = seeded.user
    assert user.upn is not None
    upn = changes.pop("userPrincipalName", user.upn)
    return {
        "id": cloud_id(upn),
        "userPrincipalName": upn,
        "mail": user.mail,
        "mailNickname": user.nickname or upn.split("@")[0],
        "displayName": user.display,
        "proxyAddresses": list(user.proxies[:1]),
        "onPremisesImmutableId": anchor(seeded),
        "onPremisesSyncEnabled": True,
        "onPremisesSamAccountName": user.sam,
        "onPremisesUserPrincipalName": user.upn,
        "onPremisesDistinguishedName": seeded.dn,
        "accountEnabled": user.enabled,
        "createdDateTime": CREATED,
        "userType": "Member",
        **changes,
    }


# The AD users whose cloud accounts sync made (the rest have none: new, or never synced).
SYNCED = (
    "ada.sync", "bo.equal", "cy.migrated", "ed.disabled", "fa.parked", "hal.leaver",
    "lee.sales", "max.sales", "nia.upn", "oz.alias", "pat.both", "quinn.local", "lukasz.zolc",
    "john.smith", "rex.many", "tia.remote", "uma.copy", "vic.route", "wes.helpdesk",
    "xan.helpdesk", "jane.doe", "carlos.guestrin", "kenji.iwamoto", "ben.fab",
)  # fmt: skip


def cloud_users(seeded: dict[str, Seeded]) -> list[dict[str, Any]]:
    changes: dict[str, dict[str, Any]] = {
        # a leaver disabled in AD whose cloud account still signs in
        "ed.disabled": {"accountEnabled": True},
        # synced before its OU was taken out of scope
        "hal.leaver": {"accountEnabled": True},
        # Entra accepted the shared alias once: Lee's account has it
        "lee.sales": {"proxyAddresses": ["SMTP:lee@contoso.com", "smtp:sales@contoso.com"]},
        # a .local UPN: Entra gave the <mailNickname>@<initial domain> fallback
        "quinn.local": {"userPrincipalName": "quinn@contoso.onmicrosoft.com"},
    }
    users = [synced(seeded[sam], **changes.get(sam, {})) for sam in SYNCED]
    users.append(  # the contractor's cloud-only mailbox, waiting for its AD account
        {
            "id": cloud_id("sky@contoso.com"),
            "userPrincipalName": "sky@contoso.com",
            "mail": "sky@contoso.com",
            "mailNickname": "sky",
            "displayName": "Sky Contractor",
            "proxyAddresses": ["SMTP:sky@contoso.com"],
            "accountEnabled": True,
            "createdDateTime": CREATED,
            "userType": "Member",
        }
    )
    users.append(  # synced from an AD user deleted long ago; sync never removed it
        {
            "id": cloud_id("gone@contoso.com"),
            "userPrincipalName": "gone@contoso.com",
            "mail": "gone@contoso.com",
            "mailNickname": "gone",
            "displayName": "Gone Away",
            "proxyAddresses": ["SMTP:gone@contoso.com"],
            "onPremisesImmutableId": b64(GONE_GUID.bytes_le),
            "onPremisesSyncEnabled": True,
            "onPremisesDistinguishedName": f"CN=gone,OU=Staff,OU=Sync,OU=Corp,{CORP_BASE}",
            "accountEnabled": True,
            "createdDateTime": CREATED,
            "userType": "Member",
        }
    )
    return users


ZED_DELETED_ID = cloud_id("zed@contoso.com")
# Entra renames a deleted user's UPN: the object id without dashes before the UPN
ZED_DELETED_UPN = f"{ZED_DELETED_ID.replace('-', '')}zed@contoso.com"


def deleted_users(seeded: dict[str, Seeded], now: datetime) -> list[dict[str, Any]]:
    """Zed's old account, deleted three days ago (in the recycle bin, keeping its anchor)."""
    deleted = synced(seeded["zed.returning"], userPrincipalName=ZED_DELETED_UPN)
    deleted["deletedDateTime"] = (now - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [deleted]


DOMAINS = [
    ("contoso.onmicrosoft.com", True, True, False),
    ("contoso.com", True, False, True),
    ("fabrikam.com", True, False, False),
]


def write_json(path: Path, context: str, value: list[dict[str, Any]]) -> Path:
    document = {"@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#{context}"}
    path.write_text(json.dumps({**document, "value": value}), encoding="utf-8")
    return path


def ad_table(name: str, dc: DcInfo, estate: Estate, password_env: str) -> AdSource:
    include, exclude = estate.scope(dc.base_dn)
    return AdSource(
        name=name,
        url=dc.ldaps_url,
        ca_file=str(dc.ca_file),
        bind_dn=dc.bind_dn,
        password_env=password_env,
        base_dn=dc.base_dn,
        include_ous=include,
        exclude_ous=exclude,
    )


@dataclass(frozen=True)
class Analyzed:
    collected: pipeline.CollectResult
    result: pipeline.AnalyzeResult
    seeded: dict[str, Seeded]  # by sAMAccountName, both forests

    @property
    def exchange(self) -> bool:
        """Whether the DC could store targetAddress and mailNickname (see seed's docstring)."""
        return any(
            s.stored.get(name.lower()) for s in self.seeded.values() for name in EXCHANGE_ATTRIBUTES
        )


@pytest.fixture(scope="module")
def analyzed(
    ad_forests: tuple[DcInfo, DcInfo],
    ad_seeded: list[Seeded],
    ad_seeded_two: list[Seeded],
    tmp_path_factory: pytest.TempPathFactory,
) -> Analyzed:
    corp, fabrikam = ad_forests
    assert corp.base_dn == CORP_BASE
    seeded = {s.user.sam: s for s in (*ad_seeded, *ad_seeded_two)}
    files = tmp_path_factory.mktemp("estate-exports")
    now = datetime.now(UTC)
    settings = Settings(
        ad=(
            ad_table("corp", corp, CORP, "ESTATE_CORP_PASSWORD"),
            ad_table("fabrikam", fabrikam, FABRIKAM, "ESTATE_FABRIKAM_PASSWORD"),
        )
    )
    collected = pipeline.collect(
        settings=settings,
        out=files / "run",
        exports=CloudExports(
            cloud=[write_json(files / "users.json", "users", cloud_users(seeded))],
            deleted=write_json(
                files / "deleted.json",
                "directory/deletedItems/microsoft.graph.user",
                deleted_users(seeded, now),
            ),
            domains=write_json(
                files / "domains.json",
                "domains",
                [
                    {
                        "id": name,
                        "isVerified": verified,
                        "isInitial": initial,
                        "isDefault": default,
                        "authenticationType": "Managed",
                    }
                    for name, verified, initial, default in DOMAINS
                ],
            ),
        ),
        environ={
            **corp.password_env("ESTATE_CORP_PASSWORD"),
            **fabrikam.password_env("ESTATE_FABRIKAM_PASSWORD"),
        },
    )
    result = pipeline.analyze(collected.run_dir, settings)
    return Analyzed(collected, result, seeded)


def findings_by_key(analyzed: Analyzed) -> dict[tuple[str, str], set[Expected]]:
    """(code, who) -> {(severity, anchor, attribute, value, proposed value, cloud UPN)}."""
    sam_of = {
        (source, seeded.dn): seeded.user.sam
        for source, estate in (("corp", CORP), ("fabrikam", FABRIKAM))
        for seeded in analyzed.seeded.values()
        if seeded.user in estate.users
    }
    got: dict[tuple[str, str], set[Expected]] = {}
    for row in analyzed.result.findings.iter_rows(named=True):
        if row["ad_dn"] is not None:
            who = sam_of[(row["ad_source"], row["ad_dn"])]
        else:
            who = row["cloud_upn"] or row["attribute"]
        got.setdefault((row["code"], who), set()).add(
            (
                row["severity"],
                row["anchor"],
                row["attribute"],
                row["value"],
                row["proposed_value"],
                row["cloud_upn"],
            )
        )
    return got


CG = "mS-DS-ConsistencyGuid"
PROXY = "proxyAddresses"
UPN = "userPrincipalName"
ADDRESSES = "mail,proxyAddresses,userPrincipalName"  # the UPN, mail and primary SMTP of one user
SWITCHES = (
    "blockSoftMatchEnabled",
    "blockCloudObjectTakeoverThroughHardMatchEnabled",
    "softMatchOnUpnEnabled",
)


def test_every_seeded_anomaly_gives_exactly_its_findings(analyzed: Analyzed) -> None:
    s = analyzed.seeded

    def ad(
        sam: str,
        severity: str,
        attribute: str | None = None,
        value: str | None = None,
        proposed: str | None = None,
        cloud_upn: str | None = None,
    ) -> set[Expected]:
        """One finding on an AD user: its anchor is what the DC stored."""
        return {(severity, anchor(s[sam]), attribute, value, proposed, cloud_upn)}

    def guid(sam: str) -> str:
        return b64(s[sam].object_guid)

    expected: dict[tuple[str, str], set[Expected]] = {
        # mS-DS-ConsistencyGuid different (migrated), 15 bytes, the GUID's text and its first
        # 16 characters (the value Entra is sent; the right one proposed)
        ("consistency-guid-differs", "cy.migrated"): ad(
            "cy.migrated", "info", CG, anchor(s["cy.migrated"])
        ),
        ("consistency-guid-invalid", "di.short"): ad("di.short", "high", CG, anchor(s["di.short"])),
        ("consistency-guid-invalid", "ivy.ascii"): ad(
            "ivy.ascii", "high", CG, anchor(s["ivy.ascii"]), guid("ivy.ascii")
        ),
        ("consistency-guid-invalid", "jo.text16"): ad(
            "jo.text16", "high", CG, anchor(s["jo.text16"]), guid("jo.text16")
        ),
        # in scope, enabled, no cloud account: created new at the next sync
        ("unmatched-ad", "di.short"): ad("di.short", "info"),
        ("unmatched-ad", "ivy.ascii"): ad("ivy.ascii", "info"),
        ("unmatched-ad", "jo.text16"): ad("jo.text16", "info"),
        ("unmatched-ad", "zoe.nunez"): ad("zoe.nunez", "info"),
        # a leaver disabled in AD whose cloud account still signs in
        ("enabled-drift", "ed.disabled"): ad(
            "ed.disabled", "high", "accountEnabled", "true", "false", "ed@contoso.com"
        ),
        # synced accounts of users now out of scope (outside the included OU, in the excluded
        # one), and of an AD user deleted long ago
        ("cloud-orphan", "fa.parked"): ad("fa.parked", "medium", cloud_upn="fa@contoso.com"),
        ("cloud-orphan", "hal.leaver"): ad("hal.leaver", "medium", cloud_upn="hal@contoso.com"),
        ("cloud-orphan", "gone@contoso.com"): {
            ("medium", b64(GONE_GUID.bytes_le), None, None, None, "gone@contoso.com")
        },
        # a value two in-scope AD users share, each party named; and owned by the other's
        # cloud account
        ("duplicate-ad-attribute", "lee.sales"): ad(
            "lee.sales", "high", PROXY, "sales@contoso.com"
        ),
        ("duplicate-ad-attribute", "max.sales"): ad(
            "max.sales", "high", PROXY, "sales@contoso.com"
        ),
        ("attribute-conflict-cloud", "max.sales"): ad(
            "max.sales", "high", PROXY, "sales@contoso.com", None, "lee@contoso.com"
        ),
        ("duplicate-ad-attribute", "nia.upn"): ad("nia.upn", "high", ADDRESSES, "nia@contoso.com"),
        ("duplicate-ad-attribute", "oz.alias"): ad("oz.alias", "high", PROXY, "nia@contoso.com"),
        ("attribute-conflict-cloud", "oz.alias"): ad(
            "oz.alias", "high", PROXY, "nia@contoso.com", None, "nia@contoso.com"
        ),
        # one UPN in two forests; FABRIKAM's Pat would soft-match CORP Pat's synced account
        ("duplicate-ad-attribute", "pat.both"): ad(
            "pat.both", "high", ADDRESSES, "pat@contoso.com"
        ),
        ("duplicate-ad-attribute", "pat.fab"): ad("pat.fab", "high", UPN, "pat@contoso.com"),
        ("soft-match-blocked", "pat.fab"): ad(
            "pat.fab", "high", UPN, "pat@contoso.com", None, "pat@contoso.com"
        ),
        # a .local UPN (its IdFix topleveldomain error is folded into this finding)
        ("upn-suffix-unverified", "quinn.local"): ad(
            "quinn.local",
            "medium",
            UPN,
            "quinn@corp.local",
            "quinn@contoso.onmicrosoft.com",
            "quinn@contoso.onmicrosoft.com",
        ),
        # IdFix: diacritics in a UPN; a space in one of 300 proxyAddresses
        ("invalid-attribute", "zoe.nunez"): ad(
            "zoe.nunez", "medium", UPN, "zoë.ñúñez@contoso.com", "zoe.nunez@contoso.com"
        ),
        ("invalid-attribute", "rex.many"): ad(
            "rex.many", "medium", PROXY, "smtp:rex old@contoso.com", "smtp:rexold@contoso.com"
        ),
        # the inetOrgPerson contractor takes over its cloud-only mailbox at the next sync
        ("soft-match-pending", "sky.contractor"): ad(
            "sky.contractor", "low", "primarySmtp", "sky@contoso.com", None, "sky@contoso.com"
        ),
        # its old account, in the recycle bin, holds its anchor
        ("anchor-held-by-deleted", "zed.returning"): ad(
            "zed.returning", "high", cloud_upn=ZED_DELETED_UPN
        ),
        # always: the three matching switches, unknown from exports
        **{
            ("tenant-matching-settings", switch): {("info", None, switch, "unknown", None, None)}
            for switch in SWITCHES
        },
    }
    assert analyzed.exchange  # the test DCs allow the schema extension (samba_dc.py)
    remote = "tia@contoso.mail.onmicrosoft.com"
    expected |= {
        # Uma's targetAddress copied from Tia's; a routing address in a .local domain;
        # one mailNickname on two users
        ("duplicate-ad-attribute", "tia.remote"): ad("tia.remote", "high", "targetAddress", remote),
        ("duplicate-ad-attribute", "uma.copy"): ad("uma.copy", "high", "targetAddress", remote),
        ("invalid-attribute", "vic.route"): ad(
            "vic.route", "medium", "targetAddress", "SMTP:vic@corp.local"
        ),
        ("duplicate-ad-attribute", "wes.helpdesk"): ad(
            "wes.helpdesk", "high", "mailNickname", "helpdesk"
        ),
        ("duplicate-ad-attribute", "xan.helpdesk"): ad(
            "xan.helpdesk", "high", "mailNickname", "helpdesk"
        ),
    }
    # the users without an anomaly (ada, bo, lukasz, john.smith, jane.doe, carlos, kenji,
    # ben.fab...) have no finding at all
    assert findings_by_key(analyzed) == expected


def test_dropped_objects_are_counted_by_reason(analyzed: Analyzed) -> None:
    """The people search never returns the computers (objectCategory=computer), so they are not
    counted; Administrator, Guest, krbtgt and dns-DC<n> are critical system objects."""
    sources = {s.name: s for s in analyzed.collected.sources if s.kind == "ad"}
    assert {name: dict(s.excluded) for name, s in sources.items()} == {
        "corp": {
            "critical-system-object": 4,
            "replication-conflict": 1,
            "cn-ends-with-$": 1,
            "system-account": 5,
        },
        "fabrikam": {"critical-system-object": 4},
    }
    assert all(s.complete for s in sources.values())
