"""Graph pages as people save them: one file per page (Graph Explorer shows one page at a
time), a JSON array of pages, pages of several queries side by side. Pages of one query are ONE
export, complete when they form a chain; anything else is incomplete, and says why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.classify import classify
from audit.config import Settings
from audit.errors import InputError
from audit.model import SourceReport
from audit.sources.files import import_files
from tests.sources.helpers import TAKEN_AT, cloud_user, graph_page, guid_b64, ldif_file, person

USERS = "https://graph.microsoft.com/v1.0/$metadata#users(id,userPrincipalName,proxyAddresses)"
GROUPS = "https://graph.microsoft.com/v1.0/$metadata#groups(id,mail,proxyAddresses)"
DELETED = "https://graph.microsoft.com/v1.0/$metadata#directory/deletedItems/microsoft.graph.user"


def link(n: int) -> str:
    return f"https://graph.microsoft.com/v1.0/users?$top=2&$skiptoken=RFNwdAIAAQ{n:04d}"


def save(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def paged(tmp_path: Path, pages: list[tuple[list[str], str | None]]) -> list[Path]:
    """One file per page, as Graph Explorer's users save them: users-0.json, users-1.json..."""
    return [
        save(
            tmp_path / f"users-{i}.json",
            graph_page([cloud_user(u, f"{u}@contoso.com") for u in ids], next_link, USERS),
        )
        for i, (ids, next_link) in enumerate(pages)
    ]


def cloud_reports(paths: list[Path], **kw: object) -> list[SourceReport]:
    snap = import_files(ad=[], cloud=paths, settings=Settings(), taken_at=TAKEN_AT, **kw)  # type: ignore[arg-type]
    return [s for s in snap.sources if s.kind in ("cloud", "deleted")]


def test_pages_saved_one_per_file_are_one_complete_export(tmp_path: Path) -> None:
    files = paged(tmp_path, [(["u1", "u2"], link(1)), (["u3", "u4"], link(2)), (["u5"], None)])
    # the order on the command line does not matter: nextLinks are opaque
    [report] = cloud_reports([files[2], files[0], files[1]])
    assert report.complete is True
    assert report.rows == 5
    assert report.name == "users-2.json, users-0.json, users-1.json"
    assert report.notes == (
        "3 pages from 3 files read as one export of users: 2 with @odata.nextLink, "
        "1 without; 5 objects, no id on two pages",
    )


def test_a_missing_last_page_makes_the_export_incomplete(tmp_path: Path) -> None:
    files = paged(tmp_path, [(["u1", "u2"], link(1)), (["u3", "u4"], link(2)), (["u5"], None)])
    [report] = cloud_reports(files[:2])
    assert report.complete is False
    assert report.incomplete_reason == (
        "every page has an @odata.nextLink: the export stopped before the end (save the page "
        "that nextLink returns too, up to one without it)"
    )


def test_a_page_saved_twice_is_not_a_chain(tmp_path: Path) -> None:
    files = paged(tmp_path, [(["u1", "u2"], link(1)), (["u1", "u2"], link(1)), (["u5"], None)])
    [report] = cloud_reports(files)
    assert report.complete is False
    assert (
        report.incomplete_reason
        == "users-0.json:1 and users-1.json:1 are the same page saved twice"
    )


def test_an_id_on_two_pages_is_not_a_chain(tmp_path: Path) -> None:
    files = paged(tmp_path, [(["u1", "u2"], link(1)), (["u2", "u3"], link(2)), (["u5"], None)])
    [report] = cloud_reports(files)
    assert report.complete is False
    assert report.incomplete_reason == (
        "id u2 is on two pages (users-0.json:1 and users-1.json:1): a page saved twice, or "
        "pages of two exports"
    )


def test_two_last_pages_are_two_exports_of_one_query(tmp_path: Path) -> None:
    files = paged(tmp_path, [(["u1"], None), (["u2"], None)])
    [report] = cloud_reports(files)
    assert report.complete is False
    assert report.incomplete_reason == (
        "2 pages without @odata.nextLink (users-0.json:1, users-1.json:1): pages of more than "
        "one export of the same query"
    )


def test_a_json_array_of_pages_is_one_export(tmp_path: Path) -> None:
    pages = [
        json.loads(graph_page([cloud_user("u1", "u1@contoso.com")], link(1), USERS)),
        json.loads(graph_page([cloud_user("u2", "u2@contoso.com")], None, USERS)),
    ]
    path = save(tmp_path / "all-pages.json", json.dumps(pages))
    [report] = cloud_reports([path])
    assert (report.complete, report.rows) == (True, 2)
    assert report.notes == (
        "2 pages from all-pages.json read as one export of users: 1 with @odata.nextLink, "
        "1 without; 2 objects, no id on two pages",
    )


@pytest.mark.parametrize(("count", "complete"), [(3, True), (4, False)])
def test_odata_count_is_checked_when_the_export_asked_for_it(
    tmp_path: Path, count: int, complete: bool
) -> None:
    first = json.loads(graph_page([cloud_user("u1", "u1@contoso.com")], link(1), USERS))
    first["@odata.count"] = count
    files = [
        save(tmp_path / "users-0.json", json.dumps(first)),
        save(
            tmp_path / "users-1.json",
            graph_page([cloud_user(u, f"{u}@contoso.com") for u in ("u2", "u3")], None, USERS),
        ),
    ]
    [report] = cloud_reports(files)
    assert report.complete is complete
    if complete:
        assert report.notes[0].endswith("3 objects, no id on two pages, as @odata.count says")
    else:
        assert report.incomplete_reason == "@odata.count says 4 objects, the pages hold 3"


def test_pages_of_different_queries_are_separate_exports(tmp_path: Path) -> None:
    users = paged(tmp_path, [(["u1"], link(1)), (["u2"], None)])
    group = {
        "@odata.type": "#microsoft.graph.group",
        "id": "g1",
        "mail": "team@contoso.com",
        "proxyAddresses": ["SMTP:team@contoso.com"],
    }
    groups = save(tmp_path / "groups.json", graph_page([group], None, GROUPS))
    reports = cloud_reports([*users, groups])
    assert [(r.name, r.complete, r.rows) for r in reports] == [
        ("users-0.json, users-1.json", True, 2),
        ("groups.json", True, 0),  # groups are kept as cloud objects, not users
    ]


def test_a_deleted_items_export_given_to_cloud_is_refused(tmp_path: Path) -> None:
    path = save(
        tmp_path / "deleted.json",
        graph_page(
            [cloud_user("d1", "d1@contoso.com", deletedDateTime="2026-11-20T08:00:00Z")],
            None,
            DELETED,
        ),
    )
    with pytest.raises(
        InputError, match=r"deleted\.json:1: this is not a users response .*--deleted"
    ):
        cloud_reports([path])


def test_active_users_given_to_deleted_are_refused(tmp_path: Path) -> None:
    users = paged(tmp_path, [(["u1"], None)])
    with pytest.raises(InputError, match=r"users-0\.json:1: this is GET /users .*--cloud"):
        cloud_reports([], deleted=users[0])


def test_the_classic_case_is_found_when_pages_are_separate_files(tmp_path: Path) -> None:
    """The AD user Megan's anchor is held by her soft-deleted old account, while a cloud-only
    account with her UPN waits on the second page: anchor-held-by-deleted, not hidden because
    the cloud side was split over two files."""
    megan_guid = "59815f49-920b-4e9d-ad6c-82b53aa4c102"
    ad = ldif_file(tmp_path / "ad.ldf", [person("Megan", megan_guid)])
    page1 = save(
        tmp_path / "users-0.json",
        graph_page([cloud_user("admin", "admin@contoso.onmicrosoft.com")], link(1), USERS),
    )
    page2 = save(
        tmp_path / "users-1.json",
        graph_page([cloud_user("new-megan", "megan@contoso.com")], None, USERS),
    )
    deleted = save(
        tmp_path / "deleted.json",
        graph_page(
            [
                cloud_user(
                    "old-megan",
                    "megan@contoso.com",
                    onPremisesImmutableId=guid_b64(megan_guid),
                    deletedDateTime="2026-11-11T08:00:00Z",
                )
            ],
            None,
            DELETED,
        ),
    )
    snap = import_files(
        ad=[(None, ad)],
        cloud=[page1, page2],
        deleted=deleted,
        settings=Settings(),
        taken_at=TAKEN_AT,
    )
    found = classify(snap, Settings())
    matching = found.filter(found["family"].is_in(["anchor", "matching"]))
    assert set(matching.select("code", "ad_dn", "cloud_id").iter_rows()) == {
        ("anchor-held-by-deleted", "CN=Megan,OU=Staff,DC=corp,DC=contoso,DC=com", "old-megan")
    }
    assert "cloud-only user megan@contoso.com (id new-megan) waits" in matching["detail"][0]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("\\ud83d\\ude00", "\U0001f600"),  # a pair: the emoji
        ("\\\\ud800", "\\ud800"),  # an escaped backslash, then text
        ("\\uD83D\\uDE00x", "\U0001f600x"),
    ],
)
def test_surrogate_pairs_and_escaped_backslashes_are_text(
    tmp_path: Path, value: str, expected: str
) -> None:
    path = tmp_path / "users.json"
    path.write_text(
        '{"value":[{"id":"u1","userPrincipalName":"a@contoso.com","displayName":"' + value + '"}]}',
        encoding="utf-8",
    )
    snapshot = import_files(ad=[], cloud=[path], settings=Settings(), taken_at=TAKEN_AT)
    assert snapshot.cloud_users["display_name"].to_list() == [expected]


@pytest.mark.parametrize("value", ["\\ud800", "x\\udc00", "\\ud83d\\ud83d", "\\\\\\ud800"])
def test_a_lone_surrogate_is_one_line_naming_the_file_and_line(tmp_path: Path, value: str) -> None:
    path = tmp_path / "users.json"
    path.write_text(
        '{"value":[\n{"id":"u1","userPrincipalName":"a@contoso.com"},\n'
        '{"id":"u2","displayName":"' + value + '"}]}',
        encoding="utf-8",
    )
    with pytest.raises(InputError, match=r"users.json:3: a lone UTF-16 surrogate \(\\ud"):
        import_files(ad=[], cloud=[path], settings=Settings(), taken_at=TAKEN_AT)
