"""Validation metrics (DESIGN §6), computed through the same decode path as deployment.

Per predicted step of every sample (targets outside the image are left out of the pixel and
3D figures):
    val_pix        px at model input: |cell centre of the argmax - projected GT EEF|
    val_height_mm  |decoded height-bin centre - GT EEF z| in mm
    val_3d_mm      |lift(argmax cell centre, decoded height) - GT EEF| in mm
    val_grip_acc   gripper bin accuracy
    val_rot_err    |predicted - GT| rotation bin (pca1d, euler: mean over axes; kmeans: 0/1)
    val_rot_rad    geodesic angle between the decoded rotation and the GT rotation, rad
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from para_ros.core.action_codec import Codecs, decode_chunk
from para_ros.core.codecs import geodesic_angle
from para_ros.core.contract import PolicySpec


def predictions_from_logits(out: dict[str, torch.Tensor], spec: PolicySpec) -> dict:
    """Argmax classes and confidences from model logits (the ONNX graph does the same)."""
    vol = out["volume_logits"]  # (B, T, Z, Hg, Wg)
    B, T = vol.shape[:2]
    Hg, Wg = spec.grid.height, spec.grid.width
    flat = vol.reshape(B, T, -1)  # (B, T, Z*Hg*Wg)
    prob = torch.softmax(flat, dim=-1)
    conf, idx = prob.max(dim=-1)  # (B, T), (B, T)
    voxel = torch.stack([idx // (Hg * Wg), (idx // Wg) % Hg, idx % Wg], dim=-1)  # (B, T, 3)
    rot = out["rotation_logits"]  # (B, T, R)
    if spec.rotation.mode == "euler":
        rot_bin = rot.view(B, T, 3, -1).argmax(-1)  # (B, T, 3)
    else:
        rot_bin = rot.argmax(-1)  # (B, T)
    return {
        "voxel": voxel,
        "voxel_index": idx,
        "confidence": conf,
        "gripper_bin": out["gripper_logits"].argmax(-1),
        "rotation_bin": rot_bin,
    }


class MetricAccumulator:
    def __init__(self, spec: PolicySpec):
        self.spec = spec
        self.codecs = Codecs.from_spec(spec)
        self.values: dict[str, list[float]] = defaultdict(list)

    def add(self, pred: dict, batch: dict) -> None:
        spec = self.spec
        B = pred["voxel"].shape[0]
        for b in range(B):
            chunk = decode_chunk(
                spec,
                self.codecs,
                pred["voxel"][b].cpu().numpy(),
                pred["confidence"][b].cpu().numpy(),
                pred["gripper_bin"][b].cpu().numpy(),
                pred["rotation_bin"][b].cpu().numpy(),
                batch["K"][b].numpy(),
                batch["T_world_cam"][b].numpy(),
            )
            in_view = batch["voxel_index"][b].numpy() >= 0
            gt_px = batch["target_pixel"][b].numpy()
            gt_pos = batch["target_pos"][b].numpy()
            pix = np.linalg.norm(chunk.pixels - gt_px, axis=-1)
            self.values["val_pix"] += pix[in_view].tolist()
            self.values["val_height_mm"] += (np.abs(chunk.heights - gt_pos[:, 2]) * 1e3).tolist()
            ok = in_view & chunk.valid
            err3d = np.linalg.norm(chunk.positions - gt_pos, axis=-1) * 1e3
            self.values["val_3d_mm"] += err3d[ok].tolist()
            self.values["val_grip_acc"] += (
                (chunk.gripper_bins == batch["gripper_bin"][b].numpy()).astype(float).tolist()
            )
            gt_rot = batch["rotation_bin"][b].numpy()
            if spec.rotation.mode == "kmeans":
                rot_err = (chunk.rotation_bins != gt_rot).astype(float)
            else:
                rot_err = np.abs(chunk.rotation_bins - gt_rot).astype(float)
                rot_err = rot_err.mean(-1) if rot_err.ndim == 2 else rot_err
            self.values["val_rot_err"] += rot_err.tolist()
            self.values["val_rot_rad"] += geodesic_angle(
                chunk.euler, batch["target_euler"][b].numpy()
            ).tolist()
            self.values["val_confidence"] += chunk.confidence.tolist()

    def summary(self) -> dict[str, float]:
        out = {k: float(np.mean(v)) for k, v in self.values.items() if v}
        if self.values.get("val_3d_mm"):
            out["val_3d_mm_median"] = float(np.median(self.values["val_3d_mm"]))
        return out
