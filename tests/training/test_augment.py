"""Camera-rotation and orbit augmentation without a renderer: dots drawn at projected world
points move exactly where the rotated (or, for points on the table plane, the orbited) camera
projects them; with a depth image, dots at any height do; and the dataset's labels follow the
image."""

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


def _plane_depth_mm(K: np.ndarray, T: np.ndarray, z: float, n: int = 128) -> np.ndarray:
    """(n, n) uint16 optical-axis depth of the plane at height z seen by the camera T."""
    v, u = np.mgrid[0:n, 0:n] + 0.5
    rays = np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(K).T  # (n, n, 3) camera
    world_dirs = rays @ T[:3, :3].T  # (n, n, 3)
    t = (z - T[2, 3]) / world_dirs[..., 2]  # ray parameter = optical-axis depth (rays z = 1)
    return np.rint(t * 1000.0).astype(np.uint16)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_depth_warp_moves_dots_at_any_height_where_the_orbited_camera_sees_them(seed):
    """Dots 0, 10 and 20 cm above the table, each with its own depth: the depth warp puts them
    where the orbited camera projects them (to half a pixel), where the table
    plane's homography is off by their parallax."""
    rng = np.random.default_rng(seed)
    K, T, _ = _tilted_camera()
    grid = np.stack(np.meshgrid([-0.15, 0.15], [-0.15, 0.0, 0.15]), -1).reshape(-1, 2)  # (6, 2)
    heights = np.array([0.0, 0.1, 0.2, 0.2, 0.1, 0.0])
    pts = np.c_[grid + rng.uniform(-0.01, 0.01, (6, 2)), 0.9 + heights]  # (6, 3) world
    uv0, z0 = geometry.project(pts, K, T)
    img = _dots(uv0)
    depth = _plane_depth_mm(K, T, 0.9)
    for (u, v), z in zip(uv0, z0, strict=True):  # each dot a small patch at its own depth
        i, j = int(np.floor(v)), int(np.floor(u))
        depth[i - 1 : i + 2, j - 1 : j + 2] = round(z * 1000)
    T1 = augment.random_orbit(rng, T, 15.0, 0.9)
    warped, valid = augment.depth_warp(img, depth, K, T, T1)
    assert valid.mean() > 0.7  # the rest: outside the original image
    # each drawn dot's centre (a pixel centre) at its depth, seen by the orbited camera
    drawn = np.floor(uv0) + 0.5  # (6, 2)
    rays = np.c_[drawn, np.ones(6)] @ np.linalg.inv(K).T  # (6, 3) camera, z = 1
    seen = T[:3, 3] + (rays * (np.rint(z0 * 1000) / 1000)[:, None]) @ T[:3, :3].T  # (6, 3)
    uv1, _ = geometry.project(seen, K, T1)
    gaps = np.linalg.norm(uv1[:, None] - uv1[None], axis=-1) + 99 * np.eye(6)
    assert gaps.min() > 12  # each centroid window (11 px) holds one dot
    H = geometry.plane_homography(K, T, T1, 0.9)
    plane = augment.warp_image(img, H)
    for k, after in enumerate(uv1):
        # within half a pixel: bilinear resampling blurs the 3 px dot's edges
        np.testing.assert_allclose(_centroid(warped, after), after, atol=0.5)
        if heights[k] == 0.2 and np.linalg.norm(T1[:3, 2] - T[:3, 2]) > np.radians(5):
            assert np.linalg.norm(_centroid(plane, after, r=8) - after) > 1.5


def test_depth_warp_of_the_same_camera_is_the_identity():
    K, T, _ = _tilted_camera()
    img = np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8)
    out, valid = augment.depth_warp(img, _plane_depth_mm(K, T, 0.9), K, T, T)
    assert valid.all()
    assert np.abs(out.astype(int) - img).max() <= 1


def test_depth_warp_leaves_what_the_camera_never_saw_black():
    """No depth reading (0) anywhere: nothing can be drawn, every pixel is black and invalid."""
    K, T, _ = _tilted_camera()
    img = np.full((128, 128, 3), 200, np.uint8)
    out, valid = augment.depth_warp(img, np.zeros((128, 128), np.uint16), K, T, T)
    assert not valid.any() and not out.any()


def test_depth_orbit_needs_depth(tmp_path, episodes):
    from para_training.data.dataset import ParaWindowDataset, sample_index
    from para_training.train import make_spec
    from tests.conftest import tiny_configs

    K, T, _ = _tilted_camera()
    cfg = augment.AugmentConfig(orbit_deg=10.0, orbit_prob=1.0, plane_z=0.9, orbit_warp="depth")
    img = np.zeros((128, 128, 3), np.uint8)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="depth image"):
        augment.augment_view(img, K, T, np.array([[0.0, 0.0, 0.95]]), cfg, rng)
    data, hparams, _ = tiny_configs(tmp_path, epochs=1)
    spec, _ = make_spec(episodes, data, hparams, log=lambda *_: None)
    assert episodes[0].depth is None
    with pytest.raises(ValueError, match="training episodes have none"):
        ParaWindowDataset(episodes, spec, sample_index(episodes, [0]), cfg)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="orbit_warp"):
        augment.AugmentConfig(orbit_warp="mesh")
    with pytest.raises(ValueError, match="rotation_deg"):
        augment.AugmentConfig(rotation_deg=-1.0)
    with pytest.raises(ValueError, match="color"):
        augment.AugmentConfig(color=1.5)
    with pytest.raises(ValueError, match="orbit_deg"):
        augment.AugmentConfig(orbit_deg=75.0, plane_z=0.9)
    with pytest.raises(ValueError, match="plane_z"):
        augment.AugmentConfig(orbit_deg=10.0)


def _front_camera():
    """A camera looking down at the table from in front, as LIBERO's agentview (no roll)."""
    K = geometry.intrinsics(110.0, 110.0, 64.0, 64.0)
    eye, target = np.array([0.9, 0.1, 1.6]), np.array([0.0, 0.05, 0.9])
    z = (target - eye) / np.linalg.norm(target - eye)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    T = np.eye(4)
    T[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)  # OpenCV: x right, y down, z forward
    T[:3, 3] = eye
    return K, T


@pytest.mark.parametrize("cx", [64.0, 60.5])
def test_mirror_draws_the_reflected_scene(cx):
    """Dots at world points of any height: in the flipped image they sit where K' projects the
    reflected points; heights are kept (vertical mirror plane), the camera centre is on it."""
    K, T = _front_camera()
    K[0, 2] = cx
    rng = np.random.default_rng(0)
    pts = np.column_stack(
        [rng.uniform(-0.2, 0.2, 6), rng.uniform(-0.2, 0.2, 6), [0.9] * 3 + [1.1] * 3]
    )
    uv, _ = geometry.project(pts, K, T)
    dots = _dots(uv)
    img, K2, M = augment.mirror(dots, K, T)
    moved = augment.reflect_points(M, pts)
    uv2, _ = geometry.project(moved, K2, T)
    for before, after in zip(uv, uv2, strict=True):  # each dot drawn where K' projects M p
        seen, drawn = _centroid(dots, before), _centroid(img, after)
        np.testing.assert_allclose(drawn, [128.0 - seen[0], seen[1]], atol=1e-9)
    np.testing.assert_allclose(uv2[:, 0], 128.0 - uv[:, 0], atol=1e-9)  # the flip itself
    np.testing.assert_allclose(uv2[:, 1], uv[:, 1], atol=1e-9)
    np.testing.assert_allclose(moved[:, 2], pts[:, 2], atol=1e-12)  # heights unchanged
    assert np.linalg.det(M[:3, :3]) == pytest.approx(-1.0)
    np.testing.assert_allclose(M @ M, np.eye(4), atol=1e-12)  # a reflection
    np.testing.assert_allclose(augment.reflect_points(M, T[:3, 3]), T[:3, 3], atol=1e-12)
    assert K2[0, 2] == 128.0 - cx


def test_reflected_orientation_mirrors_the_yaw():
    """A mirror plane containing the world z axis turns a yaw psi into -psi about its normal:
    for the plane x = 0, R_z(psi) -> R_z(-psi), and the result is a rotation."""
    T = np.eye(4)
    T[:3, :3] = [[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]]  # camera x = world x, looking along +y
    M = T @ np.diag([-1.0, 1, 1, 1]) @ np.linalg.inv(T)
    np.testing.assert_allclose(M[:3, :3], np.diag([-1.0, 1, 1]), atol=1e-12)
    euler = np.array([[0.0, 0.0, 0.3], [np.pi, 0.0, 0.5]])  # gripper up / pointing down
    got = augment.reflect_euler(M, euler)
    np.testing.assert_allclose(got[0], [0.0, 0.0, -0.3], atol=1e-12)
    np.testing.assert_allclose(got[1], [np.pi, 0.0, -0.5], atol=1e-12)


def test_dataset_labels_follow_the_mirrored_image(tmp_path, episodes):
    """With every sample mirrored: the image is the plain one flipped, the start keypoint and
    every target pixel are those of the reflected world points through K', heights and the
    gripper labels are the plain ones."""
    from para_training.data.dataset import ParaWindowDataset, sample_index
    from para_training.train import make_spec
    from tests.conftest import tiny_configs

    data, hparams, _ = tiny_configs(tmp_path, epochs=1)
    spec, _ = make_spec(episodes, data, hparams, log=lambda *_: None)
    index = sample_index(episodes, [0])[:6]
    plain = ParaWindowDataset(episodes, spec, index)
    aug = ParaWindowDataset(episodes, spec, index, augment.AugmentConfig(mirror_prob=1.0))
    torch.manual_seed(0)
    for k in range(len(index)):
        a, p = aug[k], plain[k]
        e, f = index[k]
        np.testing.assert_array_equal(a["image"].numpy(), p["image"].numpy()[:, ::-1])
        K2, T = a["K"].numpy(), a["T_world_cam"].numpy()
        np.testing.assert_allclose(T, p["T_world_cam"].numpy())
        M = T @ np.diag([-1.0, 1, 1, 1]) @ np.linalg.inv(T)
        eef = augment.reflect_points(M, episodes[e].eef_pos[f])
        uv, _ = geometry.project(eef, K2, T)
        np.testing.assert_allclose(a["start"][:2].numpy(), uv, atol=1e-4)
        np.testing.assert_allclose(a["eef_pos"].numpy(), eef, atol=1e-6)
        moved = augment.reflect_points(M, p["target_pos"].numpy())
        np.testing.assert_allclose(a["target_pos"].numpy(), moved)
        tuv, _ = geometry.project(moved, K2, T)
        np.testing.assert_allclose(a["target_pixel"].numpy(), tuv, atol=1e-4)
        assert K2[0, 2] == spec.image.width - p["K"].numpy()[0, 2]
        np.testing.assert_array_equal(a["gripper_bin"].numpy(), p["gripper_bin"].numpy())
    with pytest.raises(ValueError, match="mirror_prob"):
        augment.AugmentConfig(mirror_prob=1.5)
