"""One process per run folder, with a real second process holding the flock."""

import pytest

from common.errors import UserError
from common.run_lock import run_folder_lock


def test_a_folder_held_by_another_process_is_refused_with_its_pid(tmp_path, hold_run_folder):
    holder = hold_run_folder(tmp_path / "run")

    with pytest.raises(UserError) as error:
        with run_folder_lock(tmp_path / "run"):
            pass

    assert str(tmp_path / "run") in str(error.value)
    assert f"pid {holder.pid}" in str(error.value)
    assert "--run-dir" in str(error.value)


def test_the_lock_is_released_when_the_holder_exits(tmp_path, hold_run_folder):
    holder = hold_run_folder(tmp_path / "run")
    holder.stdin.close()
    holder.wait(timeout=30)

    with run_folder_lock(tmp_path / "run"):
        pass  # no error: the kernel dropped the dead holder's lock


def test_the_lock_is_held_until_its_block_ends(tmp_path, hold_run_folder):
    with run_folder_lock(tmp_path / "run"):
        refused_while_held = hold_run_folder(tmp_path / "run") is None

    assert refused_while_held
    assert hold_run_folder(tmp_path / "run") is not None  # leaving the block let go
