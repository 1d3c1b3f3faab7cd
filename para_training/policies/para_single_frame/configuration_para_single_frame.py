"""Configuration of the single-frame PARA baseline (dense per-cell heads on the DINO feature map).

Sizes that come from the data (T steps, Z height bins, gripper bins, rotation classes, image and
grid size, the height and gripper ranges) are fields too, so the model is built from this config
alone; `from_spec` fills them from a PolicySpec.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from para_training.policies.common import (
    GRIPPER_INPUT_HELP,
    VoxelSizes,
    check_head_widths,
    check_voxel_sizes,
)


@dataclass
class ParaSingleFrameConfig(VoxelSizes):
    # backbone fields (BackboneConfig, shared by every policy) and the input / output sizes
    # from the PolicySpec (VoxelSizes, shared by the voxel_volume policies) ---------------
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
    gripper_input: bool = field(default=False, metadata={"help": GRIPPER_INPUT_HELP})

    def __post_init__(self) -> None:
        check_voxel_sizes(self)
        check_head_widths(
            self, positive=("d_feat",), non_negative=("refine_convs", "height_loss_weight")
        )
