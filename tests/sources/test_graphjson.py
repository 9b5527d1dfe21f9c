"""Graph JSON imports: users in every saved shape, deleted users, domains, tenant, roles."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from audit.config import Settings, settings_from_dict
from audit.errors import InputError
from audit.model import Domain, Feature
from audit.sources.files import import_files
from tests.sources.helpers import TAKEN_AT, cloud_user, graph_page

GA = "62e90394-69f5-4237-9190-012177145e10"
USER_ADMIN = "fe930be7-5e62-47db-91af-98c3a49a38b1"
READER = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b"  # Directory Readers: not privileged


def cloud_import(cloud: list[Path], **kw: object):  # type: ignore[no-untyped-def]
    return import_files(ad=[], cloud=cloud, settings=Settings(), taken_at=TAKEN_AT, **kw)  # type: ignore[arg-type]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_pages_concatenated_in_one_file(tmp_path: Path) -> None:
    page1 = graph_page(
        [
            cloud_user(
                "u1",
                "ann@contoso.com",
                onPremisesImmutableId="1wfM9xV8fUSHbcAbDlqeOA==",
                onPremisesSyncEnabled=True,
                onPremisesLastSyncDateTime="2026-11-23T05:40:00Z",
                accountEnabled=True,
                createdDateTime="2020-01-09T15:31:40Z",
                onPremisesProvisioningErrors=[
                    {
                        "category": "PropertyConflict",
                        "occurredDateTime": "2026-11-01T10:00:00Z",
                        "propertyCausingError": "ProxyAddress",
                        "value": "SMTP:ann@contoso.com",
                    }
                ],
                onPremisesObjectIdentifier="ab12",
                userType="Member",
            )
        ],
        next_link="https://graph.microsoft.com/v1.0/users?$skiptoken=x",
    )
    page2 = graph_page([cloud_user("u2", "bo@contoso.com")])
    path = write(tmp_path / "users.json", page1 + page2.replace("\n", "", 1))  # `}{` and `}\n{`
    snap = cloud_import([path])
    assert snap.cloud_users["id"].to_list() == ["u1", "u2"]
    ann = snap.cloud_users.row(0, named=True)
    assert ann["immutable_id"] == "1wfM9xV8fUSHbcAbDlqeOA=="
    assert ann["sync_enabled"] is True
    assert ann["last_sync"] == datetime(2026, 11, 23, 5, 40, tzinfo=UTC)
    assert ann["on_prem_object_id"] == "ab12"
    assert ann["provisioning_errors"] == [
        {
            "category": "PropertyConflict",
            "occurred": datetime(2026, 11, 1, 10, tzinfo=UTC),
            "property": "ProxyAddress",
            "value": "SMTP:ann@contoso.com",
        }
    ]
    assert ann["primary_smtp"] == "ann@contoso.com"
    assert ann["deleted_at"] is None
    report = snap.sources[0]
    assert (report.kind, report.complete, report.rows, report.format) == (
        "cloud",
        True,
        2,
        "graph-json",
    )


def test_json_lines_and_bare_array(tmp_path: Path) -> None:
    lines = write(
        tmp_path / "u.jsonl",
        "\n".join(json.dumps(cloud_user(f"u{i}", f"u{i}@contoso.com")) for i in range(3)) + "\n",
    )
    array = write(tmp_path / "a.json", json.dumps([cloud_user("a1", "a1@contoso.com")]))
    snap = cloud_import([lines, array])
    assert snap.cloud_users["id"].to_list() == ["u0", "u1", "u2", "a1"]
    assert [s.format for s in snap.sources] == ["graph-jsonl", "graph-json"]


def test_property_names_without_case(tmp_path: Path) -> None:
    path = write(
        tmp_path / "u.json",
        json.dumps(
            {"Value": [{"Id": "u1", "UserPrincipalName": "a@b.com", "ONPREMISESIMMUTABLEID": "x"}]}
        ),
    )
    row = cloud_import([path]).cloud_users.row(0, named=True)
    assert (row["id"], row["upn"], row["immutable_id"]) == ("u1", "a@b.com", "x")


def test_next_link_on_the_last_page_marks_the_source_incomplete(tmp_path: Path) -> None:
    path = write(
        tmp_path / "cut.json",
        graph_page(
            [cloud_user("u1", "a@b.com")],
            next_link="https://graph.microsoft.com/v1.0/users?$skiptoken=y",
        ),
    )
    snap = cloud_import([path])
    report = snap.sources[0]
    assert report.complete is False
    assert report.incomplete_reason is not None
    assert "@odata.nextLink" in report.incomplete_reason
    assert snap.complete("cloud") is False
    assert snap.cloud_users.height == 1


def test_groups_contacts_and_delta_removals_are_routed(tmp_path: Path) -> None:
    items = [
        cloud_user("u1", "a@contoso.com"),
        {
            "@odata.type": "#microsoft.graph.group",
            "id": "g1",
            "displayName": "Sales",
            "mail": "sales@contoso.com",
            "proxyAddresses": ["SMTP:sales@contoso.com"],
        },
        {"@odata.type": "#microsoft.graph.orgContact", "id": "c1", "mail": "ext@fabrikam.com"},
        {"id": "u9", "@removed": {"reason": "deleted"}},
    ]
    path = write(
        tmp_path / "delta.json",
        graph_page(items) + "\n" + json.dumps({"value": [], "@odata.deltaLink": "x"}),
    )
    snap = cloud_import([path])
    assert snap.cloud_users["id"].to_list() == ["u1"]
    assert snap.cloud_objects.select("id", "object_type").rows() == [
        ("g1", "group"),
        ("c1", "contact"),
    ]
    assert snap.cloud_objects["proxy_addresses"].to_list()[0] == ["SMTP:sales@contoso.com"]
    assert dict(snap.sources[0].excluded) == {
        "group (kept as cloud object)": 1,
        "contact (kept as cloud object)": 1,
        "removed (delta)": 1,
    }


def test_deleted_users_file(tmp_path: Path) -> None:
    active = write(tmp_path / "users.json", graph_page([cloud_user("u1", "a@contoso.com")]))
    deleted = write(
        tmp_path / "deleted.json",
        graph_page(
            [
                cloud_user(
                    "d1",
                    "old@contoso.com",
                    deletedDateTime="2026-11-20T08:00:00Z",
                    onPremisesImmutableId="iGhmiAEBERG7uxI0VniQqw==",
                ),
                cloud_user("d2", "older@contoso.com"),
            ],
            context="https://graph.microsoft.com/v1.0/$metadata#directoryObjects/microsoft.graph.user",
        ),
    )
    snap = cloud_import([active], deleted=deleted)
    frame = snap.cloud_users
    assert frame["deleted_at"].to_list() == [
        None,
        datetime(2026, 11, 20, 8, tzinfo=UTC),
        datetime(2026, 11, 23, 6, tzinfo=UTC),  # no deletedDateTime: taken_at
    ]
    kinds = [(s.kind, s.rows) for s in snap.sources]
    assert kinds == [("cloud", 1), ("deleted", 2)]
    assert any("without deletedDateTime" in w for w in snap.sources[1].warnings)


def test_no_deleted_file_means_no_deleted_report(tmp_path: Path) -> None:
    active = write(tmp_path / "users.json", graph_page([cloud_user("u1", "a@contoso.com")]))
    snap = cloud_import([active])
    assert [s.kind for s in snap.sources] == ["cloud"]
    assert snap.tenant.known is False


def test_a_user_both_active_and_deleted_is_an_error(tmp_path: Path) -> None:
    active = write(tmp_path / "users.json", graph_page([cloud_user("u1", "a@contoso.com")]))
    deleted = write(
        tmp_path / "deleted.json",
        graph_page([cloud_user("u1", "a@contoso.com", deletedDateTime="2026-11-20T08:00:00Z")]),
    )
    with pytest.raises(
        InputError, match=r"deleted\.json:1: user u1 is both active and soft-deleted"
    ):
        cloud_import([active], deleted=deleted)


def test_domains_from_graph_json_and_from_a_text_list(tmp_path: Path) -> None:
    graph = write(
        tmp_path / "domains.json",
        json.dumps(
            {
                "value": [
                    {
                        "id": "contoso.onmicrosoft.com",
                        "isVerified": True,
                        "isInitial": True,
                        "isDefault": False,
                        "authenticationType": "Managed",
                    },
                    {
                        "id": "contoso.com",
                        "isVerified": True,
                        "isInitial": False,
                        "isDefault": True,
                        "authenticationType": "Federated",
                    },
                    {
                        "id": "pending.com",
                        "isVerified": False,
                        "isInitial": False,
                        "isDefault": False,
                        "authenticationType": "Managed",
                    },
                ]
            }
        ),
    )
    snap = cloud_import([], domains=graph)
    assert snap.tenant.known is True
    assert snap.tenant.initial_domain == "contoso.onmicrosoft.com"
    assert snap.tenant.verified_domains() == ["contoso.com", "contoso.onmicrosoft.com"]
    assert snap.tenant.federated_domains() == ["contoso.com"]
    text = write(
        tmp_path / "domains.txt",
        "# verified domains\ncontoso.com\ncontoso.onmicrosoft.com  # initial\n\n# end\n",
    )
    snap = cloud_import([], domains=text)
    assert snap.tenant.domains == (
        Domain("contoso.com", True),
        Domain("contoso.onmicrosoft.com", True, initial=True),
    )
    assert snap.sources[0].format == "text"


ORGANIZATION = {
    "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#organization",
    "value": [
        {
            "id": "00000000-0000-4000-8000-000000000001",
            "onPremisesSyncEnabled": True,
            "onPremisesLastSyncDateTime": "2026-11-23T05:40:00Z",
            "verifiedDomains": [
                {
                    "name": "contoso.onmicrosoft.com",
                    "isInitial": True,
                    "isDefault": False,
                    "type": "Managed",
                },
                {"name": "contoso.com", "isInitial": False, "isDefault": True, "type": "Federated"},
            ],
        }
    ],
}
SYNC = {
    "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directory/onPremisesSynchronization",
    "value": [
        {
            "id": "00000000-0000-4000-8000-000000000001",
            "features": {
                "blockSoftMatchEnabled": False,
                "blockCloudObjectTakeoverThroughHardMatchEnabled": True,
                "softMatchOnUpnEnabled": True,
            },
        }
    ],
}


def test_tenant_organization_and_sync_features_in_one_file(tmp_path: Path) -> None:
    path = write(tmp_path / "tenant.json", json.dumps(ORGANIZATION) + "\n" + json.dumps(SYNC))
    tenant = cloud_import([], tenant=path).tenant
    assert tenant.tenant_id == "00000000-0000-4000-8000-000000000001"
    assert tenant.dirsync_enabled is True
    assert tenant.last_dirsync == "2026-11-23T05:40:00Z"
    assert tenant.initial_domain == "contoso.onmicrosoft.com"
    assert tenant.federated_domains() == ["contoso.com"]
    assert tenant.features.block_soft_match == Feature(False, "graph")
    assert tenant.features.block_hard_match_takeover == Feature(True, "graph")
    assert tenant.features.soft_match_on_upn == Feature(True, "graph")


def test_forbidden_sync_features_stay_unknown_in_the_snapshot(tmp_path: Path) -> None:
    """The snapshot holds what Graph said; [entra.features] applies at analyze time."""
    denied = {
        "error": {"code": "Authorization_RequestDenied", "message": "Insufficient privileges"}
    }
    path = write(tmp_path / "tenant.json", json.dumps(ORGANIZATION) + json.dumps(denied))
    config = settings_from_dict({"entra": {"features": {"soft_match_on_upn": True}}})
    snap = import_files(ad=[], cloud=[], tenant=path, settings=config, taken_at=TAKEN_AT)
    assert snap.tenant.features.soft_match_on_upn == Feature(None, "unknown")
    assert snap.tenant.features.block_soft_match == Feature(None, "unknown")
    assert any("Authorization_RequestDenied" in w for w in snap.sources[0].warnings)


def test_roles_assigned_and_eligible(tmp_path: Path) -> None:
    users = write(
        tmp_path / "users.json",
        graph_page(
            [
                cloud_user("u1", "a@contoso.com"),
                cloud_user("u2", "b@contoso.com"),
                cloud_user("u3", "c@contoso.com"),
            ]
        ),
    )
    assignments = write(
        tmp_path / "assigned.json",
        json.dumps(
            {
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#roleManagement/directory/roleAssignments",
                "value": [
                    {
                        "id": "1",
                        "principalId": "u1",
                        "roleDefinitionId": GA,
                        "directoryScopeId": "/",
                    },
                    {
                        "id": "2",
                        "principalId": "u1",
                        "roleDefinitionId": USER_ADMIN,
                        "directoryScopeId": "/",
                    },
                    {
                        "id": "3",
                        "principalId": "u2",
                        "roleDefinitionId": READER,
                        "directoryScopeId": "/",
                    },
                    {
                        "id": "4",
                        "principalId": "group-1",
                        "roleDefinitionId": GA,
                        "directoryScopeId": "/",
                    },
                    {
                        "id": "5",
                        "principalId": "u3",
                        "roleDefinitionId": "custom-1",
                        "roleDefinition": {"displayName": "Tier0 Custom", "isPrivileged": True},
                    },
                ],
            }
        ),
    )
    eligible = write(
        tmp_path / "eligible.json",
        json.dumps(
            {
                "value": [
                    {
                        "id": "e1",
                        "principalId": "u2",
                        "roleDefinitionId": GA,
                        "roleEligibilityScheduleId": "s1",
                        "memberType": "Direct",
                    }
                ]
            }
        ),
    )
    snap = cloud_import([users], roles=[assignments, eligible])
    frame = snap.cloud_users
    assert frame["admin_roles"].to_list() == [
        ["Global Administrator", "User Administrator"],
        [],
        ["Tier0 Custom"],
    ]
    assert frame["eligible_roles"].to_list() == [[], ["Global Administrator"], []]
    # every role assigned blocks a soft match, privileged or not
    assert frame["directory_roles"].to_list() == [
        ["Global Administrator", "User Administrator"],
        ["Directory Readers"],
        ["Tier0 Custom"],
    ]
    role_reports = [s for s in snap.sources if s.kind == "roles"]
    assert [r.rows for r in role_reports] == [5, 1]
    assert any(
        "1 principals with roles are neither users of the cloud export" in w
        for w in role_reports[0].warnings
    )


def test_a_domains_response_given_as_users_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path / "d.json",
        json.dumps(
            {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#domains", "value": []}
        ),
    )
    with pytest.raises(InputError, match="pass it with --domains"):
        cloud_import([path])


def test_graph_error_response_as_users_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path / "e.json",
        json.dumps({"error": {"code": "InvalidAuthenticationToken", "message": "expired"}}),
    )
    with pytest.raises(
        InputError,
        match=r"e\.json:1: the file holds a Graph error response: InvalidAuthenticationToken",
    ):
        cloud_import([path])


def test_a_literal_type_name_in_a_string_property_is_kept(tmp_path: Path) -> None:
    """`System.Byte[]` written into onPremisesImmutableId is evidence of a wrong conversion."""
    path = write(
        tmp_path / "u.json",
        graph_page([cloud_user("u1", "a@contoso.com", onPremisesImmutableId="System.Byte[]")]),
    )
    snap = cloud_import([path])
    assert snap.cloud_users["immutable_id"].to_list() == ["System.Byte[]"]
    assert not any("System.Byte[]" in w for w in snap.sources[0].warnings)
