"""import_files as the CLI calls it: several sources, config scope, reports, frame schemas."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

import pytest

from audit.config import AdSource, Settings
from audit.errors import InputError
from audit.model import AD_USERS_SCHEMA, CLOUD_OBJECTS_SCHEMA, CLOUD_USERS_SCHEMA
from audit.sources.files import import_files
from tests.sources.helpers import TAKEN_AT, cloud_user, graph_page, ldif_file, person

CORP = "DC=corp,DC=contoso,DC=com"


def two_sources() -> Settings:
    return Settings(
        ad=(
            AdSource(
                name="corp",
                include_ous=(f"OU=Staff,{CORP}",),
                exclude_ous=(f"OU=Leavers,OU=Staff,{CORP}",),
                filter="(!(userAccountControl:1.2.840.113556.1.4.803:=2))",
            ),
            AdSource(name="fabrikam", anchor_attribute="objectGUID"),
        ),
        source_path="syncaudit.toml",
    )


def test_sources_scope_and_reports(tmp_path: Path) -> None:
    corp = ldif_file(
        tmp_path / "corp.ldif",
        [
            person("In", str(uuid.uuid4()), ou=f"OU=Staff,{CORP}"),
            person("Gone", str(uuid.uuid4()), ou=f"OU=Leavers,OU=Staff,{CORP}"),
            person("Off", str(uuid.uuid4()), ou=f"OU=Staff,{CORP}", uac=514),
            person("Svc", str(uuid.uuid4()), ou=f"OU=Service,{CORP}"),
        ],
    )
    fab = ldif_file(
        tmp_path / "fab.ldif", [person("In", str(uuid.uuid4()), ou="OU=Staff,DC=fabrikam,DC=com")]
    )
    users = tmp_path / "users.json"
    users.write_text(graph_page([cloud_user("u1", "in@contoso.com")]))
    snap = import_files(
        ad=[("corp", corp), ("fabrikam", fab)],
        cloud=[users],
        settings=two_sources(),
        taken_at=TAKEN_AT,
    )
    frame = snap.ad_users
    assert frame.select("source", "in_scope", "out_of_scope_reason").rows() == [
        ("corp", True, None),
        ("corp", False, f"excluded OU OU=Leavers,OU=Staff,{CORP}"),
        ("corp", False, "filter"),
        ("corp", False, "outside include_ous"),
        ("fabrikam", True, None),
    ]
    assert [(s.name, s.kind, s.rows, s.complete) for s in snap.sources] == [
        ("corp", "ad", 4, True),
        ("fabrikam", "ad", 1, True),
        ("users.json", "cloud", 1, True),
    ]
    assert snap.complete("ad") and snap.complete("cloud") and not snap.complete("deleted")
    assert snap.tenant.known is False
    assert snap.taken_at == TAKEN_AT


def test_frames_follow_the_model_schemas(tmp_path: Path) -> None:
    ad = ldif_file(tmp_path / "a.ldif", [person("A", str(uuid.uuid4()))])
    snap = import_files(ad=[(None, ad)], cloud=[], settings=Settings())
    assert dict(snap.ad_users.schema) == AD_USERS_SCHEMA
    assert dict(snap.cloud_users.schema) == CLOUD_USERS_SCHEMA
    assert dict(snap.cloud_objects.schema) == CLOUD_OBJECTS_SCHEMA
    assert snap.taken_at is not None
    assert datetime.fromisoformat(snap.taken_at.replace("Z", "+00:00")).tzinfo is not None


def test_duplicate_dn_across_files_of_one_source(tmp_path: Path) -> None:
    entry = person("A", str(uuid.uuid4()))
    one = ldif_file(tmp_path / "one.ldif", [entry])
    two = ldif_file(tmp_path / "two.ldif", [entry])
    with pytest.raises(InputError, match=rf"two\.ldif:1: duplicate DN .*first at {one}:1"):
        import_files(
            ad=[("corp", one), ("corp", two)], cloud=[], settings=Settings(), taken_at=TAKEN_AT
        )


def test_bad_filter_in_config_names_the_config(tmp_path: Path) -> None:
    ad = ldif_file(tmp_path / "a.ldif", [person("A", str(uuid.uuid4()))])
    config = Settings(
        ad=(AdSource(name="corp", filter="(objectClass=user"),), source_path="syncaudit.toml"
    )
    with pytest.raises(
        InputError, match=r"^syncaudit\.toml: \[\[ad\]\] corp: filter: missing '\)'"
    ):
        import_files(ad=[(None, ad)], cloud=[], settings=config, taken_at=TAKEN_AT)


def test_no_input_at_all_gives_empty_frames() -> None:
    snap = import_files(ad=[], cloud=[], settings=Settings(), taken_at=TAKEN_AT)
    assert snap.ad_users.height == 0 and snap.cloud_users.height == 0
    assert snap.sources == ()


def test_an_empty_side_is_incomplete_not_an_estate(tmp_path: Path) -> None:
    """A tenant export without a single user (or an AD export without a single person) is a
    wrong or cut export: it is marked incomplete so nobody on the other side becomes an
    orphan. An empty soft-deleted file is normal and stays complete."""
    ad = ldif_file(tmp_path / "ad.ldif", [person("Ann", str(uuid.uuid4()))])
    empty = tmp_path / "users.json"
    empty.write_text(graph_page([]), encoding="utf-8")
    deleted = tmp_path / "deleted.json"
    deleted.write_text(graph_page([]), encoding="utf-8")
    snap = import_files(
        ad=[(None, ad)], cloud=[empty], deleted=deleted, settings=Settings(), taken_at=TAKEN_AT
    )
    state = {r.kind: r.complete for r in snap.sources}
    assert state == {"ad": True, "cloud": False, "deleted": True}
    assert snap.complete("ad") and not snap.complete("cloud")
    cloud_report = next(r for r in snap.sources if r.kind == "cloud")
    assert any("no cloud users at all" in w for w in cloud_report.warnings)

    computer_class = ["top", "person", "organizationalPerson", "user", "computer"]
    no_people = ldif_file(
        tmp_path / "none.ldif", [person("PC1", str(uuid.uuid4()), objectClass=computer_class)]
    )
    users = tmp_path / "one.json"
    users.write_text(graph_page([cloud_user(str(uuid.uuid4()), "bo@contoso.com")]), "utf-8")
    snap = import_files(
        ad=[(None, no_people)], cloud=[users], settings=Settings(), taken_at=TAKEN_AT
    )
    assert {r.kind: r.complete for r in snap.sources} == {"ad": False, "cloud": True}


def test_people_whose_names_start_like_system_accounts_are_kept(tmp_path: Path) -> None:
    """IdFix's bare cn prefixes would drop Iwamoto or 'Guest, Amanda' from the whole estate;
    only the exact built-in names and the distinctive system-account prefixes are skipped."""
    entries = [
        person("Iwamoto Kenji", str(uuid.uuid4())),
        person("Guest\\, Amanda", str(uuid.uuid4())),
        person("Msoliman Omar", str(uuid.uuid4())),
        person("Guest", str(uuid.uuid4())),
        person("MSOL_0123456789ab", str(uuid.uuid4())),
        person("IWAM_WEB01", str(uuid.uuid4())),
    ]
    snap = import_files(
        ad=[(None, ldif_file(tmp_path / "ad.ldif", entries))],
        cloud=[],
        settings=Settings(),
        taken_at=TAKEN_AT,
    )
    names = sorted(snap.ad_users["dn"].str.extract(r"^CN=(.*?),OU=").to_list())
    assert names == ["Guest\\, Amanda", "Iwamoto Kenji", "Msoliman Omar"]
    assert dict(snap.sources[0].excluded) == {"system-account": 3}


def test_export_without_object_guid_is_incomplete(tmp_path: Path) -> None:
    """ldifde -m drops objectGUID: nobody's anchor is known, so the AD side is incomplete
    (otherwise every synced cloud user would look orphaned)."""
    text = ldif_file(tmp_path / "ad.ldif", [person("Ann", str(uuid.uuid4()))]).read_text()
    no_guid = tmp_path / "m.ldif"
    no_guid.write_text(
        "\n".join(line for line in text.splitlines() if not line.lower().startswith("objectguid"))
        + "\n"
    )
    snap = import_files(ad=[(None, no_guid)], cloud=[], settings=Settings(), taken_at=TAKEN_AT)
    report = snap.sources[0]
    assert report.complete is False
    assert any("without objectGUID" in w for w in report.warnings)


def test_users_without_user_account_control_are_counted_in_a_warning(tmp_path: Path) -> None:
    """A custom ldifde -l list without userAccountControl leaves the enabled state unknown;
    the rules that need it skip those users, so the source says so."""
    text = ldif_file(tmp_path / "ad.ldif", [person("Ann", str(uuid.uuid4()))]).read_text()
    bo = ldif_file(tmp_path / "bo.ldif", [person("Bo", str(uuid.uuid4()))]).read_text()
    no_uac = tmp_path / "no-uac.ldif"
    no_uac.write_text(
        "\n".join(
            line for line in text.splitlines() if not line.lower().startswith("useraccountcontrol")
        )
        + "\n\n"
        + bo
    )
    snap = import_files(ad=[(None, no_uac)], cloud=[], settings=Settings(), taken_at=TAKEN_AT)
    assert snap.ad_users["enabled"].to_list() == [None, True]
    assert any("1 users without userAccountControl" in w for w in snap.sources[0].warnings)


def test_entra_connect_default_rules_put_their_users_out_of_scope(tmp_path: Path) -> None:
    """The users Entra Connect's out-of-box rules never sync (concept-azure-ad-connect-sync-
    default-configuration.md) are kept, out of scope with the rule as reason; people whose
    names only look like it (IdFix's broader SUPPORT_ and CAS_ prefixes) stay in scope."""
    entries = [
        person("Sync", str(uuid.uuid4()), sAMAccountName="MSOL_0a1b2c3d4e5f"),
        person("Sync2", str(uuid.uuid4()), sAMAccountName="AAD_0a1b2c3d4e5f"),
        person("Support", str(uuid.uuid4()), sAMAccountName="SUPPORT_388945a0"),
        person("Sysmbx", str(uuid.uuid4()), mailNickname="SystemMailbox{1f05a927-0000}"),
        person("Cas", str(uuid.uuid4()), mailNickname="CAS_{0a1b2c3d}"),
        person("Discovery", str(uuid.uuid4()), msExchRecipientTypeDetails="536870912"),
        person("Remote", str(uuid.uuid4()), msExchRecipientTypeDetails="2147483648"),
        person("Desk", str(uuid.uuid4()), sAMAccountName="support_desk"),
        person("Cassie", str(uuid.uuid4()), sAMAccountName="cas_smith"),
        person("Msoliman", str(uuid.uuid4()), sAMAccountName="msoliman"),
    ]
    snap = import_files(
        ad=[(None, ldif_file(tmp_path / "ad.ldif", entries))],
        cloud=[],
        settings=Settings(),
        taken_at=TAKEN_AT,
    )
    scope = {
        r["dn"].split(",")[0][3:]: r["out_of_scope_reason"]
        for r in snap.ad_users.iter_rows(named=True)
    }
    rules = "Entra Connect default sync rules"
    assert scope == {
        "Sync": f"{rules}: sAMAccountName starts with MSOL_ (the sync account)",
        "Sync2": f"{rules}: sAMAccountName starts with AAD_ (the sync account)",
        "Support": f"{rules}: sAMAccountName is SUPPORT_388945a0",
        "Sysmbx": f"{rules}: mailNickname starts with SystemMailbox{{",
        "Cas": f"{rules}: mailNickname is an Exchange CAS_{{...}} system mailbox",
        "Discovery": f"{rules}: msExchRecipientTypeDetails 536870912 is an Exchange system "
        "recipient",
        "Remote": None,  # a remote mailbox (0x80000000) syncs
        "Desk": None,
        "Cassie": None,
        "Msoliman": None,
    }


def test_target_address_is_imported_from_ldif_and_csv(tmp_path: Path) -> None:
    ldif = ldif_file(
        tmp_path / "ad.ldif",
        [person("Ann", str(uuid.uuid4()), targetAddress="SMTP:ann@contoso.mail.onmicrosoft.com")],
    )
    csv = tmp_path / "ad.csv"
    csv.write_text(
        '"DistinguishedName","ObjectGUID","SamAccountName","UserPrincipalName","targetAddress"\n'
        f'"CN=Bo,OU=Staff,{CORP}","{uuid.uuid4()}","bo","bo@contoso.com",'
        '"SMTP:bo@contoso.mail.onmicrosoft.com"\n',
        encoding="utf-8",
    )
    snap = import_files(
        ad=[(None, ldif), (None, csv)], cloud=[], settings=Settings(), taken_at=TAKEN_AT
    )
    assert snap.ad_users["target_address"].to_list() == [
        "SMTP:ann@contoso.mail.onmicrosoft.com",
        "SMTP:bo@contoso.mail.onmicrosoft.com",
    ]
