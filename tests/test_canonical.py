"""FilesystemProvider.canonical: the path where links on the way lead (claims meet there), and
a path with no link on the way is its own."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from davserver.errors import NotFound
from davserver.provider.fs import FilesystemProvider


@pytest.fixture
def share(tmp_path: Path) -> Iterator[tuple[Path, FilesystemProvider]]:
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f.txt").write_bytes(b"x")
    (tmp_path / "outside").mkdir()
    os.symlink("a", root / "l")  # a link inside the share
    os.symlink("l/b", root / "ll")  # a link through a link
    os.symlink(str(tmp_path / "outside"), root / "out")
    # The provider is given its root through a link of its own: that one is resolved once.
    os.symlink(root, tmp_path / "root-link")
    provider = FilesystemProvider(str(tmp_path / "root-link"))
    try:
        yield root, provider
    finally:
        provider.close()


@pytest.mark.parametrize(
    ("path", "real"),
    [
        ("/", "/"),
        ("/a", "/a"),
        ("/a/b/f.txt", "/a/b/f.txt"),
        ("/a/missing/x", "/a/missing/x"),  # not there (yet): taken as it is
        ("/l", "/a"),
        ("/l/b/f.txt", "/a/b/f.txt"),
        ("/l/missing", "/a/missing"),
        ("/ll/f.txt", "/a/b/f.txt"),
    ],
)
def test_canonical_follows_the_links_on_the_way(
    share: tuple[Path, FilesystemProvider], path: str, real: str
) -> None:
    assert share[1].canonical(path) == real


def test_a_link_out_of_the_share_has_no_canonical_path(
    share: tuple[Path, FilesystemProvider],
) -> None:
    with pytest.raises(NotFound):
        share[1].canonical("/out/x")


def test_a_link_swapped_in_is_followed_at_the_next_look(
    share: tuple[Path, FilesystemProvider],
) -> None:
    root, provider = share
    assert provider.canonical("/c/f.txt") == "/c/f.txt"
    os.symlink("a/b", root / "c")
    assert provider.canonical("/c/f.txt") == "/a/b/f.txt"
