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

With the depth image of the frame (demos from para-make-demos record it), the orbit is drawn
exactly instead (`orbit_warp="depth"`, `depth_warp`): every pixel is back-projected with its
depth, moved into the new camera and splatted there with a z-buffer (to the four pixels around
it, so a surface seen slightly larger leaves no cracks); the new depth map's holes (what the old
camera could not see: disocclusions) take the farthest depth around them, up to 3 px; then every
new pixel is back-projected with that depth and its colour read from the old image (bilinear),
unless the old camera saw something in front of that point (then it stays black: no ghost of
the occluder). So the gripper, the bowl and the table each move by their own parallax; what the
old camera never saw is black, like the border.

A mirror (`mirror`) flips the image left-right. That is exactly what the same camera sees of the
scene reflected across its own y-z plane (the vertical plane through the optical axis, for a
camera without roll): a point at camera x goes to -x, so with pixel i covering [i, i + 1) the
flipped image is the reflected scene seen through K with cx' = W - cx (and skew negated). The
labels are the reflected world targets (positions p' = M p, orientations M R M, heights
unchanged when that plane is vertical) projected with that K and the unchanged pose. The
reflected scene is not the real one, but a consistent scene with the same task, its objects on
the other side of the image centre. Rotation labels go through the run's rotation codec (a
pca1d basis is fitted on the unmirrored demos), so a reflected orientation is encoded as that
codec encodes any orientation. LIBERO's agentview camera sits at y = 0 while task 0's objects
are at y = 0.19-0.21 m: a mirrored sample puts them near y = -0.2, not into the right half of
the seed's shift grid (docs/issue14_trials.md, change 5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ORBIT_WARPS = ("plane", "depth")
DEPTH_HOLE_FILL_PX = 3  # disocclusions up to this wide take the background next to them
OCCLUSION_TOLERANCE = 0.03  # relative depth step tolerated before a point counts as hidden


@dataclass(frozen=True)
class AugmentConfig:
    """rotation_deg: largest camera rotation (degrees, random axis, angle uniform in
    [0, rotation_deg]); 0 turns it off. rotation_prob: fraction of samples rotated.
    color: brightness/contrast/saturation jitter amplitude (0.2 = factors in [0.8, 1.2]);
    0 turns it off. orbit_deg: largest camera orbit (degrees, theta uniform in [0, orbit_deg],
    azimuth uniform) about the optical axis' point on the plane z = plane_z (metres, world);
    0 turns it off. orbit_prob: fraction of samples orbited. An orbit and a rotation drawn for
    the same sample are composed into one warp. orbit_warp: "plane" (the table plane's
    homography) or "depth" (exact for every visible surface; needs each frame's depth).
    mirror_prob: fraction of samples mirrored (`mirror`, after the orbit or rotation)."""

    rotation_deg: float = 0.0
    rotation_prob: float = 0.5
    color: float = 0.0
    orbit_deg: float = 0.0
    orbit_prob: float = 0.5
    plane_z: float | None = None
    orbit_warp: str = "plane"
    mirror_prob: float = 0.0

    def __post_init__(self) -> None:
        if self.orbit_warp not in ORBIT_WARPS:
            raise ValueError(
                f"augment orbit_warp must be one of {', '.join(ORBIT_WARPS)}, got "
                f"{self.orbit_warp!r}"
            )
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
        if not 0.0 <= self.mirror_prob <= 1.0:
            raise ValueError(f"augment mirror_prob must be in [0, 1], got {self.mirror_prob}")
        if self.orbit_deg > 0 and self.plane_z is None:
            raise ValueError("augment orbit_deg > 0 needs plane_z (the table height, metres)")

    @property
    def active(self) -> bool:
        return self.rotation_deg > 0 or self.color > 0 or self.orbit_deg > 0 or self.mirrors

    @property
    def mirrors(self) -> bool:
        return self.mirror_prob > 0

    @property
    def needs_depth(self) -> bool:
        return self.orbit_deg > 0 and self.orbit_warp == "depth"


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


def _pixel_rays(K: np.ndarray, h: int, w: int) -> np.ndarray:
    """(h, w, 3) rays K^-1 (u, v, 1) of the pixel centres (continuous coordinates)."""
    from para_ros.core.geometry import inverse_intrinsics

    v, u = np.mgrid[0:h, 0:w] + 0.5
    return np.stack([u, v, np.ones_like(u)], -1) @ inverse_intrinsics(K).T


def depth_warp(
    image: np.ndarray,
    depth_mm: np.ndarray,
    K: np.ndarray,
    T_world_cam: np.ndarray,
    T_world_new: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The image the camera at T_world_new would see, drawn from one RGB-D frame.

    image (h, w, 3) uint8 and depth_mm (h, w) uint16 (optical-axis depth, millimetres, 0 = no
    reading) of the camera at T_world_cam (4, 4, camera -> world, OpenCV axes); K (3, 3) of
    both cameras. Returns (image (h, w, 3) uint8, valid (h, w) bool): pixels whose surface
    the old camera did not see (beyond DEPTH_HOLE_FILL_PX) or that fall outside its image are
    black and not valid."""
    import cv2
    from scipy.ndimage import maximum_filter

    h, w = depth_mm.shape
    z_old = depth_mm.astype(np.float64) / 1000.0  # (h, w) metres
    rays = _pixel_rays(K, h, w)  # (h, w, 3)
    from para_ros.core.geometry import invert_pose

    T_new_old = invert_pose(T_world_new) @ T_world_cam  # (4, 4) old camera -> new camera
    seen = z_old > 0
    p_new = (rays[seen] * z_old[seen, None]) @ T_new_old[:3, :3].T + T_new_old[:3, 3]  # (M, 3)
    front = p_new[:, 2] > 1e-6
    p_new = p_new[front]
    uv = p_new[:, :2] / p_new[:, 2:] * np.diag(K)[:2] + K[:2, 2]  # (M, 2) continuous
    # z-buffer splat to the 4 pixels whose centres surround each point
    zbuf = np.full(h * w, np.inf)
    base = np.floor(uv - 0.5).astype(np.int64)  # (M, 2)
    for du, dv in ((0, 0), (1, 0), (0, 1), (1, 1)):
        iu, iv = base[:, 0] + du, base[:, 1] + dv
        ok = (iu >= 0) & (iu < w) & (iv >= 0) & (iv < h)
        np.minimum.at(zbuf, iv[ok] * w + iu[ok], p_new[ok, 2])
    z_new = zbuf.reshape(h, w)  # (h, w) metres, inf = nothing seen
    for _ in range(DEPTH_HOLE_FILL_PX):  # disocclusions: the background beside them
        hole = ~np.isfinite(z_new)
        if not hole.any():
            break
        around = maximum_filter(np.where(hole, -np.inf, z_new), size=3)
        z_new = np.where(hole & np.isfinite(around), around, z_new)
    valid = np.isfinite(z_new)
    # back to the old camera: where each new pixel's surface point was seen
    p = rays * np.where(valid, z_new, 1.0)[..., None]  # (h, w, 3) new camera
    T_old_new = invert_pose(T_new_old)
    q = p @ T_old_new[:3, :3].T + T_old_new[:3, 3]  # (h, w, 3) old camera
    with np.errstate(divide="ignore", invalid="ignore"):
        src = q[..., :2] / q[..., 2:] * np.diag(K)[:2] + K[:2, 2]  # (h, w, 2) continuous
    src = np.where(valid[..., None] & (q[..., 2:] > 1e-6), src, -1e4)
    # occlusion: a point the old camera saw something in front of was not seen (its colour
    # there is the occluder's); the tolerance covers the depth step between pixel centres
    iu = np.clip(np.floor(src[..., 0]).astype(np.int64), 0, w - 1)
    iv = np.clip(np.floor(src[..., 1]).astype(np.int64), 0, h - 1)
    z_there = z_old[iv, iu]  # (h, w) metres
    valid &= (z_there > 0) & (q[..., 2] <= z_there * (1 + OCCLUSION_TOLERANCE) + 0.005)
    src = (src - 0.5).astype(np.float32)  # OpenCV pixel centres at integers
    out = cv2.remap(
        image, src[..., 0], src[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    inside = (src[..., 0] > -0.5) & (src[..., 0] < w - 0.5)
    inside &= (src[..., 1] > -0.5) & (src[..., 1] < h - 0.5)
    valid &= inside
    out[~valid] = 0
    return out, valid


def mirror(
    image: np.ndarray, K: np.ndarray, T_world_cam: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image flipped left-right, K', M): the scene reflected across the camera's y-z plane,
    seen by the same camera (module docstring).

    image (h, w, 3) uint8 at the resolution K (3, 3) describes; T_world_cam (4, 4) world <-
    camera (OpenCV optical axes). K' has cx' = w - cx and the skew negated; M (4, 4) is the
    world reflection (det -1): a world point p of the original scene is at M p in the
    reflected one, an orientation R (3, 3) is M3 R M3 (M3 = M[:3, :3], a proper rotation
    again). The camera pose is unchanged."""
    w = image.shape[1]
    K2 = np.array(K, dtype=np.float64)
    K2[0, 2] = w - K2[0, 2]
    K2[0, 1] = -K2[0, 1]
    M = T_world_cam @ np.diag([-1.0, 1.0, 1.0, 1.0]) @ np.linalg.inv(T_world_cam)  # (4, 4)
    return np.ascontiguousarray(image[:, ::-1]), K2, M


def reflect_points(M: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(..., 3) world points of the original scene -> where the reflection M (4, 4) puts them."""
    return points @ M[:3, :3].T + M[:3, 3]


def reflect_euler(M: np.ndarray, euler: np.ndarray) -> np.ndarray:
    """(..., 3) scipy "xyz" euler angles (radians) of world orientations R -> those of
    M3 R M3, the orientations of the reflected scene (M3 = M[:3, :3], det -1)."""
    from scipy.spatial.transform import Rotation

    from para_ros.core.contract import EULER_CONVENTION

    e = np.asarray(euler, dtype=np.float64)
    R = Rotation.from_euler(EULER_CONVENTION, e.reshape(-1, 3)).as_matrix()  # (N, 3, 3)
    M3 = M[:3, :3]
    out = Rotation.from_matrix(M3 @ R @ M3).as_euler(EULER_CONVENTION)  # (N, 3)
    return out.reshape(e.shape)


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
    depth_mm: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(image, T_world_cam) of a randomly orbited and/or rotated camera, or the inputs unchanged.

    image (h, w, 3) uint8 at the resolution K describes; keep_in_view (N, 3) world points
    (the current EEF) that must stay inside the new image, else another draw is made
    (`tries` in all) and then none is applied. Colour jitter applies either way. depth_mm
    (h, w) uint16: the frame's depth, required when cfg.orbit_warp is "depth" (ValueError
    otherwise); an orbited sample is then drawn by `depth_warp`."""
    if cfg.needs_depth and depth_mm is None:
        raise ValueError(
            "augment orbit_warp='depth' needs the frame's depth image (obs/agentview_depth, "
            "recorded by para-make-demos); use orbit_warp='plane' for demos without depth"
        )
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
                if orbit and cfg.needs_depth:
                    image, _ = depth_warp(image, depth_mm, K, T_world_cam, T_new)
                else:
                    image = warp_image(image, H)
                T_out = T_new
                break
    if cfg.color > 0:
        image = jitter_color(image, rng, cfg.color)
    return image, T_out
