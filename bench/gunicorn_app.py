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

from typing import Any

from bench.launch import quiet_config


def create(root: str, state_dir: str) -> Any:
    """The WSGI callable for one gunicorn worker."""
    from davserver.app import create_app
    from davserver.server import build_services

    return create_app(build_services(quiet_config(root, state_dir)))
