"""An episode depends only on (model, layout, setting, seed): the same episodes run in two
orders in one simulator (with a dirty episode in between) and in two shards of para-eval-sim
execute identical targets step for step (shipped model, 128 px, 8 steps)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from para_ros.resources import model_file
from para_ros.sim.evaluate import main as eval_main

STEPS = 8
INITS = (3, 4, 5)


@pytest.fixture(scope="module")
def shipped():
    from para_ros.core.onnx_metadata import read_spec
    from para_ros.runtime.onnx_policy import OnnxPolicy

    path = str(model_file())
    return path, OnnxPolicy(path, ["CPUExecutionProvider"]), read_spec(path)


def _dirty_episode(sim) -> None:
    """Move the arm and close the gripper: state a soft reset must not carry over."""
    obs = sim.reset(0)
    for _ in range(3):
        obs = sim.step_target(obs.eef_pos + [0.03, 0.02, -0.02], None, 1.0, render=False)


def test_orders_and_shards_execute_identical_targets(shipped, tmp_path):
    from para_ros.runtime.executor import resolve_executor, safety_config
    from para_ros.sim.evaluate import run_episode
    from para_ros.sim.libero_sim import LiberoSim, SimConfig

    path, policy, spec = shipped
    safety = safety_config(resolve_executor(spec, {}).spec)
    sim = LiberoSim(SimConfig(image_size=128, max_steps=STEPS))
    try:
        fresh = sim.fresh_layout(1_000_000)
        forward = {i: run_episode(sim, policy, i, safety) for i in INITS}
        forward["fresh"] = run_episode(sim, policy, fresh, safety)
        _dirty_episode(sim)
        backward = {"fresh": run_episode(sim, policy, fresh, safety)}
        backward |= {i: run_episode(sim, policy, i, safety) for i in reversed(INITS)}
    finally:
        sim.close()
    for key, ep in forward.items():
        other = backward[key]
        assert ep["seed"] == other["seed"] and ep["layout"] == other["layout"]
        assert ep["steps"] == STEPS and ep["outcome"] == other["outcome"]
        np.testing.assert_array_equal(ep["targets"], other["targets"], err_msg=str(key))
    seeds = {ep["seed"] for ep in forward.values()}
    assert len(seeds) == len(forward)  # one seed per layout
    moved = np.linalg.norm(np.diff(forward[3]["targets"], axis=0), axis=1)
    assert (moved > 1e-3).any()  # the policy acts: the comparison is not of idle arms

    common = ["--model", path, "--image-size", "128", "--max-steps", str(STEPS)]
    common += ["--first-init", str(INITS[0]), "--episodes", str(len(INITS)), "-o", str(tmp_path)]
    for shard in (0, 1):
        assert eval_main([*common, "--shard", str(shard), "--num-shards", "2"]) == 0
    sharded = {}
    for p in tmp_path.glob("results_shard*of2.json"):
        for e in json.loads(p.read_text())["episodes"]:
            sharded[e["init_state"]] = e
    assert sorted(sharded) == list(INITS)
    for i in INITS:
        assert sharded[i]["seed"] == forward[i]["seed"]
        np.testing.assert_array_equal(sharded[i]["targets"], forward[i]["targets"], err_msg=str(i))


def test_fresh_layouts_are_held_out_recorded_and_checked(shipped, tmp_path, capsys):
    import h5py

    from para_ros.sim.layouts import EVAL_LAYOUT_SEEDS

    path = shipped[0]
    common = ["--model", path, "--image-size", "128", "--max-steps", "1", "--layouts", "fresh"]
    assert eval_main([*common, "--episodes", "2", "-o", str(tmp_path / "a")]) == 0
    res = json.loads((tmp_path / "a" / "results_shard0of1.json").read_text())
    rep = res["layout_report"]
    assert rep["layout_seeds"] == [EVAL_LAYOUT_SEEDS.start, EVAL_LAYOUT_SEEDS.start + 1]
    assert rep["rejected_layouts"] == [] and rep["nearest_official_mm"] >= rep["tolerance_mm"]
    eps = res["episodes"]
    assert [e["layout"]["index"] for e in eps] == rep["layout_seeds"]
    assert all(e["layout"]["source"] == "fresh" and e["init_state"] is None for e in eps)
    assert res["summary"]["n"] == res["summary"]["distinct_starts"] == 2
    lo, hi = res["summary"]["ci95"]
    assert 0.0 <= lo <= res["summary"]["success_rate"] <= hi <= 1.0

    # a training demo that started from the first fresh layout: that seed is skipped
    demos = tmp_path / "train.hdf5"
    with h5py.File(demos, "w") as f:
        g = f.create_group("data").create_group("demo_0")
        g.attrs["meta"] = json.dumps({"layout": {**eps[0]["layout"], "index": 7}})
    capsys.readouterr()
    args = [*common, "--episodes", "2", "--train-demos", str(demos), "-o", str(tmp_path / "b")]
    assert eval_main(args) == 0
    assert f"fresh layout seed {EVAL_LAYOUT_SEEDS.start} coincides with" in capsys.readouterr().err
    rep = json.loads((tmp_path / "b" / "results_shard0of1.json").read_text())["layout_report"]
    assert rep["layout_seeds"] == [EVAL_LAYOUT_SEEDS.start + 1, EVAL_LAYOUT_SEEDS.start + 2]
    assert rep["rejected_layouts"][0]["seed"] == EVAL_LAYOUT_SEEDS.start
    assert rep["rejected_layouts"][0]["distance_mm"] == 0.0
    assert rep["nearest_training_mm"] >= rep["tolerance_mm"]

    # seeds of the training range are refused for evaluation
    assert eval_main([*common, "--layout-seed-start", "5", "-o", str(tmp_path / "c")]) == 2
    assert "eval layout seeds must lie in [1000000, 2000000)" in capsys.readouterr().err


def test_official_init_states_are_never_repeated(capsys, tmp_path):
    path = str(model_file())
    assert eval_main(["--model", path, "--episodes", "60", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "has 50 official init states (0..49)" in err and "--layouts fresh" in err
    assert eval_main(["--model", path, "--first-init", "45", "--episodes", "6"]) == 2
    assert not list(tmp_path.glob("*.json"))
