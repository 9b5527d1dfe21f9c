"""PowerShell quoting and validation (audit/powershell.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.powershell import (
    UnsafeValue,
    comment_text,
    identifier,
    ps_literal,
    read_verbatim_literal,
    valid_ad_attribute,
    valid_anchor,
    valid_guid,
    valid_upn,
)
from tests.psast import evaluate_concat, parse


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("plain", "'plain'"),
        ("o'brien", "'o''brien'"),
        ("$(Remove-Item C:\\)", "'$(Remove-Item C:\\)'"),
        ("`n;&|", "'`n;&|'"),
        ("", "''"),
    ],
)
def test_ps_literal_doubles_every_quote_character(value, literal):
    assert ps_literal(value) == literal
    assert read_verbatim_literal(literal, 0) == (value, len(literal))


@pytest.mark.parametrize(
    ("value", "expression"),
    [
        # PowerShell's typographic quotes never reach the script as characters
        (
            "a\u2018b\u2019c\u201ad\u201be",
            "('a' + [char]0x2018 + 'b' + [char]0x2019 + 'c' + [char]0x201A + 'd' + [char]0x201B"
            " + 'e')",
        ),
        ("Erd\u0151s P\u00e9ter", "('Erd' + [char]0x0151 + 's P' + [char]0x00E9 + 'ter')"),
        ("\u0151", "('' + [char]0x0151)"),  # a string first, so + joins text, not numbers
        ("\U0001f600'", "('' + [char]0xD83D + [char]0xDE00 + '''')"),  # UTF-16 code units
    ],
)
def test_non_ascii_text_becomes_an_ascii_expression(value, expression):
    assert ps_literal(value) == expression
    assert expression.isascii()
    assert evaluate_concat(expression) == value
    parsed = parse(f"$x = {expression}\n")
    assert [v.value for v in parsed.values] == [value]


def test_null_and_booleans():
    assert (ps_literal(None), ps_literal(True), ps_literal(False)) == ("$null", "$true", "$false")


@pytest.mark.parametrize(
    "value",
    [
        "a\nb",
        "a\rb",
        "a\x00b",
        "a\u2028b",
        "a\u2029b",
        "a\u0085b",
        "a\x1bb",
        "a\x7fb",
        "a\u202eb",
        "a\u2066b",
        "\ud800",
        "x" * 4097,
    ],
)
def test_ps_literal_refuses_line_breaks_controls_bidi_and_huge_values(value):
    with pytest.raises(UnsafeValue):
        ps_literal(value)


def test_read_verbatim_literal_follows_powershell_not_the_grammar():
    # A lone typographic quote ends the string in PowerShell (tree-sitter would read on).
    script = "'a\u2018; calc; \u2018'"
    assert read_verbatim_literal(script, 0) == ("a", 3)
    with pytest.raises(ValueError, match="unterminated"):
        read_verbatim_literal("'abc", 0)


def test_comment_text_is_one_line_and_bounded():
    text = comment_text("a\nb\r\n\u2028\u2029\u0085\x00\u202e z\u00eb\U0001f600")
    assert text.isascii()
    assert text == "a\\x0ab\\x0d\\x0a\\u2028\\u2029\\x85\\x00\\u202e z\\xeb\\U0001f600"
    long = comment_text("y" * 1000, limit=50)
    assert long.startswith("y" * 50) and long.endswith("(1000 characters)")


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_any_text_is_refused_or_read_back_exactly(value):
    try:
        literal = ps_literal(value)
    except UnsafeValue:
        return
    assert literal.isascii()
    script = f"$x = {literal}\n# {comment_text(value)}\n"
    # the same script whatever code page reads it (Windows PowerShell 5.1 without BOM: cp1252)
    assert script.encode("ascii").decode("cp1252") == script
    parsed = parse(script)
    if value.isascii():
        assert read_verbatim_literal(literal, 0) == (value, len(literal))
        assert [lit.value for lit in parsed.literals] == [value]
    else:
        assert [v.value for v in parsed.values] == [value]


def test_guid_validation():
    assert valid_guid("59815F49-920B-4E9D-AD6C-82B53AA4C102") == (
        "59815f49-920b-4e9d-ad6c-82b53aa4c102"
    )
    for bad in (
        None,
        "",
        "59815f49920b4e9dad6c82b53aa4c102",
        "59815f49-920b-4e9d-ad6c-82b53aa4c10'",
    ):
        with pytest.raises(UnsafeValue):
            valid_guid(bad)


def test_anchor_validation():
    assert valid_anchor("SV+BWQuSnU6tbIK1OqTBAg==") == "SV+BWQuSnU6tbIK1OqTBAg=="
    for bad in (
        None,
        "SV-BWQuSnU6tbIK1OqTBAg==",  # url-safe
        "SV+BWQuSnU6tbIK1OqTBAg",  # unpadded
        "NDdhMTNhMjctZDMyNS00ZmM5LWE0ZWQtMWQ2OTAyOWI4ZjBm",  # base64 of GUID text
        "59815f49-920b-4e9d-ad6c-82b53aa4c102",
        "System.Byte[]",
        "SV+BWQuSnU6tbIK1OqTBAg=='",
    ):
        with pytest.raises(UnsafeValue):
            valid_anchor(bad)
    assert valid_anchor("E-12345", text_anchors=True) == "E-12345"
    for bad in ("E_12345", "E$1", "a b", "-lead", "x" * 257):
        with pytest.raises(UnsafeValue):
            valid_anchor(bad, text_anchors=True)


def test_upn_validation():
    for good in ("o'brien@contoso.com", "a.b-c_d!#^~@sub.contoso.co.uk"):
        assert valid_upn(good) == good
    for bad in (
        "a b@contoso.com",
        "a@contoso",
        "a@@contoso.com",
        "a$(x)@contoso.com",
        "zoë@contoso.com",
        "a@contoso.com\n",
        "x" * 65 + "@contoso.com",
        "a@" + "b" * 110 + ".com",
    ):
        with pytest.raises(UnsafeValue):
            valid_upn(bad)


def test_ad_attribute_allowlist_and_identifiers():
    assert valid_ad_attribute("proxyAddresses") == "proxyAddresses"
    with pytest.raises(UnsafeValue):
        valid_ad_attribute("memberOf")
    assert identifier("Invoke-SaSetAnchor") == "Invoke-SaSetAnchor"
    with pytest.raises(UnsafeValue):
        identifier("Invoke-X; calc")
