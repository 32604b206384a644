"""How fast the browser page shows and scrolls a big folder, in Debian's Chromium.

    .venv/bin/python bench/ui_page.py [OTHER_CHECKOUT] [--files 10000] [--rounds 5]

A folder of `--files` empty files is shared by `davserver serve` (one worker process, run from
this checkout, and from OTHER_CHECKOUT too when given: PYTHONPATH set to it, so its own
davserver and page are served). Each round opens the folder in a fresh browser context and
measures, inside the page (`performance.now()`, at the first animation frame that shows it):

- shown: from the start of the navigation to the first row of the list on screen;
- to the end: from a jump to the bottom of the page to the last file's row on screen.

The checkouts alternate round by round so that a noisy machine slows both alike; the table
gives each figure's median and, with two checkouts, the ratio. Figures go in docs/ui.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

CHROMIUM = "/usr/bin/chromium"
HERE = Path(__file__).resolve().parent.parent
# Notes the time of the first frame in which the list has a row.
FIRST_ROW = """(() => {
  const tick = () => {
    if (document.querySelector("tbody td.name a")) window.firstRow = performance.now();
    else requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})()"""
# Jumps to the bottom and resolves to the time until the last row is on screen.
TO_THE_END = """(last) => new Promise((done) => {
  const start = performance.now();
  scrollTo(0, document.documentElement.scrollHeight);
  const tick = () => {
    const links = [...document.querySelectorAll("tbody td.name a")];
    const row = links.find((a) => a.textContent === last);
    const box = row?.getBoundingClientRect();
    if (box && box.bottom <= innerHeight && box.top >= 0) done(performance.now() - start);
    else requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})"""


@contextmanager
def serving(checkout: Path, root: Path, state: Path) -> Iterator[str]:
    """`davserver serve` from `checkout` on a free port; yields its URL. `state` is a new
    folder's path (its parent must exist)."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "davserver", "serve", str(root), "--port", "0"]
    command += ["--workers", "1", "--state-dir", str(state), "--no-access-log"]
    # Run from elsewhere: `python -m` puts the working directory first on the path, before
    # PYTHONPATH, and a checkout's own folder would win.
    proc = subprocess.Popen(command, env=env, cwd=state.parent, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip().startswith("URL:"):
                yield line.split()[-1]
                break
        else:
            raise RuntimeError(f"davserver from {checkout} did not start")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def one_round(browser: Browser, url: str, last: str) -> tuple[float, float]:
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    try:
        page = context.new_page()
        page.add_init_script(FIRST_ROW)
        page.goto(url)
        page.wait_for_function("() => window.firstRow !== undefined", timeout=60_000)
        shown = float(page.evaluate("() => window.firstRow"))
        return shown, float(page.evaluate(TO_THE_END, last))
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("other", nargs="?", type=Path, help="another checkout to compare with")
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    checkouts = {"this": HERE} | ({"other": args.other.resolve()} if args.other else {})
    with tempfile.TemporaryDirectory() as work:
        root = Path(work, "root")
        folder = root / "big"
        folder.mkdir(parents=True)
        width = len(str(args.files - 1))
        for index in range(args.files):
            (folder / f"f{index:0{width}}.txt").touch()
        last = f"f{args.files - 1:0{width}}.txt"
        figures: dict[str, list[tuple[float, float]]] = {name: [] for name in checkouts}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
            )
            for _ in range(args.rounds):
                for name, checkout in checkouts.items():
                    with serving(checkout, root, Path(work, f"state-{name}")) as url:
                        figures[name].append(one_round(browser, url + "big/", last))
            browser.close()
    print(f"{args.files} files, {args.rounds} rounds, medians in ms (every round in brackets)")
    medians = {}
    for name, rows in figures.items():
        shown = [r[0] for r in rows]
        end = [r[1] for r in rows]
        medians[name] = statistics.median(shown)
        print(
            f"{name:6} {checkouts[name]}: shown {statistics.median(shown):.0f} "
            f"{[round(x) for x in shown]}, to the end {statistics.median(end):.0f} "
            f"{[round(x) for x in end]}"
        )
    if args.other:
        print(f"shown, this/other: {medians['this'] / medians['other']:.2f}")


if __name__ == "__main__":
    main()
