"""What a rule is, what it sees, and the helpers that shape its output.

A rule is a pure function ``RuleContext -> findings frame`` with its metadata beside it. It does
no I/O; everything it needs is in the snapshot, the thresholds and the effective tenant
features. Frames returned by rules carry a subset of ``RULE_OUTPUT_COLUMNS``; ``classify``
conforms them and adds the fingerprint, title, family and status.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

import polars as pl

from audit.config import Thresholds
from audit.model import RuleMeta, Snapshot, TenantFeatures
from audit.rules import joins

# Action ids implemented by remediation.ps1 (issue: remediation). Rules name them in the
# `remediation` column so the report and the script agree on what fixes what.
PURGE_DELETED_HOLDER = "purge-deleted-holder"
RESTORE_DELETED_HOLDER = "restore-deleted-holder"
SET_ANCHOR = "set-anchor"
CLEAR_ANCHOR = "clear-anchor"
FIX_ANCHOR_ENCODING = "fix-anchor-encoding"
MERGE_DUPLICATE_CLOUD = "merge-duplicate-cloud"
ROLES_DETOUR = "roles-detour"
CLEAR_ONPREM_OBJECT_ID = "clear-onprem-object-id"
AD_SET_ATTRIBUTE = "ad-set-attribute"
MANUAL = "manual"


@dataclass(frozen=True)
class RuleContext:
    snapshot: Snapshot
    thresholds: Thresholds
    now: datetime  # tz-aware UTC: the snapshot's time, so re-analysis is reproducible
    features: TenantFeatures  # effective switches: Graph beats config beats unknown

    @property
    def ad(self) -> pl.DataFrame:
        return self.snapshot.ad_users

    @property
    def cloud(self) -> pl.DataFrame:
        return self.snapshot.cloud_users

    @property
    def ad_complete(self) -> bool:
        """Absence-based findings (orphans, unmatched) need every AD source read completely."""
        return self.snapshot.complete("ad")

    @property
    def cloud_complete(self) -> bool:
        return self.snapshot.complete("cloud")

    @property
    def deleted_known(self) -> bool:
        """Whether soft-deleted users were supplied (a missing file is not 'none deleted')."""
        return self.snapshot.complete("deleted")

    @cached_property
    def active_cloud(self) -> pl.DataFrame:
        return joins.active_cloud(self.cloud)

    @cached_property
    def deleted_cloud(self) -> pl.DataFrame:
        return joins.deleted_cloud(self.cloud)

    @cached_property
    def in_scope_ad(self) -> pl.DataFrame:
        return self.ad.filter(pl.col("in_scope"))

    @cached_property
    def hard_matches(self) -> pl.DataFrame:
        """In-scope AD users joined to the ACTIVE cloud user holding their anchor."""
        return joins.hard_matches(self.in_scope_ad, self.active_cloud)


RuleFunction = Callable[[RuleContext], pl.DataFrame]


@dataclass(frozen=True)
class Rule:
    meta: RuleMeta
    evaluate: RuleFunction = field(compare=False)
