"""What a Graph answer says, read off its bytes: the nextLink or deltaLink of a page, the error
code and message, the Retry-After; and how hard the live read tries (:class:`GraphPolicy`).
Kept apart from :mod:`audit.sources.graph` (the collections and the session) so each stays
readable.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import SplitResult

import httpx

from audit.errors import InputError, Origin, short

# Status codes worth another try: throttled (429, with Retry-After: https://learn.microsoft.com/
# graph/throttling), service unavailable and gateway timeout (https://learn.microsoft.com/graph/
# errors, "503 ... Try the request again after a delay", 504).
RETRY_STATUS = frozenset({429, 503, 504})
NEXT_LINK_RE = re.compile(rb'"@odata\.nextLink"\s*:\s*("(?:[^"\\]|\\.)*"|null)', re.IGNORECASE)
DELTA_LINK_RE = re.compile(rb'"@odata\.deltaLink"\s*:\s*("(?:[^"\\]|\\.)*"|null)', re.IGNORECASE)
GROUP_TYPE = "#microsoft.graph.group"


@dataclass(frozen=True)
class GraphPolicy:
    """How hard the read tries. The SDK's RetryHandler is left out of the client: it honours
    Retry-After but has no budget for the whole read (and no cap on one wait), does not retry a
    reset connection, and adds a 3 s base to each backoff; one loop here does all of it."""

    budget: float = 900.0  # seconds from the start within which a retry may still begin
    attempts: int = 10  # tries of one request
    timeout: float = 120.0  # seconds without an answer before a request is given up
    backoff: float = 0.5  # first wait without Retry-After, doubling
    max_backoff: float = 30.0


def endpoint_of(url: SplitResult) -> tuple[str, str, int]:
    scheme = url.scheme.lower()
    port = url.port or (443 if scheme == "https" else 80)
    return scheme, (url.hostname or "").lower(), port


def next_link(body: bytes, origin: Origin) -> str | None:
    return page_link(body, origin, NEXT_LINK_RE)


def page_link(body: bytes, origin: Origin, pattern: re.Pattern[bytes]) -> str | None:
    """The page's @odata.nextLink (or deltaLink), read off the bytes (a key can only be a key
    in valid JSON: quotes inside strings are escaped); parsed whole only when that is unsure."""
    if not body.lstrip()[:1] == b"{":
        raise InputError(origin, "the answer is not a Graph JSON page")
    found = pattern.findall(body)
    if len(found) > 1:
        try:
            whole = json.loads(body)
        except ValueError as exc:
            raise InputError(origin, f"invalid JSON in the answer ({exc})") from None
        key = "@odata.deltalink" if pattern is DELTA_LINK_RE else "@odata.nextlink"
        link = {k.lower(): v for k, v in whole.items()}.get(key)
        return str(link) if link else None
    if not found:
        return None
    value = json.loads(found[0])
    return str(value) if value else None


def early_next_link(head: bytes) -> tuple[bool, str | None]:
    """From the start of a page still arriving: (decided, its nextLink). Decided once the
    nextLink has come whole before `value` (Graph's documented pages put it there), or once
    `value` has begun without one: then the page is read whole first."""
    value_at = head.find(b'"value"')
    found = NEXT_LINK_RE.search(head, 0, value_at if value_at >= 0 else len(head))
    if found is not None:
        link = json.loads(found.group(1))
        return True, str(link) if link else None
    return value_at >= 0, None


def group_principals(pages: list[bytes]) -> set[str]:
    """Ids of the role-assignable groups among the expanded principals."""
    groups: set[str] = set()
    for body in pages:
        for item in json.loads(body).get("value") or []:
            principal = item.get("principal") if isinstance(item, dict) else None
            if isinstance(principal, dict) and principal.get("@odata.type") == GROUP_TYPE:
                groups.add(str(item.get("principalId") or principal.get("id")))
    return groups


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "").strip()
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def error_of(response: httpx.Response) -> tuple[str, str]:
    try:
        error = json.loads(response.content).get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict):
        return str(error.get("code") or "?"), str(error.get("message") or "")
    return "?", short(response.text)


def error_code(response: httpx.Response) -> str:
    return error_of(response)[0]
