"""One episode representation for every data source (HDF5, rosbag2, episode folders, synthetic).

Per frame (N frames):
    rgb          (N, H, W, 3) uint8, upright RGB (array-like: an h5py dataset is fine)
    K            (3, 3) or (N, 3, 3) float64, pinhole intrinsics of `rgb` at its own size
    T_world_cam  (4, 4) or (N, 4, 4) float64, camera -> world (OpenCV camera axes)
    eef_pos      (N, 3) float64, world frame, metres
    eef_quat     (N, 4) float64, (x, y, z, w)
    gripper      (N,)   float64, gripper command/state in the dataset's units
    joints       (N, J) float64, radians (J may be 0)
    time         (N,)   float64, seconds from the episode start
    depth        (N, H, W) uint16 or None, the camera's depth image registered to `rgb`:
                 distance along the optical axis in millimetres, 0 = no reading (REP 118's
                 16UC1); optional, used by the depth-exact orbit augmentation
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from para_ros.core.geometry import quat_xyzw_to_euler
from para_ros.core.plausibility import (
    QUATERNION_TOLERANCE,
    check_intrinsics,
    check_start_keypoint,
)


class EpisodeError(ValueError):
    """An episode's arrays are inconsistent or invalid."""


@dataclass
class Episode:
    rgb: Any
    K: np.ndarray
    T_world_cam: np.ndarray
    eef_pos: np.ndarray
    eef_quat: np.ndarray
    gripper: np.ndarray
    joints: np.ndarray
    time: np.ndarray
    name: str = ""
    language: str = ""
    meta: dict = field(default_factory=dict)
    depth: Any = None

    def __post_init__(self) -> None:
        n = len(self.eef_pos)
        where = f"episode {self.name!r}"
        if n < 1:
            raise EpisodeError(f"{where}: no frames")
        for key in ("rgb", "eef_quat", "gripper", "time", "joints"):
            length = len(getattr(self, key))
            if length != n:
                raise EpisodeError(f"{where}: `{key}` has {length} frames, eef_pos has {n}")
        if len(self.rgb.shape) != 4 or self.rgb.shape[-1] != 3:
            raise EpisodeError(f"{where}: rgb must be (N, H, W, 3), got {self.rgb.shape}")
        if np.asarray(self.K).shape not in ((3, 3), (n, 3, 3)):
            raise EpisodeError(f"{where}: K must be (3, 3) or ({n}, 3, 3)")
        if np.asarray(self.T_world_cam).shape not in ((4, 4), (n, 4, 4)):
            raise EpisodeError(f"{where}: T_world_cam must be (4, 4) or ({n}, 4, 4)")
        if self.eef_pos.shape != (n, 3) or self.eef_quat.shape != (n, 4):
            raise EpisodeError(f"{where}: eef_pos must be (N, 3) and eef_quat (N, 4)")
        for key in ("eef_pos", "eef_quat", "gripper", "time"):
            if not np.isfinite(getattr(self, key)).all():
                raise EpisodeError(f"{where}: `{key}` has non-finite values")
        norms = np.linalg.norm(self.eef_quat, axis=1)
        if np.any(np.abs(norms - 1.0) > QUATERNION_TOLERANCE):
            k = int(np.argmax(np.abs(norms - 1.0)))
            raise EpisodeError(
                f"{where}: eef_quat is not a unit quaternion at frame {k} (|q| = "
                f"{norms[k]:.4f}); expected (x, y, z, w) of unit length"
            )
        h, w = self.rgb.shape[1:3]
        if self.depth is not None and (
            tuple(self.depth.shape) != (n, h, w) or self.depth.dtype != np.uint16
        ):
            raise EpisodeError(
                f"{where}: depth must be ({n}, {h}, {w}) uint16 millimetres (registered to "
                f"rgb), got {tuple(self.depth.shape)} {self.depth.dtype}"
            )
        Ks = np.asarray(self.K, dtype=np.float64).reshape(-1, 3, 3)
        for k in {0, len(Ks) - 1}:  # the first and last intrinsics (most are constant)
            bad = check_intrinsics(Ks[k], w, h)
            if bad is not None:
                raise EpisodeError(f"{where}: frame {k}: {bad.reason}")
        self._check_eef_in_view(where, w, h)

    def _check_eef_in_view(self, where: str, w: int, h: int) -> None:
        """The start keypoint (the EEF's pixel) must be in view on most frames: if it is off
        the image or behind the camera on more than half of them, the camera is wrong (pose,
        quaternion order or frame); refused with the diagnosis of the first bad frame."""
        n = len(self)
        Ts = np.broadcast_to(np.asarray(self.T_world_cam, np.float64), (n, 4, 4))
        Ks = np.broadcast_to(np.asarray(self.K, np.float64), (n, 3, 3))
        pc = np.einsum("nji,nj->ni", Ts[:, :3, :3], self.eef_pos - Ts[:, :3, 3])  # (N, 3)
        with np.errstate(divide="ignore", invalid="ignore"):
            u = Ks[:, 0, 0] * pc[:, 0] / pc[:, 2] + Ks[:, 0, 2]
            v = Ks[:, 1, 1] * pc[:, 1] / pc[:, 2] + Ks[:, 1, 2]
        seen = (pc[:, 2] > 0) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
        if seen.mean() >= 0.5:
            return
        k = int(np.argmin(seen))
        bad = check_start_keypoint(self.eef_pos[k], Ks[k], Ts[k], w, h)
        raise EpisodeError(
            f"{where}: the EEF is out of the camera's view on {int((~seen).sum())} of {n} "
            f"frames; frame {k}: {bad.reason if bad else 'out of view'}"
        )

    def __len__(self) -> int:
        return len(self.eef_pos)

    @property
    def image_hw(self) -> tuple[int, int]:
        return tuple(self.rgb.shape[1:3])

    def K_at(self, i: int) -> np.ndarray:
        K = np.asarray(self.K, dtype=np.float64)
        return K if K.ndim == 2 else K[i]

    def T_world_cam_at(self, i: int) -> np.ndarray:
        T = np.asarray(self.T_world_cam, dtype=np.float64)
        return T if T.ndim == 2 else T[i]

    def eef_euler(self) -> np.ndarray:
        """(N, 3) scipy "xyz" euler angles, radians."""
        return quat_xyzw_to_euler(self.eef_quat)

    @property
    def fps(self) -> float:
        if len(self.time) < 2:
            return 0.0
        return float((len(self.time) - 1) / max(self.time[-1] - self.time[0], 1e-9))
