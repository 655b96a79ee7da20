"""`python reaper.py REPORT -- COMMAND...`: runs COMMAND as a child subreaper, so that every
process COMMAND leaves behind, orphaned or in a session of its own, becomes this process's
child rather than init's. Once COMMAND exits (and a grace period for its descendants to stop
has passed), writes the command lines of those left to REPORT as JSON, then kills them.

Only /proc/PID/stat and /proc/PID/cmdline are read: neither needs the right to trace the
process, which some sandboxes withhold.
"""

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
GRACE_S = 15.0


def children() -> dict[int, str]:
    """Live children of this process (zombies are reaped, not counted): pid to command line."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            # The command name in field 2 may hold spaces: the fields after it follow its ')'.
            state, ppid = (proc / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):  # gone meanwhile
            continue
        if int(ppid) != os.getpid():
            continue
        if state == "Z":
            os.waitpid(int(proc.name), 0)
            continue
        found[int(proc.name)] = cmdline.strip()
    return found


def main() -> int:
    report, separator, *command = sys.argv[1:]
    assert separator == "--", "usage: reaper.py REPORT -- COMMAND..."
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")
    returncode = subprocess.run(command).returncode
    deadline = time.monotonic() + GRACE_S
    while (left := children()) and time.monotonic() < deadline:
        time.sleep(0.5)
    Path(report).write_text(json.dumps(sorted(left.values())))
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    return returncode


if __name__ == "__main__":
    sys.exit(main())
