"""One lock-step LIBERO episode through ROS 2 (bridge + policy node, separate processes)
agrees with the same episode run in-process."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from para_ros.runtime.onnx_policy import OnnxPolicy
from para_ros.runtime.safety import SafetyConfig
from para_ros.sim.evaluate import run_episode
from para_ros.sim.libero_sim import LiberoSim, SimConfig
from tests.ros_helpers.env import REPO
from tests.ros_helpers.policy_fixture import start_node

pytestmark = pytest.mark.ros
STEPS = 12


def test_lockstep_episode_matches_in_process(exported, tmp_path, ros_env):
    onnx_path, _, _ = exported
    sim = LiberoSim(SimConfig(image_size=128, max_steps=STEPS))
    try:
        local = run_episode(
            sim,
            OnnxPolicy(str(onnx_path), ["CPUExecutionProvider"]),
            0,
            SafetyConfig(max_step_m=0.05),
        )
    finally:
        sim.close()
    node = start_node(
        onnx_path,
        ros_env,
        "max_step:=0.05",
        "camera_pose_topic:=camera_pose",
        "camera_pose_source:=topic",
        log=tmp_path / "node.log",
    )
    results = tmp_path / "bridge.json"
    try:
        bridge = subprocess.run(
            [
                sys.executable,
                "-m",
                "para_ros.nodes.libero_bridge",
                "--ros-args",
                "--params-file",
                str(REPO / "config" / "libero_bridge.yaml"),
                "-p",
                "image_size:=128",
                "-p",
                f"max_steps:={STEPS}",
                "-p",
                "episodes:=1",
                "-p",
                f"results_path:={results}",
            ],
            cwd=REPO,
            env=ros_env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        node.terminate()
        node.wait(10)
    assert bridge.returncode == 0, bridge.stdout[-3000:] + bridge.stderr[-3000:]
    res = json.loads(results.read_text())
    ep = res["episodes"][0]
    assert ep["outcome"] in ("PLACE", "GRASP", "MISS") and ep["steps"] == STEPS
    assert ep["outcome"] == local["outcome"]
    # the same per-episode seed (layouts.episode_seed) and layout in both
    assert ep["seed"] == local["seed"] and ep["layout"] == local["layout"]
    np.testing.assert_allclose(np.array(ep["targets"]), np.array(local["targets"]), atol=1e-9)
    assert ep["held_steps"] == local["refused_steps"]
    assert res["summary"]["n"] == 1


def deploy_sim(onnx_path, results, env, *bridge_params: str) -> dict:
    """Run `para-deploy --sim` with bridge parameter overrides; return the results JSON."""
    cmd = [
        sys.executable,
        "-m",
        "para_ros.deploy",
        "--model",
        str(onnx_path),
        "--sim",
        "-b",
        "image_size:=128",
        "-b",
        f"results_path:={results}",
    ]
    for p in bridge_params:
        cmd += ["-b", p]
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return json.loads(results.read_text())


def test_para_deploy_sim_runs_episodes_and_exits(exported, tmp_path, ros_env):
    onnx_path, _, _ = exported
    out = deploy_sim(onnx_path, tmp_path / "r.json", ros_env, "max_steps:=4", "episodes:=2")
    assert out["summary"]["n"] == 2
    assert [e["init_state"] for e in out["episodes"]] == [0, 1]
    assert all(e["steps"] == 4 for e in out["episodes"])


def test_realtime_mode_runs_at_the_models_dt_and_executes_actions(exported, tmp_path, ros_env):
    """Real time: a tick every model dt (control_rate 0), the arm executing the newest command
    while the node computes; the first tick has none (held), later ones run the previous
    frame's answer, and the robot moves."""
    onnx_path, _, spec = exported
    out = deploy_sim(onnx_path, tmp_path / "rt.json", ros_env, "mode:=realtime", "max_steps:=8")
    ep = out["episodes"][0]
    assert ep["steps"] == 8 and ep["outcome"] in ("PLACE", "GRASP", "MISS")
    assert ep["tick_s"] == pytest.approx(spec.window.dt)
    assert 1 <= ep["held_steps"] < 8  # no command yet at the first tick
    assert 0 <= ep["stale_steps"] <= 8 - ep["held_steps"]
    moved = np.linalg.norm(np.diff(np.array(ep["targets"]), axis=0), axis=1)
    assert (moved > 1e-4).any()
