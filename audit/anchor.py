"""Every conversion between the forms a source anchor takes.

An AD objectGUID is 16 bytes in .NET ``Guid.ToByteArray()`` order (Python ``UUID.bytes_le``).
Entra's ``onPremisesImmutableId`` is the standard base64 of those raw bytes; ADSI Edit shows the
bytes as hex, LDAP filters escape each byte as ``\\XX``, and Entra Connect's error exports name an
object by the connector DN ``CN={<hex of the ASCII of the base64>}`` (FACTS.md section 1).
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from dataclasses import asdict, dataclass
from enum import StrEnum

import polars as pl

from audit.errors import AnchorError

# A GUID's text form (registry-style braces are added where they are accepted).
GUID_PATTERN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# Anchor attributes whose values are GUID bytes (lower case); any other (employeeID,
# msDS-SourceAnchor...) holds text.
GUID_ANCHOR_ATTRIBUTES = frozenset({"objectguid", "ms-ds-consistencyguid"})
_GUID_RE = re.compile(rf"^\{{?({GUID_PATTERN})\}}?$")
_HEX_RE = re.compile(r"^(?:0x)?([0-9a-fA-F]{32})$")
_LDAP_ESCAPE_RE = re.compile(r"^(?:\\[0-9a-fA-F]{2}){16}$")
_CONNECTOR_DN_RE = re.compile(r"^CN=\{([0-9a-fA-F]+)\}(?:,.*)?$", re.IGNORECASE)
# The canonical ImmutableId: standard base64 of 16 bytes.
CANONICAL_B64_PATTERN = r"[A-Za-z0-9+/]{22}=="
_STANDARD_B64_RE = re.compile(f"^{CANONICAL_B64_PATTERN}$")
_B64_ANY_RE = re.compile(r"^[A-Za-z0-9+/\-_]+={0,2}$")


class Encoding(StrEnum):
    """How a stored immutableId relates to the GUID it was made from."""

    correct = "correct"  # base64 of bytes_le: what Entra Connect writes
    big_endian = "big-endian"  # base64 of uuid.bytes (RFC byte order)
    guid_text_base64 = "guid-text-base64"  # base64 of the GUID's text (AADInternals' scheme)
    url_safe = "url-safe"  # base64url alphabet (-_) of the right bytes
    unpadded = "unpadded"  # right bytes, '=' padding stripped
    guid_text = "guid-text"  # the GUID string itself pasted as immutableId
    hex = "hex"  # the hex of the right bytes pasted as immutableId


@dataclass(frozen=True)
class AnchorForms:
    guid: str
    immutable_id: str
    hex: str
    ldap_filter: str
    connector_dn: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def immutable_id_from_guid(guid: str | uuid.UUID) -> str:
    value = guid if isinstance(guid, uuid.UUID) else uuid.UUID(guid)
    return base64.b64encode(value.bytes_le).decode("ascii")


def guid_from_immutable_id(immutable_id: str) -> str:
    raw = _strict_b64decode(immutable_id)
    if raw is None or len(raw) != 16:
        raise AnchorError(f"{immutable_id!r} is not the base64 of 16 bytes")
    return str(uuid.UUID(bytes_le=raw))


def connector_dn_from_immutable_id(immutable_id: str) -> str:
    return "CN={" + immutable_id.encode("ascii").hex().upper() + "}"


def immutable_id_from_connector_dn(dn: str) -> str:
    match = _CONNECTOR_DN_RE.match(dn.strip())
    if not match or len(match.group(1)) % 2:
        raise AnchorError(f"{dn!r} is not a connector DN of the form CN={{hex}}")
    try:
        return bytes.fromhex(match.group(1)).decode("ascii")
    except UnicodeDecodeError:
        raise AnchorError(f"{dn!r} does not hold ASCII anchor text") from None


def forms_from_bytes(raw: bytes) -> AnchorForms:
    if len(raw) != 16:
        raise AnchorError(f"an objectGUID has 16 bytes, not {len(raw)}")
    immutable_id = base64.b64encode(raw).decode("ascii")
    return AnchorForms(
        guid=str(uuid.UUID(bytes_le=raw)),
        immutable_id=immutable_id,
        hex=raw.hex(),
        ldap_filter="".join(f"\\{b:02X}" for b in raw),
        connector_dn=connector_dn_from_immutable_id(immutable_id),
    )


def parse_anchor(value: str) -> AnchorForms:
    """Any form a person pastes -> all forms. Raises AnchorError with the reason."""
    text = value.strip()
    if not text:
        raise AnchorError("empty anchor value")
    if text.upper().startswith("CN="):
        text = immutable_id_from_connector_dn(text)
    if match := _GUID_RE.match(text):
        return forms_from_bytes(uuid.UUID(match.group(1)).bytes_le)
    if _LDAP_ESCAPE_RE.match(text):
        return forms_from_bytes(bytes.fromhex(text.replace("\\", "")))
    compact = re.sub(r"[\s:-]", "", text)
    if match := _HEX_RE.match(compact):
        return forms_from_bytes(bytes.fromhex(match.group(1)))
    raw = _strict_b64decode(text)
    if raw is not None and len(raw) == 16:
        return forms_from_bytes(raw)
    raise AnchorError(
        f"{value!r} is not a GUID, ImmutableId (base64 of 16 bytes), hex, "
        "LDAP filter escape or connector DN"
    )


def is_canonical_immutable_id(value: str) -> bool:
    """True for the 24-character standard base64 of 16 bytes that Entra Connect writes."""
    return bool(_STANDARD_B64_RE.match(value))


def decode_wrong_encodings(value: str) -> list[tuple[str, Encoding]]:
    """Every GUID a stored immutableId could have been meant to be, with the mistake made.

    Used on the few cloud anchors that match no AD user, so the report can name the AD user the
    admin meant and the value that should have been written.
    """
    text = value.strip()
    found: list[tuple[str, Encoding]] = []
    if match := _GUID_RE.match(text):
        found.append((str(uuid.UUID(match.group(1))), Encoding.guid_text))
        return found
    if match := _HEX_RE.match(text):
        found.append((str(uuid.UUID(bytes_le=bytes.fromhex(match.group(1)))), Encoding.hex))
        return found
    if not _B64_ANY_RE.match(text):
        return found
    if "-" in text or "_" in text:
        raw = _lenient_b64decode(text.replace("-", "+").replace("_", "/"))
        if raw is not None and len(raw) == 16:
            found.append((str(uuid.UUID(bytes_le=raw)), Encoding.url_safe))
        return found
    raw = _lenient_b64decode(text)
    if raw is None:
        return found
    if len(raw) == 16:
        if not text.endswith("=="):
            found.append((str(uuid.UUID(bytes_le=raw)), Encoding.unpadded))
        else:
            found.append((str(uuid.UUID(bytes_le=raw)), Encoding.correct))
            found.append((str(uuid.UUID(bytes=raw)), Encoding.big_endian))
    elif len(raw) in (36, 38):
        try:
            guid_text = raw.decode("ascii")
        except UnicodeDecodeError:
            return found
        if match := _GUID_RE.match(guid_text):
            found.append((str(uuid.UUID(match.group(1))), Encoding.guid_text_base64))
    return found


def identify_encoding(value: str, expected_guid: str) -> Encoding | None:
    """How `value` encodes `expected_guid`, or None when it does not encode it at all."""
    expected = str(uuid.UUID(expected_guid))
    for guid, encoding in decode_wrong_encodings(value):
        if guid == expected:
            return encoding
    return None


def ascii_guid_bytes_guid(raw: bytes) -> str | None:
    """The GUID when raw bytes are the ASCII text of a GUID (a ConsistencyGuid written as text)."""
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    match = _GUID_RE.match(text.strip())
    return str(uuid.UUID(match.group(1))) if match else None


def _strict_b64decode(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _lenient_b64decode(text: str) -> bytes | None:
    padded = text.rstrip("=")
    padded += "=" * (-len(padded) % 4)
    return _strict_b64decode(padded)


# --- vectorised twins (Polars expressions) of the conversions above, for the rules -----------


def is_canonical(column: str) -> pl.Expr:
    """Vectorised anchor.is_canonical_immutable_id: 24-char standard base64 of 16 bytes."""
    return pl.col(column).str.contains(f"^{CANONICAL_B64_PATTERN}$")


def swap_guid_byte_order(hex32: pl.Expr) -> pl.Expr:
    """32 hex chars in bytes_le order <-> RFC (big-endian) order; the swap is its own inverse."""
    parts = [(6, 2), (4, 2), (2, 2), (0, 2), (10, 2), (8, 2), (14, 2), (12, 2), (16, 16)]
    return pl.concat_str([hex32.str.slice(o, n) for o, n in parts])


def guid_text_to_le_hex(guid: pl.Expr) -> pl.Expr:
    """Canonical lower-case GUID text -> 32 hex chars of its bytes in bytes_le order."""
    spans = [(6, 2), (4, 2), (2, 2), (0, 2), (11, 2), (9, 2), (16, 2), (14, 2), (19, 4), (24, 12)]
    return pl.concat_str([guid.str.slice(o, n) for o, n in spans])


def guid_text_from_hex(hex32: pl.Expr) -> pl.Expr:
    """32 hex chars in RFC order -> canonical lower-case GUID text."""
    h = hex32.str.to_lowercase()
    spans = [(0, 8), (8, 4), (12, 4), (16, 4), (20, 12)]
    return pl.concat_str([h.str.slice(o, n) for o, n in spans], separator="-")


def b64_to_hex(column: str) -> pl.Expr:
    """Hex of the bytes a base64 value holds; null when it is not strict base64."""
    return pl.col(column).str.decode("base64", strict=False).bin.encode("hex")


def hex_to_b64(hex32: pl.Expr) -> pl.Expr:
    return hex32.str.decode("hex", strict=False).bin.encode("base64")
