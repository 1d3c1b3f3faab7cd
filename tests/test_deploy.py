"""config/deploy.yaml documents every node parameter; para-deploy starts and stops the node."""

from __future__ import annotations

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


def test_plan_defaults_start_the_policy_with_the_shipped_model():
    from para_ros.deploy_plan import plan
    from para_ros.resources import config_file, model_file

    (node,) = plan({})
    assert node.name == node.executable == "para_policy"
    assert node.params_file == str(config_file("deploy.yaml"))
    assert node.overrides == {"model_path": str(model_file()), "use_sim_time": False}


def test_plan_sim_wires_the_bridge_camera_clock_and_typed_overrides(tmp_path):
    from para_ros.deploy_plan import plan

    policy, bridge = plan(
        {
            "sim": "true",
            "use_sim_time": "true",
            "episodes": "3",
            "camera_theta_deg": "20",
            "results_path": str(tmp_path / "r.json"),
            "execute_step": "1",
        }
    )
    assert policy.overrides["camera_pose_topic"] == "camera_pose"  # the bridge's orbited camera
    assert policy.overrides["use_sim_time"] is True and policy.overrides["execute_step"] == 1
    assert bridge.overrides["publish_clock"] is True
    assert bridge.overrides["model_path"] == policy.overrides["model_path"]
    assert bridge.overrides["episodes"] == 3
    theta = bridge.overrides["camera_theta_deg"]
    assert theta == 20.0 and isinstance(theta, float)  # a double parameter stays a double
    args = bridge.ros_args()
    assert args[:3] == ["--ros-args", "-r", "__node:=para_libero_bridge"]
    assert "camera_theta_deg:=20.0" in args and f'results_path:="{tmp_path}/r.json"' in args


def test_plan_refuses_bad_arguments_by_name(tmp_path):
    from para_ros.deploy_plan import PlanError, plan

    with pytest.raises(PlanError, match=r"episodes:='three': expected int"):
        plan({"sim": "true", "episodes": "three"})
    with pytest.raises(PlanError, match=r"sim:='yes please': expected bool"):
        plan({"sim": "yes please"})
    with pytest.raises(PlanError, match=r"unknown launch argument\(s\) \['episode'\]"):
        plan({"episode": "3"})
    with pytest.raises(PlanError, match=r"model .*nonexistent.onnx does not exist"):
        plan({"model": str(tmp_path / "nonexistent.onnx")})


def test_para_deploy_and_the_launch_file_share_one_plan():
    """Every launch argument is a para-deploy option, and para-deploy's node commands are the
    plan's ROS arguments (the real-launch tests run both and compare executed targets)."""
    from para_ros import deploy
    from para_ros.deploy_plan import ARGUMENTS, plan

    src = (REPO / "launch" / "deploy.launch.py").read_text()
    assert "from para_ros.deploy_plan import ARGUMENTS, node_environment, plan" in src
    compile(src, "deploy.launch.py", "exec")
    args = deploy.build_parser().parse_args(
        ["--sim", "--episodes", "2", "-b", "action_scale:=1.0"]
    )
    cmds = deploy.commands(args)
    nodes = plan({"sim": "true", "episodes": "2"})
    for n in nodes:
        assert cmds[n.name][3 : 3 + len(n.ros_args())] == n.ros_args()
    assert cmds["para_libero_bridge"][-2:] == ["-p", "action_scale:=1.0"]
    opts = {a.dest for a in deploy.build_parser()._actions}
    assert {a.name for a in ARGUMENTS} <= opts


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
