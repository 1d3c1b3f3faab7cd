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


def _streaming_executor(dt: float = 0.2, **overrides) -> tuple[Executor, object]:
    """A streaming executor resolved from a model with window.dt = `dt`, 5 cm steps."""
    spec = PolicySpec(
        window=WindowSpec(steps=4, dt=dt),
        executor=ExecutorSpec(max_step_m=0.05, controller="streaming"),
    )
    settings = resolve_executor(spec, overrides)
    return Executor(safety_config(settings)), settings


def _ahead(eef, dx: float = 0.05) -> ActionChunk:
    """A chunk whose every step is `dx` metres along +x from `eef`."""
    return _chunk([np.asarray(eef) + [dx, 0.0, 0.0]] * 4, [-1, -1, -1, -1])


def test_streaming_still_arm_at_22_hz_is_asked_for_max_speed_only():
    ex, settings = _streaming_executor(dt=0.2)  # no recorded speed: 0.05 m / 0.2 s
    assert settings.spec.max_speed_mps == pytest.approx(0.25, rel=1e-12)
    eef = np.array([0.1, 0.0, 0.5])
    steps = []
    for i in range(23):  # a first frame, then one second of frames at 22 Hz
        cmd, reason = ex.decide(_ahead(eef), eef, stamp_s=100.0 + i / 22)
        assert reason == ""
        steps.append(float(np.linalg.norm(cmd.position - eef)))
    # the first command has the model's period (0.2 s x 0.25 m/s = 5 cm, max_step_m)
    assert steps[0] == pytest.approx(0.05, rel=1e-12)
    # then 22 commands of 0.25 m/s / 22 = 11.36 mm each from the still EEF, not 5 cm
    np.testing.assert_allclose(steps[1:], 0.25 / 22, rtol=1e-9)


def test_streaming_following_arm_moves_max_speed_in_a_second_not_22_steps():
    """The arm reaches each command before the next frame and the model keeps predicting 5 cm
    ahead: in the second after the first frame it moves 22 x 0.25/22 = 0.25 m under streaming,
    22 x 5 cm = 1.1 m under reach_then_observe."""
    ex, _ = _streaming_executor(dt=0.2)
    lock_step = Executor(safety_config(ExecutorSpec(max_step_m=0.05)))
    for executor, step in ((ex, 0.25 / 22), (lock_step, 0.05)):
        eef = np.array([0.0, 0.0, 0.5])
        eef = executor.decide(_ahead(eef), eef, stamp_s=0.0)[0].position  # the first frame
        after_first, steps = eef.copy(), []
        for i in range(1, 23):
            cmd, _ = executor.decide(_ahead(eef), eef, stamp_s=i / 22)
            steps.append(float(np.linalg.norm(cmd.position - eef)))
            eef = cmd.position  # reached before the next frame
        np.testing.assert_allclose(steps, step, rtol=1e-9)
        assert eef[0] - after_first[0] == pytest.approx(22 * step, rel=1e-9)  # 0.25 m, 1.1 m


def test_streaming_frame_after_a_gap_is_bounded_by_max_step():
    ex, _ = _streaming_executor(dt=0.2)
    eef = np.array([0.0, 0.0, 0.5])
    ex.decide(_ahead(eef), eef, stamp_s=10.0)
    cmd, _ = ex.decide(_ahead(eef, 0.3), eef, stamp_s=12.0)  # 2 s later: 0.5 m of budget
    np.testing.assert_allclose(cmd.position, eef + [0.05, 0.0, 0.0], rtol=0, atol=1e-15)
    assert cmd.limits == ("max_step",)
    cmd, _ = ex.decide(_ahead(eef, 0.3), eef, stamp_s=12.01)  # 10 ms later: 2.5 mm
    np.testing.assert_allclose(cmd.position, eef + [0.0025, 0.0, 0.0], rtol=1e-9)
    assert cmd.limits == ("max_speed",) and cmd.clamped


def test_streaming_same_frame_again_gets_the_previous_bound_not_more():
    ex, _ = _streaming_executor(dt=0.2)
    eef = np.array([0.0, 0.0, 0.5])
    ex.decide(_ahead(eef), eef, stamp_s=5.0)
    first, _ = ex.decide(_ahead(eef), eef, stamp_s=5.04)  # 40 ms: 1 cm
    again, reason = ex.decide(_ahead(eef, -0.05), eef, stamp_s=5.04)  # answered again
    assert reason == ""
    assert np.linalg.norm(first.position - eef) == pytest.approx(0.01, rel=1e-9)
    np.testing.assert_allclose(again.position, eef - [0.01, 0.0, 0.0], rtol=1e-9)
    # a clock that jumped back: the previous bound again, then time counts from the new stamp
    back, _ = ex.decide(_ahead(eef), eef, stamp_s=1.0)
    assert np.linalg.norm(back.position - eef) == pytest.approx(0.01, rel=1e-9)
    nxt, _ = ex.decide(_ahead(eef), eef, stamp_s=1.02)
    assert np.linalg.norm(nxt.position - eef) == pytest.approx(0.005, rel=1e-9)
    # a refused frame publishes nothing: the next bound counts from the last command
    bad = _chunk([[np.nan, 0, 0.5]] * 4, [-1, -1, -1, -1])
    assert ex.decide(bad, eef, stamp_s=1.06)[0] is None
    cmd, _ = ex.decide(_ahead(eef), eef, stamp_s=1.1)  # 80 ms after 1.02
    assert np.linalg.norm(cmd.position - eef) == pytest.approx(0.02, rel=1e-9)


def test_streaming_rotation_at_22_hz_turns_max_angular_speed_over_22():
    from scipy.spatial.transform import Rotation

    ex, _ = _streaming_executor(dt=0.2, max_angular_speed_rps=0.5)
    eef = np.array([0.0, 0.0, 0.5])
    current = Rotation.from_euler("xyz", [np.pi, 0.0, 0.0])  # gripper pointing down
    target = current * Rotation.from_euler("z", np.pi / 2)  # a quarter turn about the tool z
    chunk = _chunk([eef] * 4, [-1, -1, -1, -1])
    chunk.quat_xyzw[:] = target.as_quat()
    chunk.euler[:] = target.as_euler("xyz")
    ex.decide(chunk, eef, stamp_s=0.0, eef_quat_xyzw=current.as_quat())
    cmd, _ = ex.decide(chunk, eef, stamp_s=1 / 22, eef_quat_xyzw=current.as_quat())
    turn = current.inv() * Rotation.from_quat(cmd.quat_xyzw)
    assert turn.magnitude() == pytest.approx(0.5 / 22, abs=1e-12)
    np.testing.assert_allclose(turn.as_rotvec(), [0.0, 0.0, 0.5 / 22], atol=1e-12)
    assert cmd.limits == ("max_angular_speed",) and cmd.clamped
    assert cmd.limits_text == "limited by max_angular_speed"


def test_reach_then_observe_decide_is_unchanged_by_stamps_and_orientation():
    chunk = _chunk([[0.0, 0.0, 0.5], [0.3, 0.0, 0.5], [0.2, 0.0, 0.5], [0.3, 0, 0.5]], [1] * 4)
    chunk.quat_xyzw[:] = [0.0, 0.0, 1.0, 0.0]
    a = Executor(safety_config(ExecutorSpec(execute_step=1)))
    b = Executor(safety_config(resolve_executor(_spec(execute_step=1), {})))
    eef = np.array([0.0, 0.0, 0.5])
    for i in range(5):
        ca, _ = a.decide(chunk, eef)
        cb, _ = b.decide(chunk, eef, stamp_s=i * 1e-3, eef_quat_xyzw=[0.0, 0.0, 0.0, 1.0])
        np.testing.assert_array_equal(ca.position, cb.position)
        np.testing.assert_array_equal(ca.quat_xyzw, cb.quat_xyzw)
        assert ca.limits == cb.limits == ("max_step",) and ca.step == cb.step
        eef = ca.position
    np.testing.assert_allclose(eef, [0.25, 0.0, 0.5], rtol=1e-12)  # 5 x 5 cm, time ignored


def test_controller_and_speed_overrides_name_their_source():
    spec = PolicySpec(
        window=WindowSpec(steps=4, dt=0.1),
        executor=ExecutorSpec(max_step_m=0.05, max_angular_speed_rps=0.8),
    )
    s = resolve_executor(
        spec, {"controller": "", "max_speed_mps": 0.0, "max_angular_speed_rps": 0.0}
    )
    assert s.spec.controller == "reach_then_observe" and s.period_s == 0.1
    assert s.spec.max_speed_mps == pytest.approx(0.5, rel=1e-12)  # 0.05 m / 0.1 s
    assert s.spec.max_angular_speed_rps == 0.8
    assert {s.sources[k] for k in ("controller", "max_speed_mps", "max_angular_speed_rps")} == {
        "model"
    }
    assert s.speed_limit_text() == (
        "reach_then_observe: <= 0.05 m per command (model); no speed bound (each target is "
        "reached before the next frame)"
    )
    s = resolve_executor(spec, {"controller": "streaming", "max_speed_mps": 0.25})
    assert s.sources["controller"] == s.sources["max_speed_mps"] == "parameter"
    assert s.sources["max_angular_speed_rps"] == "model"
    assert "controller=streaming (parameter)" in s.describe()
    assert "max_speed_mps=0.25 (parameter)" in s.describe()
    assert "max_angular_speed_rps=0.8 (model)" in s.describe()
    assert s.speed_limit_text() == (
        "streaming (parameter): <= 0.25 m/s (parameter) and 0.8 rad/s (model), "
        "<= 0.05 m per command (model)"
    )
    s = resolve_executor(spec.replace(executor=ExecutorSpec(controller="streaming")), {})
    assert s.speed_limit_text() == (
        "streaming: <= 0.5 m/s and 1 rad/s (model), <= 0.05 m per command (model)"
    )
    cfg = safety_config(s, workspace_min=(-1.0, -1.0, 0.0), workspace_max=(1.0, 1.0, 2.0))
    assert (cfg.controller, cfg.max_speed_mps, cfg.nominal_period_s) == ("streaming", 0.5, 0.1)
    assert cfg.workspace_min == (-1.0, -1.0, 0.0)


def test_bad_controller_and_speed_overrides_are_refused_with_the_key_path():
    spec = _spec()
    with pytest.raises(ValueError, match=r"`executor\.controller`: .*got 'servo'"):
        resolve_executor(spec, {"controller": "servo"})
    with pytest.raises(ValueError, match=r"`executor\.max_speed_mps`: must be .*got -0\.2"):
        resolve_executor(spec, {"max_speed_mps": -0.2})
    with pytest.raises(ValueError, match=r"`executor\.max_angular_speed_rps`: .*got nan"):
        resolve_executor(spec, {"max_angular_speed_rps": float("nan")})
    # a streaming gate without the model's period cannot bound a first command
    with pytest.raises(ValueError, match=r"pass the ExecutorSettings .* or nominal_period_s"):
        safety_config(ExecutorSpec(controller="streaming"))
    cfg = safety_config(ExecutorSpec(controller="streaming"), nominal_period_s=0.25)
    assert cfg.max_speed_mps == pytest.approx(0.2, rel=1e-12)  # unrecorded: 0.05 m / 0.25 s


def test_para_eval_sim_flags_reach_the_executor_and_the_ros_run():
    from para_ros.sim.evaluate import build_parser, executor_overrides, speed_parameters

    spec = _spec()
    args = build_parser().parse_args(["--model", "m.onnx"])
    s = resolve_executor(spec, executor_overrides(args))
    assert set(s.sources.values()) == {"model"} and speed_parameters(args) == []
    args = build_parser().parse_args(
        ["--model", "m.onnx", "--controller", "streaming", "--max-speed", "0.1"]
    )
    s = resolve_executor(spec, executor_overrides(args))
    assert (s.spec.controller, s.spec.max_speed_mps) == ("streaming", 0.1)
    assert s.sources["max_angular_speed_rps"] == "model"
    assert speed_parameters(args) == ["-p", "controller:=streaming", "-p", "max_speed:=0.1"]


def test_in_process_episode_executes_the_streaming_bound_per_nominal_period():
    """run_episode with a stand-in simulator (the servo reaches each target) and a policy
    that always predicts 5 cm ahead: 5 cm per frame lock-step, 0.1 m/s x 0.2 s = 2 cm per
    frame under streaming (frames carry no stamp: each gets the model's window.dt)."""
    import dataclasses
    import types

    from para_ros.sim.evaluate import run_episode

    @dataclasses.dataclass
    class Cfg:
        zero_rotation: bool = True

    class Sim:
        cfg, episode_seed, step_count = Cfg(), 0, 0
        layout = types.SimpleNamespace(index=0, source="official", record=lambda: {})

        def _obs(self):
            return types.SimpleNamespace(
                image=np.zeros((8, 8, 3), np.uint8),
                K=np.eye(3),
                T_world_cam=np.eye(4),
                eef_pos=self.eef.copy(),
                eef_quat=np.array([1.0, 0.0, 0.0, 0.0]),
            )

        def reset(self, init_state):
            self.eef, self.step_count = np.array([0.0, 0.0, 0.5]), 0
            return self._obs()

        def step_target(self, target, quat, grip):
            self.eef, self.step_count = np.asarray(target), self.step_count + 1
            return self._obs()

        def outcome(self):
            return "MISS" if self.step_count >= 4 else "RUNNING"

    class Policy:
        def infer(self, obs):
            return types.SimpleNamespace(chunk=_ahead(obs.eef_pos), inference_ms=1.0)

    spec = PolicySpec(window=WindowSpec(steps=4, dt=0.2), executor=ExecutorSpec())
    for overrides, step in (({}, 0.05), ({"controller": "streaming", "max_speed_mps": 0.1}, 0.02)):
        safety = safety_config(resolve_executor(spec, overrides))
        targets = np.array(run_episode(Sim(), Policy(), 0, safety)["targets"])
        np.testing.assert_allclose(targets[:, 0], step * np.arange(1, 5), rtol=1e-12)
