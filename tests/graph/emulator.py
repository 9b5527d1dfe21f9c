"""A Microsoft Graph v1.0 (and the few beta reads the audit makes) emulator for the live Entra
tests and benchmarks (issue 13): a threaded HTTPS server on 127.0.0.1 with its own test CA,
answering from a `Tenant` (tests/graph/tenant.py) as Microsoft documents Graph, plus the
Microsoft identity platform endpoints MSAL (under azure-identity) calls, so production auth
code runs unchanged against it (`authority=` + `disable_instance_discovery=True`).

A test holds the `GraphEmulator` and uses its small API: `client_config()` for what a client
needs, `tenant.users.create/update/soft_delete/restore/purge` between delta rounds,
`inject(...)` for faults, `foreign_next_link(...)` for a nextLink to another listener,
`expire_tokens()` / `expire_delta_links()`, and `log` / `foreign.log` for assertions. It stops
what it started (`close()`, or the `with` block); nothing here sleeps except a fault that is a
delay, and that wait ends when the emulator closes.

Documents relied on, per endpoint, are cited where the endpoint is answered.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import http.server
import json
import random
import secrets
import socket
import ssl
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from tests.graph.tenant import (
    DEFAULT_USER_PROPERTIES,
    Tenant,
    user_property_names,
)
from tests.graph.tls import ClientCertificate, ServerTls, make_client_certificate, make_server_tls

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"  # Microsoft Graph's own app id
# The application permissions the audit asks for (FACTS.md section 3), plus
# GroupMember.ReadBasic.All, the least privileged one for listing a role-assignable group's
# (transitive) members (group-list-transitivemembers permissions table), which expanding a
# group's role assignment needs. A registered app gets them unless the test says otherwise.
AUDIT_APP_ROLES = frozenset(
    {
        "User.Read.All",
        "Domain.Read.All",
        "Organization.Read.All",
        "RoleManagement.Read.Directory",
        "GroupMember.ReadBasic.All",
    }
)
# Permissions that let a caller read each collection (least privileged first), from each List
# page's permissions table; a token with none of them gets Authorization_RequestDenied.
READ_PERMISSIONS: dict[str, frozenset[str]] = {
    "users": frozenset(
        {"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
    ),
    "domains": frozenset({"Domain.Read.All", "Domain.ReadWrite.All", "Directory.Read.All"}),
    "organization": frozenset(
        {"Organization.Read.All", "Organization.ReadWrite.All", "Directory.Read.All"}
    ),
    "roles": frozenset(
        {
            "RoleManagement.Read.Directory",
            "RoleManagement.Read.All",
            "RoleManagement.ReadWrite.Directory",
            "Directory.Read.All",
        }
    ),
    "eligibility": frozenset(
        {
            "RoleEligibilitySchedule.Read.Directory",
            "RoleManagement.Read.Directory",
            "RoleManagement.Read.All",
            "RoleManagement.ReadWrite.Directory",
        }
    ),
    "groups": frozenset(
        {
            "GroupMember.ReadBasic.All",
            "GroupMember.Read.All",
            "Group.ReadBasic.All",
            "Group.Read.All",
            "Directory.Read.All",
        }
    ),
    "sync": frozenset(
        {"OnPremDirectorySynchronization.Read.All", "OnPremDirectorySynchronization.ReadWrite.All"}
    ),
}
TOKEN_LIFETIME = 3599  # seconds, as Entra's token endpoint answers (expires_in)
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEVICE_USER_ID = "8a1f0c3e-5b7d-4e2a-9c6f-1d3b5e7a9c0b"  # the user who signs in with a code
DEFAULT_PAGE_SIZE = 100  # users and deletedItems without $top (paging.md; deletedItems-list)
MAX_PAGE_SIZE = 999
DELTA_PAGE_SIZE = 200  # users/delta decides its own page size ($top is not supported)


class EmulatorError(Exception):
    """Why the emulator could not start, in one line."""


# --- configuration a client needs -------------------------------------------------------------


@dataclass(frozen=True)
class ClientConfig:
    """What syncaudit's [entra] config (or a test's client) needs to reach the emulator."""

    graph_url: str  # https://127.0.0.1:PORT (the v1.0 and beta roots are below it)
    authority_host: str  # https://127.0.0.1:PORT, the login.microsoftonline.com stand-in
    tenant_id: str
    client_id: str
    client_secret: str | None
    certificate_file: Path | None  # key + certificate PEM, for CertificateCredential
    ca_file: Path  # verify TLS against this

    @property
    def authority(self) -> str:
        return f"{self.authority_host}/{self.tenant_id}"

    @property
    def scope(self) -> str:
        """The scope a client-credentials request asks for (graph_url + /.default)."""
        return f"{self.graph_url}/.default"


@dataclass
class App:
    """An app registration: its secret and/or certificates, and the application permissions
    (app roles) admin consent granted it."""

    client_id: str
    secret: str | None
    certificates: list[ClientCertificate] = field(default_factory=list)
    roles: frozenset[str] = AUDIT_APP_ROLES
    display_name: str = "syncaudit"


@dataclass
class Token:
    value: str
    client_id: str
    delegated: bool  # a user signed in (scp) rather than the app alone (roles)
    permissions: frozenset[str]
    expires_at: float
    revoked: bool = False

    @property
    def expired(self) -> bool:
        return self.revoked or time.time() >= self.expires_at


# --- faults and the request log ---------------------------------------------------------------

FAULT_KINDS = (
    "throttle",
    "unavailable",
    "gateway_timeout",
    "reset",
    "slow",
    "truncate",
    "stall",
)


@dataclass
class Fault:
    """A fault on requests whose path starts with `path`: the next `times` of them (after
    letting `skip` through), or each with probability `rate` (seeded), `times` then bounding it.
    """

    path: str
    kind: str
    times: int | None = 1
    rate: float | None = None
    skip: int = 0
    retry_after: int | None = 1  # seconds, for throttle/unavailable (None: no header)
    delay: float = 0.0  # seconds, for slow (before answering) and stall (after the envelope)
    fired: int = 0


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names; the Authorization value is not kept
    authorization: bool  # whether an Authorization header came
    throttle_priority: str | None  # x-ms-throttle-priority
    status: int  # 0 when the connection was reset instead of answered
    fault: str | None
    host: str  # the Host header
    seconds: float = 0.0  # from the request read to the response written (emulator busy time)


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


JSON_TYPE = "application/json"
# What Graph sends for OData JSON (kiota picks its parser by the part before ';').
ODATA_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;"
    "charset=utf-8"
)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _now_text() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


class GraphError(Exception):
    """A Graph error response: `{"error": {"code", "message", "innerError"}}` (Microsoft Graph
    error responses: https://learn.microsoft.com/graph/errors)."""

    def __init__(self, status: int, code: str, message: str, **headers: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


class AuthError(Exception):
    """An identity platform error: `{"error", "error_description": "AADSTSnnn: ...",
    "error_codes": [nnn], ...}` (https://learn.microsoft.com/entra/identity-platform/
    reference-error-codes and v2-oauth2-client-creds-grant-flow#error-response)."""

    def __init__(self, status: int, error: str, aadsts: int, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.aadsts, self.message = status, error, aadsts, message


# --- the HTTP layer ---------------------------------------------------------------------------


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, owner: _Listener, context: ssl.SSLContext) -> None:
        self.owner = owner
        self.context = context
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__((owner.host, 0), _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # The handshake runs in the handler's thread (first read), not in the accept loop.
        tls = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        with self.connections_lock:
            self.connections.add(tls)
        return tls, address

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away (or a TLS client that distrusts us) is not our error


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.owner.handle(self, body)

    do_GET = do_POST = do_PATCH = do_DELETE = _serve

    def send(self, response: Response, *, truncate: bool = False, stall: float = 0.0) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        # Headers and body in one write: two writes would meet Nagle and the client's delayed
        # ACK (40 ms a page once the connection is warm).
        head = b"".join(self._headers_buffer) + b"\r\n"  # type: ignore[attr-defined]
        self._headers_buffer = []  # type: ignore[attr-defined]
        if truncate:
            self.wfile.write(head + response.body[: len(response.body) // 2])
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if stall:
            # the page's envelope (context, nextLink) first, its users `stall` seconds later
            cut = response.body.find(b'"value"')
            cut = cut if cut > 0 else len(response.body) // 2
            self.wfile.write(head + response.body[:cut])
            self.wfile.flush()
            self.server.owner.stopping.wait(stall)  # type: ignore[attr-defined]
            self.wfile.write(response.body[cut:])
            return
        self.wfile.write(head + response.body)

    def reset(self) -> None:
        """Close with a TCP RST (SO_LINGER 0), no TLS close_notify, nothing written."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raw = socket.socket(fileno=self.connection.detach())
            raw.close()
        self.wfile = _Discard()
        self.rfile = _Discard()


class _Discard:
    closed = False

    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class _Listener:
    """One HTTPS listener: a thread serving `_Server`, stopped (and its open connections cut)
    by close()."""

    def __init__(self, host: str, tls: ServerTls, name: str) -> None:
        self.host = host
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls.cert_file, tls.key_file)
        context.set_alpn_protocols(["http/1.1"])
        try:
            self.server = _Server(self, context)
        except OSError as error:
            raise EmulatorError(f"cannot listen on {host}: {error.strerror}") from None
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, name=name, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def handle(self, handler: _Handler, body: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.server.shutdown()
        with self.server.connections_lock:
            open_connections = list(self.server.connections)
        for connection in open_connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self.server.server_close()
        self.thread.join(timeout=5)


class ForeignListener(_Listener):
    """The other host a foreign nextLink points at: it answers an empty page and records every
    request with its headers (Authorization included), so a test proves no token reached it."""

    def __init__(self, tls: ServerTls) -> None:
        self.log: list[LoggedRequest] = []
        super().__init__("127.0.0.1", tls, "graph-emulator-foreign")
        self.base = f"https://localhost:{self.port}"

    def handle(self, handler: _Handler, body: bytes) -> None:
        url = urlsplit(handler.path)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        self.log.append(
            LoggedRequest(
                method=handler.command,
                path=url.path,
                query=parse_qs(url.query, keep_blank_values=True),
                headers=headers,
                authorization="authorization" in headers,
                throttle_priority=headers.get("x-ms-throttle-priority"),
                status=200,
                fault=None,
                host=headers.get("host", ""),
            )
        )
        handler.send(Response(200, b'{"value":[]}', {"Content-Type": ODATA_TYPE}))


# --- paging state -----------------------------------------------------------------------------


@dataclass
class _ListState:
    collection: str  # "users", "deleted", or a key of GraphEmulator._collections
    version: str  # "v1.0" | "beta"
    select: tuple[str, ...] | None
    top: int
    position: int
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class _DeltaState:
    version: str
    select: tuple[str, ...]
    generation: int
    journal_version: int  # changes after this one are what the next round reports
    position: int = 0  # initial round: the next slot
    pending: list[str] | None = None  # change rounds: the JSON entries still to page out
    minimal: bool = False


# --- the emulator -----------------------------------------------------------------------------


class GraphEmulator(_Listener):
    """The emulator. `GraphEmulator(tenant, directory)` starts it (TLS material in `directory`);
    `close()` stops it and the foreign listener."""

    def __init__(self, tenant: Tenant, directory: Path, *, seed: int = 0) -> None:
        self.tenant = tenant
        self.directory = directory
        self.tls = make_server_tls(directory / "tls")
        self.apps: dict[str, App] = {}
        # device_code -> (client_id, the scopes asked for), until redeemed
        self.device_codes: dict[str, tuple[str, str]] = {}
        self.tokens: dict[str, Token] = {}
        self.faults: list[Fault] = []
        self.log: list[LoggedRequest] = []
        self.rng = random.Random(seed)
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        self.empty_pages = False  # when True, an empty page (with nextLink) follows each page
        self.delta_page_size = DELTA_PAGE_SIZE
        self.token_lifetime: float = TOKEN_LIFETIME  # seconds a token it issues is valid for
        self._pages: dict[str, _ListState | _DeltaState] = {}
        self._delta_generation = 0
        self._delta_reset_code = "syncStateNotFound"
        self._foreign_links: dict[str, int] = {}  # path -> links still to divert
        self._before: list[tuple[str, list[int], Callable[[], None]]] = []  # path, [skip], action
        super().__init__("127.0.0.1", self.tls, "graph-emulator")
        self.base = f"https://127.0.0.1:{self.port}"
        try:
            self.foreign = ForeignListener(self.tls)
        except EmulatorError:
            super().close()
            raise
        self.default_app = self.register_app()

    # lifecycle
    def __enter__(self) -> GraphEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.stopping.set()
        self.foreign.close()
        super().close()

    # apps, tokens and the client's configuration
    def register_app(
        self,
        *,
        secret: bool = True,
        certificate: bool = False,
        roles: frozenset[str] = AUDIT_APP_ROLES,
    ) -> App:
        client_id = str(uuid.uuid4())
        app = App(client_id=client_id, secret=secrets.token_urlsafe(30) if secret else None)
        if certificate:
            app.certificates.append(
                make_client_certificate(self.directory / "apps" / f"{client_id}.pem")
            )
        app.roles = roles
        self.apps[client_id] = app
        return app

    def client_config(self, app: App | None = None) -> ClientConfig:
        app = app or self.default_app
        return ClientConfig(
            graph_url=self.base,
            authority_host=self.base,
            tenant_id=self.tenant.tenant_id,
            client_id=app.client_id,
            client_secret=app.secret,
            certificate_file=app.certificates[0].pem_file if app.certificates else None,
            ca_file=self.tls.ca_file,
        )

    def issue_token(
        self,
        app: App | None = None,
        *,
        delegated: bool = False,
        scopes: frozenset[str] = frozenset(
            {"User.Read.All", "OnPremDirectorySynchronization.Read.All"}
        ),
        lifetime: float | None = None,
    ) -> str:
        """A bearer token as the token endpoint would give: app-only with the app's roles, or
        delegated (a signed-in Global Administrator) with `scopes`."""
        app = app or self.default_app
        lifetime = self.token_lifetime if lifetime is None else lifetime
        claims = {
            "aud": self.base,
            "iss": f"https://sts.windows.net/{self.tenant.tenant_id}/",
            "tid": self.tenant.tenant_id,
            "appid": app.client_id,
            "idtyp": "user" if delegated else "app",
            "exp": int(time.time() + lifetime),
            ("scp" if delegated else "roles"): " ".join(sorted(scopes))
            if delegated
            else sorted(app.roles),
        }
        # JWT-shaped like Entra's (clients must not read it); the signature part is random and
        # the emulator knows its tokens by value.
        value = ".".join(
            base64.urlsafe_b64encode(part).rstrip(b"=").decode("ascii")
            for part in (
                _dumps({"typ": "JWT", "alg": "RS256"}),
                _dumps(claims),
                secrets.token_bytes(32),
            )
        )
        with self.lock:
            self.tokens[value] = Token(
                value,
                app.client_id,
                delegated,
                scopes if delegated else app.roles,
                time.time() + lifetime,
            )
        return value

    def expire_tokens(self) -> None:
        """Every token issued so far is now expired (401 InvalidAuthenticationToken)."""
        with self.lock:
            for token in self.tokens.values():
                token.revoked = True

    # faults
    def inject(
        self,
        path: str,
        kind: str,
        *,
        times: int | None = 1,
        rate: float | None = None,
        skip: int = 0,
        retry_after: int | None = 1,
        delay: float = 0.0,
    ) -> Fault:
        """Fault requests whose path starts with `path` (e.g. "/v1.0/users"): kind is one of
        FAULT_KINDS. `times=None` with a `rate` faults that share of them for good."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {kind!r}: one of {', '.join(FAULT_KINDS)}")
        fault = Fault(path, kind, times, rate, skip, retry_after, delay)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def before(self, path: str, action: Callable[[], None], *, skip: int = 0) -> None:
        """`action()` once, just before answering the first request whose path starts with
        `path` after letting `skip` through: the tenant changing while a client pages it."""
        with self.lock:
            self._before.append((path, [skip], action))

    def _run_before(self, path: str) -> None:
        due: list[Callable[[], None]] = []
        with self.lock:
            for hook in list(self._before):
                prefix, skip, action = hook
                if not path.startswith(prefix):
                    continue
                if skip[0] > 0:
                    skip[0] -= 1
                    continue
                self._before.remove(hook)
                due.append(action)
        for action in due:
            action()

    def foreign_next_link(self, path: str, times: int = 1) -> None:
        """The next `times` pages served for `path` (exactly: "/v1.0/users" is not
        "/v1.0/users/delta") carry their @odata.nextLink or @odata.deltaLink to the foreign
        listener (another host name and port) instead of this emulator."""
        with self.lock:
            self._foreign_links[path] = times

    def expire_delta_links(self, code: str = "syncStateNotFound") -> None:
        """Every deltaLink and delta nextLink issued so far answers 410 Gone with `code`
        (Graph's errors page names syncStateNotFound and resyncRequired)."""
        with self.lock:
            self._delta_generation += 1
            self._delta_reset_code = code

    def requests(self, path_prefix: str = "/") -> list[LoggedRequest]:
        with self.lock:
            return [r for r in self.log if r.path.startswith(path_prefix)]

    # dispatch
    def handle(self, handler: _Handler, body: bytes) -> None:
        url = urlsplit(handler.path)
        path = url.path
        headers = {k.lower(): v for k, v in handler.headers.items()}
        started = time.perf_counter()
        self._run_before(path)
        fault = self._fault_for(path)
        # Recorded before the answer goes out: a client that has read its answer finds its
        # request in the log (after sending, the test could look before the server wrote it).
        if fault is not None and fault.kind == "reset":
            self._record(handler, path, url.query, headers, 0, fault, 0.0)
            handler.reset()
            return
        status = 0
        try:
            if fault is not None and fault.kind in ("throttle", "unavailable", "gateway_timeout"):
                response = self._fault_response(fault, headers)
            else:
                response = self._respond(handler.command, path, url.query, headers, body)
                if fault is not None and fault.kind == "slow":
                    self.stopping.wait(fault.delay)
            status = response.status
        finally:
            seconds = time.perf_counter() - started
            self._record(handler, path, url.query, headers, status, fault, seconds)
        handler.send(
            response,
            truncate=fault is not None and fault.kind == "truncate",
            stall=fault.delay if fault is not None and fault.kind == "stall" else 0.0,
        )

    def _record(
        self,
        handler: _Handler,
        path: str,
        query: str,
        headers: dict[str, str],
        status: int,
        fault: Fault | None,
        seconds: float,
    ) -> None:
        kept = {k: v for k, v in headers.items() if k != "authorization"}
        with self.lock:
            self.log.append(
                LoggedRequest(
                    method=handler.command,
                    path=path,
                    query=parse_qs(query, keep_blank_values=True),
                    headers=kept,
                    authorization="authorization" in headers,
                    throttle_priority=headers.get("x-ms-throttle-priority"),
                    status=status,
                    fault=fault.kind if fault else None,
                    host=headers.get("host", ""),
                    seconds=seconds,
                )
            )

    def _fault_for(self, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if not path.startswith(fault.path):
                    continue
                if fault.times is not None and fault.fired >= fault.times:
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                if fault.rate is not None and self.rng.random() >= fault.rate:
                    continue
                fault.fired += 1
                return fault
        return None

    def _fault_response(self, fault: Fault, headers: Mapping[str, str]) -> Response:
        # Throttling: 429 with Retry-After seconds (https://learn.microsoft.com/graph/throttling,
        # its sample body); 503/504 per the errors page (https://learn.microsoft.com/graph/errors).
        status, code, message = {
            "throttle": (
                429,
                "TooManyRequests",
                (
                    "Too many requests. Please retry after the time specified in the Retry-After "
                    "header."
                ),
            ),
            "unavailable": (
                503,
                "serviceNotAvailable",
                "The service is temporarily unavailable. Try the request again after a delay.",
            ),
            "gateway_timeout": (
                504,
                "UnknownError",
                "The gateway did not receive a timely response.",
            ),
        }[fault.kind]
        extra = (
            {}
            if fault.retry_after is None or status == 504
            else {"Retry-After": str(fault.retry_after)}
        )
        return self._error_response(GraphError(status, code, message, **extra), headers)

    def _error_response(self, error: GraphError, headers: Mapping[str, str]) -> Response:
        request_id = str(uuid.uuid4())
        body = {
            "error": {
                "code": error.code,
                "message": error.message,
                "innerError": {
                    "date": _now_text(),
                    "request-id": request_id,
                    "client-request-id": headers.get("client-request-id", request_id),
                },
            }
        }
        out = {"Content-Type": JSON_TYPE, "request-id": request_id, **error.headers}
        if error.status == 401:
            # What Graph sends with a 401 (a bearer challenge naming the authority and Graph).
            out["WWW-Authenticate"] = (
                f'Bearer realm="", authorization_uri="{self.base}/common/oauth2/authorize", '
                f'client_id="{GRAPH_APP_ID}"'
            )
        return Response(error.status, _dumps(body), out)

    def _respond(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> Response:
        parts = [p for p in path.split("/") if p]
        try:
            if parts and parts[0] in ("v1.0", "beta"):
                if method != "GET":
                    raise GraphError(
                        405,
                        "Request_BadRequest",
                        (
                            f"The HTTP method '{method}' is not allowed on this emulator's "
                            "read-only API."
                        ),
                    )
                return self._graph(
                    parts[0], parts[1:], parse_qs(query, keep_blank_values=True), headers
                )
            return self._identity(method, parts, parse_qs(query), body)
        except GraphError as error:
            return self._error_response(error, headers)
        except AuthError as error:
            return self._auth_error(error)

    # --- identity platform ------------------------------------------------------------------

    def _identity(
        self, method: str, parts: list[str], query: dict[str, list[str]], body: bytes
    ) -> Response:
        # OpenID Connect discovery and the token endpoint (https://learn.microsoft.com/entra/
        # identity-platform/v2-protocols-oidc#find-your-apps-openid-configuration-document-uri;
        # v2-oauth2-client-creds-grant-flow); MSAL fetches `{authority}/v2.0/.well-known/
        # openid-configuration` first, and `/common/discovery/instance` unless instance
        # discovery is disabled (msal/authority.py).
        if parts == ["common", "discovery", "instance"] and method == "GET":
            return self._json(
                200,
                {
                    "tenant_discovery_endpoint": (
                        f"{self.base}/{self.tenant.tenant_id}/v2.0/.well-known/openid-configuration"
                    ),
                    "api-version": "1.1",
                    "metadata": [
                        {
                            "preferred_network": f"127.0.0.1:{self.port}",
                            "preferred_cache": f"127.0.0.1:{self.port}",
                            "aliases": [f"127.0.0.1:{self.port}"],
                        }
                    ],
                },
            )
        if len(parts) == 4 and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            self._require_tenant(parts[0])
            return self._json(200, self._openid_configuration())
        if len(parts) == 4 and parts[1:] == ["discovery", "v2.0", "keys"]:
            return self._json(200, {"keys": []})
        if len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"] and method == "POST":
            self._require_tenant(parts[0])
            form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
            if form.get("grant_type") == DEVICE_CODE_GRANT:
                return self._device_token(form)
            return self._token(form)
        if len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "devicecode"] and method == "POST":
            self._require_tenant(parts[0])
            form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
            return self._device_code(form)
        raise AuthError(
            404,
            "invalid_request",
            900561,
            "The endpoint only accepts POST, OPTIONS requests. Received a GET request."
            if parts[-1:] == ["token"]
            else "Not an endpoint of the emulated identity platform.",
        )

    def _require_tenant(self, tenant: str) -> None:
        if not self.tenant.knows(tenant):
            raise AuthError(
                400,
                "invalid_tenant",
                90002,
                (
                    f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant "
                    "ID and are signing into the correct cloud. Check with your subscription "
                    "administrator, this may happen if there are no active subscriptions for the "
                    "tenant."
                ),
            )

    def _openid_configuration(self) -> dict[str, Any]:
        tid = self.tenant.tenant_id
        root = f"{self.base}/{tid}"
        return {
            "token_endpoint": f"{root}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{self.base}/{tid}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{self.base}/{tid}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{self.base}/oidc/userinfo",
            "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "tid", "oid"],
            "kerberos_endpoint": f"{root}/kerberos",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": urlsplit(self.base).netloc,
            "rbac_url": "https://pas.windows.net",
        }

    def _token(self, form: dict[str, str]) -> Response:
        if form.get("grant_type") != "client_credentials":
            raise AuthError(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{form.get('grant_type', '')}'.",
            )
        client_id = form.get("client_id", "")
        app = self.apps.get(client_id)
        if app is None:
            raise AuthError(
                400,
                "unauthorized_client",
                700016,
                (
                    f"Application with identifier '{client_id}' was not found in the directory "
                    f"'{self.tenant.initial_domain}'. This can happen if the application has not "
                    "been installed by the administrator of the tenant or consented to by any "
                    "user in the tenant. You may have sent your authentication request to the "
                    "wrong tenant."
                ),
            )
        scope = form.get("scope", "")
        if not scope.endswith("/.default"):
            raise AuthError(
                400,
                "invalid_scope",
                1002012,
                (
                    f"The provided value for scope {scope} is not valid. Client credential flows "
                    "must have a scope value with /.default suffixed to the resource identifier "
                    "(application ID URI)."
                ),
            )
        if "client_assertion" in form:
            self._check_assertion(app, form)
        elif "client_secret" in form:
            if app.secret is None or not secrets.compare_digest(form["client_secret"], app.secret):
                raise AuthError(
                    401,
                    "invalid_client",
                    7000215,
                    (
                        "Invalid client secret provided. Ensure the secret being sent in the "
                        "request is the client secret value, not the client secret ID, for a "
                        f"secret added to app '{client_id}'."
                    ),
                )
        else:
            raise AuthError(
                401,
                "invalid_client",
                7000218,
                (
                    "The request body must contain the following parameter: 'client_assertion' "
                    "or 'client_secret'."
                ),
            )
        token = self.issue_token(app)
        return self._json(
            200,
            {
                "token_type": "Bearer",
                "expires_in": round(self.token_lifetime),
                "ext_expires_in": round(self.token_lifetime),
                "access_token": token,
            },
        )

    # The device authorization grant (https://learn.microsoft.com/entra/identity-platform/
    # v2-oauth2-device-code; RFC 8628): a code for the user, then the client polls the token
    # endpoint. The emulated user (a Global Administrator) has signed in by the first poll.
    def _device_code(self, form: dict[str, str]) -> Response:
        if form.get("client_id", "") not in self.apps:
            raise AuthError(400, "unauthorized_client", 700016, "Application not found.")
        device_code = secrets.token_urlsafe(24)
        user_code = secrets.token_hex(4).upper()
        with self.lock:
            self.device_codes[device_code] = (form["client_id"], form.get("scope", ""))
        return self._json(
            200,
            {
                "device_code": device_code,
                "user_code": user_code,
                "verification_uri": "https://microsoft.com/devicelogin",
                "expires_in": 900,
                "interval": 1,
                "message": (
                    "To sign in, use a web browser to open the page https://microsoft.com/"
                    f"devicelogin and enter the code {user_code} to authenticate."
                ),
            },
        )

    def _device_token(self, form: dict[str, str]) -> Response:
        with self.lock:
            issued = self.device_codes.pop(form.get("device_code", ""), None)
        if issued is None or issued[0] != form.get("client_id"):
            raise AuthError(400, "expired_token", 70020, "The provided device code has expired.")
        client_id, asked = issued
        app = self.apps[client_id]
        # `.default`: the delegated permissions consented for the app, here its application
        # ones' delegated twins plus the switches' OnPremDirectorySynchronization.Read.All
        scopes = frozenset(app.roles | {"OnPremDirectorySynchronization.Read.All"})
        token = self.issue_token(app, delegated=True, scopes=scopes)
        # MSAL builds the signed-in account from client_info and the id token's claims
        user_id, tenant_id = DEVICE_USER_ID, self.tenant.tenant_id
        claims = {
            "aud": client_id,
            "iss": f"{self.base}/{tenant_id}/v2.0",
            "tid": tenant_id,
            "oid": user_id,
            "sub": user_id,
            "preferred_username": f"admin@{self.tenant.initial_domain}",
            "iat": int(time.time()),
            "exp": int(time.time() + self.token_lifetime),
        }
        id_token = ".".join(
            base64.urlsafe_b64encode(part).rstrip(b"=").decode("ascii")
            for part in (_dumps({"typ": "JWT", "alg": "none"}), _dumps(claims), b"")
        )
        client_info = base64.urlsafe_b64encode(_dumps({"uid": user_id, "utid": tenant_id})).decode(
            "ascii"
        )
        return self._json(
            200,
            {
                "token_type": "Bearer",
                # the resource's scopes granted, as asked (MSAL caches the token under them;
                # offline_access, openid and profile are answered by the id and refresh tokens)
                "scope": " ".join(
                    s for s in asked.split() if s not in ("offline_access", "openid", "profile")
                ),
                "expires_in": round(self.token_lifetime),
                "refresh_token": secrets.token_urlsafe(32),
                "access_token": token,
                "id_token": id_token,
                "client_info": client_info,
            },
        )

    def _check_assertion(self, app: App, form: dict[str, str]) -> None:
        """A certificate credential's client assertion: a JWT signed with the registered
        certificate's key, named by its thumbprint (x5t, or x5t#S256), aud = token endpoint,
        iss = sub = client id (https://learn.microsoft.com/entra/identity-platform/
        certificate-credentials)."""
        if (
            form.get("client_assertion_type")
            != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        ):
            raise AuthError(
                400, "invalid_request", 50027, "Invalid JWT token. Token format not valid."
            )
        assertion = form["client_assertion"]
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            raise AuthError(
                400, "invalid_request", 50027, "Invalid JWT token. Token format not valid."
            ) from None
        # base64url with or without its padding (MSAL keeps the '=')
        thumbprints = {
            str(header[name]).rstrip("=") for name in ("x5t", "x5t#S256") if name in header
        }
        certificate = next((c for c in app.certificates if {c.x5t, c.x5t_s256} & thumbprints), None)
        if certificate is None:
            raise AuthError(
                401,
                "invalid_client",
                700027,
                (
                    "The certificate with identifier used to sign the client assertion is not "
                    "registered on application."
                ),
            )
        key = certificate.certificate.public_key()
        assert isinstance(key, RSAPublicKey)
        token_endpoint = f"{self.base}/{self.tenant.tenant_id}/oauth2/v2.0/token"
        try:
            claims = jwt.decode(
                assertion,
                key,
                algorithms=["RS256", "PS256"],
                audience=token_endpoint,
                options={"require": ["exp", "aud", "iss", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError(
                401,
                "invalid_client",
                700024,
                "Client assertion is not within its valid time range.",
            ) from None
        except jwt.InvalidAudienceError:
            raise AuthError(
                401,
                "invalid_client",
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter.",
            ) from None
        except jwt.PyJWTError:
            raise AuthError(
                401, "invalid_client", 700027, "Client assertion failed signature validation."
            ) from None
        if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
            raise AuthError(
                401,
                "invalid_client",
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter.",
            )

    def _auth_error(self, error: AuthError) -> Response:
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return self._json(
            error.status,
            {
                "error": error.error,
                "error_description": (
                    f"AADSTS{error.aadsts}: {error.message}\r\nTrace ID: "
                    f"{trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: "
                    f"{stamp}"
                ),
                "error_codes": [error.aadsts],
                "timestamp": stamp,
                "trace_id": trace,
                "correlation_id": correlation,
                "error_uri": f"{self.base}/error?code={error.aadsts}",
            },
        )

    @staticmethod
    def _json(status: int, value: Any, content_type: str = JSON_TYPE) -> Response:
        return Response(status, _dumps(value), {"Content-Type": content_type})

    # --- Graph ------------------------------------------------------------------------------

    def _authorize(self, headers: Mapping[str, str], permission: str) -> Token:
        # A bearer token on every call (https://learn.microsoft.com/graph/auth/auth-concepts);
        # Graph's answers: 401 InvalidAuthenticationToken ("Access token is empty." / "Lifetime
        # validation failed, the token is expired."), 403 Authorization_RequestDenied.
        value = headers.get("authorization", "")
        if not value.lower().startswith("bearer ") or not value[7:].strip():
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
        with self.lock:
            token = self.tokens.get(value[7:].strip())
        if token is None:
            raise GraphError(
                401,
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid audience.",
            )
        if token.expired:
            raise GraphError(
                401,
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
            )
        if not token.permissions & READ_PERMISSIONS[permission] or (
            permission == "sync" and not token.delegated
        ):
            raise GraphError(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            )
        return token

    def _graph(
        self, version: str, parts: list[str], query: dict[str, list[str]], headers: dict[str, str]
    ) -> Response:
        segments = [p for p in parts]
        low = [p.lower() for p in segments]
        if low == ["users"]:
            self._authorize(headers, "users")
            return self._list_users(version, query, "users")
        if (
            low[:1] == ["users"]
            and len(low) == 2
            and low[1] in ("delta", "delta()", "microsoft.graph.delta()", "microsoft.graph.delta")
        ):
            self._authorize(headers, "users")
            return self._delta(version, query, headers)
        if (
            low[:2] == ["directory", "deleteditems"]
            and len(low) == 3
            and low[2] in ("microsoft.graph.user", "graph.user")
        ):
            self._authorize(headers, "users")
            return self._list_users(version, query, "deleted")
        if low[:2] == ["directory", "deleteditems"] and len(low) == 2:
            # deletedItems-list: "The OData cast type is a required part of the URI".
            raise GraphError(
                400,
                "Request_BadRequest",
                "Unsupported query: the OData cast type is required on /directory/deletedItems.",
            )
        if low == ["domains"]:
            self._authorize(headers, "domains")
            return self._list_plain(
                version, query, "domains", "domains", lambda: self.tenant.domains
            )
        if low == ["organization"]:
            self._authorize(headers, "organization")
            return self._list_plain(
                version, query, "organization", "organization", lambda: [self.tenant.organization]
            )
        if low == ["directory", "onpremisessynchronization"]:
            self._authorize(headers, "sync")
            return self._list_plain(
                version,
                query,
                "sync",
                "directory/onPremisesSynchronization",
                lambda: [self.tenant.sync],
            )
        if low[:2] == ["rolemanagement", "directory"] and len(low) == 3:
            return self._roles(version, low[2], query, headers)
        if low[:1] == ["groups"] and len(low) == 3 and low[2] in ("members", "transitivemembers"):
            self._authorize(headers, "groups")
            return self._members(
                version, segments[1], transitive=low[2] == "transitivemembers", query=query
            )
        raise GraphError(
            400,
            "BadRequest",
            f"Resource not found for the segment '{segments[-1] if segments else version}'.",
        )

    # paging helpers
    def _store_page(self, state: _ListState | _DeltaState) -> str:
        token = secrets.token_urlsafe(24)  # opaque: nothing in it a client could read
        with self.lock:
            self._pages[token] = state
        return token

    def _link_base(self, path: str) -> str:
        with self.lock:
            left = self._foreign_links.get(path, 0)
            if left > 0:
                self._foreign_links[path] = left - 1
                return self.foreign.base
        return self.base

    def _select(
        self,
        version: str,
        query: dict[str, list[str]],
        entity: str,
        known: Mapping[str, str] | None,
    ) -> tuple[str, ...] | None:
        raw = query.get("$select")
        if not raw or not raw[0].strip():
            return None
        names: list[str] = []
        for name in (n.strip() for n in raw[0].split(",")):
            if not name:
                continue
            if known is None:
                names.append(name)
                continue
            canonical = known.get(name.lower())
            if canonical is None:
                raise GraphError(
                    400,
                    "BadRequest",
                    (
                        "Parsing OData Select and Expand failed: Could not find a property named "
                        f"'{name}' on type 'microsoft.graph.{entity}'."
                    ),
                )
            if canonical not in names:
                names.append(canonical)
        return tuple(names)

    def _top(self, query: dict[str, list[str]]) -> int:
        # $top 1..999 for directory collections; Graph's answer otherwise is a 400
        # Request_UnsupportedQuery "Invalid page size specified: '1000'. Must be between 1 and
        # 999 inclusive." (https://learn.microsoft.com/graph/paging; deletedItems-list: "up to
        # 999 objects per page using $top").
        raw = query.get("$top")
        if not raw:
            return DEFAULT_PAGE_SIZE
        try:
            top = int(raw[0])
        except ValueError:
            top = 0
        if not 1 <= top <= MAX_PAGE_SIZE:
            raise GraphError(
                400,
                "Request_UnsupportedQuery",
                f"Invalid page size specified: '{raw[0]}'. Must be between 1 and 999 inclusive.",
            )
        return top

    def _resume(self, query: dict[str, list[str]], kind: type) -> Any:
        token = query.get("$skiptoken", [None])[0]
        if token is None:
            return None
        with self.lock:
            state = self._pages.get(token)
        if not isinstance(state, kind):
            raise GraphError(
                400,
                "Directory_ExpiredPageToken",
                (
                    "The specified page token value has expired and can no longer be included in "
                    "your request."
                ),
            )
        return state

    def _context(self, version: str, entity: str, select: Sequence[str] | None) -> str:
        return f"{self.base}/{version}/$metadata#{entity}" + (
            f"({','.join(select)})" if select else ""
        )

    @staticmethod
    def _page_body(
        context: str,
        items: Sequence[str],
        next_link: str | None = None,
        delta_link: str | None = None,
    ) -> bytes:
        head = '{"@odata.context":' + json.dumps(context)
        if next_link:
            head += ',"@odata.nextLink":' + json.dumps(next_link)
        tail = "]" + (',"@odata.deltaLink":' + json.dumps(delta_link) if delta_link else "") + "}"
        return (head + ',"value":[' + ",".join(items) + tail).encode("utf-8")

    def _odata(self, status: int, body: bytes) -> Response:
        return Response(status, body, {"Content-Type": ODATA_TYPE, "request-id": str(uuid.uuid4())})

    def _empty_page(self, path: str, context: str, resume: _ListState) -> Response:
        token = self._store_page(resume)
        link = f"{self._link_base(path)}{path}?$top={resume.top}&$skiptoken={token}"
        return self._odata(200, self._page_body(context, [], link))

    # users and deleted users
    def _list_users(self, version: str, query: dict[str, list[str]], collection: str) -> Response:
        # List users (https://learn.microsoft.com/graph/api/user-list?view=graph-rest-1.0): the
        # default property set without $select, only the selected ones with it (id always);
        # List deletedItems (https://learn.microsoft.com/graph/api/directory-deleteditems-list
        # ?view=graph-rest-1.0): the microsoft.graph.user cast, the same paging.
        path = (
            f"/{version}/users"
            if collection == "users"
            else f"/{version}/directory/deletedItems/microsoft.graph.user"
        )
        state = self._resume(query, _ListState)
        if state is None:
            select = self._select(version, query, "user", user_property_names(version))
            state = _ListState(collection, version, select, self._top(query), 0)
        select = state.select or DEFAULT_USER_PROPERTIES
        if "id" not in select:
            select = (*select, "id")
        entity = "users" if collection == "users" else "directoryObjects/microsoft.graph.user"
        context = self._context(version, entity, state.select)
        if state.extra.get("empty"):
            # The empty page `empty_pages` puts after each page; it leads on to the real next one.
            state.extra = {}
            return self._empty_page(path, context, state)
        items, next_position, more = self._user_page(state, select)
        next_link = None
        if more or (self.empty_pages and items):
            extra = {"empty": True} if self.empty_pages else {}
            token = self._store_page(
                _ListState(collection, version, state.select, state.top, next_position, extra)
            )
            selected = f"$select={quote(','.join(state.select), safe=',')}&" if state.select else ""
            next_link = (
                f"{self._link_base(path)}{path}?{selected}$top={state.top}&$skiptoken={token}"
            )
        return self._odata(200, self._page_body(context, items, next_link))

    def _user_page(self, state: _ListState, select: tuple[str, ...]) -> tuple[list[str], int, bool]:
        """Up to `top` users from slot `position`: (JSON texts, next position, more slots)."""
        store = self.tenant.users
        items: list[str] = []
        with store.lock:
            if state.collection == "deleted":
                deleted = list(store.deleted.values())
                chunk = deleted[state.position : state.position + state.top]
                items = [_dumps_user(obj, select) for obj in chunk]
                end = state.position + len(chunk)
                return items, end, end < len(deleted)
            generated = store.generated
            run: list[int] = []
            slot = state.position
            end = store.slots
            while slot < end and len(items) + len(run) < state.top:
                value = store.slot_value(slot)
                slot += 1
                if value is None:
                    continue
                if isinstance(value, int):
                    run.append(value)
                    continue
                if run:
                    assert generated is not None
                    items.extend(generated.encode_many(run, select))
                    run = []
                items.append(_dumps_user(value, select))
            if run:
                assert generated is not None
                items.extend(generated.encode_many(run, select))
            return items, slot, slot < end

    # delta
    def _delta(
        self, version: str, query: dict[str, list[str]], headers: Mapping[str, str]
    ) -> Response:
        # user: delta (https://learn.microsoft.com/graph/api/user-delta?view=graph-rest-1.0) and
        # delta query (https://learn.microsoft.com/graph/delta-query-overview): the initial round
        # pages every user with the selected properties, nextLink ($skiptoken) until a page with
        # @odata.deltaLink ($deltatoken); a deltaLink round returns what changed since: new and
        # restored users whole, updated users with their selected properties (only the changed
        # ones with `Prefer: return=minimal`; by default all, leaving out the never-set ones),
        # and removed users as {"id", "@removed": {"reason": "changed"}} when soft-deleted
        # (restorable from deletedItems) or "deleted" when gone for good. A token the service
        # no longer knows answers 410 Gone (syncStateNotFound; "Synchronization reset" gives a
        # Location with an empty $deltatoken). $deltatoken=latest gives a deltaLink and no data.
        path = f"/{version}/users/delta"
        store = self.tenant.users
        skiptoken = query.get("$skiptoken", [None])[0]
        deltatoken = query.get("$deltatoken", [None])[0]
        minimal = "return=minimal" in headers.get("prefer", "").replace(" ", "").lower()
        state: _DeltaState | None = None
        if skiptoken is not None or deltatoken not in (None, "", "latest"):
            with self.lock:
                found = self._pages.get(skiptoken if skiptoken is not None else str(deltatoken))
            if not isinstance(found, _DeltaState) or found.generation != self._delta_generation:
                select_text = ",".join(found.select) if isinstance(found, _DeltaState) else ""
                location = (
                    f"{self.base}{path}?"
                    + (f"$select={select_text}&" if select_text else "")
                    + "$deltatoken="
                )
                raise GraphError(
                    410,
                    self._delta_reset_code,
                    (
                        "The sync state generation is not found. The delta token is expired and "
                        "data must be synchronized again."
                    ),
                    Location=location,
                )
            state = found
        if state is None:
            select = (
                self._select(version, query, "user", user_property_names(version))
                or DEFAULT_USER_PROPERTIES
            )
            with store.lock:
                state = _DeltaState(version, select, self._delta_generation, store.version)
            if deltatoken == "latest":
                return self._delta_page(path, state, [], finished=True)
        elif deltatoken is not None and skiptoken is None:
            # A deltaLink: the changes since its round, paged out of one snapshot of them.
            state = _DeltaState(
                state.version,
                state.select,
                state.generation,
                state.journal_version,
                minimal=minimal,
            )
            with store.lock:
                state.pending = self._changes(state, minimal)
                state.journal_version = store.version
        select = state.select if "id" in state.select else (*state.select, "id")
        if state.pending is not None:
            items = state.pending[: self.delta_page_size]
            rest = _DeltaState(
                state.version,
                state.select,
                state.generation,
                state.journal_version,
                pending=state.pending[self.delta_page_size :],
                minimal=state.minimal,
            )
            return self._delta_page(path, rest, items, finished=not rest.pending)
        page = _ListState("users", version, select, self.delta_page_size, state.position)
        items, next_position, more = self._user_page(page, select)
        rest = _DeltaState(
            state.version,
            state.select,
            state.generation,
            state.journal_version,
            position=next_position,
        )
        return self._delta_page(path, rest, items, finished=not more)

    def _delta_page(
        self, path: str, rest: _DeltaState, items: list[str], *, finished: bool
    ) -> Response:
        context = self._context(rest.version, "users", rest.select)
        token = self._store_page(rest)
        base = self._link_base(path)
        if finished:
            return self._odata(
                200, self._page_body(context, items, delta_link=f"{base}{path}?$deltatoken={token}")
            )
        return self._odata(
            200, self._page_body(context, items, next_link=f"{base}{path}?$skiptoken={token}")
        )

    def _changes(self, state: _DeltaState, minimal: bool) -> list[str]:
        store = self.tenant.users
        select = state.select
        entries: list[str] = []
        for user_id, first, last, restored in store.changes_since(state.journal_version):
            was_live = first.was == "live"
            if last.now == "live":
                current = store.get(user_id)
                assert current is not None
                before = first.before
                if not was_live or before is None or restored:
                    entries.append(
                        _dumps_user(current, select if "id" in select else (*select, "id"))
                    )
                    continue
                changed = [p for p in select if p != "id" and before.get(p) != current.get(p)]
                if not changed:
                    # "If a change occurs to a property that is not selected, the resource for
                    # which that property changed does not appear in the delta response"
                    continue
                if minimal:
                    shown = {"id": user_id, **{p: current.get(p) for p in changed}}
                else:
                    shown = {
                        p: current.get(p)
                        for p in select
                        if p != "id" and (current.get(p) is not None or before.get(p) is not None)
                    }
                    shown["id"] = user_id
                entries.append(_dumps(shown).decode("utf-8"))
            elif last.now == "deleted":
                if was_live:
                    entries.append(
                        _dumps({"id": user_id, "@removed": {"reason": "changed"}}).decode("utf-8")
                    )
            elif first.was in ("live", "deleted"):
                entries.append(
                    _dumps({"id": user_id, "@removed": {"reason": "deleted"}}).decode("utf-8")
                )
        return entries

    # the small collections
    def _list_plain(
        self,
        version: str,
        query: dict[str, list[str]],
        collection: str,
        entity: str,
        items: Callable[[], list[dict[str, Any]]],
    ) -> Response:
        # List domains (https://learn.microsoft.com/graph/api/domain-list?view=graph-rest-1.0),
        # List organization (https://learn.microsoft.com/graph/api/organization-list?view=graph-rest-1.0),
        # Get onPremisesDirectorySynchronization (https://learn.microsoft.com/graph/api/
        # onpremisesdirectorysynchronization-get?view=graph-rest-1.0: delegated
        # OnPremDirectorySynchronization.Read.All only, "Application: Not supported"),
        # List roleAssignments / roleEligibilityScheduleInstances / roleDefinitions.
        path = f"/{version}/{entity}"
        state = self._resume(query, _ListState)
        if state is None:
            select = self._select(version, query, collection, None)
            state = _ListState(
                collection,
                version,
                select,
                self._top(query) if "$top" in query else 1 << 30,
                0,
                {"expand": query.get("$expand", [""])[0]},
            )
        objects = items()
        chunk = objects[state.position : state.position + state.top]
        rendered = [_project(obj, state.select) for obj in chunk]
        if state.extra.get("expand", "").lower() == "principal":
            for obj, out in zip(chunk, rendered, strict=True):
                out["principal"] = self._principal(obj.get("principalId", ""))
        end = state.position + len(chunk)
        next_link = None
        if end < len(objects):
            token = self._store_page(
                _ListState(collection, version, state.select, state.top, end, state.extra)
            )
            next_link = f"{self._link_base(path)}{path}?$top={state.top}&$skiptoken={token}"
        context = self._context(version, entity, state.select)
        return self._odata(
            200, self._page_body(context, [_dumps(o).decode("utf-8") for o in rendered], next_link)
        )

    def _roles(
        self, version: str, name: str, query: dict[str, list[str]], headers: Mapping[str, str]
    ) -> Response:
        # rbacApplication: List roleAssignments, List roleEligibilityScheduleInstances, List
        # roleDefinitions (https://learn.microsoft.com/graph/api/rbacapplication-list-
        # roleassignments?view=graph-rest-1.0, ...-list-roleeligibilityscheduleinstances,
        # ...-list-roledefinitions). isPrivileged is a beta property of unifiedRoleDefinition
        # (not in v1.0's resource), so v1.0 leaves it out.
        if name == "roleassignments":
            self._authorize(headers, "roles")
            return self._list_plain(
                version,
                query,
                "unifiedRoleAssignment",
                "roleManagement/directory/roleAssignments",
                lambda: self.tenant.role_assignments,
            )
        if name == "roleeligibilityscheduleinstances":
            self._authorize(headers, "eligibility")
            return self._list_plain(
                version,
                query,
                "unifiedRoleEligibilityScheduleInstance",
                "roleManagement/directory/roleEligibilityScheduleInstances",
                lambda: self.tenant.role_eligibilities,
            )
        if name == "roledefinitions":
            self._authorize(headers, "roles")
            select = query.get("$select", [""])[0]
            if version != "beta" and "isprivileged" in select.lower():
                raise GraphError(
                    400,
                    "BadRequest",
                    (
                        "Parsing OData Select and Expand failed: Could not find a property named "
                        "'isPrivileged' on type 'microsoft.graph.unifiedRoleDefinition'."
                    ),
                )

            def definitions() -> list[dict[str, Any]]:
                if version == "beta":
                    return self.tenant.role_definitions
                return [
                    {k: v for k, v in d.items() if k != "isPrivileged"}
                    for d in self.tenant.role_definitions
                ]

            return self._list_plain(
                version,
                query,
                "unifiedRoleDefinition",
                "roleManagement/directory/roleDefinitions",
                definitions,
            )
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{name}'.")

    def _principal(self, principal_id: str) -> dict[str, Any] | None:
        group = self.tenant.groups.get(principal_id)
        if group is not None:
            return {
                "@odata.type": "#microsoft.graph.group",
                "id": group["id"],
                "displayName": group["displayName"],
            }
        found = self.tenant.users.get(principal_id)
        if found is not None:
            return {
                "@odata.type": "#microsoft.graph.user",
                "id": found["id"],
                "displayName": found["displayName"],
                "userPrincipalName": found["userPrincipalName"],
            }
        return None

    def _members(
        self, version: str, group_id: str, *, transitive: bool, query: dict[str, list[str]]
    ) -> Response:
        # List group members / transitiveMembers (https://learn.microsoft.com/graph/api/
        # group-list-members?view=graph-rest-1.0, group-list-transitivemembers): directory
        # objects with their @odata.type; transitiveMembers flattens nested groups (and lists
        # them too).
        if group_id not in self.tenant.groups:
            raise GraphError(
                404,
                "Request_ResourceNotFound",
                (
                    f"Resource '{group_id}' does not exist or one of its queried "
                    "reference-property objects are not present."
                ),
            )
        seen: set[str] = set()

        def walk(gid: str) -> Iterator[dict[str, Any]]:
            for member in self.tenant.groups[gid]["members"]:
                if member in seen:
                    continue
                seen.add(member)
                if member in self.tenant.groups:
                    group = self.tenant.groups[member]
                    yield {
                        "@odata.type": "#microsoft.graph.group",
                        "id": member,
                        "displayName": group["displayName"],
                    }
                    if transitive:
                        yield from walk(member)
                    continue
                found = self.tenant.users.get(member)
                if found is not None:
                    yield {
                        "@odata.type": "#microsoft.graph.user",
                        **{p: found.get(p) for p in DEFAULT_USER_PROPERTIES},
                    }

        members = list(walk(group_id))
        segment = "transitiveMembers" if transitive else "members"
        return self._list_plain(
            version, query, "directoryObject", f"groups/{group_id}/{segment}", lambda: members
        )


def _project(obj: Mapping[str, Any], select: Sequence[str] | None) -> dict[str, Any]:
    if select is None:
        return dict(obj)
    out = {name: obj.get(name) for name in select}
    if "id" in obj:
        out.setdefault("id", obj["id"])
    if "@odata.type" in obj:
        out = {"@odata.type": obj["@odata.type"], **out}
    return out


def _dumps_user(obj: Mapping[str, Any], select: Sequence[str]) -> str:
    return json.dumps(
        {name: obj.get(name) for name in select}, separators=(",", ":"), ensure_ascii=False
    )


@contextlib.contextmanager
def running_emulator(tenant: Tenant, directory: Path, *, seed: int = 0) -> Iterator[GraphEmulator]:
    emulator = GraphEmulator(tenant, directory, seed=seed)
    try:
        yield emulator
    finally:
        emulator.close()
