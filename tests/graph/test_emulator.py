"""The Graph emulator itself, driven with plain httpx over TLS (verified against its CA): each
documented behaviour the live Entra read relies on answers exactly as Microsoft documents it."""

from __future__ import annotations

import base64
import ssl
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from tests.graph.emulator import GraphEmulator
from tests.graph.tenant import (
    DEFAULT_USER_PROPERTIES,
    GLOBAL_ADMINISTRATOR,
    Tenant,
    generated_tenant,
    user,
)


def trusting(emulator: GraphEmulator) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=emulator.tls.ca_file)


def client(emulator: GraphEmulator, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(verify=trusting(emulator), headers=headers, timeout=10)


def graph(emulator: GraphEmulator, *, delegated: bool = False) -> httpx.Client:
    return client(emulator, emulator.issue_token(delegated=delegated))


def pages(http: httpx.Client, url: str) -> list[dict[str, Any]]:
    """Every page of a query, following @odata.nextLink verbatim."""
    out = []
    next_url: str | None = url
    while next_url:
        response = http.get(next_url)
        assert response.status_code == 200, response.text
        out.append(response.json())
        next_url = out[-1].get("@odata.nextLink")
    return out


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()["error"]
    assert set(body) == {"code", "message", "innerError"}
    assert set(body["innerError"]) == {"date", "request-id", "client-request-id"}
    return response.status_code, body["code"], body["message"]


# --- TLS and auth -------------------------------------------------------------------------------


def test_tls_is_verified_against_the_emulators_ca_only(graph_emulator: GraphEmulator) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{graph_emulator.base}/v1.0/users", verify=True)
    with client(graph_emulator) as http:
        host = graph_emulator.base.replace("127.0.0.1", "localhost")
        assert http.get(f"{host}/v1.0/users").status_code == 401  # SAN localhost too


def test_openid_configuration_names_the_tenants_token_endpoint(
    graph_emulator: GraphEmulator,
) -> None:
    config = graph_emulator.client_config()
    with client(graph_emulator) as http:
        for tenant in (config.tenant_id, "contoso.onmicrosoft.com", "organizations"):
            found = http.get(
                f"{config.authority_host}/{tenant}/v2.0/.well-known/openid-configuration"
            )
            assert found.status_code == 200
            assert found.json()["token_endpoint"] == f"{config.authority}/oauth2/v2.0/token"
            assert found.json()["issuer"] == f"{config.authority}/v2.0"
        unknown = http.get(
            f"{config.authority_host}/fabrikam.example/v2.0/.well-known/openid-configuration"
        )
    assert unknown.status_code == 400
    assert unknown.json()["error"] == "invalid_tenant"
    assert unknown.json()["error_codes"] == [90002]
    assert unknown.json()["error_description"].startswith(
        "AADSTS90002: Tenant 'fabrikam.example' not found."
    )


def token_request(emulator: GraphEmulator, **form: str) -> httpx.Response:
    config = emulator.client_config()
    body = {
        "grant_type": "client_credentials",
        "client_id": config.client_id,
        "scope": config.scope,
    }
    body.update(form)
    tenant = body.pop("tenant", config.tenant_id)
    with client(emulator) as http:
        return http.post(f"{config.authority_host}/{tenant}/oauth2/v2.0/token", data=body)


def test_client_secret_gets_a_bearer_token_that_reads_graph(graph_emulator: GraphEmulator) -> None:
    config = graph_emulator.client_config()
    answer = token_request(graph_emulator, client_secret=config.client_secret or "")
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"token_type", "expires_in", "ext_expires_in", "access_token"}
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 3599)
    with client(graph_emulator, body["access_token"]) as http:
        assert http.get(f"{config.graph_url}/v1.0/users").status_code == 200


@pytest.mark.parametrize(
    ("form", "status", "error", "code"),
    [
        ({"client_secret": "s3cret-VALUE"}, 401, "invalid_client", 7000215),
        (
            {"client_secret": "x", "client_id": "11111111-2222-3333-4444-555555555555"},
            400,
            "unauthorized_client",
            700016,
        ),
        ({"client_secret": "x", "tenant": "fabrikam.example"}, 400, "invalid_tenant", 90002),
        ({"client_secret": "x", "scope": "User.Read.All"}, 400, "invalid_scope", 1002012),
        ({}, 401, "invalid_client", 7000218),
    ],
    ids=["wrong-secret", "unknown-app", "unknown-tenant", "scope-without-default", "no-credential"],
)
def test_token_errors_are_entras(
    graph_emulator: GraphEmulator, form: dict[str, str], status: int, error: str, code: int
) -> None:
    answer = token_request(graph_emulator, **form)
    assert answer.status_code == status
    body = answer.json()
    assert (body["error"], body["error_codes"]) == (error, [code])
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert "s3cret-VALUE" not in answer.text  # a secret is never echoed


def assertion(emulator: GraphEmulator, pem: bytes, client_id: str, x5t: str, **claims: Any) -> str:
    key = serialization.load_pem_private_key(pem, password=None)
    now = int(time.time())
    payload = {
        "aud": f"{emulator.base}/{emulator.tenant.tenant_id}/oauth2/v2.0/token",
        "iss": client_id,
        "sub": client_id,
        "jti": str(uuid.uuid4()),
        "nbf": now,
        "exp": now + 600,
        **claims,
    }
    return jwt.encode(payload, key, algorithm="RS256", headers={"x5t": x5t})  # type: ignore[arg-type]


def test_certificate_client_assertion_is_verified(graph_emulator: GraphEmulator) -> None:
    app = graph_emulator.register_app(secret=False, certificate=True)
    cert = app.certificates[0]
    pem = cert.pem_file.read_bytes()
    form = {
        "client_id": app.client_id,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    }
    good = assertion(graph_emulator, pem, app.client_id, cert.x5t)
    assert token_request(graph_emulator, **form, client_assertion=good).status_code == 200
    other = graph_emulator.register_app(secret=False, certificate=True).certificates[0]
    cases = {
        700027: assertion(graph_emulator, other.pem_file.read_bytes(), app.client_id, cert.x5t),
        700024: assertion(graph_emulator, pem, app.client_id, cert.x5t, exp=int(time.time()) - 60),
        700021: assertion(
            graph_emulator, pem, app.client_id, cert.x5t, aud="https://elsewhere/token"
        ),
    }
    for code, value in cases.items():
        answer = token_request(graph_emulator, **form, client_assertion=value)
        assert (answer.status_code, answer.json()["error_codes"]) == (401, [code])
    unknown = assertion(graph_emulator, pem, app.client_id, other.x5t)
    answer = token_request(graph_emulator, **form, client_assertion=unknown)
    assert answer.json()["error_description"].startswith(
        "AADSTS700027: The certificate with identifier used to sign the client assertion is not "
        "registered"
    )


def test_graph_wants_a_valid_bearer_on_every_call(graph_emulator: GraphEmulator) -> None:
    url = f"{graph_emulator.base}/v1.0/users"
    with client(graph_emulator) as http:
        assert error_of(http.get(url)) == (
            401,
            "InvalidAuthenticationToken",
            "Access token is empty.",
        )
        assert http.get(url).headers["WWW-Authenticate"].startswith('Bearer realm=""')
        forged = http.get(url, headers={"Authorization": "Bearer eyJ.forged.token"})
        assert error_of(forged)[:2] == (401, "InvalidAuthenticationToken")
    with graph(graph_emulator) as http:
        assert http.get(url).status_code == 200
        graph_emulator.expire_tokens()
        assert error_of(http.get(url)) == (
            401,
            "InvalidAuthenticationToken",
            "Lifetime validation failed, the token is expired.",
        )


def test_a_token_expires_after_its_lifetime(graph_emulator: GraphEmulator) -> None:
    token = graph_emulator.issue_token(lifetime=-1)
    with client(graph_emulator, token) as http:
        assert error_of(http.get(f"{graph_emulator.base}/v1.0/domains"))[0] == 401


def test_an_app_without_the_permission_is_denied(graph_emulator: GraphEmulator) -> None:
    app = graph_emulator.register_app(roles=frozenset({"User.Read.All"}))
    with client(graph_emulator, graph_emulator.issue_token(app)) as http:
        assert http.get(f"{graph_emulator.base}/v1.0/users").status_code == 200
        assert error_of(http.get(f"{graph_emulator.base}/v1.0/domains")) == (
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )


# --- users --------------------------------------------------------------------------------------


def test_users_without_select_have_the_default_property_set(graph_emulator: GraphEmulator) -> None:
    with graph(graph_emulator) as http:
        body = http.get(f"{graph_emulator.base}/v1.0/users").json()
    assert body["@odata.context"] == f"{graph_emulator.base}/v1.0/$metadata#users"
    assert "@odata.nextLink" not in body
    assert [list(u) for u in body["value"]] == [list(DEFAULT_USER_PROPERTIES)] * 3
    assert [u["userPrincipalName"] for u in body["value"]] == [
        "ada@contoso.example",
        "bob@contoso.example",
        "carol@contoso.example",
    ]


def test_select_returns_exactly_the_selected_properties_and_id(
    graph_emulator: GraphEmulator,
) -> None:
    ada = next(graph_emulator.tenant.users.live())
    select = "onPremisesImmutableId,ProxyAddresses,onPremisesSyncEnabled"
    url = f"{graph_emulator.base}/v1.0/users?$select={select}"
    with graph(graph_emulator) as http:
        body = http.get(url).json()
    assert body["@odata.context"].endswith(
        "$metadata#users(onPremisesImmutableId,proxyAddresses,onPremisesSyncEnabled)"
    )
    assert body["value"][0] == {
        "onPremisesImmutableId": ada["onPremisesImmutableId"],
        "proxyAddresses": ["SMTP:ada@contoso.example"],
        "onPremisesSyncEnabled": True,
        "id": ada["id"],
    }
    assert body["value"][2]["onPremisesSyncEnabled"] is None  # carol: never synced


def test_select_of_an_unknown_or_beta_only_property_is_a_400(graph_emulator: GraphEmulator) -> None:
    with graph(graph_emulator) as http:
        v1 = http.get(f"{graph_emulator.base}/v1.0/users?$select=id,onPremisesObjectIdentifier")
        beta = http.get(f"{graph_emulator.base}/beta/users?$select=id,onPremisesObjectIdentifier")
    assert error_of(v1) == (
        400,
        "BadRequest",
        "Parsing OData Select and Expand failed: Could not find a property named "
        "'onPremisesObjectIdentifier' on type 'microsoft.graph.user'.",
    )
    ada = next(graph_emulator.tenant.users.live())
    assert beta.json()["value"][0] == {
        "id": ada["id"],
        "onPremisesObjectIdentifier": ada["onPremisesObjectIdentifier"],
    }


@pytest.mark.parametrize("top", ["0", "1000", "x"])
def test_top_outside_1_to_999_is_a_400(graph_emulator: GraphEmulator, top: str) -> None:
    with graph(graph_emulator) as http:
        answer = http.get(f"{graph_emulator.base}/v1.0/users?$top={top}")
    assert error_of(answer) == (
        400,
        "Request_UnsupportedQuery",
        f"Invalid page size specified: '{top}'. Must be between 1 and 999 inclusive.",
    )


def test_paging_follows_opaque_next_links_to_every_user(
    graph_emulator_for: Callable[[Tenant], GraphEmulator],
) -> None:
    emulator = graph_emulator_for(generated_tenant(2500))
    with graph(emulator) as http:
        got = pages(http, f"{emulator.base}/v1.0/users?$select=id,onPremisesImmutableId&$top=999")
    assert [len(p["value"]) for p in got] == [999, 999, 502]
    link = got[0]["@odata.nextLink"]
    token = link.rsplit("$skiptoken=", 1)[1]
    assert link.startswith(f"{emulator.base}/v1.0/users?$select=id,onPremisesImmutableId&$top=999&")
    # nothing a client could read or compute: random, so each page's token differs
    following = got[1]["@odata.nextLink"].rsplit("$skiptoken=", 1)[1]
    assert len(token) == len(following) == 32 and token != following
    ids = [u["id"] for p in got for u in p["value"]]
    assert ids == [u["id"] for u in emulator.tenant.users.live()]
    with graph(emulator) as http:
        # one character changed (a random token may itself start with "A")
        bad = http.get(link.replace(token, ("B" if token[0] == "A" else "A") + token[1:]))
    assert error_of(bad)[:2] == (400, "Directory_ExpiredPageToken")


def test_generated_users_carry_every_property_entra_reads(
    graph_emulator_for: Callable[[Tenant], GraphEmulator],
) -> None:
    from audit.sources.entra import BOOL_PROPERTIES, TEXT_PROPERTIES, TIME_PROPERTIES

    emulator = graph_emulator_for(generated_tenant(1200))
    names = [
        *TEXT_PROPERTIES,
        *BOOL_PROPERTIES,
        *TIME_PROPERTIES,
        "proxyAddresses",
        "onPremisesProvisioningErrors",
    ]
    with graph(emulator) as http:
        got = pages(http, f"{emulator.base}/beta/users?$select={','.join(names)}&$top=999")
    users = [u for p in got for u in p["value"]]
    assert users == [{n: u.get(n) for n in [*names, "id"]} for u in emulator.tenant.users.live()]
    synced, cloud = users[1], users[5]
    object_guid = uuid.UUID(synced["onPremisesObjectIdentifier"])
    assert base64.b64decode(synced["onPremisesImmutableId"]) == object_guid.bytes_le
    assert (synced["onPremisesSyncEnabled"], cloud["onPremisesSyncEnabled"]) == (True, None)
    assert users[3]["onPremisesProvisioningErrors"] == [
        {
            "category": "PropertyConflict",
            "occurredDateTime": "2026-11-29T22:10:00Z",
            "propertyCausingError": "ProxyAddresses",
            "value": "smtp:user0000003@contoso.example",
        }
    ]
    assert (users[50]["accountEnabled"], users[10]["employeeId"]) == (False, None)


def test_empty_pages_switch(graph_emulator: GraphEmulator) -> None:
    graph_emulator.empty_pages = True
    with graph(graph_emulator) as http:
        got = pages(http, f"{graph_emulator.base}/v1.0/users?$select=id&$top=2")
    assert [len(p["value"]) for p in got] == [2, 0, 1, 0, 0]
    assert ["@odata.nextLink" in p for p in got] == [True, True, True, True, False]


def test_deleted_users_need_the_cast_and_keep_their_anchor(graph_emulator: GraphEmulator) -> None:
    (dave,) = graph_emulator.tenant.users.deleted.values()
    with graph(graph_emulator) as http:
        for cast in ("microsoft.graph.user", "graph.user"):
            select = "id,userPrincipalName,onPremisesImmutableId,deletedDateTime"
            url = f"{graph_emulator.base}/v1.0/directory/deletedItems/{cast}?$select={select}"
            body = http.get(url).json()
            assert body["value"] == [
                {
                    "id": dave["id"],
                    "userPrincipalName": "dave@contoso.example",
                    "onPremisesImmutableId": dave["onPremisesImmutableId"],
                    "deletedDateTime": "2026-12-01T10:00:00Z",
                }
            ]
        no_cast = http.get(f"{graph_emulator.base}/v1.0/directory/deletedItems")
    assert no_cast.status_code == 400


# --- delta --------------------------------------------------------------------------------------


def delta_round(http: httpx.Client, url: str, **headers: str) -> tuple[list[dict[str, Any]], str]:
    """Every entry of one delta round and the deltaLink that ends it."""
    entries: list[dict[str, Any]] = []
    while True:
        response = http.get(url, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        entries.extend(body["value"])
        if "@odata.deltaLink" in body:
            assert "@odata.nextLink" not in body
            return entries, body["@odata.deltaLink"]
        url = body["@odata.nextLink"]


def test_delta_reports_creates_updates_soft_deletes_restores_and_purges(
    graph_emulator_for: Callable[[Tenant], GraphEmulator],
) -> None:
    emulator = graph_emulator_for(generated_tenant(450))
    emulator.delta_page_size = 200
    store = emulator.tenant.users
    select = "displayName,onPremisesImmutableId,jobTitle"
    with graph(emulator) as http:
        first, delta_link = delta_round(
            http, f"{emulator.base}/v1.0/users/delta()?$select={select}"
        )
        assert len(first) == 450 and set(first[0]) == {
            "displayName",
            "onPremisesImmutableId",
            "jobTitle",
            "id",
        }
        ids = [u["id"] for u in first]
        new = store.create(user("erin@contoso.example", synced=True))
        store.update(ids[1], displayName="Renamed")
        store.update(ids[2], employeeId="not selected")  # a change to an unselected property
        store.soft_delete(ids[3])
        store.soft_delete(ids[4])
        store.restore(ids[4])
        store.purge(ids[6])
        store.soft_delete(ids[7])
        store.purge(ids[7])
        changes, second_link = delta_round(http, delta_link)
        minimal, _ = delta_round(http, delta_link, Prefer="return=minimal")
        empty, _ = delta_round(http, second_link)
    restored = store.get(ids[4])
    assert restored is not None
    assert changes == [
        {
            "displayName": new["displayName"],
            "onPremisesImmutableId": new["onPremisesImmutableId"],
            "jobTitle": None,
            "id": new["id"],
        },
        {
            "displayName": "Renamed",
            "onPremisesImmutableId": first[1]["onPremisesImmutableId"],
            "id": ids[1],
        },
        {"id": ids[3], "@removed": {"reason": "changed"}},
        {
            "displayName": restored["displayName"],
            "onPremisesImmutableId": restored["onPremisesImmutableId"],
            "jobTitle": None,
            "id": ids[4],
        },
        {"id": ids[6], "@removed": {"reason": "deleted"}},
        {"id": ids[7], "@removed": {"reason": "deleted"}},
    ]
    assert minimal[1] == {"id": ids[1], "displayName": "Renamed"}
    assert empty == []


def test_delta_link_expired_is_410(graph_emulator: GraphEmulator) -> None:
    with graph(graph_emulator) as http:
        _, link = delta_round(
            http, f"{graph_emulator.base}/v1.0/users/delta?$select=id,displayName"
        )
        graph_emulator.expire_delta_links()
        gone = http.get(link)
        assert error_of(gone)[:2] == (410, "syncStateNotFound")
        assert (
            gone.headers["Location"]
            == f"{graph_emulator.base}/v1.0/users/delta?$select=id,displayName&$deltatoken="
        )
        restarted, _ = delta_round(http, gone.headers["Location"])
        assert len(restarted) == 3
        graph_emulator.expire_delta_links(code="resyncRequired")
        assert error_of(http.get(link))[:2] == (410, "resyncRequired")


def test_delta_token_latest_starts_from_now(graph_emulator: GraphEmulator) -> None:
    with graph(graph_emulator) as http:
        entries, link = delta_round(
            http, f"{graph_emulator.base}/v1.0/users/delta?$deltatoken=latest&$select=displayName"
        )
        assert entries == []
        erin = graph_emulator.tenant.users.create(user("erin@contoso.example"))
        changes, _ = delta_round(http, link)
    assert changes == [{"displayName": "erin", "id": erin["id"]}]


# --- the other collections ----------------------------------------------------------------------


def test_domains_and_organization(graph_emulator: GraphEmulator) -> None:
    with graph(graph_emulator) as http:
        domains = http.get(f"{graph_emulator.base}/v1.0/domains").json()
        org = http.get(
            f"{graph_emulator.base}/v1.0/organization?$select=id,onPremisesSyncEnabled,onPremisesLastSyncDateTime,verifiedDomains"
        ).json()
    assert [(d["id"], d["isInitial"], d["authenticationType"]) for d in domains["value"]] == [
        ("contoso.onmicrosoft.com", True, "Managed"),
        ("contoso.example", False, "Managed"),
    ]
    (tenant,) = org["value"]
    assert list(tenant) == [
        "id",
        "onPremisesSyncEnabled",
        "onPremisesLastSyncDateTime",
        "verifiedDomains",
    ]
    assert [d["name"] for d in tenant["verifiedDomains"]] == [
        "contoso.onmicrosoft.com",
        "contoso.example",
    ]


def test_sync_switches_need_a_delegated_token(graph_emulator: GraphEmulator) -> None:
    url = f"{graph_emulator.base}/v1.0/directory/onPremisesSynchronization"
    with graph(graph_emulator) as http:
        assert error_of(http.get(url)) == (
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )
    with graph(graph_emulator, delegated=True) as http:
        body = http.get(url).json()
    assert body["@odata.context"].endswith("$metadata#directory/onPremisesSynchronization")
    assert body["value"][0]["features"]["blockCloudObjectTakeoverThroughHardMatchEnabled"] is True


def test_roles_assignments_to_groups_and_eligibilities(graph_emulator: GraphEmulator) -> None:
    tenant = graph_emulator.tenant
    group_id = next(iter(tenant.groups))
    base = f"{graph_emulator.base}/v1.0/roleManagement/directory"
    with graph(graph_emulator) as http:
        assignments = http.get(f"{base}/roleAssignments?$expand=principal").json()["value"]
        eligible = http.get(f"{base}/roleEligibilityScheduleInstances").json()["value"]
        v1 = http.get(f"{base}/roleDefinitions").json()["value"]
        v1_select = http.get(f"{base}/roleDefinitions?$select=id,isPrivileged")
        beta = http.get(
            f"{graph_emulator.base}/beta/roleManagement/directory/roleDefinitions?$select=id,isPrivileged"
        ).json()["value"]
        members = http.get(
            f"{graph_emulator.base}/v1.0/groups/{group_id}/transitiveMembers"
        ).json()["value"]
        missing = http.get(f"{graph_emulator.base}/v1.0/groups/{uuid.uuid4()}/members")
    assert [(a["roleDefinitionId"], a["principal"]["@odata.type"]) for a in assignments] == [
        (GLOBAL_ADMINISTRATOR, "#microsoft.graph.user"),
        (GLOBAL_ADMINISTRATOR, "#microsoft.graph.group"),
    ]
    assert [e["principalId"] for e in eligible] == [
        e["principalId"] for e in tenant.role_eligibilities
    ]
    assert all("isPrivileged" not in d for d in v1)
    assert error_of(v1_select)[:2] == (400, "BadRequest")
    assert beta[0] == {"id": GLOBAL_ADMINISTRATOR, "isPrivileged": True}
    assert [(m["@odata.type"], m["userPrincipalName"]) for m in members] == [
        ("#microsoft.graph.user", "bob@contoso.example")
    ]
    assert error_of(missing)[:2] == (404, "Request_ResourceNotFound")


def test_transitive_members_flatten_nested_groups(graph_emulator: GraphEmulator) -> None:
    tenant = graph_emulator.tenant
    inner = next(iter(tenant.groups))
    ada = next(tenant.users.live())
    outer = tenant.add_group("Outer", [inner, ada["id"]])
    with graph(graph_emulator) as http:
        direct = http.get(f"{graph_emulator.base}/v1.0/groups/{outer}/members?$select=id").json()[
            "value"
        ]
        flat = http.get(
            f"{graph_emulator.base}/v1.0/groups/{outer}/transitiveMembers?$select=id"
        ).json()["value"]
    assert [m["@odata.type"] for m in direct] == ["#microsoft.graph.group", "#microsoft.graph.user"]
    assert [m["@odata.type"] for m in flat] == [
        "#microsoft.graph.group",
        "#microsoft.graph.user",
        "#microsoft.graph.user",
    ]


# --- faults and the log -------------------------------------------------------------------------


def test_throttling_and_server_errors(graph_emulator: GraphEmulator) -> None:
    graph_emulator.inject("/v1.0/users", "throttle", times=2, retry_after=3)
    graph_emulator.inject("/v1.0/users", "unavailable", times=1)
    graph_emulator.inject("/v1.0/users", "gateway_timeout", times=1)
    url = f"{graph_emulator.base}/v1.0/users"
    with graph(graph_emulator) as http:
        answers = [http.get(url) for _ in range(5)]
    assert [a.status_code for a in answers] == [429, 429, 503, 504, 200]
    assert answers[0].headers["Retry-After"] == "3"
    assert error_of(answers[0])[1] == "TooManyRequests"
    assert error_of(answers[2])[1] == "serviceNotAvailable"
    assert [r.fault for r in graph_emulator.requests("/v1.0/users")] == [
        "throttle",
        "throttle",
        "unavailable",
        "gateway_timeout",
        None,
    ]


def test_a_share_of_requests_faulted_with_a_seeded_rng(
    graph_emulator_for: Callable[[Tenant], GraphEmulator],
) -> None:
    def statuses() -> list[int]:
        emulator = graph_emulator_for(Tenant())
        emulator.inject("/v1.0/domains", "throttle", times=None, rate=0.3)
        with graph(emulator) as http:
            return [http.get(f"{emulator.base}/v1.0/domains").status_code for _ in range(40)]

    first = statuses()
    assert first == statuses()  # the same seed, the same faults
    assert 6 <= first.count(429) <= 18


def test_reset_truncation_and_delay(graph_emulator: GraphEmulator) -> None:
    url = f"{graph_emulator.base}/v1.0/users"
    graph_emulator.inject("/v1.0/users", "reset")
    with graph(graph_emulator) as http:
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            http.get(url)
        assert http.get(url).status_code == 200
        graph_emulator.inject("/v1.0/users", "truncate")
        with pytest.raises(httpx.RemoteProtocolError):
            http.get(url)
        graph_emulator.inject("/v1.0/users", "slow", delay=0.3)
        started = time.monotonic()
        assert http.get(url).status_code == 200
        assert time.monotonic() - started >= 0.3
        graph_emulator.inject("/v1.0/users", "slow", delay=30)
        with pytest.raises(httpx.ReadTimeout):
            http.get(url, timeout=0.2)
    assert [r.status for r in graph_emulator.requests("/v1.0/users")][:2] == [0, 200]


def test_a_next_link_to_another_host_and_the_requests_it_gets(
    graph_emulator: GraphEmulator,
) -> None:
    graph_emulator.foreign_next_link("/v1.0/users")
    with graph(graph_emulator) as http:
        first = http.get(f"{graph_emulator.base}/v1.0/users?$top=1").json()
        link = first["@odata.nextLink"]
        assert link.startswith(f"https://localhost:{graph_emulator.foreign.port}/v1.0/users?")
        with httpx.Client(verify=trusting(graph_emulator)) as careful:
            assert careful.get(link).json() == {"value": []}
        second = http.get(f"{graph_emulator.base}/v1.0/users?$top=1").json()
    assert second["@odata.nextLink"].startswith(graph_emulator.base)
    (seen,) = graph_emulator.foreign.log
    assert (seen.path, seen.authorization) == ("/v1.0/users", False)


def test_the_request_log(graph_emulator: GraphEmulator) -> None:
    with graph(graph_emulator) as http:
        http.get(
            f"{graph_emulator.base}/v1.0/users?$select=id&$top=5",
            headers={"x-ms-throttle-priority": "low", "client-request-id": "abc"},
        )
    (logged,) = graph_emulator.requests("/v1.0/users")
    assert (logged.method, logged.status, logged.authorization) == ("GET", 200, True)
    assert logged.query == {"$select": ["id"], "$top": ["5"]}
    assert logged.throttle_priority == "low"
    assert "authorization" not in logged.headers and logged.headers["client-request-id"] == "abc"


def test_azure_identity_credentials_get_tokens(graph_emulator: GraphEmulator) -> None:
    """The production credential classes (MSAL underneath) against the emulator's authority:
    OpenID discovery, client secret, certificate (MSAL pads its x5t#S256), a wrong secret."""
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import CertificateCredential, ClientSecretCredential

    config = graph_emulator.client_config()
    where = {
        "authority": config.authority_host,
        "disable_instance_discovery": True,
        "connection_verify": str(config.ca_file),
    }
    secret = ClientSecretCredential(
        config.tenant_id, config.client_id, config.client_secret or "", **where
    )
    assert secret.get_token(config.scope).token in graph_emulator.tokens
    app = graph_emulator.register_app(secret=False, certificate=True)
    pem = str(app.certificates[0].pem_file)
    certificate = CertificateCredential(
        config.tenant_id, app.client_id, certificate_path=pem, **where
    )
    assert certificate.get_token(config.scope).token in graph_emulator.tokens
    wrong = ClientSecretCredential(config.tenant_id, config.client_id, "s3cret-VALUE", **where)
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215: Invalid client secret"):
        wrong.get_token(config.scope)
