"""Live Samba AD DCs for the tests marked `ad` (issue 12): one forest on 127.0.0.2, a second on
127.0.0.3 only when a test asks for two. Started once per session, stopped by PID at its end
whatever happened. They never skip: when Samba cannot be installed or started, or ldap3 is
missing, every `ad` test fails with one line saying why."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ad.client import LDAP3_MISSING, ldap3, ldaps
from tests.ad.samba_dc import (
    FOREST_ONE,
    FOREST_TWO,
    TEST_ADDRESSES,
    DcInfo,
    Forest,
    SambaError,
    running_dc,
)
from tests.ad.seed import FABRIKAM, Seeded, seed

# The Graph emulator, for collect's tests of AD and the tenant in one run
from tests.graph.conftest import graph_emulator, graph_emulator_for  # noqa: F401

ADDRESS_ONE, ADDRESS_TWO, _ = TEST_ADDRESSES


@pytest.fixture(scope="session", autouse=True)
def _needs_ldap3() -> None:
    """Session scope and autouse: checked before any DC is started, failing every test here."""
    if ldap3 is None:
        pytest.fail(LDAP3_MISSING, pytrace=False)


def _dc(base: Path, address: str, forest: Forest) -> Iterator[DcInfo]:
    failed = None
    try:
        with running_dc(base, address, forest) as info:
            yield info
    except SambaError as error:
        failed = f"Samba AD DC {forest.realm} on {address}: {error}"
    if failed is not None:  # outside the except: one line, no chained traceback
        pytest.fail(failed, pytrace=False)


@pytest.fixture(scope="session")
def ad_dc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DcInfo]:
    """The first forest, CORP.EXAMPLE.TEST on ADDRESS_ONE (127.0.0.2)."""
    yield from _dc(tmp_path_factory.mktemp("samba-dc1"), ADDRESS_ONE, FOREST_ONE)


@pytest.fixture(scope="session")
def ad_dc_two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DcInfo]:
    """A second forest, FABRIKAM.EXAMPLE.TEST on ADDRESS_TWO (127.0.0.3): started only if a
    test asks."""
    yield from _dc(tmp_path_factory.mktemp("samba-dc2"), ADDRESS_TWO, FOREST_TWO)


@pytest.fixture(scope="session")
def ad_forests(ad_dc: DcInfo, ad_dc_two: DcInfo) -> tuple[DcInfo, DcInfo]:
    return ad_dc, ad_dc_two


@pytest.fixture(scope="session")
def ad_seeded(ad_dc: DcInfo) -> list[Seeded]:
    """The first forest with tests/ad/seed.py's estate written into it (once per session)."""
    connection = ldaps(ad_dc)
    try:
        return seed(connection, ad_dc.base_dn)
    finally:
        connection.unbind()


@pytest.fixture(scope="session")
def ad_seeded_two(ad_dc_two: DcInfo) -> list[Seeded]:
    """The second forest with FABRIKAM's estate written into it (once per session)."""
    connection = ldaps(ad_dc_two)
    try:
        return seed(connection, ad_dc_two.base_dn, FABRIKAM)
    finally:
        connection.unbind()
