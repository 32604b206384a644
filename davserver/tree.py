"""Operations over whole trees, written once above the provider.

Walks, bulk DELETE, and COPY and MOVE of collections are built from the provider's
one-resource calls, so that per-member checks (locks, access rules) and per-member results
(the entries of a 207 Multi-Status, RFC 4918 9.6.1 / 9.8.8 / 9.9.4) come out the same for every
provider. Each operation returns only the members that failed; a member that fails keeps its
ancestors (a collection is removed only once everything in it is), so nothing is ever lost.

Loops use explicit stacks: a deep tree must not hit Python's recursion limit.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from . import failpoints, paths
from .errors import DavError
from .model import MemberStatus, Resource
from .provider.base import LinkResolver, Provider, TreeCounter
from .services import Services

# A per-member check: None when the member may be changed, else why not.
MemberCheck = Callable[[str], DavError | None]

_FLUSH_EVERY = 500


def allow_all(_path: str) -> DavError | None:
    return None


def failure(path: str, is_collection: bool, error: DavError) -> MemberStatus:
    return MemberStatus(
        path,
        error.status,
        is_collection,
        error.condition,
        error.message,
        error.hrefs,
    )


def walk(
    provider: Provider,
    resource: Resource,
    depth: str,
    descend: Callable[[Resource], bool] | None = None,
    through: Callable[[Resource], bool] | None = None,
) -> Iterator[Resource]:
    """`resource` and, to `depth` ("0", "1", "infinity"), everything under it, parents first.

    Lazy: one directory listing is open per level, so memory does not grow with the tree.
    A collection that cannot be listed (it vanished, or access is refused), or for which
    `descend` says no, contributes no members. Links to collections are leaves, except those
    `through` says to follow (asked after the link itself has been yielded).
    """
    yield resource
    if not resource.is_collection or depth == "0":
        return
    if descend is not None and not descend(resource):
        return
    stack: list[Iterator[Resource]] = []
    try:
        stack.append(_children(provider, resource.path))
        while stack:
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
                continue
            yield child
            if (
                child.is_collection
                and depth != "1"
                and (not child.is_link or (through is not None and through(child)))
                and (descend is None or descend(child))
            ):
                stack.append(_children(provider, child.path))
    finally:
        for iterator in stack:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()


def count(provider: Provider, resource: Resource, limit: int) -> int:
    """How many resources a Depth: infinity walk of `resource` meets, stopping past `limit`."""
    if isinstance(provider, TreeCounter):
        return provider.count(resource.path, limit)
    return sum(1 for _ in itertools.islice(walk(provider, resource, "infinity"), limit + 1))


def _children(provider: Provider, path: str) -> Iterator[Resource]:
    try:
        yield from provider.children(path)
    except DavError:
        return


class _Forget:
    """Batches the store clean-up for removed resources: one transaction per few hundred."""

    def __init__(self, services: Services, locks: bool) -> None:
        self.services = services
        self.locks = locks
        self.pending: list[str] = []

    def add(self, path: str) -> None:
        self.pending.append(path)
        if len(self.pending) >= _FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.services.props.delete(self.pending)
            if self.locks:
                self.services.locks.delete(self.pending)
            self.pending = []


@dataclass(slots=True)
class _Frame:
    resource: Resource
    members: Iterator[Resource] | None = None
    failed: bool = False


@dataclass(slots=True)
class _Outcome:
    failures: list[MemberStatus] = field(default_factory=list)

    def fail(self, stack: list[_Frame], resource: Resource, error: DavError) -> None:
        self.failures.append(failure(resource.path, resource.is_collection, error))
        if stack:
            stack[-1].failed = True


def delete_tree(
    services: Services,
    resource: Resource,
    check: MemberCheck = allow_all,
    *,
    forget_locks: bool = True,
) -> list[MemberStatus]:
    """Delete `resource` and everything under it, members first; return the failures.

    A member that fails (refused by `check` or by the provider) is reported and stays, and so
    do all its ancestors, which are not reported (RFC 4918 9.6.1: no 424 for them). Properties
    and locks of every removed resource are forgotten; `forget_locks=False` says that the
    caller has just seen no lock in the tree, which saves a look per removed resource.
    """
    provider = services.provider
    forget = _Forget(services, forget_locks)
    outcome = _Outcome()
    stack = [_Frame(resource)]
    try:
        while stack:
            frame = stack[-1]
            res = frame.resource
            if res.is_collection and not res.is_link and frame.members is None:
                error = check(res.path)
                if error is None:
                    try:
                        frame.members = iter(list(provider.children(res.path)))
                    except DavError as exc:
                        error = exc
                if error is not None:
                    stack.pop()
                    outcome.fail(stack, res, error)
                continue
            if frame.members is not None:
                member = next(frame.members, None)
                if member is not None:
                    stack.append(_Frame(member))
                    continue
            stack.pop()
            if frame.failed:
                if stack:
                    stack[-1].failed = True
                continue
            error = check(res.path) if res.is_link or not res.is_collection else None
            if error is None:
                try:
                    provider.delete(res.path)
                except DavError as exc:
                    error = exc
            if error is not None:
                outcome.fail(stack, res, error)
            else:
                forget.add(res.path)
                failpoints.hit("delete.member")
    finally:
        forget.flush()
    return outcome.failures


def copy_tree(
    services: Services,
    source: Resource,
    destination: str,
    depth: str,
    check: MemberCheck = allow_all,
    keep_times: bool = False,
) -> list[MemberStatus]:
    """Copy `source` to `destination` (which does not exist), members after their parent.

    Dead properties travel with each member; locks do not (RFC 4918 7.6). A member that fails
    is reported under its destination path and, for a collection, its members are not
    attempted. `check` is asked about destination paths.

    A COPY copies what clients see: a link to a collection in the share becomes a real
    collection with the members it shows, unless following it would never end or repeat
    itself (`LinkFollower`): that member fails with 508. `keep_times` marks a MOVE done as a
    copy: every member keeps its modification time (collections once their members are in)
    and links are made anew as links, as a rename would have carried them.
    """
    provider = services.provider
    resolver = provider if isinstance(provider, LinkResolver) else None
    keep_links = keep_times and resolver is not None
    failures: list[MemberStatus] = []
    failed: set[str] = set()  # source paths of failed collections: their members are not tried
    followed: set[str] = set()
    collection_times: list[tuple[str, float]] = []
    links = LinkFollower(resolver, source.path, destination)
    walk_depth = "infinity" if depth == "infinity" else "0"
    if keep_links and source.is_link:
        walk_depth = "0"
    members = walk(
        provider,
        source,
        walk_depth,
        descend=lambda collection: collection.path not in failed,
        through=lambda link: link.path in followed,
    )
    for res in members:
        target = paths.rebase(res.path, source.path, destination)
        follow = res.is_link and res.is_collection and not keep_links and res is not source
        error = check(target) or (links.check(res) if follow else None)
        if error is None:
            try:
                if keep_links and res.is_link:
                    assert resolver is not None
                    resolver.copy_link(res.path, target)
                else:
                    provider.copy(res.path, target)
                services.props.copy(res.path, target, recursive=False)
                failpoints.hit("copy.member")
                if follow:
                    followed.add(res.path)
                if keep_times and res.is_collection and not res.is_link:
                    collection_times.append((target, res.mtime))
                elif keep_times and not res.is_link:
                    provider.set_mtime(target, res.mtime)
            except DavError as exc:
                error = exc
        if error is not None:
            failures.append(failure(target, res.is_collection, error))
            if res.is_collection:
                failed.add(res.path)
    for target, mtime in reversed(collection_times):
        with contextlib.suppress(DavError):  # a date is not worth failing a move for
            provider.set_mtime(target, mtime)
    return failures


class LinkFollower:
    """Which links to collections a copy of `source` to `destination` follows.

    Not one that would make the copy endless: leading back to a collection the walk is inside
    (the copy would contain itself, again and again), or to or into where the copy is written
    (the walk would meet its own copies). Nor a second link to a collection already followed:
    links that lead several times to the same place, level after level, would otherwise
    multiply the copy without end. Each costs one `canonical` per link and per collection
    the walk enters, remembered only along the current branch.
    """

    def __init__(self, resolver: LinkResolver | None, source: str, destination: str) -> None:
        self.resolver = resolver
        self.source = source
        self.destination = resolver.canonical(destination) if resolver else destination
        self.seen: set[str] = set()
        self.branch: dict[str, str] = {}  # provider path -> where it leads, along one branch

    def check(self, link: Resource) -> DavError | None:
        if self.resolver is None:
            return None  # a provider without links has nothing to follow
        above = []
        path = link.path
        while path != self.source and path != paths.ROOT:
            path = paths.parent(path)
            above.append(path)
        self.branch = {p: self.branch.get(p) or self.resolver.canonical(p) for p in above}
        real = self.resolver.canonical(link.path)
        loops = any(paths.is_same_or_ancestor(real, outer) for outer in self.branch.values())
        if loops or (
            paths.is_same_or_ancestor(real, self.destination)
            or paths.is_ancestor(self.destination, real)
        ):
            return DavError("the link leads back into the copy, which would never end", status=508)
        if real in self.seen:
            return DavError("another link to the same collection was copied already", status=508)
        self.seen.add(real)
        return None
