"""Why Entra refuses a match, as expressions over candidate rows: the soft-match blockers
(admin role, another immutableId, object type, the tenant switch) and the 2026 hard-match
hardening (onPremisesObjectIdentifier, privileged roles). FACTS.md section 1.
"""

from __future__ import annotations

import polars as pl

from audit.rules.shape import non_empty, noun, say


def soft_match_blockers(block_soft_match: bool | None) -> tuple[pl.Expr, pl.Expr]:
    """(reason tokens, human phrase) why a soft-match candidate cannot be taken over.

    Works on soft_match_candidates rows. Empty list = the next sync will soft-match it.
    """
    roles = pl.col("cand_directory_roles").list.join(", ")
    checks: list[tuple[pl.Expr, str, pl.Expr]] = [
        (
            pl.col("cand_type") != "user",
            "object-type-mismatch",
            say("the address belongs to {} {} (ObjectTypeMismatch)", "cand_type", "cand_upn"),
        ),
        (
            non_empty("cand_directory_roles"),
            "admin-role",
            say(
                "{} holds {} {} (Existing Admin Role Conflict)",
                "cand_upn",
                noun(pl.col("cand_directory_roles").list.len(), "directory role"),
                roles,
            ),
        ),
        (
            pl.lit(block_soft_match is True),
            "soft-match-blocked-by-tenant",
            pl.lit("the tenant blocks soft match (blockSoftMatchEnabled)"),
        ),
        (
            pl.col("cand_immutable_id").is_not_null(),
            "holds-other-immutable-id",
            say(
                "{} already holds immutableId {} (InvalidSoftMatch)",
                "cand_upn",
                "cand_immutable_id",
            ),
        ),
    ]
    tokens = pl.concat_list(
        [pl.when(cond).then(pl.lit(token)) for cond, token, _ in checks]
    ).list.drop_nulls()
    phrases = (
        pl.concat_list([pl.when(cond).then(text) for cond, _, text in checks])
        .list.drop_nulls()
        .list.join("; ")
    )
    return tokens, phrases


def hard_match_blockers(prefix: str, takeover_blocked: bool | None) -> tuple[pl.Expr, pl.Expr]:
    """(reason tokens, human phrase) why Entra would refuse a hard match onto the cloud user in
    the ``{prefix}*`` columns: the 2026 hardening (onPremisesObjectIdentifier set, privileged role
    assigned or PIM-eligible) or blockCloudObjectTakeoverThroughHardMatchEnabled."""
    upn = f"{prefix}upn"
    checks: list[tuple[pl.Expr, str, pl.Expr]] = [
        (
            pl.col(f"{prefix}on_prem_object_id").is_not_null(),
            "on-prem-object-id-set",
            say(
                "{} has onPremisesObjectIdentifier {} set (it was synced before)",
                upn,
                f"{prefix}on_prem_object_id",
            ),
        ),
        (
            non_empty(f"{prefix}admin_roles"),
            "privileged-role-assigned",
            say(
                "{} has {} {} assigned",
                upn,
                noun(pl.col(f"{prefix}admin_roles").list.len(), "privileged role"),
                pl.col(f"{prefix}admin_roles").list.join(", "),
            ),
        ),
        (
            non_empty(f"{prefix}eligible_roles"),
            "privileged-role-eligible",
            say(
                "{} is PIM-eligible for {} {}",
                upn,
                noun(pl.col(f"{prefix}eligible_roles").list.len(), "privileged role"),
                pl.col(f"{prefix}eligible_roles").list.join(", "),
            ),
        ),
        (
            pl.lit(takeover_blocked is True),
            "takeover-blocked-by-tenant",
            pl.lit(
                "the tenant blocks cloud object takeover through hard match "
                "(blockCloudObjectTakeoverThroughHardMatchEnabled)"
            ),
        ),
    ]
    tokens = pl.concat_list(
        [pl.when(cond).then(pl.lit(token)) for cond, token, _ in checks]
    ).list.drop_nulls()
    phrases = (
        pl.concat_list([pl.when(cond).then(text) for cond, _, text in checks])
        .list.drop_nulls()
        .list.join("; ")
    )
    return tokens, phrases
