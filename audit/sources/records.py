"""The record every AD reader yields, whatever it reads (an LDIF or CSV file, an LDAP page):
a DN and its attribute values by lower-case name, binary attributes as bytes; and how the
ad_users rows they are mapped to (audit.sources.ad) become frame chunks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import polars as pl

from audit.model import AD_USERS_SCHEMA, conform

Value = str | bytes
Attrs = dict[str, list[Value]]

# Attributes whose values are bytes, never text: a text decode would change them.
BINARY_ATTRIBUTES = frozenset({"objectguid", "objectsid", "ms-ds-consistencyguid"})


class Record(NamedTuple):
    line: int  # where it starts in its source: a file's line, a live source's page
    dn: str
    attrs: Attrs


def text_of(raw: bytes) -> str:
    """ldapsearch base64-encodes UTF-8 text that is not plain ASCII; ldifde may write cp1252."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


# Rows are turned into a frame chunk every CHUNK_ROWS: a Python tuple row costs ~3x its share
# of the frame, so a large read would otherwise peak at several times the frame it makes.
# 1024 rather than 4096: the pending tuples are most of a 10k-user read's peak beside its frame
# (2.7x against 3.2x, benchmarks/RESULTS.md), and 50 chunks for 50k users cost no time.
CHUNK_ROWS = 1024


def value_text(value: Value) -> str:
    """A value as text: text as it is, bytes decoded as text_of does."""
    return value if isinstance(value, str) else text_of(value)


def first_text(attrs: Attrs, name: str) -> str | None:
    """The first value of an attribute, as text; None when it has none."""
    values = attrs.get(name)
    return value_text(values[0]) if values else None


def rows_frame(rows: Sequence[Any]) -> pl.DataFrame:
    """Tuples in AD_USERS_SCHEMA order -> a conformed ad_users frame."""
    columns = list(zip(*rows, strict=True))
    data: dict[str, Any] = {name: columns[i] for i, name in enumerate(AD_USERS_SCHEMA)}
    proxies = data.pop("proxy_addresses")
    schema = {k: v for k, v in AD_USERS_SCHEMA.items() if k in data}
    frame = pl.DataFrame(data, schema=schema).with_columns(split_lists("proxy_addresses", proxies))
    return conform(frame, AD_USERS_SCHEMA)


def joined_list(values: Sequence[str]) -> str:
    """A list kept as one NUL-joined string until the frame is built: far faster in Polars than
    converting Python lists one by one, and rows of plain strings cost the GC nothing.
    Inputs with NUL are rejected, so only a decoded base64 value could hold one."""
    joined = "\x00".join(values)
    if values and joined.count("\x00") != len(values) - 1:
        joined = "\x00".join(v.replace("\x00", "\ufffd") for v in values)
    return joined


def split_lists(name: str, joined: Sequence[str]) -> pl.Series:
    series = pl.Series(name, joined, dtype=pl.String())
    return pl.select(
        pl.when(series == "")
        .then(pl.lit([], dtype=pl.List(pl.String())))
        .otherwise(series.str.split("\x00"))
        .alias(name)
    ).to_series()
