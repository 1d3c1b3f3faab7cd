"""Test-wide settings: stable CPU timing and loopback-only, isolated ROS 2 traffic."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

# These machines have 2 shared cores: busy-waiting OpenMP/ORT threads slow everything ~12x
# under contention (RECIPES). Set before numpy/torch/onnxruntime are imported by any test.
for _k, _v in {
    "OMP_WAIT_POLICY": "PASSIVE",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}.items():
    os.environ.setdefault(_k, _v)

from tests.ros_helpers.env import REPO, ros_isolated_env  # noqa: E402

__all__ = ["REPO", "ros_isolated_env"]

# The test process itself runs rclpy too (drivers): the same isolation as its children.
_LOG_DIR = Path(tempfile.mkdtemp(prefix="para_ros_test_log_"))
os.environ.update(ros_isolated_env(_LOG_DIR))


@pytest.fixture
def ros_env(tmp_path: Path) -> dict[str, str]:
    log_dir = tmp_path / "ros_log"
    log_dir.mkdir()
    return ros_isolated_env(log_dir)


@pytest.fixture(scope="session")
def python() -> str:
    return sys.executable
