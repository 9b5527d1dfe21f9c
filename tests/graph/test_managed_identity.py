"""`[entra] auth = "managed_identity"` through azure-identity's own ManagedIdentityCredential,
as on an App Service or Functions host: the credential finds the host's token endpoint in
IDENTITY_ENDPOINT and IDENTITY_HEADER (azure-identity's AppServiceCredential, which MSAL serves:
GET <endpoint>?api-version=2019-08-01&resource=<scope> with the X-IDENTITY-HEADER header).
The endpoint here is a small local stand-in handing out the Graph emulator's app-only tokens;
nothing in the reader knows it is a test."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from audit.config import EntraSettings, Settings
from audit.sources.graph import read_entra
from tests.graph.emulator import GraphEmulator

IDENTITY_HEADER = "host-secret-4b1d"


class IdentityEndpoint:
    """The host's managed identity endpoint: one token per GET carrying the right header."""

    def __init__(self, emulator: GraphEmulator) -> None:
        self.emulator = emulator
        self.requests: list[dict[str, list[str]]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                endpoint.requests.append(query)
                if self.headers.get("X-IDENTITY-HEADER") != IDENTITY_HEADER:
                    self.answer(401, {"error": "missing or wrong X-IDENTITY-HEADER"})
                    return
                token = endpoint.emulator.issue_token()
                self.answer(
                    200,
                    {
                        "access_token": token,
                        "expires_on": str(int(time.time()) + 3600),
                        "resource": query.get("resource", [""])[0],
                        "token_type": "Bearer",
                    },
                )

            def answer(self, status: int, body: dict[str, str]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/msi/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def identity_endpoint(
    graph_emulator: GraphEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[IdentityEndpoint]:
    endpoint = IdentityEndpoint(graph_emulator)
    monkeypatch.setenv("IDENTITY_ENDPOINT", endpoint.url)
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
    yield endpoint
    endpoint.close()


def test_a_managed_identity_reads_the_tenant(
    graph_emulator: GraphEmulator, identity_endpoint: IdentityEndpoint, tmp_path: Path
) -> None:
    client = graph_emulator.client_config()
    settings = Settings(
        entra=EntraSettings(
            tenant_id=client.tenant_id,
            auth="managed_identity",
            authority_host=client.authority_host,
            graph_url=f"{client.graph_url}/v1.0",
            ca_file=str(client.ca_file),
        )
    )
    side = read_entra(settings, raw_dir=tmp_path)
    assert sorted(side.users["upn"]) == [
        "ada@contoso.example",
        "bob@contoso.example",
        "carol@contoso.example",
        "dave@contoso.example",
    ]
    # the credential asked the host for a token for Graph (the scope's resource: its scheme and
    # host, as for https://graph.microsoft.com), not for anything else
    graph_host = urlsplit(client.graph_url).hostname
    assert identity_endpoint.requests
    assert {q["resource"][0] for q in identity_endpoint.requests} == {f"https://{graph_host}"}
    assert all(r.authorization for r in graph_emulator.requests("/v1.0/"))


def test_a_device_code_sign_in_reads_the_switches(
    graph_emulator: GraphEmulator, tmp_path: Path
) -> None:
    """auth = device_code: a delegated token, the only kind Graph lets read the matching
    switches; the sign-in prompt goes to the operator's progress lines."""
    client = graph_emulator.client_config()
    settings = Settings(
        entra=EntraSettings(
            tenant_id=client.tenant_id,
            client_id=client.client_id,
            auth="device_code",
            authority_host=client.authority_host,
            graph_url=f"{client.graph_url}/v1.0",
            ca_file=str(client.ca_file),
        )
    )
    lines: list[str] = []
    side = read_entra(settings, raw_dir=tmp_path, progress=lines.append)
    (prompt,) = [line for line in lines if "microsoft.com/devicelogin" in line]
    assert prompt.startswith("sign in at https://microsoft.com/devicelogin with the code ")
    switches = graph_emulator.tenant.sync["features"]  # what the tenant says
    features = side.tenant.features
    assert {
        name: (feature.value, feature.source)
        for name, feature in vars(features).items()
        if feature is not None
    } == {
        "block_soft_match": (switches["blockSoftMatchEnabled"], "graph"),
        "block_hard_match_takeover": (
            switches["blockCloudObjectTakeoverThroughHardMatchEnabled"],
            "graph",
        ),
        "soft_match_on_upn": (switches["softMatchOnUpnEnabled"], "graph"),
        "synchronize_upn_for_managed_users": (
            switches["synchronizeUpnForManagedUsersEnabled"],
            "graph",
        ),
    }
