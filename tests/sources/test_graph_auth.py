"""HeldToken: the token kept between requests follows MSAL's five-minute rule, and a claims
challenge always reaches the credential."""

from __future__ import annotations

import time
from typing import Any

from azure.core.credentials import AccessToken

from audit.sources.graph_auth import RENEW_BEFORE, HeldToken


class Issuer:
    """A credential giving tokens that live `lifetime` seconds, counting its calls (a stand-in
    for azure-identity's credential, whose own cache is exercised against the emulator)."""

    def __init__(self, lifetime: float) -> None:
        self.lifetime = lifetime
        self.calls: list[dict[str, Any]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls.append({"scopes": scopes, **kwargs})
        return AccessToken(f"token-{len(self.calls)}", int(time.time() + self.lifetime))


def test_a_token_with_more_than_five_minutes_left_is_held() -> None:
    issuer = Issuer(lifetime=RENEW_BEFORE + 60)
    held = HeldToken(issuer)
    first = held.get_token("https://graph/.default", enable_cae=True)
    assert held.get_token("https://graph/.default", enable_cae=True) is first
    assert len(issuer.calls) == 1


def test_a_token_near_its_end_is_asked_for_again() -> None:
    issuer = Issuer(lifetime=RENEW_BEFORE - 1)
    held = HeldToken(issuer)
    tokens = {held.get_token("https://graph/.default").token for _ in range(3)}
    assert tokens == {"token-1", "token-2", "token-3"}


def test_claims_and_other_scopes_go_to_the_credential() -> None:
    issuer = Issuer(lifetime=3600)
    held = HeldToken(issuer)
    held.get_token("https://graph/.default", enable_cae=True)
    held.get_token("https://graph/.default", enable_cae=True, claims='{"access_token":{}}')
    held.get_token("https://other/.default", enable_cae=True)
    held.get_token("https://graph/.default", enable_cae=False)
    assert [c.get("claims") for c in issuer.calls] == [None, '{"access_token":{}}', None, None]
    assert [c["scopes"][0] for c in issuer.calls] == [
        "https://graph/.default",
        "https://graph/.default",
        "https://other/.default",
        "https://graph/.default",
    ]
