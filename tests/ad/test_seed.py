"""The seeded estate (tests/ad/seed.py) reads back as written, Samba's own ldbsearch agrees on
every objectGUID, and the records go through the one door every AD reader uses
(prepare_ad_source + map_ad_records) to the anchors and scope the seed meant."""

from __future__ import annotations

import base64
import subprocess
import uuid

import pytest

from audit.config import AdSource
from audit.sources.ad import AdRows, map_ad_records, prepare_ad_source
from audit.sources.detect import Notes
from audit.sources.records import BINARY_ATTRIBUTES, Record
from tests.ad.client import ldaps
from tests.ad.samba_dc import DcInfo
from tests.ad.seed import ESTATE, IN_SCOPE_OU, UF_ACCOUNTDISABLE, Seeded

pytestmark = pytest.mark.ad

READ = [
    "objectGUID",
    "mS-DS-ConsistencyGuid",
    "sAMAccountName",
    "userPrincipalName",
    "userAccountControl",
    "proxyAddresses",
    "mail",
    "objectClass",
    "cn",
]


def read_users(dc: DcInfo) -> dict[str, dict[str, list[bytes]]]:
    """Every user under OU=Corp, raw values, paged (Samba does not enforce a page limit)."""
    connection = ldaps(dc)
    entries = connection.extend.standard.paged_search(
        f"OU=Corp,{dc.base_dn}",
        "(&(objectCategory=person)(objectClass=user))",
        attributes=READ,
        paged_size=2,  # several pages even for a small estate
        generator=False,
    )
    users = {e["dn"].lower(): e["raw_attributes"] for e in entries if e["type"] == "searchResEntry"}
    connection.unbind()
    return users


def test_every_seeded_user_reads_back_as_written(ad_dc: DcInfo, ad_seeded: list[Seeded]) -> None:
    users = read_users(ad_dc)
    assert sorted(users) == sorted(s.dn.lower() for s in ad_seeded)
    for seeded in ad_seeded:
        raw = users[seeded.dn.lower()]
        user = seeded.user
        assert raw["objectGUID"] == [seeded.object_guid]
        consistency = raw.get("mS-DS-ConsistencyGuid", [])
        expected = {
            "unset": [],
            "equal": [seeded.object_guid],
            "different": [seeded.consistency_guid],
            "short": [seeded.consistency_guid],
        }[user.consistency]
        assert consistency == expected, user.sam
        if user.consistency == "different":
            assert len(consistency[0]) == 16 and consistency[0] != seeded.object_guid
        if user.consistency == "short":
            assert len(consistency[0]) == 15
        disabled = int(raw["userAccountControl"][0]) & UF_ACCOUNTDISABLE
        assert bool(disabled) != user.enabled
        assert [p.decode() for p in raw.get("proxyAddresses", [])] == list(user.proxies)


def test_ldbsearch_agrees_on_every_object_guid(ad_dc: DcInfo, ad_seeded: list[Seeded]) -> None:
    out = subprocess.run(
        [
            "ldbsearch", "-H", str(ad_dc.directory / "private" / "sam.ldb"),
            f"--configfile={ad_dc.directory / 'etc' / 'smb.conf'}",
            "-b", f"OU=Corp,{ad_dc.base_dn}", "(objectClass=user)", "objectGUID",
        ],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    samba: dict[str, uuid.UUID] = {}
    dn = ""
    for line in out.splitlines():
        if line.startswith("dn: "):
            dn = line[4:].lower()
        elif line.startswith("objectGUID: "):
            samba[dn] = uuid.UUID(line[len("objectGUID: ") :])
    assert samba == {s.dn.lower(): uuid.UUID(bytes_le=s.object_guid) for s in ad_seeded}


def test_seeded_records_through_the_one_door(ad_dc: DcInfo, ad_seeded: list[Seeded]) -> None:
    """What a live reader will do: raw LDAP values -> Record (binary as bytes, text decoded) ->
    map_ad_records. The anchor follows mS-DS-ConsistencyGuid, else objectGUID."""
    records = [
        Record(
            line=1,
            dn=dn,
            attrs={
                name.lower(): [v if name.lower() in BINARY_ATTRIBUTES else v.decode() for v in vs]
                for name, vs in raw.items()
                if vs
            },
        )
        for dn, raw in read_users(ad_dc).items()
    ]
    config = AdSource(name="corp", include_ous=(f"{IN_SCOPE_OU},{ad_dc.base_dn}",))
    rows = AdRows()
    report = map_ad_records(
        records,
        prepare_ad_source(config, "corp", None),
        where=ad_dc.ldaps_url,
        fmt="ldap",
        notes=Notes(),
        target=rows,
        raw_text_is_bytes=False,
        position="page",
    )
    frame = rows.frame()
    assert report.rows == len(ESTATE) and report.complete
    got = {r["dn"].lower(): r for r in frame.iter_rows(named=True)}
    for seeded in ad_seeded:
        row = got[seeded.dn.lower()]
        anchor_bytes = seeded.consistency_guid or seeded.object_guid
        assert row["object_guid"] == str(uuid.UUID(bytes_le=seeded.object_guid))
        assert row["anchor"] == base64.b64encode(anchor_bytes).decode()
        assert row["enabled"] is seeded.user.enabled
        assert row["in_scope"] is (IN_SCOPE_OU in seeded.user.ou), seeded.user.sam
