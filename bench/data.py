"""The benchmark data: built once in a master folder, then hard-linked into one root per server.

Hard links give every server byte-for-byte the same files (same sizes, same mtimes, same page
cache) at no extra disk cost. Directories are real per server, so whatever one server writes
(uploads, Apache's `.DAV/` property databases, temporary files) never shows up in another
server's listings. Nothing here writes into a shared inode: uploads always create new files.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

# File extensions cycled through, so that content-type guessing sees a realistic mix.
EXTENSIONS = (".txt", ".jpg", ".pdf", ".docx", ".bin", ".html", ".png", ".mp3", ".csv", ".odt")
SMALL_SIZE = 4096


@dataclass(frozen=True)
class Sizes:
    """How much data to build; `standard()`, `quick()` and `--large` fill it in."""

    folder_small: int = 1_000  # files in /f-small/
    folder_big: int = 10_000  # files in /f-big/
    props_files: int = 1_000  # files in /props/, each given `props_per_file` dead properties
    props_per_file: int = 100
    tree: tuple[int, int, int] = (20, 10, 99)  # /tree/: top dirs x subdirs x files
    large_tree: tuple[int, int, int] | None = None  # /tree-large/, with --large
    big_file: int = 256 * 1024 * 1024  # /big.bin
    put_tree: tuple[int, int] = (10, 100)  # PUT figure: folders x files of SMALL_SIZE
    batch_files: int = 1_000  # batch DELETE figure: files deleted per batch (and one by one)

    @staticmethod
    def quick() -> Sizes:
        return Sizes(
            folder_small=200,
            folder_big=1_000,
            props_files=100,
            props_per_file=100,
            tree=(4, 5, 99),
            big_file=16 * 1024 * 1024,
            put_tree=(4, 25),
            batch_files=100,
        )

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def tree_entries(shape: tuple[int, int, int]) -> int:
    """Resources a Depth: infinity PROPFIND on the tree reports (the tree's root included)."""
    top, sub, files = shape
    return 1 + top + top * sub + top * sub * files


def file_name(index: int) -> str:
    return f"file-{index:05d}{EXTENSIONS[index % len(EXTENSIONS)]}"


def _content(index: int) -> bytes:
    return f"benchmark file {index}\n".encode() * 8


def _write_folder(folder: str, count: int) -> None:
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        with open(os.path.join(folder, file_name(i)), "wb") as out:
            out.write(_content(i))


def _write_tree(folder: str, shape: tuple[int, int, int]) -> None:
    top, sub, files = shape
    for a in range(top):
        for b in range(sub):
            _write_folder(os.path.join(folder, f"dir-{a:03d}", f"sub-{b:03d}"), files)


def _write_big(path: str, size: int) -> None:
    block = os.urandom(1024 * 1024)
    with open(path, "wb") as out:
        remaining = size
        while remaining > 0:
            piece = block[: min(len(block), remaining)]
            out.write(piece)
            remaining -= len(piece)


def build_master(master: str, sizes: Sizes) -> None:
    """Write the data once under `master`."""
    os.makedirs(master, exist_ok=True)
    _write_folder(os.path.join(master, "f-small"), sizes.folder_small)
    _write_folder(os.path.join(master, "f-big"), sizes.folder_big)
    _write_folder(os.path.join(master, "props"), sizes.props_files)
    _write_tree(os.path.join(master, "tree"), sizes.tree)
    if sizes.large_tree is not None:
        _write_tree(os.path.join(master, "tree-large"), sizes.large_tree)
    with open(os.path.join(master, "small.bin"), "wb") as out:
        out.write(os.urandom(SMALL_SIZE))
    _write_big(os.path.join(master, "big.bin"), sizes.big_file)
    # Fixed times, so every listing is identical whatever the order of creation.
    for directory, _dirs, files in os.walk(master):
        for name in files:
            os.utime(os.path.join(directory, name), (1_700_000_000, 1_700_000_000))


def link_copy(master: str, root: str, owner: tuple[int, int] | None = None) -> None:
    """A per-server root: real directories, hard-linked files; `owner` gets the directories."""
    for directory, _dirs, files in os.walk(master):
        relative = os.path.relpath(directory, master)
        target = root if relative == "." else os.path.join(root, relative)
        os.makedirs(target, exist_ok=True)
        if owner is not None:
            os.chown(target, *owner)
        for name in files:
            os.link(os.path.join(directory, name), os.path.join(target, name))
