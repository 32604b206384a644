"""What every handler may use: the provider, the stores, the configuration and the clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .config import Config
from .provider.base import Provider
from .store.base import LockStore, PropertyStore


@dataclass(frozen=True, slots=True)
class Services:
    config: Config
    provider: Provider
    props: PropertyStore
    locks: LockStore
    clock: Callable[[], float] = field(default=time.time)
