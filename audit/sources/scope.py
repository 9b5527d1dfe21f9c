"""Sync scope of an AD source: OU selection and an extra LDAP filter, evaluated over records.

Entra Connect's OU filtering is a tree of checkboxes where the most specific selection wins: an
object under an excluded OU inside an included one is out of scope, and an included OU inside an
excluded one is back in. :class:`Scope` reproduces that with the longest matching OU.

The filter is RFC 4515 text (``&``, ``|``, ``!``, ``=``, ``=*``, substrings, ``>=``, ``<=``,
``~=``) plus AD's bitwise matching rules LDAP_MATCHING_RULE_BIT_AND (1.2.840.113556.1.4.803) and
BIT_OR (.804), so ``(!(userAccountControl:1.2.840.113556.1.4.803:=2))`` selects enabled users.
Records are mappings of lower-case attribute names to value lists (``str`` or ``bytes``).
Matching is case-insensitive, as for AD's directory-string attributes; a missing attribute
makes an item false (so its negation is true), as AD evaluates it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from audit.config import AdSource

BIT_AND_RULE = "1.2.840.113556.1.4.803"
BIT_OR_RULE = "1.2.840.113556.1.4.804"
FILTER_REASON = "filter"
OUTSIDE_INCLUDE_REASON = "outside include_ous"

Values = Sequence[str | bytes]
RecordAttrs = Mapping[str, Values]

_ATTR_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9;.\-]*")
_OID_RE = re.compile(r"[0-9]+(?:\.[0-9]+)*")
# Blanks AD tolerates around a DN's separators; forecast.normalized_dns runs the same pattern
# over a column.
DN_SPACES_RE = re.compile(r"\s*([,=+])\s*")
EXCLUDED_OU_REASON = "excluded OU "  # + the OU as configured


class FilterError(ValueError):
    """An LDAP filter that is not valid RFC 4515 text, with the position of the problem."""


@dataclass(frozen=True)
class And:
    children: tuple[Filter, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Filter, ...]


@dataclass(frozen=True)
class Not:
    child: Filter


@dataclass(frozen=True)
class Compare:
    attr: str  # lower-case
    op: str  # "=", "~=", ">=", "<="
    value: bytes  # assertion value after unescaping


@dataclass(frozen=True)
class Present:
    attr: str


@dataclass(frozen=True)
class Substring:
    attr: str
    initial: str | None
    any: tuple[str, ...]
    final: str | None


@dataclass(frozen=True)
class Bitwise:
    attr: str
    mask: int
    all_bits: bool  # True for BIT_AND (.803), False for BIT_OR (.804)


Filter = And | Or | Not | Compare | Present | Substring | Bitwise


def parse_filter(text: str) -> Filter:
    """RFC 4515 filter text -> a filter tree; a bare `attr=value` is accepted without parens."""
    source = text.strip()
    if not source:
        raise FilterError("empty filter")
    if not source.startswith("("):
        source = f"({source})"
    node, end = _parse(source, 0)
    if end != len(source):
        raise FilterError(f"unexpected text at position {end}: {source[end : end + 20]!r}")
    return node


def _parse(text: str, pos: int) -> tuple[Filter, int]:
    if pos >= len(text) or text[pos] != "(":
        raise FilterError(f"expected '(' at position {pos}")
    pos += 1
    if pos >= len(text):
        raise FilterError("filter ends after '('")
    head = text[pos]
    node: Filter
    if head in "&|":
        children: list[Filter] = []
        pos += 1
        while pos < len(text) and text[pos] == "(":
            child, pos = _parse(text, pos)
            children.append(child)
        if not children:
            raise FilterError(f"'{head}' needs at least one filter at position {pos}")
        node = And(tuple(children)) if head == "&" else Or(tuple(children))
    elif head == "!":
        child, pos = _parse(text, pos + 1)
        node = Not(child)
    else:
        close = _closing_paren(text, pos)
        node = _item(text[pos:close], pos)
        pos = close
    if pos >= len(text) or text[pos] != ")":
        raise FilterError(f"expected ')' at position {pos}")
    return node, pos + 1


def _closing_paren(text: str, pos: int) -> int:
    close = text.find(")", pos)
    if close < 0:
        raise FilterError(f"missing ')' for the item at position {pos}")
    if "(" in text[pos:close]:
        raise FilterError(f"unescaped '(' in the item at position {pos} (write it as \\28)")
    return close


def _item(item: str, pos: int) -> Filter:
    match = _ATTR_RE.match(item)
    if ":" in item.split("=", 1)[0]:
        return _extensible(item, pos)
    if not match:
        raise FilterError(f"expected an attribute name at position {pos}")
    attr = match.group(0).lower()
    rest = item[match.end() :]
    for op in ("~=", ">=", "<="):
        if rest.startswith(op):
            return Compare(attr, op, _unescape(rest[2:], pos))
    if not rest.startswith("="):
        raise FilterError(f"expected '=', '>=', '<=' or '~=' after {attr!r} at position {pos}")
    value = rest[1:]
    if value == "*":
        return Present(attr)
    if "*" in value:
        parts = [_unescape(p, pos).decode("utf-8", errors="replace") for p in value.split("*")]
        return Substring(
            attr,
            initial=parts[0] or None,
            any=tuple(p for p in parts[1:-1] if p),
            final=parts[-1] or None,
        )
    return Compare(attr, "=", _unescape(value, pos))


def _extensible(item: str, pos: int) -> Filter:
    """`attr:rule:=value`: only AD's bitwise rules; others need the live directory."""
    left, sep, value = item.partition(":=")
    if not sep:
        raise FilterError(f"expected ':=' in the extensible match at position {pos}")
    parts = left.split(":")
    attr, rule = parts[0].lower(), parts[-1]
    if len(parts) != 2 or not _ATTR_RE.fullmatch(attr) or not _OID_RE.fullmatch(rule):
        raise FilterError(
            f"unsupported extensible match {item!r} at position {pos} (only attr:OID:=value)"
        )
    if rule not in (BIT_AND_RULE, BIT_OR_RULE):
        raise FilterError(
            f"matching rule {rule} is not supported offline (only {BIT_AND_RULE} and {BIT_OR_RULE})"
        )
    text = _unescape(value, pos).decode("ascii", errors="replace").strip()
    try:
        mask = int(text)
    except ValueError:
        raise FilterError(
            f"bitwise match needs an integer, got {text!r} at position {pos}"
        ) from None
    return Bitwise(attr, mask, all_bits=rule == BIT_AND_RULE)


def _unescape(value: str, pos: int) -> bytes:
    """RFC 4515 `\\XX` escapes -> bytes (`*`, `(`, `)`, `\\` and NUL must be escaped)."""
    if "\\" not in value:
        return value.encode("utf-8")
    out = bytearray()
    index = 0
    while index < len(value):
        char = value[index]
        if char == "\\":
            pair = value[index + 1 : index + 3]
            if len(pair) != 2 or not all(c in "0123456789abcdefABCDEF" for c in pair):
                raise FilterError(f"bad escape {value[index : index + 3]!r} near position {pos}")
            out.append(int(pair, 16))
            index += 3
        else:
            out += char.encode("utf-8")
            index += 1
    return bytes(out)


def matches(node: Filter, attrs: RecordAttrs) -> bool:
    """True when the record satisfies the filter."""
    if isinstance(node, And):
        return all(matches(child, attrs) for child in node.children)
    if isinstance(node, Or):
        return any(matches(child, attrs) for child in node.children)
    if isinstance(node, Not):
        return not matches(node.child, attrs)
    if isinstance(node, Present):
        # Every directory entry has objectClass; a CSV without that column still counts.
        return node.attr == "objectclass" or bool(attrs.get(node.attr))
    values = attrs.get(node.attr) or ()
    if isinstance(node, Compare):
        return any(_compare(node, v) for v in values)
    if isinstance(node, Substring):
        return any(_substring(node, _text(v)) for v in values)
    return any(_bitwise(node, v) for v in values)


def _text(value: str | bytes) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace").casefold()
    return value.casefold()


def _compare(node: Compare, value: str | bytes) -> bool:
    if node.op in ("=", "~="):
        if isinstance(value, bytes) and value == node.value:
            return True
        wanted = node.value.decode("utf-8", errors="replace").casefold()
        have = _text(value)
        if node.attr == "objectcategory" and "=" not in wanted:
            # AD accepts the short form (objectCategory=person) for the schema DN.
            have = first_rdn_value(have)
        return have == wanted
    wanted_text = node.value.decode("utf-8", errors="replace")
    have_text = _text(value)
    try:
        left, right = int(have_text), int(wanted_text)
    except ValueError:
        left_s, right_s = have_text, wanted_text.casefold()
        return left_s >= right_s if node.op == ">=" else left_s <= right_s
    return left >= right if node.op == ">=" else left <= right


def first_rdn_value(dn: str) -> str:
    """The value of a DN's first RDN (`CN=O'Brien\\, Pat,OU=...` -> `O'Brien\\, Pat`)."""
    first = split_first_rdn(dn)[0]
    return first.split("=", 1)[1].strip() if "=" in first else first


def _substring(node: Substring, value: str) -> bool:
    pos = 0
    if node.initial is not None:
        initial = node.initial.casefold()
        if not value.startswith(initial):
            return False
        pos = len(initial)
    for part in node.any:
        found = value.find(part.casefold(), pos)
        if found < 0:
            return False
        pos = found + len(part)
    if node.final is not None:
        final = node.final.casefold()
        return len(value) - len(final) >= pos and value.endswith(final)
    return True


def _bitwise(node: Bitwise, value: str | bytes) -> bool:
    try:
        number = int(value)
    except ValueError:
        return False
    if node.all_bits:
        return number & node.mask == node.mask
    return number & node.mask != 0


def filter_attributes(node: Filter) -> frozenset[str]:
    """The lower-case attribute names a filter reads (so parsers keep them)."""
    if isinstance(node, And | Or):
        return frozenset().union(*(filter_attributes(c) for c in node.children))
    if isinstance(node, Not):
        return filter_attributes(node.child)
    return frozenset({node.attr})


def split_first_rdn(dn: str) -> tuple[str, str]:
    """(the first RDN, the rest from its separating comma on): a comma escaped with a
    backslash (CN=O'Brien\\, Pat) is part of the RDN."""
    escaped = False
    for i, char in enumerate(dn):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            return dn[:i], dn[i:]
    return dn, ""


def normalized_dn(dn: str) -> str:
    """Lower-case DN without the spaces AD tolerates around `,` `=` `+`."""
    return DN_SPACES_RE.sub(r"\1", dn.strip().lower())


@dataclass(frozen=True)
class Scope:
    """Which AD objects of one source Entra sync would read."""

    include_ous: tuple[str, ...] = ()
    exclude_ous: tuple[str, ...] = ()
    filter: Filter | None = None

    @property
    def attributes(self) -> frozenset[str]:
        return filter_attributes(self.filter) if self.filter is not None else frozenset()

    def out_of_scope_reason(self, dn: str, attrs: RecordAttrs) -> str | None:
        """None when in scope, else why not: the OU rule, then the filter. The filter is
        judged outside the synced OUs too ("outside include_ous; filter"), so a forecast that
        brings an OU into scope knows who the filter would still keep out."""
        reason = self.ou_reason(dn)
        if self.filter is not None and not matches(self.filter, attrs):
            return FILTER_REASON if reason is None else f"{reason}; {FILTER_REASON}"
        return reason

    def ou_reason(self, dn: str) -> str | None:
        if not self.include_ous and not self.exclude_ous:
            return None
        norm = normalized_dn(dn)
        best: tuple[int, str, bool] | None = None  # (length, OU as configured, included)
        for ous, included in ((self.include_ous, True), (self.exclude_ous, False)):
            for ou in ous:
                ou_norm = normalized_dn(ou)
                if (norm == ou_norm or norm.endswith("," + ou_norm)) and (
                    best is None or len(ou_norm) > best[0]
                ):
                    best = (len(ou_norm), ou, included)
        if best is None:
            return OUTSIDE_INCLUDE_REASON if self.include_ous else None
        return None if best[2] else f"{EXCLUDED_OU_REASON}{best[1]}"


def scope_for(source: AdSource) -> Scope:
    """The scope of an [[ad]] table; raises FilterError for a bad `filter`."""
    return Scope(
        include_ous=tuple(source.include_ous),
        exclude_ous=tuple(source.exclude_ous),
        filter=parse_filter(source.filter) if source.filter.strip() else None,
    )
