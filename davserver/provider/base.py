"""The storage interface: the only way the protocol layer reaches stored bytes.

It is deliberately small and free of filesystem ideas (no file descriptors, inodes or
permissions), so that an object store can implement it: every method acts on ONE resource,
except `move`, which a provider may decline. Recursion over collections (PROPFIND walks, bulk
DELETE, COPY and MOVE of trees) lives once above it, in `davserver.tree`, so that lock checks
and per-member 207 results work the same for every provider.

Paths are provider paths (see `davserver.paths`): already decoded and checked segments.
Failures are raised as `DavError` subclasses named in each docstring; any other exception is a
bug and becomes a 500.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Protocol, runtime_checkable

from ..model import Resource


class ReadStream(Protocol):
    """A file's content as `open_read` gives it: read from any position, closed by the
    caller (also as a context manager)."""

    def read(self, size: int = -1, /) -> bytes: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...

    def tell(self) -> int: ...

    def close(self) -> None: ...

    def __enter__(self) -> ReadStream: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
        /,
    ) -> None: ...


class Provider(Protocol):
    """A tree of collections and files."""

    # Whether looking a path up is a system call (a local filesystem), not a round trip over
    # the network (S3): the plain GET's shortcut (DavApp.shortcut) leaves a miss for the
    # general path to look up again, and is only worth that where a lookup costs little.
    local_lookups: bool

    def stat(self, path: str) -> Resource:
        """The resource at `path`. Raises NotFound (also for anything outside the root)."""
        ...

    def children(self, path: str) -> Iterator[Resource]:
        """The members of the collection at `path`, in no particular order.

        Members that vanish while listing are left out. Raises NotFound, Forbidden.
        """
        ...

    def open_read(self, path: str) -> tuple[Resource, ReadStream]:
        """The file as opened and a seekable binary stream of its content (the caller closes
        it). The Resource describes exactly the bytes the stream gives, even if the file is
        replaced meanwhile. Raises NotFound, Forbidden, MethodNotAllowed (a collection).
        """
        ...

    def write(self, path: str, chunks: Iterable[bytes], *, create: bool = False) -> Resource:
        """Replace or create the file at `path` with the concatenated chunks, atomically.

        Readers see either the old content or the new, never a part; if `chunks` raises
        (a client that disconnects, a failed checksum), the old content stays and the
        exception propagates. With `create`, only where nothing exists, decided atomically
        (MethodNotAllowed if something appeared meanwhile). Raises Conflict (no parent
        collection), MethodNotAllowed (a collection is there), Forbidden, InsufficientStorage.
        """
        ...

    def stage(self, path: str, chunks: Iterable[bytes]) -> Staged:
        """Write the content meant for the file at `path` where no reader sees it yet, so the
        caller can check, at the moment it commits, what may have changed while the body
        arrived (a lock taken meanwhile). If `chunks` raises, nothing is kept and the exception
        propagates. Raises Conflict (no parent collection), MethodNotAllowed (a collection is
        there), Forbidden, InsufficientStorage."""
        ...

    def make_collection(self, path: str) -> None:
        """Create an empty collection. Raises MethodNotAllowed (something exists there),
        Conflict (no parent collection), Forbidden, InsufficientStorage."""
        ...

    def delete(self, path: str) -> None:
        """Remove a file or an EMPTY collection. Raises NotFound, Forbidden, Conflict
        (a collection that still has members)."""
        ...

    def copy(self, src: str, dst: str) -> None:
        """Copy ONE resource: a file's content (atomically), or for a collection an empty
        collection at `dst` (its members are copied one by one by the caller). `dst` does not
        exist. Raises NotFound, Conflict (no parent at dst), Forbidden, InsufficientStorage."""
        ...

    def move(self, src: str, dst: str) -> bool:
        """Move the resource and everything under it to `dst` (which does not exist) in one
        step, returning True; or return False when this provider cannot (for example across
        devices, or an object store), and the caller copies and deletes member by member.
        Raises NotFound, Conflict (no parent at dst), Forbidden."""
        ...

    def set_mtime(self, path: str, mtime: float) -> None:
        """Set the modification time (clients that sync dates ask for it). Raises NotFound,
        Forbidden."""
        ...

    def quota(self, path: str) -> tuple[int, int] | None:
        """`(used_bytes, available_bytes)` for RFC 4331, or None when unknown."""
        ...


class Staged(Protocol):
    """Content written by `Provider.stage`, waiting for its commit."""

    def commit(self, *, create: bool = False, mtime: float | None = None) -> Resource:
        """Replace the file atomically (or, with `create`, only where nothing is: raises
        MethodNotAllowed when something appeared), with `mtime` as its modification time.
        Raises Conflict (the parent collection is gone), MethodNotAllowed (a collection is
        there now), Forbidden, InsufficientStorage."""
        ...

    def discard(self) -> None:
        """Drop the content unless committed; always safe to call, also after `commit`."""
        ...


@runtime_checkable
class AsideKeeper(Protocol):
    """An optional extra: taking a resource and everything under it out of the tree in one
    step, to put it back or drop it later. A MOVE or COPY that replaces a resource keeps it
    aside until the new one is in place, so a failure (or a crash) never loses it. `key` names
    one such resource among those set aside beside the same path."""

    def set_aside(self, path: str, key: str) -> None:
        """Raises NotFound, Forbidden."""
        ...

    def has_aside(self, path: str, key: str) -> bool: ...

    def restore(self, path: str, key: str) -> None:
        """Put it back at `path`, where nothing may be."""
        ...

    def discard(self, path: str, key: str) -> None:
        """Remove it for good."""
        ...


@runtime_checkable
class RangeWriter(Protocol):
    """An optional extra: writing part of a file in place, for resumable uploads
    (PUT with Content-Range). Providers that cannot (object stores) leave it out, and such
    PUTs are refused with 501."""

    def write_range(
        self, path: str, offset: int, piece: Staged, *, create: bool = False
    ) -> Resource:
        """Write the staged `piece` (from `stage`, the body read in full) into the file at
        `offset` (at most its current size); with `create`, as a new file (offset 0) made
        only where nothing is (MethodNotAllowed when something appeared). Readers see the old
        content or the new, never a mix: an append leaves the bytes they see alone, a rewrite
        replaces the file whole. A crash during an append may leave part of the piece, which a
        client resuming the upload from the file's size expects. Raises NotFound, Conflict,
        Forbidden,
        MethodNotAllowed (a collection), InsufficientStorage."""
        ...

    def truncate(self, path: str, size: int) -> Resource:
        """Cut the file to `size` bytes (the declared total of a resumed upload)."""
        ...


@runtime_checkable
class TreeCounter(Protocol):
    """An optional extra: counting a tree more cheaply than walking it (the Depth: infinity
    limit is checked before the first byte of a PROPFIND)."""

    def count(self, path: str, limit: int) -> int:
        """Resources in the tree at `path`, itself included; may stop once past `limit`."""
        ...


@runtime_checkable
class LinkResolver(Protocol):
    """An optional extra for storage with links (a filesystem's symlinks): the name a path
    has once links are followed, so that COPY and MOVE can see that two paths are one
    resource, or that one lies inside the other, and a way to copy a link as a link."""

    def canonical(self, path: str) -> str:
        """The provider path `path` resolves to; for a path that does not exist, its
        resolved parent and its name."""
        ...

    def copy_link(self, src: str, dst: str) -> None:
        """Make `dst` a link leading where the link `src` leads, written as `src` has it (a
        MOVE done as a copy carries links as a rename would)."""
        ...
