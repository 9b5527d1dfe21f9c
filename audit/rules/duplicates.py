"""Duplicates family: one person with two cloud accounts, values two AD objects share, and AD
values a cloud object already owns (AttributeValueMustBeUnique, FACTS.md section 2)."""

from __future__ import annotations

import polars as pl

from audit.model import Action, RuleMeta, Severity
from audit.rules import addresses, shape
from audit.rules import joins as j
from audit.rules.anchor import (
    REF_DUPLICATE_RESILIENCY,
    REF_EXISTING_TENANT,
    REF_SYNC_ERRORS,
    ad_identity,
)
from audit.rules.base import Rule, RuleContext

_EMPTY = pl.DataFrame()
# Parties named per row (a value on thousands of objects would make the report quadratic);
# evidence.party_count has the full count.
_MAX_PARTIES = 25
_QUARANTINED = r"(?i)^[^@]*\d{4}@[^@]+\.onmicrosoft\.com$"
REF_IDFIX = "https://learn.microsoft.com/microsoft-365/enterprise/install-and-run-idfix"
REF_PREPARE = (
    "https://learn.microsoft.com/microsoft-365/enterprise/prepare-for-directory-synchronization"
)


def _attribute_names(column: str) -> pl.Expr:
    """AD attribute tags as admins know them (the primary SMTP is a proxyAddresses value)."""
    return (
        pl.col(column)
        .list.eval(pl.element().replace("primarySmtp", "proxyAddresses"))
        .list.unique()
        .list.sort()
        .list.join(",")
    )


# --- duplicate-cloud-account ------------------------------------------------------------------


def duplicate_cloud_account(ctx: RuleContext) -> pl.DataFrame:
    pairs = ctx.duplicate_cloud_pairs
    if pairs.is_empty():
        return _EMPTY
    cloud = ctx.active_cloud
    holders = cloud.select(
        pl.col("id").alias("holder_id"),
        pl.col("upn").alias("holder_upn"),
        pl.col("created").alias("holder_created"),
    )
    others = cloud.select(
        pl.col("id").alias("owner_id"),
        pl.col("upn").alias("b_upn"),
        pl.col("sync_enabled").alias("b_sync_enabled"),
        pl.col("immutable_id").alias("b_immutable_id"),
        pl.col("created").alias("b_created"),
    )
    rows = ad_identity(ctx, pairs).join(holders, on="holder_id").join(others, on="owner_id")
    quarantined = pl.col("holder_upn").str.contains(_QUARANTINED).fill_null(False)
    detail = pl.concat_str(
        [
            shape.say(
                "AD user {} is matched to cloud user {} (id {}) while another active cloud user "
                "{} (id {}, not synced) also has its {} {}: one person, two cloud accounts",
                shape.who(),
                "holder_upn",
                "holder_id",
                "b_upn",
                "owner_id",
                _attribute_names("attributes"),
                pl.col("values").list.join(", "),
            ),
            pl.when(quarantined)
            .then(
                shape.say(
                    "; {} is the quarantined twin sync created when the value collided",
                    "holder_upn",
                )
            )
            .otherwise(pl.lit("")),
        ]
    )
    return rows.select(
        *shape.ad_output(rows),
        pl.col("anchor"),
        pl.col("owner_id").alias("cloud_id"),
        pl.col("b_upn").alias("cloud_upn"),
        pl.lit("active").alias("cloud_state"),
        _attribute_names("attributes").alias("attribute"),
        pl.col("values").list.join(",").alias("value"),
        detail.alias("detail"),
        shape.evidence(
            matched_cloud_id=pl.col("holder_id"),
            matched_cloud_upn=pl.col("holder_upn"),
            matched_looks_quarantined=quarantined,
            other_sync_enabled=pl.col("b_sync_enabled"),
            other_immutable_id=pl.col("b_immutable_id"),
            # which account to keep when A is not a quarantined twin: the older one
            matched_created=pl.col("holder_created").dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
            other_created=pl.col("b_created").dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        ),
        pl.lit(Action.merge_duplicate_cloud).alias("remediation"),
    )


# --- duplicate-ad-attribute -------------------------------------------------------------------


def duplicate_ad_attribute(ctx: RuleContext) -> pl.DataFrame:
    keys = ctx.ad_address_keys
    # is_duplicated is a cheap pre-filter; n_unique then counts distinct objects only.
    shared = (
        keys.filter(pl.col("address").hash().is_duplicated())
        .group_by("address")
        .agg(pl.col(j.AD_KEY).n_unique().alias("n"))
        .filter(pl.col("n") > 1)
    )
    shared_values = addresses.ad_attributes(
        keys.join(shared, on="address", how="semi").unique([j.AD_KEY, "address"]),
        ctx.scoped_ad,
    ).with_columns(space=pl.lit("address"))
    nicknames = (
        ctx.scoped_ad.select(j.AD_KEY, addresses.lower("mail_nickname").alias("address"))
        .filter(pl.col("address").is_not_null() & (pl.col("address") != ""))
        .filter(pl.col("address").hash().is_duplicated())
        .filter(pl.col("address").is_duplicated())
        .with_columns(
            attribute=pl.lit(["mailNickname"], dtype=pl.List(pl.String)),
            space=pl.lit("mailNickname"),
        )
    )
    # With no UPN, the cloud UPN is built from sAMAccountName (IdFix checks sAMAccountName
    # duplicates only then, SamAccountNameDuplicateRule): two such users collide.
    no_upn = pl.col("upn").is_null() | ~pl.col("upn").str.contains(r"\S")
    sams = (
        ctx.scoped_ad.select(j.AD_KEY, "upn", "sam_account_name")
        .filter(no_upn)
        .select(j.AD_KEY, addresses.lower("sam_account_name").alias("address"))
        .filter(pl.col("address").is_not_null() & (pl.col("address") != ""))
        .filter(pl.col("address").is_duplicated())
        .with_columns(
            attribute=pl.lit(["sAMAccountName"], dtype=pl.List(pl.String)),
            space=pl.lit("sAMAccountName"),
        )
    )
    per_party = pl.concat(
        [
            shared_values,
            nicknames.select(shared_values.columns),
            sams.select(shared_values.columns),
        ],
        how="vertical",
    )
    if per_party.is_empty():
        return _EMPTY
    rows = ad_identity(ctx, per_party)
    parties = rows.group_by("space", "address").agg(pl.col("dn").sort().alias("parties"))
    rows = rows.join(parties, on=["space", "address"])
    others = (
        pl.col("parties")
        .list.head(_MAX_PARTIES + 1)
        .list.set_difference(pl.concat_list(pl.col("dn")))
        .list.sort()
        .list.head(_MAX_PARTIES)
    )
    return rows.select(
        *shape.ad_output(rows),
        pl.col("anchor"),
        pl.lit("none").alias("cloud_state"),
        _attribute_names("attribute").alias("attribute"),
        pl.col("address").alias("value"),
        shape.say(
            "AD user {} has {} {}, which {} {} also {} ({}): Entra "
            "accepts it once, the other exports fail with AttributeValueMustBeUnique",
            shape.who(),
            _attribute_names("attribute"),
            "address",
            pl.col("parties").list.len() - 1,
            shape.noun(pl.col("parties").list.len() - 1, "other in-scope AD object"),
            shape.noun(pl.col("parties").list.len() - 1, "has", "have"),
            others.list.join("; "),
        ).alias("detail"),
        shape.evidence(
            uniqueness_space=pl.col("space"),
            party_count=pl.col("parties").list.len(),
            parties=pl.col("parties").list.head(_MAX_PARTIES),
        ),
        pl.lit(Action.manual).alias("remediation"),
    )


# --- attribute-conflict-cloud -----------------------------------------------------------------


def attribute_conflict_cloud(ctx: RuleContext) -> pl.DataFrame:
    collisions = ctx.address_collisions
    if collisions.is_empty():
        return _EMPTY
    # Where the owner IS the AD user's soft-match candidate (pending, blocked, or waiting behind a
    # soft-deleted holder) or the original account of a duplicate-cloud-account, those findings
    # describe the pair: it is a match (or a merge), not a conflict. So does the account that
    # holds the AD user's objectGUID while it is sent its ConsistencyGuid.
    matched = pl.concat(
        [
            ctx.soft_candidates.select(j.AD_KEY, pl.col("cand_id").alias("owner_id")),
            ctx.duplicate_cloud_pairs.select(j.AD_KEY, "owner_id"),
            ctx.objectguid_anchored.select(j.AD_KEY, pl.col("og_cloud_id").alias("owner_id")),
        ]
    )
    rows = collisions.join(matched, on=[j.AD_KEY, "owner_id"], how="anti")
    if rows.is_empty():
        return _EMPTY
    rows = addresses.owner_details(
        addresses.ad_attributes(rows, ctx.scoped_ad), ctx.active_cloud, ctx.snapshot.cloud_objects
    )
    rows = ad_identity(ctx, rows)
    return rows.select(
        *shape.ad_output(rows),
        pl.col("anchor"),
        pl.col("owner_id").alias("cloud_id"),
        pl.col("owner_name").alias("cloud_upn"),
        pl.lit("active").alias("cloud_state"),
        _attribute_names("attribute").alias("attribute"),
        pl.col("address").alias("value"),
        shape.say(
            "AD user {}'s {} {} is already owned by cloud {} {} (id {}, its {}), which is not "
            "its match: {}",
            shape.who(),
            _attribute_names("attribute"),
            "address",
            "owner_type",
            "owner_name",
            "owner_id",
            pl.col("owner_attribute").list.join(","),
            # duplicate-attribute resiliency quarantines a UPN or SMTP value another user owns;
            # one a group or contact owns still fails the export (its known issue 1)
            pl.when(pl.col("owner_type") == "user")
            .then(pl.lit("Entra quarantines the value on the AD user's account (PropertyConflict)"))
            .otherwise(pl.lit("the export fails with AttributeValueMustBeUnique")),
        ).alias("detail"),
        shape.evidence(
            owner_type=pl.col("owner_type"),
            owner_attributes=pl.col("owner_attribute"),
            owner_synced=pl.col("owner_synced"),
        ),
        pl.lit(Action.manual).alias("remediation"),
    )


RULES: tuple[Rule, ...] = (
    Rule(
        RuleMeta(
            code="duplicate-cloud-account",
            action="Merge each duplicate cloud account into the person's real one.",
            severity=Severity.high,
            family="duplicates",
            title="One person, two cloud accounts",
            explanation=(
                "The in-scope AD user is hard-matched to cloud user A while another active cloud "
                "user B that is not synced (onPremisesSyncEnabled not true) has its UPN, primary "
                "SMTP or mail in its UPN, mail or proxyAddresses. Typically B is the original "
                "cloud-only account (mailbox, licences, Teams) and A the twin sync provisioned "
                "when soft match did not happen, quarantined as <name>1234@<tenant>.onmicrosoft"
                ".com (duplicate attribute resiliency). A B that is synced to another AD user is "
                "reported as attribute-conflict-cloud instead: merging would be wrong there."
            ),
            remediation=(
                "A is synced, so it is not deleted in the cloud: take the AD user out of sync "
                "scope (move it to an OU that is not synced) and run a delta sync, which "
                "soft-deletes A; purge A (Remove-MgDirectoryDeletedItem), set the anchor on B "
                "(Update-MgUser -UserId <B> -OnPremisesImmutableId '<anchor>'), bring the AD "
                "user back and Start-ADSyncSyncCycle -PolicyType Delta: it hard-matches B "
                "(remediation.ps1's merge-duplicate-cloud action, with the run's values). See "
                "hard-match-blocked when B is privileged or has onPremisesObjectIdentifier set."
            ),
            references=(REF_DUPLICATE_RESILIENCY, REF_EXISTING_TENANT, REF_SYNC_ERRORS),
            remediation_actions=(Action.merge_duplicate_cloud,),
        ),
        duplicate_cloud_account,
    ),
    Rule(
        RuleMeta(
            code="duplicate-ad-attribute",
            action="Make the duplicated UPN / mail / proxy value unique in AD.",
            severity=Severity.high,
            family="duplicates",
            title="Value shared by several AD objects",
            explanation=(
                "A UPN, mail, mailNickname, smtp proxyAddresses or SMTP targetAddress value "
                "(case-insensitive) that "
                "more than one in-scope AD object has. UPN, mail, smtp proxies and targetAddress "
                "share one uniqueness space (Entra refuses a value any other object owns in any "
                "of them; Microsoft's prep doc requires targetAddress to be unique too), "
                "so alice@contoso.com as one user's UPN and another's secondary smtp counts; "
                "mailNickname is compared only with mailNickname. Distinct objects are counted, "
                "so a user's own mail equal to its own SMTP proxy is not a duplicate. Every "
                "party is listed, one finding each (IdFix's 'duplicate'). A sAMAccountName "
                "is compared only among users without a UPN: the cloud UPN is then built from "
                "it."
            ),
            remediation=(
                "Decide which object keeps the value and change it on the others in AD "
                "(Set-ADUser -UserPrincipalName / -EmailAddress / -Remove @{proxyAddresses="
                "'smtp:...'}), then Start-ADSyncSyncCycle -PolicyType Delta."
            ),
            references=(REF_IDFIX, REF_PREPARE, REF_DUPLICATE_RESILIENCY),
            remediation_actions=(Action.manual,),
        ),
        duplicate_ad_attribute,
    ),
    Rule(
        RuleMeta(
            code="attribute-conflict-cloud",
            action="Remove the clashing value from the cloud object, or change it in AD.",
            severity=Severity.high,
            family="duplicates",
            title="AD value owned by another cloud object",
            explanation=(
                "An in-scope AD user's UPN, mail or smtp proxy value is owned (as UPN, mail or "
                "proxy address) by an active cloud user, group or contact that is not its hard "
                "match. Duplicate-attribute resiliency quarantines a UPN or SMTP value another "
                "user owns (the account syncs without it, PropertyConflict in its "
                "onPremisesProvisioningErrors); a value a group or contact owns still fails the "
                "export with AttributeValueMustBeUnique (resiliency's known issue). Pairs already "
                "explained elsewhere are not repeated: the owner is "
                "the AD user's soft-match candidate (soft-match-pending/-blocked, or waiting "
                "behind anchor-held-by-deleted) or the original account of a "
                "duplicate-cloud-account."
            ),
            remediation=(
                "Remove the value from the cloud object (Update-MgUser / Exchange Online "
                "Set-Mailbox -EmailAddresses @{remove=...} / Set-MailContact) or change it in AD, "
                "then Start-ADSyncSyncCycle -PolicyType Delta."
            ),
            references=(REF_DUPLICATE_RESILIENCY, REF_SYNC_ERRORS),
            remediation_actions=(Action.manual,),
        ),
        attribute_conflict_cloud,
    ),
)
