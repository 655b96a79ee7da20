"""Evaluation tests: no network (nothing may be downloaded, e.g. pretrained weights) and tiny
run folders."""

import socket
from pathlib import Path

import pytest

from tests.helpers.datasets import write_bright_dark_npz
from tests.helpers.run_folders import write_finished_run


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch, tmp_path):
    """Any connection attempt fails the test; torch's download cache is a fresh empty folder."""

    def refuse(*args, **kwargs):
        raise AssertionError("evaluation must not use the network (no downloads)")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    return tmp_path / "torch-home"


@pytest.fixture
def phantom_run(tmp_path) -> Path:
    """Multi-label: phantom chest X-rays, 32 px, 4 findings, 40 patients (160 images)."""
    return write_finished_run(tmp_path / "phantom-run", ["data.phantom.num_patients=40"])


@pytest.fixture
def bright_dark_run(tmp_path) -> Path:
    """Single-label, 28 px, two classes that brightness alone separates; holdout = val."""
    npz = write_bright_dark_npz(tmp_path / "bright-dark.npz")
    return write_finished_run(
        tmp_path / "bright-dark-run",
        [
            "data.source=medmnist",
            "data.resolution=28",
            f"data.medmnist.path={npz}",
            "data.medmnist.class_names=[dark, bright]",
            "data.holdout_split=val",
        ],
    )
