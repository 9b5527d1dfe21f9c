"""The raw capture of a live read (audit/sources/raw_ldif.py): what it writes reads back, through
the LDIF importer, as the same records: bytes stay bytes, any text stays the same text; the
file appears only when the read completed."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.sources.ldif import ldif_records
from audit.sources.raw_ldif import captured, ldif_entry, ldif_line, raw_capture
from audit.sources.records import BINARY_ATTRIBUTES, Record

SPELLING = {"objectguid": "objectGUID", "userprincipalname": "userPrincipalName"}


def read_back(text: str, wanted: set[str]) -> list[Record]:
    return list(ldif_records(text, Path("raw.ldif"), wanted))


def test_values_are_written_as_ldapsearch_writes_them() -> None:
    assert ldif_line("cn", "Ada Lovelace") == "cn: Ada Lovelace\n"
    assert ldif_line("cn", "Zoë") == "cn:: Wm/Dqw==\n"  # non-ASCII: base64 of its UTF-8
    assert ldif_line("cn", " lead") == "cn:: IGxlYWQ=\n"  # a leading space is not SAFE-INIT
    assert ldif_line("cn", "trail ") == "cn:: dHJhaWwg\n"
    assert ldif_line("cn", ":colon") == "cn:: OmNvbG9u\n"
    assert ldif_line("cn", "<less") == "cn:: PGxlc3M=\n"
    assert ldif_line("objectGUID", b"\x00\x01") == "objectGUID:: AAE=\n"
    assert ldif_line("objectGUID", b"abc") == "objectGUID:: YWJj\n"  # bytes always base64


def test_an_entry_spells_names_as_asked_and_reads_back_equal() -> None:
    record = Record(
        1,
        "CN=Smith\\, John,OU=Ünits,DC=corp,DC=test",
        {
            "objectguid": [bytes(range(16))],
            "userprincipalname": ["john@corp.test"],
            "proxyaddresses": ["SMTP:john@corp.test", "smtp:j@corp.test"],
        },
    )
    text = ldif_entry(record, SPELLING)
    assert text.splitlines()[1] == "objectGUID:: AAECAwQFBgcICQoLDA0ODw=="
    assert text.splitlines()[2] == "userPrincipalName: john@corp.test"
    assert text.endswith("\n\n")
    (back,) = read_back(text, {"objectguid", "userprincipalname", "proxyaddresses"})
    assert (back.dn, back.attrs) == (record.dn, record.attrs)


_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r\n"), max_size=40
)


@given(
    dn=_TEXT.filter(lambda s: s.strip() != "").map(lambda s: f"CN={s},DC=test"),
    texts=st.lists(_TEXT, min_size=1, max_size=4),
    raw=st.lists(st.binary(max_size=20), min_size=1, max_size=3),
)
def test_any_text_and_bytes_read_back_unchanged(
    dn: str, texts: list[str], raw: list[bytes]
) -> None:
    record = Record(1, dn, {"displayname": texts, "ms-ds-consistencyguid": list(raw)})
    (back,) = read_back(ldif_entry(record, {}), {"displayname", "ms-ds-consistencyguid"})
    assert back.dn == dn
    assert back.attrs == record.attrs
    assert "ms-ds-consistencyguid" in BINARY_ATTRIBUTES


def test_the_capture_exists_only_when_the_read_completed(tmp_path: Path) -> None:
    target = tmp_path / "raw" / "ad-corp.ldif"
    records = [Record(1, f"CN=u{n},DC=test", {"cn": [f"u{n}"]}) for n in range(3)]

    def failing() -> list[Record]:
        with raw_capture(target) as out:
            for n, record in enumerate(captured(records, out, {})):
                if n == 2:
                    raise ConnectionError("lost")
                del record
        return records

    with pytest.raises(ConnectionError):
        failing()
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == []
    with raw_capture(target) as out:
        assert list(captured(records, out, {})) == records
    assert [r.dn for r in read_back(target.read_text(), {"cn"})] == [r.dn for r in records]
