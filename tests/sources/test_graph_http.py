"""What a Graph page says before it has all arrived: early_next_link decides only on what it
has seen whole."""

from __future__ import annotations

from audit.sources.graph_http import early_next_link

PAGE = (
    b'{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#users",'
    b'"@odata.nextLink":"https://graph.microsoft.com/v1.0/users/delta?$skiptoken=a\\"b",'
    b'"value":[{"id":"u1","displayName":"@odata.nextLink"}]}'
)


def test_a_link_before_value_is_found_once_whole() -> None:
    link_end = PAGE.index(b'b",') + 2
    assert early_next_link(PAGE[:link_end]) == (
        True,
        'https://graph.microsoft.com/v1.0/users/delta?$skiptoken=a"b',
    )
    assert early_next_link(PAGE[: link_end - 3]) == (False, None)  # the link is cut short
    assert early_next_link(PAGE[:40]) == (False, None)


def test_a_link_after_value_is_left_to_the_whole_page() -> None:
    late = b'{"value":[{"id":"u1"}],"@odata.nextLink":"https://graph/next"}'
    assert early_next_link(late[:12]) == (True, None)
    assert early_next_link(late) == (True, None)


def test_a_null_link_or_none_means_no_early_page() -> None:
    assert early_next_link(b'{"@odata.nextLink":null,"value":[') == (True, None)
    assert early_next_link(b'{"@odata.context":"x","value":[') == (True, None)
