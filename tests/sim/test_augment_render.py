"""The camera-rotation augmentation against the real renderer: MuJoCo re-rendering a camera
rotated about its centre gives the image that `augment.warp_image` computes from the
original render, and the EEF projected with the rotated pose lands on the gripper there."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from para_ros.core import geometry
from para_training.data import augment


def render_with_pose(sim, T: np.ndarray) -> np.ndarray:
    R_mj = T[:3, :3] @ np.diag([1.0, -1.0, -1.0])  # optical -> MuJoCo camera axes
    q = Rotation.from_matrix(R_mj).as_quat()  # xyzw
    sim.sim.model.cam_pos[sim.cam_id] = T[:3, 3]
    sim.sim.model.cam_quat[sim.cam_id] = [q[3], q[0], q[1], q[2]]
    sim.sim.forward()
    return sim.render()


@pytest.mark.parametrize(
    "rotvec_deg", [(0.0, 8.0, 0.0), (-6.0, 0.0, 0.0), (0.0, 0.0, 12.0), (5.0, -7.0, 4.0)]
)
def test_warp_equals_rerender_of_the_rotated_camera(sim, rotvec_deg):
    obs = sim.reset(0)
    K, T0 = obs.K, obs.T_world_cam
    original = obs.image.astype(np.float64)
    R = Rotation.from_rotvec(np.radians(rotvec_deg)).as_matrix()
    T1 = augment.rotated_pose(T0, R)
    try:
        rerender = render_with_pose(sim, T1).astype(np.float64)
    finally:
        sim._apply_camera()  # back to the configured camera
    warped = augment.warp_image(obs.image, augment.rotation_homography(K, R)).astype(np.float64)
    # compare where the warp has data (away from the black border by 2 px)
    import cv2

    ones = np.full(obs.image.shape[:2], 255, np.uint8)
    valid = augment.warp_image(ones[..., None].repeat(3, 2), augment.rotation_homography(K, R))
    valid = cv2.erode((valid[..., 0] == 255).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert valid.mean() > 0.5

    def error(img: np.ndarray) -> float:
        return float(np.abs(img - rerender).mean(axis=2)[valid].mean())

    err, unwarped = error(warped), error(original)
    # measured at 224 px: 1.6-7.1 grey levels (bilinear resampling of the bowls' and the
    # table's fine textures; largest for the 6 deg tilt, where the unwarped image is 36 off)
    assert err < unwarped / 3, (err, unwarped)
    # geometry: moving the warped image by a pixel in any direction only makes it worse
    for dx, dy in [(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1)]:
        moved = cv2.warpAffine(warped, np.float64([[1, 0, dx], [0, 1, dy]]), (224, 224))
        assert error(moved) > err, (dx, dy)
    # the label: the EEF projected with the rotated pose is where the warp moved it
    uv0, _ = geometry.project(obs.eef_pos, K, T0)
    uv1, _ = geometry.project(obs.eef_pos, K, T1)
    moved = augment.rotation_homography(K, R) @ np.array([uv0[0], uv0[1], 1.0])
    np.testing.assert_allclose(moved[:2] / moved[2], uv1, atol=1e-6)


def render_depth_m(sim, T: np.ndarray) -> np.ndarray:
    """(h, w) depth along the optical axis in metres of the camera at pose T."""
    render_with_pose(sim, T)
    return sim.render_depth_mm() / 1000.0


def orbited_view(sim, obs, theta_phi):
    """The camera of `obs` orbited by (theta, phi) degrees about its axis' point at the bowl's
    height (the sim's own pivot): (pivot_z, T1 (4, 4), MuJoCo's render (n, n, 3) float64, the
    world point (n, n, 3) each of its pixels sees, from its depth render)."""
    pivot_z = float(sim._obs[f"{sim.object_name}_pos"][2])
    T0 = obs.T_world_cam
    T1 = geometry.orbit_pose(T0, geometry.axis_plane_point(T0, pivot_z), *np.radians(theta_phi))
    try:
        rerender = render_with_pose(sim, T1).astype(np.float64)
        depth = render_depth_m(sim, T1)
    finally:
        sim._apply_camera()
    n = obs.image.shape[0]
    v, u = np.mgrid[0:n, 0:n] + 0.5  # pixel centres, continuous coordinates
    rays = np.stack([u, v, np.ones_like(u)], -1) @ geometry.inverse_intrinsics(obs.K).T
    return pivot_z, T1, rerender, T1[:3, 3] + depth[..., None] * (rays @ T1[:3, :3].T)


@pytest.mark.parametrize("theta_phi", [(6.0, 0.0), (10.0, 90.0), (15.0, 225.0)])
def test_orbit_warp_follows_the_renderer_on_the_table(sim, theta_phi):
    """The table-plane homography sends each table pixel of the original camera to where
    MuJoCo renders that table point for the orbited camera: the orbited camera's depth map
    gives the world point of each of its table pixels, projected back into the original camera.
    The warped image is also closer to the re-render than the unwarped one there. (Raw
    intensities are not compared tightly: the table is nearly textureless wood, and its shading
    and reflections change with the view, which no warp of one image can show.)"""
    obs = sim.reset(0)
    K, T0 = obs.K, obs.T_world_cam
    pivot_z, T1, rerender, world = orbited_view(sim, obs, theta_phi)
    n = obs.image.shape[0]
    v, u = np.mgrid[0:n, 0:n] + 0.5  # pixel centres, continuous coordinates
    table_z = float(np.median(world[..., 2][np.abs(world[..., 2] - pivot_z) < 0.02]))
    table = np.abs(world[..., 2] - table_z) < 0.002  # (n, n) pixels that see the table top
    assert table.mean() > 0.15
    uv0, _ = geometry.project(world[table], K, T0)  # (N, 2) the same points, original camera
    H = geometry.plane_homography(K, T0, T1, table_z)
    mapped = np.c_[uv0, np.ones(len(uv0))] @ H.T
    err_px = np.linalg.norm(mapped[:, :2] / mapped[:, 2:] - np.stack([u, v], -1)[table], axis=1)
    assert np.percentile(err_px, 99) < 0.1, np.percentile(err_px, [50, 99])  # depth precision
    # the images: on the table and what lies within 3 cm of it, inside the warp
    import cv2

    inside = augment.warp_image(np.full(obs.image.shape, 255, np.uint8), H)[..., 0] == 255
    low = (np.abs(world[..., 2] - table_z) < 0.03) & inside
    low = cv2.erode(low.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    warped = augment.warp_image(obs.image, H).astype(np.float64)

    def error(img: np.ndarray) -> float:
        return float(np.abs(img - rerender).mean(axis=2)[low].mean())

    assert error(warped) < error(obs.image.astype(np.float64)), (
        error(warped),
        error(obs.image.astype(np.float64)),
    )


@pytest.mark.parametrize("theta_phi", [(5.0, 0.0), (10.0, 90.0), (15.0, 225.0)])
def test_depth_orbit_warp_draws_the_arm_where_the_renderer_does(sim, theta_phi):
    """With the frame's depth (LiberoSim.render_depth_mm, what para-make-demos records) the
    orbited image is drawn per pixel: above the table (the arm, the bowls' rims, the cabinet)
    it is far closer to MuJoCo's render of the orbited camera than the table plane's homography,
    which draws those surfaces off by their parallax; over the whole image it is closer too."""
    obs = sim.reset(0)
    K, T0 = obs.K, obs.T_world_cam
    depth0 = sim.render_depth_mm()
    assert depth0.shape == obs.image.shape[:2] and depth0.dtype == np.uint16
    # the EEF point lies between the open fingers (its own pixel sees the table through the
    # gap, 1.38 m away at 224 px); within 10 px the fingers are a few cm in front of it
    uv, z = geometry.project(obs.eef_pos, K, T0)
    u0, v0 = int(uv[0]), int(uv[1])
    seen = depth0[v0 - 10 : v0 + 11, u0 - 10 : u0 + 11] / 1000.0
    assert z - 0.08 < float(seen.min()) < z + 0.01, (seen.min(), z)
    assert float(np.median(seen)) > z + 0.2  # and mostly the table below
    plane_z, T1, rerender, world = orbited_view(sim, obs, theta_phi)
    warped, valid = augment.depth_warp(obs.image, depth0, K, T0, T1)
    H = geometry.plane_homography(K, T0, T1, plane_z)
    plane = augment.warp_image(obs.image, H).astype(np.float64)
    valid &= augment.warp_image(np.full(obs.image.shape, 255, np.uint8), H)[..., 0] == 255
    high = valid & (world[..., 2] > plane_z + 0.05) & (world[..., 2] < 1.5)
    assert high.mean() > 0.05

    def error(img: np.ndarray, where: np.ndarray) -> float:
        return float(np.abs(img - rerender).mean(axis=2)[where].mean())

    warped = warped.astype(np.float64)
    # measured at 224 px, mean grey levels, depth warp / plane homography, theta = 5, 10,
    # 15 deg: above the table 3.8 / 18.0, 4.6 / 28.3, 10.3 / 21.8; everywhere valid
    # 2.6 / 5.8, 12.3 / 17.9, 11.7 / 15.7 (the rest is shading and what neither saw)
    above, everywhere = (
        (error(warped, high), error(plane, high)),
        (
            error(warped, valid),
            error(plane, valid),
        ),
    )
    assert above[0] < 0.6 * above[1], above
    assert everywhere[0] < everywhere[1], everywhere
