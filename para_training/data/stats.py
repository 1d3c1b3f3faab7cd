"""Dataset statistics and the PolicySpec they define, computed once on the whole dataset.

The height and gripper ranges and the rotation basis are properties of the dataset, not of a
split: they are computed here before any train/val split and travel in the PolicySpec (the
seed lost them when `random_split` wrapped the dataset in a `Subset`).
"""

from __future__ import annotations

import datetime as _dt
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from para_ros.core.contract import (
    CameraSpec,
    GridSpec,
    GripperSpec,
    ImageSpec,
    LinearBinsSpec,
    ModelSpec,
    PolicySpec,
    Provenance,
    RotationSpec,
    WindowSpec,
)
from para_ros.data.episode import Episode


@dataclass(frozen=True)
class DatasetStats:
    n_episodes: int
    n_frames: int
    fps: float
    height_min: float  # world Z, metres, over every frame's EEF
    height_max: float
    gripper_min: float
    gripper_max: float
    # per-axis mean and standard deviation of every frame's EEF position, world metres (the
    # normalisation of models that regress positions)
    position_mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    position_std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    # per-axis range of every frame's EEF position, world metres: the box the EEF visited (the
    # workspace that models encoding world positions normalise by)
    position_min: tuple[float, float, float] = (0.0, 0.0, 0.0)
    position_max: tuple[float, float, float] = (1.0, 1.0, 1.0)


def compute_stats(episodes: list[Episode]) -> DatasetStats:
    z = np.concatenate([e.eef_pos[:, 2] for e in episodes])
    g = np.concatenate([e.gripper for e in episodes])
    pos = np.concatenate([e.eef_pos for e in episodes])  # (N, 3)
    fps = float(np.median([e.fps for e in episodes if len(e) > 1] or [0.0]))
    return DatasetStats(
        n_episodes=len(episodes),
        n_frames=len(z),
        fps=fps,
        height_min=float(z.min()),
        height_max=float(z.max()),
        gripper_min=float(g.min()),
        gripper_max=float(g.max()),
        position_mean=tuple(float(v) for v in pos.mean(0)),
        position_std=tuple(float(max(v, 1e-3)) for v in pos.std(0)),
        position_min=tuple(float(v) for v in pos.min(0)),
        position_max=tuple(float(v) for v in pos.max(0)),
    )


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            timeout=5,
        )
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.TimeoutExpired):
        return ""


def build_spec(
    stats: DatasetStats,
    rotation: RotationSpec,
    image_hw: tuple[int, int],
    grid_hw: tuple[int, int],
    steps: int,
    stride: int,
    height_bins: int = 32,
    gripper_bins: int = 32,
    height_margin: float = 0.01,
    gripper_closed_sign: int = 1,
    world_frame: str = "world",
    dataset_id: str = "",
    architecture: str = ModelSpec.architecture,  # the contract's default
    hyperparameters: dict | None = None,
    camera_K: np.ndarray | None = None,
    camera_T: np.ndarray | None = None,
) -> PolicySpec:
    """The PolicySpec of a model trained on data with these statistics.

    Heights get `height_margin` metres on both sides so the end bins are not saturated by the
    extreme frames; `dt` = stride / fps.
    """
    g_lo, g_hi = stats.gripper_min, stats.gripper_max
    if g_hi - g_lo < 1e-6:  # constant gripper in the data: keep a valid range around it
        g_lo, g_hi = g_lo - 1.0, g_hi + 1.0
    fps = stats.fps if stats.fps > 0 else 20.0
    return PolicySpec(
        image=ImageSpec(height=image_hw[0], width=image_hw[1]),
        grid=GridSpec(height=grid_hw[0], width=grid_hw[1]),
        window=WindowSpec(steps=steps, stride=stride, dt=stride / fps),
        height=LinearBinsSpec(
            n_bins=height_bins,
            min=stats.height_min - height_margin,
            max=stats.height_max + height_margin,
        ),
        gripper=GripperSpec(
            n_bins=gripper_bins, min=g_lo, max=g_hi, closed_sign=gripper_closed_sign
        ),
        rotation=rotation,
        camera=CameraSpec(
            world_frame=world_frame,
            K=tuple(map(tuple, camera_K.tolist())) if camera_K is not None else (),
            T_world_cam=tuple(map(tuple, camera_T.tolist())) if camera_T is not None else (),
        ),
        model=ModelSpec(architecture=architecture, hyperparameters=hyperparameters or {}),
        provenance=Provenance(
            dataset_id=dataset_id,
            git_commit=_git_commit(),
            created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        ),
    )
