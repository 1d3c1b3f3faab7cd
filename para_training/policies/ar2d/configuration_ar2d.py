"""Configuration of the seed's 2D autoregressive policy with 7-DoF heads ("(A) v2 AR").

Sizes that come from the data (T steps, Z height bins, gripper bins, rotation classes, image and
grid size, the height and gripper ranges, and the lookahead K) are fields too, so the model is
built from this config alone; `from_spec` fills them from a PolicySpec.

`lookahead` is the seed's fix for its 0% closed-loop runs: the target of AR step t is the EEF
K recorded frames after step t - 1's (the first step's: K frames after the current one). It IS
the PolicySpec's window stride (the dataset's targets are frames f + stride * (t + 1),
para_training.data.dataset): one target path, set with the data flag `--stride` (presets set
it in their data part) and recorded here so the checkpoint and the contract say it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from para_ros.core.contract import PolicySpec
from para_training.policies.common import (
    GRIPPER_INPUT_HELP,
    VOXEL_SIZE_FIELDS,
    VoxelSizes,
    check_attention,
    check_head_widths,
    check_voxel_sizes,
    voxel_sizes_from_spec,
)

# Fields that come from the data (the PolicySpec), not from the user: `from_spec` sets them.
SIZE_FIELDS = VOXEL_SIZE_FIELDS | {"lookahead"}


@dataclass
class Ar2dConfig(VoxelSizes):
    SIZE_FIELDS = SIZE_FIELDS

    # backbone fields (BackboneConfig, shared by every policy) and the input / output sizes
    # from the PolicySpec (VoxelSizes, shared by the voxel_volume policies; T = `steps`, the
    # AR steps), then the lookahead ----------------------------------------------------------
    lookahead: int = 5  # K: recorded frames between AR steps = spec.window.stride (`--stride`)
    # head ------------------------------------------------------------------------------------
    d_feat: int = field(default=48, metadata={"help": "per-cell feature width (seed: 48)"})
    refine_convs: int = field(default=2, metadata={"help": "3x3 conv + GELU layers in refine"})
    d_model: int = field(default=256, metadata={"help": "AR step-token width"})
    n_heads: int = field(default=8, metadata={"help": "cross-attention heads"})
    ar_layers: int = field(
        default=4,
        metadata={"help": "AR head layers: cross-attention to the image tokens + feed-forward"},
    )
    ff_mult: int = field(default=4, metadata={"help": "feed-forward width multiple"})
    dropout: float = field(default=0.0, metadata={"help": "dropout in the AR head"})
    height_loss_weight: float = field(
        default=1.0, metadata={"help": "weight of the height-bin CE of each AR step"}
    )
    gripper_input: bool = field(default=False, metadata={"help": GRIPPER_INPUT_HELP})

    def __post_init__(self) -> None:
        check_voxel_sizes(self)
        widths = ("lookahead", "d_feat", "d_model", "n_heads", "ar_layers", "ff_mult")
        check_head_widths(self, positive=widths, non_negative=("refine_convs",))
        check_attention(self)  # d_model / n_heads, dropout
        check_head_widths(self, non_negative=("height_loss_weight",))

    @classmethod
    def sizes_from_spec(cls, spec: PolicySpec, stats=None) -> dict:
        return {**voxel_sizes_from_spec(spec), "lookahead": spec.window.stride}
