"""One ROS 2 isolation setting per test run (imported once, whatever imports it)."""

from __future__ import annotations

import os
import random
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Chosen at random in 1..100 (valid on Linux, away from the default 0) so that concurrent
# runs on one machine do not see each other; kept in the environment so every import and
# every child process of this run agrees on it.
DOMAIN_ID = os.environ.setdefault(
    "PARA_TEST_ROS_DOMAIN_ID", str(random.SystemRandom().randint(1, 100))
)


def ros_isolated_env(log_dir: Path) -> dict[str, str]:
    """Environment for a process that uses ROS 2: loopback discovery only, our own domain,
    logs in `log_dir`. The full parent environment is kept: the ROS wheels' bootstrapper
    marks its re-exec in an inherited variable, and a child without LD_LIBRARY_PATH fails."""
    env = dict(os.environ)
    env.update(
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",  # kilted ignores ROS_LOCALHOST_ONLY
        ROS_DOMAIN_ID=DOMAIN_ID,
        ROS_LOG_DIR=str(log_dir),
        RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
        PYTHONUNBUFFERED="1",
    )
    return env
