"""The pre-migration forecast: what the next sync cycle does to every person, after a planned
scope change, and whether to go (FACTS.md section 1; verdict in forecast_verdict.py).

Entra's order for an object new to the connector: hard match on the sourceAnchor, then soft
match (primary SMTP, then UPN), else a new cloud user whose colliding UPN or SMTP values
duplicate-attribute resiliency quarantines. Objects already joined get their changed attributes;
objects leaving scope are deleted (soft-deleted for 30 days). Every outcome comes from the
rules' own joins (RuleContext), so the forecast and the findings cannot tell two stories.

Microsoft's pages behind each outcome:
- export errors InvalidHardMatch, InvalidSoftMatch, ObjectTypeMismatch, AttributeValueMustBeUnique,
  AttributeUpdateNotAllowed ("OnPremisesObjectIdentifier cannot be changed unless its current
  value is null") and "Existing Admin Role Conflict": entra-docs
  identity/hybrid/connect/tshoot-connect-sync-errors.md (2026-07 edition: a privileged target is
  InvalidHardMatch, an existing onPremisesObjectIdentifier is AttributeUpdateNotAllowed);
- quarantine "<OriginalPrefix><4DigitNumber>@<InitialTenantDomain>.onmicrosoft.com", only UPN and
  SMTP proxyAddresses, and the known issue that a conflict with a GROUP's SMTP address still
  fails the export: how-to-connect-syncservice-duplicate-attribute-resiliency.md;
- filtered objects "previously synchronized ... are deleted": how-to-connect-sync-configure-
  filtering.md; a re-appearing object restores its soft-deleted user:
  how-to-connect-sync-recycle-bin.md;
- the 500-delete export threshold: accidental-deletes.md (Connect and Cloud Sync).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from audit import forecast_people
from audit.classify import prepared_for_rules, rule_context
from audit.config import Settings
from audit.errors import UsageError
from audit.model import Need, Snapshot
from audit.rules.base import RuleContext, release
from audit.sources.scope import (
    DN_SPACES_RE,
    EXCLUDED_OU_REASON,
    FILTER_REASON,
    OUTSIDE_INCLUDE_REASON,
    normalized_dn,
)

OUTCOMES = ("unchanged", "update", "hard-match", "soft-match", "create", "error", "soft-delete")
# The contract columns first (DESIGN.md "forecast"), then what explains them.
FORECAST_SCHEMA: dict[str, pl.DataType] = {
    "ad_dn": pl.String(),
    "ad_object_guid": pl.String(),
    "outcome": pl.String(),
    "cloud_id": pl.String(),
    "predicted_upn": pl.String(),
    "error": pl.String(),
    "reason": pl.String(),
    "fix": pl.String(),
    "ad_source": pl.String(),
    "ad_upn": pl.String(),
    "ou": pl.String(),
    "scope": pl.String(),  # stays / enters / leaves
    "cloud_upn": pl.String(),
    "property_conflict": pl.List(pl.String()),
    "blocker": pl.String(),
    "fix_action": pl.String(),
    "finding_codes": pl.List(pl.String()),
}


class ForecastError(UsageError):
    """The forecast cannot be made from this run (one line, exit 2)."""


@dataclass(frozen=True)
class ScopeChange:
    """The planned change: OUs entering or leaving sync scope, and enabling sync on a tenant
    that has never synced."""

    include_ous: tuple[str, ...] = ()
    exclude_ous: tuple[str, ...] = ()
    enable_sync: bool = False

    def as_json(self) -> dict[str, object]:
        return {
            "include_ous": list(self.include_ous),
            "exclude_ous": list(self.exclude_ous),
            "enable_sync": self.enable_sync,
        }

    @classmethod
    def from_json(cls, data: object) -> ScopeChange:
        if not isinstance(data, dict):
            return cls()
        return cls(
            include_ous=tuple(str(d) for d in data.get("include_ous") or ()),
            exclude_ous=tuple(str(d) for d in data.get("exclude_ous") or ()),
            enable_sync=bool(data.get("enable_sync")),
        )

    def sentence(self, mask: Callable[[str], str] = str) -> str:
        """What the change is; `mask` hides the OU names (a redacted report's Redactor.dn)."""
        parts = [f"{mask(ou)} enters sync scope" for ou in self.include_ous]
        parts += [f"{mask(ou)} leaves sync scope" for ou in self.exclude_ous]
        if self.enable_sync:
            parts.append("directory sync is enabled on the tenant for the first time")
        return "; ".join(parts) if parts else "no scope change: the next sync cycle as things stand"


def normalized_dns(dns: pl.Series) -> pl.Series:
    """scope.normalized_dn over a column: lower case, no blanks around `,` `=` `+`. The
    replacing regex runs only on the DNs that have such a blank (over every DN it costs ~1 s
    at 1M; finding them costs a fiftieth of that)."""
    low = dns.str.strip_chars().str.to_lowercase()
    spaced = low.str.contains(r"\s[,=+]|[,=+]\s").fill_null(False)
    if not spaced.any():
        return low
    fixed = low.filter(spaced).str.replace_all(DN_SPACES_RE.pattern, "$1")
    return low.scatter(spaced.arg_true(), fixed)


def planned_scope(ad: pl.DataFrame, change: ScopeChange) -> pl.DataFrame:
    """The AD users with ``in_scope`` as the change leaves it and ``_was_in_scope`` as it was.

    The most specific planned OU containing a user decides, like Entra Connect's OU tree: an
    included OU brings its whole subtree in (the source's LDAP filter still applies), an
    excluded one takes it out. Users under no planned OU keep their scope.
    """
    rules = sorted(
        [(ou, True) for ou in change.include_ous] + [(ou, False) for ou in change.exclude_ous],
        key=lambda rule: len(normalized_dn(rule[0])),
    )
    was = pl.col("in_scope").fill_null(False)
    if not rules:
        return ad.with_columns(_was_in_scope=was)
    # One pass over the DNs: which planned OU (the longest that contains it) decides each user.
    decider: pl.Expr = pl.lit(None, pl.Int16)
    unders = []
    for index, (ou, _included) in enumerate(rules):  # a handful of OUs, not users
        key = normalized_dn(ou)
        under = (pl.col("_dn") == key) | pl.col("_dn").str.ends_with("," + key)
        unders.append(under)
        decider = pl.when(under).then(pl.lit(index, pl.Int16)).otherwise(decider)
    dns = normalized_dns(ad.get_column("dn")).alias("_dn").to_frame()
    decided = dns.select(decider.alias("_rule")).to_series()
    # A rule that decides nobody may still hold users a deeper rule decides: ask it alone.
    seen = set(decided.drop_nulls().unique().to_list())
    for index, (ou, brings_in) in enumerate(rules):
        if index not in seen and not dns.select(unders[index].any()).item():
            # a typo would otherwise read as "nothing changes: GO"
            flag = "--include-ou" if brings_in else "--exclude-ou"
            raise ForecastError(f"{flag} {ou}: no AD user of this run is in that OU or under it")
    included = pl.col("_rule").replace_strict(
        {i: inc for i, (_ou, inc) in enumerate(rules)}, return_dtype=pl.Boolean
    )
    excluded_text = pl.col("_rule").replace_strict(
        {i: f"{EXCLUDED_OU_REASON}{ou} (planned)" for i, (ou, _inc) in enumerate(rules)},
        return_dtype=pl.String,
    )
    # Only the OU rule changes with the plan: the source's LDAP filter and Entra Connect's
    # default exclusions (sync accounts, system mailboxes) keep a user out whatever OU it is in.
    reason = pl.col("out_of_scope_reason")
    filtered = reason.str.ends_with(FILTER_REASON).fill_null(False)
    ou_only = (
        reason.is_null()
        | (
            (reason == OUTSIDE_INCLUDE_REASON) | reason.str.starts_with(EXCLUDED_OU_REASON)
        ).fill_null(False)
        & ~filtered
    )
    decided_here = pl.col("_rule").is_not_null()
    return (
        ad.with_columns(decided.alias("_rule"), _was_in_scope=was)
        .with_columns(
            in_scope=pl.when(decided_here).then(included & ou_only).otherwise(was),
            out_of_scope_reason=pl.when(~decided_here)
            .then(reason)
            .when(ou_only)
            .then(pl.when(included).then(pl.lit(None, pl.String)).otherwise(excluded_text))
            .when(filtered)
            .then(pl.lit(FILTER_REASON))
            .otherwise(reason),
        )
        .drop("_rule")
    )


@dataclass(frozen=True)
class Forecast:
    change: ScopeChange
    people: pl.DataFrame  # FORECAST_SCHEMA, one row per person
    deletion_threshold: int
    notes: tuple[str, ...]  # what the forecast had to assume, and why


def check_forecastable(snapshot: Snapshot, change: ScopeChange) -> None:
    """Refuse what cannot be forecast: an outcome that rests on an absence ("no cloud user holds
    this anchor") needs both directories read completely."""
    unmet = snapshot.unmet_needs()
    for need in (Need.complete_ad, Need.complete_cloud):
        if need in unmet:
            raise ForecastError(f"a forecast needs {need.value}: {unmet[need]}")
    dirsync = snapshot.tenant.dirsync_enabled
    if change.enable_sync and dirsync is True:
        raise ForecastError(
            "--enable-sync: the tenant already syncs (onPremisesSyncEnabled is true); "
            "forecast the scope change without it"
        )
    if not change.enable_sync and dirsync is False:
        raise ForecastError(
            "directory sync is off on this tenant, so nothing syncs until it is turned on: "
            "add --enable-sync to forecast the first sync cycle"
        )


def forecast(
    snapshot: Snapshot,
    settings: Settings,
    change: ScopeChange,
    *,
    context: RuleContext | None = None,
) -> Forecast:
    """Every person's outcome of the next sync cycle once `change` is made.

    A person's match depends on that person and the cloud, not on who else is in scope, so the
    run's own joins (`context`: the classification's RuleContext of this snapshot, which
    analyze passes; made here otherwise) serve everyone whose scope does not change, and only
    the people entering scope are joined anew (forecast_people.people).
    """
    check_forecastable(snapshot, change)
    snapshot = prepared_for_rules(snapshot)
    if context is None or context.snapshot.ad_users is not snapshot.ad_users:
        context = rule_context(snapshot, settings)
    # The classification's widest joins (every hard-matched pair's columns, every AD address)
    # are not the forecast's: their memory is better spent on its rows.
    release(context, "hard_matches", "ad_address_keys")
    planned = planned_scope(snapshot.ad_users, change)
    threshold = settings.thresholds.deletion_threshold
    people = forecast_people.people(context, planned)
    deletions = int((people["outcome"] == "soft-delete").sum())
    if deletions > threshold:
        people = people.with_columns(
            blocker=pl.when(pl.col("outcome") == "soft-delete")
            .then(pl.lit("deletion-threshold"))
            .otherwise(pl.col("blocker"))
        )
    notes = _assumptions(context, snapshot)
    if deletions:
        notes.append(
            f"the export-deletion threshold counts every object one export deletes: the "
            f"{deletions:,} users are a floor, groups and contacts in the same OUs count too"
        )
    return Forecast(change, people, threshold, tuple(notes))


def _assumptions(ctx: RuleContext, snapshot: Snapshot) -> list[str]:
    notes = []
    if snapshot.tenant.dirsync_enabled is None:
        notes.append("the tenant's sync state is unknown (no --tenant): taken as on")
    if not ctx.deleted_known:
        notes.append(
            "soft-deleted users were not supplied: a deleted user holding an anchor would be "
            "restored instead of the predicted outcome"
        )
    if not ctx.met(Need.roles):
        notes.append(
            "role assignments were not supplied: a directory role refuses a soft match, a "
            "privileged one a hard match"
        )
    if not ctx.met(Need.tenant_domains):
        notes.append(
            "the tenant's domains were not supplied: predicted UPNs assume every suffix that "
            "can be verified is"
        )
    for name in ("block_soft_match", "block_hard_match_takeover", "soft_match_on_upn"):
        feature = getattr(ctx.features, name)
        if feature.value is None:
            notes.append(f"the matching switch {name} is unknown: taken as Entra's default")
    if ctx.features.synchronize_upn_for_managed_users.value is None:
        notes.append(
            "synchronizeUpnForManagedUsersEnabled is unknown: UPN changes are taken to flow "
            "(off, a licensed user's change in a managed domain is blocked)"
        )
    return notes
