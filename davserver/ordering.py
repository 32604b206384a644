"""One change at a time on any part of the tree, across threads, processes and instances.

Every method that changes the tree (PUT's commit, MKCOL, DELETE, COPY, MOVE, PROPPATCH, LOCK)
runs inside `claimed(...)`, which holds a claim on the paths it changes (and, for a COPY, the
source it reads) until it is done. Claims on paths that meet (one is the other or lies under
it) wait for each other, so two requests give the outcome of running them one after the other,
whichever worker serves them. Readers (GET, PROPFIND) take none: they see the tree before or
after a change of a single resource, and a walk may see a collection change as it goes.

A claim also records its intent: if its owner dies (SIGKILL, power cut), the first process that
meets the claim, or the next start, finishes or undoes what it was doing
(`davserver.recovery`) before anyone else touches those paths.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field

from . import paths
from .errors import DavError
from .provider.base import LinkResolver
from .services import Services
from .store.base import Claim, ClaimStore

log = logging.getLogger(__name__)

# How long a request waits for a change on a meeting path before giving up with 503: long
# enough for a large COPY to finish, short enough that a client is not left hanging.
WAIT_SECONDS = 60.0
_RELEASE_ATTEMPTS = 10
_FIRST_PAUSE = 0.001
_LONGEST_PAUSE = 0.05


class Busy(DavError):
    """503: another change on these paths did not finish in time."""

    status = 503


@dataclass(slots=True)
class Held:
    """A claim held by this request; `note` records how far the change has come."""

    services: Services
    id: str
    intent: dict[str, object] = field(default_factory=dict)
    # Sets: a batch's item asks whether its paths are among thousands (`covers`).
    exclusive: frozenset[str] = frozenset()
    shared: frozenset[str] = frozenset()
    # A change run inside a larger claim (a batch item) records its steps as the outer
    # claim's "current" step, starting from this intent of its own.
    step: dict[str, object] | None = None

    def note(self, **changes: object) -> None:
        if self.step is None:
            self.intent.update(changes)
        else:
            self.step.update(changes)
            self.intent["current"] = self.step
        self.services.claims.update(self.id, self.intent)

    def covers(self, exclusive: Sequence[str], shared: Sequence[str]) -> bool:
        """Whether this claim already holds these paths, as a batch does for its items."""

        mine = self.exclusive
        return all(paths.within_any(p, mine) for p in exclusive) and all(
            paths.within_any(p, mine) or paths.within_any(p, self.shared) for p in shared
        )


# The claim the current request holds: a batch claims all its items' paths at once, and each
# item then runs inside it (taking a second claim while holding one could deadlock).
_held: ContextVar[Held | None] = ContextVar("davserver_claim", default=None)


@contextlib.contextmanager
def claimed(
    services: Services,
    exclusive: Sequence[str],
    shared: Sequence[str] = (),
    intent: dict[str, object] | None = None,
    wait: float | None = None,
) -> Iterator[Held]:
    """Hold a claim on `exclusive` (changed) and `shared` (read) paths while the block runs.

    Waits for claims in the way; recovers those whose owner died. Raises Busy after `wait`
    seconds (WAIT_SECONDS by default). The claim is dropped when the block ends, whether it
    succeeded or raised: a failure inside it is the request's own, already undone by the code
    that raised. Inside a
    claim that covers the paths already, the block runs under it, its intent recorded as the
    outer claim's current step.
    """
    outer = _held.get()
    if outer is not None:
        if not outer.covers(exclusive, shared):
            raise RuntimeError(f"a claim on {exclusive} {shared} inside one that lacks them")
        # Recorded only when the step notes its progress: the outer claim already lists what
        # recovery needs for one-step changes, and a batch of 1,000 items must not pay 1,000
        # writes for nothing.
        inner = Held(
            services, outer.id, outer.intent, outer.exclusive, outer.shared, dict(intent or {})
        )
        try:
            yield inner
        finally:
            if outer.intent.pop("current", None) is not None:
                # Finished (or undone): recovery must not repeat it after later items ran.
                services.claims.update(outer.id, outer.intent)
        return
    store = services.claims
    provider = services.provider
    if isinstance(provider, LinkResolver):
        # Through a link, two paths name one resource: claims meet where links lead too.
        exclusive = _with_real(provider, exclusive)
        shared = _with_real(provider, shared)
    goal = dict(intent or {})
    deadline = time.monotonic() + (WAIT_SECONDS if wait is None else wait)
    pause = _FIRST_PAUSE
    while True:
        claim_id, blocking = store.try_take(exclusive, shared, goal)
        if claim_id is not None:
            break
        if recover_orphans(services, [c for c in blocking if not store.is_alive(c.owner)]):
            continue
        if time.monotonic() >= deadline:
            raise Busy(
                "another change to this part of the tree is still in progress; try again",
                headers=[("Retry-After", "5")],
            )
        time.sleep(pause)
        pause = min(pause * 2, _LONGEST_PAUSE)
    held = Held(services, claim_id, goal, frozenset(exclusive), frozenset(shared))
    token = _held.set(held)
    try:
        yield held
    finally:
        _held.reset(token)
        _release(store, claim_id)


def _with_real(resolver: LinkResolver, given: Sequence[str]) -> list[str]:
    found = list(given)
    seen = set(given)  # a batch's thousands of paths: a list's `in` made this quadratic
    for path in given:
        try:
            real = resolver.canonical(path)
        except DavError:
            continue  # outside the share or reserved: the method refuses it anyway
        if real not in seen:
            seen.add(real)
            found.append(real)
    return found


def _release(store: ClaimStore, claim_id: str) -> None:
    """Drop the claim, trying again for a while if the store is briefly unavailable: a claim
    left behind by a live process would hold its paths until the process ends."""
    for attempt in range(_RELEASE_ATTEMPTS):
        try:
            store.release(claim_id)
            return
        except Exception:
            if attempt == _RELEASE_ATTEMPTS - 1:
                log.exception("could not release claim %s; its paths wait for a restart", claim_id)
                return
            time.sleep(0.1 * (attempt + 1))


def recover_orphans(services: Services, claims: Sequence[Claim] | None = None) -> int:
    """Finish or undo the changes whose owners died; returns how many this process took on.

    With `claims`, only those (met while taking a claim); otherwise every orphan in the store
    (at start-up).
    """
    from . import recovery  # recovery runs transfers, which record their steps here

    store = services.claims
    found = store.orphans() if claims is None else list(claims)
    done = 0
    for claim in found:
        if not store.adopt(claim):
            continue
        try:
            recovery.recover(services, claim)
        except Exception:
            # A store that was unavailable for a moment takes the claim back for a later
            # attempt. Otherwise the claim stays, owned by this process: the paths remain
            # closed to changes rather than opened on an unknown state, and the next start
            # tries again.
            retry_later = getattr(store, "retry_later", None)
            if retry_later is not None and retry_later(claim.id):
                log.warning("recovery of %s interrupted; it is tried again", claim.intent)
            else:
                log.exception("could not recover the interrupted change %s", claim.intent)
            continue
        store.release(claim.id)
        done += 1
    return done
