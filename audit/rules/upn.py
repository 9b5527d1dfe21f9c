"""What Entra will make of a UPN: its suffix, whether any tenant can ever verify it, the
mailNickname and fallback UPN it predicts (entra-docs plan-connect-userprincipalname.md)."""

from __future__ import annotations

import polars as pl

from audit import tlds
from audit.rules.idfix_values import NON_ASCII, UPN_INVALID


def upn_suffix(column: str | pl.Expr = "upn") -> pl.Expr:
    """Lower-case part after the last '@' (null without one)."""
    value = pl.col(column) if isinstance(column, str) else column
    return value.str.extract(r"@([^@]*)$").str.strip_chars().str.to_lowercase()


def suffix_never_verifiable(column: str = "upn") -> pl.Expr:
    """The UPN suffix can never be a verified domain of any tenant: a single label, or a TLD
    IANA has not delegated (.local, .lan, .corp, .lab...). Entra then gives the user
    <mailNickname>@<initial domain> whatever the tenant's domains are."""
    value = pl.col(column)
    has_suffix = value.str.contains(r"@[^@\s]")
    return (has_suffix & ~value.str.contains(tlds.delegated_suffix_pattern())).fill_null(False)


def non_blank(expr: pl.Expr) -> pl.Expr:
    """The stripped text, null when blank."""
    return pl.when(expr.str.strip_chars() != "").then(expr.str.strip_chars())


def local_part(column: str) -> pl.Expr:
    """Part before the first '@' (the whole value when there is none), null when blank."""
    return non_blank(pl.col(column).str.replace(r"@.*$", ""))


def predicted_mail_nickname() -> tuple[pl.Expr, pl.Expr]:
    """(nickname, where it came from) the way Entra derives mailNickname on first sync: the
    first non-empty of mailNickname, the primary SMTP's prefix, mail's, the UPN's, a secondary
    smtp's (entra-docs plan-connect-userprincipalname.md)."""
    secondary = (
        pl.col("proxy_addresses")
        .list.eval(pl.element().filter(pl.element().str.starts_with("smtp:")).str.slice(5))
        .list.first()
    )
    candidates = [
        ("mailNickname", non_blank(pl.col("mail_nickname"))),
        ("primary SMTP", local_part("primary_smtp")),
        ("mail", local_part("mail")),
        ("userPrincipalName", local_part("upn")),
        ("secondary smtp", non_blank(secondary.str.replace(r"@.*$", ""))),
    ]
    nickname = pl.coalesce([expr for _, expr in candidates])
    source: pl.Expr = pl.lit(None, dtype=pl.String)
    for name, expr in reversed(candidates):
        source = pl.when(expr.is_not_null()).then(pl.lit(name)).otherwise(source)
    return nickname, source


_INITIAL_DOMAIN_RE = r"(?i)@([a-z0-9-]+\.onmicrosoft\.com)$"


def inferred_initial_domain(cloud: pl.DataFrame) -> str | None:
    """The tenant's <name>.onmicrosoft.com as its cloud users show it (break-glass admins,
    guests' #EXT# UPNs, fallback UPNs): the most frequent one, when no domains were exported.
    <name>.mail.onmicrosoft.com (the routing domain) is not one: the regex allows one label."""
    found = (
        cloud.select(pl.col("upn").str.extract(_INITIAL_DOMAIN_RE).str.to_lowercase().alias("d"))
        .drop_nulls()
        .group_by("d")
        .len()
        .sort(["len", "d"], descending=[True, False])
    )
    return str(found.item(0, "d")) if found.height else None


def predicted_cloud_upn(
    verified: list[str], domains_known: bool, initial: str | None
) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(cloud UPN a new user gets, suffix not verified, UPN refused) over AD rows: the on-prem
    UPN, or <mailNickname>@<initial domain> when its suffix is not a verified domain (or never
    can be) or it has characters Entra refuses (plan-connect-userprincipalname.md)."""
    suffix = upn_suffix("upn")
    not_verified = suffix_never_verifiable("upn") | (
        pl.lit(domains_known) & ~suffix.is_in(verified).fill_null(False)
    )
    refused = pl.col("upn").str.contains(f"{UPN_INVALID}|{NON_ASCII}").fill_null(False)
    nickname, _ = predicted_mail_nickname()
    predicted = (
        pl.when(not_verified | refused)
        .then(pl.format("{}@{}", nickname, pl.lit(initial or "<initial domain>")))
        .otherwise(pl.col("upn"))
    )
    return predicted, not_verified, refused
