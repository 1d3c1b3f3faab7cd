"""LIBERO costs on this machine: a simulator step with and without the 224 px render, the
teleport-servo policy step, and episodes per minute in-process vs through ROS (bridge + node,
lock-step) with the same constant-time policy (a 64 px tiny model, random weights)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import timeit

STEPS = 20


def _sim_steps() -> dict:
    from para_ros.sim.libero_sim import LiberoSim, SimConfig

    sim = LiberoSim(SimConfig(image_size=224))
    obs = sim.reset(0)
    env = sim.env
    raw = timeit(lambda: env.step([0.0] * 6 + [-1.0]), repeat=50)
    render = timeit(sim.render, repeat=20)
    target = obs.eef_pos.copy()
    servo = timeit(lambda: sim.step_target(target, None, -1.0, render=False), repeat=20)
    sim.close()
    return {"env_step_no_render": raw, "render_224": render, "teleport_step_no_render": servo}


def _tiny_model(tmp: Path) -> Path:
    from para_ros.data.synthetic import make_episodes
    from para_training import checkpoint as ckpt
    from para_training.configs import DataConfig, get_preset
    from para_training.export import export_onnx
    from para_training.train import make_spec

    p = get_preset("tiny")
    eps = make_episodes(2, n_frames=10)
    spec, _ = make_spec(eps, DataConfig(data=["x"], **p["data"]), p["model"], log=lambda *_: None)
    d = ckpt.save_checkpoint(tmp / "ck", ckpt.build_model(spec).eval(), spec)
    export_onnx(d, tmp / "m.onnx")
    return tmp / "m.onnx"


def _episodes_per_minute() -> dict:
    from para_ros.runtime.onnx_policy import OnnxPolicy
    from para_ros.sim.evaluate import run_episode
    from para_ros.sim.libero_sim import LiberoSim, SimConfig

    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        model = _tiny_model(tmp)
        sim = LiberoSim(SimConfig(image_size=224, max_steps=STEPS))
        policy = OnnxPolicy(str(model), ["CPUExecutionProvider"])
        t0 = time.perf_counter()
        for k in range(2):
            run_episode(sim, policy, k)
        in_proc = (time.perf_counter() - t0) / 2
        sim.close()
        env = dict(
            os.environ,
            ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
            ROS_DOMAIN_ID=os.environ.get("ROS_DOMAIN_ID", "91"),
            ROS_LOG_DIR=t,
        )
        res_path = tmp / "r.json"
        t0 = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "para_ros.deploy",
                "--model",
                str(model),
                "--sim",
                "-b",
                f"max_steps:={STEPS}",
                "-b",
                "episodes:=2",
                "-b",
                f"results_path:={res_path}",
            ],
            env=env,
            check=True,
            capture_output=True,
            timeout=600,
        )
        wall = time.perf_counter() - t0
        out = json.loads(res_path.read_text())
    return {
        "steps_per_episode": STEPS,
        "image": 224,
        "in_process_s_per_episode": in_proc,
        "ros_total_s_for_2_episodes_incl_startup": wall,
        "in_process_episodes_per_min_at_600_steps": 60 / (in_proc * 600 / STEPS),
        "ros_outcomes": [e["outcome"] for e in out["episodes"]],
    }


def benchmarks():
    return [("sim_steps", _sim_steps), ("episodes_in_process_vs_ros", _episodes_per_minute)]


if __name__ == "__main__":
    print(json.dumps({k: fn() for k, fn in benchmarks()}, default=float))
