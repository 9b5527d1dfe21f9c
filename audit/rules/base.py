"""What a rule is, what it sees, and the helpers that shape its output.

A rule is a pure function ``RuleContext -> findings frame`` with its metadata beside it. It does
no I/O; everything it needs is in the snapshot, the thresholds and the effective tenant
features. Frames returned by rules carry a subset of ``RULE_OUTPUT_COLUMNS``; ``classify``
conforms them and adds the fingerprint, title, family and status.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

import polars as pl

from audit.config import Thresholds
from audit.model import Case, Need, RuleMeta, Snapshot, TenantFeatures
from audit.rules import addresses, joins, upn


@dataclass(frozen=True)
class RuleContext:
    snapshot: Snapshot
    thresholds: Thresholds
    now: datetime  # tz-aware UTC: the snapshot's time, so re-analysis is reproducible
    features: TenantFeatures  # effective switches: Graph beats config beats unknown
    # Needs the snapshot cannot meet (Snapshot.unmet_needs); classify does not run a rule whose
    # `requires` is among them, and rules consult it for their cases and caveats.
    unmet: Mapping[Need, str] = field(default_factory=dict)

    @property
    def ad(self) -> pl.DataFrame:
        return self.snapshot.ad_users

    @property
    def cloud(self) -> pl.DataFrame:
        return self.snapshot.cloud_users

    def met(self, need: Need) -> bool:
        return need not in self.unmet

    def met_all(self, needs: tuple[Need, ...]) -> bool:
        return all(self.met(need) for need in needs)

    def allows(self, case: Case) -> bool:
        """Whether a rule's case may run: every need it declares is met."""
        return self.met_all(case.requires)

    @property
    def cloud_complete(self) -> bool:
        return self.met(Need.complete_cloud)

    @property
    def deleted_known(self) -> bool:
        """Whether soft-deleted users were supplied (a missing file is not 'none deleted')."""
        return self.met(Need.deleted_users)

    @cached_property
    def active_cloud(self) -> pl.DataFrame:
        return _leading_rows(self.cloud, pl.col("deleted_at").is_null())

    @cached_property
    def deleted_cloud(self) -> pl.DataFrame:
        return joins.deleted_cloud(self.cloud)

    @cached_property
    def in_scope_ad(self) -> pl.DataFrame:
        return _leading_rows(self.ad, pl.col("in_scope").fill_null(False))

    @cached_property
    def out_of_scope_ad(self) -> pl.DataFrame:
        """The AD users outside sync scope: the tail of the snapshot as classify orders it."""
        in_scope = self.in_scope_ad.height
        tail = self.ad.slice(in_scope)
        if not tail.select(pl.col("in_scope").fill_null(False).any()).item():
            return tail
        return self.ad.filter(~pl.col("in_scope").fill_null(False))

    @cached_property
    def hard_matches(self) -> pl.DataFrame:
        """In-scope AD users joined to the ACTIVE cloud user holding their anchor."""
        return joins.hard_matches(self.in_scope_ad, self.active_cloud)

    # --- keyed joins of the anchor / matching / duplicates families (see joins.py) -----------

    @cached_property
    def scoped_ad(self) -> pl.DataFrame:
        """In-scope AD users with an integer row key ``_ad`` the matching joins carry."""
        return self.in_scope_ad.with_row_index(joins.AD_KEY)

    @cached_property
    def anchor_links(self) -> pl.DataFrame:
        """(_ad, anchor, holder_id): the ACTIVE cloud user holding each in-scope anchor, or null."""
        return joins.anchor_links(self.scoped_ad, self.active_cloud)

    @cached_property
    def unheld_ad(self) -> pl.DataFrame:
        """In-scope AD users (_ad, anchor, upn, primary_smtp) no active cloud user holds."""
        # an AD user without an anchor (no objectGUID exported) is unknown, not unheld; one
        # whose cloud account holds its objectGUID instead is consistency-guid-differs' case
        keys = (
            self.anchor_links.filter(pl.col("holder_id").is_null() & pl.col("anchor").is_not_null())
            .select(joins.AD_KEY)
            .join(self.objectguid_anchored.select(joins.AD_KEY), on=joins.AD_KEY, how="anti")
        )
        return self.scoped_ad.select(joins.AD_KEY, "anchor", "upn", "primary_smtp").join(
            keys, on=joins.AD_KEY, how="semi"
        )

    @cached_property
    def deleted_links(self) -> pl.DataFrame:
        """(_ad, deleted_id, deleted_upn, deleted_at): unheld AD users whose anchor a
        soft-deleted cloud user keeps (empty when deleted users were not supplied)."""
        return joins.deleted_links(self.unheld_ad, self.deleted_cloud)

    @cached_property
    def initial_domain(self) -> tuple[str | None, str | None]:
        """(<tenant>.onmicrosoft.com, where it came from): the domains export, else the cloud
        users' UPNs, else unknown."""
        tenant = self.snapshot.tenant
        named = tenant.initial_domain or next((d.name for d in tenant.domains if d.initial), None)
        if named:
            return named.lower(), "tenant domains"
        inferred = upn.inferred_initial_domain(self.active_cloud)
        return (inferred, "cloud users' UPNs") if inferred else (None, None)

    @property
    def upn_soft_match(self) -> bool:
        """softMatchOnUpnEnabled, unknown taken as on (the default for tenants since 2016)."""
        return self.features.soft_match_on_upn.value is not False

    @cached_property
    def soft_candidates(self) -> pl.DataFrame:
        """The soft-match candidate of every unheld in-scope AD user (see joins)."""
        return joins.soft_match_candidates(
            self.unheld_ad,
            self.active_cloud,
            self.snapshot.cloud_objects,
            upn_allowed=self.upn_soft_match,
        )

    @cached_property
    def ad_address_keys(self) -> pl.DataFrame:
        """(_ad, address): UPN, mail, smtp proxies and SMTP targetAddress of in-scope AD users,
        lower-cased: one uniqueness space."""
        users = self.scoped_ad.select(
            joins.AD_KEY, "upn", "mail", "proxy_addresses", addresses.target_smtp().alias("_target")
        )
        return addresses.address_keys(users, joins.AD_KEY, ("upn", "mail", "_target")).collect()

    @cached_property
    def address_collisions(self) -> pl.DataFrame:
        """(_ad, address, holder_id, owner_id): an in-scope AD user's UPN/mail/smtp value owned
        by an active cloud object other than the one holding its anchor."""
        return addresses.address_collisions(
            self.ad_address_keys, self.anchor_links, self.cloud_address_keys
        )

    @cached_property
    def cloud_address_keys(self) -> pl.DataFrame:
        """(id, address): every address an active cloud user, group or contact owns."""
        return addresses.cloud_address_keys(self.active_cloud, self.snapshot.cloud_objects)

    @cached_property
    def duplicate_cloud_pairs(self) -> pl.DataFrame:
        """Hard-matched AD user + another active, unsynced cloud user owning its UPN/SMTP/mail."""
        return joins.duplicate_cloud_pairs(
            self.address_collisions, self.scoped_ad, self.active_cloud
        )

    @cached_property
    def cloud_anchors_without_ad(self) -> pl.DataFrame:
        """Cloud users (active and deleted) whose immutableId no in-scope AD user has (oos_*:
        the out-of-scope AD user that has it)."""
        return joins.cloud_anchors_without_ad(self.cloud, self.ad)

    @cached_property
    def objectguid_anchored(self) -> pl.DataFrame:
        """Active cloud users holding an in-scope AD user's objectGUID while its effective
        anchor is another value (a ConsistencyGuid set after the first sync)."""
        return joins.objectguid_anchored(self.cloud_anchors_without_ad, self.scoped_ad)

    @cached_property
    def misencoded_anchors(self) -> pl.DataFrame:
        """Cloud immutableIds in the wrong encoding, with the AD user they decode to."""
        unheld = self.cloud_anchors_without_ad.filter(pl.col("oos_dn").is_null())
        return joins.misencoded_anchors(unheld, self.ad)


# The joins that read only the cloud side: the same for any AD scope of one snapshot.
CLOUD_SIDE = ("active_cloud", "deleted_cloud", "cloud_address_keys")


def share_cloud_side(target: RuleContext, source: RuleContext) -> None:
    """Give `target` the cloud-side joins `source` has already made, when both read the same
    cloud frames (a forecast's planned scope beside the run's own): they do not depend on
    which AD users are in scope."""
    same = (
        target.snapshot.cloud_users is source.snapshot.cloud_users
        and target.snapshot.cloud_objects is source.snapshot.cloud_objects
    )
    for name in CLOUD_SIDE if same else ():
        if name in source.__dict__:
            # cached_property keeps its value in the instance dict (frozen or not)
            target.__dict__.setdefault(name, source.__dict__[name])


def release(context: RuleContext, *names: str) -> None:
    """Drop cached joins nobody will read again (they are made anew if someone does): after
    the classification, its widest ones make room for what a forecast builds."""
    for name in names:
        context.__dict__.pop(name, None)


def _leading_rows(frame: pl.DataFrame, condition: pl.Expr) -> pl.DataFrame:
    """The rows meeting `condition`: a zero-copy slice when they come first (classify orders
    the snapshot that way), else a filter. A filter copies every column of a 1M-row frame."""
    mask = frame.select(condition.alias("_m")).to_series()
    count = int(mask.sum())
    if mask.head(count).all():
        return frame.head(count)
    return frame.filter(mask)


RuleFunction = Callable[[RuleContext], pl.DataFrame]


@dataclass(frozen=True)
class Rule:
    meta: RuleMeta
    evaluate: RuleFunction = field(compare=False)
