"""Property tests of DESIGN §4 geometry over random pinhole cameras and points."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from para_ros.core import geometry as g

finite = dict(allow_nan=False, allow_infinity=False)


def look_at(eye: np.ndarray, target: np.ndarray, roll: float) -> np.ndarray:
    """T_world_cam of an OpenCV camera at `eye` whose optical axis (z) points at `target`."""
    z = target - eye
    z /= np.linalg.norm(z)
    up = np.array([0.0, 0.0, 1.0])
    x = np.cross(z, up) if abs(z[2]) < 0.999 else np.array([1.0, 0.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z], axis=1)
    c, s = np.cos(roll), np.sin(roll)
    R = R @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, eye
    return T


cameras = st.builds(
    lambda dist, elev, azim, roll, f, cxf, cyf: (
        look_at(
            np.array(
                [
                    dist * np.cos(elev) * np.cos(azim),
                    dist * np.cos(elev) * np.sin(azim),
                    0.8 + dist * np.sin(elev),
                ]
            ),
            np.array([0.0, 0.0, 0.8]),
            roll,
        ),
        g.intrinsics(f, f * 1.02, 224 * cxf, 224 * cyf),
    ),
    st.floats(0.4, 3.0, **finite),
    st.floats(np.radians(10), np.radians(85), **finite),
    st.floats(-np.pi, np.pi, **finite),
    st.floats(-0.5, 0.5, **finite),
    st.floats(100, 1000, **finite),
    st.floats(0.3, 0.7, **finite),
    st.floats(0.3, 0.7, **finite),
)
points = st.lists(st.floats(-0.3, 0.3, **finite), min_size=3, max_size=3).map(
    lambda p: np.array(p) + [0.0, 0.0, 0.8]
)


@settings(max_examples=300, deadline=None)
@given(cameras, points)
def test_project_then_lift_returns_the_point(cam, p):
    T, K = cam
    uv, depth = g.project(p, K, T)
    assume(depth > 0.05)
    res = g.lift(uv, p[2], K, T)
    assert res.valid
    assert np.abs(res.points - p).max() < 1e-6  # metres


@settings(max_examples=200, deadline=None)
@given(
    cameras,
    points,
    st.integers(32, 1024),
    st.integers(32, 1024),
    st.floats(0, 40, **finite),
    st.floats(0, 40, **finite),
)
def test_rescale_and_crop_keep_projections_consistent(cam, p, new_h, new_w, x0, y0):
    T, K = cam
    uv, depth = g.project(p, K, T)
    assume(depth > 0.05)
    K2 = g.scale_intrinsics(K, (224, 224), (new_h, new_w))
    uv2, _ = g.project(p, K2, T)
    np.testing.assert_allclose(uv2, uv * [new_w / 224, new_h / 224], rtol=1e-9, atol=1e-7)
    K3 = g.crop_intrinsics(K, x0, y0)
    uv3, _ = g.project(p, K3, T)
    np.testing.assert_allclose(uv3, uv - [x0, y0], atol=1e-7)
    # lifting through the rescaled camera returns the same point
    assert np.abs(g.lift(uv2, p[2], K2, T).points - p).max() < 1e-6


def test_lift_refuses_parallel_ray():
    # Optical axis along world +x, camera y = world -z: the row v = cy is horizontal.
    T = np.eye(4)
    T[:3, :3] = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], dtype=float)
    T[:3, 3] = [0, 0, 1.0]
    K = g.intrinsics(200, 200, 112, 112)
    res = g.lift(np.array([50.0, 112.0]), 0.5, K, T)
    assert not res.valid and res.reason == "parallel" and np.isnan(res.points).all()
    with pytest.raises(g.RayPlaneError, match="parallel to the plane"):
        g.lift_point([50.0, 112.0], 0.5, K, T)


def test_lift_refuses_plane_behind_camera():
    # Camera at z = 1 looking straight up: the plane z = 0 is behind every ray.
    T = np.eye(4)
    T[:3, :3] = np.diag([1.0, -1.0, -1.0]) @ np.diag([1.0, -1.0, -1.0])  # z forward = world +z
    T[:3, 3] = [0, 0, 1.0]
    K = g.intrinsics(200, 200, 112, 112)
    res = g.lift(np.array([[100.0, 100.0], [10.0, 200.0]]), np.array([0.0, 0.2]), K, T)
    assert (~res.valid).all() and (res.reason == "behind").all()
    with pytest.raises(g.RayPlaneError, match="behind the camera"):
        g.lift_point([100.0, 100.0], 0.0, K, T)
    # ... while a plane above the camera is met in front of it
    assert g.lift(np.array([112.0, 112.0]), 2.0, K, T).points == pytest.approx([0, 0, 2.0])


@given(
    st.floats(0, 224, exclude_max=True, **finite), st.floats(0, 224, exclude_max=True, **finite)
)
def test_cell_centre_is_within_half_a_cell(u, v):
    i, j = g.pixel_to_cell(np.array([u, v]), (224, 224), (56, 56))
    c = g.cell_center(i, j, (224, 224), (56, 56))
    assert abs(c[0] - u) <= 2.0 + 1e-9 and abs(c[1] - v) <= 2.0 + 1e-9  # cell = 4 px


def test_cell_formula_examples():
    i, j = g.pixel_to_cell(
        np.array([[0.0, 0.0], [3.99, 4.0], [223.9, 223.9], [500, -3]]), (224, 224), (56, 56)
    )
    assert j.tolist() == [0, 0, 55, 55] and i.tolist() == [0, 1, 55, 0]
    assert g.cell_center(0, 0, (224, 224), (56, 56)).tolist() == [2.0, 2.0]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-3.1, 3.1, **finite), min_size=3, max_size=3))
def test_quaternion_euler_round_trip(e):
    e = np.array(e)
    q = g.euler_to_quat_xyzw(e)
    assert q.shape == (4,) and q[3] >= 0 and abs(np.linalg.norm(q) - 1) < 1e-12
    e2 = g.euler_to_quat_xyzw(g.quat_xyzw_to_euler(q))
    assert np.abs(np.abs(e2 @ q) - 1) < 1e-9  # same rotation (q ~ -q)


def test_quaternion_orders():
    q_wxyz = np.array([0.5, 0.1, 0.2, 0.3])
    assert g.quat_wxyz_to_xyzw(q_wxyz).tolist() == [0.1, 0.2, 0.3, 0.5]
    # 90 degrees about z: scipy "xyz" yaw = pi / 2
    q = np.array([0, 0, np.sin(np.pi / 4), np.cos(np.pi / 4)])
    assert g.quat_xyzw_to_euler(q) == pytest.approx([0, 0, np.pi / 2])


def test_pose_inverse():
    T = g.pose_matrix([0.1, -0.2, 0.3], g.euler_to_quat_xyzw(np.array([0.3, -0.2, 1.0])))
    np.testing.assert_allclose(g.invert_pose(T) @ T, np.eye(4), atol=1e-12)
