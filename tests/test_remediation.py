"""remediation.ps1: which call each finding gets, the exact cmdlet sequence of every action, and
the injection proof (every directory value inside a verbatim literal or a comment, checked on the
tree-sitter AST and with PowerShell's own quote rule), including hostile values from hypothesis."""

from __future__ import annotations

import json
import re
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
from audit.model import FINDINGS_SCHEMA, Action, Tenant, conform
from audit.powershell import UnsafeValue
from audit.remediation.actions import (
    ACTIONS,
    Call,
    MissingValue,
    PlanOptions,
    least_scopes,
    markdown_tables,
)
from audit.remediation.permissions import PERMISSIONS
from audit.remediation.plan import ManualStep, options_from_settings, plan_finding, plan_findings
from audit.remediation.script import (
    ScriptHeader,
    ps_environment,
    remediation_script,
    render_plan,
    write_remediation,
)
from audit.sources.files import import_files
from tests.psast import assert_values_confined as confined
from tests.psast import calls, command_names, functions, parse, walk

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
    settings, snapshot, findings = demo
    plan = plan_findings(findings, options_from_settings(settings, snapshot.tenant))
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
        "Invoke-SaClearAnchor",  # cloud-only Ingrid Berg (managed contoso.com), stale anchor
        "MANUAL:clear-anchor",  # Omar Haddad: same, but fabrikam.com is federated
        "MANUAL:manual",  # synced orphans: fix on-premises
        "MANUAL:manual",
        "MANUAL:manual",
        # Rocio Delgado's prepared hard match, waiting for the Contractors OU: never cleared
        "MANUAL:manual",
    ]
    # a disabled leaver who can still sign in is blocked; the reverse needs a human
    assert got["enabled-drift"] == [
        "Invoke-SaBlockSignIn",  # Greg Winston, Leah Porter: disabled in AD
        "Invoke-SaBlockSignIn",
        "MANUAL:manual",  # Chris Green, Tara Singh: blocked in the cloud on purpose?
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
    # proposals for the character, length and blank cases; the .local/.lab UPN suffixes are
    # reported once, as upn-suffix-unverified (rules/overlaps.py)
    assert got["invalid-attribute"] == ["Invoke-SaAdSetAttribute"] * 9
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
    assert not off.uses_roles and "RoleAssignmentSchedule.ReadWrite.Directory" not in off.scopes
    detours = [c for c in on.calls if c.action == "roles-detour"]
    assert sorted((c.code, c.arg("Mode")) for c in detours) == [
        ("hard-match-blocked", "hard"),
        ("hard-match-blocked", "hard"),
        ("hard-match-blocked", "hard"),
        ("soft-match-blocked", "soft"),
        ("soft-match-blocked", "soft"),
    ]
    assert "RoleAssignmentSchedule.ReadWrite.Directory" in on.scopes
    assert "RoleEligibilitySchedule.ReadWrite.Directory" in on.scopes
    assert "Microsoft.Graph.Identity.Governance" in on.modules
    # a set-anchor onto a user whose roles a later detour takes off may go ahead
    detoured = {c.arg("UserId") for c in detours}
    for call in on.calls:
        if call.action in ("set-anchor", "fix-anchor-encoding"):
            assert call.arg("RolesDetourFollows") is (call.arg("UserId") in detoured)
    off_script = _script(findings, settings, snapshot)
    on_script = _script(findings, _with_roles(settings), snapshot)
    assert "function Invoke-SaRolesDetour" not in off_script
    assert "function Invoke-SaRolesDetour" in on_script
    assert "allow_role_changes = false" in off_script  # the manual step says how to enable


SCRIPT_PARAMETERS = {"$Apply", "$Section", "$Undo", "$LogPath", "$TenantId", "$SyncWaitMinutes"}


def test_each_action_function_is_written_from_its_declared_parameters(demo):
    """The param(...) list of every action function is its declaration, and the function's body
    uses exactly those parameters (besides the script's own): the template and the catalogue
    cannot drift apart."""
    settings, snapshot, findings = demo
    parsed = parse(_script(findings, _with_roles(settings), snapshot))
    for spec in ACTIONS.values():
        node = functions(parsed)[spec.function]
        declared = [p.name for p in spec.parameters]
        assert declared[:2] == ["Fingerprint", "Code"]
        param_block = next(n for n in walk(node) if n.type == "param_block")
        names = [
            parsed.text(n)
            for n in walk(param_block)
            if n.type == "variable" and parsed.text(n) not in ("$true", "$false", "$null")
        ]
        assert names == [f"${name}" for name in declared], spec.action
        used = {parsed.text(n) for n in walk(node) if n.type == "variable"}
        capitalised = {name for name in used if re.match(r"\$[A-Z]", name)} - SCRIPT_PARAMETERS
        assert capitalised == {f"${name}" for name in declared}, spec.action
        template = (REPO / "report_templates" / spec.template).read_text(encoding="ascii")
        assert template.count("param(") == 1 and "param({{ spec.ps_parameters }})" in template


def test_every_call_passes_exactly_the_declared_parameters_in_order(demo):
    *_, findings = demo
    plan = plan_findings(findings, PlanOptions(allow_role_changes=True))
    assert {c.action for c in plan.calls} == set(ACTIONS)
    for call in plan.calls:
        assert [name for name, _ in call.args] == [p.name for p in call.spec.parameters]


def test_a_call_takes_its_declared_parameters_and_checks_each():
    spec = ACTIONS[Action.clear_anchor]
    base = dict(fingerprint="f" * 20, code="cloud-orphan", title="t", options=PlanOptions())
    values = {"UserId": GUID_A.upper(), "Upn": "a@contoso.com", "ExpectedImmutableId": ANCHOR}
    call = spec.call(values=values, **base)
    assert call.arg("UserId") == GUID_A  # canonical GUID, as the check returns it
    with pytest.raises(TypeError, match="takes UserId, Upn, ExpectedImmutableId"):
        spec.call(values={**values, "AdUser": "CN=x"}, **base)
    with pytest.raises(TypeError):
        spec.call(values={"UserId": GUID_A}, **base)
    with pytest.raises(UnsafeValue, match="cloud user id"):
        spec.call(values={**values, "UserId": "not-a-guid"}, **base)
    with pytest.raises(MissingValue, match="the finding has no current immutableId"):
        spec.call(values={**values, "ExpectedImmutableId": None}, **base)
    detour = ACTIONS[Action.roles_detour]
    with pytest.raises(UnsafeValue, match="Mode is none of hard, soft"):
        detour.call(
            values={"UserId": GUID_A, "Upn": None, "Anchor": ANCHOR, "Mode": "x", "AdUser": None},
            **base,
        )


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
    plan = plan_findings(findings, options_from_settings(settings, snapshot.tenant))
    parsed = parse(_script(findings, settings, snapshot))
    shown = {True: "$true", False: "$false"}
    expected = [
        (
            c.function,
            {k: shown.get(v, v) if isinstance(v, bool) else v for k, v in c.args if v is not None},
        )
        for c in plan.ordered_calls("cloud") + plan.ordered_calls("on-premises")
    ]
    got = [(name, {k: v for k, v in args.items() if v != "$null"}) for name, args in calls(parsed)]
    assert got == expected
    phases = [ACTIONS[c.action].phase for c in plan.ordered_calls("cloud")]
    assert phases == sorted(phases)


# --- the action functions: exact cmdlet sequences -------------------------------------------------


# Helpers whose calls only report or log; the sequences below leave them out.
_REPORTING = {
    "Write-SaPlan", "Write-SaDone", "Skip-SaStep", "Write-SaFailure", "Write-Host",
    "Write-Warning", "Out-Null", "Where-Object", "ForEach-Object", "Select-Object",
    "Get-Command", "Start-Sleep", "ConvertTo-Json", "Get-Date",
}  # fmt: skip


def _steps(parsed: Any, function: str) -> list[str]:
    """The commands a function runs itself, in text order (helpers not inlined)."""
    return [c for c in command_names(parsed, functions(parsed)[function]) if c not in _REPORTING]


def _expanded(parsed: Any, function: str) -> list[str]:
    """Commands in text order with the script's helpers inlined, helper names kept. The reader
    Invoke-SaGraphGet stays one step, so an Invoke-MgGraphRequest left in the list writes."""
    defined = functions(parsed)

    def expand(name: str, seen: frozenset[str]) -> list[str]:
        out: list[str] = []
        for cmd in command_names(parsed, defined[name]):
            out.append(cmd)
            if cmd in defined and cmd not in seen and cmd != "Invoke-SaGraphGet":
                out.extend(expand(cmd, seen | {cmd}))
        return out

    return expand(function, frozenset({function}))


_LOGGED_WRITE = ["Confirm-SaChange", "Start-SaChange"]
EXPECTED_SEQUENCES = {
    "Invoke-SaRestoreDeletedHolder": [
        "Get-SaDeletedUser",  # the deleted holder still holds the anchor
        "Get-SaActiveHolders",  # no active user took the anchor
        *_LOGGED_WRITE,
        "Restore-MgDirectoryDeletedItem",
        "Stop-SaChange",  # failed (the write raised)
        "Wait-SaReadBack",  # read-back: the restored user is active
        "Get-SaUser",
        "Stop-SaChange",  # done
        "Stop-SaChange",  # unverified
    ],
    "Invoke-SaPurgeDeletedHolder": [
        "Get-SaDeletedUser",
        "Get-SaActiveHolders",
        "Get-SaUser",  # the waiting account is still there and cloud-only
        *_LOGGED_WRITE,
        "Remove-MgDirectoryDeletedItem",
        "Stop-SaChange",
        "Stop-SaChange",
    ],
    "Invoke-SaClearOnPremObjectId": [
        "Invoke-SaGraphGet",  # GET beta: the identifier is still the audited one
        *_LOGGED_WRITE,
        "Invoke-MgGraphRequest",  # PATCH beta {"onPremisesObjectIdentifier":null}
        "Stop-SaChange",
        "Invoke-SaGraphGet",  # read-back
        "Stop-SaChange",
        "Stop-SaChange",
    ],
    "Invoke-SaClearAnchor": [
        "Get-SaUser",
        "Test-SaFederatedUpn",  # never on a federated UPN
        "Get-SaActiveHolders",  # -KnownHolder: the lookup must return the user itself
        *_LOGGED_WRITE,
        "Set-SaImmutableId",
        "Stop-SaChange",
        "Test-SaImmutableId",
        "Stop-SaChange",
        "Stop-SaChange",
    ],
    "Invoke-SaFixAnchorEncoding": ["Set-SaAnchorChecked"],
    "Invoke-SaSetAnchor": ["Set-SaAnchorChecked"],
    "Set-SaAnchorChecked": [
        "Get-SaUser",
        "Test-SaAnchorTarget",  # holders, deleted holders, the hardening
        *_LOGGED_WRITE,
        "Invoke-SaWithUpnDetour",
        "Set-SaImmutableId",
        "Stop-SaChange",
        "Test-SaImmutableId",
        "Stop-SaChange",  # done
        "Stop-SaChange",  # unverified
    ],
    "Test-SaAnchorTarget": [
        "Get-SaActiveHolders",
        "Get-SaDeletedHolders",
        "Get-SaHardMatchBlockers",
    ],
    "Invoke-SaMergeDuplicateCloud": [
        "Get-SaUser",  # the twin: still active means the AD user is still in scope -> skip
        "Get-SaDeletedUser",  # the twin soft-deleted by sync
        "Get-SaUser",  # the original account
        "Test-SaAnchorTarget",  # before the purge: the anchor can go on the original
        *_LOGGED_WRITE,
        "Remove-MgDirectoryDeletedItem",  # purge the twin (no Remove-MgUser of a synced user)
        "Stop-SaChange",
        "Stop-SaChange",
        "Set-SaAnchorChecked",
    ],
    "Invoke-SaRolesDetour": [
        "Get-SaUser",
        "Get-SaActiveHolders",  # -KnownHolder
        "Get-SaHardMatchBlockers",  # onPremisesObjectIdentifier would still block
        "Get-SaRoleSchedules",
        *_LOGGED_WRITE,
        "Remove-SaRoleSchedule",
        "Stop-SaChange",
        "Stop-SaChange",
        "Wait-SaMatch",
        "Start-SaChange",  # finally: each role restored on its own, logged
        "Restore-SaRoleSchedule",
        "Stop-SaChange",  # skipped (an activation, an expired schedule)
        "Stop-SaChange",  # done
        "Stop-SaChange",  # failed: the next role is still restored
    ],
    "Invoke-SaBlockSignIn": [
        "Get-SaUser",
        "Get-ADUser",  # the AD account is still disabled (when the module is there)
        *_LOGGED_WRITE,
        "Update-MgUser",  # -AccountEnabled:$false
        "Stop-SaChange",
        "Wait-SaReadBack",  # read-back
        "Get-SaUser",
        "Stop-SaChange",
        "Stop-SaChange",
    ],
    "Invoke-SaAdSetAttribute": [
        "Get-ADUser",  # the value is still the audited one
        "Get-ADObject",  # the proposed value is not taken
        *_LOGGED_WRITE,
        "Set-ADUser",  # proxyAddresses: -Remove old -Add new
        "Set-ADUser",  # others: -Replace
        "Stop-SaChange",
        "Stop-SaChange",
    ],
    "Remove-SaRoleSchedule": [
        "New-MgRoleManagementDirectoryRoleEligibilityScheduleRequest",
        "New-MgRoleManagementDirectoryRoleAssignmentScheduleRequest",
    ],
    "Invoke-SaGraphGet": ["Invoke-MgGraphRequest"],
    "Write-SaLog": [*["ConvertTo-SaCsvCell"] * 9, "Export-Csv"],
}
_WRITES = (
    "Invoke-MgGraphRequest", "Update-MgUser", "Remove-MgDirectoryDeletedItem",
    "Restore-MgDirectoryDeletedItem", "Remove-MgUser", "Set-ADUser", "Set-SaImmutableId",
    "Remove-SaRoleSchedule", "Restore-SaRoleSchedule",
)  # fmt: skip


def test_exact_sequence_of_every_action(demo):
    settings, snapshot, findings = demo
    parsed = parse(_script(findings, _with_roles(settings), snapshot))
    defined = functions(parsed)
    for spec in ACTIONS.values():
        assert spec.function in defined, spec.function
    for function, expected in EXPECTED_SEQUENCES.items():
        assert _steps(parsed, function) == expected, function
    # The catalogue's change cmdlets occur in that order in the inlined sequence.
    for spec in ACTIONS.values():
        sequence = _expanded(parsed, spec.function)
        position = 0
        for cmdlet in spec.changes:
            position = sequence.index(cmdlet, position)


def test_every_write_is_confirmed_and_logged_with_its_before_value_first(demo):
    settings, snapshot, findings = demo
    parsed = parse(_script(findings, _with_roles(settings), snapshot))
    for spec in ACTIONS.values():
        sequence = _expanded(parsed, spec.function)
        first_write = min(sequence.index(w) for w in _WRITES if w in sequence)
        assert "Confirm-SaChange" in sequence[:first_write], spec.function
        assert "Start-SaChange" in sequence[:first_write], spec.function


def test_every_change_honours_should_process(demo):
    settings, snapshot, findings = demo
    script = _script(findings, _with_roles(settings), snapshot)
    parsed = parse(script)
    for spec in ACTIONS.values():
        body = parsed.text(functions(parsed)[spec.function])
        assert "if (-not $script:Apply) { Write-SaPlan" in body, spec.function
    # Every changing cmdlet runs after our own ShouldProcess, so it must not prompt a second time.
    for node in walk(parsed.tree.root_node):
        if node.type == "command":
            name = parsed.text(node.children[0])
            if name.startswith(("Update-Mg", "Remove-Mg", "Restore-Mg", "New-Mg", "Set-AD")):
                assert "-Confirm:$false" in parsed.text(node), parsed.text(node)
    assert "[CmdletBinding(SupportsShouldProcess, ConfirmImpact = 'High')]" in script
    assert "return $script:Cmdlet.ShouldProcess($Target, $Operation)" in script


def test_the_change_log_is_written_under_whatif_and_confirm(demo):
    """Export-Csv honours ShouldProcess: without -WhatIf:$false nothing is logged under -WhatIf,
    and under -Confirm every row asks."""
    settings, snapshot, findings = demo
    parsed = parse(_script(findings, _with_roles(settings), snapshot))
    exports = [
        parsed.text(node)
        for node in walk(parsed.tree.root_node)
        if node.type == "command" and parsed.text(node.children[0]) == "Export-Csv"
    ]
    assert exports and all("-WhatIf:$false -Confirm:$false" in e for e in exports)


def test_unverified_and_interrupted_writes_are_undone_too(demo):
    settings, snapshot, findings = demo
    parsed = parse(_script(findings, _with_roles(settings), snapshot))
    rows = parsed.text(functions(parsed)["Get-SaUndoRows"])
    assert "@('started', 'done', 'unverified', 'failed') -contains $_.Result" in rows
    assert "$last[$row.Operation] = $row" in rows  # the last state of each change counts
    checked = parsed.text(functions(parsed)["Set-SaAnchorChecked"])
    assert "Stop-SaChange -Change $change -Result 'unverified'" in checked
    assert "Import-Csv -LiteralPath $Path -Encoding UTF8" in rows  # PS 7 writes no BOM
    undo = parsed.text(functions(parsed)["Undo-SaRow"])
    assert "Graph does not delete a synced user" in undo
    for kind in ("'immutable-id'", "'upn'", "'restore'", "'account-enabled'", "'role-schedule'"):
        assert kind in undo


def test_header_names_run_tenant_modules_and_what_it_fixes(demo):
    settings, snapshot, findings = demo
    script = _script(findings, settings, snapshot)
    head = script[: script.index("$ErrorActionPreference")]
    assert "# Run:        demo" in head
    assert "contoso.onmicrosoft.com / 6f1c3a52-8d4e-4b7a-9c21-5e0f7d3b9a10" in head
    assert "Microsoft.Graph.Users, Microsoft.Graph.Identity.DirectoryManagement" in head
    assert "RoleAssignmentSchedule.ReadWrite" not in head
    assert "1 x purge-deleted-holder" in head and "9 x ad-set-attribute" in head
    assert "2 x block-sign-in" in head and "1 x clear-anchor" in head
    assert "param(\n    [switch]$Apply," in script
    assert "Start-ADSyncSyncCycle -PolicyType Delta | Out-Null" in script
    assert "'{\"onPremisesImmutableId\":null}'" in script
    assert "Set-MsolUser" not in script and "AzureAD" not in script


# --- permissions, tenant, lookups ---------------------------------------------------------------


def test_scopes_are_the_documented_minimum_for_the_actions_present(demo):
    settings, snapshot, findings = demo
    assert least_scopes([Action.restore_deleted_holder]) == [
        "User.Read.All",
        "User.DeleteRestore.All",
    ]
    assert least_scopes([Action.set_anchor]) == [
        "User.Read.All",  # the deleted-items list names it; ReadUpdate is not documented to
        "User.ReadUpdate.All",
        "Domain.Read.All",
        "RoleManagement.Read.Directory",  # the hardening re-check reads roles
        "RoleAssignmentSchedule.Read.Directory",
        "RoleEligibilitySchedule.Read.Directory",
    ]
    assert least_scopes([Action.clear_onprem_object_id]) == [
        "User.Read.All",
        "User-OnPremisesSyncBehavior.ReadWrite.All",
    ]
    assert least_scopes([Action.block_sign_in]) == [
        "User.Read.All",
        "User.EnableDisableAccount.All",
    ]
    assert least_scopes([Action.roles_detour]) == [
        "User.Read.All",
        "RoleManagement.Read.Directory",
        "RoleAssignmentSchedule.ReadWrite.Directory",
        "RoleEligibilitySchedule.ReadWrite.Directory",
    ]
    assert least_scopes([Action.ad_set_attribute]) == []
    assert least_scopes([Action.restore_deleted_holder], undo=True) == ["User.ReadWrite.All"]
    for name, permission in PERMISSIONS.items():
        assert permission.reference.startswith("https://learn.microsoft.com/"), name
        assert all(broader in PERMISSIONS for broader in permission.implied_by)
    for spec in ACTIONS.values():
        assert set(spec.scopes) | set(spec.undo_scopes) <= set(PERMISSIONS), spec.action
        assert spec.role and spec.documented and spec.references, spec.action
    off = plan_findings(findings, options_from_settings(settings, snapshot.tenant))
    assert off.scopes == least_scopes(off.actions)
    assert "RoleAssignmentSchedule.ReadWrite.Directory" not in off.scopes
    script = _script(findings, settings, snapshot)
    for wrong in ("Directory.ReadWrite.All", "User.OnPremisesSync.ReadWrite.All"):
        assert wrong not in script
    head = script[: script.index("$ErrorActionPreference")]
    for scope in off.scopes:
        assert f"#     {scope}: {PERMISSIONS[scope].used_for[:40]}" in head
    assert (
        "#     Hybrid Identity Administrator (or Global Administrator): clear-onprem-object-id"
        in head
    )
    assert "#     User Administrator: purge-deleted-holder, restore-deleted-holder" in head
    literal = "$script:GraphScopes = @(" + ", ".join(f"'{s}'" for s in off.scopes) + ")"
    assert literal in script


def test_connects_to_the_run_tenant_only(demo):
    settings, snapshot, findings = demo
    script = _script(findings, settings, snapshot)
    assert f"$script:RunTenantId = '{snapshot.tenant.tenant_id}'" in script
    parsed = parse(script)
    connect = parsed.text(functions(parsed)["Connect-SaGraph"])
    assert "Connect-MgGraph -TenantId $tenant -Scopes $Scopes -NoWelcome" in connect
    assert "([string]$context.TenantId -ne $tenant)" in connect
    assert "$context.Scopes -notcontains $_" in connect
    unknown = replace(snapshot.tenant, tenant_id=None)
    script = remediation_script(
        findings, settings, tenant=unknown, run_id="r", taken_at=None, generated="now"
    )
    assert "$script:RunTenantId = ''" in script  # the script then requires -TenantId
    assert "run again with -TenantId" in script


def test_no_lookup_goes_through_an_unescaped_filter(demo):
    """Get-MgUser -Filter sends '+' as a space (msgraph-sdk-powershell #2973, #3522): every
    lookup is a GET built by Invoke-SaGraphGet, which escapes the filter."""
    settings, snapshot, findings = demo
    parsed = parse(_script(findings, _with_roles(settings), snapshot))
    getter = parsed.text(functions(parsed)["Invoke-SaGraphGet"])
    assert "[uri]::EscapeDataString($Filter)" in getter
    for node in walk(parsed.tree.root_node):
        if node.type != "command":
            continue
        text, name = parsed.text(node), parsed.text(node.children[0])
        assert name not in ("Get-MgUser", "Get-MgDirectoryDeletedItemAsUser"), text
        assert not (name.startswith("Get-Mg") and "-Filter" in text), text
        if name == "Invoke-MgGraphRequest" and "-Method GET" in text:
            enclosing = node.parent
            while enclosing is not None and enclosing.type != "function_statement":
                enclosing = enclosing.parent
            assert enclosing is not None and "Invoke-SaGraphGet" in parsed.text(enclosing)
    holders = parsed.text(functions(parsed)["Get-SaActiveHolders"])
    assert "if ($KnownHolder -and (-not @($users" in holders and "throw" in holders


def test_every_anchor_write_rechecks_the_hardening_first(demo):
    settings, snapshot, findings = demo
    parsed = parse(_script(findings, _with_roles(settings), snapshot))
    for function in (
        "Invoke-SaSetAnchor",
        "Invoke-SaFixAnchorEncoding",
        "Invoke-SaMergeDuplicateCloud",
        "Invoke-SaRolesDetour",
    ):
        sequence = _expanded(parsed, function)
        first_write = min(sequence.index(w) for w in _WRITES if w in sequence)
        assert "Get-SaHardMatchBlockers" in sequence[:first_write], function
    blockers = parsed.text(functions(parsed)["Get-SaHardMatchBlockers"])
    assert "'beta/users/{0}' -f $UserId" in blockers and "onPremisesObjectIdentifier" in blockers
    schedules = parsed.text(functions(parsed)["Get-SaRoleSchedules"])
    assert "roleAssignmentScheduleInstances" in schedules
    assert "roleEligibilityScheduleInstances" in schedules
    assert "$privileged = $true  # a role the definitions do not list" in schedules
    # without PIM (no Entra ID P2) the check still sees permanent assignments
    assert "'v1.0/roleManagement/directory/roleAssignments' -Filter $filter" in schedules


def test_role_detour_restores_the_original_schedule(demo):
    settings, snapshot, findings = demo
    parsed = parse(_script(findings, _with_roles(settings), snapshot))
    restore = parsed.text(functions(parsed)["Restore-SaRoleSchedule"])
    assert "if ($Schedule.AssignmentType -eq 'Activated') { return" in restore
    assert "$expiration = @{ type = 'afterDateTime'; endDateTime = $end.ToString('o') }" in restore
    assert "if ($end -le $now) { return" in restore  # an expired schedule is not re-created
    assert "scheduleInfo     = @{ startDateTime = $start.ToString('o'); expiration" in restore
    detour = parsed.text(functions(parsed)["Invoke-SaRolesDetour"])
    assert "$json = $schedule | ConvertTo-Json -Compress" in detour
    assert "-Before $json -After '' -Undo 'role-schedule'" in detour
    assert "MemberType -ne 'Direct'" in detour  # a role through a group: a person acts
    assert "Where-Object { $_.Api -ne 'pim' }" in detour  # no PIM APIs: a person acts
    assert "MemberType -ne 'Direct'" in detour  # group-based roles: a manual step
    names = {parsed.text(n.children[0]) for n in walk(parsed.tree.root_node) if n.type == "command"}
    # the old calls created a permanent assignment whatever the original schedule was
    assert "New-MgRoleManagementDirectoryRoleAssignment" not in names
    assert "Remove-MgRoleManagementDirectoryRoleAssignment" not in names


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


def test_write_remediation_is_atomic_ascii_crlf_and_parses(demo, tmp_path):
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
    assert raw.isascii() and b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    parse(raw.decode("ascii"))
    assert [p.name for p in tmp_path.iterdir()] == ["remediation.ps1"]


@pytest.mark.parametrize(
    "name",
    [
        # In cp1252 the UTF-8 bytes of U+0151 (C5 91) read as "\u00c5\u2018": a PowerShell quote,
        # which would end the literal and run Start-Process even without -Apply.
        "Mallory X\u0151 -replace $(Start-Process calc) #",
        "Erd\u0151s P\u00e9ter",  # an ordinary name that broke the parse
        "Zo\u00eb M\u00fcller \u2019s \u7528\u6237 \U0001f600",
    ],
)
def test_script_means_the_same_when_read_as_cp1252_without_bom(tmp_path, name):
    row = _set_anchor_row(ad_dn=f"CN={name},OU=Staff,DC=corp,DC=contoso,DC=com")
    frame = conform(pl.DataFrame([row]), FINDINGS_SCHEMA)
    settings = Settings()
    path = write_remediation(
        tmp_path, frame, settings, tenant=Tenant(), run_id="r", taken_at=None, generated="now"
    )
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf") and raw.isascii()
    as_cp1252 = raw.decode("cp1252")  # what Windows PowerShell 5.1 reads
    parsed = parse(as_cp1252)
    ((function, args),) = calls(parsed)
    assert function == "Invoke-SaSetAnchor"
    assert args["AdUser"] == f"CN={name},OU=Staff,DC=corp,DC=contoso,DC=com"
    assert "Start-Process" not in {
        parsed.text(n.children[0]) for n in walk(parsed.tree.root_node) if n.type == "command"
    }


STATIC_PARTS = sorted((REPO / "report_templates" / "remediation").glob("*.ps1"))


def test_static_parts_are_powershell_without_template_syntax():
    """runtime.ps1, roles.ps1 and undo.ps1 go into every script as they are: each is ASCII
    PowerShell that parses on its own (no ERROR or MISSING node, no expandable string) and holds
    nothing a template engine would read."""
    assert {p.name for p in STATIC_PARTS} == {"runtime.ps1", "roles.ps1", "undo.ps1"}
    for path in STATIC_PARTS:
        text = path.read_text(encoding="ascii")
        for delimiter in ("{{", "{%", "{#"):
            assert delimiter not in text, (path.name, delimiter)
        parsed = parse(text)
        assert functions(parsed), path.name


def test_static_parts_go_into_the_script_verbatim(demo):
    settings, snapshot, findings = demo
    script = _script(findings, _with_roles(settings), snapshot)
    for path in STATIC_PARTS:
        assert path.read_text(encoding="ascii") in script, path.name
    without_roles = _script(findings, settings, snapshot)
    assert "function Remove-SaRoleSchedule" not in without_roles
    assert "$script:RoleChanges = $false" in without_roles
    assert "$script:RoleChanges = $true" in script
    # -Undo of a role row only where the script has the roles detour (and its scopes)
    check = parse(without_roles).text(functions(parse(without_roles))["Test-SaUndoRow"])
    assert "if (-not $script:RoleChanges) { return" in check


def test_sample_report_script_parses():
    sample = REPO / "sample_reports" / "remediation.ps1"
    parsed = parse(sample.read_text(encoding="ascii"))
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


# --- documented paths on crafted findings ---------------------------------------------------------


def _duplicate_row(**evidence: Any) -> dict[str, Any]:
    ev = {
        "matched_cloud_id": GUID_B,
        "matched_cloud_upn": "pat.obrien4821@contoso.onmicrosoft.com",
        "matched_looks_quarantined": True,
        "other_sync_enabled": None,
        "other_immutable_id": None,
    }
    ev.update(evidence)
    return finding(
        code="duplicate-cloud-account",
        remediation="merge-duplicate-cloud",
        ad_source="corp",
        ad_object_guid=GUID_C,
        ad_dn="CN=O'Brien\\, Pat,OU=Staff,DC=corp,DC=contoso,DC=com",
        cloud_id=GUID_A,
        cloud_upn="pat.obrien@contoso.com",
        anchor=ANCHOR,
        evidence=ev,
    )


def test_duplicate_account_follows_the_out_of_scope_path():
    options = PlanOptions(excluded_ous={"corp": ("OU=NoSync,DC=corp,DC=contoso,DC=com",)})
    call = plan_finding(_duplicate_row(), options)
    assert isinstance(call, Call) and call.action == "merge-duplicate-cloud"
    before, this, after = call.steps
    assert before.startswith("MANUAL STEP 1 of 3, on-premises, before this call")
    assert f"Move-ADObject -Identity '{GUID_C}' -TargetPath 'OU=NoSync,DC=corp,DC=contoso,DC=com'"
    assert f"Move-ADObject -Identity '{GUID_C}' -TargetPath 'OU=NoSync" in before
    assert "pat.obrien4821@contoso.onmicrosoft.com" in before and GUID_B in before
    assert "STEP 2 of 3, this call" in this
    # back to the OU it came from: the parent of a DN whose RDN holds an escaped comma
    assert f"-Identity '{GUID_C}' -TargetPath 'OU=Staff,DC=corp,DC=contoso,DC=com'" in after
    unconfigured = plan_finding(_duplicate_row(), PlanOptions())
    assert isinstance(unconfigured, Call)
    assert "-TargetPath '<an OU that is not synced>'" in unconfigured.steps[0]
    script = render_plan(
        plan_findings(conform(pl.DataFrame([_duplicate_row()]), FINDINGS_SCHEMA), options),
        ScriptHeader("r", "t", "x", "y"),
    )
    parsed = parse(script)
    merge = _steps(parsed, "Invoke-SaMergeDuplicateCloud")
    assert "Remove-MgUser" not in _expanded(parsed, "Invoke-SaMergeDuplicateCloud")
    assert merge.index("Get-SaUser") < merge.index("Remove-MgDirectoryDeletedItem")
    body = parsed.text(functions(parsed)["Invoke-SaMergeDuplicateCloud"])
    assert "the twin {0} is still active: take AD user {1} out of sync scope" in body
    # the steps are comments above the call, in the order they are done
    start = script.index("# [ffffffffffffffffffff] duplicate-cloud-account")
    block = script[start : script.index("Invoke-SaMergeDuplicateCloud @step", start)]
    assert block.index("MANUAL STEP 1 of 3") < block.index("STEP 2 of 3")
    assert block.index("STEP 2 of 3") < block.index("MANUAL STEP 3 of 3")


@pytest.mark.parametrize(
    ("evidence", "advice"),
    [
        (
            {"matched_created": "2026-11-20T00:00:00Z", "other_created": "2019-03-01T00:00:00Z"},
            "keep pat.obrien@contoso.com (id 9c26d141-29dc-414b-bf2b-e245e9b67427), created "
            "2019-03-01T00:00:00Z, before the synced account",
        ),
        (
            {"matched_created": "2018-01-01T00:00:00Z", "other_created": "2026-11-20T00:00:00Z"},
            "keep the synced account pat.obrien4821@contoso.onmicrosoft.com (id "
            "a80517d2-e517-424e-b041-286b54a6ba58), created 2018-01-01T00:00:00Z",
        ),
        ({}, "the run cannot tell which of"),
    ],
)
def test_a_duplicate_that_is_not_a_quarantined_twin_says_which_account_to_keep(evidence, advice):
    row = _duplicate_row(matched_looks_quarantined=False, **evidence)
    step = plan_finding(row, PlanOptions())
    assert isinstance(step, ManualStep) and step.intended == "merge-duplicate-cloud"
    assert advice in step.reason


def test_no_anchor_is_cleared_on_a_federated_upn():
    row = finding(
        code="cloud-orphan",
        remediation="clear-anchor",
        cloud_id=GUID_A,
        cloud_upn="omar@Fabrikam.com",
        anchor=ANCHOR,
        evidence={"sync_enabled": False},
    )
    federated = PlanOptions(federated_domains=frozenset({"fabrikam.com"}))
    step = plan_finding(row, federated)
    assert isinstance(step, ManualStep) and "federated domain fabrikam.com" in step.reason
    assert isinstance(plan_finding(row, PlanOptions()), Call)  # managed: cleared, re-checked live
    script = render_plan(
        plan_findings(conform(pl.DataFrame([row]), FINDINGS_SCHEMA)),
        ScriptHeader("r", "t", "x", "y"),
    )
    parsed = parse(script)
    clear = _steps(parsed, "Invoke-SaClearAnchor")
    assert clear.index("Test-SaFederatedUpn") < clear.index("Start-SaChange")
    undo = parsed.text(functions(parsed)["Undo-SaRow"])
    assert "if ((-not $before) -and (Test-SaFederatedUpn" in undo  # undo never clears one either


def test_block_sign_in_only_for_a_disabled_ad_user_who_can_sign_in():
    row = finding(
        code="enabled-drift",
        remediation="block-sign-in",
        cloud_id=GUID_A,
        cloud_upn="leaver@contoso.com",
        ad_object_guid=GUID_C,
        ad_dn="CN=Leaver,OU=Staff,DC=corp,DC=contoso,DC=com",
        evidence={"ad_enabled": False, "cloud_account_enabled": True},
    )
    call = plan_finding(row, PlanOptions())
    assert isinstance(call, Call) and call.function == "Invoke-SaBlockSignIn"
    assert call.arg("AdObjectGuid") == GUID_C
    row["evidence"] = json.dumps({"ad_enabled": True, "cloud_account_enabled": False})
    assert isinstance(plan_finding(row, PlanOptions()), ManualStep)


def test_manual_steps_carry_the_values_the_run_knows(demo):
    settings, snapshot, findings = demo
    plan = plan_findings(findings, options_from_settings(settings, snapshot.tenant))
    rows = {r["fingerprint"]: r for r in findings.iter_rows(named=True)}
    checked = 0
    for step in plan.manual:
        row = rows[step.fingerprint]
        if row["cloud_id"]:
            assert "<id>" not in step.how and "<B>" not in step.how, step.code
        if row["anchor"]:
            assert "<anchor>" not in step.how, step.code
        if row["ad_object_guid"]:
            assert "<dn>" not in step.how and "<user>" not in step.how, step.code
        checked += str(row["cloud_id"]) in step.how
    assert checked >= 10
    omar = next(s for s in plan.manual if "omar.haddad" in s.reason)
    assert (
        "Invoke-MgGraphRequest -Method PATCH -Uri "
        "'v1.0/users/0fa641c9-1a68-4427-ace3-41bcfe9b588a' -Body" in omar.how
    )


def test_architecture_doc_lists_every_action_with_its_permissions_role_and_source():
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    begin = text.index("-->\n", text.index("<!-- remediation-tables:begin")) + 4
    end = text.index("<!-- remediation-tables:end -->")
    assert text[begin:end] == markdown_tables(), (
        "docs/ARCHITECTURE.md is out of date: paste the output of "
        "python -c 'from audit.remediation.actions import markdown_tables; "
        "print(markdown_tables())'"
    )


def test_failures_inside_a_step_are_contained(demo):
    """Review findings: a failed UPN move back does not hide the first error, a failed role
    restore does not keep the other roles off, the hardening check falls back to roleAssignments
    only for a tenant without PIM, and a merge does not trip over the twin it just purged."""
    settings, snapshot, findings = demo
    parsed = parse(_script(findings, _with_roles(settings), snapshot))
    detour = parsed.text(functions(parsed)["Invoke-SaWithUpnDetour"])
    finally_block = detour[detour.index("finally {") :]
    assert "catch {" in finally_block and "throw" not in finally_block
    schedules = parsed.text(functions(parsed)["Get-SaRoleSchedules"])
    assert "if ([string]$_ -notmatch 'licen[cs]e|premium') { throw }" in schedules
    merge = parsed.text(functions(parsed)["Invoke-SaMergeDuplicateCloud"])
    assert "-Why 'merge' -Confirmed -RolesDetourFollows $RolesDetourFollows" in merge
    assert "-IgnoreDeletedHolder $TwinId)" in merge
    readback = parsed.text(functions(parsed)["Test-SaImmutableId"])
    # the read-back holds only for a user that exists (a vanished one reads as '')
    assert "$user -and ([string]$user.OnPremisesImmutableId -ceq $Expected)" in readback
    assert "Wait-SaReadBack -Check" in readback
    # one DONE per completed step, however many rows it logs
    assert "$script:Changed += 1" in parsed.text(functions(parsed)["Write-SaDone"])
    assert "$script:Changed" not in parsed.text(functions(parsed)["Write-SaLog"])


def test_the_change_log_is_formula_safe_and_undo_takes_only_what_the_script_changes(demo):
    settings, snapshot, findings = demo
    parsed = parse(_script(findings, _with_roles(settings), snapshot))
    log = parsed.text(functions(parsed)["Write-SaLog"])
    for field in ("Fingerprint", "Code", "Action", "TargetId", "Property", "Before", "After"):
        assert f"ConvertTo-SaCsvCell ${field}" in log, field
    rows = parsed.text(functions(parsed)["Get-SaUndoRows"])
    assert "$row.$name = ConvertFrom-SaCsvCell $row.$name" in rows
    assert _steps(parsed, "Undo-SaRow")[0] == "Test-SaUndoRow"  # before anything is read
    check = parsed.text(functions(parsed)["Test-SaUndoRow"])
    assert "'immutable-id'    = @('onPremisesImmutableId')" in check
    assert "'ad-attribute'    = $script:AdAttributes" in check
    assert "[string]$Row.TargetId -notmatch $guid" in check
    # the script's list of AD attributes is the generator's allow-list
    from audit.powershell import AD_WRITABLE_ATTRIBUTES

    script = parsed.source.decode("ascii")
    line = next(x for x in script.splitlines() if x.startswith("$script:AdAttributes = @("))
    assert re.findall(r"'([A-Za-z]+)'", line) == list(AD_WRITABLE_ATTRIBUTES)
    lead = next(x for x in script.splitlines() if x.startswith("$script:FormulaLead = "))
    assert lead == "$script:FormulaLead = '^[=+\\-@''\\s\\p{C}\\uFF1D\\uFF0B\\uFF0D\\uFF20]'"


def test_a_finding_without_a_needed_value_is_a_manual_step_saying_what_is_missing():
    """Not a validation failure: nothing hostile, the finding simply lacks the value."""
    row = _set_anchor_row(anchor=None)
    step = plan_finding(row, PlanOptions())
    assert isinstance(step, ManualStep)
    assert step.reason.startswith("the finding has no ")
    assert "failed validation" not in step.reason
