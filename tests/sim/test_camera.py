"""The LIBERO camera model: projection lands on the gripper in the real render (MuJoCo
segmentation, not a picture by eye), and lifting recovers the EEF; also after a 20 deg orbit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from para_ros.core import geometry
from para_ros.sim.libero_sim import LiberoSim, SimConfig, SimError

GRIPPER_GEOMS = ("gripper0_finger1", "gripper0_finger2", "gripper0_hand")


def gripper_pixels(s: LiberoSim) -> np.ndarray:
    """(H, W) bool: pixels whose visible geom belongs to the gripper (upright image)."""
    n = s.cfg.image_size
    seg = s.sim.render(camera_name="agentview", width=n, height=n, segmentation=True)[::-1]
    geom_ids = seg[..., 1]
    m = s.sim.model
    ids = [i for i in range(m.ngeom) if (m.geom_id2name(i) or "").startswith(GRIPPER_GEOMS)]
    return np.isin(geom_ids, ids) & (seg[..., 0] == 5)  # mjOBJ_GEOM = 5


def check_projection(s: LiberoSim, obs) -> tuple[float, float]:
    """(distance in px from the projected EEF to the nearest gripper pixel, lift error in mm)."""
    uv, depth = geometry.project(obs.eef_pos, obs.K, obs.T_world_cam)
    assert depth > 0
    mask = gripper_pixels(s)
    assert mask.sum() > 30, "gripper not visible"
    rows, cols = np.nonzero(mask)
    d = np.min(np.hypot(cols + 0.5 - uv[0], rows + 0.5 - uv[1]))
    back = geometry.lift_point(uv, obs.eef_pos[2], obs.K, obs.T_world_cam)
    return float(d), float(np.linalg.norm(back - obs.eef_pos) * 1e3)


@pytest.mark.parametrize("init_state", [0, 3])
def test_projected_eef_is_on_the_gripper(sim, init_state):
    obs = sim.reset(init_state)
    # close the fingers so the EEF site (between the fingertips) is covered by them
    obs = sim.step_target(obs.eef_pos + [0.0, 0.0, -0.05], None, 1.0)
    dist_px, lift_mm = check_projection(sim, obs)
    assert dist_px < 3.0  # at 224 px a finger is ~4 px wide
    assert lift_mm < 2.0


def test_after_a_20_degree_orbit():
    s = LiberoSim(SimConfig(camera_theta_deg=20.0, camera_phi_deg=0.0))
    try:
        obs = s.reset(0)
        obs = s.step_target(obs.eef_pos + [0.0, 0.0, -0.05], None, 1.0)
        dist_px, lift_mm = check_projection(s, obs)
        assert dist_px < 3.0 and lift_mm < 2.0
        s2_T = obs.T_world_cam
        # the orbit really moved the camera by 20 degrees about the table point
        s.cfg = dataclasses.replace(s.cfg, camera_theta_deg=0.0)
        s._apply_camera()
        T0 = s.camera_pose()
        cosang = (np.trace(T0[:3, :3].T @ s2_T[:3, :3]) - 1) / 2
        assert np.degrees(np.arccos(np.clip(cosang, -1, 1))) == pytest.approx(20.0, abs=1e-6)
    finally:
        s.close()


def test_colliding_shift_is_refused(sim):
    sim.reset(0)
    plate = sim.object_pos("plate_1")
    bowl = sim.object_pos()
    d = plate - bowl
    s = dataclasses.replace(sim.cfg, shift_dx=float(d[0]), shift_dy=float(d[1]))
    sim.cfg = s
    try:
        with pytest.raises(SimError, match="makes objects interpenetrate"):
            sim.reset(0)
    finally:
        sim.cfg = dataclasses.replace(s, shift_dx=0.0, shift_dy=0.0)
