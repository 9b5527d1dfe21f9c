"""Joins shared by several rules, mirroring how Entra matches (FACTS.md section 1).

Every join is a Polars hash join over normalised keys; nothing here loops over users.
Cloud columns in joined frames carry the ``cloud_`` prefix so AD and cloud values of the same
attribute (upn, mail...) sit side by side.
"""

from __future__ import annotations

import polars as pl


def active_cloud(cloud: pl.DataFrame) -> pl.DataFrame:
    return cloud.filter(pl.col("deleted_at").is_null())


def deleted_cloud(cloud: pl.DataFrame) -> pl.DataFrame:
    return cloud.filter(pl.col("deleted_at").is_not_null())


def with_cloud_prefix(cloud: pl.DataFrame) -> pl.DataFrame:
    return cloud.rename({c: f"cloud_{c}" for c in cloud.columns})


def hard_matches(ad: pl.DataFrame, cloud: pl.DataFrame) -> pl.DataFrame:
    """AD rows joined to the cloud rows whose immutableId equals their anchor.

    The anchor is case-sensitive (sourceAnchor rules), so no normalisation here.
    """
    holders = with_cloud_prefix(cloud.filter(pl.col("immutable_id").is_not_null()))
    return ad.filter(pl.col("anchor").is_not_null()).join(
        holders, left_on="anchor", right_on="cloud_immutable_id", how="inner", coalesce=False
    )


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
            pl.col("proxy_addresses").str.slice(5).str.strip_chars().str.to_lowercase().alias("address"),
            pl.col("proxy_addresses").str.starts_with("SMTP:").alias("is_primary"),
        )
    )
