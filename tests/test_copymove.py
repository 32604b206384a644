"""Live-server tests for COPY and MOVE (RFC 4918 9.8, 9.9, 10.3, 10.6)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import pytest
import requests
from helpers import (
    Pausing,
    color_of,
    make_tree,
    multistatus,
    proppatch_body,
    snapshot,
    with_provider,
)

from davserver import paths
from davserver.errors import Forbidden

TREE = {
    "src/a.txt": b"alpha",
    "src/b.bin": bytes(range(256)),
    "src/sub/c.txt": b"gamma",
    "src/sub/deeper/d.txt": b"delta",
    "src/sub/deeper/deepest/e.txt": b"epsilon" * 1000,
    "src/other/f.txt": b"",
}
TREE_DIRS = ("src/empty", "src/sub/deeper/empty2")


def source_tree() -> dict[str, bytes | None]:
    """TREE and TREE_DIRS as snapshot() of `src` reports them."""
    expected: dict[str, bytes | None] = {}
    for rel, data in TREE.items():
        parts = rel.split("/")[1:]
        for i in range(1, len(parts)):
            expected["/".join(parts[:i])] = None
        expected["/".join(parts)] = data
    for rel in TREE_DIRS:
        parts = rel.split("/")[1:]
        for i in range(1, len(parts) + 1):
            expected["/".join(parts[:i])] = None
    return expected


def transfer(
    server: Any, method: str, src: str, dst: str, absolute: bool = True, **headers: str
) -> Any:
    """COPY or MOVE with Destination as an absolute URI (the usual client form) or a path."""
    all_headers = {"Destination": server.url(dst) if absolute else dst}
    all_headers.update({k.replace("_", "-"): v for k, v in headers.items()})
    return server.request(method, src, headers=all_headers)


def set_color(server: Any, path: str) -> None:
    r = server.request("PROPPATCH", path, data=proppatch_body())
    assert r.status_code == 207
    assert color_of(server, path) == "red"


class RefusingCopy:
    """A provider that delegates everything but refuses copy() of the chosen names (and
    move(), so that a MOVE falls back to copying member by member)."""

    def __init__(self, inner: Any, names: set[str]) -> None:
        self.inner = inner
        self.names = names

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def copy(self, src: str, dst: str) -> None:
        if paths.name(src) in self.names:
            raise Forbidden(f"{src} may not be copied")
        self.inner.copy(src, dst)

    def move(self, src: str, dst: str) -> bool:
        return False


# -- COPY of files ------------------------------------------------------------------------------


@pytest.mark.rfc4918("R-111")
def test_copy_file_to_new(server):
    make_tree(server.root, {"a.txt": b"content"})
    r = transfer(server, "COPY", "/a.txt", "/b.txt")
    assert r.status_code == 201
    assert "X-OC-Mtime" not in r.headers  # only a COPY that set the time says so
    assert snapshot(server.root) == {"a.txt": b"content", "b.txt": b"content"}
    get = server.request("GET", "/b.txt")
    assert get.content == b"content"
    assert get.headers["ETag"] != server.request("GET", "/a.txt").headers["ETag"]


@pytest.mark.rfc4918("R-190", "R-193")
@pytest.mark.parametrize("overwrite", [{"Overwrite": "T"}, {}])
def test_copy_file_onto_existing_replaces(server, overwrite):
    make_tree(server.root, {"a.txt": b"new content", "b.txt": b"old"})
    r = transfer(server, "COPY", "/a.txt", "/b.txt", **overwrite)
    assert r.status_code == 204
    assert snapshot(server.root) == {"a.txt": b"new content", "b.txt": b"new content"}


@pytest.mark.rfc4918("R-126", "R-191", "R-193")
def test_copy_overwrite_f_onto_existing_is_412(server):
    make_tree(server.root, {"a.txt": b"new content", "b.txt": b"old"})
    before = snapshot(server.root)
    r = transfer(server, "COPY", "/a.txt", "/b.txt", Overwrite="F")
    assert r.status_code == 412
    assert r.text == "/b.txt exists and Overwrite is F\n"
    assert snapshot(server.root) == before
    # Overwrite F onto nothing is fine.
    r = transfer(server, "COPY", "/a.txt", "/c.txt", Overwrite="F")
    assert r.status_code == 201
    assert (server.root / "c.txt").read_bytes() == b"new content"


def test_copy_bad_overwrite_value_is_400(server):
    make_tree(server.root, {"a.txt": b"a"})
    r = transfer(server, "COPY", "/a.txt", "/b.txt", Overwrite="maybe")
    assert r.status_code == 400
    assert snapshot(server.root) == {"a.txt": b"a"}


def test_destination_as_absolute_path(server):
    make_tree(server.root, {"a.txt": b"a"}, dirs=("d",))
    r = transfer(server, "COPY", "/a.txt", "/d/b.txt", absolute=False)
    assert r.status_code == 201
    assert (server.root / "d" / "b.txt").read_bytes() == b"a"
    r = transfer(server, "MOVE", "/a.txt", "/d/m.txt", absolute=False)
    assert r.status_code == 201
    assert snapshot(server.root) == {"d": None, "d/b.txt": b"a", "d/m.txt": b"a"}


def test_destination_scheme_is_case_insensitive(server):
    make_tree(server.root, {"a.txt": b"a"})
    dst = f"HTTP://127.0.0.1:{server.port}/b.txt"
    r = server.request("COPY", "/a.txt", headers={"Destination": dst})
    assert r.status_code == 201
    assert (server.root / "b.txt").read_bytes() == b"a"


@pytest.mark.rfc4918("R-183")
@pytest.mark.parametrize(
    "destination",
    [
        "http://example.com/b.txt",
        "http://127.0.0.2:{port}/b.txt",
        "http://127.0.0.1:{other}/b.txt",
        "https://127.0.0.1:{port}/b.txt",
        "ftp://127.0.0.1:{port}/b.txt",
        "//example.com/b.txt",
    ],
)
@pytest.mark.parametrize("method", ["COPY", "MOVE"])
def test_destination_on_another_server_is_502(server, method, destination):
    make_tree(server.root, {"a.txt": b"a"})
    value = destination.format(port=server.port, other=server.port + 1)
    r = server.request(method, "/a.txt", headers={"Destination": value})
    assert r.status_code == 502
    assert snapshot(server.root) == {"a.txt": b"a"}


@pytest.mark.rfc4918("R-110", "R-131")
@pytest.mark.parametrize("method", ["COPY", "MOVE"])
def test_missing_destination_is_400(server, method):
    make_tree(server.root, {"a.txt": b"a"})
    r = server.request(method, "/a.txt")
    assert r.status_code == 400
    assert snapshot(server.root) == {"a.txt": b"a"}


@pytest.mark.rfc4918("R-129", "R-148")
@pytest.mark.parametrize("method", ["COPY", "MOVE"])
def test_destination_parent_missing_is_409(server, method):
    make_tree(server.root, {"a.txt": b"a", "f.txt": b"f"})
    r = transfer(server, method, "/a.txt", "/no/such/b.txt")
    assert r.status_code == 409
    assert r.text == "the destination's parent collection does not exist\n"
    r = transfer(server, method, "/a.txt", "/f.txt/b.txt")  # the "parent" is a file
    assert r.status_code == 409
    assert snapshot(server.root) == {"a.txt": b"a", "f.txt": b"f"}


@pytest.mark.parametrize("method", ["COPY", "MOVE"])
def test_source_missing_is_404(server, method):
    r = transfer(server, method, "/missing.txt", "/b.txt")
    assert r.status_code == 404
    assert r.text == "/missing.txt does not exist\n"
    assert snapshot(server.root) == {}


@pytest.mark.parametrize("method", ["COPY", "MOVE"])
@pytest.mark.parametrize(("src", "dst"), [("/a.txt", "/a.txt"), ("/d", "/d/"), ("/d/", "/d")])
def test_source_equals_destination_is_403(server, method, src, dst):
    make_tree(server.root, {"a.txt": b"a", "d/x.txt": b"x"})
    before = snapshot(server.root)
    r = transfer(server, method, src, dst)
    assert r.status_code == 403
    assert r.text == "the source and the destination are the same resource\n"
    assert snapshot(server.root) == before
    r = transfer(server, method, src, dst, Overwrite="T")
    assert r.status_code == 403
    assert snapshot(server.root) == before


@pytest.mark.parametrize("method", ["COPY", "MOVE"])
@pytest.mark.parametrize("dst", ["/d/inside", "/d/sub/deeper", "/d/sub"])
def test_collection_into_itself_is_403(server, method, dst):
    make_tree(server.root, {"d/x.txt": b"x", "d/sub/y.txt": b"y"})
    before = snapshot(server.root)
    r = transfer(server, method, "/d/", dst + "/")
    assert r.status_code == 403
    assert r.text == "a collection cannot be copied or moved into itself\n"
    assert snapshot(server.root) == before


@pytest.mark.parametrize("method", ["COPY", "MOVE"])
def test_collection_onto_its_own_ancestor_is_403(server, method):
    make_tree(server.root, {"d/sub/y.txt": b"y", "d/x.txt": b"x"})
    before = snapshot(server.root)
    r = transfer(server, method, "/d/sub/", "/d/", Overwrite="T")
    assert r.status_code == 403
    assert r.text == "the destination contains the source\n"
    assert snapshot(server.root) == before


@pytest.mark.parametrize("method", ["COPY", "MOVE"])
def test_conditionals_on_a_collection_source(server, method):
    # RFC 9110 13.1.1/13.1.2: "*" tests whether the resource exists; a collection does.
    make_tree(server.root, {"d/x.txt": b"x"})
    r = transfer(server, method, "/d/", "/e/", If_None_Match="*")
    assert r.status_code == 412
    assert snapshot(server.root) == {"d": None, "d/x.txt": b"x"}
    r = transfer(server, method, "/d/", "/e/", If_Match="*")
    assert r.status_code == 201
    assert snapshot(server.root, "e") == {"x.txt": b"x"}


def test_conditionals_on_a_file_source(server):
    make_tree(server.root, {"a.txt": b"a"})
    etag = server.request("HEAD", "/a.txt").headers["ETag"]
    r = transfer(server, "COPY", "/a.txt", "/b.txt", If_Match='"wrong"')
    assert r.status_code == 412
    r = transfer(server, "COPY", "/a.txt", "/b.txt", If_None_Match=etag)
    assert r.status_code == 412
    assert snapshot(server.root) == {"a.txt": b"a"}
    r = transfer(server, "MOVE", "/a.txt", "/b.txt", If_Match=etag)
    assert r.status_code == 201
    assert snapshot(server.root) == {"b.txt": b"a"}


def test_destination_with_reserved_temporary_name_is_refused(server):
    # Such names are hidden from listings and swept away at startup (see test_write).
    make_tree(server.root, {"a.txt": b"a"})
    r = transfer(server, "COPY", "/a.txt", "/.davserver-tmp-copy")
    assert r.status_code == 403
    assert snapshot(server.root) == {"a.txt": b"a"}


# -- COPY of collections ------------------------------------------------------------------------


@pytest.mark.parametrize("depth", ["1", "2", "bogus"])
def test_copy_collection_depth_1_is_400(server, depth):
    make_tree(server.root, TREE, TREE_DIRS)
    r = transfer(server, "COPY", "/src/", "/dst/", Depth=depth)
    assert r.status_code == 400
    assert not (server.root / "dst").exists()


@pytest.mark.rfc4918("R-117")
def test_copy_collection_depth_0_copies_only_the_collection(server):
    make_tree(server.root, TREE, TREE_DIRS)
    r = transfer(server, "COPY", "/src/", "/dst/", Depth="0")
    assert r.status_code == 201
    assert (server.root / "dst").is_dir()
    assert list((server.root / "dst").iterdir()) == []
    assert snapshot(server.root, "src") == source_tree()


@pytest.mark.rfc4918("R-116", "R-117", "R-119")
@pytest.mark.parametrize("depth", [{"Depth": "infinity"}, {}])
def test_copy_deep_tree(server, depth):
    make_tree(server.root, TREE, TREE_DIRS)
    r = transfer(server, "COPY", "/src/", "/dst/", **depth)
    assert r.status_code == 201
    assert snapshot(server.root, "dst") == source_tree()
    assert snapshot(server.root, "src") == source_tree()
    # Every file, read back over HTTP too.
    for rel, data in TREE.items():
        got = server.request("GET", "/dst/" + rel.split("/", 1)[1])
        assert got.status_code == 200
        assert got.content == data


@pytest.mark.parametrize(("method", "deleted"), [("COPY", 204), ("MOVE", 404)])
def test_a_delete_of_the_source_waits_for_the_transfer(server, method, deleted):
    """A COPY reads its source under a shared claim, a MOVE changes it under an exclusive one
    (davserver.ordering): a DELETE sent meanwhile waits, so the transfer is whole, and then
    the DELETE finds the source (a COPY's) or nothing (a MOVE's)."""
    files = {f"t/f{i}.txt": f"file {i}".encode() for i in range(5)}
    make_tree(server.root, files)
    slow = with_provider(server, Pausing)
    with ThreadPoolExecutor(1) as pool:
        transferred = pool.submit(
            requests.request,
            method,
            server.url("/t/"),
            headers={"Destination": server.url("/u/")},
            timeout=30,
        )
        assert slow.pausing.wait(30)
        deleting = requests.request("DELETE", server.url("/t/"), timeout=30)
        assert transferred.result().status_code == 201
    assert deleting.status_code == deleted
    assert not slow.met  # the DELETE reached the storage only after the transfer
    assert snapshot(server.root) == {
        "u": None,
        **{name.replace("t/", "u/"): data for name, data in files.items()},
    }


def test_copy_collection_without_trailing_slashes(server):
    make_tree(server.root, TREE, TREE_DIRS)
    r = transfer(server, "COPY", "/src", "/dst")
    assert r.status_code == 201
    assert snapshot(server.root, "dst") == source_tree()


@pytest.mark.rfc4918("R-128")
def test_copy_collection_over_existing_collection_replaces_it(server):
    make_tree(server.root, {**TREE, "dst/stale.txt": b"stale", "dst/sub/c.txt": b"old gamma"})
    r = transfer(server, "COPY", "/src/", "/dst/")
    assert r.status_code == 204
    # The destination is replaced, not merged (RFC 4918 9.8.4).
    assert snapshot(server.root, "dst") == snapshot(server.root, "src")
    assert not (server.root / "dst" / "stale.txt").exists()


def test_copy_collection_over_existing_file(server):
    make_tree(server.root, {**TREE, "target": b"a file"})
    r = transfer(server, "COPY", "/src/", "/target/")
    assert r.status_code == 204
    assert (server.root / "target").is_dir()
    assert snapshot(server.root, "target") == snapshot(server.root, "src")


def test_copy_file_over_existing_collection(server):
    make_tree(server.root, {"a.txt": b"a file", "target/x.txt": b"x", "target/s/y.txt": b"y"})
    r = transfer(server, "COPY", "/a.txt", "/target")
    assert r.status_code == 204
    assert (server.root / "target").is_file()
    assert (server.root / "target").read_bytes() == b"a file"
    assert snapshot(server.root) == {"a.txt": b"a file", "target": b"a file"}


def test_copy_collection_over_existing_file_with_overwrite_f_is_412(server):
    make_tree(server.root, {**TREE, "target": b"a file"})
    r = transfer(server, "COPY", "/src/", "/target/", Overwrite="F")
    assert r.status_code == 412
    assert (server.root / "target").read_bytes() == b"a file"


@pytest.mark.rfc4918("R-120", "R-121", "R-122", "R-123", "R-124", "R-125")
def test_copy_collection_with_a_refused_member_is_207(server):
    make_tree(server.root, TREE, TREE_DIRS)
    with_provider(server, lambda inner: RefusingCopy(inner, {"c.txt", "deeper"}))
    r = transfer(server, "COPY", "/src/", "/dst/")
    assert r.status_code == 207
    # Named by destination path; the refused collection's members are not tried or reported.
    assert multistatus(r.content) == {"/dst/sub/c.txt": 403, "/dst/sub/deeper/": 403}
    copied = snapshot(server.root, "dst")
    expected = {
        k: v
        for k, v in source_tree().items()
        if k not in ("sub/c.txt",) and not k.startswith("sub/deeper")
    }
    assert copied == expected
    assert snapshot(server.root, "src") == source_tree()


@pytest.mark.rfc4918("R-141", "R-144", "R-145", "R-146")
def test_move_falling_back_to_copy_keeps_source_when_a_member_fails(server):
    make_tree(server.root, TREE, TREE_DIRS)
    with_provider(server, lambda inner: RefusingCopy(inner, {"c.txt"}))
    r = transfer(server, "MOVE", "/src/", "/dst/")
    assert r.status_code == 207
    assert multistatus(r.content) == {"/dst/sub/c.txt": 403}
    # Nothing is lost: the source stays complete.
    assert snapshot(server.root, "src") == source_tree()


def test_move_falling_back_to_copy_and_delete(server):
    make_tree(server.root, TREE, TREE_DIRS)
    with_provider(server, lambda inner: RefusingCopy(inner, set()))
    r = transfer(server, "MOVE", "/src/", "/dst/")
    assert r.status_code == 201
    assert not (server.root / "src").exists()
    assert snapshot(server.root, "dst") == source_tree()


# -- MOVE ---------------------------------------------------------------------------------------


@pytest.mark.rfc4918("R-132")
def test_move_file(server):
    make_tree(server.root, {"a.txt": b"content", "d/keep.txt": b"k"})
    r = transfer(server, "MOVE", "/a.txt", "/d/b.txt")
    assert r.status_code == 201
    assert snapshot(server.root) == {"d": None, "d/b.txt": b"content", "d/keep.txt": b"k"}
    assert server.request("GET", "/a.txt").status_code == 404
    assert server.request("GET", "/d/b.txt").content == b"content"


def test_move_file_onto_existing(server):
    make_tree(server.root, {"a.txt": b"content", "b.txt": b"old"})
    r = transfer(server, "MOVE", "/a.txt", "/b.txt", Overwrite="T")
    assert r.status_code == 204
    assert snapshot(server.root) == {"b.txt": b"content"}


@pytest.mark.rfc4918("R-138", "R-140")
def test_move_collection(server):
    make_tree(server.root, TREE, TREE_DIRS)
    r = transfer(server, "MOVE", "/src/", "/moved/")
    assert r.status_code == 201
    assert not (server.root / "src").exists()
    assert snapshot(server.root, "moved") == source_tree()
    assert server.request("GET", "/src/a.txt").status_code == 404
    assert server.request("GET", "/moved/sub/deeper/d.txt").content == b"delta"


@pytest.mark.rfc4918("R-147")
def test_move_collection_over_existing_collection_replaces_it(server):
    make_tree(server.root, {**TREE, "dst/stale.txt": b"stale"})
    r = transfer(server, "MOVE", "/src/", "/dst/")
    assert r.status_code == 204
    assert not (server.root / "src").exists()
    assert not (server.root / "dst" / "stale.txt").exists()
    assert (server.root / "dst" / "sub" / "deeper" / "deepest" / "e.txt").read_bytes() == (
        b"epsilon" * 1000
    )


def test_move_file_over_existing_collection(server):
    make_tree(server.root, {"a.txt": b"a file", "target/x.txt": b"x"})
    r = transfer(server, "MOVE", "/a.txt", "/target/")
    assert r.status_code == 204
    assert snapshot(server.root) == {"target": b"a file"}


@pytest.mark.rfc4918("R-191")
@pytest.mark.parametrize(("src", "dst"), [("/a.txt", "/b.txt"), ("/d/", "/e/"), ("/d/", "/b.txt")])
def test_move_overwrite_f_over_existing_is_412(server, src, dst):
    make_tree(server.root, {"a.txt": b"a", "b.txt": b"b", "d/x.txt": b"x", "e/y.txt": b"y"})
    before = snapshot(server.root)
    r = transfer(server, "MOVE", src, dst, Overwrite="F")
    assert r.status_code == 412
    assert snapshot(server.root) == before


def test_move_depth_other_than_infinity_is_400(server):
    make_tree(server.root, {"d/x.txt": b"x"})
    r = transfer(server, "MOVE", "/d/", "/e/", Depth="0")
    assert r.status_code == 400
    assert snapshot(server.root) == {"d": None, "d/x.txt": b"x"}


# -- names --------------------------------------------------------------------------------------

ODD_DIR = "Ünïcödé dir"
ODD_FILE = "ファイル 名 #1 ?&%+.txt"


@pytest.mark.parametrize("method", ["COPY", "MOVE"])
def test_destination_with_percent_encoded_non_ascii_and_spaces(server, method):
    make_tree(server.root, {"src dir/naïve file.txt": b"n"}, dirs=(ODD_DIR,))
    src = "/" + quote("src dir/naïve file.txt")
    dst = "/" + quote(f"{ODD_DIR}/{ODD_FILE}")
    r = transfer(server, method, src, dst)
    assert r.status_code == 201
    assert (server.root / ODD_DIR / ODD_FILE).read_bytes() == b"n"
    assert (server.root / "src dir" / "naïve file.txt").exists() == (method == "COPY")
    assert server.request("GET", dst).content == b"n"
    # As an absolute path too, and a collection with such names.
    r = transfer(server, "COPY", "/" + quote(ODD_DIR) + "/", "/" + quote("copié ✓") + "/", False)
    assert r.status_code == 201
    assert (server.root / "copié ✓" / ODD_FILE).read_bytes() == b"n"


def test_destination_with_encoded_dot_segments_is_refused(server):
    make_tree(server.root, {"d/a.txt": b"a"})
    # A segment no path can hold is refused as such (403, paths.check_segment).
    for dst in ("/d/../escape.txt", "/d/%2e%2e/escape.txt", "/d/%2Fescape.txt"):
        r = server.request("COPY", "/d/a.txt", headers={"Destination": server.url(dst)})
        assert r.status_code == 403, (dst, r.status_code)
    assert snapshot(server.root) == {"d": None, "d/a.txt": b"a"}
    assert not (server.root.parent / "escape.txt").exists()


# -- dead properties ----------------------------------------------------------------------------


@pytest.mark.rfc4918("R-113")
def test_dead_properties_follow_copy_of_file(server):
    make_tree(server.root, {"a.txt": b"a"})
    set_color(server, "/a.txt")
    assert transfer(server, "COPY", "/a.txt", "/b.txt").status_code == 201
    assert color_of(server, "/b.txt") == "red"
    assert color_of(server, "/a.txt") == "red"


@pytest.mark.rfc4918("R-137")
def test_dead_properties_follow_move_of_file(server):
    make_tree(server.root, {"a.txt": b"a"})
    set_color(server, "/a.txt")
    assert transfer(server, "MOVE", "/a.txt", "/b.txt").status_code == 201
    assert color_of(server, "/b.txt") == "red"
    # A new resource at the old name does not inherit them.
    assert server.request("PUT", "/a.txt", data=b"new").status_code == 201
    assert color_of(server, "/a.txt") is None


@pytest.mark.parametrize("method", ["COPY", "MOVE"])
def test_dead_properties_follow_collection_members(server, method):
    make_tree(server.root, TREE, TREE_DIRS)
    set_color(server, "/src/")
    set_color(server, "/src/sub/deeper/d.txt")
    assert transfer(server, method, "/src/", "/dst/").status_code == 201
    assert color_of(server, "/dst/") == "red"
    assert color_of(server, "/dst/sub/deeper/d.txt") == "red"
    assert color_of(server, "/dst/sub/c.txt") is None


def test_overwritten_destination_loses_its_own_dead_properties(server):
    make_tree(server.root, {"a.txt": b"a", "b.txt": b"b"})
    set_color(server, "/b.txt")
    assert transfer(server, "COPY", "/a.txt", "/b.txt").status_code == 204
    # RFC 4918 9.8.4: the destination is deleted first, properties and all.
    assert color_of(server, "/b.txt") is None


def test_dead_properties_follow_move_via_copy_fallback(server):
    make_tree(server.root, TREE, TREE_DIRS)
    with_provider(server, lambda inner: RefusingCopy(inner, set()))
    set_color(server, "/src/sub/c.txt")
    assert transfer(server, "MOVE", "/src/", "/dst/").status_code == 201
    assert color_of(server, "/dst/sub/c.txt") == "red"


def test_move_of_a_file_accepts_depth_0(server):
    # RFC 4918 9.9.2 asks Depth: infinity of collections only; a file has no members to keep.
    make_tree(server.root, {"f.txt": b"f"})
    headers = {"Destination": "/g.txt", "Depth": "0"}
    assert server.request("MOVE", "/f.txt", headers=headers).status_code == 201
    assert (server.root / "g.txt").read_bytes() == b"f"
    # Any other Depth is still refused, for a file too.
    r = server.request("MOVE", "/g.txt", headers={"Destination": "/h.txt", "Depth": "1"})
    assert r.status_code == 400
    assert r.text == "Depth: '1' is not allowed here (use 0, infinity)\n"
    assert (server.root / "g.txt").read_bytes() == b"f"
    make_tree(server.root, {"c/x": b"x"})
    headers = {"Destination": "/d", "Depth": "0"}
    assert server.request("MOVE", "/c", headers=headers).status_code == 400


# -- links to collections inside the share ------------------------------------------------------


def linked_tree(root: Any) -> None:
    """/data/ with a file and a subfolder; /project/ holding a link to it, /project/shared."""
    make_tree(root, {"data/keep.txt": b"precious", "data/sub/deep.txt": b"deep", "project/a": b"a"})
    (root / "project" / "shared").symlink_to("../data", target_is_directory=True)


@pytest.mark.parametrize("source", ["/project/", "/project/shared/"])
def test_copy_follows_a_link_to_a_collection_and_copies_what_it_shows(server, source):
    # A client sees /project/shared/ as a folder with members; its copy must hold them too,
    # as real folders and files, and the link and what it leads to stay as they were.
    linked_tree(server.root)
    r = server.request("COPY", source, headers={"Destination": server.url("/copy/")})
    assert r.status_code == 201, r.text
    copied = server.root / "copy" if source == "/project/shared/" else server.root / "copy/shared"
    assert not copied.is_symlink() and copied.is_dir()
    assert (copied / "keep.txt").read_bytes() == b"precious"
    assert (copied / "sub" / "deep.txt").read_bytes() == b"deep"
    assert (server.root / "project" / "shared").is_symlink()
    assert (server.root / "data" / "keep.txt").read_bytes() == b"precious"


def test_copy_reports_a_link_back_to_an_ancestor_as_a_loop_and_copies_the_rest(server):
    # Following /data/up (-> /) would copy /data into its own copy without end.
    make_tree(server.root, {"data/keep.txt": b"precious"})
    (server.root / "data" / "up").symlink_to("..", target_is_directory=True)
    r = server.request("COPY", "/data/", headers={"Destination": server.url("/copy/")})
    assert r.status_code == 207, r.text
    assert multistatus(r.content) == {"/copy/up/": 508}
    assert (server.root / "copy" / "keep.txt").read_bytes() == b"precious"
    assert not (server.root / "copy" / "up").exists()


def test_copy_reports_a_link_to_where_it_writes_as_a_loop(server):
    # /src/out leads to /dst, where the copy of /src goes: following it would meet the
    # copy's own members.
    make_tree(server.root, {"src/a.txt": b"a"}, dirs=("dst",))
    (server.root / "src" / "out").symlink_to("../dst", target_is_directory=True)
    r = server.request("COPY", "/src/", headers={"Destination": server.url("/dst/new/")})
    assert r.status_code == 207, r.text
    assert multistatus(r.content) == {"/dst/new/out/": 508}
    assert sorted(p.name for p in (server.root / "dst" / "new").iterdir()) == ["a.txt"]


def test_a_batch_copy_follows_links_the_same_way(server):
    linked_tree(server.root)
    (server.root / "data" / "loop").symlink_to("../project", target_is_directory=True)
    answer = server.request(
        "POST",
        "/",
        headers={"Content-Type": "application/json"},
        json={"operations": [{"op": "copy", "path": "project/", "destination": "copy/"}]},
    ).json()
    (result,) = answer["results"]
    assert result["status"] == 207
    assert result["members"] == [
        {
            "path": "copy/shared/loop/",
            "href": "/copy/shared/loop/",
            "status": 508,
            "message": "the link leads back into the copy, which would never end",
        }
    ]
    assert (server.root / "copy" / "shared" / "keep.txt").read_bytes() == b"precious"


def test_a_second_link_to_a_collection_already_copied_is_a_loop_member(server):
    # Links leading several times to one folder, level after level, would multiply a copy
    # without end; each real collection is followed once.
    make_tree(server.root, {"data/keep.txt": b"precious", "project/a": b"a"})
    for name in ("one", "two"):
        (server.root / "project" / name).symlink_to("../data", target_is_directory=True)
    r = server.request("COPY", "/project/", headers={"Destination": server.url("/copy/")})
    assert r.status_code == 207, r.text
    (failed,) = multistatus(r.content)
    assert failed in ("/copy/one/", "/copy/two/") and multistatus(r.content)[failed] == 508
    copied = "two" if failed == "/copy/one/" else "one"
    assert (server.root / "copy" / copied / "keep.txt").read_bytes() == b"precious"
