"""Two separate processes exchange para_ros/PolicyAction over ROS 2 (real rclpy, loopback)."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.ros_helpers.action_pubsub import make_action, to_dict
from tests.ros_helpers.env import REPO

pytestmark = pytest.mark.ros


def test_policy_action_crosses_processes(ros_env, python):
    topic = "/para_test/action"
    sub = subprocess.Popen(
        [python, "-m", "tests.ros_helpers.action_pubsub", "sub", topic, "30"],
        cwd=REPO,
        env=ros_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Publish for up to 60 x 0.1 s: discovery on loopback takes a fraction of a second.
    pub = subprocess.run(
        [python, "-m", "tests.ros_helpers.action_pubsub", "pub", topic, "60"],
        cwd=REPO,
        env=ros_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    out, err = sub.communicate(timeout=60)
    assert pub.returncode == 0, pub.stderr
    assert sub.returncode == 0, f"subscriber failed: {out} {err}"
    received = json.loads(out.strip().splitlines()[-1])
    expected = to_dict(make_action(received["stamp_sec"] - 1000))
    assert received == expected  # every value is exact in float32/float64
    assert received["positions"][2] == pytest.approx([0.2, -0.2, 0.92])
    assert received["confidence"] == [0.5, 0.25, 0.125]
    assert received["model_id"] == "test-model"
