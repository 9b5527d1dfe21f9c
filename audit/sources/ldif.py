"""LDIF (RFC 2849) as written by ldifde and ``ldapsearch -LLL``: records of attribute values.

Base64 values (``::``) of the binary attributes (objectGUID, objectSid, mS-DS-ConsistencyGuid)
come back as ``bytes``; base64 text (ldapsearch encodes any non-ASCII value) is decoded to
``str``. Attribute names are lower-cased: LDAP names are case-insensitive.

Speed: records are cut at blank lines and unfolded with C-level string operations, and the
attributes the caller wants are pulled out of each record with one regular expression, so only
the wanted lines are touched in Python.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NoReturn

from audit.errors import InputError
from audit.sources.records import BINARY_ATTRIBUTES, Attrs, Record, Value, text_of

_RECORD_SEPARATOR_RE = re.compile(r"(\n\n+)")  # RFC 2849: records end at an empty line
# `name: value`, `name:: base64`, `name:< url` (after unfolding). Searched in "\n" + record:
# a pattern that starts with a literal newline jumps from line to line.
_LINE_RE = re.compile(r"\n([^:\n#][^:\n]*):([:<]?) *(.*)")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-]*(?:;[A-Za-z0-9.\-=]*)*")
_BAD = "\x00bad"  # name cache marker: not an attribute name
_SKIP = ""  # name cache marker: an attribute the caller did not ask for
_CHANGETYPE = "\x00changetype"  # name cache marker (NUL cannot occur in a name)


def ldif_records(
    text: str, path: Path, wanted: Iterable[str], binary: Iterable[str] = BINARY_ATTRIBUTES
) -> Iterator[Record]:
    """Every entry of an LDIF text with the `wanted` attributes (lower-case names).

    Values of `binary` attributes are ``bytes`` when written in base64; every other value is
    ``str`` (base64 text is UTF-8, or cp1252 from ldifde's ANSI mode).
    """
    names = NameCache(frozenset(wanted), frozenset(binary))
    pieces = _RECORD_SEPARATOR_RE.split(text.replace("\r\n", "\n"))
    line = 1
    first = True
    for index in range(0, len(pieces), 2):
        block = pieces[index]
        if block.strip():
            record = record_from_block(block, line, path, names, first)
            if record is not None:
                first = False
                yield record
        line += block.count("\n")
        if index + 1 < len(pieces):
            line += pieces[index + 1].count("\n")


class NameCache(dict[str, str]):
    """Attribute name as written -> lower-case name, _SKIP, or _CHANGETYPE; filled lazily so
    each distinct spelling is lowered once per file, not once per line."""

    def __init__(self, wanted: frozenset[str], binary: frozenset[str]) -> None:
        super().__init__()
        self.wanted = wanted
        self.binary = binary

    def __missing__(self, name: str) -> str:
        lname = name.split(";", 1)[0].lower()  # options (;binary, ;range=) keep the attribute
        if lname in self.wanted:
            key = lname
        elif lname == "changetype":
            key = _CHANGETYPE
        elif _NAME_RE.fullmatch(name):
            key = _SKIP
        else:
            key = _BAD
        self[name] = key
        return key


def record_from_block(
    block: str, line: int, path: Path, names: NameCache, first: bool
) -> Record | None:
    """One entry; None for a block of comments or the `version: 1` header alone."""
    block = block.rstrip("\n")  # the last record ends with the file's final newline
    if block[0] == " ":
        raise InputError(path, "continuation line without a line to continue", line=line)
    # RFC 2849 folding: a line starting with ONE space continues the previous line.
    unfolded = block.replace("\n ", "")
    start, dn_text, dn_index = dn_line(unfolded, first)
    if dn_text is None:
        return None
    dn_line_no = line if dn_index == 0 else physical_line(block, line, dn_index)
    name, _, rest = dn_text.partition(":")
    if name.strip().lower() != "dn":
        raise InputError(path, f"record must start with 'dn:', got {name[:40]!r}", line=dn_line_no)
    dn = dn_value(rest, path, dn_line_no)
    body = unfolded[start:]
    lines = _LINE_RE.findall(body)
    attrs: Attrs = {}
    for name, kind, value in lines:
        lname = names[name]
        if lname is _BAD:
            bad_line(block, line, path, dn_index)
        if kind:
            if kind == "<":
                problem(
                    path, block, line, body, name, "value given by URL (':<'): export values inline"
                )
            if lname is _SKIP:
                # Unused values are not decoded (photos are large), but a value cut short
                # mid-base64 still means the file was truncated.
                if len(value.rstrip()) % 4:
                    problem(path, block, line, body, name, "truncated or invalid base64 value")
                continue
            raw = decoded_base64(value, path, block, line, body, name)
            decoded: Value = raw if lname in names.binary else text_of(raw)
        elif lname is _SKIP:
            continue
        elif lname is _CHANGETYPE:
            if value.strip().lower() != "add":
                problem(
                    path,
                    block,
                    line,
                    body,
                    name,
                    f"changetype {value.strip()!r} is a change record, not an export "
                    "(only 'changetype: add' is accepted)",
                )
            continue
        else:
            decoded = value
        values = attrs.get(lname)
        if values is None:
            attrs[lname] = [decoded]
        else:
            values.append(decoded)
    if len(lines) != body.count("\n") - body.count("\n#"):
        bad_line(block, line, path, dn_index)  # a line that is not `name: value`
    return Record(dn_line_no, dn, attrs)


def bad_line(block: str, line: int, path: Path, dn_index: int) -> NoReturn:
    """Raise for the first line after the dn that is neither `name: value` nor a comment."""
    for index, text in enumerate(block.replace("\n ", "").split("\n")):
        if index > dn_index and text and text[0] != "#" and not _is_attribute_line(text):
            raise InputError(
                path,
                f"expected 'attribute: value', got {text[:40]!r}",
                line=physical_line(block, line, index),
            )
    raise InputError(path, "malformed record", line=line)


def _is_attribute_line(text: str) -> bool:
    name, sep, _ = text.partition(":")
    return bool(sep) and _NAME_RE.fullmatch(name) is not None


def problem(path: Path, block: str, line: int, body: str, name: str, reason: str) -> NoReturn:
    """Raise `reason` at the first line of the record that sets attribute `name`."""
    unfolded = block.replace("\n ", "")
    offset = unfolded.find("\n" + name + ":", len(unfolded) - len(body) - 1)
    index = unfolded.count("\n", 0, offset) + 1 if offset >= 0 else 0
    raise InputError(path, f"{name}: {reason}", line=physical_line(block, line, index))


def dn_line(unfolded: str, first: bool) -> tuple[int, str | None, int]:
    """(offset after the dn line, the dn line, its logical index); skips comments, version."""
    offset = 0
    index = 0
    while offset < len(unfolded):
        end = unfolded.find("\n", offset)
        end = len(unfolded) if end < 0 else end
        text = unfolded[offset:end]
        if text and text[0] != "#" and not (first and text.lower().startswith("version:")):
            return end, text, index
        offset = end + 1
        index += 1
    return offset, None, index


def dn_value(rest: str, path: Path, line: int) -> str:
    if rest[:1] == ":":
        try:
            return base64.b64decode(rest[1:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise InputError(path, "dn:: is not base64 of UTF-8 text", line=line) from None
    dn = rest.strip()
    if not dn:
        raise InputError(path, "empty dn", line=line)
    return dn


def decoded_base64(value: str, path: Path, block: str, line: int, body: str, name: str) -> bytes:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        problem(path, block, line, body, name, "truncated or invalid base64 value")


def physical_line(block: str, first_line: int, logical_index: int) -> int:
    """The file line where the `logical_index`-th unfolded line of `block` starts."""
    logical = -1
    for offset, text in enumerate(block.split("\n")):
        if not text.startswith(" "):
            logical += 1
            if logical == logical_index:
                return first_line + offset
    return first_line
