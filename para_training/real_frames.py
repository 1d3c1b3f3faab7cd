"""Model inputs from recorded data: frames resized to the model input and the start keypoint
the runtime would feed with them (the same `prepare` and projection as OnnxPolicy.infer), for
int8 calibration and for parity on real frames instead of random inputs.

The frames come from any format `para_ros.data` reads (official LIBERO HDF5, LeRobot v3.0
with a calibration sidecar, rosbag2, this project's HDF5, episode folders).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from para_ros.core import geometry
from para_ros.core.contract import PolicySpec
from para_ros.core.image import prepare

# the repository's field data (written by the tools of each format; see its README)
FIELD_DATA = Path(__file__).resolve().parents[2] / "shared" / "field-data"


@dataclass(frozen=True)
class Frames:
    image: np.ndarray  # (N, H, W, 3) uint8 at the model input size
    start_keypoint: np.ndarray  # (N, 3 | 4) float32
    source: str  # where they came from

    def __len__(self) -> int:
        return len(self.image)

    def feeds(self, k: int, batch: int = 1) -> dict:
        return {"image": self.image[k : k + batch], "start_keypoint": self.start_keypoint[k : k + batch]}


def default_field_data() -> Path | None:
    """The official-layout LIBERO file of the field data, where present."""
    root = FIELD_DATA / "libero_official_layout" / "libero_spatial"
    files = sorted(root.glob("*.hdf5")) if root.is_dir() else []
    return files[0] if files else None


def frames_from_episodes(episodes, spec: PolicySpec, n: int, source: str = "") -> Frames:
    """Up to `n` frames spread evenly over all episodes' frames."""
    index = [(e, k) for e, ep in enumerate(episodes) for k in range(len(ep.eef_pos))]
    if not index:
        raise ValueError(f"{source}: no frames")
    pick = np.unique(np.linspace(0, len(index) - 1, min(n, len(index))).round().astype(int))
    hw = (spec.image.height, spec.image.width)
    images, starts = [], []
    for i in pick:
        e, k = index[i]
        ep = episodes[e]
        K = np.asarray(ep.K, np.float64)
        K = K[k] if K.ndim == 3 else K
        T = np.asarray(ep.T_world_cam, np.float64)
        T = T[k] if T.ndim == 3 else T
        img, K_model = prepare(np.asarray(ep.rgb[k]), K, hw)
        uv, depth = geometry.project(np.asarray(ep.eef_pos[k], np.float64), K_model, T)
        if not depth > 0:
            continue
        start = [uv[0], uv[1], ep.eef_pos[k][2]]
        if spec.uses_gripper_state:
            # the command being executed at this frame: the previous frame's command
            start.append(float(ep.gripper[max(0, k - 1)]))
        images.append(np.ascontiguousarray(img))
        starts.append(start)
    return Frames(np.stack(images), np.asarray(starts, np.float32), source)


def load_frames(spec: PolicySpec, data: str | Path | None = None, n: int = 64) -> Frames:
    """`n` frames of `data` (default: the field data's LIBERO file) as model inputs."""
    from para_ros.data.readers import load_episodes

    path = Path(data) if data else default_field_data()
    if path is None:
        raise FileNotFoundError(f"no data given and no field data under {FIELD_DATA}")
    return frames_from_episodes(load_episodes(path), spec, n, source=str(path))
