"""Camera geometry and grid formulas of DESIGN §4 (numpy only, float64).

Frames and units:
* world points: metres, in the world frame of the PolicySpec (LIBERO: the MuJoCo world);
* camera: OpenCV pinhole, x right, y down, z forward; `T_world_cam` (4, 4) maps camera
  coordinates to world coordinates (its translation is the camera centre in the world);
* pixels: continuous (u, v) = (x right, y down) in the model-input image, the image spanning
  [0, W) x [0, H); K is the intrinsic matrix of that image;
* heights: world Z in metres.

Point, pixel, angle and quaternion arguments broadcast over leading dimensions ("...");
matrices (K (3, 3), poses (4, 4)) are single: `project`, `lift` and `lift_point` take one K
and one `T_world_cam` for all their points, and `pose_matrix`, `invert_pose`, `orbit_pose`,
`plane_homography` and `axis_plane_point` work on one pose. No function mutates its inputs.
K is skew-free (plausibility.check_intrinsics refuses a skew that matters).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from para_ros.core.contract import EULER_CONVENTION

# |d_z| below this (for a unit-length ray direction) means the ray runs parallel to the
# height plane: the intersection is numerically meaningless (1e-9 rad of elevation).
MIN_RAY_DZ = 1e-9


class RayPlaneError(ValueError):
    """A pixel ray does not meet the requested height plane in front of the camera."""


# -- poses -------------------------------------------------------------------------------


def pose_matrix(position: np.ndarray, quat_xyzw: np.ndarray) -> np.ndarray:
    """(3,) position + (4,) quaternion (x, y, z, w) -> (4, 4) homogeneous transform."""
    T = np.eye(4)
    T[:3, :3] = Rotation.from_quat(np.asarray(quat_xyzw, dtype=np.float64)).as_matrix()
    T[:3, 3] = np.asarray(position, dtype=np.float64)
    return T


def invert_pose(T: np.ndarray) -> np.ndarray:
    """Inverse of a rigid (4, 4) transform, without a general matrix inverse."""
    R, t = T[:3, :3], T[:3, 3]
    out = np.eye(4)
    out[:3, :3] = R.T
    out[:3, 3] = -R.T @ t
    return out


def quat_xyzw_to_euler(quat_xyzw: np.ndarray) -> np.ndarray:
    """(..., 4) quaternions (x, y, z, w) -> (..., 3) scipy "xyz" euler angles, radians."""
    q = np.asarray(quat_xyzw, dtype=np.float64)
    flat = Rotation.from_quat(q.reshape(-1, 4)).as_euler(EULER_CONVENTION)
    return flat.reshape((*q.shape[:-1], 3))


def euler_to_quat_xyzw(euler: np.ndarray) -> np.ndarray:
    """(..., 3) scipy "xyz" euler angles, radians -> (..., 4) quaternions (x, y, z, w), w >= 0."""
    e = np.asarray(euler, dtype=np.float64)
    q = Rotation.from_euler(EULER_CONVENTION, e.reshape(-1, 3)).as_quat(canonical=True)
    return q.reshape((*e.shape[:-1], 4))


def quat_wxyz_to_xyzw(q_wxyz: np.ndarray) -> np.ndarray:
    """Reorder (..., 4) quaternions from (w, x, y, z) (MuJoCo's order) to (x, y, z, w)."""
    q = np.asarray(q_wxyz, dtype=np.float64)
    return np.concatenate([q[..., 1:], q[..., :1]], axis=-1)


def wrap_angle(a: np.ndarray) -> np.ndarray:
    """Wrap angles (radians) into [-pi, pi)."""
    return (np.asarray(a, dtype=np.float64) + np.pi) % (2.0 * np.pi) - np.pi


# -- intrinsics --------------------------------------------------------------------------


def intrinsics(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def scale_intrinsics(
    K: np.ndarray, raw_hw: tuple[int, int], new_hw: tuple[int, int]
) -> np.ndarray:
    """K of an image resized from raw (H, W) to new (H, W): fx, cx scale by W_new/W_raw and
    fy, cy by H_new/H_raw (continuous pixel convention, so no half-pixel shift)."""
    sy = new_hw[0] / raw_hw[0]
    sx = new_hw[1] / raw_hw[1]
    out = np.array(K, dtype=np.float64, copy=True)
    out[0, :] *= sx
    out[1, :] *= sy
    return out


def crop_intrinsics(K: np.ndarray, x0: float, y0: float) -> np.ndarray:
    """K of the crop whose top-left corner is pixel (x0, y0) of the original image."""
    out = np.array(K, dtype=np.float64, copy=True)
    out[0, 2] -= x0
    out[1, 2] -= y0
    return out


def inverse_intrinsics(K: np.ndarray) -> np.ndarray:
    """Analytic inverse of a pinhole K with zero skew (the exporter uses the same formula)."""
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    return np.array([[1 / fx, 0.0, -cx / fx], [0.0, 1 / fy, -cy / fy], [0.0, 0.0, 1.0]])


# -- projection and lift -----------------------------------------------------------------


def project(points_world: np.ndarray, K: np.ndarray, T_world_cam: np.ndarray):
    """(..., 3) world points -> ((..., 2) pixels (u, v), (..., ) depth along camera z, metres).

    p_c = T_world_cam^-1 p_w;  (u, v) = (fx x/z + cx, fy y/z + cy). Points behind the camera
    (depth <= 0) get NaN pixels.
    """
    p = np.asarray(points_world, dtype=np.float64)
    T_cam_world = invert_pose(np.asarray(T_world_cam, dtype=np.float64))
    pc = p @ T_cam_world[:3, :3].T + T_cam_world[:3, 3]  # (..., 3) camera frame
    z = pc[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = K[0, 0] * pc[..., 0] / z + K[0, 2]
        v = K[1, 1] * pc[..., 1] / z + K[1, 2]
    uv = np.stack([u, v], axis=-1)
    uv[z <= 0] = np.nan
    return uv, z


@dataclass(frozen=True)
class LiftResult:
    points: np.ndarray  # (..., 3) world points, metres; NaN where not valid
    valid: np.ndarray  # (...,) bool
    reason: np.ndarray  # (...,) str: "" | "parallel" | "behind"


def lift(uv: np.ndarray, height: np.ndarray, K: np.ndarray, T_world_cam: np.ndarray) -> LiftResult:
    """Intersect the camera ray through pixels (..., 2) with world planes z = height (...,).

    d = R K^-1 [u, v, 1]^T, o = camera centre; s = (h - o_z) / d_z; p = o + s d.
    A ray is rejected as "parallel" when |d_z| (of the unit direction) < MIN_RAY_DZ and as
    "behind" when s <= 0 (the plane is met behind the camera).
    """
    uv = np.asarray(uv, dtype=np.float64)
    h = np.asarray(height, dtype=np.float64)
    T = np.asarray(T_world_cam, dtype=np.float64)
    ones = np.ones((*uv.shape[:-1], 1))
    rays_cam = np.concatenate([uv, ones], axis=-1) @ inverse_intrinsics(K).T  # (..., 3)
    d = rays_cam @ T[:3, :3].T  # (..., 3) world direction
    d = d / np.linalg.norm(d, axis=-1, keepdims=True)
    o = T[:3, 3]
    parallel = np.abs(d[..., 2]) < MIN_RAY_DZ
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (h - o[2]) / np.where(parallel, 1.0, d[..., 2])
    behind = ~parallel & ~(s > 0)
    valid = ~parallel & ~behind
    pts = o + s[..., None] * d
    pts = np.where(valid[..., None], pts, np.nan)
    reason = np.where(parallel, "parallel", np.where(behind, "behind", ""))
    return LiftResult(points=pts, valid=valid, reason=reason)


def lift_point(uv, height: float, K: np.ndarray, T_world_cam: np.ndarray) -> np.ndarray:
    """Lift one pixel (2,) at one height; raises RayPlaneError saying why it cannot."""
    res = lift(np.asarray(uv, dtype=np.float64)[None], np.array([height]), K, T_world_cam)
    if not res.valid[0]:
        why = {
            "parallel": "the ray is parallel to the plane",
            "behind": "the plane is behind the camera along this ray",
        }[str(res.reason[0])]
        px = tuple(np.round(uv, 3))
        raise RayPlaneError(f"pixel {px} cannot be lifted to z={height} m: {why}")
    return res.points[0]


# -- camera orbits ------------------------------------------------------------------------


def axis_plane_point(T_world_cam: np.ndarray, z: float) -> np.ndarray:
    """(3,) where the optical axis meets the world plane z (metres): the orbit pivot."""
    T = np.asarray(T_world_cam, dtype=np.float64)
    d = T[:3, 2]  # optical axis (camera z) in the world
    if abs(d[2]) < MIN_RAY_DZ:
        raise RayPlaneError(f"the optical axis is parallel to the plane z={z} m")
    return T[:3, 3] + (z - T[2, 3]) / d[2] * d


def orbit_pose(T_world_cam: np.ndarray, pivot: np.ndarray, theta: float, phi: float) -> np.ndarray:
    """(4, 4) camera pose orbited by `theta` (rad) about `pivot` (3,) world metres, the rotation
    axis perpendicular to the view direction at azimuth `phi` (rad; 0 = about the camera's y
    axis, a sideways swing). The camera keeps looking at the pivot. Used by the simulator's
    viewpoint setting and by the orbit augmentation of training."""
    x_axis, y_axis = T_world_cam[:3, 0], T_world_cam[:3, 1]
    axis = np.cos(phi) * y_axis + np.sin(phi) * x_axis
    R = Rotation.from_rotvec(axis / np.linalg.norm(axis) * theta).as_matrix()
    out = np.eye(4)
    out[:3, :3] = R @ T_world_cam[:3, :3]
    out[:3, 3] = pivot + R @ (T_world_cam[:3, 3] - pivot)
    return out


def plane_homography(
    K: np.ndarray, T_world_cam_a: np.ndarray, T_world_cam_b: np.ndarray, z: float
) -> np.ndarray:
    """(3, 3) H mapping pixels of camera a to pixels of camera b (same K) for world points on
    the plane z (metres): exact for those points, a parallax error for points off the plane.

    A plane point (x, y, z) projects as K [r1 r2 (z r3 + t)] (x, y, 1)^T, [r1 r2 r3 | t] the
    world -> camera transform; H = P_b P_a^-1."""

    def plane_projection(T_world_cam: np.ndarray) -> np.ndarray:
        T_cw = invert_pose(np.asarray(T_world_cam, dtype=np.float64))
        R, t = T_cw[:3, :3], T_cw[:3, 3]
        return K @ np.column_stack([R[:, 0], R[:, 1], z * R[:, 2] + t])  # (3, 3)

    H = plane_projection(T_world_cam_b) @ np.linalg.inv(plane_projection(T_world_cam_a))
    return H / H[2, 2]


# -- grid cells and height bins ----------------------------------------------------------


def pixel_to_cell(uv: np.ndarray, image_hw: tuple[int, int], grid_hw: tuple[int, int]):
    """(..., 2) pixels -> ((...,) row i, (...,) col j) of the feature grid, clipped inside.

    j = floor(u Wg / W), i = floor(v Hg / H).
    """
    uv = np.asarray(uv, dtype=np.float64)
    (H, W), (Hg, Wg) = image_hw, grid_hw
    j = np.clip(np.floor(uv[..., 0] * Wg / W), 0, Wg - 1).astype(np.int64)
    i = np.clip(np.floor(uv[..., 1] * Hg / H), 0, Hg - 1).astype(np.int64)
    return i, j


def cell_center(i: np.ndarray, j: np.ndarray, image_hw, grid_hw) -> np.ndarray:
    """Grid cell (row i, col j) -> (..., 2) pixel of its centre: ((j + .5) W/Wg, (i + .5) H/Hg)."""
    (H, W), (Hg, Wg) = image_hw, grid_hw
    u = (np.asarray(j, dtype=np.float64) + 0.5) * W / Wg
    v = (np.asarray(i, dtype=np.float64) + 0.5) * H / Hg
    return np.stack([u, v], axis=-1)


def in_image(uv: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    """(...,) bool: pixel lies inside [0, W) x [0, H) (NaN -> False)."""
    uv = np.asarray(uv, dtype=np.float64)
    H, W = image_hw
    with np.errstate(invalid="ignore"):
        return (uv[..., 0] >= 0) & (uv[..., 0] < W) & (uv[..., 1] >= 0) & (uv[..., 1] < H)
