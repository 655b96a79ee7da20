import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Steps of the same tensors, allocated and freed together as a training step does, with the
# trainer's allocator settings; "release" gives the memory back after each step, as a site
# does after each round. Prints the page faults of 10 steps after 3 warm-up steps. Run in a
# fresh process: allocator settings are per process and last.
STEPS = """
import resource, sys, torch
from client.memory import keep_freed_memory, release_memory
keep_freed_memory()
def step():
    held = [torch.ones(mib << 18) for mib in (1, 4, 16, 8, 2)]
    del held
    if sys.argv[1] == "release":
        release_memory()
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
def test_freed_memory_is_kept_while_training_and_given_back_between_rounds():
    # A page is 4 KiB: a step's 31 MiB faulted in afresh is about 8000 faults. Kept, none in
    # most processes; in some, glibc still maps one of the tensors afresh at each step.
    kept, released = page_faults("keep"), page_faults("release")
    assert released > 1000
    assert kept < released / 4
