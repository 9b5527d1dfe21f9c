"""The columns of a forecast row: outcome, Entra's error name, counterpart, predicted UPN,
reason, blocker and fix, from the branch forecast_people picked for the person (the error
names and their pages: forecast.py)."""

from __future__ import annotations

import polars as pl

from audit.forecast_blockers import BLOCKERS
from audit.rules import upn
from audit.rules.shape import say

QUARANTINE_DIGITS = "####"  # Entra picks four random digits


def parent_ou(column: str = "dn") -> pl.Expr:
    """The container of a DN: everything after the first unescaped comma."""
    return pl.col(column).str.replace(r"^(?:[^,\\]|\\.)*,", "")


def _quarantined(initial: str | None) -> pl.Expr:
    """The placeholder UPN duplicate-attribute resiliency gives a colliding UPN."""
    return pl.format(
        "{}{}@{}",
        pl.col("upn").str.replace(r"@.*$", ""),
        pl.lit(QUARANTINE_DIGITS),
        pl.lit(initial or "<initial domain>"),
    )


# branch -> (outcome, error name, blocker, remediation.ps1 action); None where it depends on
# the row (see people_columns). The actions are remediation.actions' ids. A row's fix is its
# blocker's (forecast_blockers) unless the person decides it.
_BRANCHES: dict[str, tuple[str | None, str | None, str | None, str | None]] = {
    "no-anchor": ("error", None, None, "manual"),
    "duplicate-anchor": ("error", None, "duplicate-anchor", "manual"),
    "joined": (None, None, None, None),
    "wrong-person": (None, None, "wrong-person", "manual"),
    "hard-refused": ("error", None, "hard-match-refused", None),
    "takeover": ("hard-match", None, None, None),
    "objectguid-anchored": ("error", "InvalidSoftMatch", "objectguid-anchored", "set-anchor"),
    "restore": ("hard-match", None, None, None),
    "object-type-mismatch": ("error", "ObjectTypeMismatch", "object-type-mismatch", "manual"),
    "invalid-soft-match": ("error", "InvalidSoftMatch", "invalid-soft-match", None),
    "admin-conflict": (
        "error",
        "Existing Admin Role Conflict",
        "admin-role-conflict",
        "roles-detour",
    ),
    "soft-match": ("soft-match", None, None, None),
    "address-not-unique": (
        "error",
        "AttributeValueMustBeUnique",
        "address-not-unique",
        "manual",
    ),
    "create": ("create", None, None, None),
    "update-not-unique": ("error", "AttributeValueMustBeUnique", "address-not-unique", "manual"),
}


def unchanged_columns() -> list[pl.Expr]:
    """The columns of a person joined to a synced cloud user that agrees with it: the same
    values people_columns gives them, from cheap expressions."""
    return [
        pl.col("dn").alias("ad_dn"),
        pl.col("object_guid").alias("ad_object_guid"),
        pl.lit("unchanged").alias("outcome"),
        pl.col("cloud_id"),
        pl.col("upn").alias("predicted_upn"),
        pl.lit(None, pl.String).alias("error"),
        # one shared string, not a million: cloud_upn names the account
        pl.lit("already joined to its synced cloud user; nothing to change").alias("reason"),
        pl.lit(None, pl.String).alias("fix"),
        pl.col("source").alias("ad_source"),
        pl.col("upn").alias("ad_upn"),
        parent_ou().alias("ou"),
        pl.when(pl.col("_was_in_scope"))
        .then(pl.lit("stays"))
        .otherwise(pl.lit("enters"))
        .alias("scope"),
        pl.col("cloud_upn"),
        pl.lit(None, pl.List(pl.String)).alias("property_conflict"),
        pl.lit(None, pl.String).alias("blocker"),
        pl.lit(None, pl.String).alias("fix_action"),
        pl.lit([], pl.List(pl.String)).alias("finding_codes"),
    ]


def _branch_value(position: int) -> pl.Expr:
    mapping = {b: v[position] for b, v in _BRANCHES.items()}
    return pl.col("_branch").replace_strict(mapping, default=None, return_dtype=pl.String)


def people_columns(initial: str | None) -> list[pl.Expr]:
    b = pl.col("_branch")
    synced = pl.col("cloud_sync_enabled").fill_null(False)
    conflict_upn = pl.col("conflict_upn").fill_null(False) & ~pl.col("_unverified")
    conflict_smtp = pl.col("conflict_smtp").fill_null(False)
    twin = b.is_in(["create", "admin-conflict"])  # a new cloud user is made
    # A matched account takes the AD user's values, except one another object owns: that one
    # stays quarantined (its soft-match candidate owning them is the match, not a conflict).
    matched = b.is_in(["joined", "takeover", "soft-match", "restore"])
    foreign_upn = pl.col("foreign_upn").fill_null(False) & ~pl.col("_unverified")
    foreign_smtp = pl.col("foreign_smtp").fill_null(False)
    joined_conflict = matched & (foreign_upn | foreign_smtp)
    quarantine = (twin & (conflict_upn | conflict_smtp)) | joined_conflict
    property_conflict = (
        pl.when(twin & quarantine)
        .then(
            pl.concat_list(
                pl.when(conflict_upn).then(pl.lit("UserPrincipalName")),
                pl.when(conflict_smtp).then(pl.lit("ProxyAddress")),
            ).list.drop_nulls()
        )
        .when(joined_conflict)
        .then(
            pl.concat_list(
                pl.when(foreign_upn).then(pl.lit("UserPrincipalName")),
                pl.when(foreign_smtp).then(pl.lit("ProxyAddress")),
            ).list.drop_nulls()
        )
    )
    changed = pl.col("_changes").list.len() > 0
    outcome = (
        pl.when(b == "joined")
        .then(pl.when(changed).then(pl.lit("update")).otherwise(pl.lit("unchanged")))
        .when(b == "wrong-person")
        .then(pl.when(synced).then(pl.lit("update")).otherwise(pl.lit("hard-match")))
        .otherwise(_branch_value(0))
    )
    error = (
        pl.when(b == "hard-refused")
        .then(
            pl.when(pl.col("cloud_on_prem_object_id").is_not_null())
            .then(pl.lit("AttributeUpdateNotAllowed"))
            .otherwise(pl.lit("InvalidHardMatch"))
        )
        .otherwise(_branch_value(1))
    )
    cloud_id = (
        pl.when(b == "objectguid-anchored")
        .then(pl.col("og_cloud_id"))
        .when(b == "restore")
        .then(pl.col("deleted_id"))
        .when(pl.col("cloud_id").is_not_null())
        .then(pl.col("cloud_id"))
        .when(pl.col("cand_id").is_not_null() & ~b.is_in(["create"]))
        .then(pl.col("cand_id"))
    )
    cloud_upn = (
        pl.when(b == "objectguid-anchored")
        .then(pl.col("og_cloud_upn"))
        .when(b == "restore")
        .then(pl.col("deleted_upn"))
        .when(pl.col("cloud_id").is_not_null())
        .then(pl.col("cloud_upn"))
        .when(pl.col("cand_id").is_not_null())
        .then(pl.col("cand_upn"))
    )
    usable_upn = ~pl.col("_unverified") & ~pl.col("_upn_blocked") & ~foreign_upn
    predicted = (
        pl.when(twin)
        .then(pl.when(conflict_upn).then(_quarantined(initial)).otherwise(pl.col("_predicted")))
        .when(b.is_in(["joined", "wrong-person", "takeover"]))
        .then(pl.when(usable_upn).then(pl.col("upn")).otherwise(pl.col("cloud_upn")))
        .when(b == "soft-match")
        .then(pl.when(usable_upn).then(pl.col("upn")).otherwise(pl.col("cand_upn")))
        .when(b == "restore")
        .then(pl.when(usable_upn).then(pl.col("upn")).otherwise(pl.col("deleted_upn")))
    )
    waiting = pl.col("cand_id").is_not_null() & (pl.col("cand_type") == "user")
    hard_action = (
        pl.when(pl.col("_hard_blockers").list.contains("on-prem-object-id-set"))
        .then(pl.lit("clear-onprem-object-id"))
        .when(
            pl.col("_hard_blockers").list.contains("privileged-role-assigned")
            | pl.col("_hard_blockers").list.contains("privileged-role-eligible")
        )
        .then(pl.lit("roles-detour"))
        .otherwise(pl.lit("manual"))
    )
    other_id_action = (
        pl.when(pl.col("cand_sync_enabled").fill_null(False))
        .then(pl.lit("manual"))
        .otherwise(pl.lit("set-anchor"))
    )
    duplicate = (b == "joined") & pl.col("duplicate").fill_null(False)
    blocker = (
        pl.when(duplicate)
        .then(pl.lit("duplicate-account"))
        # a value of a joined user another object owns stays quarantined, as it is today: the
        # export succeeds (resiliency), so it is said (property_conflict, fix) but blocks nothing
        .when(b == "joined")
        .then(pl.lit(None, pl.String))
        .when(b == "restore")
        .then(pl.when(waiting).then(pl.lit("restore-collides")))
        .when(b == "create")
        .then(
            pl.when(quarantine)
            .then(pl.lit("quarantine"))
            .when(pl.col("_unverified"))
            .then(pl.lit("unverified-upn-suffix"))
        )
        .otherwise(_branch_value(2))
    )
    fix_action = (
        pl.when(b == "hard-refused")
        .then(hard_action)
        .when(b == "invalid-soft-match")
        .then(other_id_action)
        .when(blocker == "restore-collides")
        .then(pl.lit("purge-deleted-holder"))
        .when(blocker == "duplicate-account")
        .then(pl.lit("merge-duplicate-cloud"))
        .when(joined_conflict)
        .then(pl.lit("manual"))
        .when(blocker == "quarantine")
        .then(pl.lit("set-anchor"))
        .when(blocker == "unverified-upn-suffix")
        .then(pl.lit("ad-set-attribute"))
        .otherwise(_branch_value(3))
    )
    fix = (
        pl.when(b == "hard-refused")
        .then(
            say(
                "Before the change: {} ({}); or switch the tenant's takeover block off for the "
                "match window.",
                pl.col("_hard_text"),
                hard_action,
            )
        )
        .when(b == "invalid-soft-match")
        .then(
            pl.when(pl.col("cand_misencoded").fill_null(False))
            .then(
                pl.lit(
                    "Its immutableId is this user's anchor in the wrong encoding: write the "
                    "correct value (fix-anchor-encoding) and the hard match finds it."
                )
            )
            .when(pl.col("cand_sync_enabled").fill_null(False))
            .then(
                pl.lit(
                    "The candidate is synced to another AD user: change the address on one side."
                )
            )
            .otherwise(
                pl.lit(
                    "Hard-match instead: set the candidate's onPremisesImmutableId to this "
                    "user's anchor (set-anchor), or clear its stale one."
                )
            )
        )
        .when(blocker == "restore-collides")
        .then(
            say(
                "Purge the soft-deleted user {} (purge-deleted-holder) so {} is soft-matched, "
                "or restore it and retire {}.",
                "deleted_upn",
                "cand_upn",
                "cand_upn",
            )
        )
        .when(blocker == "duplicate-account")
        .then(
            say(
                "Merge the accounts: the original cloud account {} owns the value the sync "
                "writes (merge-duplicate-cloud).",
                pl.col("conflict_with").list.join(", "),
            )
        )
        .when(joined_conflict)
        .then(
            say(
                "Remove the value from {} or from the AD user; until then it stays quarantined.",
                pl.col("conflict_with").list.join(", "),
            )
        )
        .when(blocker == "quarantine")
        .then(
            pl.lit(
                "If the person already has that cloud account, hard-match it first (set-anchor); "
                "otherwise change the colliding address before the sync."
            )
        )
        .when(blocker == "unverified-upn-suffix")
        .then(
            say(
                "Verify {} in the tenant or change the UPN suffix (ad-set-attribute) before "
                "the sync.",
                upn.upn_suffix("upn"),
            )
        )
        .when(b == "no-anchor")
        .then(pl.lit("Export objectGUID for this user and re-run."))
        .otherwise(
            blocker.replace_strict(
                {kind: fix for kind, (_title, _no_go, fix) in BLOCKERS.items()},
                default=None,
                return_dtype=pl.String,
            )
        )
    )
    return [
        pl.col("dn").alias("ad_dn"),
        pl.col("object_guid").alias("ad_object_guid"),
        outcome.alias("outcome"),
        cloud_id.alias("cloud_id"),
        predicted.alias("predicted_upn"),
        error.alias("error"),
        reason().alias("reason"),
        fix.alias("fix"),
        pl.col("source").alias("ad_source"),
        pl.col("upn").alias("ad_upn"),
        parent_ou().alias("ou"),
        pl.when(pl.col("_was_in_scope"))
        .then(pl.lit("stays"))
        .otherwise(pl.lit("enters"))
        .alias("scope"),
        cloud_upn.alias("cloud_upn"),
        property_conflict.alias("property_conflict"),
        blocker.alias("blocker"),
        fix_action.alias("fix_action"),
        finding_codes().alias("finding_codes"),
    ]


def reason() -> pl.Expr:
    b = pl.col("_branch")
    synced = pl.col("cloud_sync_enabled").fill_null(False)
    waiting = pl.col("cand_id").is_not_null() & (pl.col("cand_type") == "user")
    on = ("matched_on", "matched_value")
    head = (
        pl.when(b == "no-anchor")
        .then(pl.lit("its sourceAnchor is unknown (objectGUID was not exported)"))
        .when(b == "duplicate-anchor")
        .then(
            say(
                "another in-scope AD user sends the same sourceAnchor {}: Entra joins only one "
                "of them",
                "anchor",
            )
        )
        .when(b == "joined")
        .then(
            pl.when(pl.col("_changes").list.len() > 0)
            .then(
                say(
                    "already joined to synced cloud user {}; the next sync writes {}",
                    "cloud_upn",
                    pl.col("_changes").list.join("; "),
                )
            )
            .otherwise(
                say("already joined to synced cloud user {}; nothing to change", "cloud_upn")
            )
        )
        .when(b == "wrong-person")
        .then(
            say(
                "its anchor {} links it to {} cloud user {}, but no identity attribute agrees: "
                "the next sync {} another person's account",
                "anchor",
                pl.when(synced).then(pl.lit("synced")).otherwise(pl.lit("cloud-only")),
                "cloud_upn",
                pl.when(synced).then(pl.lit("overwrites")).otherwise(pl.lit("takes over")),
            )
        )
        .when(b == "hard-refused")
        .then(
            say(
                "its anchor {} is held by unsynced cloud user {}, so the sync hard-matches it; "
                "Entra refuses: {}",
                "anchor",
                "cloud_upn",
                "_hard_text",
            )
        )
        .when(b == "takeover")
        .then(
            say(
                "hard match: its anchor {} is held by unsynced cloud user {}, which the next "
                "sync takes over",
                "anchor",
                "cloud_upn",
            )
        )
        .when(b == "objectguid-anchored")
        .then(
            say(
                "cloud user {} holds this user's objectGUID as its immutableId but sync sends "
                "the anchor {}: the hard match misses it and a soft match onto it fails",
                "og_cloud_upn",
                "anchor",
            )
        )
        .when(b == "restore")
        .then(
            say(
                "soft-deleted cloud user {} holds its anchor {}: the sync restores it",
                "deleted_upn",
                "anchor",
            )
        )
        .when(b == "object-type-mismatch")
        .then(say("soft match on {} {} finds {} {}, not a user", *on, "cand_type", "cand_upn"))
        .when(b == "invalid-soft-match")
        .then(say("soft match on {} {} finds {}, which holds another immutableId", *on, "cand_upn"))
        .when(b == "admin-conflict")
        .then(
            say(
                "soft match on {} {} finds {}, which holds a directory role: admins are never "
                "soft-matched, so a second account is made",
                *on,
                "cand_upn",
            )
        )
        .when(b == "soft-match")
        .then(say("soft match on {} {}: cloud-only user {} is taken over", *on, "cand_upn"))
        .when(b == "update-not-unique")
        .then(
            say(
                "joined to synced cloud user {}, but a value the sync writes belongs to a group "
                "or contact ({}): the update fails",
                "cloud_upn",
                pl.col("conflict_with").list.join(", "),
            )
        )
        .when(b == "address-not-unique")
        .then(
            pl.lit(
                "a new cloud user is made, but an address of it belongs to a group or contact: "
                "that conflict is not quarantined, the export fails"
            )
        )
        .otherwise(
            say(
                "no cloud user holds its anchor {} and none matches softly: a new cloud user",
                "anchor",
            )
        )
    )
    target = pl.coalesce("cloud_upn", "cand_upn")
    tail = pl.concat_str(
        pl.when((b == "restore") & waiting)
        .then(
            say(
                "; cloud-only user {} (same {}) keeps the address, the restored user's are "
                "quarantined",
                "cand_upn",
                "matched_on",
            )
        )
        .otherwise(pl.lit("")),
        pl.when(b.is_in(["create", "admin-conflict"]) & pl.col("conflict_with").is_not_null())
        .then(
            say(
                "; its colliding UPN/SMTP values are quarantined (PropertyConflict; owned by {})",
                pl.col("conflict_with").list.join(", "),
            )
        )
        .when(
            b.is_in(["joined", "takeover", "soft-match", "restore"])
            & (pl.col("foreign_upn").fill_null(False) | pl.col("foreign_smtp").fill_null(False))
        )
        .then(
            say(
                "; another cloud object ({}) owns a value of it, which stays quarantined "
                "(PropertyConflict)",
                pl.col("conflict_with").list.join(", "),
            )
        )
        .otherwise(pl.lit("")),
        pl.when((b == "create") & pl.col("cand_id").is_not_null())
        .then(say("; the tenant blocks soft match, so {} is not taken over", "cand_upn"))
        .otherwise(pl.lit("")),
        pl.when((b == "create") & pl.col("_unverified"))
        .then(pl.lit("; its UPN suffix is not a verified domain, so it gets the initial domain"))
        .otherwise(pl.lit("")),
        pl.when(
            b.is_in(["joined", "takeover", "soft-match"])
            & pl.col("_upn_blocked")
            & ~pl.col("_unverified")
            & (pl.col("upn").str.to_lowercase() != target.str.to_lowercase()).fill_null(False)
        )
        .then(
            say(
                "; its UPN stays {}: synchronizeUpnForManagedUsersEnabled is off (a licensed "
                "user in a managed domain)",
                target,
            )
        )
        .otherwise(pl.lit("")),
        pl.when(b.is_in(["create", "admin-conflict"]) & ~pl.col("enabled").fill_null(True))
        .then(pl.lit("; created disabled, as in AD"))
        .otherwise(pl.lit("")),
    )
    return pl.concat_str(head, tail)


def finding_codes() -> pl.Expr:
    """The finding codes the rules give this person's match (forecast and findings agree)."""
    held = pl.col("cloud_id").is_not_null()
    unheld = ~held & pl.col("anchor").is_not_null() & pl.col("og_cloud_id").is_null()
    free = unheld & pl.col("deleted_id").is_null()
    cand = pl.col("cand_id").is_not_null()
    blocked = pl.col("cand_blockers").list.len().fill_null(0) > 0
    misencoded = pl.col("cand_misencoded").fill_null(False)
    return pl.concat_list(
        pl.when(pl.col("_dup")).then(pl.lit("anchor-duplicate-ad")),
        pl.when(held & ~pl.col("_same")).then(pl.lit("anchor-held-by-other")),
        pl.when(held & (pl.col("_hard_blockers").list.len() > 0)).then(
            pl.lit("hard-match-blocked")
        ),
        pl.when(unheld & pl.col("deleted_id").is_not_null()).then(pl.lit("anchor-held-by-deleted")),
        pl.when(free & cand & ~blocked).then(pl.lit("soft-match-pending")),
        pl.when(free & cand & blocked & ~misencoded).then(pl.lit("soft-match-blocked")),
        # a candidate holding a misencoding of this user's anchor is that one cause
        pl.when(free & cand & misencoded).then(pl.lit("anchor-format-invalid")),
        pl.when(free & ~cand & pl.col("enabled").fill_null(False)).then(pl.lit("unmatched-ad")),
        pl.when(pl.col("duplicate").fill_null(False)).then(pl.lit("duplicate-cloud-account")),
        pl.when(pl.col("foreign").fill_null(False)).then(pl.lit("attribute-conflict-cloud")),
    ).list.drop_nulls()
