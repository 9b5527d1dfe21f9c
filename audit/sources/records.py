"""The record every AD reader yields, whatever it reads (an LDIF or CSV file, an LDAP page):
a DN and its attribute values by lower-case name, binary attributes as bytes."""

from __future__ import annotations

from typing import NamedTuple

Value = str | bytes
Attrs = dict[str, list[Value]]

# Attributes whose values are bytes, never text: a text decode would change them.
BINARY_ATTRIBUTES = frozenset({"objectguid", "objectsid", "ms-ds-consistencyguid"})


class Record(NamedTuple):
    line: int  # where it starts in its source: a file's line, a live source's page
    dn: str
    attrs: Attrs


def text_of(raw: bytes) -> str:
    """ldapsearch base64-encodes UTF-8 text that is not plain ASCII; ldifde may write cp1252."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")
