"""hard-match-blocked: the 2026 Entra Connect hardening refuses to hard-match a cloud user
that has onPremisesObjectIdentifier set or holds (or is eligible for) a privileged role, and
takeover of cloud-only accounts may be blocked by the tenant switch. Part of the matching family
(FACTS.md section 1)."""

from __future__ import annotations

import polars as pl

from audit.model import Action, Need, RuleMeta, Severity
from audit.rules import blockers, shape
from audit.rules.anchor import EMPTY, REF_DUPLICATE_RESILIENCY, REF_EXISTING_TENANT, ad_identity
from audit.rules.base import Rule, RuleContext
from audit.rules.matching import REF_HARDENING, SET_ANCHOR_CASE

# --- hard-match-blocked -----------------------------------------------------------------------

_TARGET_COLUMNS = ("id", "upn", "on_prem_object_id", "admin_roles", "eligible_roles")


def _hard_block_output(
    ctx: RuleContext, rows: pl.DataFrame, prefix: str, case: str, why: pl.Expr
) -> pl.DataFrame:
    tokens, phrases = blockers.hard_match_blockers(
        prefix, ctx.features.block_hard_match_takeover.value
    )
    rows = rows.with_columns(blockers=tokens, blocker_text=phrases).filter(
        pl.col("blockers").list.len() > 0
    )
    if rows.is_empty():
        return EMPTY
    has = pl.col("blockers").list.contains
    recovery = (
        pl.concat_list(
            pl.when(has("on-prem-object-id-set")).then(
                shape.say(
                    "clear onPremisesObjectIdentifier (Invoke-MgGraphRequest -Method PATCH -Uri "
                    "'beta/users/{}' -Body '{\"onPremisesObjectIdentifier\":null}')",
                    f"{prefix}id",
                )
            ),
            pl.when(has("privileged-role-assigned") | has("privileged-role-eligible")).then(
                pl.lit("remove the role assignment/eligibility, let the match happen, re-add it")
            ),
            pl.when(has("takeover-blocked-by-tenant")).then(
                pl.lit(
                    "switch blockCloudObjectTakeoverThroughHardMatchEnabled off for the match "
                    "window (Update-MgDirectoryOnPremiseSynchronization) and back on"
                )
            ),
        )
        .list.drop_nulls()
        .list.join(", then ")
    )
    # tshoot-connect-sync-errors (2026-07): a target whose onPremisesObjectIdentifier is set
    # fails with AttributeUpdateNotAllowed, a privileged one (and the tenant's takeover block)
    # with InvalidHardMatch
    error = (
        pl.when(has("on-prem-object-id-set"))
        .then(pl.lit("AttributeUpdateNotAllowed"))
        .otherwise(pl.lit("InvalidHardMatch"))
    )
    detail = shape.say(
        "{}; Entra will refuse that hard match ({}, 'Hard match operation blocked due to "
        "security hardening'): {}. Recovery: {}, then Start-ADSyncSyncCycle -PolicyType Delta",
        why,
        error,
        "blocker_text",
        recovery,
    )
    remediation = (
        pl.when(has("on-prem-object-id-set"))
        .then(pl.lit(Action.clear_onprem_object_id))
        .when(has("privileged-role-assigned") | has("privileged-role-eligible"))
        .then(pl.lit(Action.roles_detour))
        .otherwise(pl.lit(Action.manual))
    )
    return rows.select(
        *shape.ad_output(rows),
        pl.col("anchor"),
        pl.col(f"{prefix}id").alias("cloud_id"),
        pl.col(f"{prefix}upn").alias("cloud_upn"),
        pl.lit("active").alias("cloud_state"),
        detail.alias("detail"),
        shape.evidence(
            case=pl.lit(case),
            blockers=pl.col("blockers"),
            on_prem_object_id=pl.col(f"{prefix}on_prem_object_id"),
            on_prem_object_id_is_this_ad_user=(
                pl.col(f"{prefix}on_prem_object_id").str.to_lowercase() == pl.col("object_guid")
            ),
            admin_roles=pl.col(f"{prefix}admin_roles"),
            eligible_roles=pl.col(f"{prefix}eligible_roles"),
        ),
        remediation.alias("remediation"),
    )


def hard_match_blocked(ctx: RuleContext) -> pl.DataFrame:
    frames: list[pl.DataFrame] = []
    # (a) sync itself: the anchor is held by a cloud-only (or formerly synced) active user, so
    # the next export takes it over by hard match.
    takeover = ctx.hard_matches.filter(~pl.col("cloud_sync_enabled").fill_null(False))
    if takeover.height:
        frames.append(
            _hard_block_output(
                ctx,
                takeover,
                "cloud_",
                "sync-takeover",
                shape.say(
                    "AD user {}'s anchor {} is held by unsynced cloud user {}, so the next sync "
                    "takes that account over by hard match",
                    shape.who(),
                    "anchor",
                    "cloud_upn",
                ),
            )
        )
    # (b) remediation: the only way to join the AD user to the account is to set its anchor.
    if ctx.allows(SET_ANCHOR_CASE) and ctx.soft_candidates.height:
        block_soft = ctx.features.block_soft_match.value is True
        needs_hard = (pl.col("cand_type") == "user") & (
            pl.lit(block_soft)
            | (
                pl.col("cand_immutable_id").is_not_null()
                & ~pl.col("cand_sync_enabled").fill_null(False)
            )
        )
        cands = ctx.soft_candidates.filter(needs_hard)
        if cands.height:
            frames.append(
                _hard_block_output(
                    ctx,
                    ad_identity(ctx, cands),
                    "cand_",
                    "remediation-set-anchor",
                    shape.say(
                        "AD user {} can only be joined to cloud-only user {} (same {}) by setting "
                        "its anchor on that account ({})",
                        shape.who(),
                        "cand_upn",
                        "matched_on",
                        pl.lit(
                            "the tenant blocks soft match"
                            if block_soft
                            else "it holds a stale immutableId, so soft match fails"
                        ),
                    ),
                )
            )
    pairs = ctx.duplicate_cloud_pairs
    if pairs.height:
        targets = ctx.active_cloud.select(*[pl.col(c).alias(f"b_{c}") for c in _TARGET_COLUMNS])
        merged = ad_identity(ctx, pairs).join(targets, left_on="owner_id", right_on="b_id")
        merged = merged.with_columns(b_id=pl.col("owner_id"))
        frames.append(
            _hard_block_output(
                ctx,
                merged,
                "b_",
                "remediation-merge-duplicate",
                shape.say(
                    "Merging the duplicate accounts of AD user {} means hard-matching its "
                    "original cloud account {}",
                    shape.who(),
                    "b_upn",
                ),
            )
        )
    frames = [f for f in frames if f.height]
    if not frames:
        return EMPTY
    return pl.concat(frames, how="vertical").unique(
        ["ad_dn", "ad_source", "cloud_id"], keep="first", maintain_order=True
    )


RULES: tuple[Rule, ...] = (
    Rule(
        RuleMeta(
            code="hard-match-blocked",
            action=(
                "Clear onPremisesObjectIdentifier or take the admin roles off before matching."
            ),
            severity=Severity.high,
            family="matching",
            title="Hard match refused by the 2026 hardening",
            explanation=(
                "A hard match that sync or the remediation needs will be refused "
                "('Hard match operation blocked due to security hardening': "
                "AttributeUpdateNotAllowed for an onPremisesObjectIdentifier already set, "
                "InvalidHardMatch for a privileged target or the tenant's takeover block) "
                "because the TARGET cloud user has onPremisesObjectIdentifier set, or a "
                "privileged role assigned or PIM-eligible; or because the tenant blocks cloud "
                "object takeover through hard match. Targets checked: (a) sync-takeover: the "
                "active holder of an in-scope AD user's anchor that is not synced; (b) "
                "remediation-set-anchor: a cloud-only soft-match candidate reachable only by "
                "setting its anchor (tenant blocks soft match, or it holds a stale immutableId); "
                "(c) remediation-merge-duplicate: the original account B of a "
                "duplicate-cloud-account. Soft-match candidates blocked only by an admin role "
                "are soft-match-blocked (roles detour), not repeated here."
            ),
            remediation=(
                "onPremisesObjectIdentifier: Invoke-MgGraphRequest -Method PATCH -Uri "
                "'beta/users/<id>' -Body '{\"onPremisesObjectIdentifier\":null}' (needs "
                "User-OnPremisesSyncBehavior.ReadWrite.All and Global or Hybrid Identity "
                "Administrator). "
                "Roles: remove the assignment/eligibility, match, re-add it. Tenant switch: "
                "Update-MgDirectoryOnPremiseSynchronization for the window only. Then "
                "Start-ADSyncSyncCycle -PolicyType Delta. Keep "
                "allowOnPremUpdateOfOnPremisesObjectIdentifierEnabled off."
            ),
            references=(REF_HARDENING, REF_EXISTING_TENANT, REF_DUPLICATE_RESILIENCY),
            remediation_actions=(Action.clear_onprem_object_id, Action.roles_detour, Action.manual),
            cases=(SET_ANCHOR_CASE,),
            caveats=(Need.roles,),
        ),
        hard_match_blocked,
    ),
)
