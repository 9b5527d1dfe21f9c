"""Config loading: every documented key is accepted, and mistakes are one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.config import load_settings, settings_from_dict
from audit.errors import ConfigError
from audit.model import Severity

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "syncaudit.example.toml"


def test_example_config_loads_with_every_key() -> None:
    """The shipped example is valid and its values arrive where the code reads them."""
    settings = load_settings(EXAMPLE)
    assert settings.run.fail_on is Severity.high
    assert settings.ad[0].name == "corp"
    assert settings.ad[0].exclude_ous == ("OU=Disabled,DC=corp,DC=example,DC=com",)
    assert settings.ad[0].anchor_attribute == "mS-DS-ConsistencyGuid"
    assert settings.ad[0].tls_verify is True
    assert settings.thresholds.stale_sync_hours == 3
    assert settings.report.company == "Contoso"
    assert settings.entra.features == {}
    assert settings.not_used_yet == []


LIVE_TABLES = {"[[ad]]", "[entra]"}  # their commented keys are live examples


def test_every_commented_later_key_of_the_example_is_valid_and_says_it_is_not_used(
    tmp_path: Path,
) -> None:
    """Uncommenting the example's commented keys gives a valid config, and exactly one warning
    line per "later" key naming what will read it: nobody believes a setting took effect. The
    commented [[ad]] and [entra] keys are read by `collect` (examples of live sources): no
    warning."""
    text = EXAMPLE.read_text(encoding="utf-8")
    later, table = [], ""
    for line in text.splitlines():
        if line.startswith("["):
            table = line.split("#")[0].strip()
        elif line.startswith("# ") and "=" in line.split("#")[1] and table not in LIVE_TABLES:
            later.append(line)
    switches = {
        "block_soft_match",
        "block_hard_match_takeover",
        "soft_match_on_upn",
        "synchronize_upn_for_managed_users",
    }
    keys = [k for line in later if (k := line[2:].split("=")[0].strip()) not in switches]
    enabled = "\n".join(
        line[2:] if line.startswith("# ") and "=" in line.split("#")[1] else line
        for line in text.splitlines()
    )
    path = tmp_path / "later.toml"
    path.write_text(enabled, encoding="utf-8")
    lines = load_settings(path).not_used_yet
    assert sorted(line.split("] ")[1].split(" is ")[0] for line in lines) == sorted(keys)


def test_every_key_is_read_so_none_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from audit.cli import main

    path = tmp_path / "c.toml"
    # max_drop_percent (the safety guard), keep_runs (retention of `run`) and [email] (its
    # mail) are all read now: no warning for any of them
    path.write_text(
        "[thresholds]\nmax_drop_percent = 5\n[run]\nkeep_runs = 3\n"
        '[email]\nsmtp_host = "mail.contoso.com"\n'
    )
    assert main(["analyze", str(tmp_path / "missing-run"), "--config", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"syncaudit: error: {tmp_path / 'missing-run'}: no such run directory"]


@pytest.mark.parametrize("key", ["password", "client_secret"])
def test_literal_secrets_are_refused(tmp_path: Path, key: str) -> None:
    """A secret typed into the TOML is an error that names the key, never a value in use."""
    path = tmp_path / "c.toml"
    path.write_text(f'[[ad]]\nname = "x"\n{key} = "hunter2"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert f"ad[0].{key}" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_features_from_config_are_marked_as_config() -> None:
    settings = settings_from_dict({"entra": {"features": {"block_soft_match": True}}})
    assert settings.entra.features["block_soft_match"].value is True
    assert settings.entra.features["block_soft_match"].source == "config"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[run]\nfail_on = 'urgent'\n", "run.fail_on"),
        ("[thresholds]\nstale_sync_hours = 'x'\n", "thresholds.stale_sync_hours"),
        ("[thresholds]\nbogus = 1\n", "unknown key 'bogus' in [thresholds]"),
        ("[[ad]]\nname='a'\n[[ad]]\nname='a'\n", "names must be unique"),
        ("[[ad]]\ninclude_ous = 'OU=x'\n", "include_ous must be a list"),
        ("[run\n", "not valid TOML"),
    ],
)
def test_config_mistakes_name_the_key(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert expected in message
    assert str(path) in message
    assert "\n" not in message


def test_missing_config_file() -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings("/nonexistent/syncaudit.toml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[smtp]\nhost = 'hunter2'\n", "unknown table 'smtp'"),
        ("[run]\nsmtp_host = 'hunter2'\n", "unknown key 'smtp_host' in [run]"),
        ("[[ad]]\nurl = 'ldaps://svc:hunter2@dc01.corp.example.com'\n", "ad[0].url: user info"),
        ("[email]\nsmtp_user = 'hunter2'\n", "unknown key 'smtp_user' in [email]"),
        ("[schedule]\nwebhook = 'https://x.example/hunter2'\n", "unknown key 'webhook'"),
    ],
)
def test_places_a_secret_could_hide_are_refused(tmp_path: Path, text: str, expected: str) -> None:
    """The config is copied into every run's manifest: unknown tables, unknown [run] keys and
    URLs with user:password are errors, and the message never repeats the secret."""
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert expected in str(info.value)
    assert "hunter2" not in str(info.value)


# --- [schedule] / [email], inline secrets, URLs with user info, line numbers and suggestions ---

DOCUMENTED_SCHEDULE_AND_EMAIL = """\
[schedule]
cron = "0 6 * * mon"
timezone = "UTC"

[email]
smtp_host = "smtp.example.com"
smtp_port = 587
security = "starttls"
username_env = "SYNCAUDIT_SMTP_USER"
password_env = "SYNCAUDIT_SMTP_PASSWORD"
ca_file = ""
sender = "syncaudit@example.com"
to = ["it-management@example.com"]
attach = ["pdf", "ps1", "xlsx"]
"""


def load_text(tmp_path: Path, text: str) -> tuple[Path, str]:
    """Write `text` as a config and return (path, the one-line error it raises)."""
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert "\n" not in message
    return path, message


def test_documented_schedule_and_email_keys_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(DOCUMENTED_SCHEDULE_AND_EMAIL, encoding="utf-8")
    settings = load_settings(path)
    assert settings.schedule.cron == "0 6 * * mon"
    assert settings.schedule.timezone == "UTC"
    assert settings.email.smtp_host == "smtp.example.com"
    assert settings.email.smtp_port == 587
    assert settings.email.security == "starttls"
    assert settings.email.password_env == "SYNCAUDIT_SMTP_PASSWORD"
    assert settings.email.to == ("it-management@example.com",)
    assert settings.email.attach == ("pdf", "ps1", "xlsx")


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        ('[email]\nsmtp_hots = "smtp.example.com"\n', 2, "unknown key 'smtp_hots' in [email]"),
        ('[schedule]\ncorn = "0 6 * * mon"\n', 2, "unknown key 'corn' in [schedule]"),
        ("[schedule]\ncron = '0 6 * * mon'\nretries = 3\n", 3, "unknown key 'retries'"),
        ("[email]\nsmtp_port = '587'\n", 2, "email.smtp_port must be an integer"),
        ("[email]\nsmtp_port = 70000\n", 2, "email.smtp_port must be between 1 and 65535"),
        ("[email]\nsecurity = 'ssl'\n", 2, "email.security must be one of"),
        ("[email]\nto = 'a@example.com'\n", 2, "email.to must be a list"),
        ("[email]\nsender = 'nobody'\n", 2, "email.sender must be an email address"),
        ("[email]\nattach = ['pdf', 'exe']\n", 2, "email.attach: unknown format 'exe'"),
        ("[email]\npassword_env = 'my pass!'\n", 2, "email.password_env must name"),
        ("[schedule]\ncron = '0 6 * *'\n", 2, "schedule.cron must have 5 fields"),
        ("[schedule]\ntimezone = 'Europe/Amsterdm'\n", 2, "schedule.timezone: unknown"),
        ("[schedule]\ncron = 6\n", 2, "schedule.cron must be a string"),
    ],
)
def test_schedule_and_email_are_checked_like_every_table(
    tmp_path: Path, text: str, line: int, expected: str
) -> None:
    """[schedule] and [email] are copied into every run manifest too: unknown keys and wrong
    types are refused with the file, the line and the key, as everywhere else."""
    path, message = load_text(tmp_path, text)
    assert message.startswith(f"{path}:{line}: ")
    assert expected in message


@pytest.mark.parametrize(
    ("text", "where", "hint"),
    [
        ('[email]\nsmtp_pass = "hunter2"\n', "email.smtp_pass", "password_env"),
        ('[schedule]\nauth_token = "hunter2"\n', "schedule.auth_token", "_env"),
        ('[email]\nsmtpPassword = "hunter2"\n', "email.smtpPassword", "password_env"),
        ('[entra]\nclient_secret = "hunter2"\n', "entra.client_secret", "client_secret_env"),
        ('[entra]\nprivate_key = "hunter2"\n', "entra.private_key", "_file"),
        ('[report]\napi_key = "hunter2"\n', "report.api_key", "_env"),
        ('[[ad]]\nname = "corp"\npasswd = "hunter2"\n', "ad[0].passwd", "password_env"),
        ('[smtp]\npass = "hunter2"\n', "smtp.pass", "_env"),
        ('[run]\nsmtp_password_value = "hunter2"\n', "run.smtp_password_value", "_env"),
    ],
)
def test_inline_secrets_are_refused_with_the_env_or_file_form(
    tmp_path: Path, text: str, where: str, hint: str
) -> None:
    path, message = load_text(tmp_path, text)
    line = text.count("\n")
    assert message.startswith(f"{path}:{line}: {where}: ")
    assert "_env" in message and "_file" in message
    assert hint in message
    assert "hunter2" not in message


@pytest.mark.parametrize(
    ("table", "key", "url"),
    [
        ("[[ad]]", "url", r"ldaps://svc:hunter2@dc01.corp.example"),
        ("[[ad]]", "url", r"ldaps:svc:hunter2@dc01"),
        ("[[ad]]", "url", r"ldaps://svc@dc01"),
        ("[[ad]]", "url", r"ldaps:\\svc:hunter2@dc01"),
        ("[[ad]]", "url", r"ldaps:\\\\svc:hunter2@dc01"),
        ("[[ad]]", "url", r"ldaps:/\svc:hunter2@dc01"),
        ("[[ad]]", "url", r"ldaps://dc01\@evil"),
        ("[[ad]]", "url", r"LDAPS://svc:hunter2@DC01"),
        ("[[ad]]", "url", r"ldaps://svc:hunter2@dc01:636"),
        ("[[ad]]", "url", r"ldaps://svc:hun/ter2@dc01"),
        ("[[ad]]", "url", r"ldaps://svc:hun?ter2@dc01"),
        ("[[ad]]", "url", r"ldaps://svc:hun#ter2@dc01"),
        ("[entra]", "graph_url", r"https://app:hunter2@graph.microsoft.com/v1.0"),
        ("[entra]", "graph_url", r"https://graph.microsoft.com\@evil.example/v1.0"),
        ("[entra]", "graph_url", r"https://app:12/hunter2@graph.microsoft.com/v1.0"),
        ("[entra]", "authority_host", r"https:\\app:hunter2@login.microsoftonline.com"),
        ("[email]", "smtp_host", r"user:hunter2@smtp.example.com"),
        ("[email]", "smtp_host", r"smtp://user:hunter2@smtp.example.com"),
        ("[email]", "smtp_host", r"\\user:hunter2@smtp.example.com"),
    ],
)
def test_urls_with_user_info_are_refused_without_printing_it(
    tmp_path: Path, table: str, key: str, url: str
) -> None:
    """User info is found by parsing (backslashes read as slashes, a missing '//' tried
    both ways), not by looking for '@'; the message masks it."""
    path, message = load_text(tmp_path, f"{table}\n{key} = '{url}'\n")
    assert message.startswith(f"{path}:2: ")
    assert key in message
    assert "hunter2" not in message
    assert "ter2" not in message


def test_url_user_info_is_masked_in_the_message(tmp_path: Path) -> None:
    _path, message = load_text(tmp_path, '[[ad]]\nurl = "ldaps://svc:hunter2@dc01.corp.example"\n')
    assert "ldaps://***@dc01.corp.example" in message
    assert "user info" in message


@pytest.mark.parametrize(
    ("table", "key", "url", "expected"),
    [
        ("[[ad]]", "url", "https://dc01.corp.example", "scheme 'https'"),
        ("[[ad]]", "url", "dc01.corp.example", "no scheme"),
        ("[[ad]]", "url", "ldaps://", "no host"),
        ("[[ad]]", "url", "ldaps:///DC=corp", "no host"),
        ("[[ad]]", "url", "ldaps://dc01:99999", "port"),
        ("[[ad]]", "url", "ldaps://dc01/DC=corp", "path"),
        ("[[ad]]", "url", "ldaps://dc01 corp", "space"),
        ("[entra]", "graph_url", "http://graph.microsoft.com/v1.0", "scheme 'http'"),
        ("[entra]", "graph_url", "ldaps://graph.microsoft.com", "scheme 'ldaps'"),
        ("[entra]", "authority_host", "https://login.microsoftonline.com?x=1", "query"),
        ("[entra]", "authority_host", "", "empty"),
        ("[email]", "smtp_host", "smtp.example.com:25", "smtp_port"),
        ("[email]", "smtp_host", "smtp.example.com/x", "host name"),
    ],
)
def test_url_scheme_and_host_are_checked(
    tmp_path: Path, table: str, key: str, url: str, expected: str
) -> None:
    path, message = load_text(tmp_path, f"{table}\n{key} = '{url}'\n")
    assert message.startswith(f"{path}:2: ")
    assert expected in message


@pytest.mark.parametrize(
    ("table", "key", "url"),
    [
        ("[[ad]]", "url", "ldaps://dc01.corp.example.com"),
        ("[[ad]]", "url", "LDAP://dc01.corp.example.com:389/"),
        ("[[ad]]", "url", "ldaps://[2001:db8::1]:636"),
        ("[[ad]]", "url", ""),
        ("[entra]", "graph_url", "https://graph.microsoft.us/v1.0"),
        ("[entra]", "authority_host", "https://login.microsoftonline.us/"),
        ("[email]", "smtp_host", "smtp.example.com"),
        ("[email]", "smtp_host", "[2001:db8::25]"),
    ],
)
def test_good_urls_are_accepted(tmp_path: Path, table: str, key: str, url: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f"{table}\n{key} = '{url}'\n", encoding="utf-8")
    load_settings(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[run]\ndata_dir = 'x'\ntresholds = 3\n",
            ":3: unknown key 'tresholds' in [run]; did you mean 'thresholds'?",
        ),
        (
            "[run]\nkeep_runs = 1\n\n[tresholds]\nstale_sync_hours = 1\n",
            ":4: unknown table 'tresholds'; did you mean 'thresholds'?",
        ),
        (
            "[thresholds]\nstale_sync_hour = 1\n",
            ":2: unknown key 'stale_sync_hour' in [thresholds]; did you mean 'stale_sync_hours'?",
        ),
        (
            "[[ad]]\nname = 'a'\n\n[[ad]]\nname = 'b'\nanchor_atribute = 'objectGUID'\n",
            ":6: unknown key 'anchor_atribute' in [[ad]] number 2; "
            "did you mean 'anchor_attribute'?",
        ),
        (
            "[entra]\ntenant_id = 'x'\nfeatures.block_soft_mach = true\n",
            ":3: unknown key 'block_soft_mach' in [entra.features]; "
            "did you mean 'block_soft_match'?",
        ),
        (
            "[entra.features]\n'soft_match_on_upm' = true\n",
            ":2: unknown key 'soft_match_on_upm' in [entra.features]; "
            "did you mean 'soft_match_on_upn'?",
        ),
        (
            '[report]\ntitle = """\ncompnay = 1\n"""\n"compnay" = "x"\n',
            ":5: unknown key 'compnay' in [report]; did you mean 'company'?",
        ),
        (
            "[report]\ncompany = 'x'\n[run]\ncompany = 'y'\n",
            ":4: unknown key 'company' in [run]",
        ),
        ("[run]\nzzz = 1\n", ":2: unknown key 'zzz' in [run]"),
        ("title = 'x'\n", ":1: unknown key 'title' at the top level; it belongs under [report]"),
    ],
)
def test_unknown_keys_name_the_line_and_the_nearest_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    path, message = load_text(tmp_path, text)
    assert message == f"{path}{expected}"


def test_unknown_key_without_a_findable_line_omits_it(tmp_path: Path) -> None:
    """Keys inside an inline table are not searched for: the message has no line number."""
    path, message = load_text(tmp_path, "[entra]\nfeatures = { block_soft_mach = true }\n")
    assert message == (
        f"{path}: unknown key 'block_soft_mach' in [entra.features]; "
        "did you mean 'block_soft_match'?"
    )


def test_unknown_key_in_a_stored_config_has_no_line() -> None:
    """A run's manifest is re-read as a dict: same message, without a line number."""
    with pytest.raises(ConfigError) as info:
        settings_from_dict({"run": {"tresholds": 1}}, "run/manifest.json")
    assert str(info.value) == (
        "run/manifest.json: unknown key 'tresholds' in [run]; did you mean 'thresholds'?"
    )


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("[run]\nkeep_runs = 1\nfail_on = \n", 3),
        ("[run\n", 1),
        ("[run]\nkeep_runs = 1\nkeep_runs = 2\n", 3),
        ('[report]\ntitle = "abc\n', 2),
    ],
)
def test_toml_syntax_errors_name_the_line(tmp_path: Path, text: str, line: int) -> None:
    path, message = load_text(tmp_path, text)
    assert message.startswith(f"{path}:{line}: not valid TOML: ")
    assert "(at line" not in message


def test_config_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(b"[report]\ncompany = '\xff'\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value).startswith(f"{path}:2: not UTF-8")


@pytest.mark.parametrize(
    "url",
    [
        "ldaps://svc:S3cretPW%40dc01",  # percent-encoded @
        "ldaps://svc:S3cretPW\uff20dc01",  # fullwidth @
        "ldaps://dc01:S3cretPW",  # a password where the port goes
    ],
)
def test_encoded_user_info_and_a_password_in_the_port_are_never_echoed(url: str) -> None:
    with pytest.raises(ConfigError) as err:
        settings_from_dict({"ad": [{"name": "corp", "url": url}]})
    assert "S3cretPW" not in str(err.value) and "\n" not in str(err.value)
