"""Training augmentation from one camera's images: a camera rotated about its optical centre
(exact), a camera orbited about the table point it looks at (exact on the table plane), and
colour jitter.

A camera that rotates about its centre (no translation) sees the same rays: the new image is
the old one warped by the homography H = K R K^-1, where R (3, 3) maps old camera coordinates
to new ones (p_new = R p_old, OpenCV optical frame: x right, y down, z forward). No second
render is needed, and every label stays exact: the camera pose becomes
T_world_cam' = T_world_cam @ [[R^T, 0], [0, 1]] and the targets are projected with it, so
pixels move with the image while world heights, gripper and rotation labels (world frame) do
not change. Pixels outside the old image are black (as the border of a real wide rotation).

Pixel convention: continuous coordinates as in para_ros.core.geometry.project (pixel i covers
[i, i + 1), so K's cx = W / 2 is the image centre); OpenCV's warp indexes pixel centres at
integers, hence the half-pixel shift in `warp_image`. tests/sim/test_augment_render.py checks
the warp against MuJoCo re-rendering the rotated camera.

An orbit (the simulator's viewpoint setting, para_ros.core.geometry.orbit_pose: the camera
swung by theta about the point where its optical axis meets the table, at azimuth phi) also
moves the optical centre, so no single warp is exact for every pixel. The warp used is the
homography the table plane z = plane_z induces between the two cameras
(geometry.plane_homography): exact for the table and what lies on it, with a parallax error
for points above it that grows with their height and with theta (LIBERO agentview at 128 px,
the gripper 0.28 m above the table at reset: 6 px at theta = 5 deg, 12 px at 10, 18 px at 15,
measured against the projection with the orbited pose). Labels are exact either way: the
targets and the start keypoint are projected with the orbited pose.
tests/sim/test_augment_render.py compares the warp with MuJoCo rendering the orbited camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    """rotation_deg: largest camera rotation (degrees, random axis, angle uniform in
    [0, rotation_deg]); 0 turns it off. rotation_prob: fraction of samples rotated.
    color: brightness/contrast/saturation jitter amplitude (0.2 = factors in [0.8, 1.2]);
    0 turns it off. orbit_deg: largest camera orbit (degrees, theta uniform in [0, orbit_deg],
    azimuth uniform) about the optical axis' point on the plane z = plane_z (metres, world);
    0 turns it off. orbit_prob: fraction of samples orbited. An orbit and a rotation drawn for
    the same sample are composed into one warp."""

    rotation_deg: float = 0.0
    rotation_prob: float = 0.5
    color: float = 0.0
    orbit_deg: float = 0.0
    orbit_prob: float = 0.5
    plane_z: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.rotation_deg < 60.0:
            raise ValueError(f"augment rotation_deg must be in [0, 60), got {self.rotation_deg}")
        if not 0.0 <= self.rotation_prob <= 1.0:
            raise ValueError(f"augment rotation_prob must be in [0, 1], got {self.rotation_prob}")
        if not 0.0 <= self.color < 1.0:
            raise ValueError(f"augment color must be in [0, 1), got {self.color}")
        if not 0.0 <= self.orbit_deg < 60.0:
            raise ValueError(f"augment orbit_deg must be in [0, 60), got {self.orbit_deg}")
        if not 0.0 <= self.orbit_prob <= 1.0:
            raise ValueError(f"augment orbit_prob must be in [0, 1], got {self.orbit_prob}")
        if self.orbit_deg > 0 and self.plane_z is None:
            raise ValueError("augment orbit_deg > 0 needs plane_z (the table height, metres)")

    @property
    def active(self) -> bool:
        return self.rotation_deg > 0 or self.color > 0 or self.orbit_deg > 0


def random_rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    """(3, 3) rotation about a uniformly random axis by an angle uniform in [0, max_deg]."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = np.radians(rng.uniform(0.0, max_deg))
    from scipy.spatial.transform import Rotation

    return Rotation.from_rotvec(axis * angle).as_matrix()


def rotation_homography(K: np.ndarray, R: np.ndarray) -> np.ndarray:
    """(3, 3) H = K R K^-1: old pixel (u, v, 1) -> new pixel, continuous coordinates."""
    return K @ R @ np.linalg.inv(K)


def rotated_pose(T_world_cam: np.ndarray, R: np.ndarray) -> np.ndarray:
    """(4, 4) pose of the camera after p_new = R p_old (same optical centre)."""
    out = np.array(T_world_cam, dtype=np.float64, copy=True)
    out[:3, :3] = T_world_cam[:3, :3] @ R.T
    return out


def warp_image(image: np.ndarray, H: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 warped by H (continuous pixel coordinates), bilinear, black outside."""
    import cv2

    shift = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    H_idx = np.linalg.inv(shift) @ H @ shift  # OpenCV pixel centres at integers
    h, w = image.shape[:2]
    return cv2.warpPerspective(
        image, H_idx, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )


def jitter_color(image: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """(h, w, 3) uint8 with brightness, contrast and saturation each scaled by a factor in
    [1 - amount, 1 + amount]."""
    x = image.astype(np.float32)
    b, c, s = rng.uniform(1.0 - amount, 1.0 + amount, size=3)
    x = x * b
    mean = x.mean()
    x = (x - mean) * c + mean
    grey = x.mean(axis=2, keepdims=True)
    x = (x - grey) * s + grey
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


def random_orbit(
    rng: np.random.Generator, T_world_cam: np.ndarray, max_deg: float, plane_z: float
) -> np.ndarray:
    """(4, 4) pose of the camera orbited by theta uniform in [0, max_deg] at a uniform azimuth
    about the point where its optical axis meets the plane z = plane_z (metres)."""
    from para_ros.core.geometry import axis_plane_point, orbit_pose

    pivot = axis_plane_point(T_world_cam, plane_z)
    theta = np.radians(rng.uniform(0.0, max_deg))
    return orbit_pose(T_world_cam, pivot, theta, rng.uniform(0.0, 2 * np.pi))


def augment_view(
    image: np.ndarray,
    K: np.ndarray,
    T_world_cam: np.ndarray,
    keep_in_view: np.ndarray,
    cfg: AugmentConfig,
    rng: np.random.Generator,
    tries: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """(image, T_world_cam) of a randomly orbited and/or rotated camera, or the inputs unchanged.

    image (h, w, 3) uint8 at the resolution K describes; keep_in_view (N, 3) world points
    (the current EEF) that must stay inside the new image, else another draw is made
    (`tries` in all) and then none is applied. Colour jitter applies either way."""
    from para_ros.core.geometry import plane_homography, project

    h, w = image.shape[:2]
    T_out = T_world_cam
    orbit = cfg.orbit_deg > 0 and rng.uniform() < cfg.orbit_prob
    rotate = cfg.rotation_deg > 0 and rng.uniform() < cfg.rotation_prob
    if orbit or rotate:
        for _ in range(tries):
            T_new, H = T_world_cam, np.eye(3)
            if orbit:
                T_new = random_orbit(rng, T_world_cam, cfg.orbit_deg, cfg.plane_z)
                H = plane_homography(K, T_world_cam, T_new, cfg.plane_z)
            if rotate:
                R = random_rotation(rng, cfg.rotation_deg)
                T_new, H = rotated_pose(T_new, R), rotation_homography(K, R) @ H
            uv, z = project(keep_in_view, K, T_new)  # (N, 2), (N,)
            inside = (z > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
            if inside.all():
                image = warp_image(image, H)
                T_out = T_new
                break
    if cfg.color > 0:
        image = jitter_color(image, rng, cfg.color)
    return image, T_out
