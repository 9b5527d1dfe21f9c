"""The live Entra read (issue 13): Microsoft Graph pages fetched as bytes through msgraph-sdk's
request adapter, kept in the run exactly as received, and read by the same code as exported
files (:func:`audit.sources.files.read_cloud_side`), so ``syncaudit import`` of the kept pages
gives the identical snapshot by construction and no SDK model object is built per user.

- Calls (FACTS.md section 3): ``GET /users`` ($select = the properties entra.py reads that
  v1.0 has, $top=999), after ``GET /users/delta?$deltatoken=latest`` with the same $select,
  which answers a deltaLink and no users ("sync from now", delta-query-overview): the deltaLink
  a later run starts from (graph_delta.py), taken before the enumeration so no change falls
  between the two. A delta round takes no $top and Graph decides its page size, so paging
  /users by 999 costs a fraction of the requests (and throttling resource units: one per page
  either way with $select, throttling-limits "Identity and access service limits");
  ``/directory/deletedItems/microsoft.graph.user`` (the cast is required;
  its default page is 100, so $top=999 too), ``/domains``, ``/organization``,
  ``/directory/onPremisesSynchronization`` (delegated only: an app-only token's 403 leaves the
  switches unknown with a note, never a failure), ``/roleManagement/directory/roleAssignments``
  and ``roleEligibilityScheduleInstances`` with ``$expand=principal`` (a principal may be a
  role-assignable group: its members are listed), and beta ``roleDefinitions`` (isPrivileged
  is beta-only). The independent collections run concurrently.
- Kept as ``raw/graph/users-<n>.json`` (the users pages or the delta round's, n from 1) and,
  for what the importer takes as one file, one page per line: ``deleted.json``,
  ``domains.json``, ``tenant.json`` (organization, then onPremisesSynchronization or its error
  answer), ``role-assignments.json``, ``role-eligibilities.json``, ``role-definitions.json``,
  and ``role-groups.json`` (one object ``{id, members}`` per group, the form ``--roles`` takes
  for group members).
- An @odata.nextLink is followed only to graph_url's scheme, host and port; the token is never
  sent anywhere else (the adapter's allowed hosts are graph_url's host alone).
- Retries: 429/503/504, a reset or cut connection are tried again after Retry-After (else a
  doubling backoff) while the read's time budget lasts; then one InputError naming the call and
  page (``GET /users page 7``). Complete or nothing: any collection that cannot be read whole
  fails the read and nothing is returned.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import ssl
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from azure.core.exceptions import AzureError
from kiota_abstractions.request_information import RequestInformation
from kiota_http.middleware import ParametersNameDecodingHandler
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient

# msgraph-core ships no py.typed: its two names are used as Any
from msgraph_core import GraphClientFactory  # type: ignore[import-untyped]
from msgraph_core.authentication import (  # type: ignore[import-untyped]
    AzureIdentityAuthenticationProvider,
)
from msgraph_core.middleware import GraphTelemetryHandler  # type: ignore[import-untyped]

from audit.config import EntraSettings, Settings
from audit.errors import InputError, Origin, short
from audit.sources.files import CloudExports, CloudSide, read_cloud_side
from audit.sources.graph_auth import (
    EntraAuth,
    HeldToken,
    auth_failure,
    entra_auth,
    resolved_files,
)
from audit.sources.graph_http import (
    DELTA_LINK_RE,
    RETRY_STATUS,
    early_next_link,
    endpoint_of,
    error_code,
    error_of,
    group_principals,
    next_link,
    page_link,
    retry_after,
)
from audit.sources.graph_http import (
    GraphPolicy as GraphPolicy,  # re-exported: callers set the read's patience
)
from audit.sources.graph_requests import GraphRequests
from audit.sources.graph_transport import Fetching, ThreadedTransport, watched
from audit.sources.secrets import scrub
from audit.sources.snapshot import taken_at as parse_taken_at

GRAPH_DIR = "graph"
DELTA_LINK = "@odata.deltaLink"
PATIENT = GraphPolicy()  # the default: 15 minutes of retries for one read
# A deltaLink the service no longer knows: 410 Gone ("Synchronization reset") or a 40x with
# syncStateNotFound (expired token: seven days for directory objects, "Token duration"), both
# meaning "start again with a full synchronization" (https://learn.microsoft.com/graph/
# delta-query-overview; the codes: https://learn.microsoft.com/graph/errors#code-property).
DELTA_RESET_CODES = frozenset({"syncStateNotFound", "resyncRequired"})
# The application permission each collection needs (least privileged, from each List page's
# permissions table: user-list, directory-deleteditems-list, domain-list, organization-list,
# rbacapplication-list-roleassignments, rbacapplication-list-roleeligibilityscheduleinstances
# (RoleManagement.Read.Directory is among the accepted ones), rbacapplication-list-
# roledefinitions, group-list-members; https://learn.microsoft.com/graph/api/<page>).
PERMISSIONS = {
    "users": "User.Read.All",
    "deleted": "User.Read.All",
    "domains": "Domain.Read.All",
    "organization": "Organization.Read.All",
    "role-assignments": "RoleManagement.Read.Directory",
    "role-eligibilities": "RoleManagement.Read.Directory",
    "role-definitions": "RoleManagement.Read.Directory",
    "group-members": "GroupMember.ReadBasic.All",
}
# How each call is named in a message ("GET /users page 7").
LABELS = {
    "users": "/users",
    "users-delta": "/users/delta",
    "deleted": "/directory/deletedItems/microsoft.graph.user",
    "domains": "/domains",
    "organization": "/organization",
    "role-assignments": "/roleManagement/directory/roleAssignments",
    "role-eligibilities": "/roleManagement/directory/roleEligibilityScheduleInstances",
    "role-definitions": "/beta/roleManagement/directory/roleDefinitions",
}


class DeltaExpired(InputError):
    """Graph no longer knows the deltaLink (410, syncStateNotFound, resyncRequired): the users
    must be enumerated again from the start."""


@dataclass(frozen=True)
class EntraPages:
    """What one live read fetched: the kept files as exports, the users round's deltaLink."""

    exports: CloudExports
    delta_link: str
    taken: datetime


def read_entra(
    settings: Settings,
    *,
    raw_dir: Path,
    environ: Mapping[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
    policy: GraphPolicy = PATIENT,
) -> CloudSide:
    """The tenant read live (every user enumerated) into the cloud side of a snapshot, its
    pages kept in `raw_dir`/graph; InputError (one line, no secret) when anything cannot be
    read whole."""
    fetched = fetch_entra(
        settings, raw_dir=raw_dir, environ=environ, progress=progress, policy=policy
    )
    return read_cloud_side(fetched.exports, settings=settings, taken=fetched.taken)


def fetch_entra(
    settings: Settings,
    *,
    raw_dir: Path,
    environ: Mapping[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
    policy: GraphPolicy = PATIENT,
    delta_link: str | None = None,
) -> EntraPages:
    """Every collection's pages into `raw_dir`/graph; the users as a full delta round, or as
    the changes since `delta_link` (DeltaExpired when Graph no longer knows it)."""
    entra = resolved_files(settings.entra, settings.source_path)
    auth = entra_auth(entra, os.environ if environ is None else environ, prompt=progress)
    out = raw_dir / GRAPH_DIR
    out.mkdir(parents=True, exist_ok=True)
    taken = parse_taken_at(None)
    try:
        exports, link = asyncio.run(_read_all(entra, auth, out, policy, progress, delta_link))
    finally:
        auth.close()
    return EntraPages(exports, link, taken)


async def _read_all(
    entra: EntraSettings,
    auth: EntraAuth,
    out: Path,
    policy: GraphPolicy,
    progress: Callable[[str], None] | None,
    delta_link: str | None,
) -> tuple[CloudExports, str]:
    session = GraphSession(entra, auth, policy, progress)
    try:
        await session.sign_in()
        async with asyncio.TaskGroup() as group:
            users = group.create_task(session.users(out, delta_link))
            deleted = group.create_task(
                session.collection("deleted", LABELS["deleted"], session.requests.deleted())
            )
            domains = group.create_task(
                session.collection("domains", LABELS["domains"], session.requests.plain("domains"))
            )
            tenant = group.create_task(session.tenant())
            roles = group.create_task(session.roles())
    except BaseExceptionGroup as failed:
        raise _first_error(failed) from None
    finally:
        await session.close()
    files = {
        "deleted.json": deleted.result(),
        "domains.json": domains.result(),
        "tenant.json": tenant.result(),
        **roles.result(),
    }
    for name, pages in files.items():
        (out / name).write_bytes(b"\n".join(pages) + b"\n")
    user_files, link = users.result()
    exports = CloudExports(
        cloud=user_files,
        deleted=out / "deleted.json",
        domains=out / "domains.json",
        tenant=out / "tenant.json",
        roles=[out / name for name in roles.result()],
    )
    return exports, link


def _discard(task: asyncio.Task[Any]) -> None:
    """A request no longer wanted: cancelled, and an error it already ended with left unsaid
    (asyncio would print it when the task is collected)."""
    task.cancel()
    task.add_done_callback(lambda done: None if done.cancelled() else done.exception())


def _first_error(failed: BaseExceptionGroup[Any]) -> BaseException:
    """The error to show from a failed TaskGroup: an operator's one line before a bug."""
    leaves: list[BaseException] = []

    def walk(group: BaseExceptionGroup[Any]) -> None:
        for exc in group.exceptions:
            walk(exc) if isinstance(exc, BaseExceptionGroup) else leaves.append(exc)

    walk(failed)
    return next((e for e in leaves if isinstance(e, InputError)), leaves[0])


class GraphSession:
    """One GraphServiceClient over one httpx client, its retries and its page rules."""

    def __init__(
        self,
        entra: EntraSettings,
        auth: EntraAuth,
        policy: GraphPolicy,
        progress: Callable[[str], None] | None,
    ) -> None:
        self.entra, self.auth, self.policy, self.progress = entra, auth, policy, progress
        self.root = entra.graph_url.rstrip("/")
        self.base = urlsplit(self.root)
        if self.base.scheme != "https" or not self.base.hostname:
            raise InputError(
                Origin("[entra] graph_url"), f"{self.root}: give https://<graph host>/v1.0"
            )
        if not self.base.path.endswith("/v1.0"):
            raise InputError(
                Origin("[entra] graph_url"),
                f"{self.root}: must end with /v1.0 (the beta role definitions are read beside it)",
            )
        self.beta = self.root[: -len("v1.0")] + "beta"
        self.deadline = time.monotonic() + policy.budget
        verify: ssl.SSLContext | bool = True
        if entra.ca_file:
            verify = ssl.create_default_context(cafile=entra.ca_file)
        http = httpx.AsyncClient(
            transport=ThreadedTransport(verify=verify, http2=True),
            timeout=httpx.Timeout(policy.timeout, connect=min(policy.timeout, 30.0)),
        )
        # Of kiota's eight default handlers only the two a Graph request needs: `$select`
        # spelled as Graph reads it, and the SdkVersion/client-request-id headers. Retries and
        # redirects are fetch()'s (GraphPolicy); each handler left out saves a coroutine hop
        # and a tracing span per request (benchmarks/RESULTS.md).
        self.http = GraphClientFactory.create_with_custom_middleware(
            [ParametersNameDecodingHandler(), GraphTelemetryHandler()], client=http
        )
        # The bearer token goes to graph_url's host and nowhere else (kiota's allowed hosts).
        self.tokens = HeldToken(auth.credential)
        provider = AzureIdentityAuthenticationProvider(
            self.tokens, allowed_hosts=[self.base.hostname]
        )
        self.adapter = GraphRequestAdapter(provider, self.http)
        self.adapter.base_url = self.root
        self.client = GraphServiceClient(request_adapter=self.adapter)
        self.requests = GraphRequests(self.client, self.adapter, self.beta)

    async def sign_in(self) -> None:
        """One token before the collections start together: a device-code credential would
        otherwise open one sign-in per concurrent first request (each asks the operator for
        its own code); later requests take the cached token. The scope is the one the SDK's
        auth provider asks for (graph_url's scheme and host, /.default), with continuous access
        evaluation on as it asks: azure-identity caches CAE and other tokens apart."""
        scope = f"{self.base.scheme}://{self.base.hostname}/.default"
        get_token = functools.partial(self.tokens.get_token, claims=None, enable_cae=True)
        try:
            await asyncio.to_thread(get_token, scope)
        except AzureError as exc:
            raise auth_failure(exc, self.entra, self.auth) from None

    async def close(self) -> None:
        await self.http.aclose()

    # --- collections -------------------------------------------------------------------------

    async def users(self, out: Path, start: str | None) -> tuple[list[Path], str]:
        """Every user (GET /users) or the changes since the deltaLink `start` (GET that link),
        each page written as received: users-1.json, users-2.json...; and the deltaLink the
        next run starts from: asked for before the enumeration, or closing the delta round."""
        files: list[Path] = []
        started = time.monotonic()
        link: str | None = None
        if start is None:
            # Changes made while the users are paged come again in the next round, which
            # applies them as the state they ended in: nothing is lost, nothing counted twice.
            link = await self.latest_delta_link()
            label, first = LABELS["users"], self.requests.users()
        else:
            label = LABELS["users-delta"]
            first = self.follow(start, Origin(label), DELTA_LINK)
        async for page, body, last in self.pages("users", label, first):
            path = out / f"users-{page}.json"
            path.write_bytes(body)
            files.append(path)
            if last and start is not None:  # the deltaLink closes the round
                origin = Origin(f"GET {label}", page=page)
                link = page_link(body, origin, DELTA_LINK_RE)
                if link is not None:
                    self.follow(link, origin, DELTA_LINK)  # graph_url's host only
            if self.progress is not None and page % 10 == 0:
                self.progress(f"GET {label}: {page} pages in {time.monotonic() - started:.1f} s")
        if link is None:
            raise InputError(
                Origin(f"GET {label}", page=len(files)), "the round ended without a deltaLink"
            )
        return files, link

    async def latest_delta_link(self) -> str:
        """The deltaLink of "now" (GET /users/delta?$deltatoken=latest: no users, one page)."""
        origin = Origin(f"GET {LABELS['users-delta']}?$deltatoken=latest", page=1)
        response = await self.fetch(self.requests.latest_delta(), origin)
        self.refuse(response, "users", origin)
        link = page_link(response.content, origin, DELTA_LINK_RE)
        if link is None or next_link(response.content, origin) is not None:
            raise InputError(origin, "the answer has no deltaLink, or also a nextLink")
        self.follow(link, origin, DELTA_LINK)  # graph_url's host only
        return link

    async def collection(self, name: str, label: str, first: RequestInformation) -> list[bytes]:
        return [body async for _, body, _ in self.pages(name, label, first)]

    async def tenant(self) -> list[bytes]:
        """GET /organization, then /directory/onPremisesSynchronization: its 403 (app-only
        tokens; the call is delegated-only, onpremisesdirectorysynchronization-get) is kept as
        received, which the tenant reader notes and skips: the switches stay unknown."""
        organization = await self.collection(
            "organization", LABELS["organization"], self.requests.plain("organization")
        )
        path = "/directory/onPremisesSynchronization"
        response = await self.fetch(self.requests.plain("sync"), Origin(f"GET {path}", page=1))
        if response.status_code == 403:
            if self.progress is not None:
                self.progress(
                    f"GET {path}: 403 (it needs a delegated token): the matching switches are "
                    "unknown unless [entra.features] gives them"
                )
            return [*organization, response.content]
        self.refuse(response, "sync", Origin(f"GET {path}", page=1))
        body = response.content
        if next_link(body, Origin(f"GET {path}", page=1)) is not None:
            raise InputError(Origin(f"GET {path}", page=1), "a single object came with a nextLink")
        return [*organization, body]

    async def roles(self) -> dict[str, list[bytes]]:
        """Role assignments, eligibilities (principals expanded) and beta definitions, then the
        members of every role-assignable group that holds one."""
        assigned, eligible, definitions = await asyncio.gather(
            self.collection(
                "role-assignments",
                LABELS["role-assignments"],
                self.requests.roles(eligible=False),
            ),
            self.collection(
                "role-eligibilities",
                LABELS["role-eligibilities"],
                self.requests.roles(eligible=True),
            ),
            self.collection(
                "role-definitions",
                LABELS["role-definitions"],
                self.requests.plain("role-definitions"),
            ),
        )
        groups = sorted(group_principals([*assigned, *eligible]))
        members = await asyncio.gather(*(self.members(group) for group in groups))
        grouped = {"value": [{"id": g, "members": m} for g, m in zip(groups, members, strict=True)]}
        return {
            "role-assignments.json": assigned,
            "role-eligibilities.json": eligible,
            "role-definitions.json": definitions,
            "role-groups.json": [json.dumps(grouped, separators=(",", ":")).encode("utf-8")],
        }

    async def members(self, group_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        label = f"/groups/{quote(group_id)}/members"
        async for _, body, _ in self.pages("group-members", label, self.requests.members(group_id)):
            found.extend(json.loads(body).get("value") or [])
        return found

    # --- paging and retries ------------------------------------------------------------------

    async def pages(
        self, name: str, label: str, first: RequestInformation
    ) -> AsyncIterator[tuple[int, bytes, bool]]:
        """(page number, body, whether it is the last) of every page of a query, following
        nextLink on graph_url. The next page is asked for as soon as this one's nextLink has
        arrived (before `value`, as Graph writes it), else before this one is handed over; a
        page asked for early is used only when the whole page names the same link."""
        page = 1
        current: Fetching | None = self.start(first, Origin(f"GET {label}", page=page))
        ahead: tuple[str, Fetching] | None = None
        try:
            while current is not None:
                origin = Origin(f"GET {label}", page=page)
                following = Origin(f"GET {label}", page=page + 1)
                task, early = current
                if not task.done():
                    waiting: set[asyncio.Future[Any]] = {task, early}
                    await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                soon = early.result() if early.done() else None
                if soon is not None and not task.done():
                    ahead = (soon, self.start(self.follow(soon, origin), following))
                response = await task
                self.refuse(response, name, origin)
                body = response.content
                link = next_link(body, origin)
                current = None
                if link is not None and ahead is not None and ahead[0] == link:
                    current = ahead[1]
                elif link is not None:
                    current = self.start(self.follow(link, origin), following)
                    await asyncio.sleep(0)  # the task sends its request before this page is used
                if ahead is not None and ahead[1] is not current:
                    _discard(ahead[1][0])  # asked for from a link the whole page did not confirm
                ahead = None
                yield page, body, current is None
                page += 1
        finally:
            for left in (current, ahead[1] if ahead is not None else None):
                if left is not None:
                    _discard(left[0])

    def start(self, request: RequestInformation, origin: Origin) -> Fetching:
        """The request sent on its own task, with the nextLink its answer names early."""
        return watched(self.fetch(request, origin), early_next_link)

    def follow(
        self, link: str, origin: Origin, what: str = "@odata.nextLink"
    ) -> RequestInformation:
        target = urlsplit(link)
        if endpoint_of(target) != endpoint_of(self.base):
            scheme, host, port = endpoint_of(target)
            raise InputError(
                origin,
                f"{what} points at {scheme}://{host}:{port}, not at graph_url "
                f"{self.root}: not followed (the token is sent to graph_url only)",
            )
        info = self.client.users.with_url(link).to_get_request_information(self.requests.config())
        return info

    async def fetch(self, request: RequestInformation, origin: Origin) -> httpx.Response:
        """The final answer to one request (200 or an error that another try cannot mend),
        after the retries the budget allows."""
        attempt = 0
        while True:
            attempt += 1
            why: str
            wait: float | None = None
            try:
                response: httpx.Response = await self.adapter.send_primitive_async(
                    request, "bytes", None
                )
            except AzureError as exc:
                raise auth_failure(exc, self.entra, self.auth) from None
            except httpx.TransportError as exc:
                why = f"connection failed ({type(exc).__name__}: {short(str(exc))})"
            else:
                if response.status_code not in RETRY_STATUS:
                    return response
                why = f"{response.status_code} {error_code(response)}"
                wait = retry_after(response)
            if wait is None:
                wait = min(self.policy.backoff * 2 ** (attempt - 1), self.policy.max_backoff)
            left = self.deadline - time.monotonic()
            if attempt >= self.policy.attempts or wait > left:
                spent = (
                    f"after {attempt} attempts"
                    if attempt >= self.policy.attempts
                    else f"the next try ({wait:g} s later) would pass the retry budget of "
                    f"{self.policy.budget:g} s"
                )
                raise InputError(origin, f"{scrub(why, self.auth.secret)}: gave up {spent}")
            await asyncio.sleep(wait)

    def refuse(self, response: httpx.Response, name: str, origin: Origin) -> None:
        """InputError for any answer but 200, saying what to fix."""
        status = response.status_code
        if status == 200:
            return
        code, message = error_of(response)
        said = f"{status} {code}: {short(scrub(message, self.auth.secret))}"
        if name == "users" and (status == 410 or code in DELTA_RESET_CODES):
            raise DeltaExpired(origin, f"{said}: the deltaLink is no longer valid")
        if status == 403:
            permission = PERMISSIONS.get(name, "")
            raise InputError(
                origin,
                f"{said}: grant the app the application permission {permission} (with admin "
                "consent)",
            )
        if status == 401:
            raise InputError(
                origin, f"{said}: the token was refused; check [entra] tenant_id and graph_url"
            )
        raise InputError(origin, said)
