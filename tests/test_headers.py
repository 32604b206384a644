"""davserver.headers: Range, conditionals, ETags, dates, Depth/Overwrite/Timeout and Prefer."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from davserver import headers as h
from davserver.errors import BadRequest, RangeNotSatisfiable
from davserver.headers import Validators, evaluate_preconditions, parse_range

# -- Range ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "size", "expected"),
    [
        ("bytes=0-4", 10, [(0, 4)]),
        ("bytes=3-3", 10, [(3, 3)]),
        ("bytes=0-0", 1, [(0, 0)]),
        ("bytes=-3", 10, [(7, 9)]),
        ("bytes=-10", 10, [(0, 9)]),
        ("bytes=-20", 10, [(0, 9)]),
        ("bytes=5-", 10, [(5, 9)]),
        ("bytes=0-", 10, [(0, 9)]),
        ("bytes=9-", 10, [(9, 9)]),
        ("bytes=5-100", 10, [(5, 9)]),
        ("bytes=0-9", 10, [(0, 9)]),
        ("BYTES=0-1", 10, [(0, 1)]),
        ("bytes = 0-1", 10, [(0, 1)]),
        ("bytes=0-1, 5-6", 10, [(0, 1), (5, 6)]),
        ("bytes=5-6,0-1", 10, [(5, 6), (0, 1)]),
        ("bytes=0-1,,5-6", 10, [(0, 1), (5, 6)]),
        ("bytes=0-5,3-8", 10, [(0, 8)]),
        ("bytes=3-8,0-5", 10, [(0, 8)]),
        ("bytes=0-4,5-9", 10, [(0, 9)]),
        ("bytes=0-2,1-1,8-9", 10, [(0, 2), (8, 9)]),
        ("bytes=0-1,-2", 10, [(0, 1), (8, 9)]),
        ("bytes=20-30,0-1", 10, [(0, 1)]),
        ("bytes=0-1,20-", 10, [(0, 1)]),
        ("bytes=-0,0-1", 10, [(0, 1)]),
    ],
)
def test_parse_range(value: str, size: int, expected: list[tuple[int, int]]) -> None:
    assert parse_range(value, size) == expected


def test_many_small_ranges_are_coalesced_to_a_bounded_number() -> None:
    value = "bytes=" + ",".join(f"{i * 2}-{i * 2}" for i in range(500))
    ranges = parse_range(value, 2000)
    assert ranges is not None
    assert len(ranges) <= 64
    covered = {b for first, last in ranges for b in range(first, last + 1)}
    assert {i * 2 for i in range(500)} <= covered


def test_no_range_header_means_whole_entity() -> None:
    assert parse_range(None, 10) is None


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("bytes=10-20", 10),
        ("bytes=10-", 10),
        ("bytes=100-200,50-", 10),
        ("bytes=-0", 10),
        ("bytes=0-", 0),
        ("bytes=0-0", 0),
    ],
)
def test_unsatisfiable_range_is_416(value: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable) as info:
        parse_range(value, size)
    assert info.value.status == 416


@pytest.mark.parametrize(
    "value",
    [
        "bytes=",
        "bytes=-",
        "bytes=a-b",
        "bytes=1-a",
        "bytes=5-2",
        "bytes=1-2-3",
        "bytes=0-1,x",
        "bytes=0-1,5-2",
        "bytes=--1",
        "bytes=+1-2",
        "bytes=0x1-2",
        "bytes 0-5",
        "0-5",
        "",
        "garbage",
    ],
)
def test_malformed_range_is_ignored(value: str) -> None:
    assert parse_range(value, 10) is None


@pytest.mark.parametrize("value", ["items=0-5", "chars=0-1", "none", "bits=0-8"])
def test_other_range_units_are_ignored(value: str) -> None:
    assert parse_range(value, 10) is None


def test_suffix_range_on_an_empty_file_sends_the_whole_empty_entity() -> None:
    # A zero-length representation has no byte to name: no (first, last) pair can be valid,
    # so the whole (empty) entity is the answer (RFC 9110 14.1.2, 14.2).
    assert parse_range("bytes=-5", 0) is None


range_spec = st.one_of(
    st.tuples(st.integers(0, 300), st.integers(0, 300)).map(lambda t: f"{min(t)}-{max(t)}"),
    st.integers(0, 300).map(lambda n: f"{n}-"),
    st.integers(0, 300).map(lambda n: f"-{n}"),
)


@given(st.lists(range_spec, min_size=1, max_size=80), st.integers(0, 200))
def test_returned_ranges_lie_within_the_entity(specs: list[str], size: int) -> None:
    value = "bytes=" + ",".join(specs)
    try:
        ranges = parse_range(value, size)
    except RangeNotSatisfiable:
        return
    if ranges is None:
        return
    assert ranges
    assert len(ranges) <= 64
    for first, last in ranges:
        assert 0 <= first <= last <= size - 1


@given(st.text(max_size=30), st.integers(0, 100))
def test_parse_range_never_crashes(value: str, size: int) -> None:
    try:
        ranges = parse_range(value, size)
    except RangeNotSatisfiable:
        return
    for first, last in ranges or []:
        assert 0 <= first <= last < size


# -- entity tags ----------------------------------------------------------------------------


def test_quote_etag() -> None:
    assert h.quote_etag("abc") == '"abc"'


@pytest.mark.parametrize(
    ("value", "etag", "weak", "expected"),
    [
        ('"a"', '"a"', False, True),
        ('"a"', '"b"', False, False),
        ('"x", "a"', '"a"', False, True),
        ('"x" ,"a" ', '"a"', False, True),
        ('"x","y"', '"a"', False, False),
        ('W/"a"', '"a"', False, False),
        ('W/"a"', '"a"', True, True),
        ('"a"', '"a"', True, True),
        ('W/"x", W/"a"', '"a"', True, True),
        ("*", '"a"', False, True),
        ("*", '"a"', True, True),
        (" * ", '"a"', False, True),
        ("a", '"a"', False, False),
        ("a", '"a"', True, False),
        ('"a', '"a"', False, False),
        ("", '"a"', False, False),
    ],
)
def test_etag_in(value: str, etag: str, weak: bool, expected: bool) -> None:
    assert h.etag_in(value, etag, weak=weak, exists=True) is expected


def test_etag_in_star_means_the_resource_exists() -> None:
    # A collection exists but has no entity tag: `*` still matches it (RFC 9110 13.1.1).
    assert h.etag_in("*", None, weak=False, exists=True)
    assert h.etag_in("*", None, weak=True, exists=True)
    assert not h.etag_in("*", None, weak=False, exists=False)
    assert not h.etag_in("*", None, weak=True, exists=False)
    assert not h.etag_in('"a"', None, weak=False, exists=True)
    assert not h.etag_in('"a"', None, weak=True, exists=False)


# -- conditionals (RFC 9110 13.2.2) ---------------------------------------------------------

ETAG = '"abc"'
MTIME = 1_000_000_000.5  # 2001-09-09T01:46:40.5Z
CURRENT = Validators(ETAG, MTIME)
MISSING = Validators(None, None)
BEFORE = h.http_date(MTIME - 100)
AT = h.http_date(MTIME)  # whole seconds: equal to int(MTIME)
AFTER = h.http_date(MTIME + 100)


def pre(method: str, current: Validators = CURRENT, **headers: str) -> int | None:
    return evaluate_preconditions(method, headers, current)


def test_no_conditionals() -> None:
    assert pre("GET") is None
    assert pre("PUT") is None
    assert pre("PUT", MISSING) is None


def test_if_match() -> None:
    assert pre("PUT", HTTP_IF_MATCH=ETAG) is None
    assert pre("PUT", HTTP_IF_MATCH='"other", "abc"') is None
    assert pre("PUT", HTTP_IF_MATCH='"other"') == 412
    assert pre("GET", HTTP_IF_MATCH='"other"') == 412
    assert pre("DELETE", HTTP_IF_MATCH='"other"') == 412


def test_if_match_uses_strong_comparison() -> None:
    assert pre("PUT", HTTP_IF_MATCH='W/"abc"') == 412
    assert pre("GET", HTTP_IF_MATCH='W/"abc"') == 412


def test_if_match_star() -> None:
    assert pre("PUT", HTTP_IF_MATCH="*") is None
    assert pre("PUT", MISSING, HTTP_IF_MATCH="*") == 412
    assert pre("PUT", MISSING, HTTP_IF_MATCH=ETAG) == 412


def test_if_unmodified_since() -> None:
    assert pre("PUT", HTTP_IF_UNMODIFIED_SINCE=AFTER) is None
    assert pre("PUT", HTTP_IF_UNMODIFIED_SINCE=AT) is None
    assert pre("PUT", HTTP_IF_UNMODIFIED_SINCE=BEFORE) == 412
    assert pre("GET", HTTP_IF_UNMODIFIED_SINCE=BEFORE) == 412


def test_if_unmodified_since_ignored_when_invalid_or_nothing_exists() -> None:
    assert pre("PUT", HTTP_IF_UNMODIFIED_SINCE="yesterday") is None
    assert pre("PUT", MISSING, HTTP_IF_UNMODIFIED_SINCE=BEFORE) is None


def test_if_match_beats_if_unmodified_since() -> None:
    assert pre("PUT", HTTP_IF_MATCH=ETAG, HTTP_IF_UNMODIFIED_SINCE=BEFORE) is None
    assert pre("PUT", HTTP_IF_MATCH='"other"', HTTP_IF_UNMODIFIED_SINCE=AFTER) == 412


def test_if_none_match_on_safe_methods_is_304() -> None:
    assert pre("GET", HTTP_IF_NONE_MATCH=ETAG) == 304
    assert pre("HEAD", HTTP_IF_NONE_MATCH=ETAG) == 304
    assert pre("GET", HTTP_IF_NONE_MATCH='"x", "abc"') == 304
    assert pre("GET", HTTP_IF_NONE_MATCH='"other"') is None


def test_if_none_match_on_other_methods_is_412() -> None:
    for method in ("PUT", "DELETE", "PROPPATCH", "MOVE", "COPY", "PROPFIND", "POST"):
        assert pre(method, HTTP_IF_NONE_MATCH=ETAG) == 412, method
        assert pre(method, HTTP_IF_NONE_MATCH='"other"') is None, method


def test_if_none_match_uses_weak_comparison() -> None:
    assert pre("GET", HTTP_IF_NONE_MATCH='W/"abc"') == 304
    assert pre("PUT", HTTP_IF_NONE_MATCH='W/"abc"') == 412


def test_star_matches_a_collection_without_etag() -> None:
    collection = Validators(None, MTIME)
    assert pre("PUT", collection, HTTP_IF_MATCH="*") is None
    assert pre("PUT", collection, HTTP_IF_MATCH=ETAG) == 412
    assert pre("GET", collection, HTTP_IF_NONE_MATCH="*") == 304
    assert pre("MKCOL", collection, HTTP_IF_NONE_MATCH="*") == 412
    assert pre("GET", collection, HTTP_IF_NONE_MATCH=ETAG) is None


def test_if_none_match_star() -> None:
    assert pre("GET", HTTP_IF_NONE_MATCH="*") == 304
    assert pre("PUT", HTTP_IF_NONE_MATCH="*") == 412
    assert pre("PUT", MISSING, HTTP_IF_NONE_MATCH="*") is None
    assert pre("GET", MISSING, HTTP_IF_NONE_MATCH="*") is None


def test_if_modified_since() -> None:
    assert pre("GET", HTTP_IF_MODIFIED_SINCE=AT) == 304
    assert pre("HEAD", HTTP_IF_MODIFIED_SINCE=AFTER) == 304
    assert pre("GET", HTTP_IF_MODIFIED_SINCE=BEFORE) is None
    assert pre("GET", HTTP_IF_MODIFIED_SINCE="not a date") is None
    assert pre("GET", MISSING, HTTP_IF_MODIFIED_SINCE=AFTER) is None


def test_if_modified_since_only_for_get_and_head() -> None:
    for method in ("PUT", "DELETE", "PROPFIND", "COPY"):
        assert pre(method, HTTP_IF_MODIFIED_SINCE=AFTER) is None, method


def test_if_none_match_beats_if_modified_since() -> None:
    # A non-matching If-None-Match means changed, whatever the date says.
    assert pre("GET", HTTP_IF_NONE_MATCH='"other"', HTTP_IF_MODIFIED_SINCE=AFTER) is None
    assert pre("GET", HTTP_IF_NONE_MATCH=ETAG, HTTP_IF_MODIFIED_SINCE=BEFORE) == 304


def test_step_order_if_match_before_if_none_match() -> None:
    assert pre("GET", HTTP_IF_MATCH='"other"', HTTP_IF_NONE_MATCH=ETAG) == 412
    assert pre("GET", HTTP_IF_UNMODIFIED_SINCE=BEFORE, HTTP_IF_NONE_MATCH=ETAG) == 412
    assert pre("GET", HTTP_IF_MATCH=ETAG, HTTP_IF_NONE_MATCH=ETAG) == 304
    assert pre("PUT", HTTP_IF_MATCH=ETAG, HTTP_IF_NONE_MATCH='"other"') is None


# -- dates ----------------------------------------------------------------------------------

SAMPLE = 784111777  # Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110 5.6.7)


@pytest.mark.parametrize(
    "value",
    [
        "Sun, 06 Nov 1994 08:49:37 GMT",  # IMF-fixdate
        "Sunday, 06-Nov-94 08:49:37 GMT",  # obsolete RFC 850
        "Sun Nov  6 08:49:37 1994",  # obsolete asctime
    ],
)
def test_parse_http_date_accepts_the_three_formats(value: str) -> None:
    assert h.parse_http_date(value) == SAMPLE


@pytest.mark.parametrize(
    "value",
    ["", "garbage", "yesterday", "Sun, 32 Nov 1994 08:49:37 GMT", "1994-11-06T08:49:37Z", "0"],
)
def test_parse_http_date_rejects_garbage(value: str) -> None:
    assert h.parse_http_date(value) is None


def test_http_date_format() -> None:
    assert h.http_date(SAMPLE) == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert h.http_date(SAMPLE + 0.9) == "Sun, 06 Nov 1994 08:49:37 GMT"


@given(st.integers(0, 253402300799))  # up to 9999-12-31T23:59:59Z
def test_http_date_round_trip(timestamp: int) -> None:
    text = h.http_date(timestamp)
    assert text.endswith(" GMT")
    assert h.parse_http_date(text) == timestamp


@given(st.text(max_size=40))
def test_parse_http_date_never_crashes(value: str) -> None:
    result = h.parse_http_date(value)
    assert result is None or isinstance(result, float)


# -- Depth, Overwrite, Timeout --------------------------------------------------------------

ALL_DEPTHS = ("0", "1", "infinity")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0", "0"), ("1", "1"), ("infinity", "infinity"), ("Infinity", "infinity"), (" 1 ", "1")],
)
def test_parse_depth(value: str, expected: str) -> None:
    assert h.parse_depth(value, "infinity", ALL_DEPTHS) == expected


def test_parse_depth_default() -> None:
    assert h.parse_depth(None, "infinity", ALL_DEPTHS) == "infinity"
    assert h.parse_depth(None, "0", ("0",)) == "0"


@pytest.mark.parametrize("value", ["2", "-1", "", "infinite", "one", "0,1", "1.0"])
def test_parse_depth_garbage_is_400(value: str) -> None:
    with pytest.raises(BadRequest):
        h.parse_depth(value, "infinity", ALL_DEPTHS)


def test_parse_depth_outside_allowed_is_400() -> None:
    with pytest.raises(BadRequest):
        h.parse_depth("1", "infinity", ("0", "infinity"))
    with pytest.raises(BadRequest):
        h.parse_depth("infinity", "0", ("0",))


@pytest.mark.parametrize(
    ("value", "expected"), [(None, True), ("T", True), ("t", True), ("F", False), (" f ", False)]
)
def test_parse_overwrite(value: str | None, expected: bool) -> None:
    assert h.parse_overwrite(value) is expected


@pytest.mark.parametrize("value", ["", "yes", "true", "0", "TF"])
def test_parse_overwrite_garbage_is_400(value: str) -> None:
    with pytest.raises(BadRequest):
        h.parse_overwrite(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Second-60", 60),
        ("second-0", 0),
        ("SECOND-3600", 3600),
        ("Infinite", None),
        ("infinite", None),
        (" Infinite ", None),
        ("Infinite, Second-4100000000", None),
        ("Second-4100000000, Infinite", 4100000000),
        ("Second-30, Infinite", 30),
        ("Extra-1, Second-30", 30),
        ("Second-abc, Second-20", 20),
        ("Second-, Infinite", None),
    ],
)
def test_parse_timeout(value: str, expected: int | None) -> None:
    assert h.parse_timeout(value) == expected


@pytest.mark.parametrize("value", ["", "Second-abc", "Second--1", "60", "Forever", "Second-1.5"])
def test_parse_timeout_garbage_is_400(value: str) -> None:
    with pytest.raises(BadRequest):
        h.parse_timeout(value)


# -- Prefer ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefer", "brief", "minimal", "no_root"),
    [
        (None, None, False, False),
        ("return=minimal", None, True, False),
        ("depth-noroot", None, False, True),
        ("return=minimal, depth-noroot", None, True, True),
        ("depth-noroot,return=minimal", None, True, True),
        ("Return=Minimal", None, True, False),
        ("return = minimal", None, True, False),
        ("  return=minimal ; foo=bar", None, True, False),
        ("DEPTH-NOROOT", None, False, True),
        ("return=representation", None, False, False),
        ("respond-async", None, False, False),
        (None, "t", True, False),
        (None, "T", True, False),
        (None, " t ", True, False),
        (None, "f", False, False),
        ("depth-noroot", "t", True, True),
        ("", "", False, False),
    ],
)
def test_parse_prefer(prefer: str | None, brief: str | None, minimal: bool, no_root: bool) -> None:
    assert h.parse_prefer(prefer, brief) == h.Preferences(minimal=minimal, no_root=no_root)


# -- If-Range -------------------------------------------------------------------------------


def test_if_range_allows() -> None:
    assert h.if_range_allows(None, ETAG, MTIME)
    assert h.if_range_allows(ETAG, ETAG, MTIME)
    assert h.if_range_allows(f" {ETAG} ", ETAG, MTIME)
    assert not h.if_range_allows('"other"', ETAG, MTIME)
    assert not h.if_range_allows('W/"abc"', ETAG, MTIME)
    assert h.if_range_allows(AT, ETAG, MTIME)
    assert not h.if_range_allows(BEFORE, ETAG, MTIME)
    assert not h.if_range_allows(AFTER, ETAG, MTIME)
    assert not h.if_range_allows("garbage", ETAG, MTIME)


# -- Found by mutation testing (docs/mutation.md) ----------------------------------------------


@pytest.fixture
def new_york_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A local zone other than UTC, as on a server not run in UTC."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("new_york_time")
@pytest.mark.parametrize("value", ["Sun Nov  6 08:49:37 1994", "Sun, 06 Nov 1994 08:49:37 GMT"])
def test_a_date_without_a_zone_is_gmt_whatever_the_local_zone(value: str) -> None:
    # asctime dates carry no zone; HTTP dates are GMT (RFC 9110 5.6.7), not local time.
    assert h.parse_http_date(value) == SAMPLE


def test_rfc3339_date_format() -> None:
    assert h.rfc3339_date(SAMPLE) == "1994-11-06T08:49:37Z"
    assert h.rfc3339_date(SAMPLE + 0.9) == "1994-11-06T08:49:37Z"


def test_numbers_are_read_up_to_19_digits_and_no_further() -> None:
    assert h.parse_timeout("Second-" + "9" * 19) == 10**19 - 1
    with pytest.raises(BadRequest):
        h.parse_timeout("Second-" + "9" * 20)
    # A range bound too long to be read makes the header unparsable, hence ignored.
    assert parse_range("bytes=0-" + "9" * 20, 100) is None


def test_an_empty_suffix_range_is_skipped_and_the_others_served() -> None:
    assert parse_range("bytes=-0,0-1", 10) == [(0, 1)]


def test_ranges_after_a_suffix_range_are_served_too() -> None:
    assert parse_range("bytes=-2,0-1", 10) == [(8, 9), (0, 1)]


def test_ranges_with_a_gap_between_them_stay_apart() -> None:
    assert parse_range("bytes=0-1,3-4", 10) == [(0, 1), (3, 4)]
    assert parse_range("bytes=0-1,2-4", 10) == [(0, 4)]


def test_a_weak_validator_that_reads_as_a_date_is_no_date() -> None:
    # RFC 9110 13.1.5: If-Range with a weak entity tag never matches, even when its opaque
    # part happens to parse as an HTTP date equal to the modification time.
    assert h.parse_http_date('W/"Sun, 06 Nov 1994 08:49:37 GMT"') == SAMPLE
    assert not h.if_range_allows('W/"Sun, 06 Nov 1994 08:49:37 GMT"', ETAG, SAMPLE)


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (
            lambda: h.parse_depth("2", "0", ("0", "infinity")),
            "Depth: '2' is not allowed here (use 0, infinity)",
        ),
        (lambda: h.parse_overwrite("x"), "Overwrite must be T or F, not 'x'"),
        (lambda: h.parse_timeout("soon"), "Timeout 'soon' is neither Infinite nor Second-N"),
        (lambda: parse_range("bytes=5-", 5), "no range of 'bytes=5-' lies within 5 bytes"),
        (
            lambda: h.parse_content_range("bytes 1-0/5"),
            "Content-Range 'bytes 1-0/5' is not 'bytes first-last/total'",
        ),
        (
            lambda: h.parse_content_range("bytes 0-5/5"),
            "Content-Range 'bytes 0-5/5' ends beyond its total",
        ),
    ],
)
def test_a_refused_header_says_what_was_wrong(call: Callable[[], object], reason: str) -> None:
    with pytest.raises((BadRequest, RangeNotSatisfiable)) as info:
        call()
    assert info.value.message == reason


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bytes 0-0/1", (0, 0, 1)),
        ("bytes 0-4/5", (0, 4, 5)),
        ("bytes 2-3/*", (2, 3, None)),
        ("  BYTES 10-19/100 ", (10, 19, 100)),
        ("bytes 7-7/8", (7, 7, 8)),
    ],
)
def test_parse_content_range(value: str, expected: tuple[int, int, int | None]) -> None:
    assert h.parse_content_range(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "bytes",
        "bytes 0-4",
        "items 0-4/5",
        "bytes -4/5",
        "bytes 0-/5",
        "bytes 0-4/",
        "bytes 0-4/x",
        "bytes 5-4/10",
        "bytes 0-5/5",
        "bytes 0-9/5",
        "bytes=0-4/5",
        "bytes 0_4/5",
        "bytes 0-4*5",
    ],
)
def test_parse_content_range_refuses_malformed(value: str) -> None:
    with pytest.raises(BadRequest):
        h.parse_content_range(value)
