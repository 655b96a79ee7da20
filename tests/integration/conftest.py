"""Fixtures for tests that run real processes (Flower SuperLink/SuperNodes, the CLI)."""

import pytest

from tests.helpers.processes import Processes


@pytest.fixture
def processes():
    """Background processes, all stopped when the test ends."""
    running = Processes()
    yield running
    running.stop_all()
