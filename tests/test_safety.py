"""Command gating with a StallGuard advance, and the guard's still-step counting."""

from __future__ import annotations

import numpy as np
import pytest

from para_ros.core.action_codec import ActionChunk
from para_ros.runtime.safety import SafetyConfig, StallGuard, gate


def _chunk(positions: np.ndarray, gripper: np.ndarray) -> ActionChunk:
    T = len(positions)
    return ActionChunk(
        positions=positions,
        valid=np.ones(T, bool),
        reasons=np.array([""] * T),
        pixels=np.zeros((T, 2)),
        heights=positions[:, 2],
        euler=np.zeros((T, 3)),
        quat_xyzw=np.tile([0.0, 0.0, 0.0, 1.0], (T, 1)),
        rotation_bins=np.zeros(T, np.int64),
        gripper=gripper,
        gripper_bins=np.zeros(T, np.int64),
        confidence=np.ones(T),
        voxel=np.zeros((T, 3), np.int64),
    )


def test_advance_executes_a_later_step_capped_at_the_chunk_end():
    pos = np.array([[0.0, 0, 1], [0.0, 0, 1.02], [0.0, 0, 1.04], [0.0, 0, 1.06]])
    chunk = _chunk(pos, np.array([-1.0, -1.0, 1.0, 1.0]))
    cfg = SafetyConfig(max_step_m=0.5)
    eef = np.zeros(3) + [0, 0, 1]
    assert gate(chunk, eef, cfg)[0].step == 0
    cmd, _ = gate(chunk, eef, cfg, advance=2)
    assert cmd.step == 2 and cmd.gripper == 1.0
    np.testing.assert_allclose(cmd.position, pos[2])
    assert gate(chunk, eef, cfg, advance=9)[0].step == 3


def test_stall_guard_counts_still_steps_and_resets_on_motion_or_gripper_change():
    guard = StallGuard(patience=3, tolerance_m=0.002)
    p = np.array([0.1, 0.2, 0.9])
    advances = [guard.observe(p + [0.0005 * k, 0, 0], -1.0) for k in range(8)]
    # the first call has no previous pose; then 1 mm moves are "still": 3 still -> advance 1,
    # 6 still -> advance 2
    assert advances == [0, 0, 0, 1, 1, 1, 2, 2]
    assert guard.observe(p + [0.01, 0, 0], -1.0) == 0  # moved 1 cm: reset
    assert [guard.observe(p + [0.01, 0, 0], -1.0) for _ in range(3)] == [0, 0, 1]
    assert guard.observe(p + [0.01, 0, 0], 1.0) == 0  # gripper command changed: reset


def test_stall_guard_off_never_advances():
    guard = StallGuard(patience=0)
    assert all(guard.observe(np.zeros(3), -1.0) == 0 for _ in range(50))
    with pytest.raises(ValueError, match="patience"):
        StallGuard(-1)
    with pytest.raises(ValueError, match="stall_patience"):
        SafetyConfig(stall_patience=-2)


def test_every_refusal_code_is_a_documented_policy_action_status():
    """gate's Reason codes are exactly the PolicyAction STATUS_REFUSED_* constants (the
    message lists every status an executor can see)."""
    import inspect
    import re

    from para_ros.msg import PolicyAction
    from para_ros.runtime import safety

    codes = set(re.findall(r'Reason\(\s*"(\w+)"', inspect.getsource(safety.gate)))
    statuses = {
        getattr(PolicyAction, k) for k in dir(PolicyAction) if k.startswith("STATUS_REFUSED_")
    }
    assert codes == statuses and len(codes) == 5
    assert PolicyAction.STATUS_OK == "ok" and PolicyAction.STATUS_OK_CLAMPED == "ok_clamped"


@pytest.mark.parametrize("d", [5.0, 1e30])
def test_commands_never_leave_the_workspace_box(d):
    """The tester's case: an EEF pose far outside the box (5 m, 1e30 m away) used to give a
    clamped target outside the box (clip first, then the step limit from outside)."""
    cfg = SafetyConfig(workspace_min=(-1.0, -1.0, 0.0), workspace_max=(1.0, 1.0, 2.0))
    chunk = _chunk(np.array([[0.2, 0.0, 0.9]] * 4), np.zeros(4))
    cmd, reason = gate(chunk, np.array([0.0, 0.0, -d]), cfg)
    assert cmd is None and reason.code == "refused_eef"
    assert "outside the workspace box" in reason
    # inside the box: clip, then limit the step; every result stays in the box
    rng = np.random.default_rng(0)
    for _ in range(200):
        eef = rng.uniform([-1, -1, 0], [1, 1, 2])
        far = _chunk(rng.uniform(-50, 50, (4, 3)), np.zeros(4))
        cmd, _ = gate(far, eef, cfg)
        assert np.all(cmd.position >= [-1, -1, 0]) and np.all(cmd.position <= [1, 1, 2])
        assert np.linalg.norm(cmd.position - eef) <= cfg.max_step_m + 1e-12


def _streaming(**kw) -> SafetyConfig:
    base = dict(
        controller="streaming",
        max_step_m=0.05,
        max_speed_mps=0.25,
        max_angular_speed_rps=1.0,
        nominal_period_s=0.1,
    )
    return SafetyConfig(**{**base, **kw})


def test_streaming_bounds_a_command_by_speed_times_elapsed_and_names_the_limit():
    cfg = _streaming()
    eef = np.array([0.0, 0.0, 1.0])
    chunk = _chunk(np.array([[0.05, 0.0, 1.0]] * 4), np.zeros(4))  # 5 cm along +x
    cmd, reason = gate(chunk, eef, cfg, elapsed_s=1 / 22)
    assert reason == ""
    np.testing.assert_allclose(cmd.position, [0.25 / 22, 0.0, 1.0], rtol=0, atol=1e-15)
    assert cmd.clamped and cmd.limits == ("max_speed",)
    assert cmd.limits_text == "limited by max_speed"
    # no stamp: the nominal period (0.1 s -> 2.5 cm)
    cmd, _ = gate(chunk, eef, cfg)
    np.testing.assert_allclose(cmd.position, [0.025, 0.0, 1.0], rtol=0, atol=1e-15)
    # 2 s since the previous command: 0.5 m of speed budget, max_step_m (5 cm) bounds
    far = _chunk(np.array([[0.3, 0.0, 1.0]] * 4), np.zeros(4))
    cmd, _ = gate(far, eef, cfg, elapsed_s=2.0)
    np.testing.assert_allclose(cmd.position, [0.05, 0.0, 1.0], rtol=0, atol=1e-15)
    assert cmd.limits == ("max_step",)
    # within both bounds: unchanged, not clamped
    near = _chunk(np.array([[0.004, 0.0, 1.0]] * 4), np.zeros(4))
    cmd, _ = gate(near, eef, cfg, elapsed_s=1 / 22)
    assert not cmd.clamped and cmd.limits == () and cmd.limits_text == ""


def test_streaming_with_no_time_elapsed_allows_no_motion_and_refuses_nothing():
    cfg = _streaming()
    eef = np.array([0.1, 0.2, 1.0])
    chunk = _chunk(np.array([[0.15, 0.2, 1.0]] * 4), np.zeros(4))
    for elapsed in (0.0, -0.3):
        cmd, reason = gate(chunk, eef, cfg, elapsed_s=elapsed, current_quat_xyzw=[0, 0, 0, 1])
        assert reason == "" and cmd.limits == ("max_speed",)
        np.testing.assert_array_equal(cmd.position, eef)


def test_streaming_names_the_workspace_and_the_speed_limit_together():
    cfg = _streaming(workspace_min=(-1.0, -1.0, 0.9), workspace_max=(1.0, 1.0, 2.0))
    eef = np.array([0.0, 0.0, 1.0])
    chunk = _chunk(np.array([[0.0, 0.0, 0.5]] * 4), np.zeros(4))  # below the box
    cmd, _ = gate(chunk, eef, cfg, elapsed_s=0.1)
    np.testing.assert_allclose(cmd.position, [0.0, 0.0, 0.975], rtol=0, atol=1e-15)
    assert cmd.limits == ("workspace", "max_speed")
    assert cmd.limits_text == "limited by workspace, max_speed"


def test_streaming_rotation_is_slerped_to_the_angular_speed():
    from scipy.spatial.transform import Rotation

    cfg = _streaming()
    chunk = _chunk(np.array([[0.0, 0.0, 1.0]] * 4), np.zeros(4))
    target = Rotation.from_euler("xyz", [0.0, 0.0, np.pi / 2])
    chunk.quat_xyzw[:] = target.as_quat()
    chunk.euler[:] = target.as_euler("xyz")
    current = Rotation.from_euler("xyz", [0.3, 0.0, 0.0])
    eef = np.array([0.0, 0.0, 1.0])
    cmd, _ = gate(chunk, eef, cfg, elapsed_s=0.1, current_quat_xyzw=current.as_quat())
    got = Rotation.from_quat(cmd.quat_xyzw)
    assert (current.inv() * got).magnitude() == pytest.approx(0.1, abs=1e-12)  # 1 rad/s x 0.1 s
    full = (current.inv() * target).magnitude()
    assert (got.inv() * target).magnitude() == pytest.approx(full - 0.1, abs=1e-12)  # on the arc
    np.testing.assert_allclose(cmd.euler, got.as_euler("xyz"), atol=1e-12)
    np.testing.assert_array_equal(cmd.position, eef)  # the position was already there
    assert cmd.clamped and cmd.limits == ("max_angular_speed",)
    # 2 s: 2 rad of budget exceeds the rotation (full < pi): the target itself
    cmd, _ = gate(chunk, eef, cfg, elapsed_s=2.0, current_quat_xyzw=current.as_quat())
    np.testing.assert_array_equal(cmd.quat_xyzw, chunk.quat_xyzw[0])
    assert not cmd.clamped and cmd.limits == ()
    # a broken EEF orientation is refused with the reason
    cmd, reason = gate(chunk, eef, cfg, elapsed_s=0.1, current_quat_xyzw=[0.0, 0, 0, 0])
    assert cmd is None and reason.code == "refused_eef"
    assert "not a finite non-zero (x, y, z, w) quaternion" in reason


def test_reach_then_observe_ignores_time_and_orientation():
    cfg = SafetyConfig(max_step_m=0.05, max_speed_mps=0.01, max_angular_speed_rps=0.1)
    rng = np.random.default_rng(3)
    for _ in range(50):
        eef = rng.uniform(-0.5, 0.5, 3)
        chunk = _chunk(rng.uniform(-1, 1, (4, 3)), np.zeros(4))
        chunk.quat_xyzw[:] = [0.0, 0.0, np.sin(0.7), np.cos(0.7)]
        plain, _ = gate(chunk, eef, cfg)
        timed, _ = gate(chunk, eef, cfg, 0, 0.001, [1.0, 0.0, 0.0, 0.0])
        np.testing.assert_array_equal(plain.position, timed.position)
        np.testing.assert_array_equal(plain.quat_xyzw, timed.quat_xyzw)
        assert plain.limits == timed.limits and plain.clamped == timed.clamped
        assert np.linalg.norm(plain.position - eef) <= 0.05 + 1e-12


def test_streaming_config_needs_its_speeds_and_period():
    with pytest.raises(ValueError, match="nominal_period_s is required by the streaming"):
        _streaming(nominal_period_s=None)
    with pytest.raises(ValueError, match=r"max_speed_mps must be a finite number > 0, got 0\.0"):
        _streaming(max_speed_mps=0.0)
    with pytest.raises(ValueError, match=r"max_angular_speed_rps must be a finite .* got inf"):
        _streaming(max_angular_speed_rps=float("inf"))
    with pytest.raises(ValueError, match=r"controller must be one of .*got 'servo'"):
        SafetyConfig(controller="servo")
