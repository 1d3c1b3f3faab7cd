"""Validation metrics (DESIGN §6) through the deployment decode path: val_pix (px),
val_height_mm, val_3d_mm, val_grip_acc, val_rot_err (bins), val_rot_rad. Definitions in
para_ros.core.metrics, which rosbag replay evaluation uses too."""

from __future__ import annotations

import torch

from para_ros.core.action_codec import Codecs, Targets, decode_chunk
from para_ros.core.contract import PolicySpec
from para_ros.core.metrics import MetricSummary, chunk_errors


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
    """Decodes each predicted chunk like deployment does and scores it with the shared
    per-step metrics (para_ros.core.metrics)."""

    def __init__(self, spec: PolicySpec):
        self.spec = spec
        self.codecs = Codecs.from_spec(spec)
        self.summary_ = MetricSummary()

    def add(self, pred: dict, batch: dict) -> None:
        spec = self.spec
        for b in range(pred["voxel"].shape[0]):
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
            targets = Targets(
                voxel=batch["voxel"][b].numpy(),
                in_view=batch["voxel_index"][b].numpy() >= 0,
                pixels=batch["target_pixel"][b].numpy(),
                gripper_bins=batch["gripper_bin"][b].numpy(),
                rotation_bins=batch["rotation_bin"][b].numpy(),
            )
            self.summary_.add(
                chunk_errors(
                    spec.rotation.mode,
                    chunk,
                    targets,
                    batch["target_pos"][b].numpy(),
                    batch["target_euler"][b].numpy(),
                )
            )

    def summary(self) -> dict[str, float]:
        return self.summary_.summary()
