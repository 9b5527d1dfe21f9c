"""Each import flag checks that its file is what it says, and an AD export that lacks an
attribute the rules need says what cannot be judged."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from audit.config import Settings
from audit.errors import InputError
from audit.sources.files import import_files
from tests.sources.helpers import TAKEN_AT, cloud_user, graph_page, ldif_file, person

USERS = "https://graph.microsoft.com/v1.0/$metadata#users"


def save(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def users_file(tmp_path: Path) -> Path:
    return save(
        tmp_path / "users.json",
        graph_page(
            [
                cloud_user("6d4cbd4c-2b1e-4b4c-9e0b-0c7f6a1b2c3d", "ann@contoso.com"),
                cloud_user("0b3f9a51-8d2e-4f6a-9c1b-5e7d2a4b6c8e", "bo@contoso.com"),
            ],
            context=USERS,
        ),
    )


def run(tmp_path: Path, **kw: object):  # type: ignore[no-untyped-def]
    kw.setdefault("cloud", [users_file(tmp_path)])
    return import_files(ad=[], settings=Settings(), taken_at=TAKEN_AT, **kw)  # type: ignore[arg-type]


def test_users_given_as_domains_are_refused(tmp_path: Path) -> None:
    users = users_file(tmp_path)
    with pytest.raises(
        InputError,
        match=r"users\.json:1: this is not a GET /domains response \(.*#users\): pass it "
        r"with --cloud",
    ):
        run(tmp_path, domains=users)


def test_users_without_context_given_as_domains_are_refused(tmp_path: Path) -> None:
    bare = save(tmp_path / "bare.json", json.dumps([{"id": "u1", "userPrincipalName": "a@b.com"}]))
    with pytest.raises(
        InputError, match=r"bare\.json:1: not a domain: 'u1' .*: pass it with --cloud"
    ):
        run(tmp_path, domains=bare)


def test_role_assignments_given_as_domains_are_refused(tmp_path: Path) -> None:
    roles = save(
        tmp_path / "roles.json",
        json.dumps({"value": [{"id": "x", "principalId": "u1", "roleDefinitionId": "r"}]}),
    )
    with pytest.raises(InputError, match=r"not a domain: 'x' .*: pass it with --roles"):
        run(tmp_path, domains=roles)


def test_users_given_as_roles_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"users\.json:1: not a role assignment"):
        run(tmp_path, roles=[users_file(tmp_path)])


def test_users_given_as_tenant_are_refused(tmp_path: Path) -> None:
    with pytest.raises(
        InputError,
        match=r"users\.json:1: not a GET /organization or GET "
        r"/directory/onPremisesSynchronization response: pass it with --cloud",
    ):
        run(tmp_path, tenant=users_file(tmp_path))


def test_an_organization_object_is_recognised_by_its_fields(tmp_path: Path) -> None:
    """Get-MgOrganization | ConvertTo-Json: no @odata.context, no verifiedDomains selected."""
    org = save(
        tmp_path / "org.json",
        json.dumps(
            {
                "Id": "6f1c3a52-8d4e-4b7a-9c21-5e0f7d3b9a10",
                "DisplayName": "Contoso",
                "TenantType": "AAD",
                "CountryLetterCode": "NL",
                "OnPremisesSyncEnabled": True,
                "OnPremisesLastSyncDateTime": "2026-11-23T05:30:00Z",
            }
        ),
    )
    snap = run(tmp_path, tenant=org)
    assert snap.tenant.tenant_id == "6f1c3a52-8d4e-4b7a-9c21-5e0f7d3b9a10"
    assert snap.tenant.dirsync_enabled is True
    assert snap.tenant.last_dirsync == "2026-11-23T05:30:00Z"


def test_an_ad_export_without_the_rules_attributes_says_what_cannot_be_judged(
    tmp_path: Path,
) -> None:
    """The hand-made export: objectGUID and UPN only."""
    ad = ldif_file(
        tmp_path / "ad.ldf",
        [
            (dn, {k: v for k, v in attrs.items() if k != "userAccountControl"})
            for dn, attrs in (person("Ann", str(uuid.uuid4())), person("Bo", str(uuid.uuid4())))
        ],
    )
    snap = import_files(
        ad=[(None, ad)], cloud=[users_file(tmp_path)], settings=Settings(), taken_at=TAKEN_AT
    )
    [report] = [s for s in snap.sources if s.kind == "ad"]
    assert report.complete is True  # every anchor is known
    assert list(report.warnings) == [
        "no user has mail: if the export left it out, mail duplicates and conflicts with cloud "
        "objects and the mail checks of invalid-attribute cannot be judged; export mail",
        "no user has proxyAddresses: if the export left it out, soft match on the primary SMTP "
        "address (soft-match-pending/-blocked, unmatched-ad), address duplicates and conflicts, "
        "and the proxyAddresses checks of invalid-attribute cannot be judged; export "
        "proxyAddresses",
        "no user has mS-DS-ConsistencyGuid: if the export left it out, every anchor falls back "
        "to objectGUID, so users whose ConsistencyGuid differs (migrated, restamped) are matched "
        "wrongly and consistency-guid-invalid/-differs cannot be judged; export "
        "mS-DS-ConsistencyGuid",
        "no user has userAccountControl: enabled states are unknown, so enabled-drift and "
        "unmatched-ad judge nobody; export userAccountControl",
    ]


def test_an_attribute_one_user_has_is_not_reported_missing(tmp_path: Path) -> None:
    ad = ldif_file(
        tmp_path / "ad.ldf",
        [
            person("Ann", str(uuid.uuid4()), mail="ann@contoso.com"),
            person(
                "Bo",
                str(uuid.uuid4()),
                proxyAddresses=["SMTP:bo@contoso.com"],
                **{"mS-DS-ConsistencyGuid": uuid.uuid4().bytes_le},
            ),
        ],
    )
    snap = import_files(
        ad=[(None, ad)], cloud=[users_file(tmp_path)], settings=Settings(), taken_at=TAKEN_AT
    )
    [report] = [s for s in snap.sources if s.kind == "ad"]
    assert list(report.warnings) == []
