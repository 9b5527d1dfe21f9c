"""Credentials for the live Entra read (issue 13): the azure-identity class ``[entra] auth``
names, built as production builds it, and the one line an authentication failure becomes.

- ``client_secret``: ClientSecretCredential, the secret from ``client_secret_env`` (a variable's
  name) or ``client_secret_file`` (its trailing newline dropped); never in any message.
- ``certificate``: CertificateCredential from ``certificate_file`` (key and certificate PEM).
- ``managed_identity``: ManagedIdentityCredential (``client_id`` = a user-assigned identity).
- ``device_code``: DeviceCodeCredential, a delegated interactive run (the only kind of token
  that can read the matching switches, FACTS.md section 3); the prompt goes to ``prompt``.

``authority_host`` is passed as the credential's ``authority``; instance discovery is turned
off only for an authority that is not one of Microsoft's clouds (azure-identity's
AzureAuthorityHosts: public, China, US Government), i.e. a private stand-in such as the test
emulator, which MSAL would otherwise refuse as unknown. ``ca_file`` verifies the token calls
as it verifies the Graph calls.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from azure.identity import (
    AzureAuthorityHosts,
    CertificateCredential,
    ClientSecretCredential,
    DeviceCodeCredential,
    ManagedIdentityCredential,
)

from audit.config import EntraSettings, config_relative
from audit.errors import InputError, Origin, short
from audit.sources.secrets import read_secret, scrub

AUTH_KINDS = ("client_secret", "certificate", "managed_identity", "device_code")
MICROSOFT_AUTHORITIES = frozenset(
    {
        AzureAuthorityHosts.AZURE_PUBLIC_CLOUD,
        AzureAuthorityHosts.AZURE_CHINA,
        AzureAuthorityHosts.AZURE_GOVERNMENT,
    }
)

# AADSTS codes an operator can fix, with what to fix ("Microsoft Entra authentication and
# authorization error codes", https://learn.microsoft.com/entra/identity-platform/
# reference-error-codes; the client-credentials error response: https://learn.microsoft.com/
# entra/identity-platform/v2-oauth2-client-creds-grant-flow#error-response).
_AADSTS_FIXES = {
    7000215: "invalid client secret: put the secret's value (not its id) in {secret_where}",
    7000222: "the client secret has expired: create a new one and put it in {secret_where}",
    7000218: "no client secret or certificate was sent: set [entra] auth and its credential",
    700016: (
        "application {client_id} is not in tenant {tenant_id}: check [entra] client_id and "
        "tenant_id, and that an administrator consented to the app in that tenant"
    ),
    90002: "tenant {tenant_id} was not found: check [entra] tenant_id (and authority_host)",
    900023: "tenant {tenant_id} is not a valid tenant id or domain: check [entra] tenant_id",
    700027: (
        "the certificate in {certificate_file} is not registered on application {client_id}: "
        "upload its public part to the app registration"
    ),
    700024: "the client assertion is outside its valid time: check this host's clock",
    1002012: "the token scope was refused: check [entra] graph_url",
    50034: "the signed-in user does not exist in tenant {tenant_id}",
    50126: "wrong user name or password for the device-code sign-in",
}
_AADSTS_RE = re.compile(r"AADSTS(\d+)")
_ERRNO_RE = re.compile(r"\[Errno -?\d+\] ([^'\"\])]+)")


@dataclass(frozen=True)
class EntraAuth:
    """A credential and the secret every message is scrubbed of (None for the kinds that
    hold none in this process)."""

    credential: Any
    secret: str | None
    kind: str

    def close(self) -> None:
        close = getattr(self.credential, "close", None)
        if callable(close):
            close()


# MSAL serves a cached access token only while it has more than five minutes to live, and asks
# for a new one after that (msal's ClientApplication._acquire_token_silent_from_cache_and_
# possibly_refresh_it: "if expires_in < 5*60: # Then consider it expired"; azure-identity's
# DEFAULT_REFRESH_OFFSET = 300); a token held here follows the same rule, so a read longer than
# a token's lifetime renews it before Graph would answer 401.
RENEW_BEFORE = 300.0


class HeldToken:
    """A credential's token held between requests while it has more than RENEW_BEFORE seconds
    to live. kiota asks the credential for a token on every request, and azure-identity and
    MSAL then look it up in their cache again (about a fifth of the SDK's own cost per page,
    benchmarks/RESULTS.md); a claims challenge (continuous access evaluation) always goes
    to the credential."""

    def __init__(self, credential: Any) -> None:
        self.credential = credential
        self.held: dict[tuple[Any, ...], Any] = {}

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> Any:
        key = (scopes, tenant_id, enable_cae)
        held = self.held.get(key)
        fresh = held is not None and held.expires_on - time.time() > RENEW_BEFORE
        if fresh and claims is None and not kwargs:
            return held
        token = self.credential.get_token(
            *scopes, claims=claims, tenant_id=tenant_id, enable_cae=enable_cae, **kwargs
        )
        self.held[key] = token
        return token


def authority_is_microsoft(authority_host: str) -> bool:
    host = urlsplit(authority_host if "//" in authority_host else f"https://{authority_host}")
    return (host.hostname or "").lower() in MICROSOFT_AUTHORITIES


def origin_of(entra: EntraSettings) -> Origin:
    return Origin(f"[entra] {entra.authority_host}")


def client_secret(entra: EntraSettings, environ: Mapping[str, str]) -> str:
    """The secret from client_secret_env or client_secret_file, never echoed."""
    return read_secret(
        origin_of(entra),
        env_key="client_secret_env",
        env_name=entra.client_secret_env,
        file_key="client_secret_file",
        file_name=entra.client_secret_file,
        environ=environ,
        what="the app's client secret",
        missing="[entra] auth = client_secret but no client_secret_env or client_secret_file: "
        "say where the secret is",
    )


def entra_auth(
    entra: EntraSettings,
    environ: Mapping[str, str],
    *,
    prompt: Callable[[str], None] | None = None,
) -> EntraAuth:
    """The configured credential, or InputError naming the setting that is missing."""
    origin = origin_of(entra)
    kind = entra.auth.strip().lower()
    if kind not in AUTH_KINDS:
        raise InputError(origin, f"[entra] auth = {entra.auth!r}: one of {', '.join(AUTH_KINDS)}")
    if kind != "managed_identity":
        for key in ("tenant_id", "client_id"):
            if not getattr(entra, key).strip():
                raise InputError(origin, f"[entra] {key} is empty: give the app registration's")
    where: dict[str, Any] = {"authority": entra.authority_host}
    if not authority_is_microsoft(entra.authority_host):
        where["disable_instance_discovery"] = True
    if entra.ca_file:
        path = Path(entra.ca_file).expanduser()
        if not path.is_file():
            raise InputError(origin, f"ca_file {path} does not exist or is not a file")
        where["connection_verify"] = str(path)
    if kind == "client_secret":
        secret = client_secret(entra, environ)
        credential: Any = ClientSecretCredential(entra.tenant_id, entra.client_id, secret, **where)
        return EntraAuth(credential, secret, kind)
    if kind == "certificate":
        if not entra.certificate_file:
            raise InputError(
                origin, "[entra] auth = certificate but certificate_file is empty: give the PEM"
            )
        path = Path(entra.certificate_file).expanduser()
        if not path.is_file():
            raise InputError(origin, f"certificate_file {path} does not exist or is not a file")
        credential = CertificateCredential(
            entra.tenant_id, entra.client_id, certificate_path=str(path), **where
        )
        return EntraAuth(credential, None, kind)
    if kind == "managed_identity":
        identity = ManagedIdentityCredential(client_id=entra.client_id.strip() or None)
        return EntraAuth(identity, None, kind)

    def show(verification_uri: str, user_code: str, expires_on: Any) -> None:
        line = f"sign in at {verification_uri} with the code {user_code}"
        if prompt is not None:
            prompt(line)
        else:
            print(line, flush=True)

    credential = DeviceCodeCredential(
        client_id=entra.client_id, tenant_id=entra.tenant_id, prompt_callback=show, **where
    )
    return EntraAuth(credential, None, kind)


def auth_failure(exc: BaseException, entra: EntraSettings, auth: EntraAuth) -> InputError:
    """One line for a failed token request: what Entra said and what to fix."""
    text = " ".join(scrub(str(exc), auth.secret).split())
    origin = origin_of(entra)
    found = _AADSTS_RE.search(text)
    if found:
        code = int(found.group(1))
        secret_where = (
            f"client_secret_env {entra.client_secret_env}"
            if entra.client_secret_env
            else f"client_secret_file {entra.client_secret_file}"
        )
        fix = _AADSTS_FIXES.get(code)
        if fix is not None:
            return InputError(
                origin,
                f"token request refused (AADSTS{code}): "
                + fix.format(
                    secret_where=secret_where,
                    client_id=entra.client_id,
                    tenant_id=entra.tenant_id,
                    certificate_file=entra.certificate_file,
                ),
            )
        message = text[found.start() :].split(" Trace ID:", 1)[0]
        return InputError(origin, f"token request refused: {short(message, 240)}")
    if "Unable to get authority configuration" in text:
        # MSAL's words when the authority's OpenID configuration is refused: Entra answers an
        # unknown tenant there (AADSTS90002) before any credential is sent
        return InputError(
            origin,
            f"tenant {entra.tenant_id} is not known at {entra.authority_host}: check [entra] "
            "tenant_id (the tenant's id or a verified domain) and authority_host",
        )
    errno = _ERRNO_RE.search(text)
    if errno or "connect" in text.lower() or "certificate verify failed" in text.lower():
        why = errno.group(1).strip() if errno else short(text, 240)
        if "certificate verify failed" in text.lower():
            why = "its TLS certificate was not verified: set [entra] ca_file to its CA"
        return InputError(
            origin,
            f"cannot reach the authority {entra.authority_host} ({why}): check [entra] "
            "authority_host",
        )
    return InputError(
        origin,
        f"no token from {entra.authority_host} ({type(exc).__name__}: {short(text, 240)}): check "
        "[entra] authority_host, tenant_id and the credential",
    )


def resolved_files(entra: EntraSettings, source_path: str | None) -> EntraSettings:
    """Relative file paths are read from the config file's directory (as [[ad]]'s are)."""

    def path(value: str) -> str:
        return config_relative(value, source_path)

    return replace(
        entra,
        ca_file=path(entra.ca_file),
        certificate_file=path(entra.certificate_file),
        client_secret_file=path(entra.client_secret_file),
    )
