"""Frame schemas, the snapshot, and the vocabulary shared by sources, rules and renderers.

Every other module refers to the column names declared here; a source that produces a frame
passes it through :func:`conform` so the rules can rely on names and dtypes.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl

UTC_DATETIME = pl.Datetime("us", "UTC")

PROVISIONING_ERROR = pl.Struct(
    {
        "category": pl.String,
        "occurred": UTC_DATETIME,
        "property": pl.String,
        "value": pl.String,
    }
)

AD_USERS_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "dn": pl.String(),
    "object_guid": pl.String(),  # canonical lower-case GUID text
    "consistency_guid": pl.String(),  # base64 of the raw attribute bytes, any length
    "anchor": pl.String(),  # effective sourceAnchor as Entra sees it
    "anchor_attribute": pl.String(),
    "sam_account_name": pl.String(),
    "upn": pl.String(),
    "mail": pl.String(),
    "mail_nickname": pl.String(),
    "proxy_addresses": pl.List(pl.String()),
    "primary_smtp": pl.String(),  # address of the `SMTP:` value, without prefix
    "target_address": pl.String(),  # as stored, with its prefix (SMTP:user@tenant.mail...)
    "display_name": pl.String(),
    "given_name": pl.String(),
    "surname": pl.String(),
    "employee_id": pl.String(),
    "enabled": pl.Boolean(),
    "user_account_control": pl.Int64(),
    "object_sid": pl.String(),  # S-1-5-21-... text
    "when_created": UTC_DATETIME,
    "when_changed": UTC_DATETIME,
    "last_logon": UTC_DATETIME,
    "is_critical_system_object": pl.Boolean(),
    "in_scope": pl.Boolean(),
    "out_of_scope_reason": pl.String(),
}

CLOUD_USERS_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.String(),
    "upn": pl.String(),
    "mail": pl.String(),
    "mail_nickname": pl.String(),
    "proxy_addresses": pl.List(pl.String()),
    "primary_smtp": pl.String(),
    "display_name": pl.String(),
    "immutable_id": pl.String(),
    "sync_enabled": pl.Boolean(),  # true synced, false was synced, null never synced
    "last_sync": UTC_DATETIME,
    "on_prem_dn": pl.String(),
    "on_prem_sam": pl.String(),
    "on_prem_sid": pl.String(),
    "on_prem_upn": pl.String(),
    "on_prem_domain": pl.String(),
    "account_enabled": pl.Boolean(),
    "on_prem_object_id": pl.String(),  # onPremisesObjectIdentifier; null = unset or unreadable
    "created": UTC_DATETIME,
    "user_type": pl.String(),
    "employee_id": pl.String(),
    "provisioning_errors": pl.List(PROVISIONING_ERROR),
    # every directory role assigned, directly or through a role-assignable group: any of them
    # blocks a soft match ("Existing Admin Role Conflict")
    "directory_roles": pl.List(pl.String()),
    # the privileged ones among them (isPrivileged), and privileged roles PIM-eligible: both
    # block a hard match since the 2026 hardening
    "admin_roles": pl.List(pl.String()),
    "eligible_roles": pl.List(pl.String()),
    "deleted_at": UTC_DATETIME,  # null for active users
}

# Groups and contacts also own addresses: a soft match against one fails with
# ObjectTypeMismatch and an AD user whose SMTP value one of them owns cannot be exported.
CLOUD_OBJECTS_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.String(),
    "object_type": pl.String(),  # group, contact
    "display_name": pl.String(),
    "mail": pl.String(),
    "proxy_addresses": pl.List(pl.String()),
}

FINDINGS_SCHEMA: dict[str, pl.DataType] = {
    "fingerprint": pl.String(),
    "code": pl.String(),
    "severity": pl.String(),
    "family": pl.String(),
    "title": pl.String(),
    "detail": pl.String(),
    "ad_source": pl.String(),
    "ad_dn": pl.String(),
    "ad_object_guid": pl.String(),
    "ad_upn": pl.String(),
    "anchor": pl.String(),
    "cloud_id": pl.String(),
    "cloud_upn": pl.String(),
    "cloud_state": pl.String(),  # active / deleted / none
    "attribute": pl.String(),
    "value": pl.String(),
    "proposed_value": pl.String(),
    "evidence": pl.String(),  # JSON text
    "remediation": pl.String(),  # action id implemented by remediation.ps1, or null
    # the root cause this finding shares with others (one fix): rules/overlaps.cause_key
    "cause": pl.String(),
    "waived": pl.Boolean(),
    "waiver_reason": pl.String(),
    "waiver_expires": pl.String(),
    "status": pl.String(),  # new / open / waived
    "first_seen": UTC_DATETIME,
}

# The columns a rule fills; classify adds severity/family/title from the metadata and the
# fingerprint, waiver and status columns.
RULE_OUTPUT_COLUMNS: tuple[str, ...] = (
    "code",
    "severity",
    "detail",
    "ad_source",
    "ad_dn",
    "ad_object_guid",
    "ad_upn",
    "anchor",
    "cloud_id",
    "cloud_upn",
    "cloud_state",
    "attribute",
    "value",
    "proposed_value",
    "evidence",
    "remediation",
)


def empty_frame(schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(schema=dict(schema))


def conform(frame: pl.DataFrame, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """Select the schema's columns in order, cast to its dtypes, add missing ones as nulls."""
    exprs = [
        (
            pl.col(name).cast(dtype, strict=False)
            if name in frame.columns
            else pl.lit(None, dtype=dtype).alias(name)
        )
        for name, dtype in schema.items()
    ]
    return frame.select(exprs)


class Severity(enum.IntEnum):
    info = 0
    low = 1
    medium = 2
    high = 3
    critical = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().lower()]
        except KeyError:
            names = ", ".join(s.name for s in cls)
            raise ValueError(f"unknown severity {text!r} (use one of: {names})") from None


class Need(enum.Enum):
    """What a finding may rest on beyond the rows it names: a source read completely (an
    absence is only evidence over a complete read), or a source supplied at all.

    A rule declares its needs (RuleMeta.requires, Case.requires); classify holds back what rests
    on an unmet need and says why (:func:`unmet_needs`), instead of reporting a guess."""

    complete_ad = "every AD source read completely"
    complete_cloud = "the cloud users read completely"
    deleted_users = "the soft-deleted users (--deleted)"
    tenant_domains = "the tenant's domains (--domains, or --tenant with verifiedDomains)"
    tenant_organization = "the tenant's organization (--tenant)"
    roles = "the directory role assignments (--roles)"


class Action(enum.StrEnum):
    """The remediation action ids. A rule names one in a finding's `remediation` column (the
    frame stores its plain string value) so the report and remediation.ps1 agree on what fixes
    what; remediation.actions.ACTIONS declares what each one does in the script."""

    purge_deleted_holder = "purge-deleted-holder"
    restore_deleted_holder = "restore-deleted-holder"
    set_anchor = "set-anchor"
    clear_anchor = "clear-anchor"
    fix_anchor_encoding = "fix-anchor-encoding"
    merge_duplicate_cloud = "merge-duplicate-cloud"
    roles_detour = "roles-detour"
    clear_onprem_object_id = "clear-onprem-object-id"
    ad_set_attribute = "ad-set-attribute"
    block_sign_in = "block-sign-in"
    manual = "manual"


@dataclass(frozen=True)
class Case:
    """A part of a rule with needs of its own (the rest of the rule runs without them)."""

    name: str
    requires: tuple[Need, ...]
    what: str  # what is not checked when the case is held back


@dataclass(frozen=True)
class RuleMeta:
    """What a finding code means; rendered into reports and `syncaudit explain`."""

    code: str
    severity: Severity  # the default; a rule may raise or lower it per row (enabled-drift)
    family: str
    title: str
    explanation: str
    remediation: str
    # What to do, in one sentence a manager can read (the commands are in `remediation`).
    action: str
    references: tuple[str, ...] = ()
    remediation_actions: tuple[str, ...] = ()
    # Held back entirely while one of these is unmet.
    requires: tuple[Need, ...] = ()
    # Parts held back on their own.
    cases: tuple[Case, ...] = ()
    # Reported anyway while unmet; each finding then says what it could not rule out.
    caveats: tuple[Need, ...] = ()


@dataclass(frozen=True)
class Domain:
    name: str
    verified: bool
    initial: bool = False
    default: bool = False
    authentication_type: str = "Managed"  # Managed / Federated


@dataclass(frozen=True)
class Feature:
    """A tenant matching switch: value true/false/None (unknown) and where it came from."""

    value: bool | None = None
    source: str = "unknown"  # graph, config, unknown


@dataclass(frozen=True)
class TenantFeatures:
    block_soft_match: Feature = field(default_factory=Feature)
    block_hard_match_takeover: Feature = field(default_factory=Feature)
    soft_match_on_upn: Feature = field(default_factory=Feature)
    # synchronizeUpnForManagedUsersEnabled: without it, UPN changes of licensed users in managed
    # (not federated) domains are blocked (Set-EntraDirSyncFeature's SynchronizeUpnForManagedUsers)
    synchronize_upn_for_managed_users: Feature = field(default_factory=Feature)


@dataclass(frozen=True)
class Tenant:
    tenant_id: str | None = None
    initial_domain: str | None = None
    domains: tuple[Domain, ...] = ()
    dirsync_enabled: bool | None = None
    last_dirsync: str | None = None  # ISO 8601 UTC
    features: TenantFeatures = field(default_factory=TenantFeatures)
    known: bool = True  # False when no tenant/domains data was supplied at all

    def verified_domains(self) -> list[str]:
        return sorted(d.name.lower() for d in self.domains if d.verified)

    def federated_domains(self) -> list[str]:
        return sorted(
            d.name.lower()
            for d in self.domains
            if d.verified and d.authentication_type.lower() == "federated"
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tenant:
        feats = data.get("features") or {}
        return cls(
            tenant_id=data.get("tenant_id"),
            initial_domain=data.get("initial_domain"),
            domains=tuple(Domain(**d) for d in data.get("domains") or ()),
            dirsync_enabled=data.get("dirsync_enabled"),
            last_dirsync=data.get("last_dirsync"),
            features=TenantFeatures(
                **{k: Feature(**v) for k, v in feats.items() if k in TenantFeatures.__annotations__}
            ),
            known=bool(data.get("known", True)),
        )


@dataclass(frozen=True)
class SourceReport:
    """How one input was read: absence-based findings are only sound for complete sources."""

    name: str
    kind: str  # ad, cloud, deleted, domains, tenant, roles
    path: str | None
    format: str
    complete: bool
    rows: int
    excluded: Mapping[str, int] = field(default_factory=dict)  # reason -> count
    warnings: Sequence[str] = ()
    incomplete_reason: str | None = None  # why complete is False, in a few words
    notes: Sequence[str] = ()  # how the input was read (pages joined...), not problems


@dataclass(frozen=True)
class Snapshot:
    ad_users: pl.DataFrame
    cloud_users: pl.DataFrame
    tenant: Tenant
    cloud_objects: pl.DataFrame = field(default_factory=lambda: empty_frame(CLOUD_OBJECTS_SCHEMA))
    sources: tuple[SourceReport, ...] = ()
    taken_at: str | None = None  # ISO 8601 UTC: "now" for age-based rules

    def complete(self, kind: str) -> bool:
        """True when every source of that kind was read completely (and at least one exists)."""
        of_kind = [s for s in self.sources if s.kind == kind]
        return bool(of_kind) and all(s.complete for s in of_kind)

    def unmet_needs(self) -> dict[Need, str]:
        """Each need this snapshot cannot meet, with why (naming the sources)."""
        unmet: dict[Need, str] = {}
        for need, kind, missing in (
            (Need.complete_ad, "ad", "no AD export"),
            (Need.complete_cloud, "cloud", "no cloud users export"),
            (Need.deleted_users, "deleted", "no soft-deleted users export (--deleted)"),
        ):
            of_kind = [s for s in self.sources if s.kind == kind]
            if not of_kind:
                unmet[need] = missing
            elif not all(s.complete for s in of_kind):
                unmet[need] = "; ".join(
                    f"{s.name}: {s.incomplete_reason or 'not read completely'}"
                    for s in of_kind
                    if not s.complete
                )
        if not self.tenant.domains:
            unmet[Need.tenant_domains] = "no tenant domains (--domains, or --tenant)"
        if not any(s.kind == "tenant" and "organization" in s.format for s in self.sources):
            unmet[Need.tenant_organization] = "no organization export (--tenant)"
        if not any(s.kind == "roles" for s in self.sources):
            unmet[Need.roles] = "no role assignments (--roles)"
        return unmet
