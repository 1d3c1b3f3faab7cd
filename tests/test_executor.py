"""The executor (runtime.executor): settings resolved from the model with explicit overrides,
the policy side (StallGuard + gate + gripper being executed) and the robot side (hold)."""

from __future__ import annotations

import numpy as np
import pytest

from para_ros.core.action_codec import ActionChunk
from para_ros.core.contract import ExecutorSpec, PolicySpec, WindowSpec
from para_ros.runtime.executor import Executor, Follower, resolve_executor, safety_config


def _spec(**executor) -> PolicySpec:
    return PolicySpec(window=WindowSpec(steps=4), executor=ExecutorSpec(**executor))


def _chunk(positions, gripper) -> ActionChunk:
    T = len(positions)
    return ActionChunk(
        positions=np.asarray(positions, dtype=np.float64),
        quat_xyzw=np.tile([0.0, 0.0, 0.0, 1.0], (T, 1)),
        euler=np.zeros((T, 3)),
        gripper=np.asarray(gripper, dtype=np.float64),
        confidence=np.ones(T),
        pixels=np.zeros((T, 2)),
        heights=np.asarray(positions, dtype=np.float64)[:, 2],
        valid=np.ones(T, dtype=bool),
        reasons=np.array([""] * T),
        rotation_bins=np.zeros(T, dtype=np.int64),
        gripper_bins=np.zeros(T, dtype=np.int64),
        voxel=np.zeros((T, 3), dtype=np.int64),
    )


def test_model_values_are_used_unless_overridden_and_sources_are_named():
    spec = _spec(execute_step=1, max_step_m=0.03, stall_patience=4)
    s = resolve_executor(spec, {"execute_step": -1, "max_step_m": 0.0, "stall_patience": -1})
    assert (s.spec.execute_step, s.spec.max_step_m, s.spec.stall_patience) == (1, 0.03, 4)
    assert set(s.sources.values()) == {"model"}
    s = resolve_executor(spec, {"execute_step": 2, "max_step_m": 0.0})
    assert s.spec.execute_step == 2 and s.sources["execute_step"] == "parameter"
    assert s.spec.max_step_m == 0.03 and s.sources["max_step_m"] == "model"
    assert "execute_step=2 (parameter)" in s.describe()
    assert "max_step_m=0.03 (model)" in s.describe()


def test_bad_overrides_are_refused_with_the_value():
    spec = _spec()
    with pytest.raises(ValueError, match=r"execute_step 4 is outside the model's chunk of T=4"):
        resolve_executor(spec, {"execute_step": 4})
    with pytest.raises(ValueError, match=r"unknown executor setting\(s\) \['execute'\]"):
        resolve_executor(spec, {"execute": 1})
    with pytest.raises(ValueError, match=r"max_step_m.*must be metres > 0, got -0.1"):
        resolve_executor(spec, {"max_step_m": -0.1})


def test_decide_gates_the_executed_step_and_tracks_the_gripper():
    ex = Executor(safety_config(ExecutorSpec(execute_step=1, max_step_m=0.05)))
    assert ex.gripper_state is None
    chunk = _chunk(
        [[0.0, 0.0, 0.5], [0.01, 0.0, 0.5], [0.2, 0.0, 0.5], [0.3, 0, 0.5]], [-1, 1, 1, 1]
    )
    cmd, reason = ex.decide(chunk, np.array([0.0, 0.0, 0.5]))
    assert reason == "" and cmd.step == 1
    np.testing.assert_allclose(cmd.position, [0.01, 0.0, 0.5])
    assert ex.gripper_state == 1.0
    bad = _chunk([[0, 0, 0.5], [np.nan, 0, 0.5], [0, 0, 0.5], [0, 0, 0.5]], [-1, -1, -1, -1])
    cmd, reason = ex.decide(bad, np.array([0.0, 0.0, 0.5]))
    assert cmd is None and reason == "step 1: non-finite model output"
    assert ex.gripper_state == 1.0  # a refused chunk changes nothing on the robot


def test_stall_guard_advances_after_patience_still_frames():
    ex = Executor(safety_config(ExecutorSpec(execute_step=0, stall_patience=2)))
    still = _chunk([[0, 0, 0.5], [0.01, 0, 0.5], [0.02, 0, 0.5], [0.03, 0, 0.5]], [1, 1, 1, 1])
    eef = np.array([0.0, 0.0, 0.5])
    steps = [ex.decide(still, eef)[0].step for _ in range(6)]
    # frame 1: no history; frame 2: the first gripper command was just sent (a change);
    # frames 3-6 still: 1, 2, 3, 4 still frames -> advance still // patience
    assert steps == [0, 0, 0, 1, 1, 2]
    assert ex.advanced_steps == 3


def test_follower_holds_the_current_pose_with_the_last_gripper_command():
    f = Follower(open_gripper=-1.0)
    pos, grip = f.target(None, None, np.array([0.1, 0.2, 0.3]))
    np.testing.assert_array_equal(pos, [0.1, 0.2, 0.3])
    assert grip == -1.0 and f.held == 1
    pos, grip = f.target(np.array([0.0, 0.0, 0.4]), 1.0, np.array([0.1, 0.2, 0.3]))
    np.testing.assert_array_equal(pos, [0.0, 0.0, 0.4])
    assert grip == 1.0
    pos, grip = f.target(None, None, np.array([0.5, 0.5, 0.5]))
    assert grip == 1.0 and f.held == 2
