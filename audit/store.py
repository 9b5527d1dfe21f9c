"""Runs on disk: a run directory is complete or absent.

Everything is written under a hidden temporary name beside its destination and renamed into
place, so a crash, a full disk or an input error never leaves something that looks finished.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import polars as pl

from audit.errors import RunDirError
from audit.model import (
    AD_USERS_SCHEMA,
    CLOUD_OBJECTS_SCHEMA,
    CLOUD_USERS_SCHEMA,
    Snapshot,
    SourceReport,
    Tenant,
    conform,
)

MANIFEST = "manifest.json"
SNAPSHOT_DIR = "snapshot"
FORMAT_VERSION = 1


@contextmanager
def staged_directory(final: Path) -> Iterator[Path]:
    """Yield a temporary sibling directory; rename it to `final` only if the block succeeds."""
    if final.is_symlink():
        # resolving it would put the run wherever the link points
        raise RunDirError(f"{final}: is a symbolic link; choose a new run directory")
    final = final.parent.resolve() / final.name
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        raise RunDirError(f"{final}: already exists; choose a new run directory")
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    try:
        yield staging
        if final.exists():
            final.rmdir()  # empty (checked above): an empty target directory is fine to take
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@contextmanager
def staged_outputs(run_dir: Path) -> Iterator[Path]:
    """Yield a hidden directory inside the run; on success move every file in it into the run.

    analyze writes findings, reports and the script here, so a failure halfway (a PDF that will
    not render, a full disk) leaves the previous analysis whole instead of a mix of new and old
    files; the manifest is written after this block, last.
    """
    staging = Path(tempfile.mkdtemp(prefix=".analyze.", suffix=".partial", dir=run_dir))
    try:
        yield staging
        for produced in sorted(staging.iterdir()):
            os.replace(produced, run_dir / produced.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_file_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Call write(tmp) then rename tmp over `path`, so readers see the old or the new file.

    A run directory is input: someone may plant a symlink where a predictable staging name
    would be, and a write through it would land on any file the user can write. So tmp lives
    in a fresh directory made by mkdtemp (exclusive, unpredictable name, mode 0700, where nobody
    else can create anything), and the rename replaces a symlink at `path` instead of following
    it.
    """
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    tmp = staging / path.name
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_snapshot(directory: Path, snapshot: Snapshot) -> None:
    snap = directory / SNAPSHOT_DIR
    snap.mkdir(parents=True, exist_ok=True)
    for name, frame, schema in (
        ("ad_users", snapshot.ad_users, AD_USERS_SCHEMA),
        ("cloud_users", snapshot.cloud_users, CLOUD_USERS_SCHEMA),
        ("cloud_objects", snapshot.cloud_objects, CLOUD_OBJECTS_SCHEMA),
    ):
        # One row group: read back as one chunk per column, so analyze need not copy the
        # frames to make them contiguous (at 1M users that copy was the memory peak).
        conform(frame, schema).write_parquet(
            snap / f"{name}.parquet", row_group_size=max(frame.height, 1)
        )
    (snap / "tenant.json").write_text(snapshot.tenant.to_json() + "\n", encoding="utf-8")


def read_manifest(run_dir: Path) -> dict[str, Any]:
    path = run_dir / MANIFEST
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: no such run directory")
    if not path.is_file():
        raise RunDirError(f"{run_dir}: not a syncaudit run directory ({MANIFEST} missing)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunDirError(f"{path}: unreadable manifest: {exc}") from None
    except RecursionError:
        raise RunDirError(f"{path}: unreadable manifest: nested too deeply") from None
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
        raise RunDirError(f"{path}: unsupported run format")
    return data


def write_manifest(run_dir: Path, manifest: Mapping[str, Any]) -> None:
    text = json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n"
    write_file_atomically(run_dir / MANIFEST, lambda p: p.write_text(text, encoding="utf-8"))


def read_snapshot(run_dir: Path) -> Snapshot:
    manifest = read_manifest(run_dir)
    snap = run_dir / SNAPSHOT_DIR
    try:
        ad = pl.read_parquet(snap / "ad_users.parquet")
        cloud = pl.read_parquet(snap / "cloud_users.parquet")
        objects_path = snap / "cloud_objects.parquet"
        objects = (
            pl.read_parquet(objects_path)
            if objects_path.exists()
            else pl.DataFrame(schema=CLOUD_OBJECTS_SCHEMA)
        )
        try:
            tenant = Tenant.from_dict(
                json.loads((snap / "tenant.json").read_text(encoding="utf-8"))
            )
        except RecursionError:
            raise RunDirError(f"{snap / 'tenant.json'}: nested too deeply") from None
    except (OSError, pl.exceptions.PolarsError, json.JSONDecodeError) as exc:
        raise RunDirError(f"{snap}: snapshot unreadable: {exc}") from None
    sources = tuple(SourceReport(**s) for s in manifest.get("sources", []))
    return Snapshot(
        ad_users=conform(ad, AD_USERS_SCHEMA),
        cloud_users=conform(cloud, CLOUD_USERS_SCHEMA),
        cloud_objects=conform(objects, CLOUD_OBJECTS_SCHEMA),
        tenant=tenant,
        sources=sources,
        taken_at=manifest.get("taken_at"),
    )


def source_reports_as_json(snapshot: Snapshot) -> list[dict[str, Any]]:
    return [
        {**asdict(s), "excluded": dict(s.excluded), "warnings": list(s.warnings)}
        for s in snapshot.sources
    ]


def in_run(snapshot: Snapshot, staging: Path) -> Snapshot:
    """Sources read from the run's own raw captures named by their place in the run
    (raw/graph/users-1.json), not by the staging directory renamed away when it completes."""

    def place(path: str | None) -> str | None:
        if path is None or "://" in path:
            return path
        given = Path(path)
        return str(given.relative_to(staging)) if given.is_relative_to(staging) else path

    return replace(
        snapshot, sources=tuple(replace(s, path=place(s.path)) for s in snapshot.sources)
    )
