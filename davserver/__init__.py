"""davserver: a WebDAV (RFC 4918) file server."""

from .app import DavApp, create_app

__version__ = "0.1.0"

__all__ = ["DavApp", "__version__", "create_app"]
