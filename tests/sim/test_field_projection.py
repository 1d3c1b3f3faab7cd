"""Ground truth for the field files (../shared/field-data): the simulator is put in each
recorded state of the official LIBERO file (`states`), and the EEF of every format, projected
with the camera that format's reader recovered, lands on the gripper in MuJoCo's own
segmentation of the 128 px agentview render (not a picture judged by eye)."""

from __future__ import annotations

import numpy as np
import pytest

from para_ros.core import geometry
from tests.ros_helpers.env import REPO

FIELD = REPO.parent / "shared" / "field-data"
pytestmark = pytest.mark.skipif(not FIELD.is_dir(), reason=f"{FIELD} not present")

GRIPPER_GEOMS = ("gripper0_finger1", "gripper0_finger2", "gripper0_hand")


@pytest.fixture(scope="module")
def masks():
    """(demo k -> (N, 128, 128) bool gripper pixels, upright) for the two LIBERO demos."""
    from para_ros.data.readers import load_episodes
    from para_ros.sim.libero_sim import LiberoSim, SimConfig

    eps = load_episodes(FIELD / "libero_official_layout")
    s = LiberoSim(SimConfig(image_size=128))
    try:
        m = s.sim.model
        ids = [i for i in range(m.ngeom) if (m.geom_id2name(i) or "").startswith(GRIPPER_GEOMS)]
        out = {}
        for k, ep in enumerate(eps):
            frames = []
            for state in ep.meta["sim_states"]:
                s.sim.set_state_from_flattened(state)
                s.sim.forward()
                seg = s.sim.render(
                    camera_name="agentview", width=128, height=128, segmentation=True
                )[::-1]
                frames.append(np.isin(seg[..., 1], ids) & (seg[..., 0] == 5))
            out[k] = (np.stack(frames), np.abs(ep.meta["gripper_qpos"]).sum(1))
    finally:
        s.close()
    return out


def _distances(ep, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: (px from the projected EEF to the nearest gripper pixel, px outside the
    convex hull of the gripper's pixels; 0 inside, e.g. between open fingers)."""
    import cv2

    near, hull_d = [], []
    for i in range(len(ep)):
        uv, depth = geometry.project(ep.eef_pos[i], ep.K_at(i), ep.T_world_cam_at(i))
        assert depth > 0
        rows, cols = np.nonzero(mask[i])
        assert len(rows) > 20, f"gripper not visible in frame {i}"
        pts = np.stack([cols, rows], 1).astype(np.float32) + 0.5
        near.append(np.min(np.hypot(pts[:, 0] - uv[0], pts[:, 1] - uv[1])))
        inside = cv2.pointPolygonTest(cv2.convexHull(pts), (float(uv[0]), float(uv[1])), True)
        hull_d.append(max(0.0, -inside))
    return np.asarray(near), np.asarray(hull_d)


@pytest.mark.parametrize("fmt", ["libero", "lerobot", "rosbag"])
def test_projected_eef_lands_on_the_gripper(fmt, masks):
    from para_ros.data.readers import load_episodes
    from tests.test_field_data import SOURCES

    path, _, source = SOURCES[fmt]
    eps = load_episodes(path, source)[:2]  # the same trajectories as the two LIBERO demos
    for k, ep in enumerate(eps):
        mask, opening = masks[k]
        assert len(ep) == len(mask)
        near, hull_d = _distances(ep, mask)
        assert hull_d.max() < 2.0, (fmt, k, hull_d.max())
        closed = opening < 0.01  # fingers closed: the EEF point is covered by them
        assert closed.sum() >= 10
        assert near[closed].max() < 2.0, (fmt, k, near[closed].max())
        # the check can fail: the same EEF with the image upside down lands far off
        flipped = ep.eef_pos.copy()
        uv, _ = geometry.project(flipped, ep.K_at(0), ep.T_world_cam_at(0))
        uv[:, 1] = 128 - uv[:, 1]
        rows, cols = np.nonzero(mask[0])
        assert np.min(np.hypot(cols + 0.5 - uv[0, 0], rows + 0.5 - uv[0, 1])) > 10.0
