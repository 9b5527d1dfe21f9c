"""Run directories are complete or absent; written findings are safe to open in a spreadsheet."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.errors import RunDirError
from audit.store import (
    read_snapshot,
    staged_directory,
    write_manifest,
    write_snapshot,
)
from tests.factories import ad_user, cloud_user, snapshot


def test_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    """An exception while staging removes the staging directory and never creates the target."""
    target = tmp_path / "runs" / "r1"
    with pytest.raises(RuntimeError), staged_directory(target) as staging:
        (staging / "half.parquet").write_bytes(b"x")
        raise RuntimeError("disk full")
    assert not target.exists()
    assert list((tmp_path / "runs").iterdir()) == []


def test_existing_run_is_never_overwritten(tmp_path: Path) -> None:
    target = tmp_path / "r1"
    target.mkdir()
    (target / "manifest.json").write_text("{}")
    with pytest.raises(RunDirError, match="already exists"), staged_directory(target):
        pass
    assert (target / "manifest.json").read_text() == "{}"


def test_snapshot_round_trips_through_parquet(tmp_path: Path) -> None:
    """What analyze reads back is exactly what import wrote, dtypes included."""
    snap = snapshot([ad_user("alice")], [cloud_user("alice")])
    with staged_directory(tmp_path / "r") as staging:
        write_snapshot(staging, snap)
        write_manifest(
            staging,
            {"format_version": 1, "taken_at": snap.taken_at, "sources": []},
        )
    back = read_snapshot(tmp_path / "r")
    assert back.ad_users.equals(snap.ad_users)
    assert back.cloud_users.equals(snap.cloud_users)
    assert back.tenant == snap.tenant
    assert back.taken_at == snap.taken_at


def test_reading_something_that_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="no such run directory"):
        read_snapshot(tmp_path / "missing")
    with pytest.raises(RunDirError, match=r"manifest\.json missing"):
        read_snapshot(tmp_path)


def test_a_run_directory_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    from audit.errors import RunDirError
    from audit.store import staged_directory

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "2026-11-30").symlink_to(elsewhere)
    with (
        pytest.raises(RunDirError, match="symbolic link"),
        staged_directory(tmp_path / "runs" / "2026-11-30"),
    ):
        pass
    assert list(elsewhere.iterdir()) == []
