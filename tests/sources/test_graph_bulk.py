"""Graph user pages read in bulk (entra_bulk) give what the exact path gives, and the bulk path
takes only pages it can be sure of (issue 11 item 8). tests/conftest.py already runs every
import both ways and compares; these tests check which way a file goes and feed both ways
hypothesis-made users."""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.config import Settings
from audit.errors import InputError
from audit.sources import entra, entra_bulk
from audit.sources.files import import_files
from tests.sources.bulk_equal import USED
from tests.sources.helpers import TAKEN_AT

CONTEXT = "https://graph.microsoft.com/v1.0/$metadata#users"
DELETED_CONTEXT = (
    "https://graph.microsoft.com/v1.0/$metadata#directory/deletedItems/microsoft.graph.user"
)


def user(n: int, **extra: Any) -> dict[str, Any]:
    upn = f"u{n}@contoso.com"
    found: dict[str, Any] = {
        "id": f"id-{n}",
        "userPrincipalName": upn,
        "proxyAddresses": [f"SMTP:{upn}", f"smtp:u{n}@contoso.mail.onmicrosoft.com"],
        "onPremisesImmutableId": "1wfM9xV8fUSHbcAbDlqeOA==",
        "onPremisesSyncEnabled": True,
        "accountEnabled": n % 3 != 0,
        "createdDateTime": "2020-01-09T15:31:40Z",
        "onPremisesLastSyncDateTime": "2026-11-23T05:31:12.5Z",
        "onPremisesProvisioningErrors": [],
    }
    found.update(extra)
    return found


def page_text(
    items: list[Any],
    next_link: str | None,
    context: str,
    *,
    indent: int | None,
    delta_link: str | None = None,
) -> str:
    page: dict[str, Any] = {"@odata.context": context}
    if next_link:
        page["@odata.nextLink"] = next_link
    page["value"] = items
    if delta_link is not None:  # after the values, where Graph puts it
        page["@odata.deltaLink"] = delta_link
    return json.dumps(page, indent=indent, ensure_ascii=False)


def write_chain(
    path: Path,
    items: list[Any],
    *,
    per_page: int = 2,
    pretty: bool = False,
    context: str = CONTEXT,
    delta: bool = False,
) -> Path:
    """Pages of `items`; `delta`: a /users/delta round, its last page with a deltaLink."""
    chunks = [items[i : i + per_page] for i in range(0, len(items), per_page)] or [[]]
    texts = [
        page_text(
            chunk,
            f"https://graph.microsoft.com/v1.0/users?$skiptoken={i}"
            if i < len(chunks) - 1
            else None,
            context,
            indent=1 if pretty else None,
            delta_link="https://graph.microsoft.com/v1.0/users/delta?$deltatoken=x1"
            if delta and i == len(chunks) - 1
            else None,
        )
        for i, chunk in enumerate(chunks)
    ]
    if pretty:
        assert len(texts) == 1, "one pretty-printed page per file"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    return path


def imported(cloud: list[Path], deleted: Path | None = None):  # type: ignore[no-untyped-def]
    before = USED["bulk"]
    snapshot = import_files(
        ad=[], cloud=cloud, deleted=deleted, settings=Settings(), taken_at=TAKEN_AT
    )
    return snapshot, USED["bulk"] > before


def test_canonical_pages_go_in_bulk(tmp_path: Path) -> None:
    path = write_chain(tmp_path / "users.json", [user(n) for n in range(7)])
    snapshot, bulk = imported([path])
    assert bulk
    assert snapshot.cloud_users.height == 7
    assert snapshot.sources[0].complete
    assert snapshot.cloud_users["primary_smtp"][0] == "u0@contoso.com"


def test_one_pretty_printed_page_goes_in_bulk(tmp_path: Path) -> None:
    path = write_chain(tmp_path / "users.json", [user(1), user(2)], pretty=True)
    assert imported([path])[1]


def test_a_delta_round_goes_in_bulk(tmp_path: Path) -> None:
    """A /users/delta round's last page ends with @odata.deltaLink, which is no reason for the
    exact path; neither is a removal as Graph writes it, counted and left out as there."""
    path = write_chain(tmp_path / "users.json", [user(n) for n in range(5)], delta=True)
    snapshot, bulk = imported([path])
    assert bulk
    assert snapshot.cloud_users.height == 5
    assert snapshot.sources[0].complete
    removals = [
        {"id": "id-2", "@removed": {"reason": "changed"}},
        {"@odata.type": "#microsoft.graph.user", "id": "id-3", "@removed": {"reason": "deleted"}},
    ]
    changes = write_chain(
        tmp_path / "changes.json", [user(1), removals[0], user(4), removals[1]], delta=True
    )
    snapshot, bulk = imported([changes])
    assert bulk
    assert snapshot.cloud_users["id"].to_list() == ["id-1", "id-4"]
    assert snapshot.sources[0].excluded == {"removed (delta)": 2}
    assert snapshot.sources[0].complete


@pytest.mark.parametrize(
    "removal",
    [
        {"@removed": {"reason": "changed"}, "id": "id-2"},  # @removed not last
        {"id": "id-2", "@removed": {"reason": "changed"}, "mail": "x@contoso.com"},
        {"id": "id-2", "displayName": "Bo", "@removed": {"reason": "changed"}},
        {"id": "id-2", "@removed": {"reason": "changed", "more": "x"}},
        {"id": "id-2", "@removed": {"reason": 1}},
        {"id": "id-2", "@removed": {}},
        {"id": "id-2", "@removed": None},
        {"id": "id-2", "@removed": "changed"},
        {"id": "id-2", "@Removed": {"reason": "changed"}},
    ],
)
def test_a_removal_in_another_form_takes_the_exact_path(
    tmp_path: Path, removal: dict[str, Any]
) -> None:
    """Whatever the two paths would read differently is the exact path's (and conftest has
    both read every file and compared)."""
    changes = write_chain(tmp_path / "changes.json", [user(1), removal], delta=True)
    assert not imported([changes])[1]


def test_deleted_users_go_in_bulk(tmp_path: Path) -> None:
    active = write_chain(tmp_path / "users.json", [user(1), user(2)])
    deleted = write_chain(
        tmp_path / "deleted.json",
        [user(3, deletedDateTime="2026-11-20T10:00:00Z"), user(4)],
        context=DELETED_CONTEXT,
    )
    snapshot, bulk = imported([active], deleted)
    assert bulk
    assert snapshot.cloud_users["deleted_at"].null_count() == 2
    assert any("snapshot time" in w for w in snapshot.sources[1].warnings)


CONFLICT = {
    "category": "PropertyConflict",
    "occurredDateTime": "2026-11-29T22:10:00Z",
    "propertyCausingError": "ProxyAddresses",
    "value": "smtp:u2@contoso.com",
}


@pytest.mark.parametrize(
    "errors",
    [
        None,
        [],
        [CONFLICT],  # as Graph gives one (and the emulator's generated tenant)
        [CONFLICT, {**CONFLICT, "propertyCausingError": "UserPrincipalName", "value": "u2@c.com"}],
        [None, CONFLICT, None],  # null entries are left out
        [{"category": None, "occurredDateTime": None, "propertyCausingError": None, "value": None}],
        [{"category": "", "occurredDateTime": "", "propertyCausingError": "", "value": ""}],
        [{"value": "x"}, {"category": "PropertyConflict"}],  # missing properties are null
        [{**CONFLICT, "occurredDateTime": "2026-11-29T22:10:00.1234Z"}],
        [{**CONFLICT, "value": 'a "quoted" [value], {with} brackets: ü 😀'}],
    ],
)
def test_provisioning_errors_go_in_bulk(tmp_path: Path, errors: list[Any] | None) -> None:
    """Real tenants carry some: a list of them no longer sends the export the exact way (the
    conftest compares both ways)."""
    path = write_chain(
        tmp_path / "users.json",
        [user(1), user(2, onPremisesProvisioningErrors=errors), user(3)],
    )
    snapshot, bulk = imported([path])
    assert bulk
    found = snapshot.cloud_users.filter(id="id-2")["provisioning_errors"].to_list()[0]
    assert len(found) == len([e for e in errors or [] if e is not None])
    if errors and errors[0] == CONFLICT:
        assert found[0]["property"] == "ProxyAddresses"
        assert found[0]["occurred"] == datetime(2026, 11, 29, 22, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    "change",
    [
        {"UserPrincipalName": "x@contoso.com"},  # PowerShell's casing: matched without case
        {"mail": 5},  # a number where Graph gives a string
        {"accountEnabled": "true"},
        {"proxyAddresses": ["SMTP:a@contoso.com", 7]},
        {"proxyAddresses": "SMTP:a@contoso.com"},
        {"onPremisesProvisioningErrors": [{"category": 5, "value": "x"}]},  # json: "5"
        {"onPremisesProvisioningErrors": [{**CONFLICT, "value": True}]},  # "True", Polars "true"
        {"onPremisesProvisioningErrors": [{"Category": "PropertyConflict"}]},
        {"onPremisesProvisioningErrors": [{**CONFLICT, "extra": "x"}]},
        {"onPremisesProvisioningErrors": [{**CONFLICT, "value": ["x"]}]},
        {"onPremisesProvisioningErrors": [{**CONFLICT, "value": {"nested": 1}}]},
        {"onPremisesProvisioningErrors": [{}]},
        {"onPremisesProvisioningErrors": [CONFLICT, "PropertyConflict", 7, []]},
        {
            "onPremisesProvisioningErrors": [
                {**CONFLICT, "occurredDateTime": "2026-02-30T00:00:00Z"}
            ]
        },
        {"onPremisesProvisioningErrors": [{**CONFLICT, "occurredDateTime": "11/29/2026 22:10"}]},
        {"onPremisesProvisioningErrors": "PropertyConflict"},
        {"onPremisesProvisioningErrors": CONFLICT},
        {"createdDateTime": "2020-02-30T00:00:00Z"},
        {"createdDateTime": "11/23/2026 05:31:12"},
        {"@odata.type": "#microsoft.graph.group"},
        {"@removed": {"reason": "deleted"}},
        {"id": ""},
        {"extra": {"nested": 1}},
    ],
)
def test_what_is_in_doubt_goes_the_exact_way(tmp_path: Path, change: dict[str, Any]) -> None:
    path = write_chain(tmp_path / "users.json", [user(1), user(2, **change), user(3)])
    try:
        _snapshot, bulk = imported([path])
    except InputError:
        return  # both ways raised the same error (conftest compared them)
    assert not bulk


@pytest.mark.parametrize(
    "text",
    [
        '{"value":[{"id":"a","mail":"x@c.com","mail":"y@c.com"}]}',  # json keeps the last
        '{"value":[{"id":"a","onPremisesProvisioningErrors":[{"value":"x","value":"y"}]}]}',
        '{"value":[{"id":"a","onPremisesProvisioningErrors":[[{"value":"x"}]]}]}',
        '{"onPremisesProvisioningErrors":[{"value":"x"}],"value":[{"id":"a"}]}',
        '{"value":[{"id":"a","\\u006dail":"x@c.com"}]}',  # an escaped key
        '{"value":[{"id":"a","mail":"\\ud800"}]}',  # a lone surrogate
        '{"value":[{"id":"a"}],"proxyAddresses":[]}',  # a user property on the envelope
        '{"mail":"m@c.com","value":[{"id":"a"}]}',
        '{"@odata.count":1,"value":[{"id":"a"}]}',
        '{"value":[{"id":"a"}],"@odata.nextLink":"n","@odata.nextLink":"m"}',
        '{"value":[{"id":"a"}],"@odata.deltaLink":"n","@odata.deltaLink":"m"}',
        '{"value":[{"id":"a"}],"@odata.deltalink":"n"}',
    ],
)
def test_json_polars_reads_differently_goes_the_exact_way(tmp_path: Path, text: str) -> None:
    path = tmp_path / "users.json"
    path.write_text(text + "\n", encoding="utf-8")
    assert entra_bulk.read_bulk_files([path]) is None
    if "ud800" in text:  # not a character: one line naming the file, not a traceback
        with pytest.raises(InputError, match=r"users.json:1: a lone UTF-16 surrogate"):
            imported([path])
    else:
        imported([path])  # and both ways agree


def test_every_property_the_exact_path_reads_has_its_graph_spelling() -> None:
    exact = {prop for _, prop in entra._TEXT_PROPERTIES + entra._BOOL_PROPERTIES}
    exact |= {prop for _, prop in entra._TIME_PROPERTIES} | {"id", "proxyaddresses"}
    bulk = {name.lower() for name in (*entra_bulk.TEXT, *entra_bulk.BOOL, *entra_bulk.TIME)}
    assert exact == bulk | {entra_bulk.PROXIES.lower()}


def graph_time(moment: datetime) -> str:
    """As Graph writes it; some with a fraction of 1 to 6 digits."""
    text = f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}"
    digits = moment.microsecond % 7
    return text + (f".{moment.microsecond:06d}"[: digits + 1] if digits else "") + "Z"


_TEXTS = st.one_of(
    st.none(),
    st.just(""),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12),
)
_ERROR = st.fixed_dictionaries(
    {},
    optional={
        "category": st.one_of(_TEXTS, st.sampled_from(["PropertyConflict", "UnknownError"])),
        "occurredDateTime": st.one_of(st.none(), st.just(""), st.datetimes().map(graph_time)),
        "propertyCausingError": _TEXTS,
        "value": _TEXTS,
    },
)
_ODD_ERROR = st.one_of(
    st.integers(),
    st.booleans(),
    _TEXTS,
    st.just({}),
    st.just([]),
    st.dictionaries(
        st.sampled_from(["category", "Category", "value", "extra"]),
        st.one_of(st.integers(), st.booleans(), _TEXTS, st.just(["x"])),
        min_size=1,
        max_size=2,
    ),
    st.fixed_dictionaries(
        {
            "occurredDateTime": st.sampled_from(
                ["2026-02-30T00:00:00Z", "2026-11-29", "2026-11-29T22:10:00+01:00", "yesterday"]
            )
        }
    ),
)
_VALUES: dict[str, st.SearchStrategy[Any]] = {
    **{name: _TEXTS for name in entra_bulk.TEXT if name != "id"},
    **{name: st.one_of(st.none(), st.booleans()) for name in entra_bulk.BOOL},
    **{
        name: st.one_of(
            st.none(),
            st.just(""),
            st.datetimes().map(graph_time),
        )
        for name in entra_bulk.TIME
    },
    "proxyAddresses": st.one_of(
        st.none(),
        st.lists(
            st.one_of(st.none(), _TEXTS, st.sampled_from(["SMTP:a@c.com", "smtp:b@c.com"])),
            max_size=3,
        ),
    ),
    "onPremisesProvisioningErrors": st.one_of(
        st.none(), st.just([]), st.lists(st.one_of(st.none(), _ERROR), max_size=4)
    ),
    "@odata.type": st.sampled_from([None, "", "#microsoft.graph.user", "#Microsoft.Graph.User"]),
}
_ODD: dict[str, st.SearchStrategy[Any]] = {
    "mail": st.one_of(
        st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.booleans()
    ),
    "accountEnabled": st.sampled_from(["true", "False", 1]),
    "USERPRINCIPALNAME": _TEXTS,
    "category": _TEXTS,  # an error's property on a user: not an error, both ways ignore it
    "onPremisesProvisioningErrors": st.one_of(
        _TEXTS,
        _ERROR,
        st.lists(st.one_of(st.none(), _ERROR, _ODD_ERROR), min_size=1, max_size=4),
    ),
    "@odata.type": st.just("#microsoft.graph.group"),
    "createdDateTime": st.sampled_from(
        [
            "2026-13-01T00:00:00Z",
            "2026-11-23T05:31:60Z",
            "0000-01-01T00:00:00Z",
            "2026-11-23T05:31:12.1234567Z",
            "2026-11-23",
        ]
    ),
}


# A user removed in a delta round: Graph's forms, and others the exact path reads its own way.
_REMOVALS: list[Callable[[str], dict[str, Any]]] = [
    lambda i: {"id": i, "@removed": {"reason": "changed"}},
    lambda i: {"@odata.type": "#microsoft.graph.user", "id": i, "@removed": {"reason": "deleted"}},
    lambda i: {"id": i, "@removed": {"reason": "changed"}, "mail": "m@c.com"},
    lambda i: {"@removed": {"reason": "changed"}, "id": i},
    lambda i: {"id": i, "@removed": None},
    lambda i: {"id": i, "@removed": {"reason": "changed", "why": None}},
]


@st.composite
def users(draw: st.DrawFn, prefix: str) -> list[dict[str, Any]]:
    count = draw(st.integers(0, 6))
    found = []
    for n in range(count):
        repeat = draw(st.integers(0, 9)) == 0  # an id given twice, in this list or the other
        obj: dict[str, Any] = {"id": f"id-{draw(st.integers(0, 3))}" if repeat else f"{prefix}{n}"}
        if draw(st.integers(0, 5)) == 0:
            found.append(draw(st.sampled_from(_REMOVALS))(obj["id"]))
            continue
        for name in draw(st.lists(st.sampled_from(sorted(_VALUES)), unique=True)):
            obj[name] = draw(_VALUES[name])
        if draw(st.integers(0, 9)) == 0:
            name = draw(st.sampled_from(sorted(_ODD)))
            obj[name] = draw(_ODD[name])
        found.append(obj)
    return found


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    active=users("a"),
    gone=users("d"),
    per_page=st.integers(1, 4),
    pretty=st.booleans(),
    delta=st.booleans(),
)
def test_hypothesis_users_read_the_same_both_ways(
    active: list[dict[str, Any]],
    gone: list[dict[str, Any]],
    per_page: int,
    pretty: bool,
    delta: bool,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cloud = write_chain(
            Path(tmp) / "users.json",
            active,
            per_page=len(active) or 1 if pretty else per_page,
            pretty=pretty,
            delta=delta,
        )
        deleted = write_chain(
            Path(tmp) / "deleted.json", gone, per_page=per_page, context=DELETED_CONTEXT
        )
        with contextlib.suppress(InputError):
            imported([cloud], deleted)  # conftest: both ways, compared
