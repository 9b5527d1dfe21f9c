"""Small builders for crafted estates: a clean, matched AD/cloud user by default, so each test
states only what makes its case special."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from audit.config import Settings, Thresholds
from audit.model import (
    AD_USERS_SCHEMA,
    CLOUD_OBJECTS_SCHEMA,
    CLOUD_USERS_SCHEMA,
    Domain,
    Feature,
    Snapshot,
    SourceReport,
    Tenant,
    TenantFeatures,
    conform,
)

NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
DOMAIN = "contoso.com"
INITIAL = "contoso.onmicrosoft.com"


def guid_for(name: str) -> str:
    """A stable GUID per name so expected findings can be written down."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"syncaudit-test:{name}"))


def b64_anchor(guid: str) -> str:
    return base64.b64encode(uuid.UUID(guid).bytes_le).decode()


def cloud_id_for(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"cloud:{name}"))


def ad_user(name: str, **overrides: Any) -> dict[str, Any]:
    guid = overrides.pop("object_guid", guid_for(name))
    upn = overrides.pop("upn", f"{name}@{DOMAIN}")
    row: dict[str, Any] = {
        "source": "corp",
        "dn": f"CN={name},OU=Staff,DC=corp,DC=contoso,DC=com",
        "object_guid": guid,
        "consistency_guid": None,
        "anchor": b64_anchor(guid),
        "anchor_attribute": "objectGUID",
        "sam_account_name": name[:20],
        "upn": upn,
        "mail": upn,
        "mail_nickname": name,
        "proxy_addresses": [f"SMTP:{upn}"],
        "primary_smtp": upn,
        "display_name": name.title(),
        "given_name": name.title(),
        "surname": "Tester",
        "employee_id": None,
        "enabled": True,
        "user_account_control": 512,
        "object_sid": None,
        "when_created": NOW - timedelta(days=400),
        "when_changed": NOW - timedelta(days=10),
        "last_logon": NOW - timedelta(days=1),
        "is_critical_system_object": False,
        "in_scope": True,
        "out_of_scope_reason": None,
    }
    row.update(overrides)
    return row


def cloud_user(name: str, **overrides: Any) -> dict[str, Any]:
    """By default the synced twin of ad_user(name)."""
    upn = overrides.pop("upn", f"{name}@{DOMAIN}")
    row: dict[str, Any] = {
        "id": cloud_id_for(name),
        "upn": upn,
        "mail": upn,
        "mail_nickname": name,
        "proxy_addresses": [f"SMTP:{upn}"],
        "primary_smtp": upn,
        "display_name": name.title(),
        "immutable_id": b64_anchor(guid_for(name)),
        "sync_enabled": True,
        "last_sync": NOW - timedelta(minutes=20),
        "on_prem_dn": f"CN={name},OU=Staff,DC=corp,DC=contoso,DC=com",
        "on_prem_sam": name[:20],
        "on_prem_sid": None,
        "on_prem_upn": upn,
        "on_prem_domain": "corp.contoso.com",
        "account_enabled": True,
        "on_prem_object_id": None,
        "created": NOW - timedelta(days=390),
        "user_type": "Member",
        "employee_id": None,
        "provisioning_errors": [],
        "directory_roles": [],
        "admin_roles": [],
        "eligible_roles": [],
        "deleted_at": None,
    }
    row.update(overrides)
    if "directory_roles" not in overrides:
        # a privileged role assigned is a directory role too
        row["directory_roles"] = list(row["admin_roles"])
    return row


def cloud_only_user(name: str, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "immutable_id": None,
        "sync_enabled": None,
        "last_sync": None,
        "on_prem_dn": None,
        "on_prem_sam": None,
        "on_prem_upn": None,
        "on_prem_domain": None,
    }
    base.update(overrides)
    return cloud_user(name, **base)


def tenant(
    *,
    verified: Iterable[str] = (DOMAIN,),
    unverified: Iterable[str] = (),
    federated: Iterable[str] = (),
    dirsync_enabled: bool | None = True,
    last_dirsync: datetime | None = NOW - timedelta(minutes=20),
    features: Mapping[str, bool | None] | None = None,
) -> Tenant:
    domains = [Domain(INITIAL, True, initial=True)]
    domains += [
        Domain(
            d,
            True,
            default=i == 0,
            authentication_type="Federated" if d in federated else "Managed",
        )
        for i, d in enumerate(verified)
    ]
    domains += [Domain(d, False) for d in unverified]
    feats = {
        k: Feature(value=v, source="graph" if v is not None else "unknown")
        for k, v in (features or {}).items()
    }
    return Tenant(
        tenant_id="00000000-0000-4000-8000-000000000001",
        initial_domain=INITIAL,
        domains=tuple(domains),
        dirsync_enabled=dirsync_enabled,
        last_dirsync=last_dirsync.isoformat() if last_dirsync else None,
        features=TenantFeatures(**feats),
    )


def frame(rows: list[dict[str, Any]], schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame(schema=dict(schema))
    return conform(pl.DataFrame(rows, schema=dict(schema), strict=False), schema)


def snapshot(
    ad: list[dict[str, Any]] = (),  # type: ignore[assignment]
    cloud: list[dict[str, Any]] = (),  # type: ignore[assignment]
    *,
    objects: list[dict[str, Any]] = (),  # type: ignore[assignment]
    tenant_info: Tenant | None = None,
    complete: Mapping[str, bool | None] | None = None,
) -> Snapshot:
    """A snapshot whose sources are all supplied and complete unless `complete` says otherwise
    (a kind mapped to None is left out, as when its import flag was not given)."""
    completeness: dict[str, bool | None] = {
        "ad": True,
        "cloud": True,
        "deleted": True,
        "domains": True,
        "tenant": True,
        "roles": True,
    }
    completeness.update(complete or {})
    return Snapshot(
        ad_users=frame(list(ad), AD_USERS_SCHEMA),
        cloud_users=frame(list(cloud), CLOUD_USERS_SCHEMA),
        cloud_objects=frame(list(objects), CLOUD_OBJECTS_SCHEMA),
        tenant=tenant_info or tenant(),
        sources=tuple(
            SourceReport(
                name=k,
                kind=k,
                path=None,
                format="graph-json:organization" if k == "tenant" else "test",
                complete=v,
                rows=0,
                incomplete_reason=None if v else "cut short (test)",
            )
            for k, v in completeness.items()
            if v is not None
        ),
        taken_at=NOW.isoformat(),
    )


def settings(**thresholds: float) -> Settings:
    return Settings(thresholds=Thresholds(**thresholds))
