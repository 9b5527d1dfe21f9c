"""Graph user pages in bulk: the `value` arrays of a page chain parsed by Polars with an explicit
schema and mapped to cloud_users columns as expressions (issue 11 item 8).

The exact path (:mod:`audit.sources.graph_pages` + :mod:`audit.sources.entra`) stays the
definition: this one must give the same frames, reports and errors, so it only takes pages it
can be sure of and returns None for anything else (the caller then reads the files the exact
way). It takes a file of Graph response pages, one per line or one pretty-printed page, in
UTF-8 without BOM, holding only users, whose property names are Graph's own camelCase (the
exact path matches names without case; Polars does not), whose values have the types Graph
gives them, and whose dates are Graph's `yyyy-mm-ddThh:mm:ss[.ffffff]Z`. Provisioning errors are
read too (a list of {category, occurredDateTime, propertyCausingError, value}, entries may be
null): each list is found whole by the key regex below and checked by Python's json (it is rare,
1 user in 1,000 in a large tenant), so the bulk path takes the lists it reads the same way.

What Polars would read differently from Python's json is checked on the text first: every key
is found by a regex (`{` or `,`, a plain quoted name, `:`, the value's first character), which
in valid JSON matches real keys only, so the keys' spelling, duplicates (json keeps the last,
Polars the first), the objects' count and the values' JSON types are known without decoding.
Escaped letters (a key could be spelled `\\u006dail`) and escaped surrogates (Polars reads
`\\ud800` as NUL) send the file to the exact path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from audit.errors import InputError
from audit.model import CLOUD_USERS_SCHEMA, PROVISIONING_ERROR, UTC_DATETIME, conform
from audit.sources.detect import HEAD_BYTES, Notes, encoding_from_head, format_from_head
from audit.sources.entra import BOOL_PROPERTIES, TEXT_PROPERTIES, TIME_PROPERTIES
from audit.sources.graph_pages import Page

# Graph's spelling of every property the exact path reads: entra's one table, plus the id
TEXT = {"id": "id", **TEXT_PROPERTIES}
BOOL = BOOL_PROPERTIES
TIME = TIME_PROPERTIES
PROXIES = "proxyAddresses"
ERRORS = "onPremisesProvisioningErrors"
ODATA_TYPE = "@odata.type"
# A /users/delta round's last page ends with @odata.deltaLink instead of a nextLink, and a user
# removed since the last round is {"id": ..., "@removed": {"reason": ...}} (delta-query-overview,
# "Resource representation"): counted and left out, as the exact path does (entra.object_kind);
# a removal in any other form sends the pages to the exact path.
ENVELOPE = ("@odata.context", "@odata.nextLink", "@odata.deltaLink", "value")
REMOVED = "@removed"
REMOVAL_KEYS = frozenset({ODATA_TYPE, "id", REMOVED})  # a removed user's own keys, @removed last
# The JSON types each may have, by the first character of its value (n = null).
_FIRST_CHARS = {
    **{name: '"n' for name in (*TEXT, *TIME, ODATA_TYPE, *ENVELOPE[:3])},
    **{name: "tfn" for name in BOOL},
    PROXIES: "[n",
    ERRORS: "[n",
    "value": "[",
    REMOVED: "{",
}
CANONICAL = frozenset(_FIRST_CHARS)
_CANONICAL_LOWER = {name.lower() for name in CANONICAL}
# Names that mean something the bulk path does not do: @odata.count.
_REFUSED_LOWER = frozenset({"@odata.count"})
# An onPremisesProvisioningError's properties (resources/onpremisesprovisioningerror), in
# Graph's spelling -> their PROVISIONING_ERROR field.
ERROR_FIELDS = {
    "category": "category",
    "occurredDateTime": "occurred",
    "propertyCausingError": "property",
    "value": "value",
}

_USER_SCHEMA = pl.Struct(
    {
        **{name: pl.String() for name in (*TEXT, *TIME, ODATA_TYPE)},
        **{name: pl.Boolean() for name in BOOL},
        PROXIES: pl.List(pl.String()),
        ERRORS: pl.List(pl.Struct({name: pl.String() for name in ERROR_FIELDS})),
        REMOVED: pl.Struct({"reason": pl.String()}),
    }
)
_PAGE_SCHEMA = {
    "@odata.context": pl.String(),
    "@odata.nextLink": pl.String(),
    "@odata.deltaLink": pl.String(),
    "value": pl.List(_USER_SCHEMA),
}

# A provisioning errors list whole, when no array is nested in it: its objects' keys are not
# seen as keys of objects of their own, and the list is checked by json (_errors_usable).
_ERRORS_LIST = r'[{,]\s*"onPremisesProvisioningErrors"\s*:\s*\[(?:[^\[\]"]|"(?:[^"\\]|\\.)*")*\]'
# A key and the first character of its value, unless that is `{`: the object's own first key is
# the next match (a nested object's `{` must be seen, it is counted). The regex engine takes the
# first alternative that matches at a position: a provisioning errors list is one token.
_KEY = _ERRORS_LIST + r'|[{,]\s*"[^"\\]*"\s*:\s*[^{\s]|[{,]\s*"[^"\\]*"\s*:'
_ERRORS_TOKEN = re.compile(_ERRORS_LIST)
# Anything here sends the file to the exact path: a proxyAddresses element that is not a string
# or null, an empty object (it hides from _KEY).
_DOUBT = re.compile(
    r'"proxyAddresses"\s*:\s*\[\s*(?:(?:"(?:[^"\\]|\\.)*"|null)\s*,\s*)*[^"\s\]n]'
    r"|\{\s*\}"
    # escaped letters (a key spelled \u006dail), escaped surrogates, raw control characters
    r"|\\u(?:00[2-7][0-9a-fA-F]|[dD][89a-fA-F])|[\x00-\x08\x0b\x0c\x0e-\x1f]"
).pattern
# After the value array only envelope keys with plain string values may follow.
_TAIL = re.compile(
    r'(?:\}\s*\]|"value"\s*:\s*\[\s*\])\s*(?:,\s*"@odata\.(?:context|nextLink|deltaLink)"\s*:\s*(?:"[^"\\]*"|null)\s*)*'
    r"\}\s*$"
).pattern
# Graph's form; year 0, hour 24 and second 60 are refused here (Polars would read them).
_TIME_TEXT = (
    r"^(?:000[1-9]|00[1-9]\d|0[1-9]\d\d|[1-9]\d{3})-\d\d-\d\d"
    r"T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,6})?Z$"
)
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%.fZ"


@dataclass
class BulkPage(Page):
    """A page whose users are a frame (the Graph properties, canonical names) and whose objects
    are not kept as dicts. `keys` are the property names its users carry, lower-cased."""

    users: pl.DataFrame | None = None
    keys: frozenset[str] = frozenset()
    removals: int = 0  # users removed in a delta round: counted, not in `users`

    @property
    def object_count(self) -> int:
        return self.removals + (0 if self.users is None else self.users.height)

    @property
    def removed(self) -> int:
        return self.removals

    def has_key(self, name: str) -> bool:
        return name in self.keys


# Files are read this many bytes at a time (whole files): the raw pages of a batch are parsed,
# checked and mapped to cloud_users columns, then dropped, so the import never holds every
# page's Graph-named frame beside the mapped one (benchmarks/RESULTS.md, "Memory"); and the
# per-call costs of the checks are paid once a batch, not once a file of one page.
BATCH_BYTES = 4 * 1024 * 1024


def read_bulk_files(paths: Sequence[Path]) -> list[BulkPage] | None:
    """The pages of every file in order, their users already cloud_users columns (the schema's
    own names; ``deleted_at`` as the page gave it), or None when the exact path must read any of
    them."""
    found: list[BulkPage] = []
    batch: list[tuple[Path, int, bytes]] = []
    size = 0
    for number, path in enumerate(paths, start=1):
        raw = _file_bytes(path)
        docs = _documents(raw) if raw is not None else []
        if raw is None or not docs:
            return None
        size += len(raw)
        del raw  # the pages hold their own bytes (or the same object, for one page)
        batch += [(path, line, text) for line, text in docs]
        if size >= BATCH_BYTES or number == len(paths):
            try:
                pages = _pages(batch)
            except (pl.exceptions.PolarsError, ValueError):
                return None
            if pages is None:
                return None
            found += pages
            batch, size = [], 0
    return found


def _file_bytes(path: Path) -> bytes | None:
    """The file's bytes when it may be UTF-8 JSON without a BOM."""
    try:
        with path.open("rb") as handle:
            head = handle.read(HEAD_BYTES)
            if encoding_from_head(path, head) != "utf-8" or head.startswith(b"\xef\xbb\xbf"):
                return None
            if format_from_head(path, head, "utf-8", ("json",)) != "json":
                return None
            return head + handle.read()
    except (OSError, InputError):
        return None


def _documents(raw: bytes) -> list[tuple[int, bytes]]:
    """(line, text) of each page: one per line, or the whole file as one pretty-printed page."""
    lines = raw.split(b"\n")
    numbered = [(n, line) for n, line in enumerate(lines, start=1) if line.strip()]
    if not numbered or not numbered[0][1].lstrip().startswith(b"{"):
        return []
    if numbered[0][1].rstrip().endswith(b"}"):
        return numbered
    return [(numbered[0][0], raw)]


def _pages(docs: list[tuple[Path, int, bytes]]) -> list[BulkPage] | None:
    texts = pl.Series("text", [text for *_, text in docs], dtype=pl.Binary).cast(pl.String)
    places = [(path, line) for path, line, _ in docs]
    docs.clear()  # the pages are `texts` now: free their bytes
    if texts.str.contains(_DOUBT).any() or not texts.str.slice(-4096).str.contains(_TAIL).all():
        return None
    keys: list[frozenset[str]] = []
    objects: list[int] = []
    removals: list[int] = []
    parts: list[pl.DataFrame] = []
    for first in range(0, len(texts), _BATCH):  # a few pages at a time: bounded memory
        some = texts.slice(first, _BATCH)
        found = _keys(some)
        if found is None:
            return None
        keys += found[0]
        objects += found[1]
        removals += found[2]
        parts.append(some.str.json_decode(pl.Struct(_PAGE_SCHEMA)).struct.unnest())
    del texts  # the text is no longer needed: free it before the users are mapped
    envelopes = pl.concat(parts)
    del parts
    if envelopes.height != len(places) or envelopes["value"].is_null().any():
        return None
    counts = envelopes["value"].list.len().to_list()
    # one object per user and the envelope, and the one nested in each @removed; any other is
    # a nested object, or an object Polars did not see
    if objects != [n + 1 + r for n, r in zip(counts, removals, strict=True)]:
        return None
    raw = envelopes.select(
        pl.int_range(pl.len()).repeat_by(pl.col("value").list.len()).alias("page"),
        pl.col("value"),
    ).explode("page", "value", empty_as_null=False)
    raw = raw.filter(pl.col("page").is_not_null()).unnest("value")
    gone = raw[REMOVED].is_not_null()
    found_removals = [0] * len(counts)
    for page, removed in raw.filter(gone).group_by("page").len().iter_rows():
        found_removals[page] = removed
    if found_removals != removals:
        return None
    counts = [n - r for n, r in zip(counts, removals, strict=True)]
    users = _mapped(raw.filter(~gone).drop("page", REMOVED))
    if users is None:
        return None
    pages = []
    offset = 0
    for (path, line), count, removed, page_keys, context, next_link, delta_link in zip(
        places,
        counts,
        removals,
        keys,
        envelopes["@odata.context"].to_list(),
        envelopes["@odata.nextLink"].to_list(),
        envelopes["@odata.deltaLink"].to_list(),
        strict=True,
    ):
        pages.append(
            BulkPage(
                items=[],
                context=context or "",
                next_link=next_link or None,
                line=line,
                path=path,
                users=users.slice(offset, count),
                keys=page_keys,
                delta_link=delta_link or None,
                removals=removed,
            )
        )
        offset += count
    return pages


_BATCH = 8
_WS = " \t\r\n"


def _token_parts(token: str) -> tuple[bool, str, str] | None:
    """`,"mail":"` -> (starts an object, name, first character of the value); None for a
    provisioning errors list the bulk path would not read as the exact path does."""
    if _ERRORS_TOKEN.fullmatch(token):
        if not _errors_usable(token[token.index(":") + 1 :]):
            return None
        return token.startswith("{"), ERRORS, "["
    body = token.rstrip(_WS)
    first = "{" if body.endswith(":") else body[-1]
    name = (body if body.endswith(":") else body[:-1]).rstrip(_WS)[:-1].rstrip(_WS)
    name = name[1:].lstrip(_WS)[1:-1]
    if name == ERRORS and first == "[":  # a list with an array in it: not _ERRORS_LIST
        return None
    return token.startswith("{"), name, first


def _errors_usable(text: str) -> bool:
    """Whether Polars reads this onPremisesProvisioningErrors list as json does: entries null
    or objects with Graph's property names only, each once (json keeps the last of a repeated
    key, Polars the first), whose values are strings or null (Polars would write `true` where
    the exact path writes `True`)."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        names = [name for name, _ in items]
        if len(set(names)) != len(names) or not set(names) <= ERROR_FIELDS.keys():
            raise ValueError("a property the bulk path does not read alike")
        if any(value is not None and not isinstance(value, str) for _, value in items):
            raise ValueError("a value that is not a string")
        return dict(items)

    try:
        value = json.loads(text, object_pairs_hook=pairs)
    except ValueError:
        return False
    return isinstance(value, list) and all(item is None or isinstance(item, dict) for item in value)


def _keys(texts: pl.Series) -> tuple[list[frozenset[str]], list[int], list[int]] | None:
    """Each page's user property names, lower-cased, its number of objects (the envelope, its
    users and the object in each @removed) and of removed users, or None when a key is in doubt.

    Keys repeat: a page of 999 users has a few dozen distinct tokens (`,"mail":"`), so each
    distinct token is read once in Python and the tokens become codes into that list."""
    found = pl.DataFrame({"token": texts.str.extract_all(_KEY), "page": range(len(texts))}).explode(
        "token", empty_as_null=False
    )
    distinct = found["token"].unique().to_list()
    maybe = [_token_parts(token) for token in distinct]
    if any(part is None for part in maybe):
        return None
    parts = [part for part in maybe if part is not None]
    names = sorted({name for _, name, _ in parts})
    for name in names:
        if name.lower() in _REFUSED_LOWER or (
            name.lower() in _CANONICAL_LOWER and name not in CANONICAL
        ):
            return None
    if any(name in CANONICAL and first not in _FIRST_CHARS[name] for _, name, first in parts):
        return None
    name_ids = {name: i for i, name in enumerate(names)}
    envelope_ids = [name_ids.get(name, -1) for name in ENVELOPE]
    code = found["token"].cast(pl.Enum(distinct)).to_physical()
    tokens = pl.DataFrame(
        {
            "page": found["page"],
            "start": pl.Series([start for start, _, _ in parts], dtype=pl.Boolean).gather(code),
            "name": pl.Series([name_ids[name] for _, name, _ in parts], dtype=pl.Int64).gather(
                code
            ),
        }
    ).with_columns(obj=pl.col("start").cum_sum())
    removed_id = name_ids.get(REMOVED, -1)
    reason_first = {first for _, name, first in parts if name == "reason"}
    if removed_id >= 0 and not _removals_usable(
        tokens.filter(~pl.col("name").is_in(envelope_ids)), name_ids, reason_first <= {'"'}
    ):
        return None
    pages = tokens.group_by("page", maintain_order=True).agg(
        pl.col("start").first().alias("first_start"),
        pl.col("start").sum().alias("starts"),
        (pl.col("name") == removed_id).sum().alias("removals"),
        *[
            (pl.col("name") == i).sum().alias(name)
            for i, name in zip(envelope_ids, ENVELOPE, strict=True)
        ],
    )
    if (
        pages["page"].to_list() != list(range(len(texts)))
        or not pages["first_start"].all()
        or (pages["value"] != 1).any()
        or (pages["@odata.context"] > 1).any()
        or (pages["@odata.nextLink"] > 1).any()
        or (pages["@odata.deltaLink"] > 1).any()
    ):
        return None
    envelope_obj = pl.when(pl.col("page").is_first_distinct()).then(pl.col("obj")).forward_fill()
    users = tokens.with_columns(in_envelope=pl.col("obj") == envelope_obj).filter(
        ~pl.col("name").is_in(envelope_ids)
    )
    key = pl.col("obj").cast(pl.Int64) * (len(names) + 1) + pl.col("name")
    if users.select(pl.col("in_envelope").any() | (key.n_unique() != pl.len())).item():
        return None
    by_page = users.group_by("page").agg(pl.col("name").unique())
    found_names = {
        page: frozenset(names[i].lower() for i in ids) for page, ids in by_page.iter_rows()
    }
    return (
        [found_names.get(page, frozenset()) for page in range(len(texts))],
        pages["starts"].to_list(),
        pages["removals"].to_list(),
    )


def _removals_usable(tokens: pl.DataFrame, name_ids: dict[str, int], reason_text: bool) -> bool:
    """Each removal as Graph writes it: a user object whose keys are id (and @odata.type), then
    @removed, whose value is an object with the one key reason, a string. A key after the
    nested object counts as the nested object's (`obj` grows with each `{` only), so a
    nested object of exactly one key also means @removed came last. `tokens`: the users'
    keys (the envelope's after the value array would count as the last object's)."""
    marks = tokens.filter(pl.col("name") == name_ids[REMOVED])["obj"]
    own = tokens.filter(pl.col("obj").is_in(marks.implode()))
    nested = tokens.filter(pl.col("obj").is_in((marks + 1).implode()))
    allowed = [name_ids[name] for name in REMOVAL_KEYS if name in name_ids]
    return bool(
        reason_text
        and own["name"].is_in(allowed).all()
        and nested.height == marks.len()
        and (nested["name"] == name_ids.get("reason", -1)).all()
        and nested["start"].all()
    )


def bulk_ids_usable(pages: list[BulkPage], taken: pl.Series | None) -> bool:
    """Every user has an id, and no id is given twice or already taken by an earlier input: a
    repeat needs the exact path's notes and messages."""
    columns = [p.users["id"] for p in pages if p.users is not None and p.users.height]
    if not columns:
        return True
    ids = pl.concat(columns)
    if ids.is_null().any() or (ids == "").any() or ids.is_duplicated().any():
        return False
    return taken is None or not ids.is_in(taken.implode()).any()


def users_frame(
    pages: list[BulkPage], notes: Notes, *, deleted: bool, taken_at: datetime
) -> pl.DataFrame:
    """The users of one export as cloud_users rows (schema order). The pages' parts stay chunks
    of the frame: a rechunk would copy every user once more."""
    frames = [p.users for p in pages if p.users is not None and p.users.height]
    if not frames:
        return conform(pl.DataFrame(), CLOUD_USERS_SCHEMA).clear()
    frame = pl.concat(frames, how="vertical", rechunk=False)
    without = frame["deleted_at"].null_count()
    if deleted and without:
        notes.add("deleted users without deletedDateTime: the snapshot time is used", without)
        frame = frame.with_columns(pl.col("deleted_at").fill_null(pl.lit(taken_at, UTC_DATETIME)))
    elif not deleted and frame.height - without:
        notes.add(
            "users with deletedDateTime in an active-users file: kept as active",
            frame.height - without,
        )
        frame = frame.with_columns(pl.lit(None, UTC_DATETIME).alias("deleted_at"))
    return conform(frame, CLOUD_USERS_SCHEMA)


def _mapped(raw: pl.DataFrame) -> pl.DataFrame | None:
    """Users as Graph named them -> cloud_users columns, or None when a value needs the exact
    path (an object that is not a user, a date/time it would read differently)."""
    odata_type = pl.col(ODATA_TYPE)
    if not raw.select(
        (
            odata_type.is_null()
            | (odata_type == "")
            | (odata_type.str.to_lowercase() == "#microsoft.graph.user")
        ).all()
    ).item():
        return None
    occurred = raw.select(pl.col(ERRORS).explode().struct.field("occurredDateTime")).to_series()
    for text in [*(raw[prop] for prop in TIME), occurred]:
        if not (text.is_null() | (text == "") | text.str.contains(_TIME_TEXT)).all():
            return None
    if _times(occurred).null_count() != (occurred.is_null() | (occurred == "")).sum():
        return None  # a date/time the exact path would note as unreadable
    exprs = [
        pl.when(pl.col(name) == "").then(None).otherwise(pl.col(name)).alias(column)
        for name, column in TEXT.items()
    ]
    exprs += [pl.col(name).alias(column) for name, column in BOOL.items()]
    exprs += [_time(pl.col(name)).alias(column) for name, column in TIME.items()]
    proxies = pl.col(PROXIES).list.drop_nulls()
    exprs += [
        proxies.alias("proxy_addresses"),
        proxies.list.eval(pl.element().filter(pl.element().str.starts_with("SMTP:")))
        .list.first()
        .str.slice(5)
        .alias("primary_smtp"),
        _provisioning_errors().alias("provisioning_errors"),
    ]
    frame = raw.select(exprs)
    for prop, column in TIME.items():  # a value the exact path would note as unreadable
        empty = raw.select((pl.col(prop).is_null() | (pl.col(prop) == "")).sum()).item()
        if frame[column].null_count() != empty:
            return None
    return frame


def _time(text: pl.Expr) -> pl.Expr:
    return text.str.to_datetime(_TIME_FORMAT, time_unit="us", time_zone="UTC", strict=False)


def _times(text: pl.Series) -> pl.Series:
    return text.to_frame().select(_time(pl.col(text.name))).to_series()


def _provisioning_errors() -> pl.Expr:
    """onPremisesProvisioningErrors as entra.py's _provisioning_errors reads them: null entries
    left out, empty text as null, no list as an empty one."""

    def value(name: str) -> pl.Expr:
        field = pl.element().struct.field(name)
        if name == "occurredDateTime":
            return _time(field)
        return pl.when(field == "").then(None).otherwise(field)

    entry = pl.struct(*(value(name).alias(column) for name, column in ERROR_FIELDS.items()))
    return (
        pl.col(ERRORS)
        .list.drop_nulls()
        .list.eval(entry)
        .fill_null(pl.lit([], dtype=pl.List(PROVISIONING_ERROR)))
    )


def where_of(pages: list[BulkPage]) -> list[tuple[pl.Series, str, int]]:
    """(ids, path, line) of every page with users, for the exact path's repeat checks."""
    return [
        (p.users.get_column("id"), str(p.path), p.line)
        for p in pages
        if p.users is not None and p.users.height
    ]
