"""HTTP clients for the benchmark: timed single requests (http.client), wrk, and a fallback
threaded keep-alive load client for when wrk is missing."""

from __future__ import annotations

import http.client
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import BinaryIO

TIMEOUT = 300.0  # seconds any socket operation may block
READ_SIZE = 1024 * 1024

# A closing </D:response>, whatever the prefix (davserver and Apache write D:, wsgidav d:... ).
_RESPONSE_END = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?response>")


class BenchError(Exception):
    """A request that did not get the expected answer."""


@dataclass
class Timed:
    """One request: status, bytes of body, time to first body byte and total, in seconds."""

    status: int
    size: int
    ttfb: float
    total: float
    responses: int = 0  # <D:response> elements counted in a multistatus body
    marker_hits: int = 0  # occurrences of the caller's marker in the body
    body: bytes = b""  # the body itself, when the caller asked to keep it


def connect(port: int, timeout: float = TIMEOUT) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, blocksize=READ_SIZE)


def timed_request(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    body: bytes | BinaryIO | None = None,
    headers: dict[str, str] | None = None,
    count_responses: bool = False,
    marker: bytes | None = None,
    keep_body: bool = False,
) -> Timed:
    """Send one request on `conn`, read the body to the end, and time it.

    The body is read in pieces and dropped (kept in `Timed.body` only with `keep_body`, for
    small answers the caller must check), so the client's memory stays flat; TTFB is the time
    from sending the request to the first byte of the body (for a streamed multistatus, the
    moment the server starts answering; for a buffered one, almost the total).
    """
    started = time.perf_counter()
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    first = resp.read1(READ_SIZE) if method != "HEAD" else b""
    ttfb = time.perf_counter() - started
    size = len(first)
    responses = hits = 0
    tail = b""
    chunk: bytes | memoryview = first
    buffer = bytearray(READ_SIZE)
    view = memoryview(buffer)
    scan = count_responses or marker is not None
    kept: list[bytes] = []
    while chunk:
        if keep_body:
            kept.append(bytes(chunk))
        if scan:
            window = tail + bytes(chunk)
            if count_responses:
                responses += sum(1 for m in _RESPONSE_END.finditer(window) if m.end() > len(tail))
            if marker is not None:
                hits += window.count(marker) - tail.count(marker)
            tail = window[-64:]
        if scan or keep_body:
            chunk = resp.read1(READ_SIZE)
            size += len(chunk)
        else:
            n = resp.readinto(view)
            size += n
            chunk = view[:n] if n else b""
    total = time.perf_counter() - started
    resp.close()  # read to the end already; this lets `conn` carry the next request
    return Timed(resp.status, size, ttfb, total, responses, hits, b"".join(kept))


def expect(result: Timed, statuses: Iterable[int], what: str) -> Timed:
    allowed = tuple(statuses)
    if result.status not in allowed:
        raise BenchError(f"{what}: HTTP {result.status}, expected {allowed}")
    return result


# -- load: wrk or a threaded client ---------------------------------------------------------------


@dataclass
class Load:
    """A fixed-duration GET load: requests per second, latency percentiles (s), errors."""

    requests_per_s: float
    p50: float
    p99: float
    errors: int
    requests: int
    tool: str
    detail: dict[str, int] = field(default_factory=dict)


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise BenchError(f"unexpected wrk duration {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> Load:
    """The figures of `wrk --latency` output."""
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    if not (rate and total and p50 and p99):
        raise BenchError("could not read wrk's output:\n" + output)
    detail: dict[str, int] = {}
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if sockets:
        for key, value in zip(
            ("connect", "read", "write", "timeout"), sockets.groups(), strict=True
        ):
            detail[key] = int(value)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non2xx:
        detail["non-2xx"] = int(non2xx.group(1))
    return Load(
        float(rate.group(1)),
        _seconds(p50.group(1)),
        _seconds(p99.group(1)),
        sum(detail.values()),
        int(total.group(1)),
        "wrk",
        detail,
    )


def run_wrk(wrk: str, url: str, connections: int, duration: float) -> Load:
    threads = min(connections, 2)
    argv = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "5s",
        "--latency",
        url,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=False)
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    return parse_wrk(done.stdout)


def run_threaded_load(port: int, path: str, connections: int, duration: float) -> Load:
    """The wrk figures from Python threads, one keep-alive connection each (GIL-bound: a
    floor for the servers' real rates, only for machines without wrk)."""
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    deadline = time.perf_counter() + duration

    def worker(slot: int) -> None:
        conn = connect(port, timeout=5)
        mine = latencies[slot]
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    errors[slot] += 1
            except (OSError, http.client.HTTPException):
                errors[slot] += 1
                conn.close()
                conn = connect(port, timeout=5)
                continue
            mine.append(time.perf_counter() - started)
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(duration + 30)
    elapsed = time.perf_counter() - began
    merged = sorted(x for chunk in latencies for x in chunk)
    if not merged:
        raise BenchError("no request succeeded")

    def pct(p: float) -> float:
        return merged[min(len(merged) - 1, int(p * len(merged)))]

    return Load(
        len(merged) / elapsed,
        pct(0.50),
        pct(0.99),
        sum(errors),
        len(merged),
        "python threads",
    )


def parallel(jobs: list[Callable[[], None]], workers: int) -> None:
    """Run `jobs` on `workers` threads; the first exception is raised after all finish."""
    lock = threading.Lock()
    todo = list(reversed(jobs))
    failures: list[BaseException] = []

    def worker() -> None:
        while True:
            with lock:
                if not todo or failures:
                    return
                job = todo.pop()
            try:
                job()
            except BaseException as exc:
                with lock:
                    failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]
