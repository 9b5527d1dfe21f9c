"""Delta runs of `syncaudit collect` (audit/sources/graph_delta.py) through the real msgraph-sdk
and azure-identity against the Graph emulator: the first run enumerates every user, a later one
applies the changes since (/users/delta from the kept deltaLink) to the previous snapshot, and
the result is the snapshot a full enumeration of the same tenant gives; an expired deltaLink,
`full_every`, or a previous run that does not hold together make a full run, and the manifest
says which kind each run was and why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from audit import pipeline
from audit.config import load_settings
from audit.sources.graph_delta import state_path
from tests.graph.configs import SECRET_ENV, entra_toml, entra_values
from tests.graph.emulator import GraphEmulator
from tests.graph.tenant import user


def write_config(directory: Path, emulator: GraphEmulator, **entra: Any) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "syncaudit.toml"
    path.write_text(
        '[run]\ndata_dir = "data"\n\n' + entra_toml(entra_values(emulator, **entra)),
        encoding="utf-8",
    )
    return path


def collect(config: Path, emulator: GraphEmulator) -> tuple[Path, dict[str, Any]]:
    environ = {SECRET_ENV: emulator.client_config().client_secret or ""}
    result = pipeline.collect(settings=load_settings(config), environ=environ)
    manifest = json.loads((result.run_dir / "manifest.json").read_text(encoding="utf-8"))
    return result.run_dir, manifest


def cloud_users(run_dir: Path) -> pl.DataFrame:
    return pl.read_parquet(run_dir / "snapshot" / "cloud_users.parquet").sort("id")


def full_enumeration(emulator: GraphEmulator, directory: Path) -> pl.DataFrame:
    """The tenant as a first run (no state: every user enumerated) sees it now."""
    run_dir, manifest = collect(write_config(directory, emulator), emulator)
    assert manifest["collection"]["entra"]["kind"] == "full"
    return cloud_users(run_dir)


def kind(manifest: dict[str, Any]) -> dict[str, Any]:
    return dict(manifest["collection"]["entra"])


def test_a_first_run_is_full_and_keeps_the_delta_link_without_secrets(
    graph_emulator: GraphEmulator, tmp_path: Path
) -> None:
    config = write_config(tmp_path, graph_emulator)
    run_dir, manifest = collect(config, graph_emulator)
    assert kind(manifest) == {
        "kind": "full",
        "reason": "no previous complete run",
        "base_run": None,
    }
    state_file = state_path(tmp_path / "data" / "state", graph_emulator.tenant.tenant_id)
    state = json.loads(state_file.read_text(encoding="utf-8"))
    assert state["run_id"] == run_dir.name and state["run_dir"] == str(run_dir)
    assert state["kind"] == "full" and state["deltas_since_full"] == 0
    assert "$deltatoken=" in state["delta_link"]
    secret = graph_emulator.client_config().client_secret or ""
    assert secret and secret not in state_file.read_text(encoding="utf-8")
    # the deltaLink is asked for before the users are paged ($top: /users takes it, delta not)
    latest, listing = graph_emulator.requests("/v1.0/users")
    assert latest.path == "/v1.0/users/delta()" and latest.query["$deltatoken"] == ["latest"]
    assert listing.path == "/v1.0/users" and listing.query["$top"] == ["999"]


def test_changes_made_while_a_full_run_pages_the_users_are_applied_once(
    graph_emulator: GraphEmulator, tmp_path: Path
) -> None:
    """The full run's deltaLink is of the moment before the users were paged: what changed
    while they were comes again in the next round, which gives the tenant as it is."""
    users = graph_emulator.tenant.users
    ids = {u["userPrincipalName"].split("@")[0]: u["id"] for u in users.live()}
    made: dict[str, str] = {}

    def meanwhile() -> None:
        made["erin"] = users.create(user("erin@contoso.example", synced=True))["id"]
        users.update(ids["ada"], displayName="Ada while paged")
        users.soft_delete(ids["carol"])

    # after the $deltatoken=latest call, before the first users page is answered
    graph_emulator.before("/v1.0/users", meanwhile, skip=1)
    config = write_config(tmp_path / "audit", graph_emulator)
    first, manifest = collect(config, graph_emulator)
    assert kind(manifest)["kind"] == "full" and "erin" in made
    names = dict(zip(cloud_users(first)["id"], cloud_users(first)["display_name"], strict=True))
    assert names[made["erin"]] is not None and names[ids["ada"]] == "Ada while paged"
    second, manifest = collect(config, graph_emulator)
    assert kind(manifest)["kind"] == "delta"
    (cloud,) = [s for s in manifest["sources"] if s["kind"] == "cloud"]
    assert cloud["notes"][-1].endswith(
        "2 created, changed or restored, 1 soft-deleted, 0 deleted for good"
    )
    assert_frame_equal(cloud_users(second), full_enumeration(graph_emulator, tmp_path / "full"))


def test_delta_runs_after_scripted_changes_equal_a_full_enumeration(
    graph_emulator: GraphEmulator, tmp_path: Path
) -> None:
    tenant = graph_emulator.tenant
    users = tenant.users
    ids = {u["userPrincipalName"].split("@")[0]: u["id"] for u in users.live()}
    (dave,) = users.deleted  # soft-deleted, holding an anchor
    config = write_config(tmp_path / "audit", graph_emulator)
    first, manifest = collect(config, graph_emulator)
    assert kind(manifest)["kind"] == "full"

    # round 1: creates, updates (one to null), a soft delete, a restore, a purge of a live user
    erin = users.create(user("erin@contoso.example", synced=True))["id"]
    frank = users.create(user("frank@contoso.example"))["id"]
    users.update(ids["ada"], displayName="Ada Lovelace", mail=None)
    users.update(ids["carol"], proxyAddresses=["SMTP:carol@contoso.example"])
    users.soft_delete(ids["carol"])
    users.restore(dave)
    users.soft_delete(ids["bob"])
    users.purge(ids["bob"])
    second, manifest = collect(config, graph_emulator)
    assert kind(manifest) == {
        "kind": "delta",
        "reason": f"changes since run {first.name}",
        "base_run": first.name,
    }
    assert_frame_equal(cloud_users(second), full_enumeration(graph_emulator, tmp_path / "full-1"))
    (cloud,) = [s for s in manifest["sources"] if s["kind"] == "cloud"]
    assert cloud["rows"] == 4  # ada, erin, frank, dave
    assert cloud["notes"][-1] == (
        f"changes since run {first.name} applied to its 4 users: 4 created, changed or "
        "restored, 1 soft-deleted, 1 deleted for good"
    )
    assert manifest["counts"]["cloud_users"] == 5  # and carol, soft-deleted

    # round 2: a soft-deleted user purged, another restored, a new user soft-deleted at once
    users.purge(ids["carol"])
    users.update(erin, onPremisesImmutableId="bmV3YW5jaG9y")
    users.soft_delete(frank)
    users.restore(frank)
    users.update(frank, displayName="Frank again")
    users.soft_delete(dave)
    third, manifest = collect(config, graph_emulator)
    assert kind(manifest) == {
        "kind": "delta",
        "reason": f"changes since run {second.name}",
        "base_run": second.name,
    }
    expected = full_enumeration(graph_emulator, tmp_path / "full-2")
    assert_frame_equal(cloud_users(third), expected)
    assert sorted(expected.filter(pl.col("deleted_at").is_not_null())["id"]) == [dave]
    roles = dict(zip(expected["id"], expected["admin_roles"].to_list(), strict=True))
    assert roles[ids["ada"]] == ["Global Administrator"]  # role columns kept through deltas
    # the round's pages are kept in the run, as a full run's are
    assert (third / "raw" / "graph" / "users-1.json").is_file()


@pytest.mark.parametrize("code", ["syncStateNotFound", "resyncRequired"])
def test_an_expired_delta_link_falls_back_to_a_full_run(
    graph_emulator: GraphEmulator, tmp_path: Path, code: str
) -> None:
    config = write_config(tmp_path / "audit", graph_emulator)
    first, _ = collect(config, graph_emulator)
    graph_emulator.tenant.users.create(user("gina@contoso.example"))
    graph_emulator.expire_delta_links(code=code)
    second, manifest = collect(config, graph_emulator)
    assert kind(manifest) == {
        "kind": "full",
        "reason": f"the deltaLink of run {first.name} was refused (410 {code})",
        "base_run": None,
    }
    assert_frame_equal(cloud_users(second), full_enumeration(graph_emulator, tmp_path / "full"))
    # the refused round left nothing behind: the run holds the full round's pages only
    pages = sorted((second / "raw" / "graph").glob("users-*.json"))
    assert len(pages) == 1 and b"@removed" not in pages[0].read_bytes()


def test_full_every_forces_a_full_run(graph_emulator: GraphEmulator, tmp_path: Path) -> None:
    config = write_config(tmp_path, graph_emulator, full_every=3)
    kinds = []
    for n in range(5):
        graph_emulator.tenant.users.create(user(f"user{n}@contoso.example"))
        _, manifest = collect(config, graph_emulator)
        kinds.append((kind(manifest)["kind"], kind(manifest)["reason"].split(":")[0]))
    assert kinds == [
        ("full", "no previous complete run"),
        ("delta", kinds[1][1]),
        ("delta", kinds[2][1]),
        ("full", "full_every = 3"),
        ("delta", kinds[4][1]),
    ]
    assert kinds[1][1].startswith("changes since run ")


def test_a_previous_snapshot_that_does_not_match_its_manifest_makes_a_full_run(
    graph_emulator: GraphEmulator, tmp_path: Path
) -> None:
    config = write_config(tmp_path, graph_emulator)
    first, _ = collect(config, graph_emulator)
    snapshot = first / "snapshot" / "cloud_users.parquet"
    pl.read_parquet(snapshot).head(3).write_parquet(snapshot)  # the active ones: stored first
    _, manifest = collect(config, graph_emulator)
    assert kind(manifest) == {
        "kind": "full",
        "reason": f"previous run {first.name}: its snapshot (3 cloud users, 0 deleted) does "
        "not match its manifest (4, 1)",
        "base_run": None,
    }


def test_a_change_the_previous_snapshot_cannot_take_makes_a_full_run(
    graph_emulator: GraphEmulator, tmp_path: Path
) -> None:
    """The previous snapshot says the soft-deleted user is active (counts kept consistent): the
    round names no change for it, yet deletedItems holds it, so the delta cannot be right."""
    config = write_config(tmp_path, graph_emulator)
    first, _ = collect(config, graph_emulator)
    path = first / "snapshot" / "cloud_users.parquet"
    frame = pl.read_parquet(path).with_columns(deleted_at=None)
    frame.write_parquet(path)
    manifest_path = first / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["counts"]["cloud_users_deleted"] = 0
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    second, manifest = collect(config, graph_emulator)
    assert kind(manifest) == {
        "kind": "full",
        "reason": f"the changes since run {first.name} do not apply: 1 users soft-deleted "
        "without a change in the round",
        "base_run": None,
    }
    assert_frame_equal(cloud_users(second), full_enumeration(graph_emulator, tmp_path / "full"))
