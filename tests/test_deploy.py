"""config/deploy.yaml documents every node parameter; para-deploy starts and stops the node."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import pytest
import yaml

from para_ros.nodes.policy_params import PARAMS
from tests.ros_helpers.env import REPO
from tests.ros_helpers.policy_fixture import Driver, camera_pose_param, write_model


def test_yaml_has_every_parameter_documented():
    text = (REPO / "config" / "deploy.yaml").read_text()
    params = yaml.safe_load(text)["para_policy"]["ros__parameters"]
    assert set(params) == {p.name for p in PARAMS}
    lines = text.splitlines()
    for p in PARAMS:
        k = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{p.name}:"))
        assert lines[k - 1].strip().startswith("#"), f"{p.name} has no description comment"
        assert params[p.name] == p.default, p.name


def test_launch_file_wires_arguments():
    src = (REPO / "launch" / "deploy.launch.py").read_text()
    for arg in ("model", "params_file", "sim", "use_sim_time"):
        assert re.search(rf'DeclareLaunchArgument\(\s*"{arg}"', src), arg
    assert 'executable="para_policy"' in src and 'executable="para_libero_bridge"' in src
    compile(src, "deploy.launch.py", "exec")


@pytest.mark.ros
def test_para_deploy_runs_the_node_and_stops_cleanly(tmp_path, ros_env):
    model = write_model(tmp_path / "const.onnx")
    driver = Driver()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "para_ros.deploy",
            "--model",
            str(model),
            "-p",
            camera_pose_param(),
            "-p",
            "diagnostics_period:=0.25",
        ],
        cwd=REPO,
        env=ros_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        end = time.monotonic() + 30
        while not driver.diag(model) and time.monotonic() < end:
            time.sleep(0.2)
        assert driver.diag(model)["providers"] == "CPUExecutionProvider"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0, out
    finally:
        driver.close()
        if proc.poll() is None:
            proc.kill()


def test_para_deploy_reports_a_bad_model(tmp_path, ros_env):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    res = subprocess.run(
        [sys.executable, "-m", "para_ros.deploy", "--model", str(bad)],
        cwd=REPO,
        env=ros_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2
    assert "para_policy: error: cannot load ONNX model" in res.stderr
    assert "para-deploy: para_policy exited with code 2" in res.stderr


def test_bridge_yaml_documents_every_parameter():
    from para_ros.nodes.libero_bridge import PARAMS as BRIDGE

    text = (REPO / "config" / "libero_bridge.yaml").read_text()
    params = yaml.safe_load(text)["para_libero_bridge"]["ros__parameters"]
    assert params == {k: v[0] for k, v in BRIDGE.items()}
    lines = text.splitlines()
    for name in BRIDGE:
        k = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{name}:"))
        assert lines[k - 1].strip().startswith("#"), name
