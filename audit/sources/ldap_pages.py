"""The paged people search of a live AD read (issue 12 item 3): page after page of one search,
entries as :class:`Record` with raw values (binary attributes bytes, text decoded as an LDIF's
base64 text is), continuation references counted, never chased. Any failure on any page is one
:class:`InputError` naming the URL and the page: no partial read.

Kept apart from :mod:`audit.sources.ldap` (connect, TLS, bind, retries) because this loop is
where the time of a large read goes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import ldap3
from ldap3.core import exceptions as ldap_errors

from audit.errors import InputError, Origin
from audit.sources.records import Attrs, Record, Value, text_of

# The README's ldifde -r filter: users and inetOrgPersons, no contacts or computers.
PEOPLE_FILTER = "(&(objectCategory=person)(objectClass=user))"
PAGED_RESULTS = "1.2.840.113556.1.4.319"  # RFC 2696 control OID


@dataclass
class SearchTally:
    """What the paged search met besides entries: pages, continuation references."""

    pages: int = 0
    entries: int = 0
    references: list[str] = field(default_factory=list)


def search_records(
    connection: Any,
    url: str,
    base: str,
    attributes: list[str],
    binary: frozenset[str],
    page_size: int,
    tally: SearchTally,
    password: str,
) -> Iterator[Record]:
    """Every person under `base`, page by page (a record's line is its page number). Raises
    InputError on a connection lost or an error result on any page: no partial read."""
    cookie: bytes | None = None
    while True:
        page = tally.pages + 1
        origin = Origin(url, page=page)
        try:
            connection.search(
                base,
                PEOPLE_FILTER,
                ldap3.SUBTREE,
                attributes=attributes,
                paged_size=page_size,
                paged_cookie=cookie,
                dereference_aliases=ldap3.DEREF_NEVER,
            )
        except (ldap_errors.LDAPException, OSError) as exc:
            raise InputError(
                origin,
                f"connection to the DC lost while reading ({short(scrub(str(exc), password))})"
                ": nothing of this source was kept; read it again",
            ) from None
        result = connection.result or {}
        search_failure(result, base, password, origin)
        tally.pages = page
        for entry in connection.response or ():
            kind = entry.get("type")
            if kind == "searchResEntry":
                tally.entries += 1
                yield Record(page, entry["dn"], record_attrs(entry["raw_attributes"], binary))
            elif kind == "searchResRef":
                tally.references.extend(str(uri) for uri in entry.get("uri") or ())
        control = (result.get("controls") or {}).get(PAGED_RESULTS) or {}
        cookie = (control.get("value") or {}).get("cookie")
        if not cookie:
            return


def search_failure(result: Mapping[str, Any], base: str, password: str, origin: Origin) -> None:
    """Raise for a search page whose result is not success."""
    code = result.get("result")
    if code == 0:
        return
    description = str(result.get("description") or "no result: the connection was closed")
    message = short(scrub(str(result.get("message") or ""), password))
    if code == 32:  # noSuchObject
        raise InputError(
            origin,
            f"base_dn {base} does not exist on this DC (noSuchObject): check base_dn",
        )
    if code == 10:  # referral: the base is in a naming context this DC does not hold
        uris = ", ".join(str(u) for u in result.get("referrals") or ()) or "no URL given"
        raise InputError(
            origin,
            f"base_dn {base} is not held by this DC (referral to {uris}, not followed): point "
            "url at a DC of that domain or fix base_dn",
        )
    detail = f": {message}" if message else ""
    raise InputError(origin, f"search under {base} failed ({description}{detail})")


def record_attrs(raw: Mapping[str, list[bytes]], binary: frozenset[str]) -> Attrs:
    """Raw LDAP values by lower-case name (options such as ;binary dropped): binary
    attributes as bytes, every other value decoded as an LDIF's base64 text is."""
    attrs: Attrs = {}
    for name, values in raw.items():
        if not values:
            continue
        lname = name.split(";", 1)[0].lower()
        decoded: list[Value] = list(values) if lname in binary else [text_of(v) for v in values]
        if lname in attrs:
            attrs[lname].extend(decoded)
        else:
            attrs[lname] = decoded
    return attrs


def scrub(text: str, password: str) -> str:
    """The password can never be printed, whatever a library puts in its messages."""
    return text.replace(password, "<password>") if password else text


def short(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
