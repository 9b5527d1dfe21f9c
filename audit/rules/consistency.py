"""mS-DS-ConsistencyGuid: whether the anchor attribute Entra Connect prefers holds a GUID, and
whether it differs from objectGUID (a migrated or restamped object). Part of the anchor family.
"""

from __future__ import annotations

import polars as pl

from audit import anchor as anchor_
from audit.anchor import ascii_guid_bytes_guid, immutable_id_from_guid
from audit.model import Action, RuleMeta, Severity
from audit.rules import joins as j
from audit.rules import shape
from audit.rules.anchor import AD_COLUMNS, EMPTY, REF_DESIGN_CONCEPTS
from audit.rules.base import Rule, RuleContext

# --- consistency guid -------------------------------------------------------------------------


def _consistency(ctx: RuleContext) -> pl.DataFrame:
    """In-scope AD users with a ConsistencyGuid: its hex (null when not base64) and size."""
    return (
        ctx.scoped_ad.select(*AD_COLUMNS, "consistency_guid")
        .filter(pl.col("consistency_guid").is_not_null())
        .with_columns(
            cg_bytes=pl.col("consistency_guid").str.decode("base64", strict=False),
        )
        .with_columns(cg_size=pl.col("cg_bytes").bin.size())
    )


# 16 bytes that are all GUID-text characters (0-9 a-f A-F - { }): the first 16 characters of a
# GUID's text, written by a script that cut the text to the attribute's usual size. Matched on
# the hex of the bytes, two hex digits per byte: 30-39, 41-46, 61-66, 2d, 7b, 7d. Random GUID
# bytes fall in that set with a chance of (22/256)^16, about 1e-17.
_GUID_TEXT_BYTES_HEX = r"^(?:3[0-9]|4[1-6]|6[1-6]|2d|7b|7d){16}$"


def _text_prefix_guids(prefixes: pl.DataFrame, ad: pl.DataFrame) -> pl.DataFrame:
    """(prefix, spelled_guid): the AD objectGUID whose text each 16-character prefix starts
    (with or without dashes or a leading brace), when exactly one AD user has it."""
    if prefixes.is_empty():
        return pl.DataFrame(schema={"prefix": pl.String, "spelled_guid": pl.String})
    guid = pl.col("object_guid")
    keys = pl.concat(
        [
            ad.select(guid.alias("spelled_guid"), guid.str.slice(0, 16).alias("prefix")),
            ad.select(guid.alias("spelled_guid"), guid.str.slice(0, 15).alias("prefix")),
            ad.select(
                guid.alias("spelled_guid"),
                guid.str.replace_all("-", "", literal=True).str.slice(0, 16).alias("prefix"),
            ),
        ]
    ).join(prefixes, on="prefix", how="semi")
    return keys.unique().filter(pl.len().over("prefix") == 1)


def _guid_text_bytes() -> pl.Expr:
    """16 bytes that are text, not a GUID (see _GUID_TEXT_BYTES_HEX)."""
    hexed = pl.col("cg_bytes").bin.encode("hex")
    return ((pl.col("cg_size") == 16) & hexed.str.contains(_GUID_TEXT_BYTES_HEX)).fill_null(False)


def consistency_guid_invalid(ctx: RuleContext) -> pl.DataFrame:
    cg = _consistency(ctx)
    bad = cg.filter((pl.col("cg_size").fill_null(0) != 16) | _guid_text_bytes())
    if bad.is_empty():
        return EMPTY
    # The few invalid values, after the Polars filter: is the ASCII text a (cut) GUID?
    raws = bad.get_column("cg_bytes").to_list()
    text_guids = [ascii_guid_bytes_guid(raw) if raw is not None else None for raw in raws]
    texts = [
        raw.decode("ascii") if raw is not None and len(raw) == 16 and raw.isascii() else None
        for raw in raws
    ]
    prefixes = [text.lstrip("{").lower() if text is not None else None for text in texts]
    bad = bad.with_columns(
        text_guid=pl.Series(text_guids, dtype=pl.String),
        proposed=pl.Series(
            [immutable_id_from_guid(g) if g else None for g in text_guids], dtype=pl.String
        ),
        prefix=pl.Series(prefixes, dtype=pl.String),
        cg_text=pl.Series(texts, dtype=pl.String),
    )
    spelled = _text_prefix_guids(
        bad.select(pl.col("prefix").drop_nulls().unique()), ctx.ad.select("object_guid")
    )
    bad = bad.join(spelled, on="prefix", how="left").with_columns(
        # the cut text of a GUID: name the GUID it begins when an AD user has it
        text_guid=pl.coalesce("text_guid", "spelled_guid"),
        proposed=pl.coalesce(
            "proposed",
            pl.when(pl.col("spelled_guid").is_not_null()).then(
                anchor_.hex_to_b64(anchor_.guid_text_to_le_hex(pl.col("spelled_guid")))
            ),
        ),
    )
    detail = (
        pl.when(pl.col("prefix").is_not_null() & pl.col("text_guid").is_not_null())
        .then(
            shape.say(
                "AD user {} has mS-DS-ConsistencyGuid {}: 16 characters of text ('{}'), the "
                "start of the text of GUID {}{}, not GUID bytes; the anchor Entra sees is that "
                "text; the right value is {}",
                shape.who(),
                "consistency_guid",
                "cg_text",
                "text_guid",
                pl.when(pl.col("text_guid") == pl.col("object_guid"))
                .then(pl.lit(" (its own objectGUID)"))
                .otherwise(pl.lit(" (another AD user's objectGUID)")),
                "proposed",
            )
        )
        .when(pl.col("prefix").is_not_null())
        .then(
            shape.say(
                "AD user {} has mS-DS-ConsistencyGuid {}: 16 characters of text ('{}'), the "
                "start of a GUID's text that no AD user has, not GUID bytes; the anchor Entra "
                "sees is that text",
                shape.who(),
                "consistency_guid",
                "cg_text",
            )
        )
        .when(pl.col("text_guid").is_not_null())
        .then(
            shape.say(
                "AD user {} has mS-DS-ConsistencyGuid {}: the ASCII text of GUID {} instead of "
                "its 16 bytes; the anchor Entra sees is that text, not the GUID; the right value "
                "is {}",
                shape.who(),
                "consistency_guid",
                "text_guid",
                "proposed",
            )
        )
        .when(pl.col("cg_size").is_null())
        .then(
            shape.say(
                "AD user {} has mS-DS-ConsistencyGuid {} that is not base64 of any bytes",
                shape.who(),
                "consistency_guid",
            )
        )
        .otherwise(
            shape.say(
                "AD user {} has mS-DS-ConsistencyGuid {} of {} bytes, not the 16 bytes of a GUID",
                shape.who(),
                "consistency_guid",
                "cg_size",
            )
        )
    )
    return bad.select(
        *shape.ad_output(bad),
        pl.col("anchor"),
        pl.lit("none").alias("cloud_state"),
        pl.lit("mS-DS-ConsistencyGuid").alias("attribute"),
        pl.col("consistency_guid").alias("value"),
        pl.col("proposed").alias("proposed_value"),
        detail.alias("detail"),
        shape.evidence(
            size=pl.col("cg_size"),
            ascii_text=pl.col("prefix").is_not_null() | pl.col("text_guid").is_not_null(),
            ascii_guid=pl.col("text_guid"),
            matches_object_guid=(pl.col("text_guid") == pl.col("object_guid")),
        ),
        pl.lit(Action.manual).alias("remediation"),
    )


def consistency_guid_differs(ctx: RuleContext) -> pl.DataFrame:
    cg = _consistency(ctx).filter((pl.col("cg_size") == 16) & ~_guid_text_bytes())
    # Compare in bytes_le hex (one byte swap of the GUID text) and build the GUID text of the
    # ConsistencyGuid only for the few rows that differ.
    object_guid_le = anchor_.guid_text_to_le_hex(pl.col("object_guid"))
    rows = cg.filter(pl.col("cg_bytes").bin.encode("hex") != object_guid_le)
    if rows.is_empty():
        return EMPTY
    rows = rows.with_columns(
        cg_guid=anchor_.guid_text_from_hex(
            anchor_.swap_guid_byte_order(pl.col("cg_bytes").bin.encode("hex"))
        )
    ).join(ctx.objectguid_anchored.drop(j.AD_KEY), on="object_guid", how="left")
    # Usually a harmless restamp (info). But when the user's cloud account still holds its
    # objectGUID, Entra is sent the ConsistencyGuid and never matches that account again.
    stranded = pl.col("og_cloud_id").is_not_null()
    return rows.select(
        *shape.ad_output(rows),
        pl.col("anchor"),
        pl.col("og_cloud_id").alias("cloud_id"),
        pl.col("og_cloud_upn").alias("cloud_upn"),
        pl.when(stranded).then(pl.lit("active")).otherwise(pl.lit("none")).alias("cloud_state"),
        pl.when(stranded).then(pl.lit("high")).otherwise(pl.lit("info")).alias("severity"),
        pl.lit("mS-DS-ConsistencyGuid").alias("attribute"),
        pl.col("consistency_guid").alias("value"),
        pl.when(stranded)
        .then(
            shape.say(
                "AD user {} has mS-DS-ConsistencyGuid {} (GUID {}) but its cloud account {} "
                "(id {}) is anchored on its objectGUID {}: Entra is sent the ConsistencyGuid "
                "and will not match that account (a duplicate is created instead); set "
                "mS-DS-ConsistencyGuid back to the objectGUID bytes",
                shape.who(),
                "consistency_guid",
                "cg_guid",
                "og_cloud_upn",
                "og_cloud_id",
                "object_guid",
            )
        )
        .otherwise(
            shape.say(
                "AD user {} has mS-DS-ConsistencyGuid {} (GUID {}) that differs from its "
                "objectGUID {}: the object was restamped or migrated; its anchor follows the "
                "ConsistencyGuid",
                shape.who(),
                "consistency_guid",
                "cg_guid",
                "object_guid",
            )
        )
        .alias("detail"),
        shape.evidence(
            consistency_guid_as_guid=pl.col("cg_guid"),
            object_guid=pl.col("object_guid"),
            cloud_holds_object_guid=stranded,
        ),
        pl.when(stranded).then(pl.lit(Action.manual)).alias("remediation"),
    )


RULES: tuple[Rule, ...] = (
    Rule(
        RuleMeta(
            code="consistency-guid-invalid",
            action="Correct or clear the malformed mS-DS-ConsistencyGuid in AD.",
            severity=Severity.high,
            family="anchor",
            title="mS-DS-ConsistencyGuid is not a GUID",
            explanation=(
                "An in-scope AD user's mS-DS-ConsistencyGuid is not 16 bytes (or not base64), "
                "or holds the ASCII text of a GUID written by a script. Entra Connect uses the "
                "attribute as the sourceAnchor verbatim, so the cloud anchor becomes that text: "
                "hard matches prepared from the GUID fail and the value cannot be converted by "
                "the usual tools. The correct base64 is proposed when the text is a GUID."
            ),
            remediation=(
                "Set-ADUser <user> -Replace @{'mS-DS-ConsistencyGuid' = "
                "([guid]'<guid>').ToByteArray()} (or -Clear to fall back to objectGUID) before "
                "the object is first exported; for an already-synced object the cloud anchor "
                "must change too, so plan it with the hard-match procedure."
            ),
            references=(REF_DESIGN_CONCEPTS,),
            remediation_actions=(Action.manual,),
        ),
        consistency_guid_invalid,
    ),
    Rule(
        RuleMeta(
            code="consistency-guid-differs",
            action="No action; informational.",
            severity=Severity.info,
            family="anchor",
            title="mS-DS-ConsistencyGuid differs from objectGUID",
            explanation=(
                "An in-scope AD user's mS-DS-ConsistencyGuid is a valid GUID but not its own "
                "objectGUID: the object was migrated between forests (ADMT keeps the anchor) or "
                "restamped. This is legitimate; it matters when someone prepares a hard match "
                "from Get-ADUser's ObjectGUID, which would be the wrong value."
            ),
            remediation=(
                "None required; take the anchor from mS-DS-ConsistencyGuid, not objectGUID."
            ),
            references=(REF_DESIGN_CONCEPTS,),
        ),
        consistency_guid_differs,
    ),
)
