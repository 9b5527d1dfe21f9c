"""Both ways of reading Graph user files, compared: the exact path (json + one object at a time)
and entra_bulk (Polars). Installed for every test by tests/conftest.py (issue 11 item 8)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from polars.testing import assert_frame_equal

from audit.model import SourceReport
from audit.sources import files
from audit.sources.entra import CloudUsers, cloud_objects_frame, cloud_users_frame

READ_CLOUD_FILES = files.read_cloud_files
# how many calls the bulk path answered itself (it may fall back to the exact path)
USED: dict[str, int] = {"bulk": 0, "calls": 0}


def _run(
    bulk: bool, paths: Sequence[Path], users: CloudUsers, taken: datetime, deleted: bool
) -> list[SourceReport] | Exception:
    saved = files.BULK_GRAPH
    files.BULK_GRAPH = bulk
    try:
        return READ_CLOUD_FILES(paths, users, taken, deleted=deleted)
    except Exception as exc:  # compared below, then raised again
        return exc
    finally:
        files.BULK_GRAPH = saved


def both_ways(
    paths: Sequence[Path], users: CloudUsers, taken: datetime, *, deleted: bool
) -> list[SourceReport]:
    """read_cloud_files both ways on copies of `users`; they must agree on everything."""
    exact_users = copy.deepcopy(users)
    parts_before = len(users.parts)
    exact = _run(False, paths, exact_users, taken, deleted)
    bulk = _run(True, paths, users, taken, deleted)
    USED["calls"] += 1
    if len(users.parts) > parts_before and not isinstance(bulk, Exception):
        USED["bulk"] += 1
    if isinstance(exact, Exception) or isinstance(bulk, Exception):
        assert type(bulk) is type(exact) and str(bulk) == str(exact), (exact, bulk)
        assert isinstance(bulk, Exception)
        raise bulk
    assert bulk == exact
    assert_frame_equal(cloud_users_frame(users), cloud_users_frame(exact_users))
    assert_frame_equal(cloud_objects_frame(users), cloud_objects_frame(exact_users))
    assert copy.deepcopy(users).exact_where() == copy.deepcopy(exact_users).exact_where()
    return bulk
