"""Planted run folders: a tiny phantom run whose synthetic set is chosen by the test."""

import pytest

from attacks.context import AttackOptions, build_context
from common.device import CPU
from common.run_data import load_run
from tests.helpers.configs import ATTACK_OPTIONS
from tests.helpers.run_folders import write_planted_run


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    """Shared across tests: the embedding trains once per session."""
    return tmp_path_factory.mktemp("attack-cache")


@pytest.fixture
def planted(tmp_path, cache_dir):
    """planted("copies" | "independent") -> an AttackContext on a fresh planted run."""

    def make(synthetic: str, options: AttackOptions = ATTACK_OPTIONS):
        run_dir = tmp_path / synthetic
        write_planted_run(run_dir, synthetic)
        return build_context(
            load_run(run_dir), options, run_dir / "attack-figures", cache_dir, device=CPU
        )

    return make
