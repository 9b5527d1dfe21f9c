"""The paged people search of a live AD read (issue 12 item 3): page after page of one search,
entries as :class:`Record` with raw values (binary attributes bytes, text decoded as an LDIF's
base64 text is), continuation references counted, never chased. Any failure on any page is one
:class:`InputError` naming the URL and the page: no partial read.

Kept apart from :mod:`audit.sources.ldap` (connect, TLS, bind, retries) because this loop is
where the time of a large read goes. ldap3 still connects, binds and encodes each request, but
the answers are read here off the connection's socket (RFC 4511 BER, definite lengths): ldap3
decodes every entry twice, raw and formatted, in a generic decoder, which was most of a large
read's time (benchmarks/RESULTS.md), and reading here lets page N+1 be asked for before page N
is decoded.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import ldap3
from ldap3.core import exceptions as ldap_errors
from ldap3.core.results import RESULT_CODES
from ldap3.operation.search import search_operation
from ldap3.protocol.rfc2696 import paged_search_control
from ldap3.utils.dn import safe_dn

from audit.errors import InputError, Origin, short
from audit.sources.records import Attrs, Record, Value, text_of
from audit.sources.secrets import scrub

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
    InputError on a connection lost or an error result on any page: no partial read.

    Page N+1 is asked for as soon as page N's last message is in, before page N is decoded,
    so the DC builds the next page while this process decodes the last one."""
    wire = Wire(connection)
    names: dict[bytes, tuple[str, bool]] = {}
    cookie = b""
    origin = Origin(url, page=tally.pages + 1)
    with lost_connection(connection, origin, password):
        message_id = send_search(connection, base, attributes, page_size, cookie)
    while True:
        page = tally.pages + 1
        origin = Origin(url, page=page)
        with lost_connection(connection, origin, password):
            data, messages = wire.page(message_id)
            result, cookie = search_done(data, messages[-1])
        connection.result = result  # as ldap3 leaves it: callers judge a failure by it
        search_failure(result, base, password, origin)
        tally.pages = page
        if cookie:
            with lost_connection(connection, Origin(url, page=page + 1), password):
                message_id = send_search(connection, base, attributes, page_size, cookie)
        for number, (tag, start, stop) in enumerate(messages[:-1], 1):
            if number % DRAIN_EVERY == 0:
                wire.drain()
            if tag == ENTRY:
                tally.entries += 1
                try:
                    dn, attrs = entry_of(data, start, stop, binary, names)
                except (IndexError, ValueError):
                    raise InputError(origin, "the DC sent an entry that is not LDAP") from None
                yield Record(page, dn, attrs)
            elif tag == REFERENCE:
                tally.references.extend(references_of(data, start, stop))
        if not cookie:
            return


@contextmanager
def lost_connection(connection: Any, origin: Origin, password: str) -> Iterator[None]:
    """A socket or TLS error, a closed connection, a timeout: one line naming the page, and
    the connection closed (`connection.closed`), as ldap3 leaves it when it loses one."""
    try:
        yield
    except (ldap_errors.LDAPException, OSError, Closed, IndexError, ValueError) as exc:
        with suppress(ldap_errors.LDAPException, OSError):
            connection.strategy.close()
        raise InputError(
            origin,
            f"connection to the DC lost while reading ({short(scrub_password(str(exc), password))})"
            ": nothing of this source was kept; read it again",
        ) from None


def send_search(
    connection: Any, base: str, attributes: list[str], page_size: int, cookie: bytes
) -> int:
    """Send one page's search request through ldap3 (its encoder, its socket); the answer is
    read by Wire, not by ldap3, which would also build a formatted copy of every value."""
    if connection.check_names and base:
        base = safe_dn(base)
    request = search_operation(
        base, PEOPLE_FILTER, ldap3.SUBTREE, ldap3.DEREF_NEVER, attributes, 0, 0, False,
        connection.auto_escape, connection.auto_encode, None, None, connection.check_names,
    )  # fmt: skip
    control = paged_search_control(False, page_size, cookie)
    with connection.connection_lock:
        message_id: int = connection.strategy.send("searchRequest", request, [control])
        # ldap3 keeps every sent request until its get_response, which is never called here
        connection.strategy._outstanding.pop(message_id, None)
    return message_id


def search_failure(result: Mapping[str, Any], base: str, password: str, origin: Origin) -> None:
    """Raise for a search page whose result is not success."""
    code = result.get("result")
    if code == 0:
        return
    description = str(result.get("description") or "no result: the connection was closed")
    message = short(scrub_password(str(result.get("message") or ""), password))
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


# LDAPMessage protocolOp tags (RFC 4511 section 4.2: [APPLICATION n], constructed)
ENTRY, DONE, REFERENCE, INTERMEDIATE = 0x64, 0x65, 0x73, 0x79
NOTICE_ID = 0  # unsolicited notifications (notice of disconnection) come as message 0
RECEIVE_SIZE = 1 << 18
DRAIN_EVERY = 100  # entries decoded between two looks at the socket


class Closed(Exception):
    """The DC closed the connection, or sent what is not LDAP."""


class Wire:
    """The connection's bytes cut into LDAP messages (BER definite lengths, RFC 4511 5.1)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.buffer = bytearray()

    def page(self, message_id: int) -> tuple[bytes, list[tuple[int, int, int]]]:
        """The bytes up to the end of the search's result message, and (protocolOp tag, start,
        end) of each of its messages there, the result last."""
        messages: list[tuple[int, int, int]] = []
        buffer = self.buffer
        at = 0
        while True:
            framed = frame(buffer, at)
            if framed is None:
                socket = self.connection.socket
                if socket is None:
                    raise Closed("the connection is closed")
                chunk = socket.recv(RECEIVE_SIZE)
                if not chunk:
                    raise Closed("the DC closed the connection")
                buffer += chunk
                continue
            found_id, tag, start, stop, at = framed
            if found_id == NOTICE_ID:
                raise Closed(
                    f"the DC ended the session ({notice_text(bytes(buffer), start, stop)})"
                )
            if found_id != message_id:
                continue
            messages.append((tag, start, stop))
            if tag not in (ENTRY, REFERENCE, INTERMEDIATE):
                data = bytes(buffer[:at])
                del buffer[:at]
                return data, messages

    def drain(self) -> None:
        """Take in what the DC has sent so far, without waiting: while a page is decoded the
        DC goes on sending the next one instead of stalling on full socket buffers. A closed
        connection or an error is left for page() to meet."""
        socket = self.connection.socket
        if socket is None:
            return
        timeout = socket.gettimeout()
        socket.settimeout(0.0)
        try:
            while chunk := socket.recv(RECEIVE_SIZE):
                self.buffer += chunk
        except OSError:  # nothing more yet (SSLWantReadError, BlockingIOError), or broken
            pass
        finally:
            socket.settimeout(timeout)


def length_at(data: bytes | bytearray, at: int) -> tuple[int, int]:
    """A BER length at `at`: (length, offset of the value)."""
    size = data[at]
    if size < 0x80:
        return size, at + 1
    count = size & 0x7F
    return int.from_bytes(data[at + 1 : at + 1 + count], "big"), at + 1 + count


def frame(buffer: bytearray, at: int) -> tuple[int, int, int, int, int] | None:
    """The message at `at` if all of it is in: (message id, protocolOp tag, start and end of
    the protocolOp's value, end of the message); None while bytes are missing."""
    have = len(buffer)
    if have - at < 2 or (buffer[at + 1] >= 0x80 and have - at < 2 + (buffer[at + 1] & 0x7F)):
        return None
    if buffer[at] != 0x30:
        raise Closed(f"not an LDAP message (tag 0x{buffer[at]:02x})")
    size, start = length_at(buffer, at + 1)
    end = start + size
    if end > have:
        return None
    id_size, id_start = length_at(buffer, start + 1)  # messageID INTEGER
    message_id = int.from_bytes(buffer[id_start : id_start + id_size], "big", signed=True)
    op = id_start + id_size
    op_size, op_start = length_at(buffer, op + 1)
    return message_id, buffer[op], op_start, op_start + op_size, end


def text_at(data: bytes, start: int, stop: int) -> str:
    """A DN, a name, a URL or a message as ldap3 decodes them: UTF-8, else Latin-1."""
    raw = data[start:stop]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def entry_of(
    data: bytes,
    start: int,
    stop: int,
    binary: frozenset[str],
    names: dict[bytes, tuple[str, bool]],
) -> tuple[str, Attrs]:
    """A SearchResultEntry's DN and its values by lower-case name (options such as ;binary
    dropped): binary attributes as bytes, every other value decoded as an LDIF's base64 text
    is. `names` caches each attribute description's name and whether it is binary."""
    size, at = length_at(data, start + 1)  # objectName
    dn = text_at(data, at, at + size)
    size, at = length_at(data, at + size + 1)  # attributes SEQUENCE
    attrs: Attrs = {}
    # The short form of a length (one byte under 0x80) is read inline: it is almost every
    # length here, and this loop is most of a large read's time.
    while at < stop:
        size = data[at + 1]  # PartialAttribute SEQUENCE
        size, at = (size, at + 2) if size < 0x80 else length_at(data, at + 1)
        after = at + size
        size = data[at + 1]  # type
        size, at = (size, at + 2) if size < 0x80 else length_at(data, at + 1)
        description = data[at : at + size]
        known = names.get(description)
        if known is None:
            name = text_at(data, at, at + size).split(";", 1)[0].lower()
            known = names[description] = (name, name in binary)
        name, is_binary = known
        size, at = length_at(data, at + size + 1)  # vals SET OF
        values: list[Value] = []
        while at < after:
            size = data[at + 1]
            size, at = (size, at + 2) if size < 0x80 else length_at(data, at + 1)
            raw = data[at : at + size]
            at += size
            if is_binary:
                values.append(raw)
            else:
                try:
                    values.append(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    values.append(text_of(raw))
        at = after
        if not values:
            continue
        if name in attrs:
            attrs[name].extend(values)
        else:
            attrs[name] = values
    return dn, attrs


def references_of(data: bytes, start: int, stop: int) -> list[str]:
    """The URIs of a SearchResultReference (never followed)."""
    uris = []
    at = start
    while at < stop:
        size, at = length_at(data, at + 1)
        if size:
            uris.append(text_at(data, at, at + size))
        at += size
    return uris


def search_done(data: bytes, message: tuple[int, int, int]) -> tuple[dict[str, Any], bytes]:
    """The search's result (as ldap3 gives it: result, description, message, referrals) and
    the paged-results cookie (empty: last page)."""
    tag, start, stop = message
    if tag != DONE:
        raise Closed(f"unexpected LDAP response 0x{tag:02x} to a search")
    size, at = length_at(data, start + 1)  # resultCode ENUMERATED
    code = int.from_bytes(data[at : at + size], "big", signed=True)
    size, at = length_at(data, at + size + 1)  # matchedDN
    size, at = length_at(data, at + size + 1)  # diagnosticMessage
    result: dict[str, Any] = {
        "result": code,
        "description": RESULT_CODES.get(code, f"result {code}"),
        "message": text_at(data, at, at + size),
        "referrals": None,
    }
    at += size
    if at < stop and data[at] == 0xA3:  # referral [3]
        size, at = length_at(data, at + 1)
        result["referrals"] = references_of(data, at, at + size) or None
    return result, paged_cookie(data, stop)


def paged_cookie(data: bytes, at: int) -> bytes:
    """The cookie of the paged-results control (RFC 2696) in controls [0] at `at`, if any."""
    if at >= len(data) or data[at] != 0xA0:
        return b""
    size, at = length_at(data, at + 1)
    end = at + size
    while at < end:
        size, at = length_at(data, at + 1)  # Control SEQUENCE
        after = at + size
        size, at = length_at(data, at + 1)  # controlType
        oid = data[at : at + size]
        at += size
        if oid == PAGED_RESULTS.encode("ascii"):
            if data[at] == 0x01:  # criticality
                size, at = length_at(data, at + 1)
                at += size
            size, at = length_at(data, at + 1)  # controlValue OCTET STRING
            size, at = length_at(data, at + 1)  # realSearchControlValue SEQUENCE
            size, at = length_at(data, at + 1)  # size INTEGER
            size, at = length_at(data, at + size + 1)  # cookie
            return data[at : at + size]
        at = after
    return b""


def notice_text(data: bytes, start: int, stop: int) -> str:
    """The diagnostic message of a notice of disconnection (an ExtendedResponse)."""
    try:
        result, _ = search_done(data, (DONE, start, stop))
    except (Closed, IndexError):
        return "notice of disconnection"
    return str(result["message"] or result["description"])


def scrub_password(text: str, password: str) -> str:
    """The bind password can never be printed, whatever ldap3 or ssl put in their messages."""
    return scrub(text, password, "<password>")
