"""PowerShell quoting and validation: the only way a directory value enters a generated script.

PowerShell's tokenizer treats five characters as a single quote: ``'`` and the typographic
U+2018, U+2019, U+201A, U+201B. Inside a single-quoted (verbatim) string a quote character
followed by another quote character stands for the second one; nothing else is special there
(``$``, backticks, ``;`` and ``$(...)`` are plain text). So a value is safe as a verbatim literal
when every quote character is doubled and the value holds no character that could end a line or
hide what the script does: control characters (NUL, CR, LF, NEL U+0085...), the line and
paragraph separators U+2028/U+2029, unpaired surrogates, and the bidirectional overrides behind
"Trojan Source" (a reviewed script must read the way it runs).

Identifiers the script writes into the directory are validated more strictly on top:
anchors, object ids and UPNs (``valid_*``). A value that fails is never written as code; the
caller turns it into a commented-out, clearly marked manual step (see audit/remediation/), and
comment text goes through :func:`comment_text`, which cannot produce a line break.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
import uuid

from audit.anchor import CANONICAL_B64_PATTERN, GUID_PATTERN

QUOTE_CHARS = "'\u2018\u2019\u201a\u201b"
# Long values are legal in a literal, but nothing the remediation writes is this long; a longer
# value is suspicious and goes to a manual step.
MAX_LITERAL_CHARS = 4096
MAX_COMMENT_CHARS = 240

# Bidirectional formatting characters (Trojan Source, CVE-2021-42574) and other invisible
# controls that would make the reviewed text differ from what runs.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\u2028\u2029\u0085")
# Printable ASCII and Latin-1 letters: nothing in it can be a problem (the loop decides the rest).
_PLAIN = re.compile(r"[\x20-\x7e\u00a0-\u00ff]*")

_CANONICAL_B64 = re.compile(CANONICAL_B64_PATTERN)
# A text anchor (employeeID, msDS-SourceAnchor...): Graph refuses `$` and `_` in a sourceAnchor;
# keep to a conservative charset so nothing odd is ever written.
_TEXT_ANCHOR = re.compile(r"[A-Za-z0-9][A-Za-z0-9+/=.@-]{0,255}")
_GUID = re.compile(GUID_PATTERN)
# Characters Entra accepts in a UPN's local part (A-Z a-z 0-9 ' . - _ ! # ^ ~); the apostrophe
# (o'brien@...) is legal and is doubled by ps_literal like any quote.
_UPN = re.compile(
    r"(?P<local>[A-Za-z0-9'._!#^~-]{1,64})@(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
    r"[A-Za-z0-9])?\.)+[A-Za-z]{2,63})"
)
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9-]*")

# AD attributes the on-premises section may write (IdFix's rule set); nothing else. In the order
# the script's ValidateSet and $script:AdAttributes list them.
AD_WRITABLE_ATTRIBUTES = (
    "userPrincipalName",
    "mail",
    "mailNickname",
    "proxyAddresses",
    "sAMAccountName",
    "displayName",
    "givenName",
    "targetAddress",
)


class UnsafeValue(ValueError):
    """A value that may not appear in a script as code; str(exc) says why (one line)."""


class PsCode(str):
    """Text that is safe to place in a script as is: produced only by this module."""

    __slots__ = ()


def literal_problem(value: str) -> str | None:
    """Why `value` cannot be a verbatim literal, or None when it can."""
    if len(value) > MAX_LITERAL_CHARS:
        return f"value is {len(value)} characters long (limit {MAX_LITERAL_CHARS})"
    if _PLAIN.fullmatch(value):
        return None  # the common case, without a per-character loop
    for ch in value:
        if ch in _LINE_BREAKS:
            return f"value contains a line break character U+{ord(ch):04X}"
        if ch in _BIDI:
            return f"value contains the invisible bidirectional control U+{ord(ch):04X}"
        category = unicodedata.category(ch)
        if category == "Cc":
            return f"value contains the control character U+{ord(ch):04X}"
        if category == "Cs":
            return "value contains an unpaired surrogate (not valid Unicode text)"
    return None


def ps_literal(value: str | bool | None) -> PsCode:
    """A PowerShell expression for `value`: a verbatim literal, or for text with non-ASCII
    characters a parenthesised concatenation of verbatim literals and ``[char]0xNNNN`` casts
    (UTF-16 code units). $null / $true / $false for those.

    The script is pure ASCII, so it means the same in any code page: Windows PowerShell 5.1
    reads a file without BOM as cp1252, where the UTF-8 bytes of U+0151 (C5 91) contain U+2018,
    one of PowerShell's quote characters. Raises UnsafeValue for text that may not appear in a
    script (see literal_problem).
    """
    if value is None:
        return PsCode("$null")
    if isinstance(value, bool):
        return PsCode("$true" if value else "$false")
    if not isinstance(value, str):
        raise UnsafeValue(f"not text: {type(value).__name__}")
    problem = literal_problem(value)
    if problem:
        raise UnsafeValue(problem)
    if value.isascii():
        return PsCode(_verbatim(value))
    parts: list[str] = []
    run: list[str] = []
    for ch in value:
        if ch.isascii():
            run.append(ch)
            continue
        if run or not parts:
            parts.append(_verbatim("".join(run)))  # a string first, so + concatenates text
            run = []
        units = ch.encode("utf-16-be")
        parts.extend(
            f"[char]0x{int.from_bytes(units[i : i + 2], 'big'):04X}"
            for i in range(0, len(units), 2)
        )
    if run:
        parts.append(_verbatim("".join(run)))
    return PsCode("(" + " + ".join(parts) + ")")


def _verbatim(ascii_text: str) -> str:
    return "'" + ascii_text.replace("'", "''") + "'"


def read_verbatim_literal(text: str, start: int) -> tuple[str, int]:
    """Read a verbatim string the way PowerShell's tokenizer does: (value, end offset).

    ``text[start]`` must be a quote character. Independent of tree-sitter (whose grammar knows
    only the ASCII quote), so tests can check what PowerShell itself would read.
    """
    if text[start] not in QUOTE_CHARS:
        raise ValueError("not at a quote character")
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch in QUOTE_CHARS:
            if i + 1 < len(text) and text[i + 1] in QUOTE_CHARS:
                out.append(text[i + 1])
                i += 2
                continue
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise ValueError("unterminated verbatim string")


def comment_text(value: object, limit: int = MAX_COMMENT_CHARS) -> PsCode:
    """One line of ASCII comment text: every non-ASCII or control character is shown as an
    escape (\\u00e9, \\x00...), so nothing can end the line or change meaning in another code
    page, and long text is cut with a note of its length."""
    text = "" if value is None else str(value)
    shown = []
    for ch in text:
        if " " <= ch <= "~":
            shown.append(ch)
        elif ord(ch) < 0x100:
            shown.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            shown.append(f"\\u{ord(ch):04x}")
        else:
            shown.append(f"\\U{ord(ch):08x}")
    line = "".join(shown)
    if len(line) > limit:
        line = line[:limit] + f"... ({len(text)} characters)"
    return PsCode(line)


def identifier(name: str) -> PsCode:
    """A function or parameter name from the generator's own tables."""
    if not _IDENTIFIER.fullmatch(name):
        raise UnsafeValue(f"not a PowerShell identifier: {name!r}")
    return PsCode(name)


# --- validation of the identifiers the script writes ---------------------------------------------


def valid_guid(value: str | None, what: str = "object id") -> str:
    """A GUID in canonical lower-case form."""
    if value is None or not _GUID.fullmatch(value):
        raise UnsafeValue(f"{what} {_shown(value)} is not a GUID")
    return str(uuid.UUID(value))


def valid_anchor(value: str | None, *, text_anchors: bool = False) -> str:
    """An anchor the script may write: the canonical base64 of 16 bytes, or (when a text anchor
    attribute is configured) a strict-charset text anchor."""
    if value is None:
        raise UnsafeValue("anchor is empty")
    if _CANONICAL_B64.fullmatch(value):
        try:
            if len(base64.b64decode(value, validate=True)) == 16:
                return value
        except (binascii.Error, ValueError):
            pass
    if text_anchors and _TEXT_ANCHOR.fullmatch(value):
        return value
    allowed = "base64 of 16 bytes" + (" or text of [A-Za-z0-9+/=.@-]" if text_anchors else "")
    raise UnsafeValue(f"anchor {_shown(value)} is not {allowed}")


def valid_upn(value: str | None) -> str:
    """A userPrincipalName Entra accepts (local part charset, dotted domain, <= 113 chars)."""
    if value is None or len(value) > 113 or not _UPN.fullmatch(value):
        raise UnsafeValue(f"UPN {_shown(value)} does not have the form Entra accepts")
    return value


def valid_ad_attribute(name: str | None) -> str:
    if name not in AD_WRITABLE_ATTRIBUTES:
        raise UnsafeValue(f"attribute {_shown(name)} is not one the script may write")
    return name


def valid_text(value: str | None, what: str = "value") -> str | None:
    """Any text that can be a verbatim literal (None passes as $null)."""
    if value is None:
        return None
    problem = literal_problem(value)
    if problem:
        raise UnsafeValue(f"{what}: {problem}")
    return value


def _shown(value: object) -> str:
    return str(comment_text(repr(value), limit=60))
