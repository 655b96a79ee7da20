"""Flower's simulation runtime on loopback: a private SuperLink in simulation mode and
`flwr run` of this repository's app against it, with the run's log stream on the terminal.

Each simulation gets its own SuperLink on free ports and its own Flower home (connections,
installed app), both gone when it ends: runs side by side cannot reach each other's
SuperLink, and nothing keeps running after `privsynth run` returns.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

from common.errors import UserError
from common.protocol import SIMULATION_ENV

APP_DIR = Path(__file__).resolve().parents[1]  # the folder with the app's pyproject.toml
CONNECTION = "privsynth-simulation"
STARTUP_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0

# What the stream carries besides the server's own output: Flower's and Ray's log lines,
# with or without colour, and Python warnings. They stay in the log file.
NOISE = re.compile(
    r"(\x1b\[\d+m)?(INFO|DEBUG|WARNING)\s*(\x1b\[0m)?\s*:"
    r"|\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}:(DEBUG|INFO|WARNING):"
    r"|Using SuperLink:|Successfully (started run|installed )"
    r"|[A-Za-z]*Warning: |\s+warnings\.warn\("
)

# Ray's prefix on what a site's process prints, e.g. "(ClientAppActor pid=12)".
RAY_PREFIX = re.compile(r"(\x1b\[\d+m)?\([A-Za-z]+ pid=\d+\)(\x1b\[0m)? ?")


class StreamFilter:
    """Passes a log stream's own output (progress bars, the server's messages) and drops
    Flower's and Ray's log lines. Works on pieces ending in a newline or carriage return, so a
    progress bar's updates pass one by one."""

    def __init__(self) -> None:
        self.pending = ""

    def feed(self, text: str) -> str:
        pieces = re.split(r"(?<=[\r\n])", self.pending + text)
        self.pending = pieces.pop()  # unterminated (or empty): wait for the rest
        return "".join(self._keep(piece) for piece in pieces)

    @staticmethod
    def _keep(piece: str) -> str:
        actor = RAY_PREFIX.match(piece)
        if actor is not None and not piece[actor.end() :].strip():
            return ""
        noise = NOISE.search(piece)
        if noise is None:
            return piece
        # A log line can follow a progress bar's text without a line break in between.
        head = piece[: noise.start()]
        return head + "\n" if head.strip() else ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def toml_value(value: str | bool | int | float) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string
    return repr(value)


def config_arg(values: dict) -> str:
    """`key=value ...` as `flwr run --run-config/--federation-config` parse it."""
    return " ".join(f"{key}={toml_value(value)}" for key, value in values.items())


def _bin(name: str) -> str:
    """A Flower command from this Python's environment, whatever PATH says."""
    return str(Path(sys.executable).parent / name)


class SimulationRuntime:
    """A private SuperLink in simulation mode, for the `with` block."""

    def __init__(self, logs_dir: Path) -> None:
        self.logs_dir = Path(logs_dir)
        self.home = tempfile.TemporaryDirectory(prefix="privsynth-flwr-")
        self.port = free_port()
        self.superlink: subprocess.Popen | None = None
        self.env = {
            **os.environ,
            # The SuperLink starts Flower's other commands by name.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "FLWR_HOME": self.home.name,
            "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
            "FLWR_DISABLE_UPDATE_CHECK": "1",
            "PYTHONUNBUFFERED": "1",
            "RAY_DEDUP_LOGS": "0",
            # Ray would hide the GPU from actors given none; they do not use it then anyway.
            "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0",
            # Marks the sites' processes as a simulation's (client.site_config): a node
            # without it is a deployed site and needs its own settings.
            SIMULATION_ENV: "1",
        }

    def __enter__(self) -> "SimulationRuntime":
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        Path(self.home.name, "config.toml").write_text(
            f'[superlink]\ndefault = "{CONNECTION}"\n\n[superlink.{CONNECTION}]\n'
            f'address = "127.0.0.1:{self.port}"\ninsecure = true\n'
        )
        with open(self.logs_dir / "superlink.log", "w") as log:
            self.superlink = subprocess.Popen(
                [_bin("flower-superlink"), "--insecure", "--simulation"]
                + ["--isolation", "subprocess", "--host", "127.0.0.1", "--port", str(self.port)]
                + ["--control-api-address", f"127.0.0.1:{free_port()}"]
                + ["--fleet-api-address", f"127.0.0.1:{free_port()}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=os.getcwd(),  # the run config's relative data paths are the user's
                start_new_session=True,  # its children (the simulation, Ray) stop with it
            )
        self._wait_until_listening()
        return self

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.superlink.poll() is not None:
                break
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.5)
        raise RuntimeError(
            f"Flower's SuperLink did not start; see {self.logs_dir / 'superlink.log'}"
        )

    def run(self, *, run_config: dict, federation_config: dict, echo: IO[str]) -> None:
        """`flwr run` of the app until the run ends; its stream goes to the log file, and the
        server's own output on to `echo`."""
        command = [_bin("flwr"), "run", str(APP_DIR), CONNECTION, "--stream"]
        command += ["--run-config", config_arg(run_config)]
        command += ["--federation-config", config_arg(federation_config)]
        stream_filter = StreamFilter()
        with (
            open(self.logs_dir / "flwr-run.log", "w") as log,
            subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=self.env
            ) as flwr,
        ):
            try:
                while chunk := os.read(flwr.stdout.fileno(), 65536):
                    text = chunk.decode(errors="replace")
                    log.write(text)
                    log.flush()
                    echo.write(stream_filter.feed(text))
                    echo.flush()
            except BaseException:  # interrupted: `flwr run` stops with us
                flwr.terminate()
                raise
        if flwr.returncode != 0:
            raise UserError(
                f"`flwr run` failed (exit code {flwr.returncode}); its log: "
                f"{self.logs_dir / 'flwr-run.log'}"
            )

    def __exit__(self, *exc_info) -> None:
        if self.superlink is not None and self.superlink.poll() is None:
            # Flower starts the simulation (and Ray) in process groups of their own, which
            # the SuperLink's group does not reach: each process it started stops too.
            started = _descendants(self.superlink.pid)
            os.killpg(self.superlink.pid, signal.SIGTERM)
            _signal_each(started, signal.SIGTERM)
            try:
                self.superlink.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.superlink.pid, signal.SIGKILL)
                self.superlink.wait()
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while (alive := _alive(started)) and time.monotonic() < deadline:
                time.sleep(0.2)
            _signal_each(alive, signal.SIGKILL)
        self.home.cleanup()


def _stat_fields(stat: Path) -> list[str] | None:
    """The fields of a /proc/PID/stat file after the command name (which may hold spaces):
    the state first, then the parent's pid; None once the process is gone."""
    try:
        return stat.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _descendants(pid: int) -> list[int]:
    """The live descendants of `pid`, read from /proc (none where there is no /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        if fields := _stat_fields(stat):
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, frontier = [], [pid]
    while frontier:
        for child in children.get(frontier.pop(), []):
            found.append(child)
            frontier.append(child)
    return found


def _alive(pids: list[int]) -> list[int]:
    """Those of `pids` still running (a zombie has stopped)."""
    return [
        pid
        for pid in pids
        if (fields := _stat_fields(Path(f"/proc/{pid}/stat"))) and fields[0] != "Z"
    ]


def _signal_each(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
