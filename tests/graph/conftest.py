"""The Graph emulator for the live Entra tests (issue 13): one per test, on its own port with
its own CA, stopped at the test's end whatever happened. A test that wants another tenant
builds it and calls `graph_emulator_for`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.graph.emulator import EmulatorError, GraphEmulator
from tests.graph.tenant import Tenant, user


def small_tenant() -> Tenant:
    """Three users (two synced, one cloud-only), one soft-deleted user holding an anchor, a
    role-assignable group holding a Global Administrator assignment, and an eligibility."""
    tenant = Tenant()
    ada = tenant.users.create(user("ada@contoso.example", synced=True, givenName="Ada"))
    bob = tenant.users.create(user("bob@contoso.example", synced=True))
    cloud = tenant.users.create(user("carol@contoso.example"))
    gone = tenant.users.create(user("dave@contoso.example", synced=True))
    tenant.users.soft_delete(gone["id"])
    admins = tenant.add_group("Tier0 admins", [bob["id"]])
    tenant.assign(ada["id"])
    tenant.assign(admins)
    tenant.make_eligible(cloud["id"])
    return tenant


@pytest.fixture
def graph_emulator_for(tmp_path: Path) -> Iterator[Callable[[Tenant], GraphEmulator]]:
    started: list[GraphEmulator] = []

    def start(tenant: Tenant) -> GraphEmulator:
        try:
            emulator = GraphEmulator(tenant, tmp_path / f"graph-{len(started)}")
        except EmulatorError as error:
            pytest.fail(f"Graph emulator: {error}", pytrace=False)
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.close()


@pytest.fixture
def graph_emulator(graph_emulator_for: Callable[[Tenant], GraphEmulator]) -> GraphEmulator:
    """The emulator over small_tenant()."""
    return graph_emulator_for(small_tenant())
