"""Open-loop metrics of one decoded chunk against the recorded future (DESIGN §6), pure numpy.

Used by training validation (para_training.metrics) and rosbag replay evaluation
(para_ros.replay), so both report the same numbers for the same frames.

Per step (arrays of length T):
    pix_err      px at model input: |argmax cell centre - projected GT EEF| (NaN when the GT
                 leaves the image)
    height_err_mm  |height-bin centre - GT z|
    err_3d_mm    |decoded world target - GT EEF| (NaN when out of view or not liftable)
    grip_ok      gripper bin == GT bin
    rot_err_bins |bin - GT bin| (euler: mean over axes; kmeans: 0/1)
    rot_err_rad  geodesic angle between decoded rotation and the GT rotation
    confidence   argmax-voxel probability
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from para_ros.core.action_codec import ActionChunk, Targets
from para_ros.core.codecs import geodesic_angle

STEP_KEYS = (
    "pix_err",
    "height_err_mm",
    "err_3d_mm",
    "grip_ok",
    "rot_err_bins",
    "rot_err_rad",
    "confidence",
)
# report name of each per-step key (the seed's names where it had them)
REPORT_NAMES = {
    "pix_err": "val_pix",
    "height_err_mm": "val_height_mm",
    "err_3d_mm": "val_3d_mm",
    "grip_ok": "val_grip_acc",
    "rot_err_bins": "val_rot_err",
    "rot_err_rad": "val_rot_rad",
    "confidence": "val_confidence",
}


def chunk_errors(
    rotation_mode: str,
    chunk: ActionChunk,
    targets: Targets,
    gt_pos: np.ndarray,
    gt_euler: np.ndarray,
) -> dict[str, np.ndarray]:
    """Per-step errors of `chunk` against GT positions (T, 3) m and eulers (T, 3) rad."""
    in_view = targets.in_view
    pix = np.linalg.norm(chunk.pixels - targets.pixels, axis=-1)
    err3d = np.linalg.norm(chunk.positions - gt_pos, axis=-1) * 1e3
    if rotation_mode == "kmeans":
        rot = (chunk.rotation_bins != targets.rotation_bins).astype(float)
    else:
        rot = np.abs(chunk.rotation_bins - targets.rotation_bins).astype(float)
        rot = rot.mean(-1) if rot.ndim == 2 else rot
    return {
        "pix_err": np.where(in_view, pix, np.nan),
        "height_err_mm": np.abs(chunk.heights - gt_pos[:, 2]) * 1e3,
        "err_3d_mm": np.where(in_view & chunk.valid, err3d, np.nan),
        "grip_ok": (chunk.gripper_bins == targets.gripper_bins).astype(float),
        "rot_err_bins": rot,
        "rot_err_rad": geodesic_angle(chunk.euler, gt_euler),
        "confidence": chunk.confidence.astype(float),
    }


class MetricSummary:
    """Accumulates per-step errors; `summary()` gives means (NaNs left out) and medians."""

    def __init__(self):
        self.values: dict[str, list[float]] = defaultdict(list)

    def add(self, errors: dict[str, np.ndarray]) -> None:
        for k, v in errors.items():
            self.values[k] += [float(x) for x in np.asarray(v).ravel() if np.isfinite(x)]

    def summary(self) -> dict[str, float]:
        out = {}
        for k, v in self.values.items():
            if v:
                out[REPORT_NAMES.get(k, k)] = float(np.mean(v))
        if self.values.get("err_3d_mm"):
            out["val_3d_mm_median"] = float(np.median(self.values["err_3d_mm"]))
        if self.values.get("pix_err"):
            out["val_pix_median"] = float(np.median(self.values["pix_err"]))
        return out
