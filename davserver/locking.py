"""Lock enforcement for one request: the If header and the lock tokens it submits.

Every method that changes state asks a `Guard` before it touches a resource. A resource may be
changed when no active lock covers it, or when the request submitted the token of every lock
that does (RFC 4918 6.5, 7.4) and, for a lock made by an authenticated user, is that user
(RFC 4918 6.4). A collection's membership belongs to the collection, so adding or removing a
member also needs the tokens of locks on the parent (RFC 4918 7.5.2).
"""

from __future__ import annotations

from . import paths
from .errors import BadRequest, DavError, Locked, PreconditionFailed
from .headers import quote_etag
from .ifheader import IfHeader, IfHeaderError, ResourceState, evaluate, parse_if
from .request import Request
from .services import Services
from .store.base import Lock


class Guard:
    """The lock view of one request, built once per request."""

    def __init__(self, services: Services, req: Request) -> None:
        self.services = services
        self.req = req
        self.now = services.clock()
        raw = req.header("If")
        self.header: IfHeader | None = None
        if raw is not None:
            try:
                self.header = parse_if(raw)
            except IfHeaderError as exc:
                raise BadRequest(str(exc)) from None
        self.tokens: frozenset[str] = self.header.tokens() if self.header else frozenset()

    # -- the If header as a precondition (RFC 4918 10.4) -----------------------------------

    def check_if_header(self) -> None:
        """412 when an If header is present and none of its lists holds."""
        if self.header is not None and not evaluate(self.header, self._state):
            raise PreconditionFailed("the If header does not match the current state")

    def _state(self, tag: str | None) -> ResourceState:
        path = self.req.path if tag is None else self._tag_path(tag)
        if path is None:
            return ResourceState(False, None, frozenset())
        tokens = frozenset(lock.token for lock in self.services.locks.covering(path, self.now))
        try:
            resource = self.services.provider.stat(path)
        except DavError:
            return ResourceState(False, None, tokens)
        etag = None if resource.is_collection else quote_etag(resource.etag)
        return ResourceState(True, etag, tokens)

    def _tag_path(self, tag: str) -> str | None:
        """The provider path a tagged list names (matched on the public URL), or None when it
        is not one of ours."""
        try:
            return self.req.own_path(tag)
        except DavError:
            return None

    # -- locks on the resources a method changes -------------------------------------------

    def may_use(self, lock: Lock) -> bool:
        """Whether the request submitted the lock's token and may use it (its owner, when a
        logged-in user made it, RFC 4918 6.4)."""
        if lock.token not in self.tokens:
            return False
        return lock.principal is None or lock.principal == self.req.user

    def _blocked(self, lock: Lock) -> Locked:
        return Locked(
            f"{lock.root} is locked",
            condition="lock-token-submitted",
            hrefs=(lock.root,),
        )

    def refusal(self, covering: list[Lock]) -> DavError | None:
        """423 unless the request may use the locks covering a resource: none, or one it holds
        the token of (RFC 4918 6.2: any holder of a shared lock may write; an exclusive lock
        never shares the resource, so holding any covering lock is enough)."""
        if not covering or any(self.may_use(lock) for lock in covering):
            return None
        return self._blocked(covering[0])

    def check(self, path: str) -> DavError | None:
        """Why `path` may not be changed by this request, or None."""
        return self.refusal(self.services.locks.covering(path, self.now))

    def require(self, path: str) -> None:
        """Raise 423 unless the request may change `path` itself."""
        error = self.check(path)
        if error is not None:
            raise error

    def require_membership(self, path: str) -> None:
        """Raise 423 unless the request may add or remove `path` in its parent collection."""
        if path != paths.ROOT:
            self.require(paths.parent(path))

    def tree_check(self, root: str, membership: bool = False) -> TreeCheck:
        """A per-member check for a tree operation on `root`, from one look at the store.

        With `membership`, a lock on the parent collection refuses `root` itself (removing
        or adding a member changes the parent, RFC 4918 7.5.2)."""
        return TreeCheck(self, root, membership)

    def require_tree(self, root: str) -> None:
        """Raise 423 if any member of the tree at `root` is locked against this request.

        For changes that cannot be made in part (MOVE's source, an overwritten destination).
        """
        check = self.tree_check(root)
        for path in [root, *(lock.root for lock in check.locks)]:
            if paths.is_same_or_ancestor(root, path):
                error = check(path)
                if error is not None:
                    raise error


class TreeCheck:
    """`MemberCheck` for the tree at `root`: whether the request may change each member."""

    def __init__(self, guard: Guard, root: str, membership: bool) -> None:
        self.guard = guard
        self.root = root
        self.locks = guard.services.locks.around(root, guard.now)
        parent = paths.parent(root) if membership and root != paths.ROOT else None
        self.on_parent = [lock for lock in self.locks if parent is not None and lock.covers(parent)]
        # Whether a lock is rooted in the tree itself (not only above it).
        self.locks_within = any(paths.is_same_or_ancestor(root, lock.root) for lock in self.locks)

    def __call__(self, path: str) -> DavError | None:
        error = self.guard.refusal([lock for lock in self.locks if lock.covers(path)])
        if error is None and path == self.root:
            error = self.guard.refusal(self.on_parent)
        return error


def existing_lock(services: Services, req: Request, path: str) -> Lock:
    """The lock named by the request's Lock-Token header on `path`, for UNLOCK."""
    raw = (req.header("Lock-Token") or "").strip()
    if not raw:
        raise BadRequest("UNLOCK needs a Lock-Token header")
    token = raw[1:-1] if raw.startswith("<") and raw.endswith(">") else raw
    lock = services.locks.get(token, services.clock())
    if lock is None or not lock.covers(path):
        raise DavError(
            "no such lock on this resource",
            status=409,
            condition="lock-token-matches-request-uri",
        )
    return lock
