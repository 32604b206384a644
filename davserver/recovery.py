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
    elif op in ("delete", "lock"):
        # A DELETE removes members one by one, and a LOCK of an unmapped URL stores the lock
        # before it creates the empty file: no property or lock may outlive its resource
        # (it would attach to whatever is next created at that path).
        forget_vanished(services, str(intent["path"]))
    # PUT, MKCOL and PROPPATCH commit in one step each: there is nothing to finish.


def forget_vanished(services: Services, root: str) -> None:
    """Drop the properties and locks of resources at or under `root` that no longer exist."""
    gone = [p for p in sorted(services.props.described(root)) if not _exists(services, p)]
    services.props.delete(gone)
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
