"""CSV imports: Get-ADUser | Export-Csv, csvde, and Get-MgUser | Export-Csv."""

from __future__ import annotations

import codecs
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from audit.config import Settings
from audit.errors import InputError
from audit.sources.files import import_files
from tests.sources.helpers import TAKEN_AT, settings

GUID_A = "f7cc07d7-7c15-447d-876d-c01b0e5a9e38"
GUID_B = "3ab39606-c642-489b-84b6-58c038d3ef39"

GET_ADUSER = (
    "#TYPE Microsoft.ActiveDirectory.Management.ADUser\n"
    '"CN","Created","DistinguishedName","EmailAddress","Enabled","GivenName","mail",'
    '"mS-DS-ConsistencyGuid","Name","ObjectClass","ObjectGUID","proxyAddresses","SamAccountName",'
    '"SID","Surname","UserPrincipalName","whenCreated","memberOf","lastLogonTimestamp"\n'
    '"Ann Lee","1/9/2020 3:31:40 PM","CN=Ann Lee,OU=Staff,DC=corp,DC=com","ann@contoso.com",'
    '"True","Ann","ann@contoso.com","System.Byte[]","Ann Lee","user",'
    f'"{GUID_A}","Microsoft.ActiveDirectory.Management.ADPropertyValueCollection","ann",'
    '"S-1-5-21-1-2-3-1104","Lee","ann@contoso.com","1/9/2020 3:31:40 PM",'
    '"Microsoft.ActiveDirectory.Management.ADPropertyValueCollection","132230700642958462"\n'
    '"Bo Chan","not a date","CN=Bo Chan,OU=Staff,DC=corp,DC=com","","False","Bo","",'
    f'"{GUID_B}","Bo Chan","user","{uuid.uuid4()}","SMTP:bo@contoso.com;smtp:b@contoso.com","bo",'
    '"S-1-5-21-1-2-3-1105","Chan","bo@contoso.com","","",""\n'
    '"PC1","1/9/2020 3:31:40 PM","CN=PC1,OU=Staff,DC=corp,DC=com","","True","","","","PC1",'
    f'"computer","{uuid.uuid4()}","","PC1$","","","","","",""\n'
)


def ad_import(path: Path, config: Settings | None = None):  # type: ignore[no-untyped-def]
    return import_files(
        ad=[(None, path)], cloud=[], settings=config or settings(), taken_at=TAKEN_AT
    )


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "cp1252"])
def test_get_aduser_export_csv(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "users.csv"
    path.write_bytes(GET_ADUSER.replace("\n", "\r\n").encode(encoding))
    snap = ad_import(path)
    frame = snap.ad_users
    assert frame["sam_account_name"].to_list() == ["ann", "bo"]
    ann, bo = frame.rows(named=True)
    # ObjectGUID printed as a GUID string: its ImmutableId is the bytes_le form.
    assert ann["object_guid"] == GUID_A
    assert ann["anchor"] == "1wfM9xV8fUSHbcAbDlqeOA=="
    assert ann["anchor_attribute"] == "objectGUID"  # System.Byte[] -> fallback
    assert ann["consistency_guid"] is None
    assert ann["proxy_addresses"] == []
    assert ann["enabled"] is True
    assert ann["object_sid"] == "S-1-5-21-1-2-3-1104"
    assert ann["when_created"] == datetime(2020, 1, 9, 15, 31, 40, tzinfo=UTC)
    assert ann["last_logon"] == datetime(2020, 1, 9, 19, 1, 4, 295846, tzinfo=UTC)
    # A ConsistencyGuid flattened as GUID text is the anchor (bytes_le of that GUID).
    assert bo["anchor"] == "BpazOkLGm0iEtljAONPvOQ=="
    assert bo["anchor_attribute"] == "mS-DS-ConsistencyGuid"
    assert bo["proxy_addresses"] == ["SMTP:bo@contoso.com", "smtp:b@contoso.com"]
    assert bo["primary_smtp"] == "bo@contoso.com"
    assert bo["enabled"] is False
    assert bo["when_created"] is None
    report = snap.sources[0]
    assert report.format == "csv-get-aduser"
    assert dict(report.excluded) == {"computer": 1}
    warnings = " | ".join(report.warnings)
    assert "column mS-DS-ConsistencyGuid: System.Byte[] cells" in warnings
    assert (
        "column proxyAddresses: Microsoft.ActiveDirectory.Management.ADPropertyValueCollection"
        in warnings
    )
    assert (
        "anchor attribute mS-DS-ConsistencyGuid was exported as a type name for 1 users" in warnings
    )
    assert "may be wrong" in warnings
    assert "whencreated: unreadable date/time values read as empty" in warnings
    assert "memberOf" not in warnings  # unused columns are not worth a warning


def test_semicolon_delimited_export_from_a_european_locale(tmp_path: Path) -> None:
    path = tmp_path / "eu.csv"
    path.write_text(
        '"DistinguishedName";"ObjectGUID";"UserPrincipalName";"Enabled"\n'
        f'"CN=Ann,DC=corp,DC=com";"{GUID_A}";"ann@contoso.com";"True"\n',
        encoding="utf-8",
    )
    assert ad_import(path).ad_users["upn"].to_list() == ["ann@contoso.com"]


def test_csvde_export_with_hex_binary_and_joined_values(tmp_path: Path) -> None:
    guid_hex = uuid.UUID(GUID_A).bytes_le.hex()
    cg_hex = uuid.UUID(GUID_B).bytes_le.hex()
    sid_hex = (bytes([1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0]) + (544).to_bytes(4, "little")).hex()
    text = (
        "DN,objectClass,cn,userPrincipalName,objectGUID,mS-DS-ConsistencyGuid,objectSid,"
        "proxyAddresses,userAccountControl,whenCreated\n"
        f'"CN=Ann,OU=Staff,DC=corp,DC=com",top;person;organizationalPerson;user,Ann,'
        f"ann@contoso.com,X'{guid_hex}',X'{cg_hex}',X'{sid_hex}',"
        "SMTP:ann@contoso.com;smtp:a@contoso.com,66050,20200109153140.0Z\n"
    )
    path = tmp_path / "csvde.csv"
    path.write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    snap = ad_import(path)
    row = snap.ad_users.row(0, named=True)
    assert snap.sources[0].format == "csvde"
    assert row["object_guid"] == GUID_A
    assert row["consistency_guid"] == "BpazOkLGm0iEtljAONPvOQ=="
    assert row["anchor"] == "BpazOkLGm0iEtljAONPvOQ=="
    assert row["object_sid"] == "S-1-5-32-544"
    assert row["proxy_addresses"] == ["SMTP:ann@contoso.com", "smtp:a@contoso.com"]
    assert row["enabled"] is False
    assert row["when_created"] == datetime(2020, 1, 9, 15, 31, 40, tzinfo=UTC)


def test_bad_hex_in_csvde_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("DN,objectGUID\n\"CN=A,DC=x\",X'zz'\n")
    with pytest.raises(InputError, match=r"bad\.csv:2: column objectGUID: bad X'hex'"):
        ad_import(path)


def test_get_mguser_export_csv_as_cloud_input(tmp_path: Path) -> None:
    path = tmp_path / "mg.csv"
    path.write_text(
        "#TYPE Microsoft.Graph.PowerShell.Models.MicrosoftGraphUser\n"
        '"Id","UserPrincipalName","OnPremisesImmutableId","OnPremisesSyncEnabled",'
        '"ProxyAddresses","AccountEnabled","CreatedDateTime","Mail"\n'
        '"id-1","ann@contoso.com","1wfM9xV8fUSHbcAbDlqeOA==","True","System.String[]","True",'
        '"1/9/2020 3:31:40 PM","ann@contoso.com"\n'
        '"id-2","bo@contoso.com","","","SMTP:bo@contoso.com smtp:b@contoso.com","False","",""\n',
        encoding="utf-8",
    )
    snap = import_files(ad=[], cloud=[path], settings=Settings(), taken_at=TAKEN_AT)
    one, two = snap.cloud_users.rows(named=True)
    assert (one["id"], one["immutable_id"], one["sync_enabled"]) == (
        "id-1",
        "1wfM9xV8fUSHbcAbDlqeOA==",
        True,
    )
    assert one["proxy_addresses"] is None
    assert one["created"] == datetime(2020, 1, 9, 15, 31, 40, tzinfo=UTC)
    assert two["sync_enabled"] is None and two["immutable_id"] is None
    assert two["proxy_addresses"] == ["SMTP:bo@contoso.com", "smtp:b@contoso.com"]
    assert two["primary_smtp"] == "bo@contoso.com"
    assert two["account_enabled"] is False
    report = snap.sources[0]
    assert report.format == "csv-get-mguser"
    assert any("column proxyAddresses: System.String[]" in w for w in report.warnings)


def test_cloud_csv_given_as_ad_and_ad_csv_given_as_cloud_are_refused(tmp_path: Path) -> None:
    mg = tmp_path / "mg.csv"
    mg.write_text('"Id","UserPrincipalName"\n"1","a@b.com"\n')
    with pytest.raises(InputError, match="pass it with --cloud"):
        ad_import(mg)
    ad = tmp_path / "ad.csv"
    ad.write_text(GET_ADUSER)
    with pytest.raises(InputError, match="pass it with --ad"):
        import_files(ad=[], cloud=[ad], settings=Settings(), taken_at=TAKEN_AT)


def test_unknown_csv_header(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("Foo,Bar\n1,2\n")
    with pytest.raises(InputError, match=r"x\.csv:1: CSV header has none of the columns"):
        ad_import(path)
