"""What every handler may use: the provider, the stores, the configuration and the clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .auth import Authenticator, Policy, default_policy
from .config import Config
from .origin import Site
from .provider.base import Provider
from .store.base import ClaimStore, LockStore, PropertyStore


@dataclass(frozen=True, slots=True)
class Services:
    config: Config
    provider: Provider
    props: PropertyStore
    locks: LockStore
    claims: ClaimStore
    clock: Callable[[], float] = field(default=time.time)
    policy: Policy = field(default_factory=lambda: default_policy(False, "", ()))
    authenticator: Authenticator | None = None
    site: Site = field(default_factory=Site)
