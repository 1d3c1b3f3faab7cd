"""Validation metrics (DESIGN §6) through the deployment decode path: val_pix (px),
val_height_mm, val_3d_mm, val_grip_acc, val_rot_err (bins), val_rot_rad. Definitions in
para_ros.core.metrics, which rosbag replay evaluation uses too. Predictions are the model's
graph outputs (`model.predict`), decoded by the spec's head family (para_ros.core.heads)."""

from __future__ import annotations

from para_ros.core.action_codec import Codecs, Targets
from para_ros.core.contract import PolicySpec
from para_ros.core.heads import decode_outputs, head_for
from para_ros.core.metrics import MetricSummary, chunk_errors


class MetricAccumulator:
    """Decodes each predicted chunk like deployment does and scores it with the shared
    per-step metrics (para_ros.core.metrics)."""

    def __init__(self, spec: PolicySpec):
        self.spec = spec
        self.codecs = Codecs.from_spec(spec)
        self.summary_ = MetricSummary()

    def add(self, pred: dict, batch: dict) -> None:
        """pred: graph outputs by name (B, ...) tensors; batch: the dataset batch."""
        spec = self.spec
        names = head_for(spec).outputs
        arrays = {k: pred[k].detach().cpu().numpy() for k in names}
        n = arrays[names[0]].shape[0]
        for b in range(n):
            chunk = decode_outputs(
                spec,
                self.codecs,
                {k: v[b] for k, v in arrays.items()},
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
