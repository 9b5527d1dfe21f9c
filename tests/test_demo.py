"""The built-in Contoso estate end to end: export files -> import_files -> classify must give
exactly the planted ground truth (audit.demo.expected_findings), every finding code of the
design's table must occur, and two runs must agree to the fingerprint."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.classify import classify
from audit.demo import (
    DEMO_TAKEN_AT,
    DemoInputs,
    expected_findings,
    finding_keys,
    write_demo_inputs,
)
from audit.rules import all_rules
from audit.sources.files import import_files

# The finding codes of DESIGN.md's table: the contract reports, waivers and trends key on.
DESIGN_CODES = frozenset(
    {
        "anchor-held-by-deleted",
        "anchor-held-by-other",
        "anchor-format-invalid",
        "anchor-duplicate-ad",
        "consistency-guid-invalid",
        "consistency-guid-differs",
        "cloud-orphan",
        "soft-match-pending",
        "soft-match-blocked",
        "unmatched-ad",
        "hard-match-blocked",
        "duplicate-cloud-account",
        "duplicate-ad-attribute",
        "attribute-conflict-cloud",
        "provisioning-error",
        "upn-suffix-unverified",
        "upn-drift",
        "enabled-drift",
        "stale-sync-object",
        "tenant-sync-stale",
        "tenant-matching-settings",
        "invalid-attribute",
    }
)


def _run(directory: Path) -> tuple[DemoInputs, object]:
    inputs = write_demo_inputs(directory)
    snapshot = import_files(**inputs.import_arguments())
    return inputs, classify(snapshot, inputs.settings)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("demo-a"))


@pytest.fixture(scope="module")
def findings(demo_run):
    return demo_run[1]


def _diff(expected: frozenset[tuple[str, str]], got: frozenset[tuple[str, str]]) -> str:
    lines = [f"missing ({len(expected - got)}):"]
    lines += [f"  - {code:28} {key}" for code, key in sorted(expected - got)]
    lines.append(f"unexpected ({len(got - expected)}):")
    lines += [f"  + {code:28} {key}" for code, key in sorted(got - expected)]
    return "\n".join(lines)


def test_demo_findings_equal_ground_truth_exactly(findings):
    """Every planted case is found under its code, and nothing that was not planted is found."""
    got = finding_keys(findings)
    assert got == expected_findings(), "\n" + _diff(expected_findings(), got)


def test_every_design_code_is_planted_and_found(findings):
    planted = {code for code, _ in expected_findings()}
    found = set(findings.get_column("code").to_list())
    assert planted == DESIGN_CODES, sorted(planted ^ DESIGN_CODES)
    assert found >= DESIGN_CODES, sorted(DESIGN_CODES - found)
    assert {r.meta.code for r in all_rules()} == DESIGN_CODES


def test_ground_truth_has_several_cases_per_code():
    per_code: dict[str, int] = {}
    for code, _ in expected_findings():
        per_code[code] = per_code.get(code, 0) + 1
    single = {c for c, n in per_code.items() if n < 2 and c != "tenant-sync-stale"}
    assert not single, f"codes planted only once: {sorted(single)}"


def test_snapshot_time_is_fixed(demo_run):
    inputs, findings = demo_run
    assert inputs.taken_at == DEMO_TAKEN_AT
    # no run history: first_seen and status are unknown, not the time of this run
    assert findings.get_column("first_seen").null_count() == findings.height
    assert findings.get_column("status").null_count() == findings.height


def test_demo_is_deterministic(tmp_path, demo_run):
    first_inputs, first = demo_run
    second_inputs, second = _run(tmp_path)
    first_files = sorted(p.name for p in first_inputs.config_path.parent.iterdir())
    second_files = sorted(p.name for p in second_inputs.config_path.parent.iterdir())
    assert first_files == second_files
    for name in first_files:
        if name.endswith(".toml"):  # names its own directory
            continue
        a = (first_inputs.config_path.parent / name).read_bytes()
        b = (second_inputs.config_path.parent / name).read_bytes()
        assert a == b, name
    assert first.get_column("fingerprint").to_list() == second.get_column("fingerprint").to_list()
    assert first.equals(second)
