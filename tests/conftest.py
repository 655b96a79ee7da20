"""Fixtures shared across the test packages."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.processes import REPO

HOLD_RUN_FOLDER = """
import sys
from common.run_lock import run_folder_lock
with run_folder_lock(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()  # hold until the test closes our stdin
"""


@pytest.fixture
def hold_run_folder():
    """hold(path) -> a second Python process that holds the run folder's lock (it lets go
    when its stdin is closed, at the latest when the test ends), or None if it was refused
    because the folder is held already."""
    holders = []

    def hold(run_dir: Path) -> subprocess.Popen | None:
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD_RUN_FOLDER, str(run_dir)],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        holders.append(holder)
        return holder if holder.stdout.readline().strip() == "held" else None

    yield hold
    for holder in holders:
        if not holder.stdin.closed:
            holder.stdin.close()
        holder.wait(timeout=30)
