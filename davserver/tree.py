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

from . import paths
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
    attempted. `check` is asked about destination paths. With `keep_times` (a MOVE done as a
    copy) every member keeps its modification time, collections once their members are in.

    A link to a collection in the share is copied as the collection a client sees through it,
    members and all, unless following it would loop (`LinkLoops`): that member fails with 508.
    """
    provider = services.provider
    failures: list[MemberStatus] = []
    collection_times: list[tuple[str, float]] = []
    loops = LinkLoops(provider, source.path, destination)
    followed: set[str] = set()
    members = walk(
        provider,
        source,
        "infinity" if depth == "infinity" else "0",
        through=lambda link: link.path in followed,
    )
    for res in members:
        target = paths.rebase(res.path, source.path, destination)
        if any(paths.is_ancestor(f.path, target) for f in failures if f.is_collection):
            continue
        linked_collection = res.is_link and res.is_collection
        error = (loops.check(res) if linked_collection else None) or check(target)
        if error is None:
            try:
                provider.copy(res.path, target)
                services.props.copy(res.path, target, recursive=False)
                if linked_collection:
                    followed.add(res.path)
                if keep_times and res.is_collection:
                    collection_times.append((target, res.mtime))
                elif keep_times:
                    provider.set_mtime(target, res.mtime)
            except DavError as exc:
                error = exc
        if error is not None:
            failures.append(failure(target, res.is_collection, error))
    for target, mtime in reversed(collection_times):
        with contextlib.suppress(DavError):  # a date is not worth failing a move for
            provider.set_mtime(target, mtime)
    return failures


class LinkLoops:
    """Whether following a link to a collection during a copy of `source` to `destination`
    would never end: because the link leads back to a collection the walk is inside (which
    would be copied into itself, again and again), or to where the copy is being written (the
    walk would meet its own copies), or into it (likewise)."""

    def __init__(self, provider: Provider, source: str, destination: str) -> None:
        self.provider = provider
        self.source = source
        self.resolver = provider if isinstance(provider, LinkResolver) else None
        self.destination = self._real(destination)

    def _real(self, path: str) -> str:
        return self.resolver.canonical(path) if self.resolver is not None else path

    def check(self, link: Resource) -> DavError | None:
        if self.resolver is None:
            return None  # a provider without links has nothing to follow
        real = self._real(link.path)
        # The collections the walk is inside: the link's ancestors up to the copy's source.
        inside = [link.path]
        while inside[-1] != self.source and inside[-1] != paths.ROOT:
            inside.append(paths.parent(inside[-1]))
        outer = [self._real(path) for path in inside[1:]]
        if any(paths.is_same_or_ancestor(real, path) for path in outer) or (
            paths.is_same_or_ancestor(real, self.destination)
            or paths.is_ancestor(self.destination, real)
        ):
            return DavError(
                f"{link.path} links to {real}, which the copy would never finish",
                status=508,
            )
        return None


def move_tree(
    services: Services,
    source: Resource,
    destination: str,
    check: MemberCheck = allow_all,
) -> list[MemberStatus]:
    """Move `source` to `destination` (which does not exist).

    In one step when the provider can (a rename); otherwise the tree is copied member by member
    and the source deleted only once the whole copy succeeded, so a failure never loses the
    source. Dead properties move; locks on the source are dropped (RFC 4918 7.6). `check` is
    asked about source paths.
    """
    if services.provider.move(source.path, destination):
        services.props.move(source.path, destination)
        services.locks.delete([source.path], recursive=True)
        return []
    failures = copy_tree(services, source, destination, "infinity", keep_times=True)
    if failures:
        return failures
    return delete_tree(services, source, check)
