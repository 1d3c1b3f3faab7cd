"""Test-wide settings: stable CPU timing and loopback-only, isolated ROS 2 traffic."""

from __future__ import annotations

import os
import random
import sys
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

REPO = Path(__file__).resolve().parents[1]

# One ROS domain for this pytest process, chosen at random in 1..100 (valid on Linux, and
# away from the default 0) so that concurrent runs on one machine do not see each other.
_DOMAIN_ID = str(random.SystemRandom().randint(1, 100))


def ros_isolated_env(log_dir: Path) -> dict[str, str]:
    """Environment for a process that uses ROS 2: loopback discovery only, our own domain,
    logs in `log_dir`. The full parent environment is kept: the ROS wheels' bootstrapper
    marks its re-exec in an inherited variable, and a child without LD_LIBRARY_PATH fails."""
    env = dict(os.environ)
    env.update(
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",  # kilted ignores ROS_LOCALHOST_ONLY
        ROS_DOMAIN_ID=_DOMAIN_ID,
        ROS_LOG_DIR=str(log_dir),
        RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def ros_env(tmp_path: Path) -> dict[str, str]:
    log_dir = tmp_path / "ros_log"
    log_dir.mkdir()
    return ros_isolated_env(log_dir)


@pytest.fixture(scope="session")
def python() -> str:
    return sys.executable
