"""Configuration of the 5-layer DINO-KV PARA model (seed: "5L transformer + sin z/t + PCA-1D").

Sizes that come from the data (T steps, Z height bins, gripper bins, rotation classes, image and
grid size) are fields too, so the model is built from this config alone; `from_spec` fills them
from a PolicySpec.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from para_training.policies.common import (
    VoxelSizes,
    check_attention,
    check_head_widths,
    check_voxel_sizes,
)


@dataclass
class ParaDinoKVConfig(VoxelSizes):
    # backbone fields (BackboneConfig, shared by every policy) and the input / output sizes
    # from the PolicySpec (VoxelSizes, shared by the voxel_volume policies) ---------------
    # head ------------------------------------------------------------------------------------
    d_feat: int = field(default=48, metadata={"help": "per-cell feature width (seed: 48)"})
    refine_convs: int = field(default=2, metadata={"help": "3x3 conv + GELU layers in refine"})
    d_model: int = field(default=256, metadata={"help": "query-token width"})
    n_heads: int = field(default=8, metadata={"help": "attention heads in the head"})
    tf_layers: int = field(default=5, metadata={"help": "transformer layers (seed: 5)"})
    ff_mult: int = field(default=4, metadata={"help": "feed-forward width multiple"})
    dropout: float = field(default=0.0, metadata={"help": "dropout in the head"})
    gripper_input: bool = field(
        default=False,
        metadata={
            "help": "condition on the gripper command being executed (a 4th start-keypoint "
            "value): tells holding the object from about to grasp it, which the image alone "
            "hardly shows at low resolution"
        },
    )
    cell_position_embedding: bool = field(
        default=True,
        metadata={
            "help": "add learned y/x embeddings to the cell features the volume keys are "
            "scored against (seed). Without them a cell's score depends on what it shows, "
            "not where it is: no learned prior against cells no training target fell in "
            "(docs/issue14_trials.md, change 6)"
        },
    )

    def __post_init__(self) -> None:
        check_voxel_sizes(self)
        widths = ("d_feat", "d_model", "n_heads", "tf_layers", "ff_mult")
        check_head_widths(self, positive=widths, non_negative=("refine_convs",))
        check_attention(self)  # d_model / n_heads, dropout
