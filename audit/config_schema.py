"""The config's schema and its checks: every table, its keys and how each value is checked
(types, URLs without user info, secrets only by reference), with each mistake phrased as one
line: ``<file>:<line>: <what>``, with the nearest known key when one is unknown. config.py turns
the checked tables into Settings."""

from __future__ import annotations

import difflib
import json
import re
import unicodedata
import zoneinfo
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

from audit.config_lines import KeyPath, key_lines
from audit.errors import ConfigError
from audit.model import Severity

# --- the schema: every table, its keys and how each value is checked ------------------------

Checker = Callable[[Any], Any]


class _Invalid(ValueError):
    """A value's problem, phrased to follow its key: "must be ..." or a sentence."""


@dataclass(frozen=True)
class _Table:
    keys: Mapping[str, Checker | _Table]


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid("must be a string")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid("must be true or false")
    return value


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid("must be an integer")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid("must be a number")
    return float(value)


def _positive_int(value: Any) -> int:
    if _int(value) < 1:
        raise _Invalid("must be 1 or more")
    return int(value)


def _seconds(value: Any) -> float:
    seconds = _number(value)
    if not 0 < seconds <= 3600:
        raise _Invalid("must be seconds, more than 0 and at most 3600")
    return seconds


def _port(value: Any) -> int:
    if not 1 <= _int(value) <= 65535:
        raise _Invalid("must be between 1 and 65535")
    return int(value)


def _severity(value: Any) -> Severity:
    try:
        return Severity.parse(_str(value))
    except ValueError as exc:
        raise _Invalid(str(exc)) from None


def _choice(*options: str) -> Checker:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in options:
            raise _Invalid(f"must be one of {', '.join(options)}")
        return value

    return check


def _strings(what: str) -> Checker:
    def check(value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise _Invalid(f"must be a list of {what}")
        return tuple(value)

    return check


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _env_name(value: Any) -> str:
    # Never echoed: a secret pasted here by mistake stays out of the message.
    if _str(value) and not _ENV_NAME.fullmatch(value):
        raise _Invalid(
            "must name an environment variable (letters, digits and _), not hold the secret"
        )
    return str(value)


def _unprintable(text: str) -> bool:
    return any(c.isspace() or not c.isprintable() for c in text)


def _masked(value: str, *, host_only: bool = False) -> str:
    """The value for an error message: user info (anything before the last '@', also a
    percent-encoded or fullwidth one) and a port that is not a number shown as ***."""
    if "@" not in _decoded(value):
        return _port_masked(value)
    if "@" not in value:
        return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*:[/\\]*)?.*$", r"\1***", value)
    if host_only:
        return "***" + value[value.rindex("@") :]
    scheme = re.match(r"[A-Za-z][A-Za-z0-9+.-]*:[/\\]*", value)
    prefix = scheme.group() if scheme else ""
    return prefix + "***" + value[value.rindex("@") :]


def _readings(value: str) -> Iterator[SplitResult]:
    """Every way a client could read `value` as a URL: as written and with backslashes as
    slashes (WHATWG parsers treat '\\' as '/' for http(s)); with its authority marker '//'
    as written, missing ("ldaps:svc@dc01"), or absent because it is a bare host."""
    for text in dict.fromkeys((value, value.replace("\\", "/"))):
        for candidate in (text, "//" + text):
            try:
                parts = urlsplit(candidate)
            except ValueError:
                continue
            yield parts
            if parts.scheme and not parts.netloc:
                rest = candidate[len(parts.scheme) + 1 :].lstrip("/")
                try:
                    yield urlsplit(f"{parts.scheme}://{rest}")
                except ValueError:
                    continue


def _decoded(value: str) -> str:
    """`value` as a lenient client may read it: percent-decoded, fullwidth forms folded."""
    return unicodedata.normalize("NFKC", unquote(value))


def _port_masked(value: str) -> str:
    # "ldaps://dc01:PW" puts a password where the port goes: never echo a non-numeric port.
    return re.sub(r"(://[^/:@]*):([^/\d][^/]*)", r"\1:***", value)


def _has_user_info(value: str) -> bool:
    return any(
        "@" in parts.netloc for text in (value, _decoded(value)) for parts in _readings(text)
    )


def _quoted(text: str) -> str:
    # Not repr(): a backslash in the value is shown as typed, not doubled.
    return f"'{text}'"


def _url(*schemes: str, path_allowed: bool, empty_ok: bool, credentials: str) -> Checker:
    """A URL with one of `schemes`, a host, no user info, no query or fragment; `credentials`
    says where the user and password go instead."""
    forms = " or ".join(f"{s}://host" for s in schemes)

    def check(value: Any) -> str:
        url = _str(value)
        if url == "":
            if empty_ok:
                return ""
            raise _Invalid("is empty; leave the key out to use the default")
        shown = _quoted(_masked(url))
        if _has_user_info(url):
            raise _Invalid(
                f"user info in {shown}: a user or password is never read from a URL; {credentials}"
            )
        if _unprintable(url):
            raise _Invalid(f"{shown} contains a space or control character")
        if "\\" in url:
            raise _Invalid(f"{shown} contains a backslash; URLs use '/'")
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            raise _Invalid(f"{shown} has an invalid host or port") from None
        scheme = parts.scheme.lower()
        if not scheme:
            raise _Invalid(f"{shown} has no scheme; write {forms}")
        if scheme not in schemes:
            raise _Invalid(f"{shown}: scheme {scheme!r} does not belong here; write {forms}")
        if not parts.hostname:
            raise _Invalid(f"{shown} has no host; write {forms}")
        if parts.query or parts.fragment or "?" in url or "#" in url:
            raise _Invalid(f"{shown} must not have a query or fragment")
        if "@" in parts.path:
            raise _Invalid(f"{shown} has '@' in its path (user info, or a mistyped URL)")
        if not path_allowed and parts.path not in ("", "/"):
            raise _Invalid(f"{shown} must not have a path; write {forms}")
        return url

    return check


def _smtp_host(value: Any) -> str:
    """A host name or IP literal; the port is smtp_port, credentials come from *_env keys."""
    host = _str(value)
    if host == "":
        return ""
    shown = _quoted(_masked(host, host_only=True))
    if _has_user_info(host):
        raise _Invalid(
            f"user info in {shown}: a user or password is never read from the config; "
            "use username_env and password_env or password_file"
        )
    if _unprintable(host) or "\\" in host:
        raise _Invalid(f"{shown} must be a host name, like smtp.example.com")
    try:
        parts = urlsplit("//" + host)
        port = parts.port
    except ValueError:
        raise _Invalid(f"{shown} must be a host name, like smtp.example.com") from None
    if port is not None or parts.netloc.endswith(":"):
        raise _Invalid(f"{shown}: the port goes in smtp_port")
    if not parts.hostname or parts.netloc != host:
        raise _Invalid(f"{shown} must be a host name, like smtp.example.com, not a URL")
    return host


_CRON_FIELD = re.compile(r"[A-Za-z0-9*/,?#-]+")


def _cron(value: Any) -> str:
    fields = _str(value).split()
    if value and len(fields) != 5:
        raise _Invalid('must have 5 fields (minute hour day month weekday), like "0 6 * * mon"')
    for index, item in enumerate(fields, start=1):
        if not _CRON_FIELD.fullmatch(item):
            raise _Invalid(f"field {index} is not a cron field")
    return str(value)


def _timezone(value: Any) -> str:
    if not _str(value):
        return ""
    try:
        zoneinfo.ZoneInfo(value)
        return str(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        pass
    known = zoneinfo.available_timezones()
    if not known:  # no time zone database on this host to check against
        return str(value)
    close = difflib.get_close_matches(value, sorted(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else " (an IANA name like Europe/Amsterdam)"
    raise _Invalid(f"unknown time zone {value!r}{hint}")


def _address(value: Any) -> str:
    if _str(value) == "":
        return ""
    _name, address = parseaddr(value)
    local, _at, domain = address.rpartition("@")
    if _unprintable(address) or not local or not domain or any(ord(c) < 32 for c in value):
        raise _Invalid("must be an email address")
    return str(value)


def _addresses(value: Any) -> tuple[str, ...]:
    items = _strings("email addresses")(value)
    for item in items:
        try:
            _address(item)
        except _Invalid:
            raise _Invalid("must be a list of email addresses") from None
    return tuple(items)


ATTACHABLE = ("html", "pdf", "xlsx", "csv", "json", "ps1")


def _attach(value: Any) -> tuple[str, ...]:
    items: tuple[str, ...] = _strings("formats")(value)
    for item in items:
        if item not in ATTACHABLE:
            raise _Invalid(f"unknown format {item!r}; use some of {', '.join(ATTACHABLE)}")
    return items


_FEATURES = _Table(
    {
        "block_soft_match": _bool,
        "block_hard_match_takeover": _bool,
        "soft_match_on_upn": _bool,
        "synchronize_upn_for_managed_users": _bool,
    }
)

_ENTRA_CREDENTIALS = (
    "the app signs in with client_id and client_secret_env, client_secret_file or certificate_file"
)

SCHEMA: Mapping[str, _Table] = {
    "run": _Table({"data_dir": _str, "keep_runs": _int, "fail_on": _severity, "waivers": _str}),
    "ad": _Table(
        {
            "name": _str,
            "url": _url(
                "ldaps",
                "ldap",
                path_allowed=False,
                empty_ok=True,
                credentials="put the account in bind_dn and its password in password_env or "
                "password_file",
            ),
            "start_tls": _bool,
            "ca_file": _str,
            "tls_verify": _bool,
            "bind_dn": _str,
            "password_env": _env_name,
            "password_file": _str,
            "base_dn": _str,
            "include_ous": _strings("DNs"),
            "exclude_ous": _strings("DNs"),
            "filter": _str,
            "anchor_attribute": _str,
            "page_size": _positive_int,
            "attempts": _positive_int,
            "retry_wait": _seconds,
            "timeout": _positive_int,
        }
    ),
    "entra": _Table(
        {
            "tenant_id": _str,
            "client_id": _str,
            "auth": _choice("client_secret", "certificate", "managed_identity", "device_code"),
            "client_secret_env": _env_name,
            "client_secret_file": _str,
            "certificate_file": _str,
            "authority_host": _url(
                "https", path_allowed=False, empty_ok=False, credentials=_ENTRA_CREDENTIALS
            ),
            "graph_url": _url(
                "https", path_allowed=True, empty_ok=False, credentials=_ENTRA_CREDENTIALS
            ),
            "ca_file": _str,
            "full_every": _positive_int,
            "features": _FEATURES,
        }
    ),
    "thresholds": _Table(
        {
            "stale_sync_hours": _number,
            "stale_object_days": _number,
            "unmatched_grace_days": _number,
            "max_drop_percent": _number,
            "deletion_threshold": _positive_int,
            "health_good_percent": _number,
            "health_warn_percent": _number,
        }
    ),
    "report": _Table(
        {"company": _str, "title": _str, "logo": _str, "pdf_rows_per_code": _int, "redact": _bool}
    ),
    "remediation": _Table({"allow_role_changes": _bool}),
    "schedule": _Table({"cron": _cron, "timezone": _timezone}),
    "email": _Table(
        {
            "smtp_host": _smtp_host,
            "smtp_port": _port,
            "security": _choice("starttls", "tls", "none"),
            "username_env": _env_name,
            "password_env": _env_name,
            "password_file": _str,
            "ca_file": _str,
            "sender": _address,
            "to": _addresses,
            "attach": _attach,
        }
    ),
}


# --- checking the parsed TOML ---------------------------------------------------------------


def check_tables(data: Mapping[str, Any], ctx: ConfigContext) -> dict[str, Any]:
    """Parsed TOML -> its tables with every value checked (the [[ad]] tables as a list); raises
    ConfigError, placed by `ctx`, for a literal secret, an unknown table or key, or a bad value."""
    _reject_inline_secrets(data, (), ctx)
    checked: dict[str, Any] = {}
    for name, value in data.items():
        if name not in SCHEMA:
            raise ctx.unknown((), name, is_table=_is_table(value))
        if name == "ad":
            tables = [value] if isinstance(value, Mapping) else value
            if not isinstance(tables, list) or not all(isinstance(t, Mapping) for t in tables):
                raise ctx.error(("ad",), "ad must be an array of tables ([[ad]])")
            paths: list[KeyPath] = (
                [("ad",)] if isinstance(value, Mapping) else [("ad", i) for i in range(len(tables))]
            )
            checked["ad"] = [
                _check_table(t, SCHEMA["ad"], p, ctx) for t, p in zip(tables, paths, strict=True)
            ]
            continue
        if not isinstance(value, Mapping):
            raise ctx.error((name,), f"{name} must be a table ([{name}])")
        checked[name] = _check_table(value, SCHEMA[name], (name,), ctx)
    return checked


def _is_table(value: Any) -> bool:
    return isinstance(value, Mapping) or (
        isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)
    )


def _check_table(
    table: Mapping[str, Any], spec: _Table, path: KeyPath, ctx: ConfigContext
) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    for key, value in table.items():
        here = (*path, key)
        rule = spec.keys.get(key)
        if rule is None:
            raise ctx.unknown(path, key, is_table=False)
        if isinstance(rule, _Table):
            if not isinstance(value, Mapping):
                raise ctx.error(here, f"{_dotted(here)} must be a table")
            checked[key] = _check_table(value, rule, here, ctx)
            continue
        try:
            checked[key] = rule(value)
        except _Invalid as exc:
            text = str(exc)
            where = _dotted(here)
            message = f"{where} {text}" if text.startswith("must ") else f"{where}: {text}"
            raise ctx.error(here, message) from None
    return checked


# --- inline secrets -----------------------------------------------------------------------------

_SECRET_WORDS = ("password", "passwd", "passphrase", "secret", "token", "apikey", "privatekey")
_SECRET_TOKENS = frozenset({"pass", "pwd", "pw", "key", "credential", "credentials"})
_REFERENCE_SUFFIXES = frozenset({"env", "file"})


def _words(key: str) -> list[str]:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key)
    return [w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if w]


def _looks_secret(key: str) -> bool:
    """password, smtp_pass, auth_token, api_key, smtpPassword... but not password_env."""
    words = _words(key)
    if not words or words[-1] in _REFERENCE_SUFFIXES:
        return False
    joined = "".join(words)
    return any(w in joined for w in _SECRET_WORDS) or any(w in _SECRET_TOKENS for w in words)


def _reject_inline_secrets(table: Mapping[str, Any], path: KeyPath, ctx: ConfigContext) -> None:
    for key, value in table.items():
        here = (*path, key)
        if _looks_secret(key):
            raise ctx.error(here, f"{_dotted(here)}: {_secret_advice(path)}")
        if isinstance(value, Mapping):
            _reject_inline_secrets(value, here, ctx)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    _reject_inline_secrets(item, (*here, index), ctx)


def _secret_advice(section: KeyPath) -> str:
    spec = _spec_for(section)
    references = [
        key
        for key in (spec.keys if spec else {})
        if _words(key)[-1] in _REFERENCE_SUFFIXES and _looks_secret(key.rpartition("_")[0])
    ]
    use = " or ".join(references) if references else "a key ending in _env or _file"
    return (
        f"secrets are not read from the config file; use {use} "
        "(the *_env form names an environment variable, the *_file form a file holding it)"
    )


def _spec_for(path: KeyPath) -> _Table | None:
    names = [p for p in path if isinstance(p, str)]
    if not names or names[0] not in SCHEMA:
        return None
    spec: _Table = SCHEMA[names[0]]
    for name in names[1:]:
        inner = spec.keys.get(name)
        if not isinstance(inner, _Table):
            return None
        spec = inner
    return spec


# --- error messages: file, line, key, nearest known key -------------------------------------


class ConfigContext:
    """The config being checked, for its error messages: where it came from, the line of each
    key (from its TOML text, when there is one) and how its tables are named."""

    def __init__(self, origin: str, text: str | None, data: Mapping[str, Any]) -> None:
        self.origin = origin
        self.text = text
        ad = data.get("ad")
        self.ad_count = len(ad) if isinstance(ad, list) else 1
        self._lines: dict[KeyPath, int] | None = None

    def line(self, path: KeyPath) -> int | None:
        if self.text is None:
            return None
        if self._lines is None:
            self._lines = key_lines(self.text)
        return self._lines.get(path)

    def error(self, path: KeyPath, message: str) -> ConfigError:
        line = self.line(path)
        return ConfigError(
            f"{self.origin}:{line}: {message}" if line else f"{self.origin}: {message}"
        )

    def unknown(self, section: KeyPath, key: str, *, is_table: bool) -> ConfigError:
        spec = _spec_for(section) if section else None
        if not section:
            what = f"unknown table {key!r}" if is_table else f"unknown key {key!r} at the top level"
            candidates = list(SCHEMA)
        else:
            what = f"unknown key {key!r} in {self.label(section)}"
            candidates = list(spec.keys) if spec else []
        close = difflib.get_close_matches(key, candidates, n=1)
        if not close and section:
            # A table's name typed where a key goes, e.g. "tresholds" under [run].
            close = difflib.get_close_matches(key, list(SCHEMA), n=1)
        if close:
            hint = f"; did you mean {close[0]!r}?"
        else:
            owners = [name for name, table in SCHEMA.items() if key in table.keys]
            hint = (
                f"; it belongs under {self.label((owners[0],))}" if not section and owners else ""
            )
        return self.error((*section, key), what + hint)

    def label(self, section: KeyPath) -> str:
        if section and section[0] == "ad" and len(section) <= 2:
            number = section[1] if len(section) == 2 and isinstance(section[1], int) else 0
            return "[[ad]]" if self.ad_count == 1 else f"[[ad]] number {number + 1}"
        return f"[{_dotted(section)}]"


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _dotted(path: KeyPath) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            name = part if _BARE_KEY.fullmatch(part) else json.dumps(part)
            text += f".{name}" if text else name
    return text
