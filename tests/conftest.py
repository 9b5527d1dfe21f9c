"""Every Graph user import a test makes runs both ways, exact and in bulk (entra_bulk), which
must give the same frames, reports and errors (tests/sources/bulk_equal.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sources.bulk_equal import both_ways


@pytest.fixture(autouse=True)
def _bulk_equals_exact(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr("audit.sources.files.read_cloud_files", both_ways)
    yield
