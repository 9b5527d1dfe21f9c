"""The scale generator: schema-conformant frames, deterministic, and every planted problem is
found by classify exactly as often as planted (nothing else is found)."""

from __future__ import annotations

from collections import Counter

import polars as pl
import pytest

from audit.classify import classify
from audit.config import Settings
from audit.model import AD_USERS_SCHEMA, CLOUD_USERS_SCHEMA
from benchmarks.scale import CATEGORIES, expected_counts, generate_scale_estate

N_AD, N_CLOUD, RATE = 3000, 2600, 0.05


@pytest.fixture(scope="module")
def estate():
    return generate_scale_estate(N_AD, N_CLOUD, issue_rate=RATE, seed=3)


def test_frames_conform_to_the_schemas(estate):
    assert estate.ad_users.schema == pl.Schema(AD_USERS_SCHEMA)
    assert estate.cloud_users.schema == pl.Schema(CLOUD_USERS_SCHEMA)
    assert estate.ad_users.height == N_AD
    assert estate.cloud_users.height == N_CLOUD


def test_identifiers_are_unique_and_anchors_are_canonical(estate):
    ad, cloud = estate.ad_users, estate.cloud_users
    assert ad.get_column("object_guid").n_unique() == N_AD
    assert ad.get_column("anchor").n_unique() == N_AD
    assert ad.get_column("upn").n_unique() == N_AD
    assert cloud.get_column("id").n_unique() == N_CLOUD
    assert ad.get_column("anchor").str.contains(r"^[A-Za-z0-9+/]{22}==$").all()


def test_anchor_is_base64_of_the_guid_in_dotnet_byte_order(estate):
    import base64
    import uuid

    for guid, anchor in estate.ad_users.select("object_guid", "anchor").head(50).iter_rows():
        assert base64.b64encode(uuid.UUID(guid).bytes_le).decode() == anchor


def test_same_arguments_give_the_same_estate(estate):
    again = generate_scale_estate(N_AD, N_CLOUD, issue_rate=RATE, seed=3)
    assert again.ad_users.equals(estate.ad_users)
    assert again.cloud_users.equals(estate.cloud_users)
    other = generate_scale_estate(N_AD, N_CLOUD, issue_rate=RATE, seed=4)
    assert not other.ad_users.equals(estate.ad_users)


def test_every_category_is_planted_at_about_the_rate():
    counts = expected_counts(N_AD, N_CLOUD, issue_rate=RATE, seed=3)
    plants = sum(counts[c] // (2 if c == "duplicate-ad-attribute" else 1) for c in CATEGORIES)
    assert all(counts[c] > 0 for c in CATEGORIES)
    assert 0.5 * RATE * N_CLOUD < plants < 1.5 * RATE * N_CLOUD
    assert counts["unmatched-ad"] == N_AD - N_CLOUD


def test_classify_finds_exactly_what_was_planted(estate):
    findings = classify(estate, Settings())
    found = Counter(findings.get_column("code").to_list())
    expected = expected_counts(N_AD, N_CLOUD, issue_rate=RATE, seed=3)
    expected["tenant-matching-settings"] = found.get("tenant-matching-settings", 0)
    assert found["tenant-matching-settings"] >= 1  # informational, one row per switch
    assert dict(found) == {code: n for code, n in expected.items() if n}


def test_small_and_degenerate_sizes():
    empty = generate_scale_estate(0, 0)
    assert empty.ad_users.height == 0 and empty.cloud_users.height == 0
    only_cloud = generate_scale_estate(0, 5)
    assert only_cloud.cloud_users.get_column("immutable_id").null_count() == 5
    with pytest.raises(ValueError):
        generate_scale_estate(10, 10, issue_rate=0.9)
