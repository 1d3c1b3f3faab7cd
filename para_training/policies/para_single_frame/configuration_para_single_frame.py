"""Configuration of the single-frame PARA baseline (dense per-cell heads on the DINO feature map).

Sizes that come from the data (T steps, Z height bins, gripper bins, rotation classes, image and
grid size, the height and gripper ranges) are fields too, so the model is built from this config
alone; `from_spec` fills them from a PolicySpec.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from para_ros.core.contract import PolicySpec
from para_training.policies.common import (
    VOXEL_SIZE_FIELDS,
    BackboneConfig,
    check_voxel_sizes,
    voxel_sizes_from_spec,
)

# Fields that come from the data (the PolicySpec), not from the user: `from_spec` sets them.
SIZE_FIELDS = VOXEL_SIZE_FIELDS


@dataclass
class ParaSingleFrameConfig(BackboneConfig):
    SIZE_FIELDS = SIZE_FIELDS

    # backbone fields: BackboneConfig (shared by every policy) ------------------------
    # input / output sizes (from the PolicySpec) --------------------------------------------
    image_height: int = 224
    image_width: int = 224
    grid_height: int = 56
    grid_width: int = 56
    steps: int = 6  # T
    height_bins: int = 32  # Z
    gripper_bins: int = 32
    rotation_classes: int = 48  # pca1d: 48 (seed); euler: 3 x n; kmeans: K
    rotation_mode: str = "pca1d"
    height_min: float = 0.0  # world Z range of the height bins, metres (normalises start h)
    height_max: float = 1.0
    gripper_min: float = -1.0  # gripper command range (normalises the gripper-state input)
    gripper_max: float = 1.0
    # head ------------------------------------------------------------------------------------
    d_feat: int = field(
        default=48, metadata={"help": "per-cell feature width read by the 1x1 heads (seed: 48)"}
    )
    refine_convs: int = field(
        default=2,
        metadata={
            "help": "3x3 conv + GELU layers on the cell features after the start marker is "
            "added (they spread the EEF's position to the cells around it)"
        },
    )
    height_loss_weight: float = field(
        default=1.0, metadata={"help": "weight of the height-bin CE at the target cell"}
    )
    gripper_input: bool = field(
        default=False,
        metadata={
            "help": "condition on the gripper command being executed (a 4th start-keypoint "
            "value), as para_dino_kv's gripper_input"
        },
    )

    def __post_init__(self) -> None:
        check_voxel_sizes(self)
        if self.d_feat <= 0:
            raise ValueError(f"ParaSingleFrameConfig.d_feat must be > 0, got {self.d_feat}")
        if self.refine_convs < 0:
            raise ValueError("ParaSingleFrameConfig.refine_convs must be >= 0")
        if self.height_loss_weight < 0:
            raise ValueError("ParaSingleFrameConfig.height_loss_weight must be >= 0")

    @classmethod
    def sizes_from_spec(cls, spec: PolicySpec, stats=None) -> dict:
        return voxel_sizes_from_spec(spec)
