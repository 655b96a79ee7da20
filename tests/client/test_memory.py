import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Steps of the same tensors, allocated and freed together as a training step does; prints the
# page faults of 10 steps after 3 warm-up steps. Run in a fresh process: allocator settings
# are per process and last.
STEPS = """
import resource, sys, torch
from client.memory import keep_freed_memory
if sys.argv[1] == "keep":
    keep_freed_memory()
def step():
    held = [torch.ones(mib << 18) for mib in (1, 4, 16, 8, 2)]
    del held
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", STEPS, mode], cwd=REPO, capture_output=True, text=True, check=True
    )
    return int(result.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc allocator settings")
def test_kept_freed_memory_is_reused_without_page_faults():
    # A page is 4 KiB: one step's 31 MiB would be about 8000 faults if faulted in afresh.
    assert page_faults("default") > 500  # the default settings do return memory each step
    assert page_faults("keep") < 50
