"""Tests for davserver.ifheader: the RFC 4918 10.4 If header, parsed and evaluated."""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from davserver.ifheader import (
    MAX_HEADER_LENGTH,
    Condition,
    ConditionList,
    IfHeader,
    IfHeaderError,
    ResourceState,
    evaluate,
    parse_if,
)

# The RFC's text, kept in the repository: the suite needs nothing beside it.
RFC_PATH = Path(__file__).resolve().parent / "data" / "rfc4918.txt"


def tok(value: str, negated: bool = False) -> Condition:
    return Condition(negated, "token", value)


def etag(value: str, negated: bool = False) -> Condition:
    return Condition(negated, "etag", value)


def lst(resource: str | None, *conditions: Condition) -> ConditionList:
    return ConditionList(resource, conditions)


def hdr(*lists: ConditionList) -> IfHeader:
    return IfHeader(lists)


def unfold(raw: str) -> str:
    """Join an example spread over several lines as an HTTP recipient would (RFC 9112 5.2)."""
    return re.sub(r"\r?\n[ \t]+", " ", raw)


Table = dict[str | None, ResourceState]

MISSING = ResourceState(exists=False, etag=None, lock_tokens=frozenset())


def states(
    table: Table,
) -> tuple[Callable[[str | None], ResourceState], list[str | None]]:
    """A state callback over a table (absent tags are unmapped) and the list of its calls."""
    calls: list[str | None] = []

    def state(tag: str | None) -> ResourceState:
        calls.append(tag)
        return table.get(tag, MISSING)

    return state, calls


def always(state: ResourceState) -> Callable[[str | None], ResourceState]:
    """A state callback that gives every tag the same state."""
    return lambda _tag: state


def res(etag: str | None = None, *tokens: str, exists: bool = True) -> ResourceState:
    return ResourceState(exists=exists, etag=etag, lock_tokens=frozenset(tokens))


# ---------------------------------------------------------------------------------------------
# Every If header example of RFC 4918, as printed (indentation and line breaks included).

U150 = "urn:uuid:150852e2-3847-42d5-8cbe-0f4f296f26cf"
U181 = "urn:uuid:181d4fae-7d8c-11d0-a765-00a0c91e6bf2"

RFC_EXAMPLES: list[tuple[str, str, IfHeader]] = [
    (
        "7.5.1",
        "If: <http://www.example.com/users/f/fielding/index.html>\n"
        "         (<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>)",
        hdr(
            lst(
                "http://www.example.com/users/f/fielding/index.html",
                tok("urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"),
            )
        ),
    ),
    ("7.5.2 no-tag", f"If: (<{U150}>)", hdr(lst(None, tok(U150)))),
    (
        "7.5.2 tagged collection",
        f"If: <http://example.com/locked/>\n         (<{U150}>)",
        hdr(lst("http://example.com/locked/", tok(U150))),
    ),
    (
        "7.5.2 tagged member",
        f"If: <http://example.com/locked/member>\n         (<{U150}>)",
        hdr(lst("http://example.com/locked/member", tok(U150))),
    ),
    (
        "9.9.6",
        "If: (<urn:uuid:fe184f2e-6eec-41d0-c765-01adc56e6bb4>)\n"
        "        (<urn:uuid:e454f3f3-acdc-452a-56c7-00a5c91e4b77>)",
        hdr(
            lst(None, tok("urn:uuid:fe184f2e-6eec-41d0-c765-01adc56e6bb4")),
            lst(None, tok("urn:uuid:e454f3f3-acdc-452a-56c7-00a5c91e4b77")),
        ),
    ),
    (
        "9.10.8",
        "If: (<urn:uuid:e71d4fae-5dec-22d6-fea5-00a0c91e6be4>)",
        hdr(lst(None, tok("urn:uuid:e71d4fae-5dec-22d6-fea5-00a0c91e6be4"))),
    ),
    (
        "10.4.6",
        f'If: (<{U181}>\n       ["I am an ETag"])\n       (["I am another ETag"])',
        hdr(
            lst(None, tok(U181), etag('"I am an ETag"')),
            lst(None, etag('"I am another ETag"')),
        ),
    ),
    (
        "10.4.7",
        f"If: (Not <{U181}>\n     <urn:uuid:58f202ac-22cf-11d1-b12d-002035b29092>)",
        hdr(
            lst(
                None,
                tok(U181, negated=True),
                tok("urn:uuid:58f202ac-22cf-11d1-b12d-002035b29092"),
            )
        ),
    ),
    (
        "10.4.8",
        f"If: (<{U181}>)\n       (Not <DAV:no-lock>)",
        hdr(lst(None, tok(U181)), lst(None, tok("DAV:no-lock", negated=True))),
    ),
    (
        "10.4.9",
        f'If: </resource1>\n       (<{U181}>\n       [W/"A weak ETag"]) (["strong ETag"])',
        hdr(
            lst("/resource1", tok(U181), etag('W/"A weak ETag"')),
            lst("/resource1", etag('"strong ETag"')),
        ),
    ),
    (
        "10.4.10",
        f"If: <http://www.example.com/specs/>\n       (<{U181}>)",
        hdr(lst("http://www.example.com/specs/", tok(U181))),
    ),
    (
        "10.4.11 etag",
        'If: </specs/rfc2518.doc> (["4217"])',
        hdr(lst("/specs/rfc2518.doc", etag('"4217"'))),
    ),
    (
        "10.4.11 not etag",
        'If: </specs/rfc2518.doc> (Not ["4217"])',
        hdr(lst("/specs/rfc2518.doc", etag('"4217"', negated=True))),
    ),
]


def example(section: str) -> str:
    """The header value of one RFC example, unfolded and without the "If:" name."""
    raw = next(raw for name, raw, _ in RFC_EXAMPLES if name == section)
    return unfold(raw).removeprefix("If:")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(raw, exp) for _, raw, exp in RFC_EXAMPLES],
    ids=[e[0] for e in RFC_EXAMPLES],
)
def test_rfc_example_parses(raw: str, expected: IfHeader) -> None:
    assert parse_if(unfold(raw).removeprefix("If:")) == expected


def test_rfc_examples_are_verbatim_and_complete() -> None:
    """Each table entry is quoted from the RFC, and the table misses none of its If headers."""
    text = RFC_PATH.read_text()
    for section, raw, _ in RFC_EXAMPLES:
        # The RFC indents each example by five spaces; line breaks keep their own indentation.
        assert "     " + raw in text, section
    in_rfc = re.findall(r"^ +If: ", text, flags=re.MULTILINE)
    assert len(in_rfc) == len(RFC_EXAMPLES)


# ---------------------------------------------------------------------------------------------
# What the RFC says each example means.


def test_rfc_10_4_6_token_and_etag_or_other_etag() -> None:
    header = parse_if(example("10.4.6"))
    cases = [
        (res('"I am an ETag"', U181), True),
        (res('"I am an ETag"'), False),  # right entity, lock missing
        (res('"other"', U181), False),  # locked, wrong entity
        (res('"I am another ETag"'), True),  # the second list alone
        (MISSING, False),
    ]
    for state, expected in cases:
        assert evaluate(header, always(state)) is expected, state


def test_rfc_10_4_7_not_locked_by_one_and_locked_by_other() -> None:
    other = "urn:uuid:58f202ac-22cf-11d1-b12d-002035b29092"
    header = parse_if(example("10.4.7"))
    assert evaluate(header, lambda _: res(None, other)) is True
    assert evaluate(header, lambda _: res(None, other, U181)) is False
    assert evaluate(header, lambda _: res(None)) is False
    assert evaluate(header, lambda _: res(None, U181)) is False


def test_rfc_10_4_8_always_true_and_token_still_submitted() -> None:
    header = parse_if(example("10.4.8"))
    for state in (MISSING, res(None), res('"x"', U181), res(None, "DAV:no-lock")):
        assert evaluate(header, always(state)) is True
    assert header.tokens() == {U181}


@pytest.mark.rfc4918("R-187")
def test_rfc_10_4_9_weak_etag_never_matches_under_strong_comparison() -> None:
    header = parse_if(example("10.4.9"))
    table: Table = {"/resource1": res('W/"A weak ETag"', U181)}
    state, calls = states(table)
    assert evaluate(header, state) is False
    assert calls == ["/resource1"]  # both lists share one lookup
    state, _ = states({"/resource1": res('"strong ETag"')})
    assert evaluate(header, state) is True
    # The Request-URI is never consulted by a tagged header.
    state, calls = states({None: res('"strong ETag"'), "/resource1": MISSING})
    assert evaluate(header, state) is False
    assert None not in calls


@pytest.mark.rfc4918("R-188")
def test_rfc_10_4_10_token_compared_to_tagged_collection() -> None:
    header = parse_if(example("10.4.10"))
    locked: Table = {"http://www.example.com/specs/": res('"c"', U181)}
    assert evaluate(header, states(locked)[0]) is True
    unlocked = {"http://www.example.com/specs/": res('"c"'), None: res(None, U181)}
    assert evaluate(header, states(unlocked)[0]) is False


def test_rfc_10_4_11_unmapped_url() -> None:
    state, calls = states({})
    assert evaluate(parse_if('</specs/rfc2518.doc> (["4217"])'), state) is False
    assert evaluate(parse_if('</specs/rfc2518.doc> (Not ["4217"])'), state) is True
    assert evaluate(parse_if(f"</specs/rfc2518.doc> (<{U181}>)"), state) is False
    assert evaluate(parse_if(f"</specs/rfc2518.doc> (Not <{U181}>)"), state) is True
    assert calls == ["/specs/rfc2518.doc"] * 4


# ---------------------------------------------------------------------------------------------
# Parsing: accepted forms.

ACCEPTED: list[tuple[str, IfHeader | None]] = [
    ("(<a:b>)", hdr(lst(None, tok("a:b")))),
    ("  \t(<a:b>)\t ", hdr(lst(None, tok("a:b")))),
    ("(<a:b>)(<c:d>)", hdr(lst(None, tok("a:b")), lst(None, tok("c:d")))),
    ("(Not<a:b>)", hdr(lst(None, tok("a:b", negated=True)))),
    ('(Not["x"])', hdr(lst(None, etag('"x"', negated=True)))),
    ('( \t<a:b>["x"]Not\t[W/"y"] )', hdr(lst(None, tok("a:b"), etag('"x"'), etag('W/"y"', True)))),
    ('([""])', hdr(lst(None, etag('""')))),
    ('(["a b\tc"])', hdr(lst(None, etag('"a b\tc"')))),  # RFC 2616 quoted-string, see 10.4.6
    ('([W/""])', hdr(lst(None, etag('W/""')))),
    ('(["!#$%&()*+,-./:;<=>?@[\\]^_`{|}~\x80\xe9\xff"])', None),  # every etagc class; see below
    ("(<DAV:no-lock>)", hdr(lst(None, tok("DAV:no-lock")))),
    ('(<(Not)[x]"é">)', hdr(lst(None, tok('(Not)[x]"é"')))),
    ("</a>(<t:1>)(<t:2>)", hdr(lst("/a", tok("t:1")), lst("/a", tok("t:2")))),
    (
        "</a>(<t:1>)</b>(<t:2>)</a>(<t:3>)",
        hdr(lst("/a", tok("t:1")), lst("/b", tok("t:2")), lst("/a", tok("t:3"))),
    ),
    ('<http://h/p?q=1> (["e"])', hdr(lst("http://h/p?q=1", etag('"e"')))),
]


@pytest.mark.parametrize(("value", "expected"), ACCEPTED)
def test_accepted(value: str, expected: IfHeader | None) -> None:
    parsed = parse_if(value)
    if expected is None:
        # The entity tag is kept exactly as written, quotes included.
        expected = hdr(lst(None, etag(value[2:-2])))
    assert parsed == expected


def test_max_length_is_inclusive_and_linear() -> None:
    body = "(" + "<t:x>" * ((MAX_HEADER_LENGTH - 2) // 5) + ")"
    value = body + " " * (MAX_HEADER_LENGTH - len(body))
    assert len(value) == MAX_HEADER_LENGTH
    parsed = parse_if(value)
    assert len(parsed.lists[0].conditions) == (MAX_HEADER_LENGTH - 2) // 5
    # One huge entity tag and one huge token also parse in one pass.
    big_etag = '(["' + "a" * (MAX_HEADER_LENGTH - 6) + '"])'
    assert (
        parse_if(big_etag).lists[0].conditions[0].value == '"' + "a" * (MAX_HEADER_LENGTH - 6) + '"'
    )
    big_tag = "<" + "b" * (MAX_HEADER_LENGTH - 10) + "> (<t:1>)"
    assert parse_if(big_tag).resources() == ("b" * (MAX_HEADER_LENGTH - 10),)


# ---------------------------------------------------------------------------------------------
# Parsing: errors, each with the offset it must report and a fragment of the reason.

TOO_LONG = "(<t:x>)" + " " * MAX_HEADER_LENGTH

ERRORS: list[tuple[str, int, str]] = [
    ("", 0, "the header is empty"),
    (" \t ", 3, "the header is empty"),
    ("x", 0, "expected '(' to open a list or '<' to open a resource tag"),
    ('["x"]', 0, "expected '(' to open a list"),
    ("\n(<a:b>)", 0, "found '\\n'"),  # line folding must be undone by the caller
    ("(", 1, "found end of header"),
    ("()", 1, "a list needs at least one condition"),
    ("( )", 2, "a list needs at least one condition"),
    ("(<a:b>", 6, "expected 'Not', '<', '[' or ')'"),
    ("(<a:b> x)", 7, "expected 'Not', '<', '[' or ')'"),
    ("(<>)", 2, "'<>' is empty"),
    ("(<a b>)", 3, "expected '>' to close the state token opened at offset 1"),
    ("(<a\tb>)", 3, "may not contain whitespace"),
    ("(<a<b>)", 3, "expected '>' to close the state token"),
    ("(<a:b", 5, "found end of header"),
    ("(<a\x00>)", 3, "control characters"),
    ("(<a\x85>)", 3, "control characters"),
    ("(<a\x9f>)", 3, "control characters"),
    ("(<a\x7f>)", 3, "control characters"),
    ("(<a\u00a0>)", 3, "whitespace"),
    ("(not <a:b>)", 1, "expected 'Not', '<' or '['"),
    ("(NOT <a:b>)", 1, "expected 'Not', '<' or '['"),
    ("(Not)", 4, "expected '<' or '[' after 'Not'"),
    ("(Not Not <a:b>)", 5, "expected '<' or '[' after 'Not'"),
    ("(Nota:b)", 4, "after 'Not'"),
    ("(<a:b> Not)", 10, "after 'Not'"),
    ("([abc])", 2, "expected '\"' or 'W/\"' to open the entity tag"),
    ('([ "a"])', 2, "'[' must be followed directly by the entity tag"),
    ('([w/"a"])', 2, "'W/\"' to open the entity tag"),
    ("([W/x])", 4, "expected '\"' after 'W/'"),
    ("([W/", 4, "found end of header"),
    ("([", 2, "found end of header"),
    ('(["a" ])', 5, "expected ']' to close the '[' at offset 1"),
    ('(["a"', 5, "found end of header"),
    ('(["a"x])', 5, "must be followed directly by ']'"),
    ('(["a])', 6, "to close the entity tag opened at offset 1"),
    ('(["a\x01"])', 4, "expected an entity-tag character"),
    ('(["a\nb"])', 4, "found '\\n'"),
    ('(["a\x7f"])', 4, "found '\\x7f'"),
    ('(["\u0100"])', 3, "expected an entity-tag character"),
    ("(<a:b>) </r> (<c:d>)", 8, "a header that starts untagged cannot have resource tags"),
    ("(<a:b>) x", 8, "expected '(' or end of header"),
    ("(<a:b>) )", 8, "expected '(' or end of header"),
    # The whole message once, so that each part of it is pinned down, not only contained.
    (
        "</r>",
        4,
        "invalid If header: expected '(' at offset 4, found end of header"
        " (a resource tag must be followed by at least one list)",
    ),
    ("</r> </s> (<a:b>)", 5, "a resource tag must be followed by at least one list"),
    ("</r> (<a:b>) </s>", 17, "a resource tag must be followed by at least one list"),
    ("</r> x", 5, "a resource tag must be followed by at least one list"),
    ("</r> (<a:b>) x", 13, "expected '(', '<' or end of header"),
    ('</r> (<a:b>) ["e"]', 13, "expected '(', '<' or end of header"),
    ("<> (<a:b>)", 1, "'<>' is empty"),
    ("</r s> (<a:b>)", 3, "expected '>' to close the resource tag opened at offset 0"),
    ("</r", 3, "found end of header"),
    (" " * (MAX_HEADER_LENGTH + 1), MAX_HEADER_LENGTH, "found 65537"),
    (TOO_LONG, MAX_HEADER_LENGTH, f"expected at most {MAX_HEADER_LENGTH} characters"),
]


@pytest.mark.parametrize(
    ("value", "offset", "reason"), ERRORS, ids=[repr(e[0])[:40] for e in ERRORS]
)
def test_parse_error(value: str, offset: int, reason: str) -> None:
    with pytest.raises(IfHeaderError) as info:
        parse_if(value)
    message = str(info.value)
    assert info.value.offset == offset
    assert f"offset {offset}" in message
    assert "expected" in message
    assert reason in message


def test_error_is_a_value_error_and_pickles() -> None:
    with pytest.raises(ValueError, match="at offset 1") as info:
        parse_if("()")
    assert isinstance(info.value, IfHeaderError)
    copy = pickle.loads(pickle.dumps(info.value))
    assert isinstance(copy, IfHeaderError)
    assert (str(copy), copy.offset) == (str(info.value), 1)


# ---------------------------------------------------------------------------------------------
# Evaluation truth tables.

TOKEN_TABLE: list[tuple[Condition, ResourceState, bool]] = [
    (tok("t:1"), res(None, "t:1"), True),
    (tok("t:1"), res(None, "t:1", "t:2"), True),
    (tok("t:1"), res(None, "t:2"), False),
    (tok("t:1"), res(None), False),
    (tok("T:1"), res(None, "t:1"), False),  # exact match
    (tok("t:1", True), res(None, "t:1"), False),
    (tok("t:1", True), res(None, "t:2"), True),
    # Lock scope belongs to the URL: an unmapped URL inside a locked collection matches.
    (tok("t:1"), res(None, "t:1", exists=False), True),
    (tok("t:1"), MISSING, False),
    (tok("t:1", True), MISSING, True),
    (tok("DAV:no-lock"), res(None), False),
    (tok("DAV:no-lock"), res(None, "DAV:no-lock"), False),  # never a lock, whatever we are told
    (tok("DAV:no-lock", True), res(None, "DAV:no-lock"), True),
    (tok("DAV:no-lock", True), MISSING, True),
]

ETAG_TABLE: list[tuple[Condition, ResourceState, bool]] = [
    (etag('"a"'), res('"a"'), True),
    (etag('"a"'), res('"b"'), False),
    (etag('"a"'), res('"A"'), False),
    (etag('"a"'), res(None), False),
    (etag('"a"'), res('"a"', exists=False), False),  # unmapped: no entity, whatever we are told
    (etag('"a"'), MISSING, False),
    (etag('W/"a"'), res('W/"a"'), False),  # strong comparison: weak tags never match
    (etag('W/"a"'), res('"a"'), False),
    (etag('"a"'), res('W/"a"'), False),
    (etag('"a"', True), res('"a"'), False),
    (etag('"a"', True), res('"b"'), True),
    (etag('"a"', True), res(None), True),
    (etag('"a"', True), MISSING, True),
    (etag('W/"a"', True), res('W/"a"'), True),
    (etag('""'), res('""'), True),
]


@pytest.mark.parametrize(("condition", "state", "expected"), TOKEN_TABLE + ETAG_TABLE)
def test_single_condition(condition: Condition, state: ResourceState, expected: bool) -> None:
    for resource in (None, "/r"):
        lookup, calls = states({resource: state})
        assert evaluate(hdr(lst(resource, condition)), lookup) is expected
        assert calls == [resource]


def test_list_is_a_conjunction() -> None:
    header = hdr(lst(None, tok("t:1"), etag('"a"'), tok("t:2", True)))
    assert evaluate(header, lambda _: res('"a"', "t:1")) is True
    assert evaluate(header, lambda _: res('"b"', "t:1")) is False
    assert evaluate(header, lambda _: res('"a"')) is False
    assert evaluate(header, lambda _: res('"a"', "t:1", "t:2")) is False


@pytest.mark.rfc4918("R-185")
def test_lists_are_a_disjunction_each_against_its_own_resource() -> None:
    header = parse_if('</a> (<t:a>) </b> (["b"]) </c> (Not <t:c>)')
    table: Table = {
        "/a": res('"b"', "t:x"),  # would satisfy the /b list, but /b is judged on its own
        "/b": res('"b"'),
        "/c": res(None, "t:c"),
    }
    state, calls = states(table)
    assert evaluate(header, state) is True
    assert calls == ["/a", "/b"]  # stops at the first list that holds

    table["/b"] = res('"other"', "t:a")
    state, calls = states(table)
    assert evaluate(header, state) is False
    assert calls == ["/a", "/b", "/c"]

    del table["/c"]  # an unmapped /c has no locks, so "Not <t:c>" holds
    state, _ = states(table)
    assert evaluate(header, state) is True


def test_state_called_once_per_tag_and_with_tag_as_written() -> None:
    header = parse_if(
        '<http://EXAMPLE.com/a%20b> (<t:1>) (<t:2>) </x/> (["e"])'
        " <http://EXAMPLE.com/a%20b> (<t:3>)"
    )
    state, calls = states({})
    assert evaluate(header, state) is False
    assert calls == ["http://EXAMPLE.com/a%20b", "/x/"]


def test_untagged_lists_all_use_the_request_uri() -> None:
    header = parse_if('(<t:1>) (["e"]) (Not <t:2> <t:3>)')
    state, calls = states({None: res('"f"', "t:2", "t:3")})
    assert evaluate(header, state) is False
    assert calls == [None]
    state, _ = states({None: res('"e"', "t:2")})
    assert evaluate(header, state) is True


# ---------------------------------------------------------------------------------------------
# tokens() and resources().


@pytest.mark.parametrize(
    ("value", "tokens", "resources"),
    [
        ("(<t:1>)", {"t:1"}, (None,)),
        ("(<t:1>) (<t:2> <t:1>)", {"t:1", "t:2"}, (None,)),
        ("(Not <t:1>)", set(), (None,)),
        ("(Not <t:1> <t:1>)", {"t:1"}, (None,)),  # submitted by its non-negated occurrence
        ("(<DAV:no-lock>) (Not <DAV:no-lock>)", set(), (None,)),
        ('(["t:1"] <t:2>)', {"t:2"}, (None,)),  # entity tags are not tokens
        (f"(<{U181}>) (Not <DAV:no-lock>)", {U181}, (None,)),
        ("</b> (<t:1>) </a> (<t:2>) </b> (<t:3>)", {"t:1", "t:2", "t:3"}, ("/b", "/a")),
        ('</b> (<t:1>)(<t:2>) <http://h/a> (["x"])', {"t:1", "t:2"}, ("/b", "http://h/a")),
    ],
)
def test_tokens_and_resources(value: str, tokens: set[str], resources: tuple[str | None]) -> None:
    header = parse_if(value)
    assert header.tokens() == frozenset(tokens)
    assert header.resources() == resources


def test_values_are_frozen_and_hashable() -> None:
    header = parse_if('</a> (<t:1> Not ["e"])')
    assert hash(header) == hash(parse_if('</a>(<t:1>Not["e"])'))
    with pytest.raises(AttributeError):
        header.lists = ()  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# Properties.

# Coded-URL contents: anything but whitespace, controls and angle brackets (which covers the
# characters that frame the rest of the grammar, such as "(", ")", "[", "]" and '"').
url_chars = st.characters(
    exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp"), exclude_characters="<>"
)
coded_url = st.one_of(
    st.sampled_from(["DAV:no-lock", U181, "/a", "http://h/a%20b"]),
    st.text(url_chars, min_size=1, max_size=12),
)
etagc = st.sampled_from(
    ["\t", " ", "!"] + [chr(c) for c in range(0x23, 0x7F)] + [chr(c) for c in range(0x80, 0x100)]
)
entity_tag = st.builds(
    lambda weak, body: ("W/" if weak else "") + '"' + body + '"',
    st.booleans(),
    st.text(etagc, max_size=8),
)
conditions = st.one_of(
    st.builds(Condition, st.booleans(), st.just("token"), coded_url),
    st.builds(Condition, st.booleans(), st.just("etag"), entity_tag),
)
condition_tuples = st.lists(conditions, min_size=1, max_size=4).map(tuple)


@st.composite
def if_headers(draw: st.DrawFn) -> IfHeader:
    if draw(st.booleans()):
        # A small pool of tags, so that repeated and interleaved tags occur.
        pool = draw(st.lists(coded_url, min_size=1, max_size=3))
        resource: st.SearchStrategy[str | None] = st.sampled_from(pool)
    else:
        resource = st.none()
    lists = draw(
        st.lists(st.builds(ConditionList, resource, condition_tuples), min_size=1, max_size=4)
    )
    return IfHeader(tuple(lists))


def render(header: IfHeader, ws: Callable[[], str], repeat_tag: Callable[[], bool]) -> str:
    """Write a header back as text, with random optional whitespace between every two tokens."""
    parts = [ws()]
    previous: str | None = None
    for condition_list in header.lists:
        tag = condition_list.resource
        # Consecutive lists for one tag may share the tag or repeat it: both mean the same.
        if tag is not None and (tag != previous or repeat_tag()):
            parts += ["<", tag, ">", ws()]
        previous = tag
        parts += ["(", ws()]
        for condition in condition_list.conditions:
            if condition.negated:
                parts += ["Not", ws()]
            framed = f"<{condition.value}>" if condition.kind == "token" else f"[{condition.value}]"
            parts += [framed, ws()]
        parts += [")", ws()]
    return "".join(parts)


@given(if_headers(), st.data())
def test_round_trip(header: IfHeader, data: st.DataObject) -> None:
    text = render(
        header,
        lambda: data.draw(st.text(" \t", max_size=2)),
        lambda: data.draw(st.booleans()),
    )
    assert parse_if(text) == header
    # resources() is the tags in order of first appearance, without repeats.
    expected: list[str | None] = []
    for condition_list in header.lists:
        if condition_list.resource not in expected:
            expected.append(condition_list.resource)
    assert header.resources() == tuple(expected)


grammar_soup = st.text(st.sampled_from(list('()<>[]"W/Not \t:ab\x00\né')), max_size=40)


@given(st.one_of(st.text(max_size=80), grammar_soup))
def test_parse_raises_only_if_header_error(value: str) -> None:
    try:
        header = parse_if(value)
    except IfHeaderError as error:
        assert 0 <= error.offset <= len(value)
        assert f"offset {error.offset}" in str(error)
        return
    assert header.lists
    assert all(c.conditions for c in header.lists)
    tagged = {c.resource is not None for c in header.lists}
    assert len(tagged) == 1
    # Whatever parsed, written back without whitespace, parses to the same value.
    assert parse_if(render(header, lambda: "", lambda: True)) == header


TOKENS = ["t:1", "t:2", "DAV:no-lock"]
ETAGS = ['"1"', '"2"', 'W/"1"']
small_conditions = st.one_of(
    st.builds(Condition, st.booleans(), st.just("token"), st.sampled_from(TOKENS)),
    st.builds(Condition, st.booleans(), st.just("etag"), st.sampled_from(ETAGS)),
)
resource_states = st.builds(
    ResourceState,
    st.booleans(),
    st.sampled_from([None, *ETAGS]),
    st.frozensets(st.sampled_from(TOKENS)),
)


def holds_directly(condition: Condition, state: ResourceState) -> bool:
    """The RFC 4918 10.4.4 matching rules, written out independently of the module."""
    if condition.kind == "token":
        found = condition.value in state.lock_tokens and condition.value != "DAV:no-lock"
    else:
        strong = not condition.value.startswith("W/")
        found = state.exists and strong and state.etag == condition.value
    return not found if condition.negated else found


@given(
    st.lists(small_conditions, min_size=1, max_size=5),
    resource_states,
    st.sampled_from([None, "/r"]),
)
def test_single_list_is_the_conjunction(
    conds: list[Condition], state: ResourceState, resource: str | None
) -> None:
    calls: list[str | None] = []

    def lookup(tag: str | None) -> ResourceState:
        calls.append(tag)
        return state

    expected = all(holds_directly(c, state) for c in conds)
    assert evaluate(IfHeader((ConditionList(resource, tuple(conds)),)), lookup) is expected
    assert calls == [resource]


@given(
    st.lists(
        st.builds(
            ConditionList,
            st.sampled_from(["/a", "/b", "/c"]),
            st.lists(small_conditions, min_size=1, max_size=3).map(tuple),
        ),
        min_size=1,
        max_size=5,
    ),
    st.fixed_dictionaries({"/a": resource_states, "/b": resource_states}),
)
def test_header_is_the_disjunction_of_its_lists(
    lists: list[ConditionList], table: dict[str, ResourceState]
) -> None:
    def lookup(tag: str | None) -> ResourceState:
        return MISSING if tag is None else table.get(tag, MISSING)

    header = IfHeader(tuple(lists))
    whole = evaluate(header, lookup)
    parts = [evaluate(IfHeader((one,)), lookup) for one in lists]
    assert whole is any(parts)
