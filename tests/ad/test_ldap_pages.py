"""The paged search's own reading of the wire (audit/sources/ldap_pages.py) against the seeded
DC: every record is what ldap3's decoder makes of the same search (DNs, names, every value of
the non-ASCII, escaped-comma and 300-proxy users, binary values as bytes), the pages and
continuation references are the ones ldap3 counts, and the connection is left ready for the
next request (the next page is asked for before a page is decoded)."""

from __future__ import annotations

from typing import Any

import pytest

from audit.config import AdSource
from audit.sources.ad import prepare_ad_source
from audit.sources.ldap import ldap_attributes
from audit.sources.ldap_pages import PEOPLE_FILTER, SearchTally, search_records
from audit.sources.records import BINARY_ATTRIBUTES, text_of
from tests.ad.client import ldap3, ldaps
from tests.ad.samba_dc import DcInfo
from tests.ad.seed import Seeded

pytestmark = pytest.mark.ad


def by_ldap3(connection: Any, base: str, attributes: list[str], page_size: int) -> tuple[
    dict[str, dict[str, list[Any]]], int, list[str]
]:  # fmt: skip
    """DN -> values by lower-case name as ldap3 decodes them, its page count, its references."""
    entries: dict[str, dict[str, list[Any]]] = {}
    references: list[str] = []
    pages, cookie = 0, None
    while True:
        connection.search(
            base, PEOPLE_FILTER, ldap3.SUBTREE, attributes=attributes, paged_size=page_size,
            paged_cookie=cookie, dereference_aliases=ldap3.DEREF_NEVER,
        )  # fmt: skip
        assert connection.result["result"] == 0, connection.result
        pages += 1
        for entry in connection.response:
            if entry["type"] == "searchResRef":
                references.extend(entry["uri"])
                continue
            values: dict[str, list[Any]] = {}
            for name, raw in entry["raw_attributes"].items():
                lname = name.split(";", 1)[0].lower()
                if raw:
                    decoded = raw if lname in BINARY_ATTRIBUTES else [text_of(v) for v in raw]
                    values.setdefault(lname, []).extend(decoded)
            entries[entry["dn"]] = values
        control = connection.result["controls"]["1.2.840.113556.1.4.319"]["value"]
        cookie = control["cookie"]
        if not cookie:
            return entries, pages, references


def test_every_record_is_what_ldap3_decodes(ad_dc: DcInfo, ad_seeded: list[Seeded]) -> None:
    config = AdSource(name="corp", base_dn=ad_dc.base_dn)
    attributes = ldap_attributes(prepare_ad_source(config, "corp", None))
    connection = ldaps(ad_dc)
    try:
        tally = SearchTally()
        records = list(
            search_records(
                connection, ad_dc.ldaps_url, ad_dc.base_dn, attributes, BINARY_ATTRIBUTES, 7,
                tally, ad_dc.password(),
            )
        )  # fmt: skip
        expected, pages, references = by_ldap3(connection, ad_dc.base_dn, attributes, 7)
    finally:
        connection.unbind()
    assert {r.dn: r.attrs for r in records} == expected
    assert len(records) == len(expected) == tally.entries
    assert (tally.pages, tally.references) == (pages, references) and references
    assert [r.line for r in records] == sorted(r.line for r in records)
    assert {r.line for r in records} == set(range(1, pages + 1))
    assert any(len(r.attrs.get("proxyaddresses", ())) >= 300 for r in records)
    assert any(not r.dn.isascii() for r in records)
