"""LDIF imports: the syntax ldifde and ldapsearch write, and what an AD user row becomes."""

from __future__ import annotations

import base64
import codecs
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.config import Settings
from audit.errors import InputError
from audit.sources.files import import_files
from audit.sources.ldif import ldif_records
from tests.sources.helpers import (
    REAL_WORLD,
    TAKEN_AT,
    fold_line,
    guid_b64,
    ldif_entry,
    ldif_file,
    person,
)

GUID_A = "f7cc07d7-7c15-447d-876d-c01b0e5a9e38"  # FACTS.md section 7 vector
GUID_B = "3ab39606-c642-489b-84b6-58c038d3ef39"


def ad_import(path: Path, settings: Settings | None = None, name: str | None = None):  # type: ignore[no-untyped-def]
    return import_files(
        ad=[(name, path)], cloud=[], settings=settings or Settings(), taken_at=TAKEN_AT
    )


def test_folded_lines_and_base64_dn_are_joined(tmp_path: Path) -> None:
    dn = "CN=Zoë Ærø,OU=Staff,DC=corp,DC=contoso,DC=com"  # non-ASCII: written as dn::
    long_name = "A very long display name " * 5 + "A very long display name"
    _, attrs = person("x", GUID_A, displayName=long_name)
    path = ldif_file(tmp_path / "u.ldif", [(dn, attrs)], fold=20)
    assert "dn:: " in path.read_text()
    row = ad_import(path).ad_users.row(0, named=True)
    assert row["dn"] == dn
    assert row["display_name"] == long_name
    assert row["object_guid"] == GUID_A
    assert row["anchor"] == "1wfM9xV8fUSHbcAbDlqeOA=="
    assert row["anchor_attribute"] == "objectGUID"


def test_cp1252_file_from_ldifde_keeps_accents(tmp_path: Path) -> None:
    text = (
        "dn: CN=Rene,OU=Staff,DC=corp,DC=com\r\nchangetype: add\r\nobjectClass: user\r\n"
        f"cn: Rene\r\ndisplayName: René Müller\r\nobjectGUID:: {guid_b64(GUID_A)}\r\n\r\n"
    )
    path = tmp_path / "ansi.ldf"
    path.write_bytes(text.encode("cp1252"))
    snap = ad_import(path)
    assert snap.ad_users["display_name"].to_list() == ["René Müller"]
    assert any("Windows-1252" in w for w in snap.sources[0].warnings)


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_with_bom_as_ldifde_u_writes_it(tmp_path: Path, codec: str) -> None:
    bom = codecs.BOM_UTF16_LE if codec == "utf-16-le" else codecs.BOM_UTF16_BE
    text = ldif_entry(*person("Ana Łukasz", GUID_A, displayName="Ana Łukasz"))
    path = tmp_path / "u16.ldf"
    path.write_bytes(bom + text.replace("\n", "\r\n").encode(codec))
    frame = ad_import(path).ad_users
    assert frame["display_name"].to_list() == ["Ana Łukasz"]
    assert frame["object_guid"].to_list() == [GUID_A]


def test_utf8_bom_version_comments_and_changetype_add(tmp_path: Path) -> None:
    text = (
        "\ufeffversion: 1\n\n# exported by ldifde\ndn: CN=Bo,DC=corp,DC=com\nchangetype: add\n"
        f"# a comment: with a colon\nobjectClass: user\ncn: Bo\nobjectGUID:: {guid_b64(GUID_A)}\n"
    )
    path = tmp_path / "bom.ldif"
    path.write_text(text, encoding="utf-8")
    assert ad_import(path).ad_users["dn"].to_list() == ["CN=Bo,DC=corp,DC=com"]


def test_change_records_are_refused_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "mod.ldif"
    path.write_text("dn: CN=Bo,DC=corp,DC=com\nchangetype: modify\nreplace: mail\nmail: x@y\n-\n")
    with pytest.raises(InputError) as err:
        ad_import(path)
    assert err.value.line == 2
    assert "changetype 'modify'" in str(err.value)
    assert str(err.value).startswith(f"{path}:2: ")


def test_url_values_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "url.ldif"
    path.write_text(
        f"dn: CN=Bo,DC=corp,DC=com\nobjectGUID:: {guid_b64(GUID_A)}\n"
        "jpegPhoto:< file:///tmp/photo.jpg\n"
    )
    with pytest.raises(InputError, match=r"url\.ldif:3: .*URL"):
        ad_import(path)


def test_attribute_names_are_case_insensitive(tmp_path: Path) -> None:
    path = tmp_path / "case.ldif"
    path.write_text(
        "DN: CN=Bo,DC=corp,DC=com\nOBJECTCLASS: user\nUserPrincipalName: bo@contoso.com\n"
        f"objectguid:: {guid_b64(GUID_A)}\nPROXYADDRESSES: SMTP:bo@contoso.com\n"
        "proxyaddresses: smtp:b@contoso.com\n"
    )
    row = ad_import(path).ad_users.row(0, named=True)
    assert row["upn"] == "bo@contoso.com"
    assert row["proxy_addresses"] == ["SMTP:bo@contoso.com", "smtp:b@contoso.com"]
    assert row["primary_smtp"] == "bo@contoso.com"


def test_row_values_from_ad_attributes(tmp_path: Path) -> None:
    sid = bytes([1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0]) + (1).to_bytes(4, "little") * 3
    sid += (1104).to_bytes(4, "little")
    dn, attrs = person(
        "Eve",
        GUID_A,
        uac=514,
        objectSid=sid,
        mail="eve@contoso.com",
        proxyAddresses=["smtp:e@contoso.com", "SMTP:eve@contoso.com", "X500:/o=Org/cn=eve"],
        whenCreated="20200109153140.0Z",
        whenChanged="20240102030405.0Z",
        lastLogon="0",
        lastLogonTimestamp="132230700642958462",
        givenName="Eve",
        sn="Adams",
        employeeID="E-1",
        mailNickname="eve",
        displayName="Eve Adams",
    )
    row = ad_import(ldif_file(tmp_path / "e.ldif", [(dn, attrs)])).ad_users.row(0, named=True)
    assert row["enabled"] is False  # userAccountControl 0x2 = ACCOUNTDISABLE
    assert row["user_account_control"] == 514
    assert row["object_sid"] == "S-1-5-21-1-1-1-1104"
    assert row["primary_smtp"] == "eve@contoso.com"
    assert row["when_created"] == datetime(2020, 1, 9, 15, 31, 40, tzinfo=UTC)
    assert row["when_changed"] == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert row["last_logon"] == datetime(2020, 1, 9, 19, 1, 4, 295846, tzinfo=UTC)
    assert (row["given_name"], row["surname"], row["employee_id"]) == ("Eve", "Adams", "E-1")
    assert row["is_critical_system_object"] is False
    assert row["in_scope"] is True and row["out_of_scope_reason"] is None
    assert row["source"] == "e"  # no [[ad]] table: the file stem


def test_consistency_guid_is_the_anchor_when_set(tmp_path: Path) -> None:
    other = uuid.UUID(GUID_B).bytes_le
    ascii_guid = GUID_B.encode("ascii")  # a GUID written as text: kept as its bytes
    path = ldif_file(
        tmp_path / "cg.ldif",
        [
            person("A", GUID_A, **{"mS-DS-ConsistencyGuid": other}),
            person("B", str(uuid.uuid4()), **{"mS-DS-ConsistencyGuid": ascii_guid}),
            person("C", str(uuid.uuid4())),
        ],
    )
    frame = ad_import(path).ad_users
    assert frame["anchor"].to_list()[0] == "BpazOkLGm0iEtljAONPvOQ=="
    assert frame["consistency_guid"].to_list()[0] == "BpazOkLGm0iEtljAONPvOQ=="
    assert frame["anchor_attribute"].to_list() == [
        "mS-DS-ConsistencyGuid",
        "mS-DS-ConsistencyGuid",
        "objectGUID",
    ]
    assert frame["consistency_guid"].to_list()[1] == base64.b64encode(ascii_guid).decode()
    assert frame["consistency_guid"].to_list()[2] is None


def test_configured_anchor_attributes(tmp_path: Path) -> None:
    entries = [
        person(
            "A", GUID_A, **{"mS-DS-ConsistencyGuid": uuid.UUID(GUID_B).bytes_le, "employeeID": "E7"}
        )
    ]
    path = ldif_file(tmp_path / "a.ldif", entries)
    from tests.sources.helpers import settings as make

    by_guid = ad_import(path, make(anchor_attribute="objectGUID")).ad_users.row(0, named=True)
    assert (by_guid["anchor"], by_guid["anchor_attribute"]) == (
        "1wfM9xV8fUSHbcAbDlqeOA==",
        "objectGUID",
    )
    by_emp = ad_import(path, make(anchor_attribute="employeeID")).ad_users.row(0, named=True)
    assert (by_emp["anchor"], by_emp["anchor_attribute"], by_emp["source"]) == (
        "E7",
        "employeeID",
        "corp",
    )


def test_computers_and_idfix_system_accounts_are_dropped_and_counted(tmp_path: Path) -> None:
    ou = "CN=Users,DC=corp,DC=com"
    entries = [
        person("Alice", str(uuid.uuid4()), ou=ou),
        person("WS01", str(uuid.uuid4()), ou=ou, objectClass=["top", "user", "computer"]),
        person("krbtgt", str(uuid.uuid4()), ou=ou),
        person("Administrator", str(uuid.uuid4()), ou=ou),
        person("HealthMailbox0a1b", str(uuid.uuid4()), ou=ou),
        person("svc$", str(uuid.uuid4()), ou=ou),
        person("Crit", str(uuid.uuid4()), ou=ou, isCriticalSystemObject="TRUE"),
        person("Group", str(uuid.uuid4()), ou=ou, objectClass=["top", "group"]),
    ]
    conflict_dn, conflict = person("Bob", str(uuid.uuid4()), ou=ou)
    entries.append((conflict_dn.replace("CN=Bob", "CN=Bob\\0ACNF:1234"), conflict))
    snap = ad_import(ldif_file(tmp_path / "mix.ldif", entries))
    assert snap.ad_users["dn"].to_list() == [f"CN=Alice,{ou}"]
    report = snap.sources[0]
    assert report.rows == 1
    assert dict(report.excluded) == {
        "computer": 1,
        "system-account": 3,
        "cn-ends-with-$": 1,
        "critical-system-object": 1,
        "not-a-user": 1,
        "replication-conflict": 1,
    }


def test_cascade_real_world_export() -> None:
    snap = ad_import(REAL_WORLD / "cascade-ldapsearch.ldif")
    frame = snap.ad_users
    assert frame.height == 14  # 16 entries - the DC computer - the critical CascGuest
    assert dict(snap.sources[0].excluded) == {"computer": 1, "critical-system-object": 1}
    assert not frame["dn"].str.contains("CASC-DC1").any()
    assert "CascGuest" not in frame["sam_account_name"].to_list()
    assert frame["upn"].str.ends_with("@cascade.local").all()
    ark = frame.filter(frame["sam_account_name"] == "arksvc").row(0, named=True)
    assert ark["anchor"] == "ELXj5FhFXUmr2tAqpnaTNA=="  # objectGUID:: verbatim
    assert ark["object_guid"] == "e4e3b510-4558-495d-abda-d02aa6769334"
    assert ark["object_sid"].startswith("S-1-5-21-")
    assert ark["object_sid"].endswith("-1106")
    disabled = frame.filter(~frame["enabled"])["sam_account_name"].sort().to_list()
    assert disabled == ["b.hanson", "e.crowe", "i.croft"]
    # a lab without Exchange: nobody has mail, proxyAddresses or a ConsistencyGuid, and the
    # import says what that leaves unjudged
    assert [w.split(":", 1)[0] for w in snap.sources[0].warnings] == [
        "no user has mail",
        "no user has proxyAddresses",
        "no user has mS-DS-ConsistencyGuid",
    ]


# --- the parser itself, property-based --------------------------------------------------------

_names = st.sampled_from(["displayName", "description", "mail", "proxyAddresses", "info", "cn"])
_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r\n"),
    max_size=120,
)
_values = st.lists(st.one_of(_text, st.binary(max_size=40)), min_size=1, max_size=4)
_records = st.lists(
    st.tuples(
        st.text(alphabet="abcdefghij XYZ-é", min_size=1, max_size=30),
        st.dictionaries(_names, _values, max_size=5),
    ),
    min_size=1,
    max_size=5,
    unique_by=lambda r: r[0].strip().lower(),
)


@settings(max_examples=150, deadline=None)
@given(records=_records, width=st.integers(min_value=2, max_value=80))
def test_ldif_round_trip(
    records: list[tuple[str, dict[str, list[str | bytes]]]], width: int
) -> None:
    """Records serialised with folding and base64 parse back to the same values."""
    entries = [(f"CN={cn.strip() or 'x'},DC=x", attrs) for cn, attrs in records]
    text = "version: 1\n\n" + "\n".join(ldif_entry(dn, a, fold=width) for dn, a in entries)
    wanted = {
        n.lower() for n in ("displayName", "description", "mail", "proxyAddresses", "info", "cn")
    }
    parsed = list(ldif_records(text, Path("gen.ldif"), wanted, binary=wanted))
    assert [r.dn for r in parsed] == [dn for dn, _ in entries]
    for record, (_, attrs) in zip(parsed, entries, strict=True):
        expected = {
            k.lower(): [
                v.encode("utf-8") if isinstance(v, str) and not _plain(v) else v for v in vs
            ]
            for k, vs in attrs.items()
        }
        assert record.attrs == expected


def _plain(value: str) -> bool:
    from tests.sources.helpers import _safe

    return _safe(value)


def test_fold_line_helper_matches_rfc_2849() -> None:
    assert fold_line("abcdefgh", 4) == "abcd\n efg\n h"
