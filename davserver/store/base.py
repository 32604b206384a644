"""Property and lock storage: two small Protocols and the rules they share.

Both are keyed by provider path. Time is always passed in (`now`, seconds since the epoch) so
that expiry is decided by the caller's clock and tests need no sleeping. One contract test
suite (tests/test_store_contract.py) runs against every implementation.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from .. import paths


class PropertyStore(Protocol):
    """Dead properties: Clark name -> the property element as XML text, per resource."""

    def get(self, path: str, names: Collection[str] | None = None) -> dict[str, str]:
        """The resource's properties (only `names` when given; unknown names are left out)."""
        ...

    def members_with_properties(self, parent: str) -> set[str]:
        """The direct members of `parent` that have any property, in one query, so that a
        listing asks `get` only for those."""
        ...

    def patch(self, path: str, changes: Sequence[tuple[str, str | None]]) -> None:
        """Apply sets (value) and removes (None) in order, all or nothing."""
        ...

    def copy(self, src: str, dst: str, *, recursive: bool) -> None:
        """Replace the properties of `dst` (and, when recursive, of everything under it) with
        those of `src` (and everything under it)."""
        ...

    def move(self, src: str, dst: str) -> None:
        """Move the properties of `src` and everything under it to `dst`, replacing any."""
        ...

    def delete(self, paths: Iterable[str], *, recursive: bool = False) -> None:
        """Forget the properties of these resources (and everything under them)."""
        ...


Scope = Literal["exclusive", "shared"]


@dataclass(frozen=True, slots=True)
class Lock:
    """A write lock (RFC 4918 6). `expires` is absolute; `timeout` the seconds granted."""

    token: str
    root: str
    depth: Literal["0", "infinity"]
    scope: Scope
    owner: str | None
    principal: str | None
    timeout: int
    expires: float

    def covers(self, path: str) -> bool:
        """Whether the lock applies to `path`: its root, or under it for depth infinity."""
        return path == self.root or (
            self.depth == "infinity" and paths.is_ancestor(self.root, path)
        )


class LockConflict(Exception):
    """Raised by `LockStore.acquire` with the lock that stands in the way."""

    def __init__(self, lock: Lock) -> None:
        super().__init__(f"conflicts with lock {lock.token} on {lock.root}")
        self.lock = lock


def find_conflict(new: Lock, existing: Iterable[Lock]) -> Lock | None:
    """The first existing lock that `new` may not coexist with (RFC 4918 6.1 and 7.1).

    Two locks meet when either covers the other's root; they may share the resources only
    when both are shared.
    """
    for lock in existing:
        meets = lock.covers(new.root) or new.covers(lock.root)
        if meets and not (lock.scope == "shared" and new.scope == "shared"):
            return lock
    return None


class LockStore(Protocol):
    """Active locks; expired ones are never returned and may be dropped at any time."""

    def acquire(self, lock: Lock, now: float) -> None:
        """Store `lock` unless an active lock conflicts (`find_conflict`), atomically even
        between processes; raises LockConflict."""
        ...

    def refresh(self, token: str, timeout: int, now: float) -> Lock | None:
        """Restart the lock's timeout; None when no such active lock exists."""
        ...

    def release(self, token: str) -> bool:
        """Remove the lock; False when there was none."""
        ...

    def get(self, token: str, now: float) -> Lock | None: ...

    def covering(self, path: str, now: float) -> list[Lock]:
        """Active locks that apply to `path`: on it, or depth-infinity on an ancestor."""
        ...

    def around(self, path: str, now: float) -> list[Lock]:
        """Active locks rooted at `path`, at any of its ancestors (whatever their depth), or
        anywhere under it: everything that can matter for changing the tree at `path` or its
        place in its parent, in one look."""
        ...

    def delete(self, paths: Iterable[str], *, recursive: bool = False) -> None:
        """Drop the locks rooted at these paths (and under them): their resources are gone."""
        ...
