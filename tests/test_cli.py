"""The command line contract: outputs, exit codes, and one-line errors without tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from audit.cli import ReadMeter, main
from audit.sources.ldap import ReadProgress

LDIF = """\
dn: CN=Alice Smith,OU=Staff,DC=corp,DC=contoso,DC=com
changetype: add
objectClass: top
objectClass: person
objectClass: organizationalPerson
objectClass: user
cn: Alice Smith
objectGUID:: 1wfM9xV8fUSHbcAbDlqeOA==
userAccountControl: 512
sAMAccountName: alice
userPrincipalName: alice@contoso.com
mail: alice@contoso.com
mailNickname: alice
displayName: Alice Smith
proxyAddresses: SMTP:alice@contoso.com
whenCreated: 20200109153140.0Z

dn: CN=Bob Jones,OU=Staff,DC=corp,DC=contoso,DC=com
changetype: add
objectClass: user
cn: Bob Jones
objectGUID:: BpazOkLGm0iEtljAONPvOQ==
userAccountControl: 512
sAMAccountName: bob
userPrincipalName: bob@contoso.local
displayName: Bob Jones
whenCreated: 20200109153140.0Z
"""

USERS = {
    "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users",
    "value": [
        {
            "id": "11111111-1111-4111-8111-111111111111",
            "userPrincipalName": "alice@contoso.com",
            "mail": "alice@contoso.com",
            "mailNickname": "alice",
            "displayName": "Alice Smith",
            "proxyAddresses": ["SMTP:alice@contoso.com"],
            "onPremisesImmutableId": "1wfM9xV8fUSHbcAbDlqeOA==",
            "onPremisesSyncEnabled": True,
            "onPremisesLastSyncDateTime": "2026-11-27T05:40:00Z",
            "onPremisesSamAccountName": "alice",
            "onPremisesUserPrincipalName": "alice@contoso.com",
            "accountEnabled": True,
            "createdDateTime": "2020-01-10T00:00:00Z",
            "userType": "Member",
        }
    ],
}

DOMAINS = {
    "value": [
        {
            "id": "contoso.onmicrosoft.com",
            "isVerified": True,
            "isInitial": True,
            "isDefault": False,
            "authenticationType": "Managed",
        },
        {
            "id": "contoso.com",
            "isVerified": True,
            "isInitial": False,
            "isDefault": True,
            "authenticationType": "Managed",
        },
    ]
}


@pytest.fixture
def exports(tmp_path: Path) -> dict[str, Path]:
    files = {
        "ad": tmp_path / "ad.ldf",
        "cloud": tmp_path / "users.json",
        "domains": tmp_path / "domains.json",
    }
    files["ad"].write_text(LDIF, encoding="utf-8")
    files["cloud"].write_text(json.dumps(USERS), encoding="utf-8")
    files["domains"].write_text(json.dumps(DOMAINS), encoding="utf-8")
    return files


def run_import(exports: dict[str, Path], out: Path, *extra: str) -> int:
    return main(
        [
            "import",
            "--ad",
            str(exports["ad"]),
            "--cloud",
            str(exports["cloud"]),
            "--domains",
            str(exports["domains"]),
            "--taken-at",
            "2026-11-27T06:00:00Z",
            "--out",
            str(out),
            *extra,
        ]
    )


def test_anchor_json_has_exactly_the_contract_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["anchor", "SV+BWQuSnU6tbIK1OqTBAg==", "--json"]) == 0
    forms = json.loads(capsys.readouterr().out)
    assert forms == {
        "guid": "59815f49-920b-4e9d-ad6c-82b53aa4c102",
        "immutable_id": "SV+BWQuSnU6tbIK1OqTBAg==",
        "hex": "495f81590b929d4ead6c82b53aa4c102",
        "ldap_filter": "\\49\\5F\\81\\59\\0B\\92\\9D\\4E\\AD\\6C\\82\\B5\\3A\\A4\\C1\\02",
        "connector_dn": "CN={53562B42575175536E55367462494B314F71544241673D3D}",
    }


def test_unparseable_anchor_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["anchor", "System.Byte[]"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "System.Byte[]" in err
    assert "Traceback" not in err


def test_explain_prints_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    """Every code in the catalogue explains itself; an unknown code is a usage error."""
    assert main(["explain"]) == 0
    listing = capsys.readouterr().out
    codes = [line.split()[0] for line in listing.splitlines()]
    assert "anchor-held-by-deleted" in codes
    for code in codes:
        assert main(["explain", code]) == 0
        text = capsys.readouterr().out
        assert text.startswith(code)
        assert "How to fix:" in text
    assert main(["explain", "no-such-code"]) == 2


def test_import_then_analyze(
    exports: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run directory is created, analyze writes findings and exits by --fail-on."""
    run = tmp_path / "run"
    assert run_import(exports, run) == 0
    assert (run / "manifest.json").is_file()
    assert (run / "snapshot" / "ad_users.parquet").is_file()
    capsys.readouterr()
    # bob@contoso.local: unverified suffix (medium) and an invalid TLD (medium); nothing high.
    assert main(["analyze", str(run), "--fail-on", "high"]) == 0
    out = capsys.readouterr().out
    assert "upn-suffix-unverified" in out
    for name in ("findings.csv", "findings.json", "findings.parquet"):
        assert (run / name).is_file()
    assert main(["analyze", str(run), "--fail-on", "medium"]) == 1
    findings = json.loads((run / "findings.json").read_text())["findings"]
    bob = {f["code"] for f in findings if f["ad_upn"] == "bob@contoso.local"}
    assert {"upn-suffix-unverified", "unmatched-ad"} <= bob
    assert not [f for f in findings if f["ad_upn"] == "alice@contoso.com"]


def test_bad_input_is_one_line_and_writes_nothing(
    exports: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exports["cloud"].write_text('{"value": [ {"id": "x", ', encoding="utf-8")
    run = tmp_path / "run"
    assert run_import(exports, run) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("syncaudit: error:")]
    assert len(errors) == 1
    assert "Traceback" not in err
    assert f"{exports['cloud']}:1: invalid JSON" in errors[0]
    assert not run.exists()
    assert list(tmp_path.glob(".run*")) == []


def test_existing_run_directory_is_refused(
    exports: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert run_import(exports, run) == 0
    assert run_import(exports, run) == 2
    assert "already exists" in capsys.readouterr().err


def test_bad_fail_on_and_missing_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(tmp_path / "nope")]) == 2
    assert "no such run directory" in capsys.readouterr().err


def test_console_script_runs_outside_the_repo(tmp_path: Path) -> None:
    """The installed entry point works from any directory (package data, imports)."""
    result = subprocess.run(
        [sys.executable, "-m", "audit.cli", "anchor", "1wfM9xV8fUSHbcAbDlqeOA=="],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "f7cc07d7-7c15-447d-876d-c01b0e5a9e38" in result.stdout


def test_directory_values_cannot_drive_the_terminal() -> None:
    """An escape sequence in a DN or a Graph error text (OSC 52 writes the clipboard) reaches
    the operator's terminal only as visible text; tabs stay."""
    from audit.cli import terminal_safe

    assert terminal_safe("CN=x\x1b]52;c;ZXZpbA==\x07,DC=y\u202e\ttab") == (
        "CN=x\\u001b]52;c;ZXZpbA==\\u0007,DC=y\\u202e\ttab"
    )


def test_version_prints_the_installed_distribution_version(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from importlib.metadata import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"syncaudit {version('syncaudit')}\n"


def test_version_falls_back_to_pyproject_when_not_installed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.metadata
    import tomllib

    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    expected = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"syncaudit {expected}\n"


def test_version_from_the_console_script(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "audit.cli", "--version"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("syncaudit ")


def test_config_error_is_one_line_with_file_and_line_exit_2(
    exports: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A secret in [email] stops the run before anything is written, naming file and line."""
    config = tmp_path / "syncaudit.toml"
    config.write_text('[run]\nkeep_runs = 4\n\n[email]\nsmtp_pass = "hunter2"\n')
    run = tmp_path / "run"
    assert run_import(exports, run, "--config", str(config)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"syncaudit: error: {config}:5: email.smtp_pass: ")
    assert "password_env" in err
    assert "hunter2" not in err
    assert not run.exists()


def test_explain_shows_the_overlap_policy_of_a_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "invalid-attribute"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "One cause, one line:" in out
    assert "reported as upn-suffix-unverified, not also as invalid-attribute" in out


def test_the_read_meter_rewrites_one_line_on_a_terminal() -> None:
    """On a real terminal (a pty) each update overwrites the last; a stage line ends it."""
    master, slave = os.openpty()
    with os.fdopen(slave, "w", encoding="utf-8") as terminal:
        meter = ReadMeter(terminal)
        meter.update(ReadProgress("corp", 1000, 1, 0.5, 1))
        meter.update(ReadProgress("corp", 12000, 12, 2.0, 2, finished=True))
        meter.line("writing the run")
        written = os.read(master, 4096).decode()
    os.close(master)
    assert written.replace("\r\n", "\n") == (
        "\rcorp: 1,000 objects read in 1 page, 2,000/s"
        "\rcorp: 12,000 objects read in 12 pages, 6,000/s (attempt 2)"
        "\n"
    )


def test_the_read_meter_writes_a_line_every_few_seconds_to_a_log(tmp_path: Path) -> None:
    log = tmp_path / "collect.log"
    with log.open("w", encoding="utf-8") as stream:
        meter = ReadMeter(stream)
        for seconds in (0.1, 1.0, 5.2, 6.0):
            meter.update(ReadProgress("corp", int(seconds * 1000), 1, seconds, 1))
        meter.update(ReadProgress("corp", 7000, 7, 7.0, 1, finished=True))
    assert log.read_text().splitlines() == [
        "corp: 100 objects read in 1 page, 1,000/s",
        "corp: 5,200 objects read in 1 page, 1,000/s",
        "corp: 7,000 objects read in 7 pages, 1,000/s",
    ]
