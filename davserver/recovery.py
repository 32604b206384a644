"""Finishing or undoing what a crash interrupted, from the intent its claim recorded.

Runs with the dead owner's claim adopted (`davserver.ordering.recover_orphans`), so nothing
else touches those paths meanwhile; every step is safe to repeat, should recovery itself be
interrupted.
"""

from __future__ import annotations

from . import paths, transfers
from .errors import NotFound
from .services import Services
from .store.base import Claim


def recover(services: Services, claim: Claim) -> None:
    """Bring the paths of `claim` to a state the request could have left: before or after.

    A batch's claim lists its items' intents (`items`) and records the step under way
    (`current`); a single change's claim is its own intent.
    """
    intent = claim.intent
    current = intent.get("current")
    if isinstance(current, dict):
        recover_intent(services, current)
    items = intent.get("items")
    for item in items if isinstance(items, list) else [intent]:
        if isinstance(item, dict):
            recover_intent(services, item)


def recover_intent(services: Services, intent: dict[str, object]) -> None:
    op = intent.get("op")
    if op == "transfer":
        transfers.recover(services, intent)
        # A transfer that copies deletes members one by one (a MOVE's source, or what arrived
        # when it is undone) and forgets their rows in batches: those deleted just before the
        # crash may still have theirs.
        for side in ("src", "dst"):
            forget_vanished(services, str(intent[side]))
    elif op in ("delete", "lock"):
        # A DELETE removes members one by one, and a LOCK of an unmapped URL stores the lock
        # before it creates the empty file: no property or lock may outlive its resource
        # (it would attach to whatever is next created at that path).
        forget_vanished(services, str(intent["path"]))
    elif op == "proppatch" and "mtime" in intent:
        # A PROPPATCH that sets the modification time changes the file and the store: it is
        # finished (both steps are safe to repeat), as the client was about to be told.
        path, mtime, changes = str(intent["path"]), intent["mtime"], intent.get("changes")
        if _exists(services, path) and isinstance(mtime, int | float):
            services.provider.set_mtime(path, float(mtime))
            patch = [(str(n), None if v is None else str(v)) for n, v in _pairs(changes)]
            services.props.patch(path, patch)
    # PUT, MKCOL and other PROPPATCHes commit in one step each: there is nothing to finish.


def forget_vanished(services: Services, root: str) -> None:
    """Drop the properties and locks of resources at or under `root` that no longer exist."""
    after = ""
    while page := services.props.described(root, after):
        services.props.delete([p for p in page if not _exists(services, p)])
        after = page[-1]
    now = services.clock()
    roots = {
        lock.root
        for lock in services.locks.around(root, now)
        if paths.is_same_or_ancestor(root, lock.root) and not _exists(services, lock.root)
    }
    services.locks.delete(sorted(roots))


def _exists(services: Services, path: str) -> bool:
    try:
        services.provider.stat(path)
    except NotFound:
        return False
    return True


def _pairs(value: object) -> list[tuple[object, object]]:
    """A JSON list of [name, value] pairs, as an intent records them."""
    if not isinstance(value, list):
        return []
    return [(item[0], item[1]) for item in value if isinstance(item, list) and len(item) == 2]
