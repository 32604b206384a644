"""Run one Python WebDAV server in this process, for bench/run.py (which starts it as a child).

    python bench/launch.py davserver ROOT STATE_DIR
    python bench/launch.py wsgidav ROOT

Binds 127.0.0.1 on a free port, prints `PORT <n>` on stdout once it accepts connections, and
serves until SIGTERM. No access log for either server, so that the comparison is fair.
"""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType
from typing import Any


def _stop_on_sigterm() -> None:
    def handler(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def quiet_config(root: str, state_dir: str) -> Any:
    """davserver's configuration for a bench run: a free port, warnings only, no access log."""
    from davserver.config import load

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("davserver.access").setLevel(logging.WARNING)
    overrides = {"root": root, "state_dir": state_dir, "port": 0, "access_log": False}
    return load(None, {**overrides, "log_level": "warning"})


def run_davserver(root: str, state_dir: str) -> None:
    from davserver.server import DavServer

    server = DavServer(quiet_config(root, state_dir))
    server.start()
    _serve(server.httpd, server.port)


def run_wsgidav(root: str) -> None:
    from cheroot import wsgi
    from wsgidav.wsgidav_app import WsgiDAVApp  # type: ignore[import-untyped]

    config: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "provider_mapping": {"/": root},
        "simple_dc": {"user_mapping": {"*": True}},  # anonymous, as `--auth anonymous`
        "http_authenticator": {"domain_controller": None},
        "property_manager": True,  # in-memory dead properties
        "lock_storage": True,  # in-memory locks
        "verbose": 1,
        "logging": {"enable": False, "enable_loggers": []},
    }
    app = WsgiDAVApp(config)
    logging.getLogger("wsgidav").setLevel(logging.ERROR)
    # The same server and thread count as the `wsgidav` command line (server_cli._run_cheroot).
    httpd = wsgi.Server(("127.0.0.1", 0), app, numthreads=50, server_name="WsgiDAV")
    httpd.prepare()
    _serve(httpd, int(httpd.bind_addr[1]))


def _serve(httpd: Any, port: int) -> None:
    _stop_on_sigterm()
    print(f"PORT {port}", flush=True)
    try:
        httpd.serve()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.stop()


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "davserver":
        run_davserver(argv[1], argv[2])
    elif len(argv) == 2 and argv[0] == "wsgidav":
        run_wsgidav(argv[1])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
