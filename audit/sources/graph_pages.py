"""Microsoft Graph response pages, as saved in files or received live: documents, pages, and
the exports (queries) they form.

One reader takes every shape people save: a response page ``{"value": [...]}``, a bare array,
several pages concatenated (``}{``), and JSON Lines. Property names are matched without case
(PowerShell round-trips change it). Pages of one query are judged as a chain (complete or not);
their objects go to :mod:`audit.sources.entra`. Calls and field meanings: FACTS.md section 3.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.errors import InputError

_WHITESPACE_RE = re.compile(r"[ \t\r\n]*")


@dataclass(frozen=True)
class Document:
    value: Any
    line: int


# A \\uD800-\\uDFFF escape (after an even run of backslashes, so it is an escape), and the same
# as a valid pair: a high surrogate followed by a low one.
_SURROGATE_ESCAPE_RE = re.compile(r"(?<!\\)(?:\\\\)*\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE_PAIR_RE = re.compile(
    r"(?<!\\)((?:\\\\)*)\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


def reject_lone_surrogates(text: str, path: Path) -> None:
    """Python's json turns a lone \\ud800 into a string no encoder accepts (Parquet, the
    terminal): it would end in a traceback far from the file. Graph writes characters outside
    the BMP as valid pairs, so a lone one is a broken or hand-made file."""
    if "\\u" not in text or not _SURROGATE_ESCAPE_RE.search(text):
        return
    # Pairs are replaced by text of the same length, so positions (and lines) stay put.
    unpaired = _SURROGATE_PAIR_RE.sub(lambda m: m.group(1) + "x" * 12, text)
    found = _SURROGATE_ESCAPE_RE.search(unpaired)
    if found:
        escape = found.group().lstrip("\\")
        raise InputError(
            path,
            f"a lone UTF-16 surrogate (\\{escape}) in a JSON string: not a character, and no "
            "Graph response has one",
            line=1 + text.count("\n", 0, found.start()),
        )


def json_documents(text: str, path: Path) -> Iterator[Document]:
    """Every JSON document in the text: one, several concatenated, or one per line."""
    reject_lone_surrogates(text, path)
    decoder = json.JSONDecoder()
    pos = _WHITESPACE_RE.match(text, 0).end()  # type: ignore[union-attr]
    line = 1 + text.count("\n", 0, pos)
    while pos < len(text):
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise InputError(path, f"invalid JSON: {exc.msg}", line=exc.lineno) from None
        except RecursionError:
            # No Graph response nests more than a few levels; thousands of [[[... are an attack
            # or a broken file, and would otherwise end in a traceback.
            raise InputError(
                path, "JSON nested too deeply to be a Graph export", line=line
            ) from None
        yield Document(value=value, line=line)
        next_pos = _WHITESPACE_RE.match(text, end).end()  # type: ignore[union-attr]
        line += text.count("\n", pos, next_pos)
        pos = next_pos


def lower_keys(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in obj.items()}


@dataclass
class Page:
    """The objects of one document, and what its envelope says."""

    items: list[dict[str, Any]]
    context: str
    next_link: str | None
    line: int
    path: Path
    delta_link: str | None = None  # /users/delta ends with @odata.deltaLink instead
    count: int | None = None  # @odata.count, when the export asked for $count=true

    @property
    def entity(self) -> str:
        """What the @odata.context names, lower-cased: `users(id,...)`, `domains`..."""
        return context_entity(self.context)

    @property
    def object_count(self) -> int:
        return len(self.items)

    def has_key(self, name: str) -> bool:
        """Whether any of its objects has the (lower-cased) property, null or not."""
        return any(name in obj for obj in self.items)

    @property
    def removed(self) -> int:
        """Users a delta round says were removed ({"id", "@removed"})."""
        return sum(1 for obj in self.items if "@removed" in obj)

    @property
    def final(self) -> bool:
        """The last page of its export: Graph leaves out @odata.nextLink only there."""
        return self.next_link is None


def context_entity(context: str) -> str:
    """`https://graph.microsoft.com/v1.0/$metadata#users(id)` -> `users(id)` (lower-cased)."""
    return context.lower().rsplit("#", 1)[-1]


def pages(text: str, path: Path) -> Iterator[Page]:
    """Documents as pages of lower-cased objects; a Graph error response is an InputError.

    A JSON array is either a bare list of objects or a list of saved response pages (what
    PowerShell's ConvertTo-Json makes of responses collected in an array).
    """
    for doc in json_documents(text, path):
        if isinstance(doc.value, list):
            if doc.value and all(_is_envelope(x) for x in doc.value):
                for envelope in doc.value:
                    yield _envelope_page(lower_keys(envelope), path, doc.line)
                continue
            items = [_object(x, path, doc.line) for x in doc.value]
            yield Page(items=items, context="", next_link=None, line=doc.line, path=path)
            continue
        if not isinstance(doc.value, dict):
            raise InputError(path, "expected a JSON object or array", line=doc.line)
        yield _envelope_page(lower_keys(doc.value), path, doc.line)


def _is_envelope(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(lower_keys(value).get("value"), list)


def _envelope_page(envelope: dict[str, Any], path: Path, line: int) -> Page:
    if "error" in envelope and "value" not in envelope:
        raise InputError(
            path, f"the file holds a Graph error response: {error_text(envelope)}", line=line
        )
    context = str(envelope.get("@odata.context") or "")
    values = envelope.get("value")
    if not isinstance(values, list):  # JSON Lines row, or a single-object response
        return Page(items=[envelope], context=context, next_link=None, line=line, path=path)
    next_link = envelope.get("@odata.nextlink")
    delta_link = envelope.get("@odata.deltalink")
    count = envelope.get("@odata.count")
    return Page(
        items=[_object(x, path, line) for x in values],
        context=context,
        next_link=str(next_link) if next_link else None,
        line=line,
        path=path,
        delta_link=str(delta_link) if delta_link else None,
        count=count if isinstance(count, int) and not isinstance(count, bool) else None,
    )


@dataclass(frozen=True)
class Export:
    """The pages that answer one Graph query, from one file or several (Graph Explorer shows
    one page at a time, so people save `users-0.json users-1.json ...`)."""

    pages: tuple[Page, ...]
    complete: bool
    incomplete_reason: str | None = None
    note: str | None = None  # how the pages were put together

    @property
    def files(self) -> tuple[Path, ...]:
        return tuple(dict.fromkeys(page.path for page in self.pages))

    @property
    def enveloped(self) -> bool:
        """Saved as response pages (@odata.context / nextLink), not as bare objects."""
        return any(page.context or page.next_link or page.delta_link for page in self.pages)


def exports(pages: Sequence[Page]) -> list[Export]:
    """Group pages into the queries they answer and judge whether each query is complete.

    Pages of one query share their @odata.context (it names the entity set and the $select),
    whatever file they were saved in; pages without one (bare arrays, JSON Lines) are their
    file's own export. A query is complete when its pages form a chain: Graph puts an
    @odata.nextLink on every page but the last (paging.md), so exactly one page lacks it, no
    two pages carry the same nextLink (a page saved twice), no object id is on two pages, and
    the object count equals @odata.count when the export asked for it. The order of the pages
    is not needed: a nextLink is opaque, and the page it leads to does not repeat it.
    """
    groups: dict[tuple[str, str], list[Page]] = {}
    for page in pages:
        key = (
            ("context", page.context.strip().lower()) if page.context else ("file", str(page.path))
        )
        groups.setdefault(key, []).append(page)
    return [_judged(tuple(group)) for group in groups.values()]


def _judged(pages: tuple[Page, ...]) -> Export:
    if not any(page.context or page.next_link for page in pages):
        return Export(pages, complete=True)  # bare objects: nothing says more pages exist
    delta = any(p.delta_link or p.removed for p in pages)
    finals = [p for p in pages if p.final]
    objects = sum(p.object_count for p in pages)

    def where(page: Page) -> str:
        return f"{page.path.name}:{page.line}"

    problem: str | None = None
    if not finals:
        last = "the page" if len(pages) == 1 else "every page"
        problem = (
            f"{last} has an @odata.nextLink: the export stopped before the end "
            "(save the page that nextLink returns too, up to one without it)"
        )
    elif len(finals) > 1:
        problem = (
            f"{len(finals)} pages without @odata.nextLink ({', '.join(map(where, finals[:4]))}): "
            "pages of more than one export of the same query"
        )
    else:
        links: dict[str, Page] = {}
        for page in pages:
            if page.next_link is not None:
                if page.next_link in links:
                    first = links[page.next_link]
                    problem = f"{where(first)} and {where(page)} are the same page saved twice"
                    break
                links[page.next_link] = page
    if problem is None and not delta:
        problem = _repeated_id(pages)
    counts = {p.count for p in pages if p.count is not None}
    if problem is None and counts and counts != {objects}:
        problem = f"@odata.count says {min(counts):,} objects, the pages hold {objects:,}"
    note = None
    if len(pages) > 1:
        files = tuple(dict.fromkeys(p.path.name for p in pages))
        spread = f"{len(files)} files" if len(files) > 1 else files[0]
        note = (
            f"{len(pages)} pages from {spread} read as one export of "
            f"{_query_name(pages[0].context)}: {len(pages) - len(finals)} with @odata.nextLink, "
            f"{len(finals)} without; {objects:,} objects"
            + ("" if delta else ", no id on two pages")
            + (", as @odata.count says" if counts == {objects} else "")
        )
    if problem is not None:
        return Export(pages, complete=False, incomplete_reason=problem, note=note)
    return Export(pages, complete=True, note=note)


def _repeated_id(pages: tuple[Page, ...]) -> str | None:
    seen: dict[str, Page] = {}
    for page in pages:
        for obj in page.items:
            object_id = obj.get("id")
            if not isinstance(object_id, str):
                continue
            first = seen.setdefault(object_id, page)
            if first is not page:
                return (
                    f"id {object_id} is on two pages ({first.path.name}:{first.line} and "
                    f"{page.path.name}:{page.line}): a page saved twice, or pages of two exports"
                )
    return None


def _query_name(context: str) -> str:
    """`$metadata#users(id,...)` -> users; for the import summary."""
    name = context.rsplit("#", 1)[-1].split("(", 1)[0]
    return name or "the same query"


def _object(value: Any, path: Path, line: int) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InputError(
            path, f"expected an object in 'value', got {type(value).__name__}", line=line
        )
    return lower_keys(value)


def error_text(envelope: Mapping[str, Any]) -> str:
    error = envelope.get("error")
    if isinstance(error, dict):
        err = lower_keys(error)
        return f"{err.get('code', '?')}: {err.get('message', '')}"
    return str(error)[:200]


# The entity set an @odata.context names (`$metadata#<entity>`) -> the import flag it belongs to.
RESPONSE_FLAGS = (
    ("users", "--cloud"),
    ("directory/deleteditems", "--deleted"),
    ("domains", "--domains"),
    ("organization", "--tenant"),
    ("directory/onpremisessynchronization", "--tenant"),
    ("rolemanagement", "--roles"),
)


def import_flag(entity: str) -> str | None:
    """The import flag for a response about `entity` (lower-cased, after the '#')."""
    return next((flag for prefix, flag in RESPONSE_FLAGS if entity.startswith(prefix)), None)


def flag_for(entity: str) -> str:
    """`: pass it with --cloud` for a response that belongs to an import flag."""
    flag = import_flag(entity)
    return f": pass it with {flag}" if flag else ""
