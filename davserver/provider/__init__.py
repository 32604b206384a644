"""Storage providers: where resources live (the filesystem today, object storage later)."""

from .base import Provider

__all__ = ["Provider"]
