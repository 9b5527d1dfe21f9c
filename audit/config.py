"""TOML -> validated settings.

Secrets never live in the TOML: keys ending in ``_env`` name an environment variable and keys
ending in ``_file`` name a file; a key that looks like an inline secret (``password``,
``smtp_pass``, ``auth_token``, ``api_key``...) is an error so nobody commits one by accident, and
so is a URL carrying user info. The validated TOML is copied into every run's manifest, so every
table accepts only its documented keys (with their types checked); anything else is refused.

Every mistake is one line: ``<file>:<line>: <what>``. tomllib gives no positions for keys, so
the line is found by scanning the TOML text (config_lines.py); a key it cannot place (inside an
inline table, or a config read back from a manifest) is reported without a line number.

This module holds the settings (frozen dataclasses), how a file becomes them (load_settings,
settings_from_dict) and the keys no command reads yet; the schema every table is checked
against, and the phrasing of its errors, is config_schema.py.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.config_schema import ConfigContext, check_tables
from audit.errors import ConfigError
from audit.model import Feature, Severity

DEFAULT_ANCHOR_ATTRIBUTE = "mS-DS-ConsistencyGuid"


@dataclass(frozen=True)
class RunSettings:
    data_dir: str = "data"
    keep_runs: int = 52
    fail_on: Severity = Severity.high
    waivers: str = ""  # the waivers file (audit/waivers.py), relative to the config file


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
    # A live read lost to the network or a DC restart is tried again from its first page,
    # `attempts` times in all, waiting retry_wait seconds, then twice as long each time.
    attempts: int = 5
    retry_wait: float = 5.0
    timeout: int = 300  # seconds without a byte from the DC before a page is given up


@dataclass(frozen=True)
class EntraSettings:
    tenant_id: str = ""
    client_id: str = ""
    auth: str = "client_secret"
    client_secret_env: str = ""
    client_secret_file: str = ""
    certificate_file: str = ""
    authority_host: str = "https://login.microsoftonline.com"
    graph_url: str = "https://graph.microsoft.com/v1.0"
    ca_file: str = ""
    # collect enumerates every user on every full_every-th run; the runs between apply the
    # changes since the previous run (/users/delta) to its snapshot.
    full_every: int = 7
    # Matching switches from config, used when Graph cannot tell (app-only tokens get 403).
    features: Mapping[str, Feature] = field(default_factory=dict)


@dataclass(frozen=True)
class Thresholds:
    stale_sync_hours: float = 3
    stale_object_days: float = 7
    unmatched_grace_days: float = 2
    max_drop_percent: float = 10
    # Entra Connect's and Cloud Sync's export-deletion threshold: an export with more deletes
    # than this stops (entra-docs accidental-deletes.md: "enabled by default and configured to
    # not allow an export with more than 500 deletes"). Set it to the one your server uses.
    deletion_threshold: int = 500
    # The sync-health figure is green from health_good_percent, amber from health_warn_percent,
    # red below (and never green while a critical finding is open).
    health_good_percent: float = 98
    health_warn_percent: float = 90


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
class ScheduleSettings:
    """[schedule] of `syncaudit serve` (DESIGN.md)."""

    cron: str = ""  # five fields, e.g. "0 6 * * mon"; empty = not scheduled
    timezone: str = ""  # IANA name; empty = the host's local time


@dataclass(frozen=True)
class EmailSettings:
    """[email]: where the findings are mailed (DESIGN.md). Credentials come from the
    environment or a file, never from the TOML."""

    smtp_host: str = ""  # empty = no mail
    smtp_port: int = 587
    security: str = "starttls"  # starttls | tls | none
    username_env: str = ""
    password_env: str = ""
    password_file: str = ""
    ca_file: str = ""
    sender: str = ""
    to: tuple[str, ...] = ()
    attach: tuple[str, ...] = ("pdf", "ps1", "xlsx")


@dataclass(frozen=True)
class Settings:
    run: RunSettings = field(default_factory=RunSettings)
    ad: tuple[AdSource, ...] = ()
    entra: EntraSettings = field(default_factory=EntraSettings)
    thresholds: Thresholds = field(default_factory=Thresholds)
    report: ReportSettings = field(default_factory=ReportSettings)
    remediation: RemediationSettings = field(default_factory=RemediationSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    email: EmailSettings = field(default_factory=EmailSettings)
    source_path: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def not_used_yet(self) -> list[str]:
        """One line per key this config sets that no command of this version reads."""
        return not_used_yet(self.raw, self.source_path or "config")

    def ad_source(self, name: str | None) -> AdSource:
        """The [[ad]] table for an import: by name, else the only one, else defaults."""
        if name is not None:
            for source in self.ad:
                if source.name == name:
                    return source
            return AdSource(name=name)
        return self.ad[0] if len(self.ad) == 1 else AdSource()


# Keys validated now (so a config written for a later version fails early on a typo or a
# literal secret) that no command of this version reads, with what will read them. Setting one
# gets a warning line, so nobody believes it took effect. None at present: every key is read.
NOT_USED_YET: Mapping[str, Mapping[str, str]] = {}


def not_used_yet(raw: Mapping[str, Any], origin: str) -> list[str]:
    lines = []
    for table, keys in NOT_USED_YET.items():
        value = raw.get(table)
        tables = value if isinstance(value, list) else [value] if isinstance(value, Mapping) else []
        label = f"[[{table}]]" if table == "ad" else f"[{table}]"
        seen: set[str] = set()
        for entry in tables:
            for key in entry if isinstance(entry, Mapping) else ():
                if key in keys and key not in seen:
                    seen.add(key)
                    lines.append(
                        f"{origin}: {label} {key} is not used by this version yet (it is for "
                        f"{keys[key]})"
                    )
    return lines


def config_relative(value: str, source_path: str | None) -> str:
    """A file path from the config: a relative one is read from the config file's directory,
    so a scheduled service finds it whatever its working directory; empty stays empty."""
    if not value:
        return value
    given = Path(value).expanduser()
    base = Path(source_path).parent if source_path else Path()
    return str(given if given.is_absolute() else base / given)


def load_settings(path: str | Path | None) -> Settings:
    if path is None:
        return Settings()
    file = Path(path)
    try:
        content = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{file}: config file not found") from None
    try:
        text = content.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{file}:{line}: not UTF-8 (byte {exc.start}); save the config as UTF-8"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_toml_error(str(file), text, exc)) from None
    return settings_from_dict(data, str(file), text=text)


def _toml_error(origin: str, text: str, exc: tomllib.TOMLDecodeError) -> str:
    """tomllib's message ends in "(at line L, column C)" or "(at end of document)"."""
    message = str(exc)
    at = re.search(r"\s*\(at line (\d+), column (\d+)\)\s*$", message)
    if at:
        return f"{origin}:{at[1]}: not valid TOML: {message[: at.start()]} (column {at[2]})"
    end = re.search(r"\s*\(at end of document\)\s*$", message)
    if end:
        line = max(1, len(text.splitlines()))
        return f"{origin}:{line}: not valid TOML: {message[: end.start()]} (at the end of the file)"
    return f"{origin}: not valid TOML: {message}"


# --- settings from the parsed TOML ------------------------------------------------------------


def settings_from_dict(
    data: Mapping[str, Any], origin: str = "<config>", *, text: str | None = None
) -> Settings:
    """Validate parsed TOML. `text` is the TOML source, used only to put line numbers on
    errors; without it (a config read back from a run manifest) they are left out."""
    ctx = ConfigContext(origin, text, data)
    checked = check_tables(data, ctx)

    ad = tuple(AdSource(**values) for values in checked.get("ad", []))
    names = [a.name for a in ad]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise ctx.error(("ad", index, "name"), f"[[ad]] names must be unique, got {names}")
    entra = dict(checked.get("entra", {}))
    features = {
        key: Feature(value=value, source="config")
        for key, value in entra.pop("features", {}).items()
    }
    email = checked.get("email", {})
    return Settings(
        run=RunSettings(**checked.get("run", {})),
        ad=ad,
        entra=EntraSettings(**entra, features=features),
        thresholds=Thresholds(**checked.get("thresholds", {})),
        report=ReportSettings(**checked.get("report", {})),
        remediation=RemediationSettings(**checked.get("remediation", {})),
        schedule=ScheduleSettings(**checked.get("schedule", {})),
        email=EmailSettings(**email),
        source_path=origin,
        raw=data,
    )
