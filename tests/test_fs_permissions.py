"""The filesystem provider on files the server may not read or not write (0200, 0000, 0444):
what it answered before every change was made from folder descriptors, it answers still.

Permission checks do not bind root (CAP_DAC_OVERRIDE): when the tests run as root, the
provider runs in a child process started without the capabilities that bypass them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

# In the child: each step's outcome, a DavError's status or "ok", as JSON on stdout.
_CHILD = textwrap.dedent(
    """
    import json, sys
    from davserver.errors import DavError
    from davserver.provider.fs import FilesystemProvider

    provider = FilesystemProvider(sys.argv[1])
    outcomes = {}

    def step(label, action):
        try:
            action()
            outcomes[label] = "ok"
        except DavError as exc:
            outcomes[label] = exc.status

    def write_range(path, offset, data):
        piece = provider.stage("/piece", [data])
        try:
            provider.write_range(path, offset, piece)
        finally:
            piece.discard()

    step("mtime 0200", lambda: provider.set_mtime("/write-only", 1e9))
    step("mtime 0000", lambda: provider.set_mtime("/no-access", 1e9))
    step("mtime link", lambda: provider.set_mtime("/link", 2e9))
    step("append 0200", lambda: write_range("/write-only", 4, b"++"))
    step("rewrite 0200", lambda: write_range("/write-only", 0, b"++"))
    step("append 0444", lambda: write_range("/read-only", 4, b"++"))
    step("rewrite 0444", lambda: write_range("/read-only", 0, b"++"))
    provider.close()
    print(json.dumps(outcomes))
    """
)


def _run_unprivileged(root: Path) -> dict[str, Any]:
    command = [sys.executable, "-c", _CHILD, str(root)]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv is not None, "setpriv (util-linux) is needed to drop root's overrides"
        command = [setpriv, "--bounding-set=-dac_override,-dac_read_search", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    outcomes: dict[str, Any] = json.loads(done.stdout)
    return outcomes


def test_mtime_and_pieces_need_only_the_access_they_use(tmp_path: Path) -> None:
    """Setting a modification time needs no leave to read or write the file (its owner may,
    as utime(2) allows); an append needs leave to write it, a rewrite (a new file renamed
    over it, as a whole PUT) leave to read it. All were refused (403) when each opened the
    file to read and write."""
    root = tmp_path / "share"
    root.mkdir()
    for name, mode in (("write-only", 0o200), ("no-access", 0o000), ("read-only", 0o444)):
        (root / name).write_bytes(b"data")
        (root / name).chmod(mode)
    (root / "target").write_bytes(b"t")
    (root / "link").symlink_to("target")

    outcomes = _run_unprivileged(root)

    assert outcomes == {
        "mtime 0200": "ok",
        "mtime 0000": "ok",
        "mtime link": "ok",
        "append 0200": "ok",
        "rewrite 0200": 403,  # its bytes cannot be read to copy
        "append 0444": 403,
        "rewrite 0444": "ok",
    }
    assert (root / "no-access").stat().st_mtime == 1e9
    # The link's target took the time, not the link.
    assert (root / "target").stat().st_mtime == 2e9
    assert (root / "link").lstat().st_mtime != 2e9
    assert (root / "write-only").read_bytes() == b"data++"
    assert (root / "read-only").read_bytes() == b"++ta"
