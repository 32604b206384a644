"""Review of 763218b: COPY (and a MOVE done as a copy) follows links to collections in the share.

Only local users can make symbolic links; these tests lay them out on disk and then act as a
WebDAV client. Every test that could run away is bounded by a provider that refuses copies
past a budget (507), so a COPY that would never end fails the test instead of hanging it.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest
from helpers import CopyBudget, make_tree, multistatus, snapshot, with_provider

from davserver import paths, tree


class OtherFilesystem(CopyBudget):
    """As if the destination were on another filesystem: move() cannot rename, so MOVE falls
    back to copy and delete (tree.move_tree)."""

    def move(self, src: str, dst: str) -> bool:
        return False


def link(at: Path, to: str) -> None:
    at.symlink_to(to, target_is_directory=True)


# -- how much a COPY can be made to write --------------------------------------------------------

LEVELS = 10
WIDTH = 4
BUDGET = 200


def lattice(root: Path) -> None:
    """/lattice/n0 ... n9, each with one small file and four links, a to d, to the next level.

    No link leads back to where the walk is: nothing LinkLoops looks for. The share holds 10
    folders and 10 files, but n0 shows 4**i copies of level i: about 700,000 resources, and
    4**39 with 40 levels (the kernel follows at most 40 links in one path)."""
    for i in range(LEVELS):
        make_tree(root, {f"lattice/n{i}/f.txt": b"x"})
        if i + 1 < LEVELS:
            for name in "abcd"[:WIDTH]:
                link(root / "lattice" / f"n{i}" / name, f"../n{i + 1}")


def test_copy_through_a_lattice_of_links_stays_bounded(server):
    # Four links per level to the next level make the copy exponential in the number of
    # levels: ten levels are 700,000 members to write, twenty would fill any disk. davserver
    # follows one link to each folder and refuses the others with 508 (a link to a folder
    # already copied): each level is copied once, which of its links is followed depending
    # on the order the directory lists them in. The budget only bounds a broken server.
    lattice(server.root)
    provider = with_provider(server, lambda inner: CopyBudget(inner, BUDGET))
    r = server.request("COPY", "/lattice/n0/", headers={"Destination": server.url("/copy/")})
    assert r.status_code == 207, r.status_code
    refused = multistatus(r.content)
    assert set(refused.values()) == {508}
    assert len(refused) == (LEVELS - 1) * (WIDTH - 1)
    assert provider.copies == 2 * LEVELS  # each folder and its file, once
    copied = [p for p in (server.root / "copy").rglob("*") if p.is_file()]
    assert len(copied) == LEVELS


# -- MOVE done as a copy (the destination on another filesystem) -----------------------------


@pytest.mark.parametrize("filesystems", ["same", "other"])
def test_move_of_a_folder_holding_a_link_to_its_parent_succeeds_on_any_filesystem(
    server, filesystems
):
    # README: "DELETE and MOVE act on the link itself, never on what it leads to". On one
    # filesystem MOVE renames, and /src/up moves as the link it is. Across filesystems the
    # copy fallback follows /src/up (-> /), which LinkLoops calls a loop: the MOVE fails with
    # 207, leaves a partial copy at /dst and the whole of /src, and can never succeed.
    make_tree(server.root, {"src/keep.txt": b"precious"})
    link(server.root / "src" / "up", "..")
    if filesystems == "other":
        with_provider(server, lambda inner: OtherFilesystem(inner, BUDGET))
    r = server.request("MOVE", "/src/", headers={"Destination": server.url("/dst/")})
    assert r.status_code == 201, (r.status_code, r.text)
    assert not os.path.lexists(server.root / "src")
    assert (server.root / "dst" / "keep.txt").read_bytes() == b"precious"
    # The link was moved or dropped, never replaced by a copy of what it leads to.
    assert not (server.root / "dst" / "up").is_dir() or (server.root / "dst" / "up").is_symlink()


def test_move_of_a_link_across_filesystems_removes_the_link_never_its_target(server):
    # The copy fallback carries the link as a rename would: /moved is the link, /shared is
    # gone, and /data and everything in it stays.
    make_tree(server.root, {"data/keep.txt": b"precious", "data/sub/deep.txt": b"deep"})
    link(server.root / "shared", "data")
    with_provider(server, lambda inner: OtherFilesystem(inner, BUDGET))
    r = server.request("MOVE", "/shared/", headers={"Destination": server.url("/moved/")})
    assert r.status_code == 201, (r.status_code, r.text)
    assert not os.path.lexists(server.root / "shared")
    assert snapshot(server.root, "data") == {
        "keep.txt": b"precious",
        "sub": None,
        "sub/deep.txt": b"deep",
    }
    assert os.readlink(server.root / "moved") == "data"
    assert server.request("GET", "/moved/sub/deep.txt").content == b"deep"


# -- what a followed link may show -------------------------------------------------------------


def test_links_out_of_the_share_stay_invisible_inside_a_followed_link(server):
    # /project/shared -> /data, which holds links out of the share (to a folder and to a file):
    # following /project/shared must not copy what they lead to.
    outside = server.root.parent / "outside"
    make_tree(outside, {"secret.txt": b"secret", "dir/inner.txt": b"inner"})
    make_tree(server.root, {"data/keep.txt": b"precious", "project/a": b"a"})
    link(server.root / "data" / "out", str(outside / "dir"))
    (server.root / "data" / "out.txt").symlink_to(outside / "secret.txt")
    link(server.root / "data" / "up-and-out", "../../outside")
    link(server.root / "project" / "shared", "../data")
    r = server.request("COPY", "/project/", headers={"Destination": server.url("/copy/")})
    assert r.status_code == 201, (r.status_code, r.text)
    assert snapshot(server.root, "copy") == {
        "a": b"a",
        "shared": None,
        "shared/keep.txt": b"precious",
    }


def test_depth_0_copy_of_a_link_to_a_collection_makes_an_empty_real_folder(server):
    # RFC 4918 9.8.3: Depth 0 copies the collection and its properties, not its members.
    make_tree(server.root, {"data/keep.txt": b"precious", "data/sub/deep.txt": b"deep"})
    link(server.root / "shared", "data")
    provider = with_provider(server, lambda inner: CopyBudget(inner, BUDGET))
    headers = {"Destination": server.url("/copy/"), "Depth": "0"}
    r = server.request("COPY", "/shared/", headers=headers)
    assert r.status_code == 201, (r.status_code, r.text)
    assert provider.copies == 1
    copy = server.root / "copy"
    assert copy.is_dir() and not copy.is_symlink()
    assert list(copy.iterdir()) == []
    assert (server.root / "shared").is_symlink()
    assert (server.root / "data" / "sub" / "deep.txt").read_bytes() == b"deep"


def test_a_loop_under_a_followed_link_is_one_508_member_named_under_the_prefix(make_server):
    # /project/shared -> /data; /data/back -> /project, an ancestor of the walk only through
    # the link. Behind a proxy prefix, the 207 names it once, under the destination, as a
    # collection, with the prefix clients use.
    server = make_server(prefix="/dav", prefix_mode="keep")
    make_tree(server.root, {"data/keep.txt": b"precious", "project/a": b"a"})
    link(server.root / "project" / "shared", "../data")
    link(server.root / "data" / "back", "../project")
    headers = {"Destination": server.url("/dav/copy/")}
    r = server.request("COPY", "/dav/project/", headers=headers)
    assert r.status_code == 207, (r.status_code, r.text)
    assert multistatus(r.content) == {"/dav/copy/shared/back/": 508}
    assert snapshot(server.root, "copy") == {
        "a": b"a",
        "shared": None,
        "shared/keep.txt": b"precious",
    }


# -- what a COPY full of loop links costs --------------------------------------------------------


def test_many_loop_links_do_not_make_a_copy_quadratic(services, monkeypatch):
    # Each loop link is a cheap failure for a local user to make, and copy_tree checks every
    # member against every failure so far (tree.py: `any(paths.is_ancestor(f.path, target)
    # for f in failures ...)`): N loop links and M files cost N * M comparisons. At 30,000 of
    # each that is about 10**9, and the request runs for many minutes.
    links = files = 400
    root = Path(services.provider.root)
    make_tree(root, {f"src/f{i}.txt": b"x" for i in range(files)})
    for i in range(links):
        link(root / "src" / f"up{i}", "..")
    calls = 0
    real = paths.is_ancestor

    def counting(ancestor: str, path: str) -> bool:
        nonlocal calls
        calls += 1
        return real(ancestor, path)

    monkeypatch.setattr(paths, "is_ancestor", counting)
    source = services.provider.stat("/src")
    failures = tree.copy_tree(services, source, "/dst", "infinity")
    assert len(failures) == links
    assert {f.status for f in failures} == {508}
    members = links + files + 1
    assert calls <= 20 * members, calls


class CountingCanonical(CopyBudget):
    def __init__(self, inner: Any, budget: int) -> None:
        super().__init__(inner, budget)
        self.canonicals = 0

    def canonical(self, path: str) -> str:
        self.canonicals += 1
        return self.inner.canonical(path)


def test_loop_links_deep_in_a_chain_of_links_are_not_each_checked_from_scratch(services):
    # LinkLoops.check resolves every collection between a link and the source again for each
    # link (tree.py: `outer = [self._real(path) for path in inside[1:]]`), and each of those
    # resolutions costs a realpath() per link in its path (FilesystemProvider._walk): at
    # depth d a 508 costs about d**3 lstat calls. Measured: at the bottom of a chain of 38
    # links each loop link costs 0.12 s, so 10,000 of them keep a worker busy for 20 minutes.
    depth, loops = 20, 30
    root = Path(services.provider.root)
    for i in range(depth + 1):
        (root / "chain" / f"n{i}").mkdir(parents=True)
    for i in range(depth):
        link(root / "chain" / f"n{i}" / "next", f"../n{i + 1}")
    for j in range(loops):
        link(root / "chain" / f"n{depth}" / f"up{j}", "..")
    provider = CountingCanonical(services.provider, BUDGET)
    services = dataclasses.replace(services, provider=provider)
    failures = tree.copy_tree(services, provider.stat("/chain/n0"), "/copy", "infinity")
    assert len(failures) == loops
    assert {f.status for f in failures} == {508}
    assert provider.copies == depth + 1
    # Once per link and once per collection the walk is in would do.
    assert provider.canonicals <= 2 * (depth + loops) + 10, provider.canonicals
