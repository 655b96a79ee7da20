"""One process per run folder: a second server writing the same folder would interleave its
rounds, checkpoint and generator with the first one's and silently spoil both.

The lock is an flock on `<run folder>/.lock`, so the kernel releases it when the holder dies
(no stale locks after a crash).
"""

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common.errors import UserError

LOCK_NAME = ".lock"


@contextmanager
def run_folder_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run folder; a UserError names the holder if another has it."""
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    handle = open(run_dir / LOCK_NAME, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise UserError(
            f"run folder {run_dir} is in use by another privsynth process (pid {holder}); "
            "wait for it to finish or choose another --run-dir"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    try:
        yield
    finally:
        handle.close()  # closing the file releases the flock
