"""`syncaudit hardmatch`: lookups, blockers, the script for one pair, and the CLI."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from audit.cli import main
from audit.errors import LookupFailed
from audit.hardmatch import (
    ACTION,
    BLOCKER,
    OK,
    WARNING,
    SnapshotDirectory,
    hardmatch_script,
    plan_hardmatch,
    write_script,
)
from audit.pipeline import save_run
from audit.remediation.actions import PlanOptions
from tests import factories as f
from tests.psast import calls, parse

ALICE_ANCHOR = f.b64_anchor(f.guid_for("alice"))


def _estate(*cloud, ad=None, tenant_info=None):
    ad = ad or [f.ad_user("alice", sam_account_name="alice")]
    return f.snapshot(ad, list(cloud), tenant_info=tenant_info)


def _plan(snapshot, ad="alice", cloud="alice@contoso.com", **options):
    return plan_hardmatch(SnapshotDirectory(snapshot), ad, cloud, PlanOptions(**options))


def _step(result, title):
    return next(s for s in result.steps if s.title == title)


def _status(result, title):
    return _step(result, title).status


def _script_calls(result):
    text = hardmatch_script(result, run_id="r1", tenant=f.tenant(), taken_at=None, generated="g")
    return [(name, args) for name, args in calls(parse(text))]


def test_clean_pair_gets_exactly_set_anchor():
    result = _plan(_estate(f.cloud_only_user("alice")))
    assert not result.blocked
    assert _status(result, "Cloud user") == ACTION
    assert _status(result, "Holders of the anchor") == OK
    assert [c.action for c in result.plan.calls] == ["set-anchor"]
    ((name, args),) = _script_calls(result)
    assert name == "Invoke-SaSetAnchor"
    assert args["Anchor"] == ALICE_ANCHOR
    assert args["UserId"] == f.cloud_id_for("alice")
    assert args["Code"] == "hardmatch"


def test_soft_deleted_holder_is_purged_first():
    deleted = f.cloud_user("old-alice", immutable_id=ALICE_ANCHOR, deleted_at=f.NOW - timedelta(1))
    result = _plan(_estate(f.cloud_only_user("alice"), deleted))
    assert not result.blocked and _status(result, "Holders of the anchor") == ACTION
    assert [c.action for c in result.plan.calls] == ["purge-deleted-holder", "set-anchor"]
    purge = result.plan.calls[0]
    assert purge.arg("DeletedId") == f.cloud_id_for("old-alice")
    assert purge.arg("WaitingId") == f.cloud_id_for("alice")


def test_active_holder_blocks():
    other = f.cloud_only_user("alice2", upn="alice2@contoso.com", immutable_id=ALICE_ANCHOR)
    result = _plan(_estate(f.cloud_only_user("alice"), other))
    assert result.blocked and _status(result, "Holders of the anchor") == BLOCKER
    assert result.plan.calls == []
    assert [m.title for m in result.plan.manual] == ["Holders of the anchor"]
    text = hardmatch_script(result, run_id="r", tenant=f.tenant(), taken_at=None, generated="g")
    parse(text)
    assert "# MANUAL STEP" in text and "BLOCKED: Holders of the anchor" in text


def test_synced_cloud_user_blocks():
    synced = f.cloud_user("alice", immutable_id=f.b64_anchor(f.guid_for("someone-else")))
    result = _plan(_estate(synced))
    assert result.blocked and _status(result, "Cloud user") == BLOCKER
    assert result.plan.calls == []


def test_already_matched_or_prepared_needs_no_change():
    result = _plan(_estate(f.cloud_user("alice")))  # synced from alice already
    assert not result.blocked and result.plan.calls == []
    prepared = f.cloud_only_user("alice", immutable_id=ALICE_ANCHOR)
    result = _plan(_estate(prepared))
    assert not result.blocked and result.plan.calls == []
    assert _status(result, "Cloud user") == OK


def test_stale_immutable_id_is_replaced_with_a_recheck():
    cloud = f.cloud_only_user("alice", immutable_id="System.Byte[]")
    (call,) = _plan(_estate(cloud)).plan.calls
    assert call.arg("ExpectedImmutableId") == "System.Byte[]"


@pytest.mark.parametrize(
    "roles", [{"admin_roles": ["Global Administrator"]}, {"eligible_roles": ["User Administrator"]}]
)
def test_admin_roles_block_unless_role_changes_are_allowed(roles):
    estate = _estate(f.cloud_only_user("alice", **roles))
    off = _plan(estate)
    assert off.blocked and _status(off, "Hard-match hardening") == BLOCKER
    assert [c.action for c in off.plan.calls] == ["set-anchor"]
    on = _plan(estate, allow_role_changes=True)
    assert not on.blocked
    assert [c.action for c in on.plan.calls] == ["set-anchor", "roles-detour"]
    assert on.plan.calls[1].arg("Mode") == "hard"
    # the set-anchor may go ahead despite the roles: the detour after it takes them off
    assert on.plan.calls[0].arg("RolesDetourFollows") is True
    assert off.plan.calls[0].arg("RolesDetourFollows") is False
    assert "RoleAssignmentSchedule.ReadWrite.Directory" in on.plan.scopes
    assert "RoleEligibilitySchedule.ReadWrite.Directory" in on.plan.scopes


def test_on_prem_object_identifier_is_cleared_first():
    cloud = f.cloud_only_user("alice", on_prem_object_id=f.guid_for("old-object"))
    result = _plan(_estate(cloud))
    assert not result.blocked and _status(result, "Hard-match hardening") == ACTION
    assert [c.action for c in result.plan.calls] == ["clear-onprem-object-id", "set-anchor"]
    assert "User-OnPremisesSyncBehavior.ReadWrite.All" in result.plan.scopes
    assert "User-OnPremisesSyncBehavior.ReadWrite.All" in " ".join(
        _step(result, "Hard-match hardening").lines
    )


def test_federated_domain_means_the_upn_detour():
    tenant = f.tenant(verified=("contoso.com", "fabrikam.com"), federated=("fabrikam.com",))
    cloud = f.cloud_only_user("alice", upn="alice@fabrikam.com")
    result = _plan(_estate(cloud, tenant_info=tenant), cloud="alice@fabrikam.com")
    assert _status(result, "Federated domain") == ACTION
    step = next(s for s in result.steps if s.title == "Federated domain")
    assert "contoso.onmicrosoft.com" in step.lines[0]
    managed = _plan(_estate(f.cloud_only_user("alice")))
    assert _status(managed, "Federated domain") == OK


@pytest.mark.parametrize(("takeover", "status"), [(True, BLOCKER), (None, WARNING), (False, OK)])
def test_matching_switches(takeover, status):
    tenant = f.tenant(features={"block_hard_match_takeover": takeover, "block_soft_match": True})
    result = _plan(_estate(f.cloud_only_user("alice"), tenant_info=tenant))
    assert _status(result, "Matching switches") == status
    assert result.blocked is (status == BLOCKER)


def test_scope_advice():
    in_scope = _plan(_estate(f.cloud_only_user("alice")))
    assert _status(in_scope, "Sync scope") == WARNING
    out = _plan(
        _estate(
            f.cloud_only_user("alice"),
            ad=[
                f.ad_user(
                    "alice",
                    sam_account_name="alice",
                    in_scope=False,
                    out_of_scope_reason="excluded OU",
                )
            ],
        )
    )
    assert _status(out, "Sync scope") != WARNING


def test_lookups_by_sam_upn_dn_and_guid():
    estate = _estate(f.cloud_only_user("alice"))
    dn = "CN=alice,OU=Staff,DC=corp,DC=contoso,DC=com"
    for query in ("ALICE", "alice@contoso.com", dn, f.guid_for("alice")):
        assert _plan(estate, ad=query).ad.dn == dn
    assert _plan(estate, cloud=f.cloud_id_for("alice")).cloud.upn == "alice@contoso.com"


def test_lookup_errors_name_the_candidates():
    twins = [
        f.ad_user("alice", sam_account_name="alice"),
        f.ad_user("alice", sam_account_name="alice", source="emea", dn="CN=alice,OU=EMEA,DC=emea"),
    ]
    estate = _estate(f.cloud_only_user("alice"), ad=twins)
    with pytest.raises(
        match=r"2 AD users match 'alice': CN=alice,OU=Staff.*; CN=alice,OU=EMEA",
    ):
        _plan(estate)
    with pytest.raises(LookupFailed, match="no AD user"):
        _plan(estate, ad="nobody")
    with pytest.raises(LookupFailed, match="no active cloud user"):
        _plan(estate, ad="CN=alice,OU=EMEA,DC=emea", cloud="nobody@contoso.com")
    gone = f.cloud_only_user("alice", deleted_at=f.NOW)
    with pytest.raises(LookupFailed, match=r"soft-deleted.*restore it first"):
        _plan(_estate(gone))


# --- CLI ------------------------------------------------------------------------------------------


@pytest.fixture
def run_dir(tmp_path):
    cloud = [
        f.cloud_only_user("alice"),
        f.cloud_only_user("bob", admin_roles=["Global Administrator"]),
    ]
    ad = [f.ad_user("alice", sam_account_name="alice"), f.ad_user("bob", sam_account_name="bob")]
    return save_run(tmp_path / "run", f.snapshot(ad, cloud), f.settings(), {})


def test_cli_writes_the_script_and_explains(run_dir, tmp_path, capsys):
    out = tmp_path / "alice.ps1"
    code = main(
        [
            "hardmatch",
            "--ad",
            "alice",
            "--cloud",
            "alice@contoso.com",
            "--run",
            str(run_dir),
            "--out",
            str(out),
        ]
    )
    stdout = capsys.readouterr().out
    assert code == 0
    assert "1. AD user [info]" in stdout and "Anchor [ok]" in stdout
    assert f"script: {out}" in stdout
    parsed = parse(out.read_text(encoding="ascii"))
    assert [name for name, _ in calls(parsed)] == ["Invoke-SaSetAnchor"]


def test_cli_blocked_pair_exits_1_default_path(run_dir, capsys):
    code = main(["hardmatch", "--ad", "bob", "--cloud", "bob@contoso.com", "--run", str(run_dir)])
    stdout = capsys.readouterr().out
    assert code == 1 and "BLOCKED: Hard-match hardening" in stdout
    scripts = list(run_dir.glob("hardmatch-*.ps1"))
    assert len(scripts) == 1
    parse(scripts[0].read_text(encoding="ascii"))


def test_cli_lookup_error_is_one_line_exit_2(run_dir, capsys):
    code = main(
        ["hardmatch", "--ad", "nobody", "--cloud", "alice@contoso.com", "--run", str(run_dir)]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [
        "syncaudit: error: no AD user with sAMAccountName, UPN or DN 'nobody'"
    ]


def test_default_script_path_stays_in_the_run_directory(tmp_path: Path) -> None:
    """Directory ids reach the file name only as hex digits: '/../' cannot move the script."""
    from types import SimpleNamespace

    from audit.hardmatch import default_script_path

    result = SimpleNamespace(
        ad=SimpleNamespace(object_guid="../../x"), cloud=SimpleNamespace(id="/../../e")
    )
    path = default_script_path(tmp_path, result)  # type: ignore[arg-type]
    assert path.parent == tmp_path
    assert path.name == "hardmatch-ad-e.ps1"


def test_the_calls_are_checked_like_the_remediation_scripts():
    """hardmatch builds its calls from the same declarations as remediation.ps1 (ACTIONS): same
    parameters, same checks; a value that fails is a blocker, never code."""
    from audit.remediation.actions import ACTIONS

    result = _plan(_estate(f.cloud_only_user("alice", on_prem_object_id=f.guid_for("x"))))
    for call in result.plan.calls:
        assert [name for name, _ in call.args] == [p.name for p in ACTIONS[call.action].parameters]
    broken = f.cloud_only_user("alice", upn="alice@contoso.com\nRemove-Item C:\\")
    result = _plan(_estate(broken), cloud=f.cloud_id_for("alice"))
    assert result.plan.calls == [] and result.blocked
    (script,) = [s for s in result.steps if s.title == "Script"]
    assert script.lines == [
        "a value failed validation: cloud user's UPN: value contains a line break character U+000A"
    ]


def test_hardmatch_script_means_the_same_read_as_cp1252(tmp_path):
    name = "Erd\u0151s P\u00e9ter -replace $(Start-Process calc) #"
    ad = [
        f.ad_user(
            "erdos", sam_account_name="erdos", dn=f"CN={name},OU=Staff,DC=corp,DC=contoso,DC=com"
        )
    ]
    result = _plan(
        _estate(f.cloud_only_user("erdos"), ad=ad), ad="erdos", cloud="erdos@contoso.com"
    )
    text = hardmatch_script(result, run_id="r", tenant=f.tenant(), taken_at=None, generated="g")
    path = write_script(tmp_path / "hm.ps1", text)
    raw = path.read_bytes()
    assert raw.isascii()
    ((function, args),) = calls(parse(raw.decode("cp1252")))
    assert function == "Invoke-SaSetAnchor"
    assert args["AdUser"] == f"CN={name},OU=Staff,DC=corp,DC=contoso,DC=com"
