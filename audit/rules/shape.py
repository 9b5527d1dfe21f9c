"""Shaping finding rows: the sentence, the evidence JSON and the AD columns every rule writes
the same way."""

from __future__ import annotations

import polars as pl

# In-scope AD users carry an integer row key (RuleContext.scoped_ad) so the wide joins move
# integers, not strings; the few finding rows get their AD columns back at the end.
AD_KEY = "_ad"


def noun(count: pl.Expr, singular: str, plural: str | None = None) -> pl.Expr:
    """ "role" or "roles" by `count` (no "role(s)" in what people read)."""
    return pl.when(count == 1).then(pl.lit(singular)).otherwise(pl.lit(plural or singular + "s"))


def say(template: str, *parts: pl.Expr | str) -> pl.Expr:
    """Fill each ``{}`` of the template; a missing part reads "?" instead of nulling the text.

    Other braces are literal (JSON bodies in PowerShell hints), unlike pl.format.
    """
    pieces = template.split("{}")
    if len(pieces) != len(parts) + 1:
        raise ValueError(f"template has {len(pieces) - 1} slots for {len(parts)} parts")
    exprs: list[pl.Expr] = [pl.lit(pieces[0])]
    for part, text in zip(parts, pieces[1:], strict=True):
        expr = pl.col(part) if isinstance(part, str) else part
        exprs += [expr.cast(pl.String).fill_null("?"), pl.lit(text)]
    return pl.concat_str(exprs)


def evidence(**fields: pl.Expr) -> pl.Expr:
    """JSON text of the named fields, for the findings' evidence column."""
    return pl.struct([e.alias(k) for k, e in fields.items()]).struct.json_encode().alias("evidence")


def ad_output(frame: pl.DataFrame) -> list[pl.Expr]:
    """The ad_* finding columns from a frame carrying source, dn, object_guid, upn."""
    return [
        pl.col("source").alias("ad_source"),
        pl.col("dn").alias("ad_dn"),
        pl.col("object_guid").alias("ad_object_guid"),
        pl.col("upn").alias("ad_upn"),
    ]


def who(dn: str = "dn", upn: str = "upn") -> pl.Expr:
    """`CN=...,DC=... (alice@contoso.com)`: how a detail sentence names an AD user."""
    return say("{} ({})", dn, upn)


def non_empty(column: str) -> pl.Expr:
    return pl.col(column).list.len().fill_null(0) > 0
