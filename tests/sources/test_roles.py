"""--roles: every directory role assigned blocks a soft match; only privileged ones (assigned or
PIM-eligible) trigger the 2026 hard-match hardening. Privilege comes from isPrivileged when an
export carries it (Graph beta), else from Microsoft's built-in table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from audit.config import Settings
from audit.sources.files import import_files
from tests.sources.helpers import TAKEN_AT, cloud_user, graph_page

GRAPH = "https://graph.microsoft.com/v1.0/$metadata#roleManagement/directory/"
GA = "62e90394-69f5-4237-9190-012177145e10"
EXCHANGE = "29232cdf-9323-42fd-ade2-1d097af3e4de"  # not privileged
HELPDESK = "729827e3-9c14-49f7-bb1b-9608f156bbb8"  # privileged
CUSTOM = "0d4e2a61-3c5b-4f7e-9a8d-1b2c3d4e5f60"


def save(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def assignment(principal: str, role: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"{role[:8]}-{principal}",
        "principalId": principal,
        "roleDefinitionId": role,
        "directoryScopeId": "/",
        **extra,
    }


def users(tmp_path: Path, *ids: str) -> Path:
    path = tmp_path / "users.json"
    path.write_text(graph_page([cloud_user(i, f"{i}@contoso.com") for i in ids]))
    return path


def imported(tmp_path: Path, ids: tuple[str, ...], *roles: Path):  # type: ignore[no-untyped-def]
    return import_files(
        ad=[],
        cloud=[users(tmp_path, *ids)],
        roles=list(roles),
        settings=Settings(),
        taken_at=TAKEN_AT,
    )


def columns(snap) -> dict[str, tuple[list[str], list[str], list[str]]]:  # type: ignore[no-untyped-def]
    return {
        r["id"]: (r["directory_roles"], r["admin_roles"], r["eligible_roles"])
        for r in snap.cloud_users.iter_rows(named=True)
    }


def test_v1_assignments_without_is_privileged_use_the_built_in_table(tmp_path: Path) -> None:
    """Graph v1.0 has no isPrivileged: Exchange Administrator is a directory role (blocks soft
    match) but not privileged; Global Administrator is both."""
    roles = save(
        tmp_path / "assigned.json",
        {
            "@odata.context": GRAPH + "roleAssignments(roleDefinition())",
            "value": [
                assignment(
                    "u1",
                    EXCHANGE,
                    roleDefinition={
                        "id": EXCHANGE,
                        "templateId": EXCHANGE,
                        "displayName": "Exchange Administrator",
                        "isBuiltIn": True,
                    },
                ),
                assignment("u2", GA),
            ],
        },
    )
    snap = imported(tmp_path, ("u1", "u2", "u3"), roles)
    assert columns(snap) == {
        "u1": (["Exchange Administrator"], [], []),
        "u2": (["Global Administrator"], ["Global Administrator"], []),
        "u3": ([], [], []),
    }
    assert [s.warnings for s in snap.sources if s.kind == "roles"] == [()]


def test_beta_role_definitions_decide_for_custom_roles(tmp_path: Path) -> None:
    assigned = save(tmp_path / "assigned.json", {"value": [assignment("u1", CUSTOM)]})
    definitions = save(
        tmp_path / "definitions.json",
        {
            "@odata.context": "https://graph.microsoft.com/beta/$metadata#roleManagement/"
            "directory/roleDefinitions",
            "value": [
                {
                    "id": CUSTOM,
                    "templateId": CUSTOM,
                    "displayName": "Tier0 Operators",
                    "isBuiltIn": False,
                    "isPrivileged": True,
                },
            ],
        },
    )
    snap = imported(tmp_path, ("u1",), assigned, definitions)
    assert columns(snap) == {"u1": (["Tier0 Operators"], ["Tier0 Operators"], [])}
    reports = [s for s in snap.sources if s.kind == "roles"]
    assert [(r.format, r.rows) for r in reports] == [
        ("graph-json:roleAssignments", 1),
        ("graph-json:roleDefinitions", 1),
    ]


def test_a_role_of_unknown_privilege_blocks_soft_match_and_says_so(tmp_path: Path) -> None:
    assigned = save(tmp_path / "assigned.json", {"value": [assignment("u1", CUSTOM)]})
    snap = imported(tmp_path, ("u1",), assigned)
    assert columns(snap) == {"u1": ([CUSTOM], [], [])}
    [report] = [s for s in snap.sources if s.kind == "roles"]
    assert report.warnings == (
        f"1 roles of unknown privilege ({CUSTOM}; custom, or newer than the built-in table of "
        "2026-01-20): they block soft match but are not counted as privileged; add GET "
        "/beta/roleManagement/directory/roleDefinitions to --roles to let isPrivileged decide",
    )


def test_roles_of_role_assignable_groups_reach_their_members(tmp_path: Path) -> None:
    """An assignment or eligibility to a role-assignable group applies to its members (such
    groups cannot contain groups); eligibility blocks only the hard match."""
    assigned = save(tmp_path / "assigned.json", {"value": [assignment("g1", HELPDESK)]})
    eligible = save(
        tmp_path / "eligible.json",
        {
            "@odata.context": GRAPH + "roleEligibilityScheduleInstances",
            "value": [assignment("g2", GA, roleEligibilityScheduleId="s1", memberType="Direct")],
        },
    )
    groups = save(
        tmp_path / "groups.json",
        {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#groups(id,members(id))",
            "value": [
                {"id": "g1", "members": [{"id": "u1"}, {"id": "u2"}]},
                {"id": "g2", "members": [{"id": "u2"}]},
            ],
        },
    )
    snap = imported(tmp_path, ("u1", "u2", "u3"), assigned, eligible, groups)
    helpdesk = "Helpdesk Administrator"
    assert columns(snap) == {
        "u1": ([helpdesk], [helpdesk], []),
        "u2": ([helpdesk], [helpdesk], ["Global Administrator"]),
        "u3": ([], [], []),
    }


def test_group_members_cut_by_expand_and_unknown_principals_are_reported(
    tmp_path: Path,
) -> None:
    """$expand returns at most 20 directory objects (Graph known issues): a group listing
    exactly 20 may be cut. A grant to a principal that is no user and no listed group (a
    service principal, or a group without its members) is not counted, and said."""
    members = [{"id": f"m{i}"} for i in range(20)]
    groups = save(
        tmp_path / "groups.json",
        {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#groups(id,members(id))",
            "value": [{"id": "g1", "members": members}],
        },
    )
    assigned = save(
        tmp_path / "assigned.json",
        {"value": [assignment("g1", GA), assignment("sp-1", GA), assignment("g9", GA)]},
    )
    snap = imported(tmp_path, ("u1",), assigned, groups)
    reports = {s.name: s.warnings for s in snap.sources if s.kind == "roles"}
    assert reports == {
        "assigned.json": (
            "2 principals with roles are neither users of the cloud export nor role-assignable "
            "groups whose members --roles lists (service principals, or groups: add their "
            "members): their roles are not counted",
        ),
        "groups.json": (
            "1 role-assignable groups list exactly 20 members, the most $expand returns: export "
            "their members with Get-MgGroupMember -All instead",
        ),
    }


def test_role_columns_keep_a_bulk_frames_chunks() -> None:
    # A bulk read leaves a chunk per page; role columns cut alike keep the next select from
    # rechunking (copying) every column.
    import polars as pl

    from audit.model import CLOUD_USERS_SCHEMA, conform
    from audit.sources.entra_roles import RoleFacts, RoleGrant, with_role_columns

    pages = [
        conform(pl.DataFrame({"id": [f"u{n}", f"u{n + 1}"]}), CLOUD_USERS_SCHEMA) for n in (0, 2, 4)
    ]
    cloud = pl.concat(pages, rechunk=False)
    facts = RoleFacts()
    facts.grants.append(RoleGrant("u3", GA, eligible=False))
    facts.grants.append(RoleGrant("u4", HELPDESK, eligible=True))
    out, _ = with_role_columns(cloud, facts, [])
    chunks = dict(zip(out.columns, out.n_chunks("all"), strict=True))
    assert chunks == {
        **dict(zip(cloud.columns, cloud.n_chunks("all"), strict=True)),
        **{name: 3 for name in ("id", "directory_roles", "admin_roles", "eligible_roles")},
    }
    assert out.select("id", "directory_roles", "admin_roles", "eligible_roles").rows() == [
        ("u0", [], [], []),
        ("u1", [], [], []),
        ("u2", [], [], []),
        ("u3", ["Global Administrator"], ["Global Administrator"], []),
        ("u4", [], [], ["Helpdesk Administrator"]),
        ("u5", [], [], []),
    ]
