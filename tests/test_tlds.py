"""The bundled IANA list of delegated TLDs, and the regex the rules judge suffixes with."""

from __future__ import annotations

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from audit import tlds

NOT_DELEGATED = (
    "local",
    "lan",
    "corp",
    "lab",
    "loc",
    "lcl",
    "priv",
    "pvt",
    "internal",
    "home",
    "mail",
    "domain",
    "localnet",
    "intra",
    "localhost",
    "example",
    "test",
    "invalid",
)


def test_the_list_is_iana_s_and_dated() -> None:
    assert tlds.version() == "Version 2025100500, Last Updated Sun Oct  5 07:07:01 2025 UTC"
    assert len(tlds.delegated_tlds()) == 1439
    assert all(tlds.is_delegated(t) for t in ("com", "app", "dev", "online", "swiss", "XN--P1AI"))
    assert not any(tlds.is_delegated(t) for t in NOT_DELEGATED)


def _matches(values: list[str]) -> list[bool]:
    return pl.Series(values).str.contains(tlds.delegated_suffix_pattern()).to_list()


def test_the_suffix_regex_agrees_with_the_list_for_every_tld() -> None:
    every = sorted(tlds.delegated_tlds())
    assert _matches([f"ann@contoso.{t.upper()}" for t in every]) == [True] * len(every)
    assert _matches([f"ann@contoso.{t}" for t in NOT_DELEGATED]) == [False] * len(NOT_DELEGATED)


@given(
    local=st.text(alphabet="abc.@", max_size=8),
    host=st.text(alphabet="abc-.@", max_size=12),
    tld=st.sampled_from(["com", "co", "local", "comx", "xcom", "c", "app", "lab", ""]),
)
def test_the_suffix_regex_judges_the_last_label_after_the_last_at(
    local: str, host: str, tld: str
) -> None:
    value = f"{local}@{host}.{tld}"
    suffix = value.rsplit("@", 1)[1]
    expected = "." in suffix and tlds.is_delegated(suffix.rsplit(".", 1)[1])
    assert _matches([value]) == [expected and suffix.rsplit(".", 1)[1] != ""]
