"""A snapshot read from live sources (``syncaudit collect``): every ``[[ad]]`` table with a
url read over LDAP into one ``ad_users`` frame (its rows tagged with the table's name in
``source``), each read captured as ``raw/ad-<name>.ldif``; the tenant read through Microsoft
Graph when ``[entra]`` names an app (pages kept in ``raw/graph/``), or the cloud side from
Graph exports when given, else absent.

Complete or nothing: the first source that cannot be read completely (after its retries)
raises its one-line error and no snapshot exists. Relative paths in an [[ad]] table (ca_file,
password_file) are read from the config file's directory, as the report's logo is, so a
scheduled service finds them whatever its working directory.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import polars as pl

from audit.config import AdSource, Settings, config_relative
from audit.errors import ConfigError, UsageError
from audit.model import Snapshot, SourceReport
from audit.sources.ad import AdRows
from audit.sources.files import CloudExports, read_cloud_side
from audit.sources.graph import read_entra
from audit.sources.graph_delta import EntraCollection, collect_entra
from audit.sources.ldap import ONE_ATTEMPT, ReadPolicy, ReadProgress, read_ad_ldap
from audit.sources.snapshot import assemble_snapshot
from audit.sources.snapshot import taken_at as parse_taken_at

RAW_DIR = "raw"
NO_EXPORTS = CloudExports()
# An [[ad]] name becomes a file name (raw/ad-<name>.ldif): nothing that could leave raw/.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def raw_ldif_name(source: str) -> str:
    return f"ad-{source}.ldif"


def live_ad_sources(settings: Settings) -> tuple[AdSource, ...]:
    """The [[ad]] tables collect reads, paths resolved; a table without a url, or a name that
    cannot name a file, is a ConfigError naming the table."""
    origin = settings.source_path or "<config>"
    sources = []
    for table in settings.ad:
        if not _SAFE_NAME.fullmatch(table.name):
            raise ConfigError(
                f"{origin}: [[ad]] name {table.name!r}: collect names its capture "
                "raw/ad-<name>.ldif, so use letters, digits, '.', '_' or '-' (64 at most)"
            )
        if not table.url.strip():
            raise ConfigError(
                f"{origin}: [[ad]] {table.name} has no url: collect reads AD over LDAP; give "
                'url = "ldaps://<dc>" (or import an export of it with `syncaudit import`)'
            )
        sources.append(
            replace(
                table,
                ca_file=config_relative(table.ca_file, settings.source_path),
                password_file=config_relative(table.password_file, settings.source_path),
            )
        )
    return tuple(sources)


@dataclass(frozen=True)
class Collected:
    snapshot: Snapshot
    entra: EntraCollection | None  # how the tenant was read live (full or delta), if it was


def collect_snapshot(
    settings: Settings,
    *,
    raw_dir: Path,
    exports: CloudExports = NO_EXPORTS,
    environ: Mapping[str, str] | None = None,
    retries: bool = True,
    progress: Callable[[ReadProgress], None] | None = None,
    say: Callable[[str], None] | None = None,
    entra_state: Path | None = None,
) -> Collected:
    """Every live [[ad]] source and the tenant ([entra], unless cloud exports are given) -> one
    Snapshot, every read captured in `raw_dir`; each AD read tried as often as its table says
    (`retries`) or once. `say` gets the lines an operator should see (retries, what was read
    from where). With `entra_state` (the data directory's state/), the tenant read is a delta
    run when the previous one allows it (graph_delta.py), else a full enumeration."""
    ad_sources = live_ad_sources(settings)
    entra = live_entra(settings)
    if not ad_sources and not entra and not exports.given:
        raise UsageError(
            "nothing to collect: the config has no [[ad]] table with a url and no [entra] app "
            "(client_id, auth); or give the cloud side as exports with --cloud"
        )
    taken = parse_taken_at(None)
    rows = AdRows()
    reports: list[SourceReport] = []
    for source in ad_sources:
        reports.append(
            read_ad_ldap(
                source,
                rows,
                config_path=settings.source_path,
                environ=environ,
                policy=ReadPolicy.of(source) if retries else ONE_ATTEMPT,
                raw_ldif=raw_dir / raw_ldif_name(source.name),
                progress=progress,
                on_retry=say,
            )
        )
    ad_users = rows.frame()
    overlapping_sources(ad_users, settings.source_path or "<config>")
    collection: EntraCollection | None = None
    if exports.given or not entra:
        if entra and say is not None:
            say("[entra] not read live: the cloud side comes from the exports given")
        side = read_cloud_side(exports, settings=settings, taken=taken)
    elif entra_state is None:
        side = read_entra(settings, raw_dir=raw_dir, environ=environ, progress=say)
    else:
        read = collect_entra(
            settings, raw_dir=raw_dir, state_dir=entra_state, environ=environ, progress=say
        )
        side, collection = read.side, read.collection
    snapshot = assemble_snapshot(
        ad_users=ad_users,
        cloud_users=side.users,
        cloud_objects=side.objects,
        tenant=side.tenant,
        reports=[*reports, *side.reports],
        taken=taken,
    )
    return Collected(snapshot, collection)


# [entra] keys that only a live read uses: one of them set means "read this tenant" (tenant_id
# alone also pins remediation.ps1 for exports).
LIVE_ENTRA_KEYS = frozenset(
    {"client_id", "auth", "client_secret_env", "client_secret_file", "certificate_file"}
)


def live_entra(settings: Settings) -> bool:
    """Whether the config asks for the tenant to be read live."""
    entra = settings.raw.get("entra")
    return isinstance(entra, Mapping) and bool(LIVE_ENTRA_KEYS & set(entra))


def overlapping_sources(ad_users: pl.DataFrame, origin: str) -> None:
    """Two [[ad]] tables that read the same objects (one domain configured twice, a DC and a
    global catalog of it) would report every user as its own duplicate: a ConfigError naming
    them. objectGUID is unique in a forest, so a GUID under two sources is one object."""
    shared = (
        ad_users.drop_nulls("object_guid")
        .group_by("object_guid")
        .agg(pl.col("source").unique().sort(), pl.col("dn").first())
        .filter(pl.col("source").list.len() > 1)
    )
    if shared.height:
        sources, dn = shared.sort("dn").row(0)[1:]
        raise ConfigError(
            f"{origin}: [[ad]] {' and '.join(sources)} read the same objects ({shared.height} "
            f"in common, e.g. {dn}): they point at the same domain; keep one of them, or split "
            "it with base_dn"
        )
