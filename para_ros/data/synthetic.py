"""Synthetic episodes with exact geometry, for tests and smoke runs (no simulator needed).

A fixed pinhole camera looks down at a table (world z = 0.8 m). Each episode places a red
target disc at a random table position; a "gripper" (a green disc, its size growing with
height) starts at a random point above the table and moves in a straight line to hover above
the target, descending, rotating about world z (yaw) and closing the gripper on arrival.
The discs are drawn exactly where the camera projects their world positions, so the task is
pure localisation: predict where the gripper will be in T steps from one image.
"""

from __future__ import annotations

import numpy as np

from para_ros.core import geometry
from para_ros.data.episode import Episode

TABLE_Z = 0.8


def synthetic_camera(image_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(K (3, 3), T_world_cam (4, 4)) of a camera 0.9 m above the table looking down 60 deg."""
    H, W = image_hw
    f = (H / 2) / np.tan(np.radians(45) / 2)  # fovy 45 deg, as LIBERO's agentview
    K = geometry.intrinsics(f, f, W / 2, H / 2)
    pitch = np.radians(60)
    z = np.array([-np.cos(pitch), 0.0, -np.sin(pitch)])  # optical axis, towards -x and down
    x = np.array([0.0, -1.0, 0.0])
    T = np.eye(4)
    T[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
    T[:3, 3] = [0.55, 0.0, TABLE_Z + 0.9]
    return K, T


def _draw_tick(img: np.ndarray, uv: np.ndarray, angle: float, length: float, colour) -> None:
    """A line from `uv` in image direction `angle` (the gripper's yaw made visible)."""
    H, W = img.shape[:2]
    for s in np.linspace(0, length, int(4 * length) + 2):
        x = int(uv[0] + s * np.cos(angle))
        y = int(uv[1] + s * np.sin(angle))
        if 0 <= x < W and 0 <= y < H:
            img[y, x] = colour


def _draw_disc(img: np.ndarray, uv: np.ndarray, radius: float, colour) -> None:
    H, W = img.shape[:2]
    yy, xx = np.mgrid[0:H, 0:W]
    mask = (xx + 0.5 - uv[0]) ** 2 + (yy + 0.5 - uv[1]) ** 2 <= radius**2
    img[mask] = colour


def make_episode(
    rng: np.random.Generator,
    image_hw: tuple[int, int] = (64, 64),
    n_frames: int = 40,
    fps: float = 20.0,
    name: str = "synthetic",
) -> Episode:
    K, T_wc = synthetic_camera(image_hw)
    target = np.array([rng.uniform(-0.15, 0.15), rng.uniform(-0.2, 0.2), TABLE_Z])
    start = np.array([rng.uniform(-0.15, 0.15), rng.uniform(-0.2, 0.2), TABLE_Z + 0.25])
    hover = target + [0, 0, 0.05]
    s = np.clip(np.linspace(0, 1.25, n_frames), 0, 1)[:, None]  # arrive at 80 %, then hold
    pos = start + s * (hover - start)  # (N, 3)
    yaw0 = rng.uniform(-1.0, 1.0)
    yaw = yaw0 + s[:, 0] * rng.uniform(-0.8, 0.8)
    euler = np.stack([np.full(n_frames, np.pi), np.zeros(n_frames), yaw], axis=1)
    quat = geometry.euler_to_quat_xyzw(euler)
    gripper = np.where(s[:, 0] >= 1.0, 1.0, -1.0)  # LIBERO convention: +1 closed
    H, W = image_hw
    scale = W / 64.0
    rgb = np.empty((n_frames, H, W, 3), np.uint8)
    uv_t, _ = geometry.project(target, K, T_wc)
    uv_e, _ = geometry.project(pos, K, T_wc)
    for i in range(n_frames):
        img = rgb[i]
        img[:] = (90, 80, 70)  # table
        _draw_disc(img, uv_t, 4.0 * scale, (220, 40, 40))
        r = (2.0 + 8.0 * (pos[i, 2] - TABLE_Z)) * scale  # higher -> larger
        _draw_disc(img, uv_e[i], r, (40, 220, 60) if gripper[i] < 0 else (40, 120, 220))
        _draw_tick(img, uv_e[i], yaw[i], r + 3.0 * scale, (250, 250, 250))
    return Episode(
        rgb=rgb,
        K=K,
        T_world_cam=T_wc,
        eef_pos=pos,
        eef_quat=quat,
        gripper=gripper,
        joints=np.zeros((n_frames, 0)),
        time=np.arange(n_frames) / fps,
        name=name,
        language="move the gripper above the red disc",
    )


def make_episodes(n: int, seed: int = 0, **kwargs) -> list[Episode]:
    rng = np.random.default_rng(seed)
    return [make_episode(rng, name=f"synthetic_{k:04d}", **kwargs) for k in range(n)]
