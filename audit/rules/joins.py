"""Joins shared by several rules, mirroring how Entra matches (FACTS.md section 1).

Every join is a Polars hash join over normalised keys; nothing here loops over users.
Cloud columns in joined frames carry the ``cloud_`` prefix so AD and cloud values of the same
attribute (upn, mail...) sit side by side.
"""

from __future__ import annotations

import polars as pl

from audit.anchor import (
    GUID_ANCHOR_ATTRIBUTES,
    Encoding,
    b64_to_hex,
    decode_wrong_encodings,
    guid_text_from_hex,
    hex_to_b64,
    immutable_id_from_guid,
    is_canonical,
    swap_guid_byte_order,
)
from audit.rules.addresses import ad_attributes, lower, object_addresses
from audit.rules.shape import AD_KEY as AD_KEY


def deleted_cloud(cloud: pl.DataFrame) -> pl.DataFrame:
    return cloud.filter(pl.col("deleted_at").is_not_null())


def with_cloud_prefix(cloud: pl.DataFrame) -> pl.DataFrame:
    return cloud.rename({c: f"cloud_{c}" for c in cloud.columns})


def hard_matches(ad: pl.DataFrame, cloud: pl.DataFrame) -> pl.DataFrame:
    """AD rows joined to the cloud rows whose immutableId equals their anchor.

    The anchor is case-sensitive (sourceAnchor rules), so no normalisation here. The join runs
    on narrow frames keyed by a 64-bit hash of the anchor (the strings are compared afterwards,
    so a collision cannot pair two objects); the wide rows are gathered once at the end. Joining
    the wide frames directly costs several times the time and a copy of both frames in memory
    at 1M users. Columns no pair-level rule reads are left out (``_NOT_IN_HARD_MATCHES``).
    """
    ad_keys = ad.lazy().select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("_l"),
        pl.col("anchor"),
        pl.col("anchor").hash().alias("_h"),
    )
    cloud_keys = cloud.lazy().select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("_r"),
        pl.col("immutable_id"),
        pl.col("immutable_id").hash().alias("_h"),
    )
    pairs = (
        ad_keys.filter(pl.col("anchor").is_not_null())
        .join(cloud_keys.filter(pl.col("immutable_id").is_not_null()), on="_h", how="inner")
        .filter(pl.col("anchor") == pl.col("immutable_id"))
        .select("_l", "_r")
        .sort("_l", "_r")
        .collect()
    )
    left = ad.select(pl.exclude(_NOT_IN_HARD_MATCHES).gather(pairs["_l"]))
    right = with_cloud_prefix(cloud).select(
        pl.exclude([f"cloud_{c}" for c in _NOT_IN_HARD_MATCHES]).gather(pairs["_r"])
    )
    return pl.concat([left, right], how="horizontal")


# Columns no pair-level rule reads; lists and long strings are the costliest to gather
# (~0.2 GB at 1M pairs). A rule that needs one selects it from the snapshot by key instead.
_NOT_IN_HARD_MATCHES = (
    "proxy_addresses",
    "provisioning_errors",
    "given_name",
    "surname",
    "employee_id",
    "out_of_scope_reason",
    "created",
    "user_type",
)


def same_person() -> pl.Expr:
    """On a hard-matched pair: does any identity attribute agree (case-insensitively)?

    UPN (cloud or its onPremisesUserPrincipalName), primary SMTP, mail, on-premises
    sAMAccountName, SID or DN. When none does, the anchor links two different people.
    """

    def same(ad_col: str, cloud_col: str) -> pl.Expr:
        return (lower(ad_col) == lower(cloud_col)).fill_null(False)

    return pl.any_horizontal(
        same("upn", "cloud_upn"),
        same("upn", "cloud_on_prem_upn"),
        same("primary_smtp", "cloud_primary_smtp"),
        same("mail", "cloud_mail"),
        same("sam_account_name", "cloud_on_prem_sam"),
        same("object_sid", "cloud_on_prem_sid"),
        same("dn", "cloud_on_prem_dn"),
    )


# --- keyed joins for the anchor / matching / duplicates families ---------------------------------
#
# In-scope AD users carry an integer row key ``_ad`` (RuleContext.scoped_ad) so the wide joins
# move integers, not strings; the few finding rows get their AD columns back at the end.


def anchor_links(scoped_ad: pl.DataFrame, active: pl.DataFrame) -> pl.DataFrame:
    """(_ad, anchor, holder_id, holder_row): every in-scope AD user with the ACTIVE cloud user
    holding its anchor (its id, and its row in `active` for gathering its columns), or nulls.
    Case-sensitive, like sourceAnchor."""
    holders = (
        active.lazy()
        .select(
            pl.col("id").alias("holder_id"),
            pl.int_range(pl.len(), dtype=pl.UInt32).alias("holder_row"),
            pl.col("immutable_id"),
        )
        .filter(pl.col("immutable_id").is_not_null())
        .with_columns(_h=pl.col("immutable_id").hash())
    )
    # 64-bit hash join, then the strings are compared (case-sensitive) to rule out collisions.
    return (
        scoped_ad.lazy()
        .select(AD_KEY, "anchor", _h=pl.col("anchor").hash())
        .join(holders, on="_h", how="left")
        .with_columns(
            holder_id=pl.when(pl.col("anchor") == pl.col("immutable_id")).then(pl.col("holder_id")),
            holder_row=pl.when(pl.col("anchor") == pl.col("immutable_id")).then(
                pl.col("holder_row")
            ),
        )
        # a 64-bit collision would add a second, unmatched row for that AD user: drop it
        .filter(pl.col("holder_id").is_not_null() | ~pl.col(AD_KEY).is_duplicated())
        .select(AD_KEY, "anchor", "holder_id", "holder_row")
        .collect()
    )


def deleted_links(unheld: pl.DataFrame, deleted: pl.DataFrame) -> pl.DataFrame:
    """(_ad, deleted_id, deleted_upn, deleted_at) for unheld AD users whose anchor a
    soft-deleted cloud user keeps (deleted users keep onPremisesImmutableId for 30 days)."""
    held = deleted.select(
        pl.col("id").alias("deleted_id"),
        pl.col("upn").alias("deleted_upn"),
        pl.col("deleted_at"),
        pl.col("immutable_id"),
    ).filter(pl.col("immutable_id").is_not_null())
    return (
        unheld.select(AD_KEY, "anchor")
        .join(held, left_on="anchor", right_on="immutable_id", how="inner")
        .drop("anchor")
        .unique([AD_KEY], keep="first")
    )


_CANDIDATE_COLUMNS = {
    "id": "cand_id",
    "upn": "cand_upn",
    "immutable_id": "cand_immutable_id",
    "sync_enabled": "cand_sync_enabled",
    "directory_roles": "cand_directory_roles",
    "admin_roles": "cand_admin_roles",
    "eligible_roles": "cand_eligible_roles",
    "on_prem_object_id": "cand_on_prem_object_id",
}


def soft_match_candidates(
    unheld: pl.DataFrame,
    active: pl.DataFrame,
    objects: pl.DataFrame,
    *,
    upn_allowed: bool,
) -> pl.DataFrame:
    """The cloud object Entra's soft match would pick for each AD user (FACTS.md 1, step 2).

    ``unheld`` has _ad, upn, primary_smtp. Primary SMTP first: an active cloud user whose primary
    SMTP equals the AD user's (case-insensitive), else a group/contact owning that address (the
    match then fails with ObjectTypeMismatch); only when neither exists and UPN soft match is
    allowed, an active cloud user with the same UPN. One row per AD user that has a candidate:
    _ad, cand_type (user/group/contact), matched_on, matched_value and the cand_* columns.
    """
    keys = unheld.select(
        AD_KEY, lower("primary_smtp").alias("smtp_key"), lower("upn").alias("upn_key")
    )
    cand_cols = list(_CANDIDATE_COLUMNS.values())
    users = active.select(
        *[pl.col(c).alias(a) for c, a in _CANDIDATE_COLUMNS.items()],
        pl.lit("user").alias("cand_type"),
        lower("primary_smtp").alias("smtp_key"),
        lower("upn").alias("upn_key"),
    )
    out_cols = [AD_KEY, *cand_cols, "cand_type", "matched_on", "matched_value"]
    by_smtp = (
        keys.filter(pl.col("smtp_key").is_not_null())
        .join(users.drop("upn_key").filter(pl.col("smtp_key").is_not_null()), on="smtp_key")
        .with_columns(matched_on=pl.lit("primarySmtp"), matched_value=pl.col("smtp_key"))
        .select(out_cols)
    )
    rest = keys.join(by_smtp.select(AD_KEY), on=AD_KEY, how="anti")
    by_object = (
        rest.filter(pl.col("smtp_key").is_not_null())
        .join(object_addresses(objects), left_on="smtp_key", right_on="address")
        .unique([AD_KEY], keep="first", maintain_order=True)
        .with_columns(
            pl.col("owner_id").alias("cand_id"),
            pl.col("owner_name").alias("cand_upn"),
            pl.col("owner_type").alias("cand_type"),
            *[pl.lit(None, dtype=users.schema[c]).alias(c) for c in cand_cols[2:]],
            matched_on=pl.lit("primarySmtp"),
            matched_value=pl.col("smtp_key"),
        )
        .select(out_cols)
    )
    frames = [by_smtp, by_object]
    if upn_allowed:
        rest = rest.join(by_object.select(AD_KEY), on=AD_KEY, how="anti")
        by_upn = (
            rest.filter(pl.col("upn_key").is_not_null())
            .join(users.drop("smtp_key").filter(pl.col("upn_key").is_not_null()), on="upn_key")
            .with_columns(matched_on=pl.lit("userPrincipalName"), matched_value=pl.col("upn_key"))
            .select(out_cols)
        )
        frames.append(by_upn)
    return pl.concat(frames, how="vertical").unique([AD_KEY], keep="first", maintain_order=True)


def cloud_anchors_without_ad(cloud: pl.DataFrame, ad: pl.DataFrame) -> pl.DataFrame:
    """Cloud users (active and soft-deleted) whose immutableId no IN-SCOPE AD user has, with the
    out-of-scope AD user that has it (oos_* columns, null when none)."""
    anchors = cloud.select(
        "id", "upn", "immutable_id", "sync_enabled", "deleted_at", "on_prem_dn"
    ).filter(pl.col("immutable_id").is_not_null())
    in_scope = ad.filter(pl.col("in_scope")).select("anchor")
    unheld = anchors.join(in_scope, left_on="immutable_id", right_on="anchor", how="anti")
    out_of_scope = (
        ad.filter(~pl.col("in_scope").fill_null(False) & pl.col("anchor").is_not_null())
        .select(
            pl.col("anchor"),
            pl.col("source").alias("oos_source"),
            pl.col("dn").alias("oos_dn"),
            pl.col("object_guid").alias("oos_object_guid"),
            pl.col("upn").alias("oos_upn"),
            pl.col("out_of_scope_reason").alias("oos_reason"),
        )
        .join(unheld.select("immutable_id"), left_on="anchor", right_on="immutable_id", how="semi")
        .unique(["anchor"], keep="first")
    )
    return unheld.join(out_of_scope, left_on="immutable_id", right_on="anchor", how="left")


def objectguid_anchored(unheld: pl.DataFrame, scoped_ad: pl.DataFrame) -> pl.DataFrame:
    """(_ad, og_*): active cloud users whose immutableId is an in-scope AD user's objectGUID
    while that user's effective anchor is something else (mS-DS-ConsistencyGuid restamped or
    set after the first sync). Entra compares the anchor it is sent, so that account is never
    matched again. Only the few cloud anchors no AD user has are decoded."""
    decoded = unheld.filter(
        pl.col("deleted_at").is_null() & pl.col("oos_dn").is_null() & is_canonical("immutable_id")
    ).select(
        pl.col("id").alias("og_cloud_id"),
        pl.col("upn").alias("og_cloud_upn"),
        pl.col("immutable_id").alias("og_immutable_id"),
        guid_text_from_hex(swap_guid_byte_order(b64_to_hex("immutable_id"))).alias("object_guid"),
    )
    return (
        scoped_ad.select(AD_KEY, "object_guid", "anchor")
        .join(decoded, on="object_guid", how="inner")
        .filter(pl.col("anchor") != pl.col("og_immutable_id"))
        .drop("anchor")
    )


def anchors_are_guid_based(ad: pl.DataFrame) -> bool:
    """True unless some AD source uses a non-GUID anchor attribute (employeeID...)."""
    attrs = ad.select(pl.col("anchor_attribute").str.to_lowercase().drop_nulls().unique())
    return all(a in GUID_ANCHOR_ATTRIBUTES for a in attrs.to_series().to_list())


_MISENCODED_SCHEMA: dict[str, pl.DataType] = {
    "immutable_id": pl.String(),
    "encoding": pl.String(),
    "decoded_guid": pl.String(),
    "correct": pl.String(),
}


def misencoded_anchors(unheld: pl.DataFrame, ad: pl.DataFrame) -> pl.DataFrame:
    """Cloud immutableIds that are not what Entra Connect would write for any AD user.

    ``unheld`` comes from cloud_anchors_without_ad with no AD user (in scope or not) holding the
    value. Returned: one row per (cloud user, AD user it decodes to) with encoding, decoded_guid
    and the AD user's columns (ad_*; ad_anchor is the right value), plus one row per
    non-canonical value that decodes to no AD user (ad_* null) when the value is the literal
    ``System.Byte[]``, is GUID-shaped, or every AD source anchors on GUID bytes (a non-base64
    value is then wrong whatever it is; with an employeeID-like anchor it may be fine).
    """
    canonical = is_canonical("immutable_id")
    hexed = b64_to_hex("immutable_id")
    big_endian = (
        unheld.filter(canonical)
        .select("immutable_id")
        .unique()
        .with_columns(hex=hexed)
        .select(
            "immutable_id",
            pl.lit(Encoding.big_endian.value).alias("encoding"),
            guid_text_from_hex(pl.col("hex")).alias("decoded_guid"),
            hex_to_b64(swap_guid_byte_order(pl.col("hex"))).alias("correct"),
        )
    )
    odd_values = unheld.filter(~canonical).get_column("immutable_id").unique().to_list()
    odd_rows = [
        {
            "immutable_id": value,
            "encoding": encoding.value,
            "decoded_guid": guid,
            "correct": immutable_id_from_guid(guid),
        }
        for value in odd_values  # the few non-canonical values, after the Polars filter
        for guid, encoding in decode_wrong_encodings(value)
        if encoding is not Encoding.correct
    ]
    odd = pl.DataFrame(odd_rows, schema=_MISENCODED_SCHEMA)
    decodings = pl.concat([big_endian, odd], how="vertical")
    ad_cols = ad.select(
        pl.col("source").alias("ad_source"),
        pl.col("dn").alias("ad_dn"),
        pl.col("object_guid").alias("ad_object_guid"),
        pl.col("upn").alias("ad_upn"),
        pl.col("anchor").alias("ad_anchor"),
        pl.col("in_scope").alias("ad_in_scope"),
    )
    by_anchor = decodings.join(ad_cols, left_on="correct", right_on="ad_anchor", how="inner")
    by_anchor = by_anchor.with_columns(ad_anchor=pl.col("correct"))
    by_guid = decodings.join(
        ad_cols, left_on="decoded_guid", right_on="ad_object_guid", how="inner"
    ).with_columns(ad_object_guid=pl.col("decoded_guid"))
    named = (
        pl.concat([by_anchor, by_guid.select(by_anchor.columns)], how="vertical")
        .unique(["immutable_id", "ad_source", "ad_dn"], keep="first", maintain_order=True)
        .drop("correct")
    )
    guid_based = anchors_are_guid_based(ad)
    unnamed = (
        unheld.filter(~canonical)
        .select("immutable_id")
        .unique()
        .join(named.select("immutable_id"), on="immutable_id", how="anti")
        .join(
            decodings.unique(["immutable_id"], keep="first").drop("correct"),
            on="immutable_id",
            how="left",
        )
        .filter(
            (pl.col("immutable_id") == "System.Byte[]")
            | pl.col("decoded_guid").is_not_null()
            | pl.lit(guid_based)
        )
    )
    return unheld.select("id", "upn", "immutable_id", "deleted_at").join(
        pl.concat([named, unnamed], how="diagonal"), on="immutable_id", how="inner"
    )


def duplicate_cloud_pairs(
    collisions: pl.DataFrame, scoped_ad: pl.DataFrame, active: pl.DataFrame
) -> pl.DataFrame:
    """(_ad, owner_id, holder_id, attributes, values): a hard-matched AD user whose UPN, primary
    SMTP or mail another active cloud USER that is not synced (onPremisesSyncEnabled not true)
    also owns: the original cloud account beside the one sync matched (FACTS.md 1, step 3)."""
    unsynced = active.filter(~pl.col("sync_enabled").fill_null(False)).select(
        pl.col("id").alias("owner_id")
    )
    rows = collisions.filter(pl.col("holder_id").is_not_null()).join(
        unsynced, on="owner_id", how="semi"
    )
    rows = ad_attributes(rows, scoped_ad).with_columns(
        attribute=pl.col("attribute").list.set_intersection(
            pl.lit(["userPrincipalName", "primarySmtp", "mail"])
        )
    )
    return (
        rows.filter(pl.col("attribute").list.len() > 0)
        .explode("attribute")
        .group_by(AD_KEY, "owner_id", "holder_id")
        .agg(
            pl.col("attribute").unique().sort().alias("attributes"),
            pl.col("address").unique().sort().alias("values"),
        )
    )
