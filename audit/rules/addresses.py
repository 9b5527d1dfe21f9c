"""The address space Entra keeps unique: userPrincipalName, mail, smtp proxyAddresses and
targetAddress of users, groups and contacts (tshoot-connect-sync-errors.md, duplicate-attribute
resiliency). Keys, collisions between AD values and cloud owners, and who those owners are.
"""

from __future__ import annotations

import polars as pl

from audit.rules.shape import AD_KEY


def lower(column: str) -> pl.Expr:
    """Case-insensitive key: Entra compares UPNs and SMTP addresses without case."""
    return pl.col(column).str.strip_chars().str.to_lowercase()


def smtp_addresses(frame: pl.DataFrame, id_column: str) -> pl.DataFrame:
    """(id, address, is_primary) for every smtp: proxy value, address lower-cased."""
    return (
        frame.select(pl.col(id_column), pl.col("proxy_addresses"))
        .explode("proxy_addresses")
        .filter(pl.col("proxy_addresses").str.to_lowercase().str.starts_with("smtp:"))
        .select(
            pl.col(id_column),
            pl.col("proxy_addresses")
            .str.slice(5)
            .str.strip_chars()
            .str.to_lowercase()
            .alias("address"),
            pl.col("proxy_addresses").str.starts_with("SMTP:").alias("is_primary"),
        )
    )


def object_addresses(objects: pl.DataFrame) -> pl.DataFrame:
    """(address, owner_id, owner_type, owner_name, owner_attribute) for groups and contacts."""
    mails = objects.select(
        lower("mail").alias("address"),
        pl.col("id").alias("owner_id"),
        pl.lit("mail").alias("owner_attribute"),
    )
    proxies = smtp_addresses(objects, "id").select(
        "address", pl.col("id").alias("owner_id"), pl.lit("proxyAddresses").alias("owner_attribute")
    )
    names = objects.select(
        pl.col("id").alias("owner_id"),
        pl.col("object_type").alias("owner_type"),
        pl.coalesce("mail", "display_name").alias("owner_name"),
    )
    return (
        pl.concat([mails, proxies])
        .filter(pl.col("address").is_not_null())
        .join(names, on="owner_id")
        .select("address", "owner_id", "owner_type", "owner_name", "owner_attribute")
    )


def address_keys(frame: pl.DataFrame, id_column: str, single: tuple[str, ...]) -> pl.LazyFrame:
    """(id, address) for the single-valued address columns and every smtp proxy, lower-cased.

    A value repeated in several attributes of the same object (UPN = mail = primary SMTP, the
    usual case) appears once, by comparing within the row rather than hashing: the wide joins
    stay about one row per address.
    """
    keys = [f"_k{i}" for i in range(len(single))]
    base = frame.lazy().select(
        pl.col(id_column), *[lower(c).alias(k) for c, k in zip(single, keys, strict=True)]
    )

    def fresh(expr: pl.Expr, before: list[str]) -> pl.Expr:
        ok = expr.is_not_null() & (expr != "")
        for k in before:
            ok = ok & (expr != pl.col(k)).fill_null(True)
        return ok

    singles = [
        base.filter(fresh(pl.col(k), keys[:i])).select(id_column, pl.col(k).alias("address"))
        for i, k in enumerate(keys)
    ]
    proxy = pl.col("proxy_addresses")
    proxies = (
        frame.lazy()
        .select(
            pl.col(id_column),
            *[lower(c).alias(k) for c, k in zip(single, keys, strict=True)],
            proxy,
        )
        .explode("proxy_addresses")
        .filter(proxy.str.slice(0, 5).str.to_lowercase() == "smtp:")
        .with_columns(address=proxy.str.slice(5).str.strip_chars().str.to_lowercase())
        .filter(fresh(pl.col("address"), keys))
        .select(id_column, "address")
    )
    return pl.concat([*singles, proxies], how="vertical")


def cloud_address_keys(active: pl.DataFrame, objects: pl.DataFrame) -> pl.DataFrame:
    """(id, address): UPN, mail and smtp proxies of active cloud users, groups and contacts,
    lower-cased: the addresses Entra already has."""
    return pl.concat(
        [
            address_keys(active, "id", ("upn", "mail")),
            address_keys(objects, "id", ("mail",)),
        ],
        how="vertical",
    ).collect()


def address_collisions(
    ad_keys: pl.DataFrame, links: pl.DataFrame, cloud_keys: pl.DataFrame
) -> pl.DataFrame:
    """(_ad, address, holder_id, owner_id): an in-scope AD user's UPN/mail/smtp value that an
    active cloud user, group or contact other than its anchor holder owns (as UPN, mail or smtp
    proxy). One uniqueness space: Entra refuses an export whose value any other object owns in
    any of these attributes (AttributeValueMustBeUnique)."""
    owners = cloud_keys.lazy().rename({"id": "owner_id"})
    # Nearly every AD address is owned by the AD user's own anchor holder. The join and that
    # first filter run on narrow frames of 64-bit hashes (address, holder id, owner id); only
    # the few surviving pairs fetch their strings, which are then compared exactly so a hash
    # collision can never produce a finding. Joining the string frames directly held ~0.6 GB
    # more at 1M users.
    claims = (
        ad_keys.lazy()
        .join(links.lazy().select(AD_KEY, "holder_id"), on=AD_KEY, how="left")
        .select(AD_KEY, "address", "holder_id")
        .collect()
    )
    owner_keys = owners.collect()
    survivors = (
        claims.lazy()
        .select(
            pl.int_range(pl.len(), dtype=pl.UInt32).alias("_c"),
            pl.col("address").hash().alias("_h"),
            pl.col("holder_id").hash().alias("_holder_h"),
            pl.col("holder_id").is_null().alias("_unheld"),
        )
        .join(
            owner_keys.lazy().select(
                pl.int_range(pl.len(), dtype=pl.UInt32).alias("_o"),
                pl.col("address").hash().alias("_h"),
                pl.col("owner_id").hash().alias("_owner_h"),
            ),
            on="_h",
        )
        .filter(pl.col("_unheld") | (pl.col("_owner_h") != pl.col("_holder_h")))
        .select("_c", "_o")
        .collect()
    )
    pairs = pl.concat(
        [
            claims[survivors["_c"]],
            owner_keys[survivors["_o"]].rename({"address": "address_owner"}),
        ],
        how="horizontal",
    )
    return (
        pairs.filter(
            (pl.col("address") == pl.col("address_owner"))
            & (pl.col("holder_id").is_null() | (pl.col("owner_id") != pl.col("holder_id")))
        )
        .select(AD_KEY, "address", "holder_id", "owner_id")
        .unique([AD_KEY, "address", "owner_id"])
    )


def _attributes_holding(checks: list[tuple[str, pl.Expr]]) -> pl.Expr:
    return pl.concat_list(
        [pl.when(hit.fill_null(False)).then(pl.lit(name)) for name, hit in checks]
    ).list.drop_nulls()


def _proxy_hit() -> pl.Expr:
    lowered = pl.col("proxy_addresses").list.eval(pl.element().str.strip_chars().str.to_lowercase())
    return lowered.list.contains(pl.lit("smtp:") + pl.col("address"))


def target_smtp(column: str = "target_address") -> pl.Expr:
    """The address of an `SMTP:` targetAddress (null for X400 and other kinds): it is in the
    uniqueness space of UPN, mail and proxyAddresses (Microsoft's prep doc: "must be unique
    within the directory")."""
    value = pl.col(column).str.strip_chars()
    return pl.when(value.str.to_lowercase().str.starts_with("smtp:")).then(value.str.slice(5))


def ad_attributes(rows: pl.DataFrame, scoped_ad: pl.DataFrame) -> pl.DataFrame:
    """Add ``attribute`` (list): which of the AD user's attributes hold ``address``
    (userPrincipalName, mail, primarySmtp, proxyAddresses, targetAddress). For the few finding
    rows only."""
    detail = scoped_ad.select(
        AD_KEY, "upn", "mail", "primary_smtp", "proxy_addresses", target_smtp().alias("_target")
    )
    address = pl.col("address")
    primary = lower("primary_smtp") == address
    return (
        rows.join(detail, on=AD_KEY, how="left")
        .with_columns(
            attribute=_attributes_holding(
                [
                    ("userPrincipalName", lower("upn") == address),
                    ("mail", lower("mail") == address),
                    ("primarySmtp", primary),
                    ("proxyAddresses", _proxy_hit() & ~primary.fill_null(False)),
                    ("targetAddress", lower("_target") == address),
                ]
            )
        )
        .drop("upn", "mail", "primary_smtp", "proxy_addresses", "_target")
    )


def owner_details(rows: pl.DataFrame, active: pl.DataFrame, objects: pl.DataFrame) -> pl.DataFrame:
    """Add owner_type, owner_name, owner_synced and owner_attribute (list) for ``owner_id``."""
    ids = rows.select("owner_id").unique()
    users = active.join(ids, left_on="id", right_on="owner_id", how="semi").select(
        pl.col("id").alias("owner_id"),
        pl.lit("user").alias("owner_type"),
        pl.col("upn").alias("owner_name"),
        pl.col("sync_enabled").fill_null(False).alias("owner_synced"),
        pl.col("upn").alias("o_upn"),
        pl.col("mail").alias("o_mail"),
        pl.col("proxy_addresses"),
    )
    objs = objects.join(ids, left_on="id", right_on="owner_id", how="semi").select(
        pl.col("id").alias("owner_id"),
        pl.col("object_type").alias("owner_type"),
        pl.coalesce("mail", "display_name").alias("owner_name"),
        pl.lit(False).alias("owner_synced"),
        pl.lit(None, dtype=pl.String).alias("o_upn"),
        pl.col("mail").alias("o_mail"),
        pl.col("proxy_addresses"),
    )
    address = pl.col("address")
    return (
        rows.join(pl.concat([users, objs], how="vertical"), on="owner_id", how="left")
        .with_columns(
            owner_attribute=_attributes_holding(
                [
                    ("userPrincipalName", lower("o_upn") == address),
                    ("mail", lower("o_mail") == address),
                    ("proxyAddresses", _proxy_hit()),
                ]
            )
        )
        .drop("o_upn", "o_mail", "proxy_addresses")
    )
