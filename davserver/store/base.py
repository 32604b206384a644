"""Property, lock and claim storage: small Protocols and the rules they share.

All are keyed by provider path. Time is always passed in (`now`, seconds since the epoch) so
that expiry is decided by the caller's clock and tests need no sleeping. One contract test
suite (tests/test_store_contract.py) runs against every implementation.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from .. import paths


class PropertyStore(Protocol):
    """Dead properties: Clark name -> the property element as XML text, per resource."""

    def get(self, path: str, names: Collection[str] | None = None) -> dict[str, str]:
        """The resource's properties (only `names` when given; unknown names are left out)."""
        ...

    def get_many(
        self, paths: Sequence[str], names: Collection[str] | None = None
    ) -> dict[str, dict[str, str]]:
        """`get` for several resources in one query (a listing's page of members): path ->
        its properties; a resource with none (of `names`) is left out."""
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

    def described(self, root: str, after: str = "", limit: int = 1000) -> list[str]:
        """Paths at or under `root` that have any property, in order, the first `limit` of
        those after `after`: recovery after a crash pages through them to drop those of
        resources that are gone, in bounded memory."""
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


@dataclass(frozen=True, slots=True)
class Claim:
    """A change in progress on parts of the tree: the paths it holds and what it is doing.

    `exclusive` paths are being changed (with everything under them); `shared` ones only read
    (a COPY's source). `intent` says, as plain JSON-able values, what a crash in the middle
    would leave, so that whoever finds the claim of a dead owner can finish or undo it
    (`davserver.recovery`). `owner` names the process holding it (`davserver.store.owners`).
    """

    id: str
    owner: str
    exclusive: tuple[str, ...]
    shared: tuple[str, ...]
    intent: dict[str, object]


def claims_meet(a: str, a_exclusive: bool, b: str, b_exclusive: bool) -> bool:
    """Whether claims on paths `a` and `b` exclude each other: one path is the other or lies
    under it, and at least one of the two changes it."""
    if not (a_exclusive or b_exclusive):
        return False
    return paths.is_same_or_ancestor(a, b) or paths.is_ancestor(b, a)


def wanted_paths(exclusive: Sequence[str], shared: Sequence[str]) -> list[tuple[str, bool]]:
    """A claim's paths as (path, exclusive) pairs, as `meeting` and the stores' rows take them."""
    return [(p, True) for p in exclusive] + [(p, False) for p in shared]


def meeting(rows: Iterable[tuple[str, str, bool]], wanted: Iterable[tuple[str, bool]]) -> set[str]:
    """The ids of the held claim paths `rows` (id, path, exclusive) that meet any of the
    `wanted` (path, exclusive): the claims a new one on `wanted` must wait for."""
    wanted = list(wanted)
    return {
        claim_id
        for claim_id, other, excl in rows
        for path, mine in wanted
        if claims_meet(path, mine, other, bool(excl))
    }


def claims_of(rows: Iterable[tuple[str, str, str, str, bool]]) -> list[Claim]:
    """Claims from their rows joined with their paths (id, owner, intent as JSON, path,
    exclusive), each claim's rows together."""
    found: dict[str, tuple[str, str, list[tuple[str, bool]]]] = {}
    for claim_id, owner, intent, path, excl in rows:
        found.setdefault(claim_id, (owner, intent, []))[2].append((path, bool(excl)))
    return [
        Claim(
            claim_id,
            owner,
            tuple(p for p, e in held if e),
            tuple(p for p, e in held if not e),
            json.loads(intent),
        )
        for claim_id, (owner, intent, held) in found.items()
    ]


class ClaimStore(Protocol):
    """Claims on parts of the tree, shared by every process (and instance) serving it.

    This orders the operations that change the tree: two requests whose paths meet run one
    after the other, whichever process serves them (RFC 4918 leaves the order free, but each
    answer must be what running them one at a time gives).
    """

    def try_take(
        self,
        exclusive: Sequence[str],
        shared: Sequence[str],
        intent: dict[str, object],
    ) -> tuple[str | None, list[Claim]]:
        """Take a claim on all the paths at once, or none: `(id, [])` when taken, else
        `(None, the claims in the way)`."""
        ...

    def update(self, claim_id: str, intent: dict[str, object]) -> None:
        """Record how far the claimed change has come (its new intent)."""
        ...

    def release(self, claim_id: str) -> None:
        """Drop the claim: the change is complete, or was undone."""
        ...

    def adopt(self, claim: Claim) -> bool:
        """Make a dead owner's claim this process's own, so that exactly one process recovers
        it; False when another did first (or its owner was not dead after all)."""
        ...

    def orphans(self) -> list[Claim]:
        """The claims whose owner is known to be gone (crashed, or from before a reboot)."""
        ...

    def is_alive(self, owner: str) -> bool:
        """Whether the process that took a claim may still be running."""
        ...

    def close(self) -> None:
        """Close this process's connections."""
        ...
