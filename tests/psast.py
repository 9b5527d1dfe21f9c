"""PowerShell AST checks for generated scripts, on tree-sitter-powershell (the parser of record:
there is no PowerShell on the build machine).

A value with non-ASCII characters is written as ``('abc' + [char]0x0151 + 'd')`` (the scripts are
pure ASCII); :func:`parse` evaluates those concatenations into ``Parsed.values``.

The grammar knows only the ASCII single quote, while PowerShell also ends a verbatim string at
U+2018..U+201B; so every verbatim literal is re-read with PowerShell's own rule
(audit.powershell.read_verbatim_literal) and must end exactly where the grammar's node ends.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import tree_sitter_powershell as tsp
from tree_sitter import Language, Node, Parser, Tree

from audit.powershell import read_verbatim_literal

_PARSER = Parser(Language(tsp.language()))
_PIECE = r"(?:'(?:[^']|'')*'|\[char\]0x[0-9A-F]{4})"
_CONCAT = re.compile(rf"\({_PIECE}(?: \+ {_PIECE})+\)")


def evaluate_concat(text: str) -> str | None:
    """The value of a generated ``('a' + [char]0x0151)`` expression, or None for other text."""
    if not _CONCAT.fullmatch(text):
        return None
    units: list[int] = []
    for piece in re.findall(_PIECE, text):
        if piece.startswith("'"):
            for ch in piece[1:-1].replace("''", "'"):
                units.append(ord(ch))
        else:
            units.append(int(piece[8:], 16))
    raw = b"".join(u.to_bytes(2, "big") for u in units)
    return raw.decode("utf-16-be")


@dataclass(frozen=True)
class Literal:
    start: int  # byte offsets in the script
    end: int
    value: str  # as PowerShell reads it


@dataclass
class Parsed:
    source: bytes
    tree: Tree
    literals: list[Literal]
    comments: list[tuple[int, int]]
    values: list[Literal]  # generated concatenations of literals and [char] casts

    def text(self, node: Node) -> str:
        return self.source[node.start_byte : node.end_byte].decode("utf-8")


def walk(node: Node) -> Iterator[Node]:
    yield node
    for child in node.children:
        yield from walk(child)


def parse(script: str) -> Parsed:
    """Parse; assert no ERROR/MISSING node, no expandable string, and that every verbatim literal
    ends where PowerShell's tokenizer would end it."""
    source = script.removeprefix("\ufeff").encode("utf-8")
    tree = _PARSER.parse(source)
    problems = [
        (n.type, n.start_point, source[n.start_byte : n.end_byte][:80])
        for n in walk(tree.root_node)
        if n.type == "ERROR" or n.is_missing
    ]
    assert not problems, f"parse errors: {problems[:5]}"
    literals: list[Literal] = []
    comments: list[tuple[int, int]] = []
    values: list[Literal] = []
    for node in walk(tree.root_node):
        if node.type == "parenthesized_expression":
            value = evaluate_concat(source[node.start_byte : node.end_byte].decode("utf-8"))
            if value is not None:
                values.append(Literal(node.start_byte, node.end_byte, value))
        if node.type in ("expandable_string_literal", "expandable_here_string_literal"):
            raise AssertionError(f"expandable string in the script: {node.start_point}")
        if node.type == "verbatim_here_string_characters":
            raise AssertionError(f"here-string in the script: {node.start_point}")
        if node.type == "comment":
            comments.append((node.start_byte, node.end_byte))
        if node.type == "verbatim_string_characters":
            text = source[node.start_byte : node.end_byte].decode("utf-8")
            value, end = read_verbatim_literal(text, 0)
            assert end == len(text), f"PowerShell would end this literal early: {text[:80]!r}"
            literals.append(Literal(node.start_byte, node.end_byte, value))
    return Parsed(source, tree, literals, comments, values)


def assert_values_confined(parsed: Parsed, values: Iterable[tuple[str, str]]) -> int:
    """Each (sentinel, value): every occurrence of the sentinel lies inside a verbatim literal
    whose PowerShell value is exactly `value`, or inside a comment. Returns the literal hits."""
    in_literals = 0
    for sentinel, value in values:
        needle = sentinel.encode("utf-8")
        start = parsed.source.find(needle)
        while start != -1:
            end = start + len(needle)
            literal = next(
                (x for x in parsed.values if x.start < start and end < x.end), None
            ) or next((x for x in parsed.literals if x.start < start and end < x.end), None)
            if literal is not None:
                assert literal.value == value, f"literal holds {literal.value!r}, not {value!r}"
                in_literals += 1
            else:
                assert any(a <= start and end <= b for a, b in parsed.comments), (
                    f"{sentinel} outside any literal or comment at byte {start}: "
                    f"{parsed.source[max(0, start - 60) : end + 20]!r}"
                )
            start = parsed.source.find(needle, end)
    return in_literals


def functions(parsed: Parsed) -> dict[str, Node]:
    found = {}
    for node in walk(parsed.tree.root_node):
        if node.type == "function_statement":
            name = next(c for c in node.children if c.type == "function_name")
            found[parsed.text(name)] = node
    return found


def command_names(parsed: Parsed, node: Node) -> list[str]:
    return [parsed.text(n) for n in walk(node) if n.type == "command_name" and n.parent is not None]


def flattened_commands(parsed: Parsed, function: str) -> list[str]:
    """Command names a function runs, in text order, with the script's own helper functions
    inlined (so checks and changes done in helpers count)."""
    defined = functions(parsed)

    def expand(name: str, seen: frozenset[str]) -> list[str]:
        out: list[str] = []
        for cmd in command_names(parsed, defined[name]):
            if cmd in defined and cmd not in seen:
                out.extend(expand(cmd, seen | {cmd}))
            elif cmd not in defined:
                out.append(cmd)
        return out

    return expand(function, frozenset({function}))


def calls(parsed: Parsed) -> list[tuple[str, dict[str, str]]]:
    """The generated calls: ($step = @{...}; Invoke-Sa* @step) -> (function, {param: value})."""
    out: list[tuple[str, dict[str, str]]] = []
    pending: dict[str, str] = {}
    for node in walk(parsed.tree.root_node):
        if node.type == "assignment_expression" and parsed.text(node).startswith("$step"):
            pending = {}
            for entry in walk(node):
                if entry.type == "hash_entry":
                    key = parsed.text(entry.children[0])
                    literal = next(
                        (
                            x
                            for x in (*parsed.values, *parsed.literals)
                            if entry.start_byte <= x.start < entry.end_byte
                        ),
                        None,
                    )
                    pending[key] = literal.value if literal else parsed.text(entry.children[-1])
        elif node.type == "command" and parsed.text(node).endswith("@step"):
            name = next(c for c in node.children if c.type == "command_name")
            out.append((parsed.text(name), pending))
    return out
