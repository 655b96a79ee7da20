"""Helpers for tests that run real processes (Flower SuperLink/SuperNodes, the CLI)."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.data.phantom import PhantomOptions, generate_phantom

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


class Processes:
    """Background processes, each in its own session so their children die with them."""

    def __init__(self) -> None:
        self.running: list[subprocess.Popen] = []

    def start(self, args: list[str], log: Path, **kwargs) -> subprocess.Popen:
        handle = open(log, "w")
        process = subprocess.Popen(
            args, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
        )
        self.running.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.running:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for process in self.running:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def processes():
    running = Processes()
    yield running
    running.stop_all()


def write_phantom_site(path: Path, seed: int, patients: int = 20) -> None:
    """A site's private data as a MedMNIST-layout .npz with patient IDs."""
    data = generate_phantom(
        PhantomOptions(num_patients=patients, images_per_patient=2, seed=seed), 28
    )
    np.savez(
        path,
        train_images=data.images,
        train_labels=data.labels.astype(np.uint8),
        train_patient_ids=data.patient_ids,
    )
