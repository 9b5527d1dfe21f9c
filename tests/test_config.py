"""Config loading: every documented key is accepted, and mistakes are one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.config import ConfigError, load_settings, settings_from_dict
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


@pytest.mark.parametrize("key", ["password", "client_secret"])
def test_literal_secrets_are_refused(tmp_path: Path, key: str) -> None:
    """A secret typed into the TOML is an error that names the key, never a value in use."""
    path = tmp_path / "c.toml"
    path.write_text(f'[[ad]]\nname = "x"\n{key} = "hunter2"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert f"ad.{key}" in str(info.value)
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
        ("[thresholds]\nbogus = 1\n", "unknown keys ['bogus']"),
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
        ("[smtp]\npass = 'hunter2'\n", "unknown tables ['smtp']"),
        ("[run]\nsmtp_password_value = 'hunter2'\n", "[run] unknown keys"),
        ("[[ad]]\nurl = 'ldaps://svc:hunter2@dc01.corp.example.com'\n", "ad[0].url: credentials"),
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
