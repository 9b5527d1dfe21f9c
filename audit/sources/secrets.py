"""A secret a live source needs (a bind password, an app's client secret), read from where the
config points: an environment variable (`*_env`, its name) or a file (`*_file`, its trailing
newline dropped). Never from the TOML, never echoed: every failure names the key and the
variable or file, not the value."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from audit.errors import InputError, Origin


def read_secret(
    origin: Origin,
    *,
    env_key: str,
    env_name: str,
    file_key: str,
    file_name: str,
    environ: Mapping[str, str],
    what: str,
    missing: str,
) -> str:
    """The secret from the variable `env_name` (key `env_key`), else the file `file_name`
    (key `file_key`); InputError when neither is set (`missing` says what to do), or the one
    set is empty or unreadable. `what` names the secret in the message ("the bind password")."""
    if env_name:
        value = environ.get(env_name, "")
        if not value:
            raise InputError(
                origin,
                f"{env_key}: the environment variable {env_name} is not set or empty: put "
                f"{what} in it",
            )
        return value
    if file_name:
        path = Path(file_name).expanduser()
        try:
            value = path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise InputError(
                origin, f"{file_key} {path}: cannot read it ({exc.strerror or exc})"
            ) from None
        except UnicodeDecodeError:
            raise InputError(origin, f"{file_key} {path}: not UTF-8 text") from None
        if not value:
            raise InputError(origin, f"{file_key} {path} is empty")
        return value
    raise InputError(origin, missing)


def scrub(text: str, secret: str | None, shown: str = "<secret>") -> str:
    """The secret can never be printed, whatever a library puts in its messages."""
    return text.replace(secret, shown) if secret else text
