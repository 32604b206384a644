"""davserver's WSGI app for gunicorn: the bench's `davserver-gunicorn` server.

bench/servers.py starts it with gunicorn's app factory syntax:

    gunicorn --workers 2 --threads 8 --worker-class gthread --bind 127.0.0.1:PORT \\
        --pythonpath PROJECT 'bench.gunicorn_app:create("ROOT", "STATE_DIR")'

Each worker process builds its own services (provider, sqlite stores) with
`davserver.server.build_services` and wraps them with `davserver.app.create_app`: the same app
the cheroot server runs, with the same settings as bench/launch.py gives it (no access log).
The workers share the sqlite store in the state folder, which the store supports (WAL mode).
"""

from __future__ import annotations

import logging
import sys
from typing import Any


def create(root: str, state_dir: str) -> Any:
    """The WSGI callable for one gunicorn worker."""
    from davserver.app import create_app
    from davserver.config import load
    from davserver.server import build_services

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("davserver.access").setLevel(logging.WARNING)
    config = load(
        None,
        {
            "root": root,
            "state_dir": state_dir,
            "port": 0,
            "access_log": False,
            "log_level": "warning",
        },
    )
    return create_app(build_services(config))
