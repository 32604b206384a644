"""davserver.paths: URL path <-> provider path, refusals, hrefs and path arithmetic."""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

import pytest
from hypothesis import given
from hypothesis import strategies as st

from davserver import paths
from davserver.errors import BadRequest, DavError, Forbidden
from davserver.paths import href, join, url_to_path


@pytest.fixture(autouse=True)
def _nothing_remembered() -> None:
    """Each test decodes its paths itself, not through a path an earlier test left in
    url_to_path's cache."""
    paths._remembered.cache_clear()


# -- url_to_path: decoding ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/", "/"),
        ("", "/"),
        ("/a", "/a"),
        ("/a/b/c", "/a/b/c"),
        ("/a%20b", "/a b"),
        ("/caf%C3%A9", "/café"),
        ("/caf%c3%a9", "/café"),
        ("/caf%C3%a9", "/café"),
        ("/%E6%97%A5%E6%9C%AC", "/日本"),
        ("/%F0%9F%98%80", "/😀"),
        ("/100%25", "/100%"),
        ("/a%23b", "/a#b"),
        ("/a%3Fb", "/a?b"),
        ("/a+b", "/a+b"),
        ("/a//b", "/a/b"),
        ("//a///b//", "/a/b"),
        ("/a/b/", "/a/b"),
        ("/dir/", "/dir"),
        ("/...", "/..."),
        ("/.hidden", "/.hidden"),
        ("/a..b", "/a..b"),
        ("/%2e%2e%2e", "/..."),
        ("/..x", "/..x"),
    ],
)
def test_url_to_path_decodes(raw: str, expected: str) -> None:
    assert url_to_path(raw) == expected


def test_url_to_path_decodes_unreserved_escapes_like_plain_characters() -> None:
    assert url_to_path("/%61%62%63") == url_to_path("/abc") == "/abc"


@pytest.mark.parametrize(
    "raw",
    [
        "/..",
        "/../etc/passwd",
        "/a/../b",
        "/a/..",
        "/.",
        "/a/./b",
        "/%2e%2e",
        "/%2E%2E",
        "/%2E%2e",
        "/%2e%2E/etc",
        "/%2e",
        "/.%2e",
        "/%2e.",
        "/a/%2e%2e/%2e%2e/etc/passwd",
        "/a%2fb",
        "/a%2Fb",
        "/..%2f..%2fetc",
        "/%2e%2e%2fetc",
        "/a\\b",
        "/..\\..\\etc",
        "/a%5cb",
        "/a%5Cb",
        "/%5c..",
        "/a%00",
        "/a%00.txt",
        "/%00",
    ],
)
def test_url_to_path_refuses_escapes_from_the_root(raw: str) -> None:
    with pytest.raises(Forbidden) as info:
        url_to_path(raw)
    assert info.value.status == 403


@pytest.mark.parametrize(
    "raw",
    [
        "/%zz",
        "/a%zzb",
        "/%4",
        "/a%4",
        "/%",
        "/a%g0",
        "/%XX",  # X is no hex digit, in either case
        "/%ff",
        "/%C3",
        "/%C3%28",
        "/%80abc",
        "/%ED%A0%80",  # an encoded surrogate is not UTF-8
        "/%C0%AE%C0%AE",  # overlong '..' must not decode to dots
    ],
)
def test_url_to_path_rejects_bad_escapes_and_invalid_utf8(raw: str) -> None:
    with pytest.raises(BadRequest) as info:
        url_to_path(raw)
    assert info.value.status == 400


def test_check_segment() -> None:
    paths.check_segment("ok name")
    for bad in ("", ".", "..", "a/b", "a\\b", "a\0b"):
        with pytest.raises(Forbidden):
            paths.check_segment(bad)


@pytest.mark.parametrize(
    ("raw", "error", "reason"),
    [
        ("/ok/%FF", BadRequest, "the path segment '%FF' is not valid UTF-8"),
        ("/ok/a%4", BadRequest, "invalid percent-encoding in 'a%4'"),
        ("/ok/%2E%2E", Forbidden, "the path segment '..' is not allowed"),
        ("/ok/a%2Fb", Forbidden, "path segments may not contain '/', '\\' or NUL"),
    ],
)
def test_a_refused_path_says_which_segment_and_why(
    raw: str, error: type[DavError], reason: str
) -> None:
    # The reason is the body of the 400/403: a user has to see which part of the URL is wrong.
    with pytest.raises(error) as info:
        url_to_path(raw)
    assert info.value.message == reason


# -- href ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "path", "collection", "expected"),
    [
        ("", "/", True, "/"),
        ("", "/a", False, "/a"),
        ("", "/a b", False, "/a%20b"),
        ("", "/100%", False, "/100%25"),
        ("", "/a#b", False, "/a%23b"),
        ("", "/a&b", False, "/a%26b"),
        ("", "/a+b", False, "/a%2Bb"),
        ("", "/a?b", False, "/a%3Fb"),
        ("", "/it's", False, "/it%27s"),
        ("", "/café", False, "/caf%C3%A9"),
        ("", "/日本", False, "/%E6%97%A5%E6%9C%AC"),
        ("", "/dir", True, "/dir/"),
        ("", "/a dir/sub", True, "/a%20dir/sub/"),
        ("", "/a/b/c.txt", False, "/a/b/c.txt"),
        ("", "/x-y_z.~!$()*,=:@", False, "/x-y_z.~!$()*,=:@"),
        ("/dav", "/", True, "/dav/"),
        ("/dav", "/a b", False, "/dav/a%20b"),
        ("/dav", "/dir", True, "/dav/dir/"),
        ("/my%20share", "/f", False, "/my%20share/f"),
    ],
)
def test_href(prefix: str, path: str, collection: bool, expected: str) -> None:
    assert href(prefix, path, collection) == expected


def test_href_never_leaves_xml_or_url_specials_unescaped() -> None:
    encoded = href("", "/<a> \"b\" 'c' & d # e ? f % g + h", False)
    for char in "<>\"' &#?+":
        assert char not in encoded


def test_quote_path_has_no_prefix_and_no_trailing_slash() -> None:
    assert paths.quote_path("/a b/c") == "/a%20b/c"
    assert paths.quote_path("/") == "/"


def test_quote_path_leaves_the_same_characters_plain_with_or_without_escapes() -> None:
    # Clients compare hrefs as strings: "(1)" must look the same in "/a (1)" as in "/a(1)".
    assert paths.quote_path("/a(1)!") == "/a(1)!"
    assert paths.quote_path("/a (1)!") == "/a%20(1)!"


# -- path arithmetic ----------------------------------------------------------------------------


def test_join_and_split() -> None:
    assert join([]) == "/"
    assert join(["a"]) == "/a"
    assert join(("a", "b c")) == "/a/b c"
    assert paths.split("/") == []
    assert paths.split("/a/b") == ["a", "b"]


@pytest.mark.parametrize(
    ("path", "parent"),
    [("/", "/"), ("/a", "/"), ("/a/b", "/a"), ("/a/b/c", "/a/b")],
)
def test_parent(path: str, parent: str) -> None:
    assert paths.parent(path) == parent


def test_child() -> None:
    assert paths.child("/", "a") == "/a"
    assert paths.child("/a", "b c") == "/a/b c"
    assert paths.child("/a/b", "c") == "/a/b/c"


@pytest.mark.parametrize(("path", "name"), [("/", ""), ("/a", "a"), ("/a/b c", "b c")])
def test_name(path: str, name: str) -> None:
    assert paths.name(path) == name


@pytest.mark.parametrize(
    ("ancestor", "path", "expected"),
    [
        ("/", "/", False),
        ("/", "/a", True),
        ("/", "/a/b", True),
        ("/a", "/a", False),
        ("/a", "/a/b", True),
        ("/a", "/a/b/c", True),
        ("/a", "/ab", False),
        ("/a", "/ab/c", False),
        ("/a/b", "/a", False),
        ("/a", "/b/a", False),
    ],
)
def test_is_ancestor(ancestor: str, path: str, expected: bool) -> None:
    assert paths.is_ancestor(ancestor, path) is expected


def test_is_same_or_ancestor() -> None:
    assert paths.is_same_or_ancestor("/a", "/a")
    assert paths.is_same_or_ancestor("/a", "/a/b")
    assert not paths.is_same_or_ancestor("/a", "/ab")
    assert paths.is_same_or_ancestor("/", "/")


def test_ancestors() -> None:
    assert list(paths.ancestors("/")) == []
    assert list(paths.ancestors("/a")) == ["/"]
    assert list(paths.ancestors("/a/b/c")) == ["/a/b", "/a", "/"]


@pytest.mark.parametrize(
    ("path", "old", "new", "expected"),
    [
        ("/a", "/a", "/z", "/z"),
        ("/a/b", "/a", "/z", "/z/b"),
        ("/a/b/c", "/a", "/x/y", "/x/y/b/c"),
        ("/a/b", "/a", "/", "/b"),
        ("/a/b", "/", "/z", "/z/a/b"),
        ("/", "/", "/z", "/z"),
        ("/a", "/a", "/", "/"),
    ],
)
def test_rebase(path: str, old: str, new: str, expected: str) -> None:
    assert paths.rebase(path, old, new) == expected


# -- properties ---------------------------------------------------------------------------------

segment = st.text(min_size=1, max_size=20).filter(
    lambda s: "/" not in s and "\\" not in s and "\0" not in s and s not in (".", "..")
)
segment_lists = st.lists(segment, max_size=6)


@given(segment_lists)
def test_href_round_trips_through_url_to_path(segs: list[str]) -> None:
    path = join(segs)
    assert url_to_path(href("", path, False)) == path
    assert url_to_path(href("", path, True)) == path


@given(segment_lists)
def test_href_is_plain_ascii_without_specials(segs: list[str]) -> None:
    encoded = href("", join(segs), False)
    assert encoded.isascii()
    assert not any(c in encoded for c in " #?&+\"'<>\\\r\n\0")


@given(segment_lists, segment)
def test_parent_child_name_agree(segs: list[str], leaf: str) -> None:
    base = join(segs)
    path = paths.child(base, leaf)
    assert paths.parent(path) == base
    assert paths.name(path) == leaf
    assert paths.is_ancestor(base, path)
    assert paths.rebase(path, base, "/moved") == paths.child("/moved", leaf)


# Text that looks like what an attacker would send, plus anything at all.
url_ish = st.one_of(
    st.text(),
    st.text(alphabet="/.%\\2eEfF05cCa:x", max_size=40),
    st.lists(
        st.sampled_from(["/", ".", "..", "%2e", "%2E", "%2f", "%5c", "%00", "%", "%zz", "a"]),
        max_size=12,
    ).map("".join),
)


def refusal(raw: str) -> int | None:
    """How url_to_path must refuse `raw` (None: it accepts it), segment by segment, in
    order: a broken percent-escape or text that is not UTF-8 (read from the Latin-1 WSGI
    gives) is 400, a segment naming more than one child 403."""
    for segment in raw.split("/"):
        if not segment:
            continue
        if re.search(r"%(?![0-9A-Fa-f]{2})", segment):
            return 400
        try:
            name = unquote_to_bytes(segment.encode("latin-1")).decode("utf-8")
        except UnicodeError:
            return 400
        if name in (".", "..") or any(c in name for c in "/\\\0"):
            return 403
    return None


@given(url_ish)
def test_url_to_path_raises_only_dav_errors(raw: str) -> None:
    expected = refusal(raw)
    try:
        url_to_path(raw)
    except DavError as exc:
        assert exc.status == expected, raw
    else:
        assert expected is None, raw


@given(url_ish)
def test_url_to_path_result_is_a_clean_provider_path(raw: str) -> None:
    try:
        path = url_to_path(raw)
    except DavError:
        return
    assert path.startswith("/")
    assert path == "/" or not path.endswith("/")
    for seg in paths.split(path):
        assert seg not in ("", ".", "..")
        assert "\\" not in seg and "\0" not in seg
    assert ".." not in path.split("/")


def test_a_path_too_long_to_be_remembered_is_decoded_the_same() -> None:
    segment = "caf%C3%A9-" + "x" * 90
    raw = "/" + "/".join([segment] * 12)  # about 1,200 characters: past the cache's bound
    assert len(raw) > paths._REMEMBERED_LENGTH
    assert url_to_path(raw) == "/" + "/".join(["café-" + "x" * 90] * 12)
    assert paths._remembered.cache_info().currsize == 0  # too long to be kept


# Paths near each other (few names, shallow), so that ancestors, equals and mere prefixes
# ("/a" and "/ab") all come up.
near_paths = st.lists(st.sampled_from(["a", "ab", "b"]), max_size=4).map(join)


@given(near_paths, st.sets(near_paths, max_size=6))
def test_inside_any_is_is_ancestor_of_any(path: str, folders: set[str]) -> None:
    assert paths.inside_any(path, folders) == any(paths.is_ancestor(f, path) for f in folders)


@given(near_paths, st.sets(near_paths, max_size=6))
def test_within_any_is_same_or_ancestor_of_any(path: str, folders: set[str]) -> None:
    expected = any(paths.is_same_or_ancestor(f, path) for f in folders)
    assert paths.within_any(path, folders) == expected


def test_inside_and_within_any_by_example() -> None:
    assert paths.inside_any("/a/b", {"/a"}) and paths.inside_any("/a", {"/"})
    assert not paths.inside_any("/a", {"/a", "/a/b", "/ab"}) and not paths.inside_any("/", {"/"})
    assert paths.within_any("/a", {"/a"}) and paths.within_any("/a/b/c", {"/x", "/a/b"})
    assert not paths.within_any("/ab", {"/a"}) and not paths.within_any("/a", set())
