"""Summaries of the samples: medians, spreads, ratios; the markdown table; the machine; and
the generated section of bench/RESULTS.md."""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

BEGIN = "<!-- bench:begin (written by `python bench/run.py --write-results`) -->"
END = "<!-- bench:end -->"
MIB = 1024 * 1024


@dataclass
class Figure:
    """One figure of the table: a primary metric (`metric`, in `unit`) and notes around it."""

    id: str
    title: str
    metric: str
    unit: str  # "s", "req/s", "MB/s"
    better: str  # "lower" or "higher"
    notes: tuple[str, ...] = ()  # secondary metrics shown in the Notes column
    samples: dict[str, list[dict[str, float]]] = field(default_factory=dict)

    def add(self, server: str, sample: dict[str, float]) -> None:
        self.samples.setdefault(server, []).append(sample)

    def values(self, server: str, metric: str | None = None) -> list[float]:
        key = metric or self.metric
        return [s[key] for s in self.samples.get(server, []) if key in s]

    def median(self, server: str, metric: str | None = None) -> float | None:
        values = self.values(server, metric)
        return statistics.median(values) if values else None


def summary(fig: Figure, baseline: str = "davserver") -> dict[str, Any]:
    """The JSON form of a figure: every sample and, per server, median/min/max/ratio."""
    base = fig.median(baseline)
    servers: dict[str, Any] = {}
    for name, samples in fig.samples.items():
        values = fig.values(name)
        entry: dict[str, Any] = {"samples": samples}
        if values:
            med = statistics.median(values)
            entry.update(
                median=med,
                min=min(values),
                max=max(values),
                ratio_to_davserver=(med / base) if base else None,
            )
            for key in ("rss_peak", "rss_growth", *fig.notes):
                notes = fig.values(name, key)
                if notes:
                    entry[f"median_{key}"] = statistics.median(notes)
                    entry[f"max_{key}"] = max(notes)
        servers[name] = entry
    return {
        "id": fig.id,
        "title": fig.title,
        "metric": fig.metric,
        "unit": fig.unit,
        "better": fig.better,
        "servers": servers,
    }


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        if value < 1:
            return f"{value * 1000:.1f} ms" if value < 0.1 else f"{value * 1000:.0f} ms"
        return f"{value:.2f} s"
    if unit == "req/s":
        return f"{value:,.0f} req/s"
    if unit == "MB/s":
        return f"{value:,.0f} MB/s"
    return f"{value:.3g} {unit}"


def _bare(value: float, unit: str) -> str:
    return fmt(value, unit).rsplit(" ", 1)[0] if unit != "s" else fmt(value, unit)


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value / MIB:.1f}"


def _note(fig: Figure, server: str) -> str:
    parts = []
    for key in fig.notes:
        med = fig.median(server, key)
        if med is None:
            continue
        if key == "ttfb":
            parts.append(f"TTFB {fmt(med, 's')}")
        elif key == "p99":
            parts.append(f"p99 {fmt(med, 's')}")
        elif key == "errors":
            total = sum(fig.values(server, key))
            parts.append(f"{total:.0f} errors")
        elif key == "files_per_s":
            parts.append(f"{med:,.0f} files/s")
        elif key == "speedup":
            parts.append(f"{med:.1f}x faster than one DELETE per file")
        elif key == "purged":
            parts.append(f"trash emptied {fmt(med, 's')} after the answer")
        else:
            parts.append(f"{key} {med:.3g}")
    return ", ".join(parts)


def markdown(figures: list[Figure], servers: list[str], baseline: str = "davserver") -> str:
    """The results table: one row per figure and server."""
    lines = [
        "| Figure | Server | Median | Spread (min-max) | ÷ davserver | Peak RSS MiB "
        "| RSS growth MiB | Notes |",
        "|---|---|--:|--:|--:|--:|--:|---|",
    ]
    for fig in figures:
        base = fig.median(baseline)
        first = True
        for name in servers:
            values = fig.values(name)
            if not values:
                continue
            med = statistics.median(values)
            ratio = f"{med / base:.2f}" if base else "-"
            spread = f"{_bare(min(values), fig.unit)} - {_bare(max(values), fig.unit)}"
            title = f"{fig.title} ({fig.better} is better)" if first else ""
            first = False
            lines.append(
                f"| {title} | {name} | {fmt(med, fig.unit)} | {spread} | {ratio} "
                f"| {_mib(fig.median(name, 'rss_peak'))} | {_mib(fig.median(name, 'rss_growth'))} "
                f"| {_note(fig, name)} |"
            )
    return "\n".join(lines)


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    out = (done.stdout or done.stderr).strip().splitlines()
    return out[0] if out else ""


def _package(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _git_revision() -> str:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    head = _first_line(["git", "-C", here, "rev-parse", "--short", "HEAD"])
    if not head:
        return ""
    dirty = _first_line(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"])
    return head + (" with uncommitted changes" if dirty else "")


def machine() -> dict[str, Any]:
    """Where the figures came from."""
    cpu = ""
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / MIB:.1f} GiB"
                break
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "memory": memory,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": {
            name: _package(name)
            for name in ("davserver", "cheroot", "lxml", "defusedxml", "wsgidav")
        },
        "apache": _first_line(["/usr/sbin/apache2", "-v"]).split(":", 1)[-1].strip(),
        "davserver_revision": _git_revision(),
        "wrk": re.sub(r"\s+Copyright.*", "", _first_line(["wrk", "--version"])),
    }


def machine_markdown(info: dict[str, Any]) -> str:
    packages = ", ".join(f"{k} {v}" for k, v in info["packages"].items())
    return "\n".join(
        [
            f"- CPU: {info['cpu']}, {info['nproc']} cores available; memory {info['memory']}; "
            f"Linux {info['kernel']}",
            f"- Python {info['python']}; {packages}"
            + (
                f" (davserver at {info['davserver_revision']})"
                if info.get("davserver_revision")
                else ""
            ),
            f"- {info['apache'] or 'Apache not found'}; {info['wrk'] or 'wrk not found'}",
        ]
    )


def results_section(
    table: str, info: dict[str, Any], command: str, date: str, settings: str
) -> str:
    return "\n".join(
        [
            BEGIN,
            f"## Last run: {date}",
            "",
            f"Command: `{command}`",
            "",
            machine_markdown(info),
            f"- Settings: {settings}",
            "",
            table,
            "",
            LEGEND,
            END,
        ]
    )


LEGEND = """\
Median and spread over the rounds; "÷ davserver" is this server's median divided by davserver's
(for times, above 1 means davserver is faster; for rates, above 1 means the other server is
faster). Peak RSS: the server's peak resident memory during the operation (summed over Apache's
processes); RSS growth: that peak minus the resident size just before the operation (after the
warm-up, so memory a server keeps from its warm-up shows in Peak RSS only).
"""

RESULTS_HEADER = """# Benchmark results

Produced by `python bench/run.py --write-results` (see bench/README.md). The section between
the `bench:` markers is rewritten by each such run; everything else in this file is kept.

"""


def update_results_file(path: str, section: str) -> None:
    """Replace the generated section of RESULTS.md (or create the file around it)."""
    try:
        with open(path) as handle:
            text = handle.read()
    except FileNotFoundError:
        text = RESULTS_HEADER + BEGIN + "\n" + END + "\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    with open(path, "w") as handle:
        handle.write(text)
