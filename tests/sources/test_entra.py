"""sources/entra.py is the one door for Graph objects: a live page's objects go through the
same mapping as a file's, and an error names the live origin."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_series_equal

from audit.config import Settings
from audit.errors import InputError, Origin
from audit.model import PROVISIONING_ERROR
from audit.sources.detect import Notes
from audit.sources.entra import CloudUsers, _lists, add_user_objects, cloud_users_frame
from audit.sources.files import import_files
from tests.sources.helpers import TAKEN_AT, cloud_user, graph_page

USERS = [
    cloud_user("u1", "anne@contoso.com", onPremisesImmutableId="1wfM9xV8fUSHbcAbDlqeOA=="),
    cloud_user("u2", "bob@contoso.com", accountEnabled=False),
]
TAKEN = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def test_a_live_page_maps_like_a_file(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    path.write_text(graph_page(USERS))
    from_file = import_files(ad=[], cloud=[path], settings=Settings(), taken_at=TAKEN_AT)
    target = CloudUsers()
    page = Origin("GET /users", page=1)
    result = add_user_objects(
        target,
        ((page, 1, dict(u), "user") for u in _lowered(USERS)),
        Notes(),
        deleted=False,
        taken_at=TAKEN,
    )
    assert result.rows == 2
    assert cloud_users_frame(target).equals(from_file.cloud_users)


def test_a_live_error_names_the_call_and_page() -> None:
    page = Origin("GET /users", page=7)
    with pytest.raises(InputError) as info:
        add_user_objects(
            CloudUsers(),
            [(page, 1, {"userprincipalname": "x@contoso.com"}, "user")],
            Notes(),
            deleted=False,
            taken_at=TAKEN,
        )
    assert str(info.value) == "GET /users page 7: user without an id"


def _lowered(users: list[dict[str, object]]) -> list[dict[str, object]]:
    # graph_pages hands entra.py objects with lower-cased property names (Graph's names are
    # matched without case)
    return [{k.lower(): v for k, v in u.items()} for u in users]


_TEXTS = st.one_of(st.none(), st.text(max_size=5))
_ERRORS = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {
            "category": _TEXTS,
            "occurred": st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))),
            "property": _TEXTS,
            "value": _TEXTS,
        }
    ),
)


@given(st.lists(st.one_of(st.none(), st.lists(_TEXTS, max_size=4)), max_size=30))
def test_text_lists_are_built_as_polars_builds_them(values: list[list[str | None] | None]) -> None:
    dtype = pl.List(pl.String())
    assert_series_equal(_lists("p", values, dtype), pl.Series("p", values, dtype=dtype))


@given(st.lists(st.one_of(st.none(), st.lists(_ERRORS, max_size=3)), max_size=30))
def test_struct_lists_are_built_as_polars_builds_them(values: list[Any]) -> None:
    dtype = pl.List(PROVISIONING_ERROR)
    assert_series_equal(_lists("e", values, dtype), pl.Series("e", values, dtype=dtype))
