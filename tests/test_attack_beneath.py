"""Races on the way to a path: a folder swapped for a link to outside between the check of a
path and its use must never let a write, a removal or a look land outside the share."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import share_beside_outside

from davserver.errors import DavError
from davserver.provider.fs import FilesystemProvider

# Swaps the folder /d and a link to outside, /d.link, atomically (renameat2's
# RENAME_EXCHANGE): /d is always one or the other, so each look at it has even odds.
SWAP_RACER = """
import ctypes, os, sys
root, outside, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
os.symlink(outside, root + "/d.link")
a, b = (root + "/d").encode(), (root + "/d.link").encode()
for i in range(rounds):
    if libc.renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) != 0:
        raise OSError(ctypes.get_errno(), "renameat2")
"""


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """A share root with a folder /d, and beside it an outside folder holding a secret."""
    root, outside = share_beside_outside(tmp_path, b"SECRET, outside")  # 15 bytes; inside: 6
    (root / "d").mkdir()
    (root / "d" / "secret").write_bytes(b"inside")
    return root, outside


def outcome(call: Callable[[], object]) -> object:
    """What a provider call gives: its result, or the status of its error."""
    try:
        return call()
    except DavError as exc:
        return exc.status
    except OSError as exc:
        return f"OSError {exc.errno}"  # a 500: the app's answer to an unexpected error


def state(folder: Path) -> dict[str, tuple[bytes | None, int]]:
    """What a folder holds: each member's content (None for a folder) and modification time."""
    found = {}
    for name in os.listdir(folder):
        info = os.lstat(folder / name)
        content = (folder / name).read_bytes() if stat.S_ISREG(info.st_mode) else None
        found[name] = (content, info.st_mtime_ns)
    return found


def restore(folder: Path, before: dict[str, tuple[bytes | None, int]]) -> None:
    """Make a folder hold what `state` saw in it."""
    shutil.rmtree(folder)
    folder.mkdir()
    for name, (content, mtime) in before.items():
        if content is None:
            (folder / name).mkdir()
        else:
            (folder / name).write_bytes(content)
        os.utime(folder / name, ns=(mtime, mtime))


def while_swapped(
    tree: tuple[Path, Path],
    call: Callable[[FilesystemProvider], object],
    rounds: int = 400_000,
) -> tuple[Counter[object], int]:
    """What `call` gives, again and again while SWAP_RACER runs (`rounds` swaps), and how
    many calls changed the outside folder (each change is undone at once)."""
    root, outside = tree
    provider = FilesystemProvider(str(root))
    seen: Counter[object] = Counter()
    escapes = 0
    before = state(outside)
    process = subprocess.Popen(
        [sys.executable, "-c", SWAP_RACER, str(root), str(outside), str(rounds)]
    )
    try:
        while process.poll() is None:
            seen[outcome(lambda: call(provider))] += 1
            if state(outside) != before:
                escapes += 1
                restore(outside, before)
    finally:
        process.wait()
        provider.close()
    assert process.returncode == 0
    return seen, escapes


def in_the_folder(provider: FilesystemProvider, act: Callable[[int], object]) -> None:
    """Do `act` in the folder /d of the share, wherever SWAP_RACER has it now (given its
    descriptor, opened without following a link)."""
    while True:
        for name in ("d", "d.link"):
            try:
                folder = os.open(
                    f"{provider.root}/{name}", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                )
            except OSError:
                continue  # the link, or swapped since: try the other name, or again
            try:
                with contextlib.suppress(FileExistsError):
                    act(folder)
                return
            finally:
                os.close(folder)


def test_a_put_never_lands_outside(tree: tuple[Path, Path]) -> None:
    # The temporary file was made by name in the folder the lstat walk had checked, and
    # renamed into place by name: a folder swapped for a link to outside meanwhile made the
    # server create, fill and name a file there (some 1 in 12 PUTs).
    seen, escapes = while_swapped(tree, lambda p: p.write("/d/new", [b"W"]).size)
    assert escapes == 0, seen
    assert set(seen) == {1, 404, 409}


def test_a_piece_of_a_resumed_upload_never_lands_outside(tree: tuple[Path, Path]) -> None:
    # An append opened the file by a name the lstat walk had checked, and a truncation cut
    # it by name: through a folder swapped for a link, both wrote to the outside file.
    root, _outside = tree
    provider = FilesystemProvider(str(root))
    piece = provider.stage("/piece", [b"more"])

    def resume(p: FilesystemProvider) -> int:
        p.write_range("/d/secret", 6, piece)  # "inside" + "more"
        return p.truncate("/d/secret", 6).size

    try:
        seen, escapes = while_swapped(tree, resume)
    finally:
        piece.discard()
    assert escapes == 0, seen
    # 409: a truncation refused left the file longer, and the next piece then rewrote it
    # whole, in a folder that had gone before the commit.
    assert set(seen) == {6, 404, 409}


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def cut_off() -> Iterator[bytes]:
    yield b"x"
    raise ConnectionResetError


def test_no_descriptor_outlives_a_change(tree: tuple[Path, Path]) -> None:
    # Each folder on the way is opened and held: every way out, errors included, closes it.
    root, _outside = tree
    provider = FilesystemProvider(str(root))
    (root / "in").symlink_to("d")
    (root / "out").symlink_to(tree[1])
    (root / "file").write_bytes(b"0123456789")
    os.mkfifo(root / "pipe")
    outside = state(tree[1])
    before = fds()
    piece = provider.stage("/piece", [b"ab"])

    def moved_away() -> None:
        staged = provider.stage("/d/moved", [b"x"])
        try:
            provider.move("/d", "/e")
            staged.commit()
        finally:
            staged.discard()
            provider.move("/e", "/d")

    calls: list[Callable[[], object]] = [
        lambda: provider.write("/new", [b"1"]),
        lambda: provider.write("/d/new", [b"1"], create=True),
        lambda: provider.write("/d/new", [b"1"], create=True),  # 405: it exists
        lambda: provider.write("/in/new", [b"1"]),
        lambda: provider.write("/in/deeper/new", [b"1"]),  # 409
        lambda: provider.write("/out/new", [b"1"]),  # 404
        lambda: provider.write("/file/new", [b"1"]),  # 409
        lambda: provider.write("/d", [b"1"]),  # 405
        lambda: provider.write("/", [b"1"]),  # 405
        lambda: provider.write("/.davserver-tmp-x/new", [b"1"]),  # 403
        lambda: provider.write("/d/x", cut_off()),  # the client went mid-body
        moved_away,  # 409
        lambda: provider.write_range("/file", 10, piece),
        lambda: provider.write_range("/file", 2, piece),
        lambda: provider.write_range("/in/secret", 6, piece),
        lambda: provider.write_range("/missing", 0, piece),  # 404
        lambda: provider.write_range("/d", 0, piece),  # 405
        lambda: provider.write_range("/pipe", 0, piece),  # 403
        lambda: provider.truncate("/file", 3),
        lambda: provider.truncate("/out/secret", 3),  # 404
        lambda: provider.make_collection("/in/made"),
        lambda: provider.make_collection("/in/made"),  # 405
        lambda: provider.make_collection("/missing/made"),  # 409
        lambda: provider.make_collection("/out/made"),  # 404
        lambda: provider.set_mtime("/in/made", 1_000_000.0),
        lambda: provider.set_mtime("/out/secret", 1_000_000.0),  # 404
        lambda: provider.write("/in/made/f", [b"1"]),
        lambda: provider.delete("/in/made"),  # 409: not empty
        lambda: provider.delete("/in/made/f"),
        lambda: provider.delete("/in/made"),
        lambda: provider.delete("/in/made"),  # 404
        lambda: provider.delete("/out/secret"),  # 404
        lambda: provider.delete("/out"),  # 404
        lambda: provider.copy("/in/secret", "/in/copied"),
        lambda: provider.copy("/d", "/copied-dir"),
        lambda: provider.copy("/out/secret", "/stolen"),  # 404
        lambda: provider.copy("/in/secret", "/out/copied"),  # 404
        lambda: provider.move("/in/copied", "/moved"),
        lambda: provider.move("/moved", "/missing/moved"),  # 409
        lambda: provider.move("/out/secret", "/stolen"),  # 404
        lambda: provider.copy_link("/in", "/in-too"),
        lambda: provider.copy_link("/in", "/in-too"),  # 405: it exists
        lambda: provider.set_aside("/moved", "k"),
        lambda: provider.has_aside("/moved", "k"),
        lambda: provider.has_aside("/missing/moved", "k"),
        lambda: provider.restore("/moved", "k"),
        lambda: provider.set_aside("/copied-dir", "k"),
        lambda: provider.discard("/copied-dir", "k"),
        lambda: provider.discard("/missing/moved", "k"),
        lambda: provider.set_aside("/missing", "k"),  # 404
    ]
    found = [outcome(call) for call in calls]
    piece.discard()
    provider.close()
    assert fds() == before
    statuses = [what if isinstance(what, int | str | None) else "ok" for what in found]
    assert statuses == [
        "ok", "ok", 405, "ok", 409, 404, 409, 405, 405, 403, "OSError None", 409,
        "ok", "ok", "ok", 404, 405, 403, "ok", 404,
        None, 405, 409, 404, None, 404, "ok", 409, None, None, 404, 404, 404,
        None, None, 404, 404, True, 409, 404, None, 405, None, True, False, None, None, None,
        None, 404,
    ]  # fmt: skip
    assert (root / "file").read_bytes() == b"01a"
    assert (root / "d" / "secret").read_bytes() == b"insideab"
    assert sorted(os.listdir(root / "d")) == ["new", "secret"]
    assert sorted(os.listdir(root)) == [
        ".davserver-tmp-trash", "d", "file", "in", "in-too", "moved", "new", "out", "pipe"
    ]  # fmt: skip
    assert state(tree[1]) == outside


def test_a_mkcol_never_lands_outside(tree: tuple[Path, Path]) -> None:
    # The folder was made by a name the lstat walk had checked.
    names = iter(range(1_000_000))
    seen, escapes = while_swapped(tree, lambda p: p.make_collection(f"/d/new{next(names)}"))
    assert escapes == 0, seen
    assert set(seen) == {None, 404, 409}


def test_a_delete_never_removes_outside(tree: tuple[Path, Path]) -> None:
    # The file was unlinked (its name linked into the trash first) by a name the lstat walk
    # had checked: the outside file of that name went.
    def delete(p: FilesystemProvider) -> None:
        p.write("/d/secret", [b"inside"])
        p.delete("/d/secret")

    seen, escapes = while_swapped(tree, delete)
    assert escapes == 0, seen
    assert set(seen) == {None, 404, 409}


def test_a_delete_of_a_folder_never_removes_outside(tree: tuple[Path, Path]) -> None:
    (tree[1] / "empty").mkdir()

    def delete(p: FilesystemProvider) -> None:
        in_the_folder(p, lambda folder: os.mkdir("empty", dir_fd=folder))
        p.delete("/d/empty")

    seen, escapes = while_swapped(tree, delete)
    assert escapes == 0, seen
    assert set(seen) == {None, 404}


def test_a_modification_time_is_never_set_outside(tree: tuple[Path, Path]) -> None:
    # The time was set by a name the lstat walk had checked (X-OC-Mtime on a resumed upload).
    seen, escapes = while_swapped(tree, lambda p: p.set_mtime("/d/secret", 1_000_000.0))
    assert escapes == 0, seen
    assert set(seen) == {None, 404}


def test_a_look_never_tells_of_an_outside_file(tree: tuple[Path, Path]) -> None:
    # HEAD and PROPFIND: the lstat walk looked at d, then at d/secret by a name that
    # followed d swapped for a link meanwhile, and told the outside file's size and date.
    seen, escapes = while_swapped(tree, lambda p: p.stat("/d/secret").size)
    assert escapes == 0
    assert set(seen) == {6, 404}


def test_a_listing_never_shows_an_outside_folder(tree: tuple[Path, Path]) -> None:
    # PROPFIND Depth 1: the folder was listed by a name that followed d swapped for a link
    # meanwhile, and showed the outside folder's members.
    (tree[1] / "outside-only").write_bytes(b"")
    seen, escapes = while_swapped(tree, lambda p: tuple((r.path, r.size) for r in p.children("/d")))
    assert escapes == 0
    assert set(seen) == {(("/d/secret", 6),), 404}


def test_no_descriptor_outlives_a_look(tree: tuple[Path, Path]) -> None:
    root, outside = tree
    provider = FilesystemProvider(str(root))
    (root / "in").symlink_to("d")
    (root / "d" / "back").symlink_to("../in")
    (root / "out").symlink_to(outside)
    (root / "d" / "out").symlink_to(outside / "secret")
    (root / "dangling").symlink_to("nothing")
    os.mkfifo(root / "pipe")

    def first_of(path: str) -> str:
        listing = provider.children(path)
        return next(listing).path.rpartition("/")[0]  # left unfinished, then dropped

    calls: list[Callable[[], object]] = [
        lambda: provider.stat("/").size,
        lambda: provider.stat("/in/secret").size,
        lambda: provider.stat("/in/back/secret").size,
        lambda: provider.stat("/in").is_link,
        lambda: provider.stat("/out"),
        lambda: provider.stat("/out/secret"),
        lambda: provider.stat("/d/out"),
        lambda: provider.stat("/dangling"),
        lambda: provider.stat("/pipe"),
        lambda: provider.stat("/d/secret/x"),
        lambda: sorted(r.path for r in provider.children("/")),
        lambda: sorted((r.path, r.is_link) for r in provider.children("/in")),
        lambda: list(provider.children("/out")),
        lambda: list(provider.children("/d/secret")),
        lambda: list(provider.children("/pipe")),
        lambda: first_of("/d"),
    ]
    before = fds()
    found = [outcome(call) for call in calls]
    assert fds() == before
    assert found == [
        0, 6, 6, True, 404, 404, 404, 404, 403, 404,
        ["/d", "/in"],
        [("/in/back", True), ("/in/secret", False)],
        404, 404, 404, "/d",
    ]  # fmt: skip


def test_a_copy_never_reads_outside(tree: tuple[Path, Path]) -> None:
    # COPY opened its source by a name the lstat walk had checked, and copied the outside
    # file into the share.
    root, _outside = tree

    def copy(p: FilesystemProvider) -> int:
        p.copy("/d/secret", "/copied")
        return (root / "copied").stat().st_size

    seen, escapes = while_swapped(tree, copy)
    assert escapes == 0
    assert set(seen) == {6, 404}


# A change and its undoing, each done while the folder /d is swapped for a link to outside,
# and what both give when neither met the swap. By name:
# - MOVE took the outside file into the share, or put the share's file outside;
# - a MOVE between filesystems copies links as links: the copy was made outside;
# - a COPY or MOVE over a resource first sets it aside, by a rename within its folder: the
#   outside file was renamed, or the share's put back outside.
THERE_AND_BACK: dict[str, tuple[Callable[[FilesystemProvider], object], ...]] = {
    "move": (lambda p: p.move("/d/secret", "/moved"), lambda p: p.move("/moved", "/d/secret")),
    "copy_link": (lambda p: p.copy_link("/link", "/d/link"), lambda p: p.delete("/d/link")),
    "set_aside": (
        lambda p: p.set_aside("/d/secret", "k"),
        lambda p: p.restore("/d/secret", "k"),
    ),
}
UNDISTURBED = {"move": (True, True), "copy_link": (None, None), "set_aside": (None, None)}


@pytest.mark.parametrize("change", sorted(THERE_AND_BACK))
def test_a_change_and_its_undoing_never_reach_outside(tree: tuple[Path, Path], change: str) -> None:
    if change == "copy_link":
        (tree[0] / "link").symlink_to("d/secret")
    there, back = THERE_AND_BACK[change]

    def both(p: FilesystemProvider) -> tuple[object, object]:
        return outcome(lambda: there(p)), outcome(lambda: back(p))

    seen, escapes = while_swapped(tree, both)
    assert escapes == 0, seen
    assert UNDISTURBED[change] in seen


def test_removing_what_was_set_aside_never_follows_a_link(
    tree: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tree set aside was walked by names: a folder in it swapped for a link to outside
    # once listed had the outside files removed.
    root, outside = tree
    (outside / "file").write_bytes(b"kept")
    provider = FilesystemProvider(str(root))
    for name in ("a", "b"):
        (root / "d" / name).mkdir()
        (root / "d" / name / "file").write_bytes(b"set aside")
    provider.set_aside("/d", "k")
    aside = root / ".davserver-tmp-aside-k"
    discard = provider.trash.discard
    swapped: list[str] = []

    def swap_the_other(local: str, where: int | None = None) -> None:
        discard(local, where)
        for name in ("a", "b"):
            if not swapped and (aside / name / "file").exists():
                (aside / name).rename(aside / f"{name}.kept")
                (aside / name).symlink_to(outside)
                swapped.append(name)

    monkeypatch.setattr(provider.trash, "discard", swap_the_other)
    provider.discard("/d", "k")
    provider.close()
    assert swapped
    assert (outside / "file").read_bytes() == b"kept"
    assert not (aside / swapped[0]).is_symlink()  # the link went, as a link
