"""The seeded estate (tests/ad/seed.py) reads back as written, Samba's own ldbsearch agrees on
every objectGUID and mS-DS-ConsistencyGuid the seed recorded (both forests), and the records
of an (objectClass=user) export go through the one door every AD reader uses
(prepare_ad_source + map_ad_records) to the exclusions, anchors and scope the seed meant."""

from __future__ import annotations

import base64
import uuid
from collections import Counter

import pytest

from audit.config import AdSource
from audit.sources.ad import AdRows, map_ad_records, prepare_ad_source
from audit.sources.detect import Notes
from audit.sources.ldap import ldap_attributes
from audit.sources.records import BINARY_ATTRIBUTES, Record
from tests.ad.client import ldaps
from tests.ad.ldb import samba_users
from tests.ad.samba_dc import DcInfo
from tests.ad.seed import (
    CORP,
    EXCHANGE_ATTRIBUTES,
    UF_ACCOUNTDISABLE,
    Estate,
    Seeded,
)

pytestmark = pytest.mark.ad


def read_users(dc: DcInfo) -> dict[str, dict[str, list[bytes]]]:
    """Every user object of the domain by DN, raw values, paged by 7 (several pages;
    Samba does not enforce a page limit): an (objectClass=user) export, computers included,
    of the attributes the live reader asks for."""
    attributes = ldap_attributes(prepare_ad_source(AdSource(name="corp"), "corp", None))
    connection = ldaps(dc)
    entries = connection.extend.standard.paged_search(
        dc.base_dn, "(objectClass=user)", attributes=attributes, paged_size=7, generator=False
    )
    users = {e["dn"]: e["raw_attributes"] for e in entries if e["type"] == "searchResEntry"}
    connection.unbind()
    return users


def test_every_seeded_object_reads_back_as_written(ad_dc: DcInfo, ad_seeded: list[Seeded]) -> None:
    users = read_users(ad_dc)
    assert len(ad_seeded) == len(CORP.users) == 41
    exchange = has_exchange_attributes(ad_seeded)
    for seeded in ad_seeded:
        raw = users[seeded.dn]
        user = seeded.user
        guid = seeded.object_guid
        text = str(uuid.UUID(bytes_le=guid)).encode()
        assert raw["objectGUID"] == [guid] and len(guid) == 16
        assert (
            raw.get("mS-DS-ConsistencyGuid", [])
            == {
                "unset": [],
                "equal": [guid],
                "different": [seeded.consistency_guid],
                "short": [seeded.consistency_guid],
                "ascii": [text],  # 36 bytes
                "text16": [text[:16]],
            }[user.consistency]
        ), user.sam
        if user.consistency in ("different", "short"):
            assert seeded.consistency_guid is not None
            assert len(seeded.consistency_guid) == (16 if user.consistency == "different" else 15)
            assert seeded.consistency_guid[:15] != guid[:15]
        assert [v.decode() for v in raw["sAMAccountName"]] == [user.sam]
        assert raw["objectClass"][-1].decode() == user.kind
        assert bool(int(raw["userAccountControl"][0]) & UF_ACCOUNTDISABLE) is not user.enabled
        for attribute, expected in (
            ("userPrincipalName", user.upn),
            ("mail", user.mail),
            ("targetAddress", user.target if exchange else None),
            ("mailNickname", user.nickname if exchange else None),
            ("displayName", user.display),
        ):
            assert [v.decode() for v in raw.get(attribute, [])] == ([expected] if expected else [])
        assert [p.decode() for p in raw.get("proxyAddresses", [])] == list(user.proxies)
        if user.conflict:  # the cn with a line feed, CNF: and its own objectGUID
            assert raw["cn"] == [f"{user.name}\nCNF:{uuid.UUID(bytes_le=guid)}".encode()]
            assert (
                seeded.dn
                == f"CN={user.name}\\0ACNF:{uuid.UUID(bytes_le=guid)},{user.ou},{ad_dc.base_dn}"
            )
        else:
            assert raw["cn"] == [user.name.encode()]
    by_sam = {s.user.sam: s for s in ad_seeded}
    assert by_sam["john.smith"].dn.startswith("CN=Smith\\, John,OU=Staff,")
    assert by_sam["zoe.nunez"].dn.startswith("CN=Zoë Ñúñez,OU=Staff,")
    assert len(by_sam["rex.many"].stored["proxyaddresses"]) == 300


def has_exchange_attributes(seeded: list[Seeded]) -> bool:
    """Whether the DC could store targetAddress and mailNickname (see seed's docstring)."""
    return any(s.stored.get(name.lower()) for s in seeded for name in EXCHANGE_ATTRIBUTES)


def test_the_dc_holds_exchange_attributes(ad_seeded: list[Seeded]) -> None:
    """targetAddress and mailNickname need Exchange's schema, which the seed adds over LDAP
    (the test DCs allow schema updates: samba_dc.py)."""
    assert has_exchange_attributes(ad_seeded)
    stored = {
        s.user.sam: (s.text("targetAddress"), s.text("mailNickname"))
        for s in ad_seeded
        if s.user.target or s.user.nickname
    }
    assert stored == {
        "tia.remote": (["SMTP:tia@contoso.mail.onmicrosoft.com"], ["tia"]),
        "uma.copy": (["SMTP:tia@contoso.mail.onmicrosoft.com"], ["uma"]),
        "vic.route": (["SMTP:vic@corp.local"], ["vic"]),
        "wes.helpdesk": ([], ["helpdesk"]),
        "xan.helpdesk": ([], ["helpdesk"]),
    }


@pytest.mark.parametrize("forest", ["corp", "fabrikam"])
def test_ldbsearch_agrees_on_every_object_guid_and_consistency_guid(
    forest: str, request: pytest.FixtureRequest
) -> None:
    dc_fixture, seeded_fixture = {
        "corp": ("ad_dc", "ad_seeded"),
        "fabrikam": ("ad_dc_two", "ad_seeded_two"),
    }[forest]
    dc: DcInfo = request.getfixturevalue(dc_fixture)
    seeded: list[Seeded] = request.getfixturevalue(seeded_fixture)
    samba = {u.sam.lower(): (u.object_guid, u.consistency_guid) for u in samba_users(dc)}
    expected = {
        s.user.sam.lower(): (uuid.UUID(bytes_le=s.object_guid), s.consistency_guid) for s in seeded
    }
    assert {sam: samba[sam] for sam in expected} == expected


def records(dc: DcInfo) -> list[Record]:
    """What a live reader does to raw LDAP values: binary stays bytes, text is decoded."""
    return [
        Record(
            line=1,
            dn=dn,
            attrs={
                name.lower(): [v if name.lower() in BINARY_ATTRIBUTES else v.decode() for v in vs]
                for name, vs in raw.items()
                if vs
            },
        )
        for dn, raw in read_users(dc).items()
    ]


def expected_exclusions(estate: Estate) -> dict[str, int]:
    """The estate's own exclusions plus what provisioning made: Administrator, Guest, krbtgt
    and dns-DC1 (isCriticalSystemObject) and the DC's computer account."""
    counts = Counter(u.excluded for u in estate.users if u.excluded)
    counts.update({"critical-system-object": 4, "computer": 1})
    return dict(counts)


def test_seeded_records_through_the_one_door(ad_dc: DcInfo, ad_seeded: list[Seeded]) -> None:
    """An (objectClass=user) export through map_ad_records: computers and system accounts
    dropped and counted by reason; the anchor follows mS-DS-ConsistencyGuid, else objectGUID."""
    include, exclude = CORP.scope(ad_dc.base_dn)
    config = AdSource(name="corp", include_ous=include, exclude_ous=exclude)
    rows = AdRows()
    report = map_ad_records(
        records(ad_dc),
        prepare_ad_source(config, "corp", None),
        where=ad_dc.ldaps_url,
        fmt="ldap",
        notes=Notes(),
        target=rows,
        raw_text_is_bytes=False,
        position="page",
    )
    assert (
        dict(report.excluded)
        == expected_exclusions(CORP)
        == {
            "replication-conflict": 1,
            "cn-ends-with-$": 1,
            "system-account": 5,
            "computer": 3,
            "critical-system-object": 4,
        }
    )
    kept = [s for s in ad_seeded if s.user.excluded is None]
    assert report.rows == len(kept) == 32 and report.complete
    got = {r["dn"]: r for r in rows.frame().iter_rows(named=True)}
    assert sorted(got) == sorted(s.dn for s in kept)
    for seeded in kept:
        row = got[seeded.dn]
        anchor_bytes = seeded.consistency_guid or seeded.object_guid
        assert row["object_guid"] == str(uuid.UUID(bytes_le=seeded.object_guid))
        assert row["consistency_guid"] == (
            base64.b64encode(seeded.consistency_guid).decode() if seeded.consistency_guid else None
        )
        assert row["anchor"] == base64.b64encode(anchor_bytes).decode()
        assert row["enabled"] is seeded.user.enabled
        assert row["in_scope"] is CORP.in_scope(seeded.user), seeded.user.sam
        assert len(row["proxy_addresses"]) == len(seeded.user.proxies)
    out_of_scope = {
        got[s.dn]["sam_account_name"]: got[s.dn]["out_of_scope_reason"]
        for s in kept
        if not CORP.in_scope(s.user)
    }
    assert out_of_scope == {
        "fa.parked": "outside include_ous",
        "gus.toplevel": "outside include_ous",
        "hal.leaver": f"excluded OU {exclude[0]}",
        "AAD_9f8e7d6c5b4a": (
            "Entra Connect default sync rules: sAMAccountName starts with AAD_ (the sync account)"
        ),
    }
