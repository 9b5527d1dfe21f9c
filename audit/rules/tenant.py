"""Tenant family: the health of directory sync itself and what Entra already reports.

* ``provisioning-error``: one finding per onPremisesProvisioningErrors entry of any cloud user
  (active or soft-deleted); the AD user owning the conflicting value is named when there is one
  (lower-case UPN, mail or smtp proxy), else the AD user holding the cloud user's anchor.
* ``stale-sync-object``: an active, synced cloud user whose last sync is older than the tenant's
  last sync (or, when unknown, the snapshot time) by more than ``stale_object_days``; a cloud
  user with no lastSync value is not judged.
* ``tenant-sync-stale``: sync on and the tenant's last sync older than ``stale_sync_hours``
  (or sync on and never completed).
* ``tenant-matching-settings``: always three info findings, one per matching switch.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from audit.model import UTC_DATETIME, Action, Feature, Need, RuleMeta, Severity
from audit.rules import addresses, shape
from audit.rules.base import Rule, RuleContext

FAMILY = "tenant"

PROVISIONING_ERROR = RuleMeta(
    code="provisioning-error",
    action="Resolve the value conflict each error names, then sync.",
    severity=Severity.high,
    family=FAMILY,
    title="Cloud user carries an on-premises provisioning error",
    explanation=(
        "Entra ID recorded an error in the user's onPremisesProvisioningErrors: the same errors "
        "Entra Connect Health lists under Duplicate Attribute (PropertyConflict on "
        "UserPrincipalName or ProxyAddress), Data Validation Failure and Federated Domain "
        "Change. For a conflict, duplicate attribute resiliency quarantined the value: the "
        "synced user got <prefix><4 digits>@<tenant>.onmicrosoft.com or lost the address, and "
        "mail or sign-in goes to the wrong account until the conflict is resolved. The AD user "
        "that owns the conflicting value is named when the snapshot has one."
    ),
    remediation=(
        'Find the other object holding the value: Get-MgUser -Filter "userPrincipalName eq '
        "'<value>'\" or Get-MgUser -Filter \"proxyAddresses/any(p:p eq 'smtp:<value>')\". "
        "Remove or change the value on the object that should not have it (Set-ADUser for a "
        "synced source, Update-MgUser for a cloud-only one; hard-delete a soft-deleted holder "
        "with Remove-MgDirectoryDeletedItem), then run Start-ADSyncSyncCycle -PolicyType Delta. "
        "Entra clears the error on the next successful export."
    ),
    references=(
        "https://learn.microsoft.com/entra/identity/hybrid/connect/how-to-connect-syncservice-duplicate-attribute-resiliency",
        "https://learn.microsoft.com/entra/identity/hybrid/connect/how-to-connect-health-sync",
        "https://learn.microsoft.com/graph/api/resources/onpremisesprovisioningerror",
    ),
    remediation_actions=(Action.manual,),
)

STALE_SYNC_OBJECT = RuleMeta(
    code="stale-sync-object",
    action="Find why these accounts stopped syncing (scope, export errors).",
    severity=Severity.medium,
    family=FAMILY,
    title="Synced cloud user no longer receives updates",
    explanation=(
        "The user is synced from on-premises (onPremisesSyncEnabled true) but its "
        "onPremisesLastSyncDateTime is far older than the tenant's last sync: no sync client "
        "exports it any more. Typical causes: its forest or sync server was decommissioned, the "
        "object fell out of the connector space without a delete, or exports for it fail. It "
        "cannot be edited in the cloud (its attributes are mastered on-premises) and changes "
        "on-premises, such as disabling a leaver, never reach it."
    ),
    remediation=(
        "Find the source object by the finding's anchor (ConvertFrom-ADSyncToolsImmutableID "
        "turns it into the objectGUID) and the on-premises DN, check the Entra "
        "Connect export errors and sync scope, and run Start-ADSyncSyncCycle -PolicyType Delta. "
        "If the source is gone for good, delete the cloud user (Remove-MgUser) or re-match it "
        "to its new on-premises object."
    ),
    references=(
        "https://learn.microsoft.com/entra/identity/hybrid/connect/how-to-connect-health-sync",
    ),
    remediation_actions=(Action.manual,),
)

TENANT_SYNC_STALE = RuleMeta(
    code="tenant-sync-stale",
    action="Restart directory synchronization on the Entra Connect server today.",
    severity=Severity.critical,
    family=FAMILY,
    title="Directory synchronization has stopped",
    explanation=(
        "Directory sync is on for the tenant but its onPremisesLastSyncDateTime is older than the "
        "threshold (Entra Connect syncs every 30 minutes by default; Entra Connect Health raises "
        "'Azure AD Connect Sync Service is not running' / 'export to Azure AD was stopped'). "
        "Nothing changed on-premises reaches Entra ID: leavers keep access, new users do not "
        "appear. Every other finding is measured against stale cloud data."
    ),
    remediation=(
        "On the Entra Connect server: Get-ADSyncScheduler (SyncCycleEnabled, "
        "StagingModeEnabled), Get-ADSyncConnectorRunStatus, the ADSync service state and the "
        "application event log; then Start-ADSyncSyncCycle -PolicyType Delta. For Cloud Sync, "
        "check the provisioning agent and the configuration's quarantine status in the Entra "
        "admin center."
    ),
    references=(
        "https://learn.microsoft.com/entra/identity/hybrid/connect/how-to-connect-sync-feature-scheduler",
    ),
    remediation_actions=(Action.manual,),
    requires=(Need.tenant_organization,),
)

TENANT_MATCHING_SETTINGS = RuleMeta(
    code="tenant-matching-settings",
    action="Record the tenant matching switches; informational.",
    severity=Severity.info,
    family=FAMILY,
    title="Tenant matching switch",
    explanation=(
        "How Entra ID matches incoming on-premises users depends on three tenant switches "
        "(GET /directory/onPremisesSynchronization, features): blockSoftMatchEnabled, "
        "blockCloudObjectTakeoverThroughHardMatchEnabled and softMatchOnUpnEnabled. The report "
        "states each value, where it came from (graph, config or unknown) and what it means for "
        "the findings and the remediation script. Reading them needs a delegated token; an "
        "app-only token gets 403 and the value is unknown unless set in [entra.features]."
    ),
    remediation=(
        "Read the switches with Get-MgDirectoryOnPremiseSynchronization (delegated, "
        "OnPremDirectorySynchronization.Read.All) and record them in [entra.features] when the "
        "audit runs app-only. Change them only for a planned matching window with "
        "Update-MgDirectoryOnPremiseSynchronization -Features, and turn the block back on after."
    ),
    references=(
        "https://learn.microsoft.com/graph/api/resources/onpremisesdirectorysynchronizationfeature",
        "https://learn.microsoft.com/entra/identity/hybrid/connect/how-to-connect-install-existing-tenant",
    ),
    remediation_actions=(),
)


def _dt(iso: str | None) -> datetime | None:
    if not iso:
        return None
    parsed = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_AD_ID_COLUMNS = ("source", "dn", "object_guid", "upn", "anchor", "in_scope")


def _first_per_key(frame: pl.DataFrame, key: str) -> pl.DataFrame:
    """One AD user per key, deterministically: in-scope first, then by DN."""
    return frame.sort(["_key_rank", "dn"], nulls_last=True).unique(
        subset=[key], keep="first", maintain_order=True
    )


# --- provisioning-error --------------------------------------------------------------------


def provisioning_error(ctx: RuleContext) -> pl.DataFrame:
    cloud = ctx.cloud.filter(pl.col("provisioning_errors").list.len() > 0)
    if not cloud.height:
        return pl.DataFrame()
    errors = (
        cloud.select("id", "upn", "immutable_id", "deleted_at", "provisioning_errors")
        .explode("provisioning_errors")
        .unnest("provisioning_errors")
        .with_columns(
            _key=pl.col("value").str.strip_chars().str.replace(r"^(?i)smtp:", "").str.to_lowercase()
        )
    )
    wanted = errors.select(pl.col("_key").drop_nulls().unique())
    ad = ctx.ad.select(*_AD_ID_COLUMNS, "mail", "proxy_addresses").with_columns(
        _key_rank=(~pl.col("in_scope")).cast(pl.Int8)
    )
    keys = wanted.get_column("_key").to_list()
    smtp_keys = [f"smtp:{k}" for k in keys]
    # one pass over AD for the few users mentioning a conflicting value, then exact keys
    candidates = ad.filter(
        pl.col("upn").str.to_lowercase().is_in(keys).fill_null(False)
        | pl.col("mail").str.to_lowercase().is_in(keys).fill_null(False)
        | pl.col("proxy_addresses")
        .list.eval(pl.element().str.to_lowercase().is_in(smtp_keys))
        .list.any()
        .fill_null(False)
    ).with_row_index("_row")
    by_upn = candidates.select(*_AD_ID_COLUMNS, "_key_rank", _key=addresses.lower("upn"))
    by_mail = candidates.select(*_AD_ID_COLUMNS, "_key_rank", _key=addresses.lower("mail"))
    by_smtp = (
        addresses.smtp_addresses(candidates, "_row")
        .join(candidates, on="_row")
        .select(*_AD_ID_COLUMNS, "_key_rank", _key=pl.col("address"))
    )
    found = pl.concat([by_upn, by_mail, by_smtp]).join(wanted, on="_key", how="semi")
    owners = _first_per_key(found, "_key").select(
        pl.col("_key"), *[pl.col(c).alias(f"owner_{c}") for c in _AD_ID_COLUMNS[:5]]
    )
    anchors = errors.select(pl.col("immutable_id").drop_nulls().unique())
    holders = _first_per_key(
        ad.join(anchors, left_on="anchor", right_on="immutable_id", how="semi"), "anchor"
    ).select(
        pl.col("anchor").alias("immutable_id"),
        *[pl.col(c).alias(f"holder_{c}") for c in _AD_ID_COLUMNS[:5]],
    )
    rows = errors.join(owners, on="_key", how="left").join(holders, on="immutable_id", how="left")
    # The AD user the finding is about is the one this cloud user is synced from (its anchor
    # holder); the other AD owner of the conflicting value is named in the detail. Only an
    # unmatched cloud user is filed under the value's owner.
    other_owner = pl.col("owner_dn").is_not_null() & (
        pl.col("holder_dn").is_null() | (pl.col("owner_dn") != pl.col("holder_dn"))
    )
    ad_cols = [
        pl.coalesce(f"holder_{c}", f"owner_{c}").alias(name)
        for c, name in zip(
            _AD_ID_COLUMNS[:5],
            ("ad_source", "ad_dn", "ad_object_guid", "ad_upn", "anchor"),
            strict=True,
        )
    ]
    state = (
        pl.when(pl.col("deleted_at").is_null()).then(pl.lit("active")).otherwise(pl.lit("deleted"))
    )
    category = pl.coalesce("category", pl.lit("unknown category"))
    prop = pl.coalesce("property", pl.lit("an attribute"))
    value = pl.coalesce("value", pl.lit(""))
    base = pl.format(
        "{} cloud user {} has a provisioning error ({}) on {} value '{}'",
        state,
        "upn",
        category,
        prop,
        value,
    )
    detail = (
        pl.when(other_owner)
        .then(pl.format("{}; the value also belongs to AD user {}.", base, "owner_dn"))
        .otherwise(pl.format("{}.", base))
    )
    return rows.select(
        detail.alias("detail"),
        *ad_cols,
        pl.col("id").alias("cloud_id"),
        pl.col("upn").alias("cloud_upn"),
        state.alias("cloud_state"),
        pl.col("property").alias("attribute"),
        pl.col("value"),
        shape.evidence(
            category=pl.col("category"),
            occurred=pl.col("occurred"),
            property=pl.col("property"),
            value=pl.col("value"),
            value_owner_ad_dn=pl.col("owner_dn"),
            anchor_holder_ad_dn=pl.col("holder_dn"),
        ),
        pl.lit(Action.manual).alias("remediation"),
    )


# --- stale-sync-object ---------------------------------------------------------------------


def stale_sync_object(ctx: RuleContext) -> pl.DataFrame:
    tenant_last = _dt(ctx.snapshot.tenant.last_dirsync)
    reference = tenant_last or ctx.now
    limit_days = ctx.thresholds.stale_object_days
    cutoff = reference - timedelta(days=limit_days)
    stale = ctx.active_cloud.filter(
        pl.col("sync_enabled").fill_null(False)
        & (pl.col("last_sync") < pl.lit(cutoff).cast(UTC_DATETIME))
    )
    if not stale.height:
        return pl.DataFrame()
    ad = ctx.ad.select(*_AD_ID_COLUMNS).with_columns(_key_rank=(~pl.col("in_scope")).cast(pl.Int8))
    holders = _first_per_key(
        ad.join(
            stale.select("immutable_id"), left_on="anchor", right_on="immutable_id", how="semi"
        ),
        "anchor",
    ).select(
        pl.col("anchor").alias("immutable_id"),
        *[pl.col(c).alias(f"ad_{c}") for c in _AD_ID_COLUMNS],
    )
    rows = stale.join(holders, on="immutable_id", how="left").with_columns(
        _age_days=(pl.lit(reference).cast(UTC_DATETIME) - pl.col("last_sync")).dt.total_hours()
        / 24.0
    )
    reference_name = "the tenant's last sync" if tenant_last else "the snapshot time"
    ad_note = (
        pl.when(pl.col("ad_dn").is_null())
        .then(pl.lit("no AD user in the snapshot holds its anchor"))
        .when(pl.col("ad_in_scope").fill_null(False))
        .then(pl.format("its AD user {} is in scope", "ad_dn"))
        .otherwise(pl.format("its AD user {} is out of sync scope", "ad_dn"))
    )
    return rows.select(
        pl.format(
            "Synced cloud user {} was last synced {} ({} days before {}); {}.",
            "upn",
            pl.col("last_sync").dt.to_string("%Y-%m-%dT%H:%M:%SZ"),
            pl.col("_age_days").round(1),
            pl.lit(reference_name),
            ad_note,
        ).alias("detail"),
        pl.col("ad_source"),
        pl.col("ad_dn"),
        pl.col("ad_object_guid"),
        pl.col("ad_upn"),
        pl.col("immutable_id").alias("anchor"),
        pl.col("id").alias("cloud_id"),
        pl.col("upn").alias("cloud_upn"),
        pl.lit("active").alias("cloud_state"),
        pl.lit("onPremisesLastSyncDateTime").alias("attribute"),
        pl.col("last_sync").dt.to_string("%Y-%m-%dT%H:%M:%SZ").alias("value"),
        shape.evidence(
            last_sync=pl.col("last_sync"),
            reference=pl.lit(reference).cast(UTC_DATETIME),
            reference_is=pl.lit("tenant_last_dirsync" if tenant_last else "snapshot_time"),
            age_days=pl.col("_age_days").round(2),
            threshold_days=pl.lit(limit_days),
            on_prem_dn=pl.col("on_prem_dn"),
            ad_in_scope=pl.col("ad_in_scope"),
        ),
        pl.lit(Action.manual).alias("remediation"),
    )


# --- tenant-sync-stale ---------------------------------------------------------------------


def tenant_sync_stale(ctx: RuleContext) -> pl.DataFrame:
    tenant = ctx.snapshot.tenant
    if not tenant.known or tenant.dirsync_enabled is not True:
        return pl.DataFrame()
    last = _dt(tenant.last_dirsync)
    limit = ctx.thresholds.stale_sync_hours
    if last is None:
        age: float | None = None
        detail = "Directory sync is on for the tenant but no sync has ever completed."
    else:
        age = round((ctx.now - last).total_seconds() / 3600.0, 2)
        if age <= limit:
            return pl.DataFrame()
        detail = (
            f"Directory sync is on but the tenant last synced at {last:%Y-%m-%dT%H:%M:%SZ}, "
            f"{age:g} hours before this snapshot (threshold {limit:g} hours)."
        )
    value = f"{last:%Y-%m-%dT%H:%M:%SZ}" if last else None
    return pl.DataFrame(
        {
            "detail": [detail],
            "cloud_state": ["none"],
            "attribute": ["onPremisesLastSyncDateTime"],
            "value": [value],
        },
        schema={
            "detail": pl.String,
            "cloud_state": pl.String,
            "attribute": pl.String,
            "value": pl.String,
        },
    ).with_columns(
        shape.evidence(
            tenant_id=pl.lit(tenant.tenant_id, dtype=pl.String),
            last_dirsync=pl.lit(value, dtype=pl.String),
            snapshot_time=pl.lit(f"{ctx.now.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"),
            age_hours=pl.lit(age, dtype=pl.Float64),
            threshold_hours=pl.lit(float(limit)),
        ),
        remediation=pl.lit(Action.manual),
    )


# --- tenant-matching-settings --------------------------------------------------------------

# config key -> (Graph feature name, meaning when true, when false, when unknown)
_SWITCHES: dict[str, tuple[str, str, str, str]] = {
    "block_soft_match": (
        "blockSoftMatchEnabled",
        "soft match is blocked: an AD user whose primary SMTP or UPN equals a cloud-only user's "
        "will not take it over; soft-match-pending predictions do not apply and matching needs "
        "the set-anchor (hard match) remediation.",
        "soft match is allowed: a new AD user whose primary SMTP (or UPN) equals a cloud-only "
        "user with no immutableId takes that user over at the next sync.",
        "soft match may be blocked; soft-match predictions assume it is allowed (the default).",
    ),
    "block_hard_match_takeover": (
        "blockCloudObjectTakeoverThroughHardMatchEnabled",
        "hard-match takeover of cloud-only users is blocked: the set-anchor remediation will "
        "fail with InvalidHardMatch unless the switch is turned off for the change window.",
        "hard-match takeover is allowed: setting a cloud-only user's immutableId lets the next "
        "sync take it over (subject to the 2026 hard-match hardening).",
        "hard-match takeover may be blocked: set-anchor may fail with InvalidHardMatch.",
    ),
    "soft_match_on_upn": (
        "softMatchOnUpnEnabled",
        "soft match also uses the UPN when no primary SMTP address matches.",
        "only the primary SMTP address soft-matches; an equal UPN alone does not match.",
        "UPN soft match is assumed on (the default for tenants since 2016; it cannot be "
        "turned off once on).",
    ),
}


def _switch_text(feature: Feature) -> str:
    return "unknown" if feature.value is None else ("true" if feature.value else "false")


def tenant_matching_settings(ctx: RuleContext) -> pl.DataFrame:
    details, names, values, sources, keys = [], [], [], [], []
    for key, (graph_name, when_true, when_false, when_unknown) in _SWITCHES.items():
        feature: Feature = getattr(ctx.features, key)
        value = _switch_text(feature)
        meaning = {"true": when_true, "false": when_false, "unknown": when_unknown}[value]
        origin = feature.source if feature.value is not None else "unknown"
        details.append(f"Tenant switch {graph_name} is {value} (from {origin}): {meaning}")
        names.append(graph_name)
        values.append(value)
        sources.append(origin)
        keys.append(key)
    frame = pl.DataFrame(
        {"detail": details, "attribute": names, "value": values, "_source": sources, "_key": keys},
        schema=dict.fromkeys(("detail", "attribute", "value", "_source", "_key"), pl.String),
    )
    return frame.select(
        "detail",
        "attribute",
        "value",
        shape.evidence(
            switch=pl.col("attribute"),
            config_key=pl.col("_key"),
            value=pl.col("value"),
            source=pl.col("_source"),
        ),
        cloud_state=pl.lit("none"),
    )


RULES: tuple[Rule, ...] = (
    Rule(PROVISIONING_ERROR, provisioning_error),
    Rule(STALE_SYNC_OBJECT, stale_sync_object),
    Rule(TENANT_SYNC_STALE, tenant_sync_stale),
    Rule(TENANT_MATCHING_SETTINGS, tenant_matching_settings),
)
