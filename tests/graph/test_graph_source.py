"""The live Entra read (audit/sources/graph.py) against the Graph emulator over TLS, with the
real msgraph-sdk and azure-identity credentials: the snapshot is the emulator's truth, faults
do not change it, the raw pages re-import to the same frames, nothing reaches a foreign host,
and every failure is one line without the secret."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from audit.config import EntraSettings, Settings
from audit.errors import InputError
from audit.sources.files import CloudExports, CloudSide, read_cloud_side
from audit.sources.graph import GraphPolicy, read_entra
from audit.sources.snapshot import taken_at
from tests.graph.configs import SECRET_ENV, entra_values
from tests.graph.emulator import AUDIT_APP_ROLES, App, GraphEmulator
from tests.graph.tenant import GLOBAL_ADMINISTRATOR, Tenant, generated_tenant

FAST = GraphPolicy(budget=60, attempts=10, timeout=20, backoff=0.05, max_backoff=0.2)


def settings_for(emulator: GraphEmulator, app: App | None = None, **entra: Any) -> Settings:
    values = entra_values(emulator, app, **{"auth": "client_secret", **entra})
    return Settings(entra=EntraSettings(**values))


def environ_for(emulator: GraphEmulator, app: App | None = None) -> dict[str, str]:
    return {SECRET_ENV: emulator.client_config(app).client_secret or ""}


def read(
    emulator: GraphEmulator,
    raw: Path,
    *,
    app: App | None = None,
    environ: dict[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
    **entra: Any,
) -> CloudSide:
    return read_entra(
        settings_for(emulator, app, **entra),
        raw_dir=raw,
        environ=environ_for(emulator, app) if environ is None else environ,
        progress=progress,
        policy=FAST,
    )


def reimported(raw: Path, settings: Settings) -> CloudSide:
    """`syncaudit import` of the kept pages, with the flags each file goes to."""
    graph = raw / "graph"
    users = sorted(graph.glob("users-*.json"), key=lambda p: int(p.stem.split("-")[1]))
    exports = CloudExports(
        cloud=users,
        deleted=graph / "deleted.json",
        domains=graph / "domains.json",
        tenant=graph / "tenant.json",
        roles=[graph / f"role-{n}.json" for n in ("assignments", "eligibilities", "definitions")]
        + [graph / "role-groups.json"],
    )
    return read_cloud_side(exports, settings=settings, taken=taken_at(None))


def comparable(side: CloudSide) -> tuple[pl.DataFrame, pl.DataFrame, Any, list[Any]]:
    reports = [(r.name, r.kind, r.rows, r.complete, r.warnings) for r in side.reports]
    return side.users.sort("id"), side.objects.sort("id"), side.tenant, reports


def assert_same(a: CloudSide, b: CloudSide) -> None:
    left, right = comparable(a), comparable(b)
    assert_frame_equal(left[0], right[0])
    assert_frame_equal(left[1], right[1])
    assert left[2] == right[2]
    assert left[3] == right[3]


def truth(tenant: Tenant) -> dict[str, dict[str, Any]]:
    return {u["id"]: u for u in tenant.users.live()}


# --- the snapshot ------------------------------------------------------------------------------


def test_full_snapshot_is_the_emulators_truth(
    graph_emulator: GraphEmulator, tmp_path: Path
) -> None:
    tenant = graph_emulator.tenant
    side = read(graph_emulator, tmp_path)
    users = side.users
    live = truth(tenant)
    deleted = tenant.users.deleted
    assert set(users["id"]) == set(live) | set(deleted)
    rows = {row["id"]: row for row in users.iter_rows(named=True)}
    for user_id, obj in live.items():
        row = rows[user_id]
        assert row["upn"] == obj["userPrincipalName"]
        assert row["immutable_id"] == obj["onPremisesImmutableId"]
        assert row["sync_enabled"] == obj["onPremisesSyncEnabled"]
        assert row["proxy_addresses"] == obj["proxyAddresses"]
        assert row["deleted_at"] is None
        # beta-only: not asked of v1.0
        assert row["on_prem_object_id"] is None
    for user_id in deleted:
        assert rows[user_id]["deleted_at"] is not None
        assert rows[user_id]["immutable_id"] == deleted[user_id]["onPremisesImmutableId"]
    ada, bob, carol = (
        next(i for i, u in live.items() if u["userPrincipalName"].startswith(name))
        for name in ("ada", "bob", "carol")
    )
    assert rows[ada]["admin_roles"] == ["Global Administrator"]
    assert rows[bob]["admin_roles"] == ["Global Administrator"]  # through the group
    assert rows[carol]["eligible_roles"] == ["Global Administrator"]
    assert side.tenant.tenant_id == tenant.tenant_id
    assert side.tenant.initial_domain == "contoso.onmicrosoft.com"
    assert {d.name for d in side.tenant.domains} == {d["id"] for d in tenant.domains}
    assert side.tenant.dirsync_enabled is True
    # app-only: the switches stay unknown, and the tenant report says why
    features = side.tenant.features
    assert features.block_soft_match.value is None
    assert features.block_hard_match_takeover.value is None
    (tenant_report,) = [r for r in side.reports if r.kind == "tenant"]
    assert any("Authorization_RequestDenied" in w for w in tenant_report.warnings)
    assert all(r.complete for r in side.reports)
    assert_same(side, reimported(tmp_path, settings_for(graph_emulator)))
    # every Graph call was low priority and carried a token; v1.0 except the role definitions
    graph_calls = graph_emulator.requests("/v1.0") + graph_emulator.requests("/beta")
    assert graph_calls and all(
        r.throttle_priority == "low" and r.authorization for r in graph_calls
    )
    assert {r.path for r in graph_emulator.requests("/beta")} == {
        "/beta/roleManagement/directory/roleDefinitions"
    }
    # the deltaLink of "now" first ($deltatoken=latest: no users), then every user by 999
    latest, users_call = graph_emulator.requests("/v1.0/users")
    assert latest.path == "/v1.0/users/delta()" and latest.query["$deltatoken"] == ["latest"]
    assert "$top" not in latest.query  # delta takes none (delta-query-overview)
    assert users_call.path == "/v1.0/users" and users_call.query["$top"] == ["999"]
    for call in (latest, users_call):
        assert "onPremisesObjectIdentifier" not in call.query["$select"][0]


def test_a_delegated_token_reads_the_switches(
    graph_emulator: GraphEmulator, tmp_path: Path
) -> None:
    """With a token that may read onPremisesSynchronization, the switches come from Graph."""
    original = graph_emulator._authorize

    def delegated(headers: Any, permission: str) -> Any:
        token = original(headers, "users" if permission == "sync" else permission)
        return token

    graph_emulator._authorize = delegated  # type: ignore[method-assign]
    side = read(graph_emulator, tmp_path)
    features = side.tenant.features
    assert (features.block_soft_match.value, features.block_hard_match_takeover.value) == (
        False,
        True,
    )
    assert features.soft_match_on_upn.value is True


def test_many_pages_and_empty_pages(
    graph_emulator_for: Callable[[Tenant], GraphEmulator], tmp_path: Path
) -> None:
    tenant = generated_tenant(2500)
    emulator = graph_emulator_for(tenant)
    emulator.empty_pages = True
    side = read(emulator, tmp_path)
    assert side.users.height == 2500
    pages = sorted((tmp_path / "graph").glob("users-*.json"), key=lambda p: int(p.stem[6:]))
    sizes = [len(json.loads(page.read_bytes())["value"]) for page in pages]
    assert sizes == [999, 0, 999, 0, 502, 0, 0]  # an empty page after each; the last one empty
    assert_same(side, reimported(tmp_path, settings_for(emulator)))
    (report,) = [r for r in side.reports if r.kind == "cloud"]
    assert report.complete and report.rows == 2500


# --- faults ----------------------------------------------------------------------------------


def test_faults_give_the_identical_snapshot(
    graph_emulator_for: Callable[[Tenant], GraphEmulator], tmp_path: Path
) -> None:
    tenant = generated_tenant(20000)
    tenant.assign(tenant.users.generated.user_id(7))  # type: ignore[union-attr]
    clean = graph_emulator_for(tenant)
    expected = read(clean, tmp_path / "clean")
    faulty = graph_emulator_for(tenant)
    faulty.inject("/v1.0", "throttle", times=None, rate=0.10, retry_after=0)
    faulty.inject("/v1.0", "unavailable", times=None, rate=0.02, retry_after=0)
    faulty.inject("/v1.0/users", "reset", skip=1)
    faulty.inject("/v1.0/users", "truncate", skip=2)
    got = read(faulty, tmp_path / "faulty")
    assert_same(got, expected)
    faults = [r.fault for r in faulty.log if r.fault]
    assert {"reset", "truncate", "throttle"} <= set(faults)


def test_a_read_longer_than_its_token_renews_it(
    graph_emulator_for: Callable[[Tenant], GraphEmulator], tmp_path: Path
) -> None:
    # Tokens that live 2 s and pages that take 1 s: a token is asked for again whenever less
    # than five minutes are left (MSAL's rule, and HeldToken's), so no request reaches Graph
    # with an expired one and the read is the same as with hour-long tokens.
    tenant = generated_tenant(1000)
    expected = read(graph_emulator_for(tenant), tmp_path / "hour")
    emulator = graph_emulator_for(tenant)
    emulator.token_lifetime = 2
    emulator.inject("/v1.0/users", "slow", times=3, delay=1.0)
    got = read(emulator, tmp_path / "short")
    assert_same(got, expected)
    assert [r.path for r in emulator.log if r.status == 401] == []
    assert len(emulator.tokens) >= 3


def test_the_next_page_is_asked_for_once_its_link_has_arrived(
    graph_emulator_for: Callable[[Tenant], GraphEmulator], tmp_path: Path
) -> None:
    # Pages 2 to 4 send their envelope (nextLink included), then their users a second later:
    # each next page is asked for during that second, so each wait overlaps the next one's
    # (about 2 s more than the same read unstalled); one after another they would add 3 s.
    # Nothing is asked for twice.
    import time

    tenant = generated_tenant(4500)  # users by 999: 5 pages
    plain = graph_emulator_for(tenant)
    started = time.monotonic()
    expected = read(plain, tmp_path / "plain")
    unstalled = time.monotonic() - started
    emulator = graph_emulator_for(tenant)
    # skipped: the $deltatoken=latest call before the users, and their first page
    emulator.inject("/v1.0/users", "stall", times=3, skip=2, delay=1.0)
    started = time.monotonic()
    got = read(emulator, tmp_path / "stalled")
    assert time.monotonic() - started < unstalled + 2.5
    assert_same(got, expected)
    assert [(r.path, r.fault) for r in emulator.requests("/v1.0/users")] == [
        ("/v1.0/users/delta()", None),
        *[("/v1.0/users", fault) for fault in (None, "stall", "stall", "stall", None)],
    ]


def test_retry_after_is_honoured(graph_emulator: GraphEmulator, tmp_path: Path) -> None:
    import time

    graph_emulator.inject("/v1.0/users", "throttle", retry_after=1)
    started = time.monotonic()
    read(graph_emulator, tmp_path)
    assert time.monotonic() - started >= 1.0
    statuses = [r.status for r in graph_emulator.requests("/v1.0/users")]
    assert statuses == [429, 200, 200]  # /users/delta?$deltatoken=latest, again, then /users


def test_throttled_past_the_budget_fails_with_one_line(
    graph_emulator: GraphEmulator, tmp_path: Path
) -> None:
    # after the $deltatoken=latest call, every users page is throttled
    graph_emulator.inject("/v1.0/users", "throttle", times=None, skip=1, retry_after=120)
    with pytest.raises(InputError) as caught:
        read(graph_emulator, tmp_path)
    message = str(caught.value)
    assert message.startswith("GET /users page 1: 429 TooManyRequests: gave up")
    assert "\n" not in message


def test_a_foreign_next_link_is_refused_and_gets_no_token(
    graph_emulator_for: Callable[[Tenant], GraphEmulator], tmp_path: Path
) -> None:
    emulator = graph_emulator_for(generated_tenant(1500))
    emulator.foreign_next_link("/v1.0/users")
    with pytest.raises(InputError) as caught:
        read(emulator, tmp_path)
    message = str(caught.value)
    assert message.startswith(
        f"GET /users page 1: @odata.nextLink points at https://localhost:{emulator.foreign.port}"
    )
    assert "\n" not in message
    assert all(not r.authorization for r in emulator.foreign.log)
    assert emulator.foreign.log == []  # not even asked


def test_a_foreign_delta_link_is_refused(graph_emulator: GraphEmulator, tmp_path: Path) -> None:
    """The deltaLink a later run would send the token to is checked before the users are read."""
    graph_emulator.foreign_next_link("/v1.0/users/delta")
    with pytest.raises(InputError) as caught:
        read(graph_emulator, tmp_path)
    assert str(caught.value).startswith(
        "GET /users/delta?$deltatoken=latest page 1: @odata.deltaLink points at "
        f"https://localhost:{graph_emulator.foreign.port}"
    )
    assert graph_emulator.requests("/v1.0/users") == graph_emulator.requests("/v1.0/users/delta")
    assert graph_emulator.foreign.log == []


# --- auth and permissions --------------------------------------------------------------------


def test_a_wrong_secret_is_one_line_without_the_secret(
    graph_emulator: GraphEmulator, tmp_path: Path
) -> None:
    with pytest.raises(InputError) as caught:
        read(graph_emulator, tmp_path, environ={SECRET_ENV: "s3cret-VALUE-wrong"})
    message = str(caught.value)
    assert "AADSTS7000215" in message and f"client_secret_env {SECRET_ENV}" in message
    assert "s3cret-VALUE-wrong" not in message and "\n" not in message


def test_an_unknown_tenant_is_one_line(graph_emulator: GraphEmulator, tmp_path: Path) -> None:
    with pytest.raises(
        InputError, match=r"tenant fabrikam.example .*check \[entra\] tenant_id"
    ) as caught:
        read(graph_emulator, tmp_path, tenant_id="fabrikam.example")
    assert "\n" not in str(caught.value)


def test_a_wrong_authority_is_one_line(graph_emulator: GraphEmulator, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="authority_host") as caught:
        read(graph_emulator, tmp_path, authority_host="https://127.0.0.1:9")
    assert "\n" not in str(caught.value)


def test_a_missing_secret_variable_is_one_line(
    graph_emulator: GraphEmulator, tmp_path: Path
) -> None:
    with pytest.raises(InputError, match=f"{SECRET_ENV} is not set"):
        read(graph_emulator, tmp_path, environ={})


@pytest.mark.parametrize(
    ("missing", "call"),
    [
        ("User.Read.All", r"GET /users/delta\?\$deltatoken=latest page 1: "),
        ("Domain.Read.All", r"GET /domains page 1: "),
        ("Organization.Read.All", r"GET /organization page 1: "),
        # whichever of the three role calls is answered first
        (
            "RoleManagement.Read.Directory",
            r"GET (/beta)?/roleManagement/directory/role\w+ page 1: ",
        ),
        ("GroupMember.ReadBasic.All", r"GET /groups/[0-9a-f-]+/members page 1: "),
    ],
)
def test_a_missing_permission_names_it(
    graph_emulator: GraphEmulator, tmp_path: Path, missing: str, call: str
) -> None:
    app = graph_emulator.register_app(roles=AUDIT_APP_ROLES - {missing})
    with pytest.raises(InputError) as caught:
        read(graph_emulator, tmp_path, app=app)
    message = str(caught.value)
    assert re.match(call + "403 Authorization_RequestDenied", message)
    assert f"grant the app the application permission {missing}" in message
    assert "\n" not in message


def test_certificate_credential_reads_the_tenant(
    graph_emulator: GraphEmulator, tmp_path: Path
) -> None:
    app = graph_emulator.register_app(secret=False, certificate=True)
    config = graph_emulator.client_config(app)
    side = read(
        graph_emulator,
        tmp_path,
        app=app,
        environ={},
        auth="certificate",
        client_secret_env="",
        certificate_file=str(config.certificate_file),
    )
    assert side.users.height == len(truth(graph_emulator.tenant)) + 1


def test_role_groups_file_is_what_roles_import_takes(
    graph_emulator: GraphEmulator, tmp_path: Path
) -> None:
    read(graph_emulator, tmp_path)
    groups = json.loads((tmp_path / "graph" / "role-groups.json").read_text())
    (group,) = groups["value"]
    assert group["id"] in graph_emulator.tenant.groups
    members = {m["id"] for m in group["members"]}
    assert members == set(graph_emulator.tenant.groups[group["id"]]["members"])
    assert GLOBAL_ADMINISTRATOR in (tmp_path / "graph" / "role-definitions.json").read_text()
