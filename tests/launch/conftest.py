"""Fixtures for the tests under the real ROS 2 launch stack (tests/ros_helpers/launch_stack).

`ros2_cli`: a colcon-style install of this package and the environment in which `ros2 launch`,
`ros2 run` and `ros2 param` use it (loopback, the test run's own ROS_DOMAIN_ID). Where neither a
ROS install nor the vendored archives exist, every test here is skipped with that reason in the
summary (pytest -ra): they never pass silently.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ros_helpers import launch_stack
from tests.ros_helpers.env import ros_isolated_env


@dataclass
class Ros2Cli:
    install: Path
    env: dict[str, str]
    kind: str

    def run(self, *args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["ros2", *args], env=self.env, capture_output=True, text=True, timeout=timeout, **kw
        )

    def start(self, *args: str, log: Path) -> subprocess.Popen:
        """`ros2 ...` in its own session (so SIGINT reaches launch as from a terminal)."""
        return subprocess.Popen(
            ["ros2", *args],
            env=self.env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.fixture(scope="session")
def ros2_cli(tmp_path_factory) -> Ros2Cli:
    reason = launch_stack.unavailable()
    if reason:
        pytest.skip(f"launch tests did not run: {reason}")
    stack = launch_stack.ensure()
    ws = tmp_path_factory.mktemp("colcon_ws")
    install = launch_stack.install_package(ws)
    logs = ws / "ros_log"
    logs.mkdir()
    return Ros2Cli(install, stack.env(ros_isolated_env(logs), install), stack.kind)


def node_processes(install: Path) -> list[str]:
    """Command lines of live processes started from this install's node executables."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().split(")")[-1].split()[0]
        except OSError:
            continue  # exited meanwhile
        if state != "Z" and str(install / "lib" / "para_ros") in cmd:
            out.append(cmd)
    return out


def processes_logging_to(log_dir: Path) -> list[str]:
    """Command lines of live processes whose ROS_LOG_DIR is `log_dir` (pip-started nodes)."""
    want = f"ROS_LOG_DIR={log_dir}".encode()
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().split(")")[-1].split()[0]
            if state != "Z" and want in env:
                out.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return out


def stop(proc: subprocess.Popen, timeout: float = 20) -> int:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)  # SIGTERM would leave launch's children running
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


def wait_for(fn, timeout: float, period: float = 0.5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = fn()
        if got:
            return got
        time.sleep(period)
    return fn()


def results(path: Path) -> dict:
    return json.loads(path.read_text())
