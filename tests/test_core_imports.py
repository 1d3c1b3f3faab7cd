"""The pure core imports neither rclpy nor torch (training, nodes and tools all use it)."""

from __future__ import annotations

import subprocess
import sys

from tests.ros_helpers.env import REPO


def test_core_is_pure():
    code = (
        "import sys\n"
        "import para_ros.core.contract, para_ros.core.geometry, para_ros.core.codecs\n"
        "import para_ros.core.onnx_metadata\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('rclpy', 'torch'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""
