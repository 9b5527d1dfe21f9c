"""TOML -> validated settings.

Secrets never live in the TOML: keys ending in ``_env`` name an environment variable and keys
ending in ``_file`` name a file; a literal secret key (``password``, ``client_secret``...) is an
error so nobody commits one by accident.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from audit.model import Feature, Severity

FORBIDDEN_SECRET_KEYS = frozenset(
    {"password", "client_secret", "secret", "smtp_password", "token", "api_key"}
)
DEFAULT_ANCHOR_ATTRIBUTE = "mS-DS-ConsistencyGuid"


class ConfigError(ValueError):
    """A configuration problem, phrased as one line naming the file and key."""


@dataclass(frozen=True)
class RunSettings:
    data_dir: str = "data"
    keep_runs: int = 52
    fail_on: Severity = Severity.high


@dataclass(frozen=True)
class AdSource:
    name: str = "ad"
    url: str = ""
    start_tls: bool = False
    ca_file: str = ""
    tls_verify: bool = True
    bind_dn: str = ""
    password_env: str = ""
    password_file: str = ""
    base_dn: str = ""
    include_ous: tuple[str, ...] = ()
    exclude_ous: tuple[str, ...] = ()
    filter: str = ""
    anchor_attribute: str = DEFAULT_ANCHOR_ATTRIBUTE
    page_size: int = 1000


@dataclass(frozen=True)
class EntraSettings:
    tenant_id: str = ""
    client_id: str = ""
    auth: str = "client_secret"
    client_secret_env: str = ""
    certificate_file: str = ""
    authority_host: str = "https://login.microsoftonline.com"
    graph_url: str = "https://graph.microsoft.com/v1.0"
    ca_file: str = ""
    # Matching switches from config, used when Graph cannot tell (app-only tokens get 403).
    features: Mapping[str, Feature] = field(default_factory=dict)


@dataclass(frozen=True)
class Thresholds:
    stale_sync_hours: float = 3
    stale_object_days: float = 7
    unmatched_grace_days: float = 2
    max_drop_percent: float = 10


@dataclass(frozen=True)
class ReportSettings:
    company: str = ""
    title: str = "Hybrid identity sync audit"
    logo: str = ""
    pdf_rows_per_code: int = 25
    redact: bool = False


@dataclass(frozen=True)
class RemediationSettings:
    # remediation.ps1 takes admin roles off around a hard match (and puts them back) only when
    # this is on; otherwise those findings become documented manual steps.
    allow_role_changes: bool = False


@dataclass(frozen=True)
class Settings:
    run: RunSettings = field(default_factory=RunSettings)
    ad: tuple[AdSource, ...] = ()
    entra: EntraSettings = field(default_factory=EntraSettings)
    thresholds: Thresholds = field(default_factory=Thresholds)
    report: ReportSettings = field(default_factory=ReportSettings)
    remediation: RemediationSettings = field(default_factory=RemediationSettings)
    source_path: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)

    def ad_source(self, name: str | None) -> AdSource:
        """The [[ad]] table for an import: by name, else the only one, else defaults."""
        if name is not None:
            for source in self.ad:
                if source.name == name:
                    return source
            return AdSource(name=name)
        return self.ad[0] if len(self.ad) == 1 else AdSource()


def load_settings(path: str | Path | None) -> Settings:
    if path is None:
        return Settings()
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{file}: config file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    return settings_from_dict(data, str(file))


# [schedule] and [email] are part of the config contract (DESIGN.md) for the scheduled
# service; they are accepted, and checked for literal secrets, before that service exists.
KNOWN_TABLES = frozenset(
    {"run", "ad", "entra", "thresholds", "report", "remediation", "schedule", "email"}
)
_RUN_KEYS = frozenset({"data_dir", "keep_runs", "fail_on"})
_URL_KEYS = (("ad", "url"), ("entra", "graph_url"), ("entra", "authority_host"))


def settings_from_dict(data: Mapping[str, Any], origin: str = "<config>") -> Settings:
    _reject_literal_secrets(data, origin, "")
    # The validated TOML is kept in every run's manifest: an unknown table or key could carry
    # a secret there unnoticed, so it is an error, as in every other table.
    unknown_tables = set(data) - KNOWN_TABLES
    if unknown_tables:
        raise ConfigError(f"{origin}: unknown tables {sorted(unknown_tables)}")
    run = data.get("run", {})
    unknown_run = set(run) - _RUN_KEYS
    if unknown_run:
        raise ConfigError(f"{origin}: [run] unknown keys {sorted(unknown_run)}")
    _reject_credentials_in_urls(data, origin)
    fail_on = run.get("fail_on", "high")
    try:
        fail_on_severity = Severity.parse(str(fail_on))
    except ValueError as exc:
        raise ConfigError(f"{origin}: run.fail_on: {exc}") from None
    ad_tables = data.get("ad", [])
    if isinstance(ad_tables, Mapping):
        ad_tables = [ad_tables]
    ad = tuple(_ad_source(t, origin, i) for i, t in enumerate(ad_tables))
    names = [a.name for a in ad]
    if len(set(names)) != len(names):
        raise ConfigError(f"{origin}: [[ad]] names must be unique, got {names}")
    entra = dict(data.get("entra", {}))
    features_table = entra.pop("features", {}) or {}
    features = {}
    for key in ("block_soft_match", "block_hard_match_takeover", "soft_match_on_upn"):
        if key in features_table:
            value = features_table[key]
            if not isinstance(value, bool):
                raise ConfigError(f"{origin}: entra.features.{key} must be true or false")
            features[key] = Feature(value=value, source="config")
    unknown_features = set(features_table) - set(features)
    if unknown_features:
        raise ConfigError(f"{origin}: entra.features: unknown keys {sorted(unknown_features)}")
    return Settings(
        run=RunSettings(
            data_dir=str(run.get("data_dir", "data")),
            keep_runs=_int(run.get("keep_runs", 52), origin, "run.keep_runs"),
            fail_on=fail_on_severity,
        ),
        ad=ad,
        entra=EntraSettings(
            **_known(entra, EntraSettings, origin, "entra", skip={"features"}),
            features=features,
        ),
        thresholds=Thresholds(
            **{
                k: _number(v, origin, f"thresholds.{k}")
                for k, v in _known(
                    data.get("thresholds", {}), Thresholds, origin, "thresholds"
                ).items()
            }
        ),
        report=ReportSettings(**_known(data.get("report", {}), ReportSettings, origin, "report")),
        remediation=_remediation(data.get("remediation", {}), origin),
        source_path=origin,
        raw=data,
    )


def _remediation(table: Mapping[str, Any], origin: str) -> RemediationSettings:
    values = _known(table, RemediationSettings, origin, "remediation")
    for key, value in values.items():
        if not isinstance(value, bool):
            raise ConfigError(f"{origin}: remediation.{key} must be true or false")
    return RemediationSettings(**values)


def _ad_source(table: Mapping[str, Any], origin: str, index: int) -> AdSource:
    where = f"ad[{index}]"
    values = _known(table, AdSource, origin, where)
    for key in ("include_ous", "exclude_ous"):
        if key in values:
            items = values[key]
            if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
                raise ConfigError(f"{origin}: {where}.{key} must be a list of DNs")
            values[key] = tuple(items)
    if "page_size" in values:
        values["page_size"] = _int(values["page_size"], origin, f"{where}.page_size")
    return AdSource(**values)


def _known(
    table: Mapping[str, Any],
    cls: type,
    origin: str,
    where: str,
    skip: frozenset[str] | set[str] = frozenset(),
) -> dict[str, Any]:
    allowed = {f.name for f in fields(cls)} - {"features"}
    unknown = set(table) - allowed - set(skip)
    if unknown:
        raise ConfigError(f"{origin}: [{where}] unknown keys {sorted(unknown)}")
    return {k: v for k, v in table.items() if k in allowed}


def _int(value: Any, origin: str, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{origin}: {key} must be an integer")
    return value


def _number(value: Any, origin: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{origin}: {key} must be a number")
    return float(value)


def _reject_credentials_in_urls(data: Mapping[str, Any], origin: str) -> None:
    for table_name, key in _URL_KEYS:
        tables = data.get(table_name) or []
        for index, table in enumerate(tables if isinstance(tables, list) else [tables]):
            value = table.get(key) if isinstance(table, Mapping) else None
            if isinstance(value, str) and "@" in urlsplit(value).netloc:
                where = (
                    f"{table_name}[{index}].{key}" if table_name == "ad" else f"{table_name}.{key}"
                )
                raise ConfigError(
                    f"{origin}: {where}: credentials in a URL are not read from the config "
                    "file; use password_env or password_file"
                )


def _reject_literal_secrets(data: Mapping[str, Any], origin: str, prefix: str) -> None:
    for key, value in data.items():
        path = f"{prefix}{key}"
        if key.lower() in FORBIDDEN_SECRET_KEYS:
            raise ConfigError(
                f"{origin}: {path}: secrets are not read from the config file; "
                f"use {key}_env (environment variable) or {key}_file"
            )
        if isinstance(value, Mapping):
            _reject_literal_secrets(value, origin, path + ".")
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, Mapping):
                    _reject_literal_secrets(item, origin, path + ".")
