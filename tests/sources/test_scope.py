"""Sync scope: OU selection (most specific wins) and the RFC 4515 filter evaluator."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.config import AdSource
from audit.sources.scope import (
    And,
    Compare,
    FilterError,
    Not,
    Or,
    Present,
    Scope,
    Substring,
    filter_attributes,
    matches,
    parse_filter,
    scope_for,
)

USER = {
    "objectclass": ["top", "person", "organizationalPerson", "user"],
    "objectcategory": ["CN=Person,CN=Schema,CN=Configuration,DC=corp,DC=com"],
    "useraccountcontrol": ["66050"],  # 0x10202: disabled, normal account, password never expires
    "department": ["Sales (EMEA)"],
    "mail": ["Ann.Lee@Contoso.com"],
    "employeeid": ["00420"],
    "objectguid": [bytes.fromhex("d707ccf7157c7d44876dc01b0e5a9e38")],
    "whencreated": ["20200109153140.0Z"],
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(objectClass=user)", True),
        ("objectClass=USER", True),  # bare item, case-insensitive
        ("(objectCategory=person)", True),  # AD's short form of the schema DN
        ("(objectCategory=computer)", False),
        ("(&(objectClass=user)(!(objectClass=computer)))", True),
        ("(|(mail=nobody@x.com)(mail=ann.lee@contoso.com))", True),
        ("(mail=*)", True),
        ("(telephoneNumber=*)", False),
        ("(!(telephoneNumber=*))", True),
        ("(mail=ann*@contoso.com)", True),
        ("(mail=*lee*contoso*)", True),
        ("(mail=*lee*ann*)", False),  # substrings in order
        ("(mail=ann*)", True),
        ("(mail=*.org)", False),
        ("(department=Sales \\28EMEA\\29)", True),  # escaped parentheses
        ("(objectGUID=\\d7\\07\\cc\\f7\\15\\7c\\7d\\44\\87\\6d\\c0\\1b\\0e\\5a\\9e\\38)", True),
        ("(employeeID>=419)", True),  # numeric, not text, comparison
        ("(employeeID<=419)", False),
        ("(whenCreated>=20200101000000.0Z)", True),
        ("(userAccountControl:1.2.840.113556.1.4.803:=2)", True),  # disabled
        ("(!(userAccountControl:1.2.840.113556.1.4.803:=2))", False),  # enabled users only
        ("(userAccountControl:1.2.840.113556.1.4.803:=66050)", True),  # all bits
        ("(userAccountControl:1.2.840.113556.1.4.803:=3)", False),  # 0x1 not set
        ("(userAccountControl:1.2.840.113556.1.4.804:=3)", True),  # any bit
        ("(userAccountControl:1.2.840.113556.1.4.804:=1)", False),
        ("(missing:1.2.840.113556.1.4.803:=2)", False),
    ],
)
def test_filter_evaluation(text: str, expected: bool) -> None:
    assert matches(parse_filter(text), USER) is expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty filter"),
        ("(objectClass=user", "missing ')'"),
        ("(&(a=1)", "expected ')'"),
        ("(&)", "needs at least one filter"),
        ("(objectClass=user))", "unexpected text"),
        ("(mail=a\\zz)", "bad escape"),
        ("(memberOf:1.2.840.113556.1.4.1941:=CN=G,DC=x)", "not supported offline"),
        ("(uac:1.2.840.113556.1.4.803:=two)", "needs an integer"),
        ("(=x)", "attribute name"),
    ],
)
def test_filter_errors(text: str, message: str) -> None:
    with pytest.raises(FilterError, match=re.escape(message)):
        parse_filter(text)


def test_parse_tree_and_attributes() -> None:
    node = parse_filter("(&(a=1)(|(b=*)(!(c=x*y)))(d>=2))")
    assert node == And(
        (
            Compare("a", "=", b"1"),
            Or((Present("b"), Not(Substring("c", "x", (), "y")))),
            Compare("d", ">=", b"2"),
        )
    )
    assert filter_attributes(node) == {"a", "b", "c", "d"}


def test_most_specific_ou_wins() -> None:
    scope = Scope(
        include_ous=("OU=Corp,DC=x,DC=com", "OU=Keep,OU=Old,DC=x,DC=com"),
        exclude_ous=("OU=Disabled, OU=Corp,DC=x,DC=com", "OU=Old,DC=x,DC=com"),
    )
    assert scope.out_of_scope_reason("CN=A,OU=Staff,OU=Corp,DC=x,DC=com", {}) is None
    assert (
        scope.out_of_scope_reason("CN=B,OU=Disabled,OU=Corp,DC=X,DC=COM", {})
        == "excluded OU OU=Disabled, OU=Corp,DC=x,DC=com"
    )
    assert scope.out_of_scope_reason("cn=C,ou=Keep,ou=Old,dc=x,dc=com", {}) is None
    assert (
        scope.out_of_scope_reason("CN=D,OU=Old,DC=x,DC=com", {}) == "excluded OU OU=Old,DC=x,DC=com"
    )
    assert scope.out_of_scope_reason("CN=E,CN=Users,DC=x,DC=com", {}) == "outside include_ous"
    # An OU name that only ends like an included one is not inside it.
    assert scope.out_of_scope_reason("CN=F,OU=NotCorp,DC=x,DC=com", {}) == "outside include_ous"


def test_scope_for_config_with_filter() -> None:
    scope = scope_for(
        AdSource(
            exclude_ous=("OU=Disabled,DC=x",),
            filter="(!(userAccountControl:1.2.840.113556.1.4.803:=2))",
        )
    )
    assert scope.attributes == {"useraccountcontrol"}
    # outside the synced OUs the filter is judged too: a forecast bringing the OU in needs it
    assert (
        scope.out_of_scope_reason("CN=A,OU=Disabled,DC=x", USER)
        == "excluded OU OU=Disabled,DC=x; filter"
    )
    assert (
        scope.out_of_scope_reason("CN=A,OU=Disabled,DC=x", {"useraccountcontrol": ["512"]})
        == "excluded OU OU=Disabled,DC=x"
    )
    assert scope.out_of_scope_reason("CN=A,OU=Staff,DC=x", USER) == "filter"
    assert scope.out_of_scope_reason("CN=A,OU=Staff,DC=x", {"useraccountcontrol": ["512"]}) is None


# --- property: the evaluator agrees with a direct reading of the filter ----------------------

_attr = st.sampled_from(["uac", "mail", "dept"])
_value = st.text(alphabet="abcAB12*()\\", max_size=6)
_record = st.fixed_dictionaries(
    {
        "uac": st.lists(st.integers(0, 2**20).map(str), max_size=2),
        "mail": st.lists(st.text(alphabet="abcAB12", max_size=5), max_size=2),
        "dept": st.lists(st.text(alphabet="abcAB12", max_size=5), max_size=2),
    }
)


def _escape(value: str) -> str:
    return "".join(f"\\{ord(c):02x}" if c in "*()\\" else c for c in value)


def _leaf() -> st.SearchStrategy[tuple[str, object]]:
    equality = st.tuples(_attr, _value).map(
        lambda t: (
            f"({t[0]}={_escape(t[1])})",
            lambda r, a=t[0], v=t[1]: any(x.casefold() == v.casefold() for x in r[a]),
        )
    )
    present = _attr.map(lambda a: (f"({a}=*)", lambda r, a=a: bool(r[a])))
    bits = st.tuples(st.integers(1, 2**20), st.booleans()).map(
        lambda t: (
            f"(uac:1.2.840.113556.1.4.{803 if t[1] else 804}:={t[0]})",
            lambda r, m=t[0], all_=t[1]: any(
                (int(x) & m == m) if all_ else (int(x) & m != 0) for x in r["uac"]
            ),
        )
    )
    return st.one_of(equality, present, bits)


def _extend(
    children: st.SearchStrategy[tuple[str, object]],
) -> st.SearchStrategy[tuple[str, object]]:
    def combine(op: str, parts: list[tuple[str, object]]) -> tuple[str, object]:
        text = f"({op}{''.join(p[0] for p in parts)})"
        funcs = [p[1] for p in parts]
        if op == "&":
            return text, lambda r: all(f(r) for f in funcs)  # type: ignore[operator]
        return text, lambda r: any(f(r) for f in funcs)  # type: ignore[operator]

    negate = children.map(lambda c: (f"(!{c[0]})", lambda r, f=c[1]: not f(r)))  # type: ignore[operator]
    return st.one_of(
        st.tuples(st.sampled_from("&|"), st.lists(children, min_size=1, max_size=3)).map(
            lambda t: combine(*t)
        ),
        negate,
    )


@settings(max_examples=300, deadline=None)
@given(case=st.recursive(_leaf(), _extend, max_leaves=8), record=_record)
def test_filter_matches_reference_semantics(
    case: tuple[str, object], record: dict[str, list[str]]
) -> None:
    text, reference = case
    assert matches(parse_filter(text), record) is reference(record)  # type: ignore[operator]


def test_first_rdn_value_keeps_an_escaped_comma() -> None:
    from audit.sources.scope import first_rdn_value

    assert first_rdn_value("CN=O'Brien\\, Pat,OU=Staff,DC=corp") == "O'Brien\\, Pat"
    assert first_rdn_value("CN=Person,CN=Schema,CN=Configuration,DC=corp") == "Person"
    assert first_rdn_value("no-equals-sign") == "no-equals-sign"
