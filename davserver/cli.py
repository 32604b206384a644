"""The `davserver` command: argument parsing and the serve loop. Thin on purpose."""

from __future__ import annotations

import argparse
import getpass
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import Any

from . import __version__, logs
from .config import BASIC_MODES, ENGINES, ConfigError, load
from .passwords import set_password
from .prefork import Workers
from .server import DavServer, StopSignals

COMMANDS = ("serve", "passwd")

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
    serve.add_argument(
        "root", nargs="?", help="the folder to share (default ./share), or s3://bucket/prefix"
    )
    serve.add_argument("--s3-endpoint", metavar="URL", help="the S3 store's URL (s3:// root)")
    serve.add_argument("--s3-region", metavar="NAME", help="the S3 region (s3:// root)")
    serve.add_argument("--config", metavar="FILE", help="a TOML configuration file")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP port (default 8080; 0 picks a free one)")
    serve.add_argument(
        "--readonly",
        action=argparse.BooleanOptionalAction,
        help="refuse every change (--no-readonly overrides a config file)",
    )
    serve.add_argument("--state-dir", metavar="DIR", help="where properties and locks are kept")
    serve.add_argument(
        "--database",
        metavar="URL",
        help="keep properties and locks in PostgreSQL, shared by several instances",
    )
    serve.add_argument(
        "--engine",
        choices=ENGINES,
        help="the HTTP server that runs davserver: httptools (the default; C parsing, "
        "connections wait in epoll until a request is whole) or cheroot (pure Python)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes on the one port (default 0: one per CPU; 1: this process only)",
    )
    serve.add_argument("--threads", type=int, help="worker threads per process (default 32)")
    serve.add_argument("--htpasswd", metavar="FILE", help="require users from this file")
    serve.add_argument(
        "--digest-file", metavar="FILE", help="offer HTTP Digest with hashes from this file"
    )
    serve.add_argument(
        "--basic",
        choices=BASIC_MODES,
        help="when HTTP Basic is offered: https (default: over HTTPS only), always, or never",
    )
    serve.add_argument(
        "--anonymous", choices=("none", "read", "write"), help="what anonymous users may do"
    )
    serve.add_argument("--public-url", metavar="URL", help="the URL clients use (behind a proxy)")
    serve.add_argument("--prefix", metavar="PATH", help="the path prefix, e.g. /dav")
    serve.add_argument(
        "--prefix-mode", choices=("strip", "keep"), help="whether requests carry the prefix"
    )
    serve.add_argument(
        "--trusted-proxy",
        dest="trusted_proxies",
        action="append",
        metavar="ADDR",
        help="a proxy address or CIDR range whose Forwarded headers are believed (repeatable)",
    )
    serve.add_argument("--cert", metavar="PEM", help="TLS certificate: serve HTTPS")
    serve.add_argument("--key", metavar="PEM", help="TLS private key")
    serve.add_argument(
        "--log-level", choices=("debug", "info", "warning", "error"), help="default info"
    )
    serve.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        help="one line per request on standard error (default on)",
    )
    passwd = commands.add_parser(
        "passwd",
        help="add a user to an htpasswd file or change a password",
        description="Add USER to the htpasswd FILE (bcrypt), or change their password. The "
        "password is asked twice on a terminal, or read as one line from standard input.",
    )
    passwd.add_argument("file", help="the htpasswd file (created when missing)")
    passwd.add_argument("user", help="the user name")
    passwd.add_argument(
        "--digest", metavar="FILE", help="also write the user's HTTP Digest hashes to FILE"
    )
    passwd.add_argument("--realm", default="davserver", help="the Digest realm (davserver)")
    return parser


def _passwd(args: argparse.Namespace) -> int:
    if sys.stdin.isatty():
        try:
            password = getpass.getpass(f"password for {args.user}: ")
            again = getpass.getpass("again: ")
        except (EOFError, KeyboardInterrupt):
            print("\ndavserver: cancelled, nothing was changed", file=sys.stderr)
            return 1
        if password != again:
            print("davserver: the passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("davserver: an empty password is not allowed", file=sys.stderr)
        return 1
    try:
        set_password(args.file, args.user, password, args.digest or "", args.realm)
    except (OSError, ValueError) as exc:
        print(f"davserver: {exc}", file=sys.stderr)
        return 1
    print(f"davserver: {args.user} saved in {args.file}")
    return 0


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "root": args.root,
        "s3_endpoint": args.s3_endpoint,
        "s3_region": args.s3_region,
        "host": args.host,
        "port": args.port,
        "readonly": args.readonly,
        "state_dir": args.state_dir,
        "database": args.database,
        "engine": args.engine,
        "workers": args.workers,
        "threads": args.threads,
        "log_level": args.log_level,
        "access_log": args.access_log,
        "htpasswd": args.htpasswd,
        "digest_file": args.digest_file,
        "basic": args.basic,
        "anonymous": args.anonymous,
        "public_url": args.public_url,
        "prefix": args.prefix,
        "prefix_mode": args.prefix_mode,
        "trusted_proxies": args.trusted_proxies,
        "cert": args.cert,
        "key": args.key,
    }


def _shown_root(root: str) -> str:
    return root if root.startswith("s3://") else os.path.realpath(root)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or (
        arguments[0] not in COMMANDS and arguments[0] not in ("-h", "--help", "--version")
    ):
        arguments.insert(0, "serve")
    args = build_parser().parse_args(arguments)
    if args.command == "passwd":
        return _passwd(args)
    try:
        config = load(args.config, _overrides(args))
    except ConfigError as exc:
        print(f"davserver: {exc}", file=sys.stderr)
        return 2
    logs.configure(config.log_level, config.access_log)
    workers = config.worker_count()
    server: DavServer | Workers
    # From here on: worker processes answer as soon as they listen, before this one is done.
    # One process serves in a thread and stops on StopSignals; the parent of workers, waiting
    # in os.wait() (retried after a handler that returns), stops on KeyboardInterrupt.
    stopping = StopSignals() if workers == 1 else None
    if stopping is None:
        _interrupt_on_sigterm()
    try:
        server = DavServer(config) if workers == 1 else Workers(config, workers)
        server.start()
    except KeyboardInterrupt:
        print("davserver: stopped before it was serving", flush=True)
        return 0
    except ConfigError as exc:
        print(f"davserver: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"davserver: cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr)
        return 1
    # A stop signal may come while the URL is printed: the workers are serving already.
    try:
        print(f"davserver {__version__}: sharing {_shown_root(config.root)}", flush=True)
        print(f"  URL:   {server.public_url}", flush=True)
        if server.public_url != server.url:
            print(f"  listening on {server.url}", flush=True)
        print(f"  state: {config.resolved_state_dir()}", flush=True)
        if config.database:
            from .store.postgresql import masked

            print(f"  database: {masked(config.database)}", flush=True)
        if workers > 1:
            print(f"  {workers} worker processes", flush=True)
        if isinstance(server, Workers):
            server.serve()
        else:
            assert stopping is not None  # made for one process
            server.serve_until(stopping)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        print("davserver: stopped", flush=True)
    return 0


def _interrupt_on_sigterm() -> None:
    """SIGTERM raises KeyboardInterrupt, as Ctrl-C does."""

    def handler(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
