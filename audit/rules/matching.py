"""Matching family: what Entra will do with each in-scope AD user at its next export, and cloud
users whose anchor no AD user has (FACTS.md section 1: hard match, then soft match, then new).
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from audit.model import Action, Case, Need, RuleMeta, Severity
from audit.rules import blockers, shape, upn
from audit.rules import joins as j
from audit.rules.anchor import (
    EMPTY,
    REF_EXISTING_TENANT,
    REF_GRAPH_USER,
    REF_SYNC_ERRORS,
    REF_SYNC_FEATURES,
    ad_identity,
)
from audit.rules.base import Rule, RuleContext

# "Only reachable by setting its anchor" rests on the AD user having no anchor holder at all.
SET_ANCHOR_CASE = Case(
    "remediation-set-anchor",
    (Need.complete_cloud,),
    "soft-match candidates only a set-anchor hard match can join",
)
REF_HARDENING = (
    "https://learn.microsoft.com/entra/fundamentals/whats-new "
    "(Entra Connect security hardening to prevent user account takeover)"
)
REF_UPN = "https://learn.microsoft.com/entra/identity/hybrid/connect/plan-connect-userprincipalname"


# --- cloud-orphan -----------------------------------------------------------------------------


def cloud_orphan(ctx: RuleContext) -> pl.DataFrame:
    rows = (
        ctx.cloud_anchors_without_ad.filter(pl.col("deleted_at").is_null())
        .join(ctx.misencoded_anchors.select("id"), on="id", how="anti")
        .join(
            ctx.objectguid_anchored.select(pl.col("og_cloud_id").alias("id")), on="id", how="anti"
        )
    )
    if rows.is_empty():
        return EMPTY
    synced = pl.col("sync_enabled").fill_null(False)
    # onPremisesSyncEnabled: true synced, false WAS synced (sync turned off), null never synced
    kind = (
        pl.when(synced)
        .then(pl.lit("Synced"))
        .when(pl.col("sync_enabled").is_not_null())
        .then(pl.lit("Formerly synced"))
        .otherwise(pl.lit("Cloud-only"))
    )
    out_of_scope = pl.col("oos_dn").is_not_null()
    detail = (
        pl.when(out_of_scope)
        .then(
            shape.say(
                "{} cloud user {} (id {}) holds anchor {} that no in-scope AD user has: AD user "
                "{} ({}) holds this anchor but is out of sync scope ({})",
                kind,
                "upn",
                "id",
                "immutable_id",
                "oos_dn",
                "oos_upn",
                "oos_reason",
            )
        )
        .otherwise(
            shape.say(
                "{} cloud user {} (id {}) holds anchor {} that no AD user has: its AD object "
                "was deleted, or lives outside the AD sources read (last known DN {})",
                kind,
                "upn",
                "id",
                "immutable_id",
                "on_prem_dn",
            )
        )
    )
    return rows.select(
        pl.col("oos_source").alias("ad_source"),
        pl.col("oos_dn").alias("ad_dn"),
        pl.col("oos_object_guid").alias("ad_object_guid"),
        pl.col("oos_upn").alias("ad_upn"),
        pl.col("immutable_id").alias("anchor"),
        pl.col("id").alias("cloud_id"),
        pl.col("upn").alias("cloud_upn"),
        pl.lit("active").alias("cloud_state"),
        detail.alias("detail"),
        shape.evidence(
            sync_enabled=pl.col("sync_enabled"),
            on_prem_dn=pl.col("on_prem_dn"),
            held_by_out_of_scope_ad_user=out_of_scope,
            out_of_scope_reason=pl.col("oos_reason"),
        ),
        # an anchor an out-of-scope AD user has is a hard match waiting for its OU, not a
        # stale value: clearing it would undo the preparation
        pl.when(synced | out_of_scope)
        .then(pl.lit(Action.manual))
        .otherwise(pl.lit(Action.clear_anchor))
        .alias("remediation"),
    )


# --- soft match -------------------------------------------------------------------------------


def _soft_rows(ctx: RuleContext) -> pl.DataFrame:
    """Unheld in-scope AD users (no active holder, no soft-deleted holder) with a candidate."""
    cands = ctx.soft_candidates.join(ctx.deleted_links.select(j.AD_KEY), on=j.AD_KEY, how="anti")
    if cands.is_empty():
        return EMPTY
    tokens, phrases = blockers.soft_match_blockers(ctx.features.block_soft_match.value)
    return ad_identity(ctx, cands.with_columns(blockers=tokens, blocker_text=phrases))


def _soft_evidence(ctx: RuleContext) -> pl.Expr:
    upn_feature = ctx.features.soft_match_on_upn
    upn_note = (
        "assumed on (unknown; the default for tenants since 2016)"
        if upn_feature.value is None
        else f"{'on' if upn_feature.value else 'off'} ({upn_feature.source})"
    )
    return shape.evidence(
        matched_on=pl.col("matched_on"),
        candidate_type=pl.col("cand_type"),
        blockers=pl.col("blockers"),
        soft_match_on_upn=pl.lit(upn_note),
        candidate_immutable_id=pl.col("cand_immutable_id"),
        candidate_on_prem_object_id=pl.col("cand_on_prem_object_id"),
        deleted_users_known=pl.lit(ctx.deleted_known),
        roles_known=pl.lit(ctx.met(Need.roles)),
    )


def _soft_output(
    ctx: RuleContext, rows: pl.DataFrame, detail: pl.Expr, remediation: pl.Expr
) -> pl.DataFrame:
    return rows.select(
        *shape.ad_output(rows),
        pl.col("anchor"),
        pl.col("cand_id").alias("cloud_id"),
        pl.col("cand_upn").alias("cloud_upn"),
        pl.lit("active").alias("cloud_state"),
        pl.col("matched_on").alias("attribute"),
        pl.col("matched_value").alias("value"),
        detail.alias("detail"),
        _soft_evidence(ctx),
        remediation.alias("remediation"),
    )


def soft_match_pending(ctx: RuleContext) -> pl.DataFrame:
    rows = _soft_rows(ctx)
    if rows.is_empty():
        return EMPTY
    rows = rows.filter(pl.col("blockers").list.len() == 0)
    caveats = []
    if not ctx.deleted_known:
        caveats.append(
            "soft-deleted users were not supplied: a deleted holder of the anchor would "
            "pre-empt this"
        )
    if not ctx.met(Need.roles):
        caveats.append(
            "role assignments were not supplied: a directory role on the candidate would "
            "block it (Existing Admin Role Conflict)"
        )
    caveat = f" ({'; '.join(caveats)})" if caveats else ""
    detail = shape.say(
        "AD user {} has no cloud user holding its anchor {}; cloud-only user {} (id {}) has the "
        "same {} {} and an empty immutableId: the next sync soft-matches and takes it over"
        + caveat,
        shape.who(),
        "anchor",
        "cand_upn",
        "cand_id",
        "matched_on",
        "matched_value",
    )
    return _soft_output(ctx, rows, detail, pl.lit(None, pl.String))


def soft_match_blocked(ctx: RuleContext) -> pl.DataFrame:
    rows = _soft_rows(ctx)
    if rows.is_empty():
        return EMPTY
    rows = rows.filter(pl.col("blockers").list.len() > 0)
    # A candidate whose immutableId is a misencoding of THIS AD user's anchor is one root cause,
    # reported (with the right value) as anchor-format-invalid.
    misencoded = ctx.misencoded_anchors.select(
        pl.col("id").alias("cand_id"),
        pl.col("ad_source").alias("source"),
        pl.col("ad_dn").alias("dn"),
    ).drop_nulls()
    rows = rows.join(misencoded, on=["cand_id", "source", "dn"], how="anti")
    if rows.is_empty():
        return EMPTY
    has = pl.col("blockers").list.contains
    synced_other = has("holds-other-immutable-id") & pl.col("cand_sync_enabled").fill_null(False)
    remediation = (
        pl.when(has("object-type-mismatch") | synced_other)
        .then(pl.lit(Action.manual))
        .when(has("admin-role"))
        .then(pl.lit(Action.roles_detour))
        .otherwise(pl.lit(Action.set_anchor))
    )
    detail = shape.say(
        "AD user {} has no cloud user holding its anchor {}; its soft-match candidate {} (id {}, "
        "same {} {}) cannot be matched: {}",
        shape.who(),
        "anchor",
        "cand_upn",
        "cand_id",
        "matched_on",
        "matched_value",
        "blocker_text",
    )
    return _soft_output(ctx, rows, detail, remediation)


# --- unmatched-ad -----------------------------------------------------------------------------


def unmatched_ad(ctx: RuleContext) -> pl.DataFrame:
    keys = (
        ctx.unheld_ad.select(j.AD_KEY)
        .join(ctx.deleted_links.select(j.AD_KEY), on=j.AD_KEY, how="anti")
        .join(ctx.soft_candidates.select(j.AD_KEY), on=j.AD_KEY, how="anti")
    )
    rows = ctx.scoped_ad.join(keys, on=j.AD_KEY, how="semi").filter(
        pl.col("enabled").fill_null(False)
    )
    if rows.is_empty():
        return EMPTY
    tenant = ctx.snapshot.tenant
    initial, _ = ctx.initial_domain
    predicted, not_verified, refused = upn.predicted_cloud_upn(
        tenant.verified_domains(), ctx.met(Need.tenant_domains), initial
    )
    suffix = upn.upn_suffix("upn")
    fallback_why = (
        pl.when(upn.suffix_never_verifiable("upn"))
        .then(shape.say(" (UPN suffix {} can never be a verified tenant domain)", suffix))
        .when(not_verified)
        .then(shape.say(" (UPN suffix {} is not a verified tenant domain)", suffix))
        .when(refused)
        .then(pl.lit(" (its UPN has characters Entra ID does not accept)"))
        .otherwise(pl.lit(""))
    )
    grace = ctx.now - timedelta(days=ctx.thresholds.unmatched_grace_days)
    overdue = pl.lit(tenant.dirsync_enabled is True) & (pl.col("when_created") < grace).fill_null(
        False
    )
    rows = rows.with_columns(predicted_upn=predicted, unverified=not_verified, overdue=overdue)
    detail = pl.concat_str(
        [
            shape.say(
                "In-scope enabled AD user {} has no cloud user holding its anchor {} and no "
                "soft-match candidate: the next sync creates a new cloud user {}",
                shape.who(),
                "anchor",
                "predicted_upn",
            ),
            fallback_why,
            pl.when(pl.col("overdue"))
            .then(
                shape.say(
                    "; it was created {} and sync is on, so it should have synced by now",
                    pl.col("when_created").dt.strftime("%Y-%m-%d"),
                )
            )
            .otherwise(pl.lit("")),
            pl.lit(
                ""
                if ctx.deleted_known
                else " (soft-deleted users were not supplied: a soft-deleted holder of its "
                "anchor would change this outcome)"
            ),
        ]
    )
    return rows.select(
        *shape.ad_output(rows),
        pl.col("anchor"),
        pl.lit("none").alias("cloud_state"),
        pl.when(pl.col("overdue"))
        .then(pl.lit(Severity.medium.name))
        .otherwise(pl.lit(Severity.info.name))
        .alias("severity"),
        detail.alias("detail"),
        shape.evidence(
            predicted_cloud_upn=pl.col("predicted_upn"),
            upn_suffix_verified=~pl.col("unverified"),
            when_created=pl.col("when_created").dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
            older_than_grace=pl.col("overdue"),
            deleted_users_known=pl.lit(ctx.deleted_known),
        ),
        pl.lit(None, pl.String).alias("remediation"),
    )


RULES: tuple[Rule, ...] = (
    Rule(
        RuleMeta(
            code="cloud-orphan",
            action=(
                "Find the missing AD account or bring it into sync scope; otherwise "
                "retire the cloud account."
            ),
            severity=Severity.medium,
            family="matching",
            title="Cloud user's anchor matches no AD user",
            explanation=(
                "An active cloud user with an onPremisesImmutableId (synced, or cloud-only with "
                "a hard match prepared) whose anchor no in-scope AD user has. A synced orphan "
                "means its AD object was deleted or moved out of every synced source and sync "
                "did not process it (stopped sync, deletion threshold, a forest not read here); "
                "a cloud-only one holds a stale or mistyped anchor. When an out-of-scope AD user "
                "has the anchor the finding names it and its scope reason: bringing it back in "
                "scope re-joins the account. Only emitted when every AD source was read "
                "completely; anchors already reported as anchor-format-invalid are not repeated. "
                "Synced users without any immutableId are not reported (no anchor to look up)."
            ),
            remediation=(
                'Synced: find the AD object (Get-ADUser -Filter "mS-DS-ConsistencyGuid -eq '
                '..." or by objectGUID), bring it back into scope, or let sync soft-delete the '
                "cloud user. Cloud-only: clear the stale anchor with Invoke-MgGraphRequest "
                "-Method PATCH -Uri 'v1.0/users/<id>' -Body '{\"onPremisesImmutableId\":null}' "
                "and verify after (Update-MgUser with $null does not clear it). Cloud-only with "
                "an out-of-scope AD user holding the anchor: a hard match prepared for when that "
                "user enters scope; the script leaves it (syncaudit forecast shows the outcome)."
            ),
            references=(REF_EXISTING_TENANT, REF_GRAPH_USER),
            remediation_actions=(Action.manual, Action.clear_anchor),
            requires=(Need.complete_ad,),  # "no AD user has it" is an absence
        ),
        cloud_orphan,
    ),
    Rule(
        RuleMeta(
            code="soft-match-pending",
            action="Confirm these cloud accounts should be taken over at the next sync.",
            severity=Severity.low,
            family="matching",
            title="Next sync will soft-match an existing cloud account",
            explanation=(
                "No active or soft-deleted cloud user holds the in-scope AD user's anchor, and "
                "an active cloud-only user with an empty immutableId and no admin role has the "
                "same primary SMTP address (or, when softMatchOnUpnEnabled is on or unknown, "
                "the same UPN): the next export soft-matches it and sync takes over its "
                "attributes. Usually wanted (the migration path); check it is the same person. "
                "Needs a complete cloud read; without the deleted-items read the finding says a "
                "soft-deleted holder would pre-empt it."
            ),
            remediation=(
                "Nothing if intended. Otherwise take the AD user out of scope or change its "
                "primary SMTP/UPN before the next Start-ADSyncSyncCycle."
            ),
            references=(REF_EXISTING_TENANT, REF_SYNC_FEATURES),
            requires=(Need.complete_cloud,),  # "no cloud user holds its anchor" is an absence
            caveats=(Need.deleted_users, Need.roles),
        ),
        soft_match_pending,
    ),
    Rule(
        RuleMeta(
            code="soft-match-blocked",
            action=(
                "Clear what blocks the match (admin role, existing anchor) so the next "
                "sync links the accounts."
            ),
            severity=Severity.high,
            family="matching",
            title="Soft match will fail",
            explanation=(
                "The in-scope AD user has no anchor holder and a soft-match candidate, but the "
                "match will fail; the evidence lists which of: the address belongs to a group "
                "or contact (ObjectTypeMismatch); the candidate holds a privileged directory role "
                "(Existing Admin Role Conflict: admins are never soft-matched); the tenant "
                "blocks soft match (blockSoftMatchEnabled); the candidate already holds a "
                "different immutableId (InvalidSoftMatch). Entra then provisions a new user whose "
                "UPN/SMTP collide and are quarantined (duplicate attribute resiliency)."
            ),
            remediation=(
                "Admin role: remove the roles, hard-delete any quarantined twin "
                "(Remove-MgDirectoryDeletedItem), sync, re-add the roles. Tenant block or stale "
                "immutableId on a cloud-only candidate: hard match with Update-MgUser -UserId "
                "<id> -OnPremisesImmutableId '<anchor>'. Group/contact or a candidate synced to "
                "another AD user: change the address on one side."
            ),
            references=(REF_EXISTING_TENANT, REF_SYNC_FEATURES, REF_SYNC_ERRORS),
            remediation_actions=(Action.roles_detour, Action.set_anchor, Action.manual),
            requires=(Need.complete_cloud,),
        ),
        soft_match_blocked,
    ),
    Rule(
        RuleMeta(
            code="unmatched-ad",
            action=(
                "Prepare a hard match if the person already has a cloud account; otherwise nothing."
            ),
            severity=Severity.info,
            family="matching",
            title="AD user will be created as a new cloud user",
            explanation=(
                "An in-scope, enabled AD user with no active or soft-deleted anchor holder and "
                "no soft-match candidate: the next sync provisions a new cloud user (with the "
                "predicted UPN: <mailNickname>@<initial domain> when the UPN suffix is not a "
                "verified domain). Medium when directory sync is on and the user is older than "
                "the grace period (thresholds.unmatched_grace_days): it should have synced "
                "already. Only emitted over a complete cloud read."
            ),
            remediation=(
                "If the person already has a cloud account, prepare a hard match (Update-MgUser "
                "-UserId <id> -OnPremisesImmutableId '<anchor>') before the next sync; if it "
                "should have synced, check the connector's export errors."
            ),
            references=(REF_EXISTING_TENANT, REF_UPN),
            requires=(Need.complete_cloud,),
            caveats=(Need.deleted_users,),
        ),
        unmatched_ad,
    ),
)
