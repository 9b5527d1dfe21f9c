"""remediation.ps1: which call each finding gets, the exact cmdlet sequence of every action, and
the injection proof (every directory value inside a verbatim literal or a comment, checked on the
tree-sitter AST and with PowerShell's own quote rule), including hostile values from hypothesis."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import jinja2
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.classify import classify
from audit.config import RemediationSettings, Settings
from audit.demo import write_demo_inputs
from audit.model import FINDINGS_SCHEMA, conform
from audit.powershell import UnsafeValue
from audit.remediate import (
    ACTIONS,
    Call,
    ManualStep,
    PlanOptions,
    ScriptHeader,
    plan_finding,
    plan_findings,
    ps_environment,
    remediation_script,
    render_plan,
    write_remediation,
)
from audit.sources.files import import_files
from tests.psast import assert_values_confined as confined
from tests.psast import calls, flattened_commands, functions, parse, walk

REPO = Path(__file__).resolve().parent.parent
GUID_A = "9c26d141-29dc-414b-bf2b-e245e9b67427"
GUID_B = "a80517d2-e517-424e-b041-286b54a6ba58"
GUID_C = "0938370f-abf6-4a4f-8905-ae516133867f"
ANCHOR = "8urlZo2x8ECH9y6b0x+Lbw=="


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    inputs = write_demo_inputs(tmp_path_factory.mktemp("remediation-demo"))
    snapshot = import_files(**inputs.import_arguments())
    return inputs.settings, snapshot, classify(snapshot, inputs.settings)


def _script(findings: pl.DataFrame, settings: Settings, snapshot: Any) -> str:
    return remediation_script(
        findings,
        settings,
        tenant=snapshot.tenant,
        run_id="demo",
        taken_at=snapshot.taken_at,
        generated="2026-11-23T06:05:00+00:00",
    )


def _with_roles(settings: Settings) -> Settings:
    return replace(settings, remediation=RemediationSettings(allow_role_changes=True))


def _by_code(items: list[Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items:
        kind = item.function if isinstance(item, Call) else f"MANUAL:{item.intended}"
        out.setdefault(item.code, []).append(kind)
    return {code: sorted(kinds) for code, kinds in out.items()}


# --- which finding gets which call ----------------------------------------------------------------


def test_demo_calls_per_remediable_code(demo):
    _settings, _snapshot, findings = demo
    plan = plan_findings(findings, PlanOptions())
    got = _by_code([*plan.calls, *plan.manual])
    assert got["anchor-held-by-deleted"] == [
        "Invoke-SaPurgeDeletedHolder",  # Megan Bowen: a cloud-only account waits
        "Invoke-SaRestoreDeletedHolder",  # Alex Wilber, Diego Siciliani: nobody waits
        "Invoke-SaRestoreDeletedHolder",
    ]
    assert got["anchor-format-invalid"] == [
        "Invoke-SaFixAnchorEncoding",  # guid-text, big-endian, guid-text-base64, url-safe
        "Invoke-SaFixAnchorEncoding",
        "Invoke-SaFixAnchorEncoding",
        "Invoke-SaFixAnchorEncoding",
        "MANUAL:manual",  # 'System.Byte[]' decodes to no AD user
    ]
    assert got["cloud-orphan"] == [
        "Invoke-SaClearAnchor",  # cloud-only Omar Haddad with a fabrikam.local anchor
        "MANUAL:manual",  # synced orphans: fix on-premises
        "MANUAL:manual",
        "MANUAL:manual",
    ]
    assert got["soft-match-blocked"] == [
        "Invoke-SaSetAnchor",  # candidate holds a stale immutableId
        "Invoke-SaSetAnchor",
        "MANUAL:manual",  # the address belongs to a group
        "MANUAL:roles-detour",  # directory roles (Exchange admin, a custom role), changes off
        "MANUAL:roles-detour",
    ]
    assert got["hard-match-blocked"] == [
        "Invoke-SaClearOnPremObjectId",
        "MANUAL:roles-detour",  # privileged: assigned, eligible, through a group
        "MANUAL:roles-detour",
        "MANUAL:roles-detour",
    ]
    assert got["duplicate-cloud-account"] == [
        "Invoke-SaMergeDuplicateCloud",  # John Smith: the matched twin is quarantined
        "MANUAL:merge-duplicate-cloud",  # Sara Davis: which account to keep is a decision
    ]
    # proposals for the character, length and blank cases; the .local/.lab suffixes need a human
    assert got["invalid-attribute"] == ["Invoke-SaAdSetAttribute"] * 9 + ["MANUAL:manual"] * 3
    for code in ("anchor-held-by-other", "anchor-duplicate-ad", "provisioning-error"):
        assert set(got[code]) == {"MANUAL:manual"}
    # Informational findings need nothing and are only counted in the header.
    assert set(plan.no_action) == {
        "consistency-guid-differs",
        "soft-match-pending",
        "tenant-matching-settings",
        "unmatched-ad",
    }


def test_role_detour_only_when_enabled(demo):
    settings, snapshot, findings = demo
    off = plan_findings(findings, PlanOptions(allow_role_changes=False))
    on = plan_findings(findings, PlanOptions(allow_role_changes=True))
    assert not off.uses_roles and "RoleManagement.ReadWrite.Directory" not in off.scopes
    detours = [c for c in on.calls if c.action == "roles-detour"]
    assert sorted((c.code, c.arg("Mode")) for c in detours) == [
        ("hard-match-blocked", "hard"),
        ("hard-match-blocked", "hard"),
        ("hard-match-blocked", "hard"),
        ("soft-match-blocked", "soft"),
        ("soft-match-blocked", "soft"),
    ]
    assert "RoleManagement.ReadWrite.Directory" in on.scopes
    assert "Microsoft.Graph.Identity.Governance" in on.modules
    off_script = _script(findings, settings, snapshot)
    on_script = _script(findings, _with_roles(settings), snapshot)
    assert "function Invoke-SaRolesDetour" not in off_script
    assert "function Invoke-SaRolesDetour" in on_script
    assert "allow_role_changes = false" in off_script  # the manual step says how to enable


def test_exact_call_for_a_purge(demo):
    settings, snapshot, findings = demo
    parsed = parse(_script(findings, settings, snapshot))
    purge = [args for name, args in calls(parsed) if name == "Invoke-SaPurgeDeletedHolder"]
    assert purge == [
        {
            "Fingerprint": purge[0]["Fingerprint"],
            "Code": "anchor-held-by-deleted",
            "DeletedId": "9c26d141-29dc-414b-bf2b-e245e9b67427",
            "DeletedUpn": "megan.bowen@contoso.com",
            "Anchor": "8urlZo2x8ECH9y6b0x+Lbw==",
            "AdUser": "CN=Megan Bowen,OU=Sales,OU=Users,DC=corp,DC=contoso,DC=com",
            "WaitingId": "a80517d2-e517-424e-b041-286b54a6ba58",
        }
    ]


def test_script_calls_are_exactly_the_plan(demo):
    """Parsing the script back gives the plan's calls, argument for argument, in phase order."""
    settings, snapshot, findings = demo
    settings = _with_roles(settings)
    plan = plan_findings(findings, PlanOptions(allow_role_changes=True))
    parsed = parse(_script(findings, settings, snapshot))
    expected = [
        (c.function, {k: v for k, v in c.args if v is not None})
        for c in plan.ordered_calls("cloud") + plan.ordered_calls("on-premises")
    ]
    got = [(name, {k: v for k, v in args.items() if v != "$null"}) for name, args in calls(parsed)]
    assert got == expected
    phases = [ACTIONS[c.action].phase for c in plan.ordered_calls("cloud")]
    assert phases == sorted(phases)


# --- the action functions: exact cmdlet sequences -------------------------------------------------


def _graph_or_ad(cmdlet: str) -> bool:
    return cmdlet.partition("-")[2].startswith(("Mg", "AD"))


_DETOUR_AND_WRITE = [
    # Get-SaDetourUpn: the user's domain, the initial domain, is the temporary UPN free?
    "Get-MgDomain",
    "Get-MgDomain",
    "Get-MgUser",
    "Update-MgUser",  # UPN -> temporary (federated only)
    "Update-MgUser",  # UPN back (finally block; text order)
    "Invoke-MgGraphRequest",  # Set-SaImmutableId: PATCH null to clear...
    "Update-MgUser",  # ...or Update-MgUser -OnPremisesImmutableId to set
    "Get-MgUser",  # read-back
]
_SET_ANCHOR_CHECKED = [
    "Get-MgUser",  # the user: exists, cloud-only, immutableId as expected
    "Get-MgUser",  # no other active holder of the anchor
    "Get-MgDirectoryDeletedItemAsUser",  # no soft-deleted holder
    *_DETOUR_AND_WRITE,
]
EXPECTED_SEQUENCES = {
    "Invoke-SaRestoreDeletedHolder": [
        "Get-MgDirectoryDeletedItemAsUser",  # the deleted holder still holds the anchor
        "Get-MgUser",  # no active user took the anchor
        "Restore-MgDirectoryDeletedItem",
    ],
    "Invoke-SaPurgeDeletedHolder": [
        "Get-MgDirectoryDeletedItemAsUser",
        "Get-MgUser",  # no active holder
        "Get-MgUser",  # the waiting account is still there and cloud-only
        "Remove-MgDirectoryDeletedItem",
    ],
    "Invoke-SaClearOnPremObjectId": [
        "Invoke-MgGraphRequest",  # GET beta: the identifier is still the audited one
        "Invoke-MgGraphRequest",  # PATCH beta {"onPremisesObjectIdentifier":null}
        "Invoke-MgGraphRequest",  # read-back
    ],
    "Invoke-SaClearAnchor": ["Get-MgUser", *_DETOUR_AND_WRITE],
    "Invoke-SaFixAnchorEncoding": _SET_ANCHOR_CHECKED,
    "Invoke-SaSetAnchor": _SET_ANCHOR_CHECKED,
    "Invoke-SaMergeDuplicateCloud": [
        "Get-MgUser",  # the twin still holds the anchor
        "Get-MgUser",  # the original is still cloud-only
        "Get-MgDirectoryDeletedItemAsUser",  # no deleted holder
        "Remove-MgUser",  # delete the twin
        "Get-MgDirectoryDeletedItemAsUser",  # wait for it in deleted items
        "Remove-MgDirectoryDeletedItem",  # purge it
        *_SET_ANCHOR_CHECKED,  # anchor the original
    ],
    "Invoke-SaRolesDetour": [
        "Get-MgUser",
        "Get-MgRoleManagementDirectoryRoleAssignment",
        "Get-MgRoleManagementDirectoryRoleEligibilityScheduleInstance",
        "Remove-MgRoleManagementDirectoryRoleAssignment",
        "New-MgRoleManagementDirectoryRoleEligibilityScheduleRequest",  # adminRemove
        "Start-ADSyncSyncCycle",  # Wait-SaMatch: when this is the Entra Connect server...
        "Get-MgUser",  # ...then polls until the user shows as synced
        "New-MgRoleManagementDirectoryRoleAssignment",  # finally: put back
        "New-MgRoleManagementDirectoryRoleEligibilityScheduleRequest",  # adminAssign
    ],
    "Invoke-SaAdSetAttribute": [
        "Get-ADUser",  # the value is still the audited one
        "Get-ADObject",  # the proposed value is not taken
        "Set-ADUser",  # proxyAddresses: -Remove old -Add new
        "Set-ADUser",  # others: -Replace
    ],
}


def test_exact_cmdlet_sequence_of_every_action(demo):
    settings, snapshot, findings = demo
    parsed = parse(_script(findings, _with_roles(settings), snapshot))
    defined = functions(parsed)
    for spec in ACTIONS.values():
        assert spec.function in defined, spec.function
        sequence = [c for c in flattened_commands(parsed, spec.function) if _graph_or_ad(c)]
        assert sequence == EXPECTED_SEQUENCES[spec.function], spec.function
        # The catalogue's change cmdlets occur in that order, after a live check.
        position = 0
        for cmdlet in spec.changes:
            position = sequence.index(cmdlet, position)
        assert sequence[0].startswith(("Get-", "Invoke-MgGraphRequest"))


def test_every_change_honours_should_process(demo):
    settings, snapshot, findings = demo
    script = _script(findings, _with_roles(settings), snapshot)
    parsed = parse(script)
    for spec in ACTIONS.values():
        body = parsed.text(functions(parsed)[spec.function])
        assert "if (-not $script:Apply) { Write-SaPlan" in body, spec.function
        assert "Confirm-SaChange" in body or "Set-SaAnchorChecked" in body, spec.function
    # Every changing cmdlet runs after our own ShouldProcess, so it must not prompt a second time.
    for node in walk(parsed.tree.root_node):
        if node.type == "command":
            name = parsed.text(node.children[0])
            if name.startswith(("Update-Mg", "Remove-Mg", "Restore-Mg", "New-Mg", "Set-AD")):
                assert "-Confirm:$false" in parsed.text(node), parsed.text(node)
    assert "[CmdletBinding(SupportsShouldProcess, ConfirmImpact = 'High')]" in script
    assert "return $script:Cmdlet.ShouldProcess($Target, $Operation)" in script


def test_header_names_run_tenant_modules_and_scopes(demo):
    settings, snapshot, findings = demo
    script = _script(findings, settings, snapshot)
    head = script[: script.index("$ErrorActionPreference")]
    assert "# Run:        demo" in head
    assert "contoso.onmicrosoft.com / 6f1c3a52-8d4e-4b7a-9c21-5e0f7d3b9a10" in head
    assert "Microsoft.Graph.Users, Microsoft.Graph.Identity.DirectoryManagement" in head
    assert (
        "User.ReadWrite.All, Directory.ReadWrite.All, User.DeleteRestore.All, "
        "User.OnPremisesSync.ReadWrite.All" in head
    )
    assert "RoleManagement" not in head
    assert "1 x purge-deleted-holder" in head and "9 x ad-set-attribute" in head
    assert "param(\n    [switch]$Apply," in script
    assert "Start-ADSyncSyncCycle -PolicyType Delta | Out-Null" in script
    assert "'{\"onPremisesImmutableId\":null}'" in script
    assert "Set-MsolUser" not in script and "AzureAD" not in script


def test_manual_steps_are_comments_only(demo):
    settings, snapshot, findings = demo
    plan = plan_findings(findings, PlanOptions())
    script = _script(findings, settings, snapshot)
    parsed = parse(script)
    tail = script[script.index("# Manual steps:") :]
    assert all(line.startswith("#") or not line.strip() for line in tail.splitlines())
    for step in plan.manual:
        assert f"# MANUAL STEP [{step.fingerprint}] {step.code}:" in tail
        offset = parsed.source.index(f"# MANUAL STEP [{step.fingerprint}]".encode())
        assert any(a <= offset < b for a, b in parsed.comments)
    assert "#   Why manual: no safe automatic fix" in tail
    assert "#   How to fix:" in tail


def test_write_remediation_is_atomic_bom_crlf_and_parses(demo, tmp_path):
    settings, snapshot, findings = demo
    path = write_remediation(
        tmp_path,
        findings,
        settings,
        tenant=snapshot.tenant,
        run_id="run-1",
        taken_at=snapshot.taken_at,
        generated="now",
    )
    raw = path.read_bytes()
    assert (
        raw.startswith(b"\xef\xbb\xbf")
        and b"\r\n" in raw
        and b"\n" not in raw.replace(b"\r\n", b"")
    )
    parse(raw.decode("utf-8"))
    assert [p.name for p in tmp_path.iterdir()] == ["remediation.ps1"]


def test_sample_report_script_parses():
    sample = REPO / "sample_reports" / "remediation.ps1"
    if not sample.exists():
        pytest.skip("sample_reports/remediation.ps1 not generated yet")
    parsed = parse(sample.read_text(encoding="utf-8-sig"))
    assert calls(parsed)


# --- crafted findings -----------------------------------------------------------------------------


def finding(**values: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(FINDINGS_SCHEMA)
    row.update(fingerprint="f" * 20, code="soft-match-blocked", waived=False, status="new")
    evidence = values.pop("evidence", None)
    row.update(values)
    row["evidence"] = json.dumps(evidence or {})
    return row


def _set_anchor_row(**values: Any) -> dict[str, Any]:
    base = dict(
        code="soft-match-blocked",
        remediation="set-anchor",
        cloud_id=GUID_A,
        cloud_upn="o'brien@contoso.com",
        anchor=ANCHOR,
        ad_dn="CN=O'Brien\\, Pat,OU=Staff,DC=corp,DC=contoso,DC=com",
        detail="AD user ... cannot be matched",
        evidence={"candidate_immutable_id": "System.Byte[]"},
    )
    base.update(values)
    return finding(**base)


def test_quotes_in_values_are_doubled_and_read_back_exactly():
    call = plan_finding(_set_anchor_row(), PlanOptions())
    assert isinstance(call, Call)
    script = render_plan(
        plan_findings(conform(pl.DataFrame([_set_anchor_row()]), FINDINGS_SCHEMA)),
        ScriptHeader("r", "t", "x", "y"),
    )
    assert "Upn = 'o''brien@contoso.com'" in script
    assert "AdUser = 'CN=O''Brien\\, Pat,OU=Staff,DC=corp,DC=contoso,DC=com'" in script
    (_name, args), *_ = calls(parse(script))
    assert args["Upn"] == "o'brien@contoso.com"
    assert args["ExpectedImmutableId"] == "System.Byte[]"


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"anchor": "abc'; Remove-Item C:\\ -Recurse; '"}, "anchor"),
        ({"anchor": "AAAAAAAAAAAAAAAAAAAAAA=="[:-2] + "A="}, "anchor"),
        ({"anchor": "kwQ1jwjx-ke9wQI2lhE61A=="}, "anchor"),  # url-safe is never written
        ({"cloud_id": "not-a-guid$(calc)"}, "cloud user id"),
        ({"ad_dn": "CN=x\nRemove-Item C:\\"}, "line break"),
        ({"cloud_upn": "a\u2028b@contoso.com"}, "line break"),
        ({"ad_dn": "CN=\u202eevil"}, "bidirectional"),
        ({"ad_dn": "CN=nul\x00"}, "control character"),
    ],
)
def test_values_failing_validation_become_manual_steps(values, reason):
    item = plan_finding(_set_anchor_row(**values), PlanOptions())
    assert isinstance(item, ManualStep)
    assert item.intended == "set-anchor"
    assert "failed validation" in item.reason and reason in item.reason


def test_text_anchor_only_with_a_text_anchor_attribute():
    row = _set_anchor_row(anchor="E12345")
    assert isinstance(plan_finding(row, PlanOptions()), ManualStep)
    assert isinstance(plan_finding(row, PlanOptions(text_anchors=True)), Call)
    row = _set_anchor_row(anchor="E_12345")  # Graph refuses `_` and `$` in a sourceAnchor
    assert isinstance(plan_finding(row, PlanOptions(text_anchors=True)), ManualStep)


@pytest.mark.parametrize(
    ("row", "why"),
    [
        (
            finding(
                code="duplicate-cloud-account",
                remediation="merge-duplicate-cloud",
                cloud_id=GUID_A,
                anchor=ANCHOR,
                evidence={"matched_cloud_id": GUID_B, "matched_looks_quarantined": False},
            ),
            "does not look like a quarantined",
        ),
        (
            finding(
                code="anchor-format-invalid",
                remediation="fix-anchor-encoding",
                cloud_id=GUID_A,
                cloud_state="deleted",
                value="x",
                proposed_value=ANCHOR,
            ),
            "soft-deleted",
        ),
        (
            finding(code="anchor-held-by-deleted", remediation="purge-deleted-holder"),
            "no cloud-only account waits",
        ),
        (
            finding(code="invalid-attribute", remediation="ad-set-attribute", attribute="mail"),
            "no proposed value",
        ),
        (
            finding(
                code="invalid-attribute",
                remediation="ad-set-attribute",
                attribute="memberOf",
                ad_object_guid=GUID_C,
                proposed_value="x",
            ),
            "not one the script may write",
        ),
        (finding(code="x", remediation="reboot-the-tenant"), "no automatic action"),
        (finding(code="upn-drift", remediation="manual"), "no safe automatic fix"),
    ],
)
def test_findings_without_a_safe_fix_are_documented_manual_steps(row, why):
    item = plan_finding(row, PlanOptions(allow_role_changes=True))
    assert isinstance(item, ManualStep) and why in item.reason


def test_waived_and_informational_findings_are_not_called():
    frame = conform(
        pl.DataFrame(
            [
                _set_anchor_row(waived=True, fingerprint="w" * 20),
                finding(code="unmatched-ad", remediation=None, fingerprint="i" * 20),
            ]
        ),
        FINDINGS_SCHEMA,
    )
    plan = plan_findings(frame)
    assert not plan.calls and not plan.manual
    assert plan.waived == [("w" * 20, "soft-match-blocked")]
    script = render_plan(plan, ScriptHeader("r", "t", "x", "y"))
    assert "waived: 1 finding(s)" in script and "unmatched-ad x1" in script
    parse(script)


def test_a_raw_value_in_the_template_is_refused():
    env = ps_environment()
    with pytest.raises(TypeError, match="without ps_literal"):
        env.from_string("Write-Host {{ value }}").render(value="'; evil")
    with pytest.raises(UnsafeValue):  # an undefined name is not text either
        env.from_string("{{ missing | ps_literal }}").render()
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{% for x in missing %}{% endfor %}").render()
    assert env.from_string("{{ v | ps_literal }}").render(v="a'b") == "'a''b'"


# --- the injection proof under hostile input ------------------------------------------------------

_HOSTILE_PIECES = [
    "'",
    "\u2018",
    "\u2019",
    "\u201a",
    "\u201b",
    "''",
    '"',
    "`",
    "$",
    "$(Remove-Item C:\\ -Recurse)",
    "${env:PATH}",
    "@(1)",
    ";",
    "&",
    "|",
    "#",
    "<#",
    "#>",
    "\n",
    "\r\n",
    "\x00",
    "\u2028",
    "\u2029",
    "\u0085",
    "\x1b[31m",
    "\u202e",
    "\ufeff",
    " ",
    "\t",
    "Zoë",
    "用户",
    "😀",
    "{",
    "}",
    "-Apply",
    "'; Start-Process calc; '",
]
hostile_text = st.lists(
    st.one_of(st.sampled_from(_HOSTILE_PIECES), st.text(max_size=8)), max_size=12
).map("".join)
long_text = st.sampled_from(["x' " * 3400, "‘" * 10_000, "$(a)" * 2600])


def _maybe(valid: str) -> st.SearchStrategy[str]:
    return st.one_of(st.just(valid), hostile_text)


@st.composite
def hostile_findings(draw):
    """One finding per action, free-text fields hostile, validated fields valid or hostile;
    every value carries a unique sentinel so the proof can find it in the script."""
    counter = iter(range(10_000))
    values: list[tuple[str, str]] = []

    def tag(strategy: st.SearchStrategy[str], keep_valid: bool = False) -> str:
        text = draw(strategy)
        if keep_valid and draw(st.booleans()):
            return text
        sentinel = f"SNTL{next(counter):04d}Q"
        value = sentinel + text
        values.append((sentinel, value))
        return value

    def free() -> str:
        return tag(st.one_of(hostile_text, long_text))

    def checked(valid: str) -> str:
        return tag(_maybe(valid), keep_valid=True)

    rows = [
        finding(
            fingerprint=free(),
            code="anchor-held-by-deleted",
            remediation=draw(st.sampled_from(["purge-deleted-holder", "restore-deleted-holder"])),
            cloud_id=checked(GUID_A),
            cloud_upn=free(),
            anchor=free(),
            ad_dn=free(),
            detail=free(),
            evidence={"waiting_cloud_id": checked(GUID_B)},
        ),
        _set_anchor_row(
            fingerprint=free(),
            cloud_id=checked(GUID_A),
            cloud_upn=free(),
            anchor=checked(ANCHOR),
            ad_dn=free(),
            detail=free(),
            evidence={"candidate_immutable_id": free()},
        ),
        finding(
            fingerprint=free(),
            code="anchor-format-invalid",
            remediation="fix-anchor-encoding",
            cloud_id=checked(GUID_A),
            cloud_upn=free(),
            value=free(),
            proposed_value=checked(ANCHOR),
            ad_dn=free(),
            detail=free(),
        ),
        finding(
            fingerprint=free(),
            code="cloud-orphan",
            remediation="clear-anchor",
            cloud_id=checked(GUID_A),
            cloud_upn=free(),
            anchor=free(),
            detail=free(),
        ),
        finding(
            fingerprint=free(),
            code="duplicate-cloud-account",
            remediation="merge-duplicate-cloud",
            cloud_id=checked(GUID_A),
            cloud_upn=free(),
            anchor=checked(ANCHOR),
            ad_dn=free(),
            evidence={
                "matched_cloud_id": checked(GUID_B),
                "matched_cloud_upn": free(),
                "matched_looks_quarantined": True,
                "other_immutable_id": free(),
            },
        ),
        finding(
            fingerprint=free(),
            code=draw(st.sampled_from(["hard-match-blocked", "soft-match-blocked"])),
            remediation="roles-detour",
            cloud_id=checked(GUID_A),
            cloud_upn=free(),
            anchor=free(),
            ad_dn=free(),
        ),
        finding(
            fingerprint=free(),
            code="hard-match-blocked",
            remediation="clear-onprem-object-id",
            cloud_id=checked(GUID_A),
            cloud_upn=free(),
            ad_dn=free(),
            evidence={"on_prem_object_id": checked(GUID_C)},
        ),
        finding(
            fingerprint=free(),
            code="invalid-attribute",
            remediation="ad-set-attribute",
            ad_object_guid=checked(GUID_C),
            ad_dn=free(),
            attribute=draw(st.sampled_from(["displayName", "proxyAddresses", "givenName"])),
            value=free(),
            proposed_value=free(),
            detail=free(),
        ),
        finding(
            fingerprint=free(), code="anchor-held-by-other", remediation="manual", detail=free()
        ),
    ]
    return rows, values


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(hostile_findings(), hostile_text)
def test_hostile_values_stay_inside_literals_or_comments(case, run_id):
    rows, values = case
    frame = conform(pl.DataFrame(rows, schema=FINDINGS_SCHEMA, strict=False), FINDINGS_SCHEMA)
    plan = plan_findings(frame, PlanOptions(allow_role_changes=True))
    script = render_plan(plan, ScriptHeader(run_id, "tenant\n$(x)", "t", "g"))
    parsed = parse(script)  # no ERROR/MISSING, no expandable string, PowerShell-consistent
    confined(parsed, values)
    assert len(plan.calls) + len(plan.manual) == len(rows)
    # Whatever was generated as code kept its values exactly.
    got = calls(parsed)
    assert len(got) == len(plan.calls)


def test_hostile_but_printable_values_become_literals_not_manual_steps():
    """Quotes of every kind, $(...), backticks and ; are legal text: they stay in the call, as
    literals that PowerShell reads back exactly."""
    nasty = "SNTL9999Q'‘’‚‛\"$(Remove-Item C:\\ -Recurse)`;${x}@{a=1}#<#'; calc; '"
    dn = "SNTL9998QCN=Mc‘Kay\\, Ann $(whoami),OU=Staff,DC=corp"
    row = _set_anchor_row(ad_dn=dn, evidence={"candidate_immutable_id": nasty})
    frame = conform(pl.DataFrame([row], schema=FINDINGS_SCHEMA, strict=False), FINDINGS_SCHEMA)
    plan = plan_findings(frame)
    assert len(plan.calls) == 1
    parsed = parse(render_plan(plan, ScriptHeader("r", "t", "x", "y")))
    assert confined(parsed, [("SNTL9999Q", nasty), ("SNTL9998Q", dn)]) == 2
    ((_name, args),) = calls(parsed)
    assert args["ExpectedImmutableId"] == nasty and args["AdUser"] == dn
