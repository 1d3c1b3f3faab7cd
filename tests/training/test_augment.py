"""Camera-rotation and orbit augmentation without a renderer: dots drawn at projected world
points move exactly where the rotated (or, for points on the table plane, the orbited) camera
projects them, and the dataset's labels follow the image."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from para_ros.core import geometry
from para_training.data import augment


def _camera():
    K = geometry.intrinsics(110.0, 110.0, 64.0, 64.0)
    T = np.eye(4)
    T[:3, 3] = [0.0, 0.0, -1.0]  # looking along +z at the origin
    return K, T


def _dots(uv: np.ndarray, size: int = 128) -> np.ndarray:
    img = np.zeros((size, size, 3), np.uint8)
    for u, v in uv:
        i, j = int(np.floor(v)), int(np.floor(u))
        img[i - 1 : i + 2, j - 1 : j + 2] = 255
    return img


def _centroid(img: np.ndarray, near: np.ndarray, r: int = 5) -> np.ndarray:
    u0, v0 = int(near[0]), int(near[1])
    patch = img[v0 - r : v0 + r + 1, u0 - r : u0 + r + 1, 0].astype(np.float64)
    vs, us = np.mgrid[v0 - r : v0 + r + 1, u0 - r : u0 + r + 1]
    w = patch.sum()
    return np.array([(us * patch).sum() / w + 0.5, (vs * patch).sum() / w + 0.5])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dots_land_where_the_rotated_camera_projects_them(seed):
    rng = np.random.default_rng(seed)
    K, T = _camera()
    grid = np.stack(np.meshgrid([-0.25, 0.0, 0.25], [-0.2, 0.2]), -1).reshape(-1, 2)  # (6, 2)
    pts = np.c_[grid + rng.uniform(-0.03, 0.03, (6, 2)), rng.uniform(-0.1, 0.1, 6)]  # (6, 3)
    uv0, _ = geometry.project(pts, K, T)
    # dots centred on pixel centres, so the original centroid is the projection to 0.5 px
    img = _dots(uv0)
    R = augment.random_rotation(rng, 10.0)
    T1 = augment.rotated_pose(T, R)
    uv1, _ = geometry.project(pts, K, T1)
    warped = augment.warp_image(img, augment.rotation_homography(K, R))
    for before, after in zip(uv0, uv1, strict=True):
        expected = np.floor(before) + 0.5  # where the dot's centre was drawn
        h = augment.rotation_homography(K, R) @ np.r_[expected, 1.0]
        np.testing.assert_allclose(_centroid(warped, after), h[:2] / h[2], atol=0.3)
        assert np.linalg.norm(h[:2] / h[2] - after) < 0.75  # the label, up to the dot's snap


def test_rotation_keeps_the_camera_centre_and_is_a_rotation():
    rng = np.random.default_rng(4)
    _, T = _camera()
    for _ in range(20):
        R = augment.random_rotation(rng, 15.0)
        angle = np.degrees(np.arccos(np.clip((np.trace(R) - 1) / 2, -1, 1)))
        assert angle <= 15.0 + 1e-9
        T1 = augment.rotated_pose(T, R)
        np.testing.assert_allclose(T1[:3, 3], T[:3, 3])
        np.testing.assert_allclose(T1[:3, :3] @ T1[:3, :3].T, np.eye(3), atol=1e-12)


def test_dataset_labels_follow_the_rotated_image(tmp_path, episodes):
    """With rotation on every sample, the start keypoint is the EEF projected with the rotated
    pose the item returns, and the image differs from the unaugmented one."""
    from para_training.data.dataset import ParaWindowDataset, sample_index
    from para_training.train import make_spec
    from tests.conftest import tiny_configs

    data, hparams, _ = tiny_configs(tmp_path, epochs=1)
    tiny_spec, _ = make_spec(episodes, data, hparams, log=lambda *_: None)
    tiny_episodes = episodes
    index = sample_index(tiny_episodes, [0])[:6]
    plain = ParaWindowDataset(tiny_episodes, tiny_spec, index)
    cfg = augment.AugmentConfig(rotation_deg=12.0, rotation_prob=1.0)
    aug = ParaWindowDataset(tiny_episodes, tiny_spec, index, cfg)
    torch.manual_seed(0)
    changed = 0
    for k in range(len(index)):
        a, p = aug[k], plain[k]
        e, f = index[k]
        ep = tiny_episodes[e]
        T = a["T_world_cam"].numpy()
        uv, _ = geometry.project(ep.eef_pos[f], a["K"].numpy(), T)
        np.testing.assert_allclose(a["start"][:2].numpy(), uv, atol=1e-4)
        h, w = tiny_spec.image.height, tiny_spec.image.width
        assert 0 <= uv[0] < w and 0 <= uv[1] < h
        np.testing.assert_allclose(a["target_pos"].numpy(), p["target_pos"].numpy())
        np.testing.assert_array_equal(a["gripper_bin"].numpy(), p["gripper_bin"].numpy())
        changed += not np.allclose(T, p["T_world_cam"].numpy())
    assert changed >= len(index) - 1  # a draw may keep the camera when the EEF would leave


def _tilted_camera():
    """A camera 1.1 m from the table point (0, 0, 0.9) looking down at it at 40 deg, like
    LIBERO's agentview."""
    K = geometry.intrinsics(154.0, 154.0, 64.0, 64.0)
    pivot = np.array([0.0, 0.0, 0.9])
    elev = np.radians(40.0)
    centre = pivot + 1.1 * np.array([np.cos(elev), 0.0, np.sin(elev)])
    z = (pivot - centre) / np.linalg.norm(pivot - centre)  # optical axis
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    T = np.eye(4)
    T[:3, :3] = np.column_stack([x, np.cross(z, x), z])
    T[:3, 3] = centre
    return K, T, pivot


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_table_dots_land_where_the_orbited_camera_projects_them(seed):
    rng = np.random.default_rng(seed)
    K, T, pivot = _tilted_camera()
    np.testing.assert_allclose(geometry.axis_plane_point(T, 0.9), pivot, atol=1e-12)
    grid = np.stack(np.meshgrid([-0.12, 0.0, 0.12], [-0.12, 0.12]), -1).reshape(-1, 2)  # (6, 2)
    table = np.c_[grid + rng.uniform(-0.01, 0.01, (6, 2)), np.full(6, 0.9)]  # (6, 3) on plane
    T1 = augment.random_orbit(rng, T, 15.0, 0.9)
    # an orbit: same distance to the pivot, still looking at it, within 15 deg
    assert np.linalg.norm(T1[:3, 3] - pivot) == pytest.approx(1.1)
    np.testing.assert_allclose(geometry.axis_plane_point(T1, 0.9), pivot, atol=1e-9)
    swing = np.degrees(np.arccos(np.clip(T[:3, 2] @ T1[:3, 2], -1, 1)))
    assert swing <= 15.0 + 1e-9
    H = geometry.plane_homography(K, T, T1, 0.9)
    uv0, _ = geometry.project(table, K, T)
    uv1, _ = geometry.project(table, K, T1)
    mapped = np.c_[uv0, np.ones(6)] @ H.T
    np.testing.assert_allclose(mapped[:, :2] / mapped[:, 2:], uv1, atol=1e-9)
    warped = augment.warp_image(_dots(uv0), H)
    for before, after in zip(uv0, uv1, strict=True):
        h = H @ np.r_[np.floor(before) + 0.5, 1.0]  # where the dot's centre was drawn
        np.testing.assert_allclose(_centroid(warped, after), h[:2] / h[2], atol=0.3)

    # off the plane the warp is wrong by the parallax, which grows with the height
    def parallax(h: float) -> np.ndarray:
        pts = table + [0.0, 0.0, h]
        p0, _ = geometry.project(pts, K, T)
        p1, _ = geometry.project(pts, K, T1)
        m = np.c_[p0, np.ones(6)] @ H.T
        return np.linalg.norm(m[:, :2] / m[:, 2:] - p1, axis=1)

    assert parallax(0.0).max() < 1e-9
    if swing > 2.0:
        small, large = parallax(0.1), parallax(0.2)
        assert (small > 0.1).all() and (large > 1.7 * small).all(), (small, large)


def test_dataset_labels_follow_the_orbited_image(tmp_path, episodes):
    """With an orbit on every sample, the start keypoint is the EEF projected with the orbited
    pose the item returns; the world targets do not change."""
    from para_training.data.dataset import ParaWindowDataset, sample_index
    from para_training.train import make_spec
    from tests.conftest import tiny_configs

    data, hparams, _ = tiny_configs(tmp_path, epochs=1)
    spec, _ = make_spec(episodes, data, hparams, log=lambda *_: None)
    index = sample_index(episodes, [0])[:6]
    plain = ParaWindowDataset(episodes, spec, index)
    z = float(episodes[0].eef_pos[:, 2].min())
    cfg = augment.AugmentConfig(orbit_deg=12.0, orbit_prob=1.0, plane_z=z)
    aug = ParaWindowDataset(episodes, spec, index, cfg)
    torch.manual_seed(0)
    changed = 0
    for k in range(len(index)):
        a, p = aug[k], plain[k]
        e, f = index[k]
        T = a["T_world_cam"].numpy()
        uv, _ = geometry.project(episodes[e].eef_pos[f], a["K"].numpy(), T)
        np.testing.assert_allclose(a["start"][:2].numpy(), uv, atol=1e-4)
        np.testing.assert_allclose(a["target_pos"].numpy(), p["target_pos"].numpy())
        T0 = p["T_world_cam"].numpy()
        pivot = geometry.axis_plane_point(T0, z)
        assert np.linalg.norm(T[:3, 3] - pivot) == pytest.approx(np.linalg.norm(T0[:3, 3] - pivot))
        changed += not np.allclose(T, T0)
    assert changed >= len(index) - 1


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="rotation_deg"):
        augment.AugmentConfig(rotation_deg=-1.0)
    with pytest.raises(ValueError, match="color"):
        augment.AugmentConfig(color=1.5)
    with pytest.raises(ValueError, match="orbit_deg"):
        augment.AugmentConfig(orbit_deg=75.0, plane_z=0.9)
    with pytest.raises(ValueError, match="plane_z"):
        augment.AugmentConfig(orbit_deg=10.0)
