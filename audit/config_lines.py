"""Where each key of a TOML text is defined, for config errors of the form
``<file>:<line>: <what>``: tomllib gives no positions for keys, so the text is scanned. A key it
cannot place (inside an inline table) has no line."""

from __future__ import annotations

import re
import tomllib

# A key's place in the parsed data: table and key names, [[ad]] tables numbered from 0.
KeyPath = tuple[str | int, ...]


# A TOML key: bare, "basic" or 'literal' parts joined by dots.
_BASIC = r'"(?:[^"\\\n]|\\.)*"'
_LITERAL = r"'[^'\n]*'"
_PART = rf"(?:[A-Za-z0-9_-]+|{_BASIC}|{_LITERAL})"
_KEY = rf"{_PART}(?:[ \t]*\.[ \t]*{_PART})*"
_ARRAY_HEADER = re.compile(rf"[ \t]*\[\[[ \t]*({_KEY})[ \t]*\]\]")
_TABLE_HEADER = re.compile(rf"[ \t]*\[[ \t]*({_KEY})[ \t]*\]")
_KEY_VALUE = re.compile(rf"[ \t]*({_KEY})[ \t]*=")
_PARTS = re.compile(_PART)
_STRINGS = re.compile(rf"{_BASIC}|{_LITERAL}")


def _key_parts(key: str) -> tuple[str, ...]:
    parts = []
    for match in _PARTS.finditer(key):
        part = match.group()
        if part[0] in "\"'":
            part = str(tomllib.loads(f"k = {part}")["k"])
        parts.append(part)
    return tuple(parts)


def key_lines(text: str) -> dict[KeyPath, int]:
    """Where each table and key of a (valid) TOML text is defined: its path, as the parsed
    data has it ([[ad]] tables numbered from 0), -> its first line. Skips the insides of
    multi-line strings and arrays; keys inside inline tables are not placed."""
    lines: dict[KeyPath, int] = {}
    arrays: dict[KeyPath, int] = {}  # array-of-tables path -> tables seen so far
    table: KeyPath = ()
    open_string: str | None = None  # the delimiter of a multi-line string being skipped
    depth = 0  # of a multi-line array being skipped
    for number, line in enumerate(text.splitlines(), start=1):
        if open_string:
            if line.count(open_string) % 2:
                open_string = None
            continue
        if depth:
            depth += _bracket_balance(line)
            continue
        header = _ARRAY_HEADER.match(line)
        if header:
            table = _table_path(_key_parts(header[1]), arrays, new_array=True)
            lines.setdefault(table[:-1], number)
            lines.setdefault(table, number)
            continue
        header = _TABLE_HEADER.match(line)
        if header:
            table = _table_path(_key_parts(header[1]), arrays, new_array=False)
            lines.setdefault(table, number)
            continue
        assignment = _KEY_VALUE.match(line)
        if not assignment:
            continue
        parts = _key_parts(assignment[1])
        for end in range(1, len(parts) + 1):
            lines.setdefault((*table, *parts[:end]), number)
        value = line[assignment.end() :].lstrip()
        for delimiter in ('"""', "'''"):
            if value.startswith(delimiter) and value.count(delimiter) % 2:
                open_string = delimiter
        if value.startswith("["):
            depth = _bracket_balance(value)
    return lines


def _bracket_balance(text: str) -> int:
    code = _STRINGS.sub("", text).split("#", 1)[0]
    return code.count("[") - code.count("]")


def _table_path(names: tuple[str, ...], arrays: dict[KeyPath, int], *, new_array: bool) -> KeyPath:
    """A header's names as a data path: each array of tables so far stands for its last table."""
    path: KeyPath = ()
    for index, name in enumerate(names):
        path = (*path, name)
        if new_array and index == len(names) - 1:
            arrays[path] = arrays.get(path, 0) + 1
        if path in arrays:
            path = (*path, arrays[path] - 1)
    return path
