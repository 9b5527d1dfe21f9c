"""Anchor family: who holds each in-scope AD user's sourceAnchor, and whether anchors are sound.

FACTS.md section 1: the hard match compares the AD user's effective anchor (base64 of
mS-DS-ConsistencyGuid, else of objectGUID, or the configured attribute's string) with the cloud
user's onPremisesImmutableId, case-sensitively.
"""

from __future__ import annotations

import polars as pl

from audit.model import Action, Need, RuleMeta, Severity
from audit.rules import addresses, blockers, shape
from audit.rules import joins as j
from audit.rules.base import Rule, RuleContext

LEARN = "https://learn.microsoft.com/entra/identity/hybrid/connect"
REF_EXISTING_TENANT = f"{LEARN}/how-to-connect-install-existing-tenant"
REF_DESIGN_CONCEPTS = f"{LEARN}/plan-connect-design-concepts"
REF_SYNC_ERRORS = f"{LEARN}/tshoot-connect-sync-errors"
REF_DUPLICATE_RESILIENCY = f"{LEARN}/how-to-connect-syncservice-duplicate-attribute-resiliency"
REF_SYNC_FEATURES = f"{LEARN}/how-to-connect-syncservice-features"
REF_DELETED_ITEMS = "https://learn.microsoft.com/graph/api/resources/directory-deleteditems"
REF_GRAPH_USER = "https://learn.microsoft.com/graph/api/resources/user"
REF_ADSYNCTOOLS = f"{LEARN}/reference-connect-adsynctools"

EMPTY = pl.DataFrame()
AD_COLUMNS = ("source", "dn", "object_guid", "upn", "anchor")


def ad_identity(ctx: RuleContext, frame: pl.DataFrame) -> pl.DataFrame:
    """Bring the AD user's identity columns back onto keyed rows."""
    return frame.join(ctx.scoped_ad.select(j.AD_KEY, *AD_COLUMNS), on=j.AD_KEY, how="inner")


# --- anchor-held-by-deleted -------------------------------------------------------------------


def anchor_held_by_deleted(ctx: RuleContext) -> pl.DataFrame:
    # Needs only the deleted-items read (RuleMeta.requires): Entra keeps one object per
    # onPremisesImmutableId, a soft-deleted one included, so an anchor a deleted user holds has
    # no active holder even when the active users were not all read.
    if ctx.deleted_links.is_empty():
        return EMPTY
    tokens, phrases = blockers.soft_match_blockers(ctx.features.block_soft_match.value)
    candidates = ctx.soft_candidates.with_columns(cand_blockers=tokens, cand_blocker_text=phrases)
    rows = ad_identity(ctx, ctx.deleted_links).join(candidates, on=j.AD_KEY, how="left")
    waiting = pl.col("cand_id").is_not_null() & (pl.col("cand_type") == "user")
    deleted_on = pl.col("deleted_at").dt.strftime("%Y-%m-%d")
    head = shape.say(
        "AD user {} cannot hard-match: its anchor {} is held by soft-deleted cloud user {} "
        "(id {}, deleted {})",
        shape.who(),
        "anchor",
        "deleted_upn",
        "deleted_id",
        deleted_on,
    )
    waiting_text = shape.say(
        "; cloud-only user {} (id {}) waits to be soft-matched on {} {}: purge the deleted "
        "holder, then the next sync matches the waiting account",
        "cand_upn",
        "cand_id",
        "matched_on",
        "matched_value",
    )
    blocked_text = shape.say(" (that match will then fail too: {})", "cand_blocker_text")
    detail = (
        pl.when(waiting & (pl.col("cand_blockers").list.len() > 0))
        .then(pl.concat_str([head, waiting_text, blocked_text]))
        .when(waiting)
        .then(pl.concat_str([head, waiting_text]))
        .otherwise(
            pl.concat_str(
                [
                    head,
                    pl.lit(
                        "; restore it if it is this person's old account (keeps mailbox and "
                        "licences), else purge it"
                        + (
                            ""
                            if ctx.cloud_complete
                            else " (the cloud users were not read completely: look for a "
                            "cloud-only account waiting for this person before restoring)"
                        )
                    ),
                ]
            )
        )
    )
    return rows.select(
        *shape.ad_output(rows),
        pl.col("anchor"),
        pl.col("deleted_id").alias("cloud_id"),
        pl.col("deleted_upn").alias("cloud_upn"),
        pl.lit("deleted").alias("cloud_state"),
        detail.alias("detail"),
        shape.evidence(
            deleted_at=deleted_on,
            waiting_cloud_id=pl.col("cand_id"),
            waiting_cloud_upn=pl.col("cand_upn"),
            waiting_matched_on=pl.col("matched_on"),
            waiting_blockers=pl.col("cand_blockers"),
            cloud_read_complete=pl.lit(ctx.cloud_complete),
        ),
        pl.when(waiting)
        .then(pl.lit(Action.purge_deleted_holder))
        .otherwise(pl.lit(Action.restore_deleted_holder))
        .alias("remediation"),
    )


# --- anchor-held-by-other ---------------------------------------------------------------------


def _same(ad_col: str, cloud_col: str) -> pl.Expr:
    return (addresses.lower(ad_col) == addresses.lower(cloud_col)).fill_null(False)


def anchor_held_by_other(ctx: RuleContext) -> pl.DataFrame:
    hm = ctx.hard_matches
    checks = {
        "userPrincipalName": _same("upn", "cloud_upn") | _same("upn", "cloud_on_prem_upn"),
        "primarySmtp": _same("primary_smtp", "cloud_primary_smtp"),
        "mail": _same("mail", "cloud_mail"),
        "onPremisesSamAccountName": _same("sam_account_name", "cloud_on_prem_sam"),
        "onPremisesSecurityIdentifier": _same("object_sid", "cloud_on_prem_sid"),
        "onPremisesDistinguishedName": _same("dn", "cloud_on_prem_dn"),
    }
    # Exact equality settles nearly every pair cheaply; only the rest pay for lower-casing.
    exact = {
        "upn": "cloud_upn",
        "primary_smtp": "cloud_primary_smtp",
        "mail": "cloud_mail",
        "sam_account_name": "cloud_on_prem_sam",
        "object_sid": "cloud_on_prem_sid",
        "dn": "cloud_on_prem_dn",
    }
    suspects = hm.filter(
        ~pl.any_horizontal([(pl.col(a) == pl.col(c)).fill_null(False) for a, c in exact.items()])
    )
    rows = suspects.filter(~pl.any_horizontal(list(checks.values())))
    if rows.is_empty():
        return EMPTY
    return rows.select(
        *shape.ad_output(rows),
        pl.col("anchor"),
        pl.col("cloud_id"),
        pl.col("cloud_upn"),
        pl.lit("active").alias("cloud_state"),
        shape.say(
            "AD user {} is hard-matched through anchor {} to cloud user {} (id {}), but none of "
            "UPN, primary SMTP, mail, on-premises sAMAccountName, SID or DN agree: the anchor "
            "links two different people",
            shape.who(),
            "anchor",
            "cloud_upn",
            "cloud_id",
        ).alias("detail"),
        shape.evidence(
            ad_upn=pl.col("upn"),
            cloud_upn=pl.col("cloud_upn"),
            ad_primary_smtp=pl.col("primary_smtp"),
            cloud_primary_smtp=pl.col("cloud_primary_smtp"),
            ad_mail=pl.col("mail"),
            cloud_mail=pl.col("cloud_mail"),
            ad_sam=pl.col("sam_account_name"),
            cloud_on_prem_sam=pl.col("cloud_on_prem_sam"),
            ad_sid=pl.col("object_sid"),
            cloud_on_prem_sid=pl.col("cloud_on_prem_sid"),
            cloud_on_prem_dn=pl.col("cloud_on_prem_dn"),
            cloud_sync_enabled=pl.col("cloud_sync_enabled"),
        ),
        pl.lit(Action.manual).alias("remediation"),
    )


# --- anchor-format-invalid --------------------------------------------------------------------


def anchor_format_invalid(ctx: RuleContext) -> pl.DataFrame:
    rows = ctx.misencoded_anchors
    if rows.is_empty():
        return EMPTY
    named = pl.col("ad_dn").is_not_null()
    state = (
        pl.when(pl.col("deleted_at").is_null()).then(pl.lit("active")).otherwise(pl.lit("deleted"))
    )
    detail = (
        pl.when(named)
        .then(
            shape.say(
                "{} cloud user {} (id {}) has immutableId {}, a {} encoding of AD user {} "
                "({}); the value Entra Connect sends is {}",
                state,
                "upn",
                "id",
                "immutable_id",
                "encoding",
                "ad_dn",
                "ad_upn",
                "ad_anchor",
            )
        )
        .when(pl.col("immutable_id") == "System.Byte[]")
        .then(
            shape.say(
                "{} cloud user {} (id {}) has immutableId 'System.Byte[]': the text "
                "Export-Csv writes for a byte array, not an anchor; it matches no AD user",
                state,
                "upn",
                "id",
            )
        )
        .when(pl.col("decoded_guid").is_not_null())
        .then(
            shape.say(
                "{} cloud user {} (id {}) has immutableId {}, a {} encoding of GUID {} that no "
                "AD user has",
                state,
                "upn",
                "id",
                "immutable_id",
                "encoding",
                "decoded_guid",
            )
        )
        .otherwise(
            shape.say(
                "{} cloud user {} (id {}) has immutableId {}, which is not the base64 of 16 "
                "bytes that Entra Connect writes and matches no AD user's anchor",
                state,
                "upn",
                "id",
                "immutable_id",
            )
        )
    )
    return rows.select(
        pl.col("ad_source"),
        pl.col("ad_dn"),
        pl.col("ad_object_guid"),
        pl.col("ad_upn"),
        pl.col("immutable_id").alias("anchor"),
        pl.col("id").alias("cloud_id"),
        pl.col("upn").alias("cloud_upn"),
        state.alias("cloud_state"),
        pl.lit("onPremisesImmutableId").alias("attribute"),
        pl.col("immutable_id").alias("value"),
        pl.col("ad_anchor").alias("proposed_value"),
        detail.str.slice(0, 1).str.to_uppercase().add(detail.str.slice(1)).alias("detail"),
        shape.evidence(
            encoding=pl.col("encoding"),
            decoded_guid=pl.col("decoded_guid"),
            ad_in_scope=pl.col("ad_in_scope"),
        ),
        pl.when(named)
        .then(pl.lit(Action.fix_anchor_encoding))
        .otherwise(pl.lit(Action.manual))
        .alias("remediation"),
    )


# --- anchor-duplicate-ad ----------------------------------------------------------------------


def anchor_duplicate_ad(ctx: RuleContext) -> pl.DataFrame:
    ad = ctx.scoped_ad.select(*AD_COLUMNS).filter(pl.col("anchor").is_not_null())
    # a 64-bit hash is a cheap pre-filter; the strings decide
    dupes = ad.filter(pl.col("anchor").hash().is_duplicated()).filter(
        pl.col("anchor").is_duplicated()
    )
    if dupes.is_empty():
        return EMPTY
    parties = dupes.group_by("anchor").agg(pl.col("dn").sort().alias("parties"))
    holders = ctx.active_cloud.select(
        pl.col("immutable_id").alias("anchor"), pl.col("id"), pl.col("upn").alias("holder_upn")
    )
    rows = dupes.join(parties, on="anchor").join(holders, on="anchor", how="left")
    others = pl.col("parties").list.set_difference(pl.concat_list(pl.col("dn")))
    return rows.select(
        *shape.ad_output(rows),
        pl.col("anchor"),
        pl.col("id").alias("cloud_id"),
        pl.col("holder_upn").alias("cloud_upn"),
        pl.when(pl.col("id").is_null())
        .then(pl.lit("none"))
        .otherwise(pl.lit("active"))
        .alias("cloud_state"),
        pl.lit("sourceAnchor").alias("attribute"),
        pl.col("anchor").alias("value"),
        shape.say(
            "AD user {} has anchor {}, the same as {} {}: only one of them can "
            "match a cloud user; the others fail to export or take over the wrong account",
            shape.who(),
            "anchor",
            shape.noun(others.list.len(), "in-scope AD user"),
            others.list.sort().list.join("; "),
        ).alias("detail"),
        shape.evidence(parties=pl.col("parties"), cloud_holder_upn=pl.col("holder_upn")),
        pl.lit(Action.manual).alias("remediation"),
    )


_ANCHOR_REMEDIATION_HOLDER = (
    "Find the holder: Invoke-MgGraphRequest -Uri ('v1.0/users?$filter=' + "
    "[uri]::EscapeDataString(\"onPremisesImmutableId eq '<anchor>'\")) (not Get-MgUser -Filter: "
    "it sends '+' as a space, msgraph-sdk-powershell #2973) and "
    "Get-MgDirectoryDeletedItemAsUser -All -Property id,userPrincipalName,onPremisesImmutableId."
)

RULES: tuple[Rule, ...] = (
    Rule(
        RuleMeta(
            code="anchor-held-by-deleted",
            action=(
                "Restore or purge the deleted cloud account that still holds the user's "
                "anchor, then sync."
            ),
            severity=Severity.high,
            family="anchor",
            title="Anchor held by a soft-deleted cloud user",
            explanation=(
                "No active cloud user holds the in-scope AD user's sourceAnchor, but a "
                "soft-deleted one (in Deleted users for 30 days) still does: deleted users keep "
                "onPremisesImmutableId. Hard match is tried before soft match, so the deleted "
                "holder takes the AD user's anchor; a cloud-only account created meanwhile with "
                "the same UPN or primary SMTP (the classic 'new account while the old one sits "
                "in the recycle bin') is therefore NOT soft-matched and this finding replaces "
                "soft-match-pending: the export collides (AttributeValueMustBeUnique or a "
                "quarantined <name>1234@<tenant>.onmicrosoft.com twin) until the deleted holder "
                "is purged, after which the waiting account is soft-matched. Without a waiting "
                "account, restoring the deleted holder is usually right (the same person's "
                "mailbox and licences); purge it only when it belongs to someone else. Emitted "
                "only when the cloud read was complete and soft-deleted users were supplied."
            ),
            remediation=(
                f"{_ANCHOR_REMEDIATION_HOLDER} With a waiting cloud-only account: "
                "Remove-MgDirectoryDeletedItem -DirectoryObjectId <deleted id>, then "
                "Start-ADSyncSyncCycle -PolicyType Delta on the Entra Connect server. Otherwise: "
                "Restore-MgDirectoryDeletedItem -DirectoryObjectId <deleted id> and let the next "
                "sync rejoin it."
            ),
            references=(REF_EXISTING_TENANT, REF_DELETED_ITEMS, REF_SYNC_ERRORS),
            remediation_actions=(Action.purge_deleted_holder, Action.restore_deleted_holder),
            requires=(Need.deleted_users,),
            # a cloud-only account waiting for the anchor is only known over a complete read
            caveats=(Need.complete_cloud,),
        ),
        anchor_held_by_deleted,
    ),
    Rule(
        RuleMeta(
            code="anchor-held-by-other",
            action=(
                "Stop sync for these users and re-link each to the right cloud account "
                "before it overwrites someone else's."
            ),
            severity=Severity.high,
            family="anchor",
            title="Anchor links two different people",
            explanation=(
                "An active cloud user holds the AD user's sourceAnchor (a hard match), yet none "
                "of UPN (cloud or onPremisesUserPrincipalName), primary SMTP, mail, on-premises "
                "sAMAccountName, SID or DN agree (case-insensitive). Usually a hard match "
                "prepared with the wrong person's ImmutableId: sync will overwrite that cloud "
                "user's identity with this AD user's, handing over its mailbox and access."
            ),
            remediation=(
                f"{_ANCHOR_REMEDIATION_HOLDER} Take the AD user out of sync scope (or pause "
                "sync), then on a cloud-only holder clear the wrong anchor with "
                "Invoke-MgGraphRequest -Method PATCH -Uri 'v1.0/users/<id>' "
                "-Body '{\"onPremisesImmutableId\":null}' "
                "and set the right one with Update-MgUser -UserId <right id> "
                "-OnPremisesImmutableId '<anchor>'. A synced holder needs the wrong AD object "
                "fixed on premises."
            ),
            references=(REF_EXISTING_TENANT, REF_SYNC_ERRORS),
            remediation_actions=(Action.manual,),
        ),
        anchor_held_by_other,
    ),
    Rule(
        RuleMeta(
            code="anchor-format-invalid",
            action="Rewrite the prepared ImmutableId in the correct encoding.",
            severity=Severity.high,
            family="anchor",
            title="ImmutableId in the wrong encoding",
            explanation=(
                "A cloud user's onPremisesImmutableId (active or soft-deleted) that matches no "
                "AD user's anchor and is not what Entra Connect writes (standard base64 of the "
                "16 GUID bytes in .NET order): a big-endian GUID, base64 of the GUID text "
                "(AADInternals' scheme), URL-safe or unpadded base64, the GUID text or its hex "
                "pasted as-is, or the literal 'System.Byte[]' from Export-Csv. The hard match "
                "prepared this way never happens: the AD user is soft-matched elsewhere or "
                "created as a duplicate (InvalidSoftMatch / AttributeValueMustBeUnique). When "
                "the value decodes to an AD user, that user and the correct value are named. "
                "Non-base64 values that DO equal an AD anchor are fine (employeeID-like "
                "anchors) and are not reported; with such an anchor attribute configured, an "
                "unmatched non-GUID value is left to cloud-orphan."
            ),
            remediation=(
                "On a cloud-only user: Update-MgUser -UserId <id> -OnPremisesImmutableId "
                "'<proposed value>' (for a federated UPN first move the UPN to "
                "*.onmicrosoft.com, then back). Convert with ConvertTo-ADSyncToolsImmutableID or "
                "[Convert]::ToBase64String(([guid]'<objectGUID>').ToByteArray()). Values of "
                "synced users cannot be written through Graph: fix the AD side."
            ),
            references=(REF_DESIGN_CONCEPTS, REF_EXISTING_TENANT, REF_ADSYNCTOOLS),
            remediation_actions=(Action.fix_anchor_encoding, Action.manual),
        ),
        anchor_format_invalid,
    ),
    Rule(
        RuleMeta(
            code="anchor-duplicate-ad",
            action=(
                "Decide which AD account is the real one and clear the copied anchor on the others."
            ),
            severity=Severity.high,
            family="anchor",
            title="Two AD users share one anchor",
            explanation=(
                "Two or more in-scope AD users have the same effective sourceAnchor (a copied "
                "mS-DS-ConsistencyGuid, a duplicated employeeID...). Entra keeps one cloud user "
                "per anchor: the first export wins and the others fail or flip the cloud account "
                "between people. One finding per party."
            ),
            remediation=(
                "Decide which AD object owns the anchor; on the others clear or correct "
                "mS-DS-ConsistencyGuid (Set-ADUser -Clear 'mS-DS-ConsistencyGuid') or the "
                "configured anchor attribute, then Start-ADSyncSyncCycle -PolicyType Delta."
            ),
            references=(REF_DESIGN_CONCEPTS, REF_SYNC_ERRORS),
            remediation_actions=(Action.manual,),
        ),
        anchor_duplicate_ad,
    ),
)
