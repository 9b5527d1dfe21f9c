"""Reading an input file: the error type, encoding detection and format sniffing.

Formats are decided from the first few KB of content, never from the extension, so a 1 GB file
of nonsense fails before it is read (FACTS.md section 6 lists what people hand us).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from audit.errors import InputError

HEAD_BYTES = 64 * 1024

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Control characters that never appear in a text export (tab, LF, FF, CR are allowed).
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_LDIF_START_RE = re.compile(r"^(dn|version)\s*::?", re.IGNORECASE)
_HEADER_FIELD_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")
_DOMAIN_LINE_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+\.?$")


@dataclass(frozen=True)
class TextInput:
    """A whole input file decoded to text, with the format its head showed."""

    path: Path
    text: str
    encoding: str
    format: str  # ldif, csv, json, text


def read_input(path: Path, allowed: tuple[str, ...]) -> TextInput:
    """Decode `path` and sniff its format; fail fast on binary content or a wrong format."""
    try:
        with path.open("rb") as handle:
            head = handle.read(HEAD_BYTES)
            encoding = encoding_from_head(path, head)
            fmt = format_from_head(path, head, encoding, allowed)
            raw = head + handle.read()
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from None
    text, used = decoded_text(path, raw, encoding)
    return TextInput(path=path, text=text, encoding=used, format=fmt)


def encoding_from_head(path: Path, head: bytes) -> str:
    """BOM first (ldifde -u writes UTF-16 LE with BOM), then a BOM-less UTF-16 guess, else 8-bit."""
    if not head:
        raise InputError(path, "file is empty")
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    if utf16_without_bom(head):
        return "utf-16-le" if head[1:2] == b"\x00" else "utf-16-be"
    return "utf-8"  # tried strictly; decoded_text falls back to cp1252 (ldifde's ANSI default)


def utf16_without_bom(head: bytes) -> bool:
    """ASCII text in UTF-16 has a NUL in every other byte and none in the others."""
    sample = head[:4096]
    if len(sample) < 8:
        return False
    even, odd = sample[0::2], sample[1::2]
    even_nul, odd_nul = even.count(0), odd.count(0)
    return (odd_nul > 0.9 * len(odd) and even_nul == 0) or (
        even_nul > 0.9 * len(even) and odd_nul == 0
    )


def head_text(path: Path, head: bytes, encoding: str) -> str:
    if encoding.startswith("utf-16"):
        head = head[: len(head) - len(head) % 2]
    text = head.decode(encoding, errors="replace")
    if "\x00" in text or len(_CONTROL_RE.findall(text[:8192])) > 8:
        raise InputError(path, "binary content, not a text export (LDIF, CSV or JSON)")
    return text.lstrip("\ufeff")


def format_from_head(path: Path, head: bytes, encoding: str, allowed: tuple[str, ...]) -> str:
    text = head_text(path, head, encoding)
    fmt = sniff_format(text)
    if fmt is None or fmt not in allowed:
        seen = fmt or "unrecognised content"
        expected = " or ".join(a.upper() if a != "text" else "a list of names" for a in allowed)
        raise InputError(path, f"expected {expected}, found {seen}", line=1 if fmt else None)
    return fmt


def sniff_format(text: str) -> str | None:
    """ldif, csv, json or text (one name per line) from the first lines of a decoded file."""
    stripped = text.lstrip()
    if not stripped:
        return None
    if stripped[0] in "{[":
        return "json"
    lines = [ln.strip() for ln in stripped.splitlines()[:50]]
    if lines[0].upper().startswith("#TYPE"):
        return "csv"
    content = [ln for ln in lines if ln and not ln.startswith("#")]
    if not content:
        return None
    first = content[0]
    if _LDIF_START_RE.match(first):
        return "ldif"
    if csv_header(first):
        return "csv"
    names = [ln.split("#", 1)[0].strip() for ln in content]
    if all(_DOMAIN_LINE_RE.match(n) for n in names[:-1] or names):  # the last may be cut
        return "text"
    return None


def csv_header(line: str) -> bool:
    """A header of attribute / property names (DN, ObjectGUID, mS-DS-ConsistencyGuid...)."""
    counts = {sep: line.count(sep) for sep in (",", ";", "\t")}
    sep = max(counts, key=lambda k: counts[k])
    fields = [f.strip().strip('"').strip() for f in line.split(sep)]
    return counts[sep] > 0 and all(_HEADER_FIELD_RE.match(f) for f in fields)


def decoded_text(path: Path, raw: bytes, encoding: str) -> tuple[str, str]:
    """UTF-8 strictly, else cp1252 (ldifde and Windows PowerShell 5.1 write the ANSI code page).

    Returns the text and the encoding that read it.
    """
    used = encoding
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        if encoding != "utf-8":
            raise InputError(
                path, f"invalid {encoding} data", line=line_of(raw, exc.start)
            ) from None
        used = "cp1252"
        try:
            text = raw.decode(used)
        except UnicodeDecodeError as exc2:
            raise InputError(
                path, "neither UTF-8 nor Windows-1252 text", line=line_of(raw, exc2.start)
            ) from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise InputError(path, "NUL character in text", line=line)
    return text.lstrip("\ufeff"), used


def line_of(raw: bytes, offset: int) -> int:
    return raw.count(b"\n", 0, offset) + 1


# --- values shared by the readers ------------------------------------------------------------


class Notes:
    """Warnings of one input, counted so a problem on 10,000 rows is one line, not 10,000."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._order: list[str] = []

    def add(self, message: str, count: int = 1) -> None:
        if message not in self._counts:
            self._counts[message] = 0
            self._order.append(message)
        self._counts[message] += count

    def count(self, message: str) -> int:
        return self._counts.get(message, 0)

    def lines(self) -> tuple[str, ...]:
        return tuple(
            f"{message} ({self._counts[message]}x)" if self._counts[message] > 1 else message
            for message in self._order
        )


_EPOCH_1601 = datetime(1601, 1, 1, tzinfo=UTC)
_FILETIME_NEVER = 0x7FFFFFFFFFFFFFFF
_GENERALIZED_RE = re.compile(
    r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:[.,](\d+))?(Z|[+-]\d{4})?$"
)
# Get-ADUser / Get-MgUser | Export-Csv print dates in the exporting machine's culture.
_LOCAL_FORMATS = (
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M:%S",
    "%d.%m.%Y %H:%M:%S",
    "%d-%m-%Y %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %H:%M",
    "%d/%m/%Y %H:%M",
    "%d.%m.%Y %H:%M",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d.%m.%Y",
)


def datetime_from_filetime(value: str | int) -> datetime | None:
    """Windows FILETIME (100 ns ticks since 1601); 0 and 0x7FFF... mean never."""
    try:
        ticks = int(value)
    except ValueError:
        return None
    if ticks <= 0 or ticks >= _FILETIME_NEVER:
        return None
    try:
        return _EPOCH_1601 + timedelta(microseconds=ticks // 10)
    except OverflowError:
        return None


def datetime_from_text(text: str) -> datetime | None:
    """Generalized time, ISO 8601 or a common local format; naive times are read as UTC."""
    text = text.strip()
    if not text:
        return None
    if len(text) == 17 and text.endswith(".0Z") and text[:14].isdigit():
        # AD's own form (whenCreated: 20200109153140.0Z): the common case, parsed directly.
        try:
            return datetime(
                int(text[0:4]),
                int(text[4:6]),
                int(text[6:8]),
                int(text[8:10]),
                int(text[10:12]),
                int(text[12:14]),
                tzinfo=UTC,
            )
        except ValueError:
            return None
    if match := _GENERALIZED_RE.match(text):
        return _generalized(match)
    parsed: datetime | None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = _local(text)
    if parsed is None:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _generalized(match: re.Match[str]) -> datetime | None:
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        value = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC
        )
    except ValueError:
        return None
    if fraction:
        value += timedelta(microseconds=int((fraction + "000000")[:6]))
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        value -= sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5]))
    return value


def _local(text: str) -> datetime | None:
    for fmt in _LOCAL_FORMATS:
        try:
            return datetime.strptime(text, fmt)  # naive: the caller adds UTC
        except ValueError:
            continue
    return None


def bool_from_text(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    return None
