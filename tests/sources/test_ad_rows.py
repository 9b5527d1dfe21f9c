"""AdRows compacts its tuple rows into frame chunks as they come (a large live read would
otherwise hold every row as Python objects): the frame is the same whatever the chunk size,
and rows moved from one AdRows to another (as the live reader hands a finished read over)
keep their order."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import polars as pl
from polars.testing import assert_frame_equal

from audit.sources.ad import AdRows, map_ad_records, prepare_ad_source
from audit.sources.detect import Notes
from audit.sources.records import Record
from tests.sources.helpers import settings


def records(count: int, start: int = 0) -> Iterator[Record]:
    """People with the values that become lists, nulls, times and binary columns."""
    for i in range(start, start + count):
        attrs: dict[str, list[str | bytes]] = {
            "objectguid": [uuid.UUID(int=i + 1).bytes_le],
            "objectclass": ["top", "person", "organizationalPerson", "user"],
            "samaccountname": [f"user{i}"],
            "userprincipalname": [f"user{i}@contoso.com"],
            "useraccountcontrol": ["514" if i % 4 == 3 else "512"],
            "whencreated": ["20240102030405.0Z"],
        }
        if i % 3:
            attrs["proxyaddresses"] = [f"SMTP:u{i}@contoso.com", f"smtp:u{i}@fabrikam.com"][: i % 3]
            attrs["mail"] = [f"Zoë.{i}@contoso.com"]
        if i % 5 == 0:
            attrs["ms-ds-consistencyguid"] = [uuid.UUID(int=10_000 + i).bytes_le]
        yield Record(1, f"CN=User {i},OU=Staff,DC=corp,DC=contoso,DC=com", attrs)


def mapped(rows: AdRows, count: int, start: int = 0) -> AdRows:
    config = settings(include_ous=["OU=Staff,DC=corp,DC=contoso,DC=com"])
    reading = prepare_ad_source(config.ad[0], "corp", None)
    map_ad_records(
        records(count, start),
        reading,
        where="ldaps://dc01",
        fmt="ldap",
        notes=Notes(),
        target=rows,
        raw_text_is_bytes=False,
        position="page",
    )
    return rows


def test_the_frame_is_the_same_whatever_the_chunk_size() -> None:
    whole = mapped(AdRows(chunk_rows=1_000_000), 23).frame()
    for size in (1, 2, 5, 23, 24):
        rows = mapped(AdRows(chunk_rows=size), 23)
        assert len(rows.rows) == 23 // size + 23 % size
        assert_frame_equal(rows.frame(), whole)
    assert whole.height == 23
    assert whole["proxy_addresses"].dtype == pl.List(pl.String())


def test_rows_moved_to_another_adrows_keep_their_order() -> None:
    target = mapped(AdRows(chunk_rows=4), 6)  # a chunk and two tuples
    read = mapped(AdRows(chunk_rows=4), 9, start=6)  # two chunks and a tuple
    target.merge(read)  # what the live reader does with a finished read
    mapped(target, 5, start=15)  # the next input goes on after them
    assert [type(r).__name__ for r in target.rows] == [
        *["DataFrame", "tuple", "tuple"],  # the target's own
        *["DataFrame", "DataFrame"],  # moved in
        "DataFrame",  # the moved tuple and the next input's first two: never a frame in it
        *["tuple", "tuple", "tuple"],
    ]
    expected = mapped(AdRows(chunk_rows=1_000_000), 20).frame()
    assert_frame_equal(target.frame(), expected)
    assert len(target.seen) == 20


def test_no_rows_is_the_empty_frame() -> None:
    assert AdRows(chunk_rows=1).frame().height == 0


def test_a_dn_met_twice_names_where_it_was_first_met() -> None:
    rows = AdRows()
    rows.meet("corp", "CN=Ann,DC=corp", "ad.ldf", "line", 812)
    rows.meet("corp", "CN=Bob,DC=corp", "ldaps://dc01", "page", 3)
    rows.meet("fabrikam", "CN=Ann,DC=corp", "ldaps://dc02", "page", 1)
    assert str(rows.first_met("corp", "cn=ann,dc=CORP")) == "ad.ldf:812"
    assert str(rows.first_met("corp", "CN=BOB,DC=corp")) == (
        "ldaps://dc01 page 3, object CN=BOB,DC=corp"
    )
    assert rows.first_met("corp", "CN=Cy,DC=corp") is None
    other = AdRows()
    other.meet("corp", "CN=Cy,DC=corp", "ldaps://dc01", "page", 7)
    rows.merge(other)
    assert str(rows.first_met("corp", "CN=Cy,DC=corp")) == (
        "ldaps://dc01 page 7, object CN=Cy,DC=corp"
    )
    assert len(rows.places) == 3
