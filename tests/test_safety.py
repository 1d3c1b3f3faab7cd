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
