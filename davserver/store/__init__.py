"""Where dead properties and locks live (sqlite3 today; a shared database later)."""

from .base import Lock, LockConflict, LockStore, PropertyStore

__all__ = ["Lock", "LockConflict", "LockStore", "PropertyStore"]
