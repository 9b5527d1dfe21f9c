"""Snapshot from exported files (``syncaudit import``): format detection and the file readers.

Formats are recognised by content (:mod:`audit.sources.detect`). The readers only turn files
into records (LDIF: :mod:`audit.sources.ldif`, CSV: :mod:`audit.sources.csvfile`) or Graph
pages (:mod:`audit.sources.graph_pages`); what a record or a Graph object means is decided in
:mod:`audit.sources.ad` and :mod:`audit.sources.entra`, the same code a live source feeds. Any
malformed input raises :class:`InputError` before a Snapshot exists: there is never a partial
snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

from audit.config import Settings
from audit.errors import InputError
from audit.model import Domain, Snapshot, SourceReport, Tenant
from audit.sources import csvfile
from audit.sources.ad import (
    AdRows,
    ad_source_for,
    map_ad_records,
    prepare_ad_source,
)
from audit.sources.detect import Notes, TextInput, read_input
from audit.sources.entra import (
    CloudUsers,
    TenantFacts,
    UserFileResult,
    add_user_objects,
    cloud_objects_frame,
    cloud_users_frame,
    domains_from_json,
    domains_from_text,
    note_select_only,
    page_object_type,
    tenant_from,
    tenant_from_json,
)
from audit.sources.entra_bulk import (
    BulkPage,
    bulk_ids_usable,
    read_bulk_files,
    users_frame,
    where_of,
)
from audit.sources.entra_roles import RoleFacts, read_roles, with_role_columns
from audit.sources.graph_pages import Export, Page, context_entity, exports, import_flag, pages
from audit.sources.ldif import ldif_records
from audit.sources.records import Record
from audit.sources.snapshot import assemble_snapshot
from audit.sources.snapshot import taken_at as parse_taken_at

__all__ = ["InputError", "import_files"]

# Graph page files through entra_bulk when it can read them (it gives the same result; tests
# run every import both ways and compare).
BULK_GRAPH = True


def import_files(
    *,
    ad: Sequence[tuple[str | None, Path]],
    cloud: Sequence[Path],
    deleted: Path | None = None,
    domains: Path | None = None,
    tenant: Path | None = None,
    roles: Sequence[Path] = (),
    settings: Settings,
    taken_at: str | None = None,
) -> Snapshot:
    """Read every export into one Snapshot, or raise InputError naming the file and line."""
    taken = parse_taken_at(taken_at)
    reports: list[SourceReport] = []
    ad_rows = AdRows()
    for name, path in ad:
        reports.append(read_ad_file(Path(path), name, settings, ad_rows))
    exports = CloudExports(cloud, deleted, domains, tenant, roles)
    side = read_cloud_side(exports, settings=settings, taken=taken)
    return assemble_snapshot(
        ad_users=ad_rows.frame(),
        cloud_users=side.users,
        cloud_objects=side.objects,
        tenant=side.tenant,
        reports=[*reports, *side.reports],
        taken=taken,
    )


@dataclass(frozen=True)
class CloudExports:
    """The cloud side's export files, as `import` (and `collect`, until it reads Entra live)
    takes them: users pages, soft-deleted users, domains, the tenant, role exports."""

    cloud: Sequence[Path] = ()
    deleted: Path | None = None
    domains: Path | None = None
    tenant: Path | None = None
    roles: Sequence[Path] = ()

    @property
    def given(self) -> bool:
        return bool(self.cloud or self.deleted or self.domains or self.tenant or self.roles)


@dataclass(frozen=True)
class CloudSide:
    """The cloud half of a snapshot, read from exports."""

    users: pl.DataFrame
    objects: pl.DataFrame
    tenant: Tenant
    reports: list[SourceReport]


def read_cloud_side(exports: CloudExports, *, settings: Settings, taken: datetime) -> CloudSide:
    """Graph (or Get-MgUser CSV) exports -> cloud frames, tenant and their reports; nothing
    given -> empty frames and no report (the cloud side is then absent, not empty)."""
    reports: list[SourceReport] = []
    users = CloudUsers()
    reports.extend(read_cloud_files([Path(p) for p in exports.cloud], users, taken, deleted=False))
    if exports.deleted is not None:
        reports.extend(read_cloud_files([Path(exports.deleted)], users, taken, deleted=True))
    tenant_info, tenant_reports = read_tenant(exports.domains, exports.tenant, settings)
    reports.extend(tenant_reports)
    cloud_frame = cloud_users_frame(users)
    if exports.roles:
        cloud_frame, role_reports = with_roles(cloud_frame, [Path(p) for p in exports.roles])
        reports.extend(role_reports)
    return CloudSide(cloud_frame, cloud_objects_frame(users), tenant_info, reports)


def read_ad_file(path: Path, name: str | None, settings: Settings, target: AdRows) -> SourceReport:
    notes = Notes()
    config, source_name = ad_source_for(name, path, settings, notes)
    reading = prepare_ad_source(config, source_name, settings.source_path)
    text = read_input(path, ("ldif", "csv"))
    note_encoding(text, notes)
    records, fmt, blanked = ad_records(text, reading.wanted, reading.binary, notes)
    return map_ad_records(
        records,
        reading,
        where=str(path),
        fmt=fmt,
        notes=notes,
        target=target,
        # LDIF writes a printable binary value as text: those are its raw bytes
        raw_text_is_bytes=fmt == "ldif",
        blanked=blanked,
    )


def note_encoding(text: TextInput, notes: Notes) -> None:
    if text.encoding == "cp1252":
        notes.add("not valid UTF-8: read as Windows-1252 (ldifde / PowerShell 5.1 ANSI output)")


def ad_records(
    text: TextInput, wanted: frozenset[str], binary: frozenset[str], notes: Notes
) -> tuple[Iterable[Record], str, dict[str, int]]:
    """Records of an AD export, its format name, and the columns blanked by type-name cells."""
    if text.format == "ldif":
        return ldif_records(text.text, text.path, wanted, binary), "ldif", {}
    table = csvfile.csv_table(text.text, text.path)
    if table.kind == csvfile.GET_MGUSER:
        raise InputError(
            text.path, "this is a Get-MgUser (cloud) export: pass it with --cloud", line=1
        )
    blanked: dict[str, int] = {}
    records = csvfile.ad_records(table, text.path, wanted, binary, notes, blanked)
    return records, table.kind, blanked


def read_cloud_files(
    paths: Sequence[Path], users: CloudUsers, taken: datetime, *, deleted: bool
) -> list[SourceReport]:
    """The users of one import flag's files: one report per export, an export being a
    Get-MgUser CSV or the Graph pages of one query, however many files they were saved in."""
    if BULK_GRAPH:
        read = _read_cloud_bulk(paths, users, taken, deleted=deleted)
        if read is not None:
            return read
    reports: list[tuple[int, SourceReport]] = []  # (position of its first file, report)
    json_pages: list[Page] = []
    file_notes: dict[Path, Notes] = {}
    order = {path: i for i, path in enumerate(paths)}
    for path in paths:
        notes = file_notes.setdefault(path, Notes())
        text = read_input(path, ("json", "csv"))
        note_encoding(text, notes)
        if text.format == "json":
            for page in pages(text.text, path):
                _reject_wrong_response(page.context, path, page.line, deleted=deleted)
                json_pages.append(page)
            continue
        table = csvfile.csv_table(text.text, path)
        if table.kind != csvfile.GET_MGUSER:
            raise InputError(
                path, "this is an AD export, not a Graph user export: pass it with --ad", line=1
            )
        items = ((path, line, obj, "user") for line, obj in csvfile.graph_rows(table, path))
        result = add_user_objects(users, items, notes, deleted=deleted, taken_at=taken)
        reports.append(
            (order[path], _cloud_report([path], table.kind, result, notes, deleted=deleted))
        )
    for export in exports(json_pages):
        if deleted:
            _reject_active_users_as_deleted(export)
        notes = Notes()
        for path in export.files:
            for line in file_notes[path].lines():
                notes.add(line)
        items = (
            (page.path, page.line, obj, page_object_type(page.context))
            for page in export.pages
            for obj in page.items
        )
        result = add_user_objects(users, items, notes, deleted=deleted, taken_at=taken)
        report = _cloud_report(
            list(export.files),
            export_format(export),
            result,
            notes,
            deleted=deleted,
            export=export,
        )
        reports.append((order[export.files[0]], report))
    return [report for _, report in sorted(reports, key=lambda r: r[0])]


def export_format(export: Export) -> str:
    """graph-json for response pages (or one bare array), graph-jsonl for JSON Lines."""
    return "graph-json" if export.enveloped or len(export.pages) == 1 else "graph-jsonl"


def _read_cloud_bulk(
    paths: Sequence[Path], users: CloudUsers, taken: datetime, *, deleted: bool
) -> list[SourceReport] | None:
    """read_cloud_files for Graph page files that entra_bulk can read (each file's pages parsed
    by Polars, the users mapped as expressions); None, with nothing added, when any of them
    needs the exact path."""
    found = read_bulk_files(paths)
    if found is None:
        return None
    json_pages: list[Page] = list(found)
    if any(page_object_type(page.context) != "user" for page in json_pages):
        return None
    if not bulk_ids_usable(found, users.taken_ids()):
        return None
    for page in json_pages:
        _reject_wrong_response(page.context, page.path, page.line, deleted=deleted)
    order = {path: i for i, path in enumerate(paths)}
    added: list[tuple[pl.DataFrame, list[tuple[pl.Series, str, int]], int, SourceReport]] = []
    for export in exports(json_pages):
        if deleted:
            _reject_active_users_as_deleted(export)
        pages_of = [page for page in export.pages if isinstance(page, BulkPage)]
        notes = Notes()
        frame = users_frame(pages_of, notes, deleted=deleted, taken_at=taken)
        removed = sum(page.removals for page in pages_of)
        result = UserFileResult(
            rows=frame.height, excluded={"removed (delta)": removed} if removed else {}
        )
        if frame.height:
            note_select_only(set().union(*(page.keys for page in pages_of)), notes)
        report = _cloud_report(
            list(export.files),
            export_format(export),
            result,
            notes,
            deleted=deleted,
            export=export,
        )
        added.append((frame, where_of(pages_of), order[export.files[0]], report))
    for frame, where, _, _ in added:
        if frame.height:
            users.add_frame(frame, where, deleted=deleted)
    return [report for *_, report in sorted(added, key=lambda a: a[2])]


def _cloud_report(
    files: list[Path],
    fmt: str,
    result: UserFileResult,
    notes: Notes,
    *,
    deleted: bool,
    export: Export | None = None,
) -> SourceReport:
    complete = export is None or export.complete
    return SourceReport(
        name=", ".join(p.name for p in files),
        kind="deleted" if deleted else "cloud",
        path=str(files[0]) if len(files) == 1 else None,
        format=fmt,
        complete=complete,
        rows=result.rows,
        excluded=result.excluded,
        warnings=notes.lines(),
        incomplete_reason=export.incomplete_reason if export is not None else None,
        notes=(export.note,) if export is not None and export.note else (),
    )


def _reject_wrong_response(context: str, path: Path, line: int, *, deleted: bool) -> None:
    """A Graph response given to the wrong import flag is refused by what its context names.
    (Users given to --deleted carry a users context too: _reject_active_users_as_deleted.)"""
    flag = import_flag(context_entity(context))
    right = ("--cloud", "--deleted") if deleted else ("--cloud",)
    if flag is not None and flag not in right:
        raise InputError(
            path, f"this is not a users response ({context}): pass it with {flag}", line=line
        )


def _reject_active_users_as_deleted(export: Export) -> None:
    """GET /users given to --deleted: its context names the users set and no object carries
    deletedDateTime (a deleted-items export selected without it still names deletedItems)."""
    first = export.pages[0]
    entity = first.entity
    if not entity.startswith("users") or entity.startswith("users/delta"):
        return
    if not any(page.object_count for page in export.pages) or any(
        page.has_key("deleteddatetime") for page in export.pages
    ):
        return
    raise InputError(
        first.path,
        "this is GET /users (active users, no deletedDateTime): pass it with --cloud; soft-"
        "deleted users come from GET /directory/deletedItems/microsoft.graph.user",
        line=first.line,
    )


def read_tenant(
    domains: Path | None, tenant: Path | None, settings: Settings
) -> tuple[Tenant, list[SourceReport]]:
    """Tenant facts; Tenant.known is False when neither file was given."""
    # The snapshot holds only what Graph said; [entra.features] is applied when the run is
    # analysed (classify.effective_features), so `analyze --config` can still change it.
    if domains is None and tenant is None:
        return Tenant(known=False), []
    reports: list[SourceReport] = []
    domain_list: list[Domain] = []
    if domains is not None:
        domain_list, report = read_domains(Path(domains))
        reports.append(report)
    facts = TenantFacts()
    if tenant is not None:
        notes = Notes()
        text = read_input(Path(tenant), ("json",))
        facts = tenant_from_json(text.text, text.path, notes)
        reports.append(
            SourceReport(
                name=Path(tenant).name,
                kind="tenant",
                path=str(tenant),
                format="graph-json:" + "+".join(facts.kinds),
                complete=True,
                rows=len(facts.kinds),
                warnings=notes.lines(),
            )
        )
    return tenant_from(domain_list, facts, settings.entra.tenant_id), reports


def read_domains(path: Path) -> tuple[list[Domain], SourceReport]:
    text = read_input(path, ("json", "text"))
    if text.format == "json":
        found, fmt = domains_from_json(text.text, path), "graph-json"
    else:
        found, fmt = domains_from_text(text.text, path), "text"
    notes = Notes()
    if not any(d.initial for d in found):
        notes.add(
            "no initial (*.onmicrosoft.com) domain listed: predicted fallback UPNs are unknown"
        )
    return found, SourceReport(
        name=path.name,
        kind="domains",
        path=str(path),
        format=fmt,
        complete=True,
        rows=len(found),
        warnings=notes.lines(),
    )


def with_roles(
    cloud: pl.DataFrame, paths: Sequence[Path]
) -> tuple[pl.DataFrame, list[SourceReport]]:
    """cloud_users with directory_roles (every role assigned, directly or through a
    role-assignable group), admin_roles (the privileged ones) and eligible_roles (privileged
    roles PIM-eligible) filled from the --roles files."""
    facts = RoleFacts()
    reports = []
    for path in paths:
        text = read_input(path, ("json",))
        kinds = read_roles(text.text, path, facts)
        reports.append(
            SourceReport(
                name=path.name,
                kind="roles",
                path=str(path),
                format="graph-json:" + "+".join(kinds or ["empty"]),
                complete=True,
                rows=sum(kinds.values()),
            )
        )
    return with_role_columns(cloud, facts, reports)
