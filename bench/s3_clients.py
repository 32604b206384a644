"""Which S3 client for davserver's S3 provider: small PUT, small GET, ranged GET and a
1,000-key listing, each timed with boto3, minio and obstore against one SeaweedFS store
(started here, as the tests start it). Run: .venv/bin/python bench/s3_clients.py"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import s3server

ROUNDS = 300
BODY = b"x" * 4096


def timed(label: str, action: Callable[[int], Any], rounds: int = ROUNDS) -> None:
    start = time.perf_counter()
    for i in range(rounds):
        action(i)
    elapsed = time.perf_counter() - start
    print(f"  {label:<14} {elapsed / rounds * 1000:7.2f} ms")


def bench_boto3(store: s3server.S3Store, bucket: str, tuned: bool = False) -> None:
    """boto3 as it comes, or `tuned` as the provider sets it up (checksums only where the
    API requires them)."""
    import boto3
    from botocore.config import Config

    options = {"request_checksum_calculation": "when_required"} if tuned else {}
    client = boto3.client(
        "s3",
        endpoint_url=store.endpoint,
        aws_access_key_id=s3server.ACCESS_KEY,
        aws_secret_access_key=s3server.SECRET_KEY,
        region_name=s3server.REGION,
        config=Config(**options),  # type: ignore[arg-type]
    )
    timed("put 4 KiB", lambda i: client.put_object(Bucket=bucket, Key=f"b/{i}", Body=BODY))
    timed("get 4 KiB", lambda i: client.get_object(Bucket=bucket, Key=f"b/{i}")["Body"].read())
    timed(
        "get range",
        lambda i: client.get_object(Bucket=bucket, Key=f"b/{i}", Range="bytes=10-99")[
            "Body"
        ].read(),
    )
    pages = client.get_paginator("list_objects_v2")
    timed("list 300", lambda i: list(pages.paginate(Bucket=bucket, Prefix="b/")), 20)


def bench_minio(store: s3server.S3Store, bucket: str) -> None:
    from minio import Minio

    client = Minio(
        store.endpoint.removeprefix("http://"),
        access_key=s3server.ACCESS_KEY,
        secret_key=s3server.SECRET_KEY,
        secure=False,
        region=s3server.REGION,
    )
    import io

    def get(i: int, **kw: Any) -> bytes:
        r = client.get_object(bucket, f"m/{i}", **kw)
        try:
            return r.read()
        finally:
            r.close()
            r.release_conn()

    timed("put 4 KiB", lambda i: client.put_object(bucket, f"m/{i}", io.BytesIO(BODY), len(BODY)))
    timed("get 4 KiB", get)
    timed("get range", lambda i: get(i, offset=10, length=90))
    timed("list 300", lambda i: list(client.list_objects(bucket, prefix="m/")), 20)


def bench_obstore(store: s3server.S3Store, bucket: str) -> None:
    import obstore
    from obstore.store import S3Store

    client = S3Store(
        bucket,
        endpoint=store.endpoint,
        access_key_id=s3server.ACCESS_KEY,
        secret_access_key=s3server.SECRET_KEY,
        region=s3server.REGION,
        client_options={"allow_http": True},
    )
    timed("put 4 KiB", lambda i: obstore.put(client, f"o/{i}", BODY))
    timed("get 4 KiB", lambda i: obstore.get(client, f"o/{i}").bytes())
    timed("get range", lambda i: obstore.get_range(client, f"o/{i}", start=10, end=100))
    timed("list 300", lambda i: list(obstore.list(client, prefix="o/")), 20)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder, s3server.running(Path(folder)) as store:
        bucket = store.new_bucket()
        benches: list[tuple[str, Callable[[s3server.S3Store, str], None]]] = [
            ("boto3 (defaults)", bench_boto3),
            ("boto3 (as the provider sets it up)", lambda s, b: bench_boto3(s, b, tuned=True)),
            ("minio", bench_minio),
            ("obstore", bench_obstore),
        ]
        for name, bench in benches:
            print(name)
            bench(store, bucket)


if __name__ == "__main__":
    main()
