"""The `davserver` command: argument parsing and the serve loop. Thin on purpose."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any

from . import __version__
from .config import ConfigError, load
from .server import DavServer

COMMANDS = ("serve",)

DESCRIPTION = """\
davserver shares a folder over WebDAV (RFC 4918, classes 1 and 2), for network drives
(Windows Explorer, macOS Finder, davfs2, GNOME Files), cadaver, rclone and WebDAV libraries.

With no arguments it shares ./share (created when missing) on http://127.0.0.1:8080/.
Options come from defaults, then the TOML file given with --config (every option is documented
in config/davserver.toml), then the flags below.
"""

EXAMPLES = """\
examples:
  davserver                               share ./share on http://127.0.0.1:8080/
  davserver serve ~/Documents --port 0    any free port; the real URL is printed
  davserver serve /srv/dav --host 0.0.0.0 --readonly
  davserver serve --config /etc/davserver.toml
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="davserver",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"davserver {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="share a folder (the default command)",
        description="Share ROOT over WebDAV until interrupted (Ctrl-C or SIGTERM).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("root", nargs="?", help="the folder to share (default ./share)")
    serve.add_argument("--config", metavar="FILE", help="a TOML configuration file")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP port (default 8080; 0 picks a free one)")
    serve.add_argument("--readonly", action="store_const", const=True, help="refuse every change")
    serve.add_argument("--state-dir", metavar="DIR", help="where properties and locks are kept")
    serve.add_argument("--threads", type=int, help="worker threads (default 32)")
    serve.add_argument(
        "--log-level", choices=("debug", "info", "warning", "error"), help="default info"
    )
    serve.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_const",
        const=False,
        help="do not log one line per request",
    )
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "root": args.root,
        "host": args.host,
        "port": args.port,
        "readonly": args.readonly,
        "state_dir": args.state_dir,
        "threads": args.threads,
        "log_level": args.log_level,
        "access_log": args.access_log,
    }


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or (
        arguments[0] not in COMMANDS and arguments[0] not in ("-h", "--help", "--version")
    ):
        arguments.insert(0, "serve")
    args = build_parser().parse_args(arguments)
    try:
        config = load(args.config, _overrides(args))
    except ConfigError as exc:
        print(f"davserver: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("davserver.access").setLevel(
        logging.INFO if config.access_log else logging.WARNING
    )
    try:
        server = DavServer(config)
        server.start()
    except OSError as exc:
        print(f"davserver: cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr)
        return 1
    root = server.services.provider.root  # type: ignore[attr-defined]
    print(f"davserver {__version__}: sharing {root}", flush=True)
    print(f"  URL:   {server.url}", flush=True)
    print(f"  state: {config.resolved_state_dir()}", flush=True)
    _stop_on_sigterm()
    sweeper = threading.Thread(
        target=server.services.provider.sweep_temp_files,  # type: ignore[attr-defined]
        name="sweep",
        daemon=True,
    )
    sweeper.start()
    try:
        server.serve()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        print("davserver: stopped", flush=True)
    return 0


def _stop_on_sigterm() -> None:
    def handler(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
