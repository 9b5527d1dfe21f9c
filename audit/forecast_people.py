"""Each person's outcome of the next sync cycle, from the rules' own joins (forecast.py says
what it is for and which Microsoft pages each outcome rests on).

One branch per person in Entra's order (FACTS.md section 1): an anchor held by an active cloud
user (already joined, taken over, or refused by the 2026 hardening), an objectGUID the cloud
account holds instead, a soft-deleted holder (restored), a soft-match candidate (matched or
refused), else a new cloud user (quarantined values, or an export error for a group's address).
"""

from __future__ import annotations

from dataclasses import replace

import polars as pl

from audit.classify import prepared_for_rules
from audit.forecast_rows import parent_ou, people_columns, unchanged_columns
from audit.model import Need
from audit.rules import addresses, blockers, joins, upn
from audit.rules.base import RuleContext, share_cloud_side
from audit.rules.joins import AD_KEY
from audit.rules.shape import say


def people(run: RuleContext, planned: pl.DataFrame) -> pl.DataFrame:
    """One row per AD user in the planned scope and per AD user leaving it.

    `run`: the RuleContext of the run's own scope; `planned`: its AD users (same rows, same
    order) with the planned in_scope and _was_in_scope (forecast.planned_scope). Who stays is
    judged on `run`'s joins; who enters on a context of their own, holding every person whose
    anchor an entering person also sends (a duplicate is judged among all who send it), which
    takes the cloud-side joins from `run`; who leaves needs only their synced cloud user.
    """
    was = planned.get_column("_was_in_scope")
    now = planned.get_column("in_scope").fill_null(False)
    entering = now & ~was
    if not entering.any() and now.equals(was):
        return _between_people(_staying_or_entering(run), planned.filter(now))
    anchors = planned.get_column("anchor")
    shared = anchors.is_in(anchors.filter(entering).drop_nulls().implode()).fill_null(False)
    joined_anew = entering | (now & was & shared)
    staying = (now & was & ~shared).head(run.scoped_ad.height)
    frames = [_staying_or_entering(run, keep=staying)]
    if joined_anew.any():
        frames.append(_staying_or_entering(_context_of(run, planned.filter(joined_anew))))
    leaving = planned.select("source", "dn", "object_guid", "upn", "anchor", "out_of_scope_reason")
    frames.append(_leaving(run, leaving.filter(was & ~now), anchors.filter(now)))
    return _between_people(pl.concat(frames, how="vertical"), planned.filter(now))


def _between_people(rows: pl.DataFrame, in_scope: pl.DataFrame) -> pl.DataFrame:
    """What one person's joins cannot see: an AD user new to the cloud whose UPN or SMTP value
    another AD user in scope also has (one of them keeps it, the other's is quarantined), two
    soft-matching one cloud account (one of them gets it)."""
    contested = (
        rows.filter(pl.col("outcome") == "soft-match")
        .filter(pl.col("cloud_id").is_duplicated())
        .get_column("ad_dn")
    )
    shared = _shared_values(rows.filter(pl.col("outcome") == "create"), in_scope)
    if shared.is_empty() and contested.is_empty():
        return rows
    rows = rows.join(shared, on=["ad_source", "ad_dn"], how="left")
    clash = pl.col("_shared").is_not_null() & (pl.col("outcome") == "create")
    rivals = pl.col("ad_dn").is_in(contested.implode()) & (pl.col("outcome") == "soft-match")
    return rows.with_columns(
        blocker=pl.when(clash & pl.col("blocker").is_null())
        .then(pl.lit("quarantine"))
        .when(rivals)
        .then(pl.lit("contested-candidate"))
        .otherwise(pl.col("blocker")),
        fix_action=pl.when(rivals | (clash & pl.col("fix_action").is_null()))
        .then(pl.lit("set-anchor"))
        .otherwise(pl.col("fix_action")),
        property_conflict=pl.when(clash)
        .then(
            pl.concat_list(
                pl.col("property_conflict").fill_null([]), pl.col("_shared")
            ).list.unique(maintain_order=True)
        )
        .otherwise(pl.col("property_conflict")),
        reason=pl.when(clash)
        .then(
            pl.col("reason")
            + "; another AD user in scope has the same "
            + pl.col("_shared").list.join(" and ")
            + " value: one of them keeps it, the other's is quarantined"
        )
        .when(rivals)
        .then(
            pl.col("reason")
            + "; another AD user soft-matches the same cloud account: only one of them gets it"
        )
        .otherwise(pl.col("reason")),
    ).drop("_shared")


def _shared_values(created: pl.DataFrame, in_scope: pl.DataFrame) -> pl.DataFrame:
    """(ad_source, ad_dn, _shared): new users whose UPN ("UserPrincipalName") or another
    address ("ProxyAddress") another AD user of the planned scope also has. Only the addresses
    of the new users are looked up, among everyone's (the keys are built once, for all)."""
    empty = pl.DataFrame(
        schema={"ad_source": pl.String, "ad_dn": pl.String, "_shared": pl.List(pl.String)}
    )
    if created.is_empty():
        return empty
    people = in_scope.select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("_i"),
        "source",
        "dn",
        "upn",
        "mail",
        "proxy_addresses",
        addresses.target_smtp().alias("_target"),
    )
    keys = addresses.address_keys(people, "_i", ("upn", "mail", "_target")).collect()
    new = people.join(
        created.select(pl.col("ad_source").alias("source"), pl.col("ad_dn").alias("dn")),
        on=["source", "dn"],
        how="semi",
    ).select("_i", "source", "dn", addresses.lower("upn"))
    theirs = keys.join(new.select("_i"), on="_i", how="semi")
    others = keys.join(theirs.select("address").unique(), on="address", how="semi")
    shared = (
        theirs.join(others.rename({"_i": "_j"}), on="address")
        .filter(pl.col("_i") != pl.col("_j"))
        .join(new, on="_i")
    )
    if shared.is_empty():
        return empty
    kind = (
        pl.when(pl.col("address") == pl.col("upn"))
        .then(pl.lit("UserPrincipalName"))
        .otherwise(pl.lit("ProxyAddress"))
    )
    return (
        shared.with_columns(kind=kind)
        .group_by("source", "dn")
        .agg(pl.col("kind").unique().sort(descending=True).alias("_shared"))
        .rename({"source": "ad_source", "dn": "ad_dn"})
    )


def _context_of(run: RuleContext, ad: pl.DataFrame) -> RuleContext:
    """A RuleContext over these AD users (all in scope) and the run's cloud, sharing its
    cloud-side joins."""
    snapshot = prepared_for_rules(replace(run.snapshot, ad_users=ad.with_columns(in_scope=True)))
    context = replace(run, snapshot=snapshot, unmet=run.unmet)
    share_cloud_side(context, run)
    # The cloud anchors no in-scope AD user sends are a set over everyone in scope: made from
    # these few users alone it would be nearly the whole tenant, and decoding it for wrong
    # encodings costs seconds at 1M. It is the run's, less what the people entering send.
    entering = ad.select(pl.col("anchor").drop_nulls())
    context.__dict__["cloud_anchors_without_ad"] = run.cloud_anchors_without_ad.join(
        entering, left_on="immutable_id", right_on="anchor", how="anti"
    )
    return context


# --- users in the planned scope ----------------------------------------------------------------

# What every person needs to be judged "settled" (joined, and equal to its cloud user), and
# what only the others need: lists and long strings are the costliest columns to move.
_AD_NARROW = ("source", "dn", "object_guid", "anchor", "upn", "mail", "enabled", "_was_in_scope")
_AD_WIDE = ("primary_smtp", "mail_nickname", "proxy_addresses", "sam_account_name", "object_sid")
_HOLDER_NARROW = ("id", "upn", "mail", "sync_enabled", "account_enabled")
_HOLDER_WIDE = (
    "primary_smtp",
    "on_prem_upn",
    "on_prem_sam",
    "on_prem_sid",
    "on_prem_dn",
    "on_prem_object_id",
    "admin_roles",
    "eligible_roles",
)


def _gathered(ctx: RuleContext, rows: pl.DataFrame, pairs: pl.DataFrame) -> pl.DataFrame:
    """The unsettled `rows` with the rest of what judging them takes: their wide AD columns,
    the wide columns of the cloud user holding their anchor (cloud_*), the cloud user holding
    their objectGUID instead (og_*), a soft-deleted holder (deleted_*), the soft-match
    candidate (cand_*, matched_on/value, blockers). Integer-keyed joins over the few."""
    wide_ad = ctx.scoped_ad.select(AD_KEY, *_AD_WIDE).join(
        rows.select(AD_KEY), on=AD_KEY, how="semi"
    )
    few = pairs.join(rows.select(AD_KEY), on=AD_KEY, how="semi")
    wide_cloud = few.select(AD_KEY).hstack(
        ctx.active_cloud.select([pl.col(c).alias(f"cloud_{c}") for c in _HOLDER_WIDE])[few["_r"]]
    )
    objectguid = ctx.objectguid_anchored.select(AD_KEY, "og_cloud_id", "og_cloud_upn").unique(
        AD_KEY, keep="first"
    )
    deleted = ctx.deleted_links.select(AD_KEY, "deleted_id", "deleted_upn")
    tokens, phrases = blockers.soft_match_blockers(ctx.features.block_soft_match.value)
    misencoded = (
        ctx.misencoded_anchors.select(
            pl.col("id").alias("cand_id"), pl.col("ad_source"), pl.col("ad_dn")
        )
        .drop_nulls()
        .join(
            ctx.scoped_ad.select(
                AD_KEY, pl.col("source").alias("ad_source"), pl.col("dn").alias("ad_dn")
            ),
            on=["ad_source", "ad_dn"],
        )
        .select(AD_KEY, "cand_id", cand_misencoded=pl.lit(True))
    )
    candidates = (
        ctx.soft_candidates.with_columns(cand_blockers=tokens, cand_blocker_text=phrases)
        .select(
            AD_KEY,
            "cand_id",
            "cand_upn",
            "cand_type",
            "cand_sync_enabled",
            "matched_on",
            "matched_value",
            "cand_blockers",
            "cand_blocker_text",
        )
        .join(misencoded, on=[AD_KEY, "cand_id"], how="left")
    )
    return (
        rows.join(wide_ad, on=AD_KEY, how="left")
        .join(wide_cloud, on=AD_KEY, how="left")
        .join(objectguid, on=AD_KEY, how="left")
        .join(deleted, on=AD_KEY, how="left")
        .join(candidates, on=AD_KEY, how="left")
    )


def _was_in_scope(ctx: RuleContext) -> pl.Expr:
    """Whether a user was in scope before the change (planned_scope records it); a context of
    the run's own scope has no change, so everyone in it was."""
    if "_was_in_scope" in ctx.ad.columns:
        return pl.col("_was_in_scope")
    return pl.col("in_scope").fill_null(False).alias("_was_in_scope")


def _holder_pairs(ctx: RuleContext) -> pl.DataFrame:
    """(_ad, _r): in-scope AD users and the row of the ACTIVE cloud user holding their anchor
    (the rules' anchor_links), so the cloud columns are gathered by row: a fraction of a join
    on the holder's id string at 1M users."""
    return (
        ctx.anchor_links.filter(pl.col("holder_row").is_not_null())
        .select(AD_KEY, pl.col("holder_row").alias("_r"))
        .unique(AD_KEY, keep="first")
    )


def _conflicts(ctx: RuleContext) -> pl.DataFrame:
    """Per in-scope AD user whose UPN or another address an active cloud object other than its
    anchor holder owns: conflict_upn / conflict_smtp (which of its values), conflict_group (an
    owner is a group or contact), conflict_with (the owners), foreign (an owner that is not its
    soft-match candidate, original duplicate account or objectGUID holder: the rules' own
    attribute-conflict-cloud), foreign_group, duplicate (the original account of a
    duplicate-cloud-account owns it)."""
    types = ctx.snapshot.cloud_objects.select(
        pl.col("id").alias("owner_id"), pl.col("object_type").alias("owner_type")
    )
    known = pl.concat(
        [
            ctx.soft_candidates.select(
                AD_KEY, pl.col("cand_id").alias("owner_id"), _kind=pl.lit(1)
            ),
            ctx.duplicate_cloud_pairs.select(AD_KEY, "owner_id", _kind=pl.lit(2)),
            ctx.objectguid_anchored.select(
                AD_KEY, pl.col("og_cloud_id").alias("owner_id"), _kind=pl.lit(3)
            ),
        ]
    ).unique([AD_KEY, "owner_id"], keep="first")
    rows = ctx.address_collisions.join(known, on=[AD_KEY, "owner_id"], how="left")
    own = ctx.scoped_ad.join(rows.select(AD_KEY).unique(), on=AD_KEY, how="semi")
    # the user's own SMTP values: smtp proxies and mail (mail is one of them in Exchange)
    smtp = pl.concat(
        [
            addresses.smtp_addresses(own, AD_KEY).select(AD_KEY, "address"),
            own.select(AD_KEY, addresses.lower("mail").alias("address")).drop_nulls(),
        ]
    ).unique()
    rows = rows.join(smtp.with_columns(_smtp=pl.lit(True)), on=[AD_KEY, "address"], how="left")
    own = own.select(AD_KEY, addresses.lower("upn"))
    return (
        rows.join(types, on="owner_id", how="left")
        .join(own, on=AD_KEY)
        .group_by(AD_KEY)
        .agg(
            conflict_upn=(pl.col("address") == pl.col("upn")).any(),
            # resiliency quarantines SMTP proxyAddresses
            conflict_smtp=pl.col("_smtp").fill_null(False).any(),
            # a conflict with a group's or contact's SMTP address still fails the export
            # (resiliency's known issue 1)
            conflict_group=pl.col("owner_type").is_not_null().any(),
            conflict_with=pl.col("owner_id").unique().sort(),
            foreign=pl.col("_kind").is_null().any(),
            foreign_upn=(pl.col("_kind").is_null() & (pl.col("address") == pl.col("upn"))).any(),
            foreign_smtp=(pl.col("_kind").is_null() & pl.col("_smtp").fill_null(False)).any(),
            foreign_group=(pl.col("_kind").is_null() & pl.col("owner_type").is_not_null()).any(),
            duplicate=(pl.col("_kind") == 2).any(),
        )
    )


def _staying_or_entering(ctx: RuleContext, keep: pl.Series | None = None) -> pl.DataFrame:
    """The rows of ctx's in-scope AD users (those `keep` marks, aligned with scoped_ad)."""
    pairs = _holder_pairs(ctx)
    # The holder's row for every scoped AD user (null: none), so its columns line up with
    # scoped_ad by gathering: no join copies the AD side.
    holder_row = (
        pl.Series("_r", [None], dtype=pl.UInt32)
        .extend_constant(None, ctx.scoped_ad.height - 1)
        .scatter(pairs.get_column(AD_KEY), pairs.get_column("_r"))
        if ctx.scoped_ad.height
        else pl.Series("_r", [], dtype=pl.UInt32)
    )
    holders = ctx.active_cloud.select(
        [pl.col(c).gather(holder_row).alias(f"cloud_{c}") for c in _HOLDER_NARROW]
    )
    rows = ctx.scoped_ad.select(AD_KEY, *_AD_NARROW[:-1], _was_in_scope(ctx)).hstack(holders)
    if keep is not None:
        rows = rows.filter(keep)
    conflicts = _conflicts(ctx)
    rows = rows.with_columns(
        _dup=_duplicated_anchor(rows),
        _conflict=pl.col(AD_KEY).is_in(conflicts.get_column(AD_KEY).implode()),
    )
    # Most people are joined and agree with their cloud user to the byte: they take the
    # cheap path; the few others pay for the wide columns, case-insensitive comparisons and
    # the sentences.
    quiet = rows.select(_settled()).to_series()
    settled = rows.select(unchanged_columns()).filter(quiet)
    rows = _gathered(ctx, rows.filter(~quiet), pairs).join(conflicts, on=AD_KEY, how="left")
    held = pl.col("cloud_id").is_not_null()
    synced = pl.col("cloud_sync_enabled").fill_null(False)
    same = joins.same_person()
    hard_tokens, hard_text = blockers.hard_match_blockers(
        "cloud_", ctx.features.block_hard_match_takeover.value
    )
    rows = rows.with_columns(
        _same=same,
        _hard_blockers=pl.when(held & ~synced).then(hard_tokens),
        _hard_text=hard_text,
    )
    has_cand = pl.col("cand_id").is_not_null()
    cand_has = pl.col("cand_blockers").list.contains
    tenant_blocks = cand_has("soft-match-blocked-by-tenant").fill_null(False)
    initial, _ = ctx.initial_domain
    predicted, not_verified, refused = upn.predicted_cloud_upn(
        ctx.snapshot.tenant.verified_domains(), ctx.met(Need.tenant_domains), initial
    )
    branch = (
        pl.when(pl.col("anchor").is_null())
        .then(pl.lit("no-anchor"))
        .when(pl.col("_dup"))
        .then(pl.lit("duplicate-anchor"))
        .when(held & synced & ~pl.col("_same"))
        .then(pl.lit("wrong-person"))
        # an update pushing a value a group or contact owns still fails (resiliency issue 1)
        .when(held & synced & pl.col("foreign_group").fill_null(False))
        .then(pl.lit("update-not-unique"))
        .when(held & synced)
        .then(pl.lit("joined"))
        .when(held & (pl.col("_hard_blockers").list.len() > 0))
        .then(pl.lit("hard-refused"))
        .when(held)
        .then(pl.when(pl.col("_same")).then(pl.lit("takeover")).otherwise(pl.lit("wrong-person")))
        .when(pl.col("og_cloud_id").is_not_null())
        .then(pl.lit("objectguid-anchored"))
        .when(pl.col("deleted_id").is_not_null())
        .then(pl.lit("restore"))
        .when(has_cand & ~tenant_blocks & (pl.col("cand_type") != "user"))
        .then(pl.lit("object-type-mismatch"))
        .when(has_cand & ~tenant_blocks & cand_has("holds-other-immutable-id"))
        .then(pl.lit("invalid-soft-match"))
        .when(has_cand & ~tenant_blocks & cand_has("admin-role"))
        .then(pl.lit("admin-conflict"))
        .when(has_cand & ~tenant_blocks)
        .then(pl.lit("soft-match"))
        .when(pl.col("conflict_group").fill_null(False))
        .then(pl.lit("address-not-unique"))
        .otherwise(pl.lit("create"))
    )
    rows = rows.with_columns(
        _branch=branch,
        _predicted=predicted,
        _unverified=not_verified | refused,
        _upn_blocked=_upn_update_blocked(ctx),
    )
    rows = rows.with_columns(
        _changes=_pushed_changes(pl.col("_unverified") | pl.col("_upn_blocked")),
    )
    return pl.concat([settled, rows.select(people_columns(initial))], how="vertical")


def _settled() -> pl.Expr:
    """Joined to a synced cloud user whose UPN, mail and enabled state equal the AD user's
    exactly, no address of it owned by another object, its anchor its own: unchanged."""
    return (
        pl.col("cloud_id").is_not_null()
        & pl.col("cloud_sync_enabled").fill_null(False)
        & (pl.col("upn") == pl.col("cloud_upn")).fill_null(False)
        & (pl.col("mail").is_null() | (pl.col("mail") == pl.col("cloud_mail")).fill_null(False))
        & (
            pl.col("enabled").is_null()
            | pl.col("cloud_account_enabled").is_null()
            | (pl.col("enabled") == pl.col("cloud_account_enabled"))
        )
        & ~pl.col("_conflict")
        & ~pl.col("_dup")
    ).alias("_settled")


def _duplicated_anchor(rows: pl.DataFrame) -> pl.Series:
    """Two in-scope AD users sending the same sourceAnchor (a 64-bit hash pre-filters)."""
    anchors = rows.get_column("anchor")
    maybe = anchors.hash().is_duplicated() & anchors.is_not_null()
    if not maybe.any():
        return pl.Series("_dup", [False] * rows.height, dtype=pl.Boolean)
    return (anchors.is_duplicated() & maybe).alias("_dup")


def _upn_update_blocked(ctx: RuleContext) -> pl.Expr:
    """A UPN change sync cannot write: synchronizeUpnForManagedUsersEnabled off and the
    account in a managed (not federated) domain. Licences are not read, so an unlicensed user
    (whose change would flow) is predicted blocked too; the reason says why."""
    if ctx.features.synchronize_upn_for_managed_users.value is not False:
        return pl.lit(False)
    federated = ctx.snapshot.tenant.federated_domains()
    # the account the sync writes to: its anchor holder, soft-match candidate or deleted holder
    target = pl.coalesce("cloud_upn", "cand_upn", "deleted_upn")
    return ~upn.upn_suffix(target).is_in(federated).fill_null(False)


def _pushed_changes(upn_not_usable: pl.Expr) -> pl.Expr:
    """What the next sync writes to an already joined cloud user: the UPN (when its suffix is
    verified), mail, accountEnabled."""

    def differs(ad: str, cloud: str) -> pl.Expr:
        return pl.col(ad).is_not_null() & (
            pl.col(ad).str.to_lowercase() != pl.col(cloud).str.to_lowercase()
        ).fill_null(True)

    enabled = (
        pl.col("enabled").is_not_null()
        & pl.col("cloud_account_enabled").is_not_null()
        & (pl.col("enabled") != pl.col("cloud_account_enabled"))
    )
    return pl.concat_list(
        pl.when(differs("upn", "cloud_upn") & ~upn_not_usable).then(
            say("userPrincipalName {} -> {}", "cloud_upn", "upn")
        ),
        pl.when(differs("mail", "cloud_mail")).then(
            say("mail {} -> {}", pl.col("cloud_mail").fill_null("(empty)"), "mail")
        ),
        pl.when(enabled).then(say("accountEnabled {} -> {}", "cloud_account_enabled", "enabled")),
    ).list.drop_nulls()


# --- users leaving scope ------------------------------------------------------------------------


def _sent_by(kept: pl.Series, anchors: pl.Series) -> pl.Series:
    """The `anchors` that `kept` also has (a semi-join: is_in against a million-value list
    costs seconds)."""
    return (
        anchors.drop_nulls()
        .to_frame("anchor")
        .join(kept.drop_nulls().to_frame("anchor"), on="anchor", how="semi")
        .get_column("anchor")
        .unique()
    )


def _leaving(ctx: RuleContext, leaving: pl.DataFrame, kept: pl.Series) -> pl.DataFrame:
    """AD users the change takes out of scope: the synced cloud user holding the anchor is
    deleted (soft-deleted, restorable for 30 days), unless an AD user still in scope sends the
    same anchor (`kept`: the planned scope's anchors), and once however many leaving users
    send it."""
    synced = (
        ctx.active_cloud.lazy()
        .select(
            pl.col("id").alias("cloud_id"),
            pl.col("upn").alias("cloud_upn"),
            pl.col("immutable_id"),
            pl.col("sync_enabled"),
        )
        .filter(pl.col("sync_enabled").fill_null(False))
        .join(
            leaving.lazy().select("anchor"), left_on="immutable_id", right_on="anchor", how="semi"
        )
        .drop("sync_enabled")
        .collect()
    )
    rows = leaving.join(synced, left_on="anchor", right_on="immutable_id", how="left").unique(
        ["source", "dn"], keep="first", maintain_order=True
    )
    held = pl.col("cloud_id").is_not_null()
    still_sent = (
        pl.col("anchor").is_in(_sent_by(kept, rows.get_column("anchor")).implode()).fill_null(False)
    )
    first = pl.col("cloud_id").is_first_distinct()
    deleted = held & ~still_sent & first
    return rows.select(
        pl.col("dn").alias("ad_dn"),
        pl.col("object_guid").alias("ad_object_guid"),
        pl.when(deleted)
        .then(pl.lit("soft-delete"))
        .otherwise(pl.lit("unchanged"))
        .alias("outcome"),
        pl.col("cloud_id"),
        pl.lit(None, pl.String).alias("predicted_upn"),
        pl.lit(None, pl.String).alias("error"),
        # one sentence from literal pieces: four say() over every leaving user cost 0.15 s
        # at 250,000 of them
        pl.concat_str(
            pl.lit("leaves sync scope ("),
            pl.col("out_of_scope_reason").fill_null("?"),
            pl.lit(")"),
            pl.when(deleted)
            .then(pl.lit(": the sync deletes synced cloud user "))
            .when(held & still_sent)
            .then(pl.lit("; an AD user still in scope sends the same anchor, so cloud user "))
            .when(held)
            .then(pl.lit("; cloud user "))
            .otherwise(pl.lit("; no synced cloud user holds its anchor")),
            pl.col("cloud_upn").fill_null(""),
            pl.when(deleted)
            .then(pl.lit(" (soft-deleted, restorable for 30 days)"))
            .when(held & still_sent)
            .then(pl.lit(" stays"))
            .when(held)
            .then(
                pl.lit(" is deleted once, with another AD user leaving that sends the same anchor")
            )
            .otherwise(pl.lit("")),
        ).alias("reason"),
        pl.lit(None, pl.String).alias("fix"),
        pl.col("source").alias("ad_source"),
        pl.col("upn").alias("ad_upn"),
        parent_ou().alias("ou"),
        pl.lit("leaves").alias("scope"),
        pl.col("cloud_upn"),
        pl.lit(None, pl.List(pl.String)).alias("property_conflict"),
        pl.lit(None, pl.String).alias("blocker"),
        pl.lit(None, pl.String).alias("fix_action"),
        pl.lit([], pl.List(pl.String)).alias("finding_codes"),
    )
