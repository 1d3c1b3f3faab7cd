"""Configuration of the seed's voxel-token policies, `voxel_abs` and `voxel_rel` (one config
for both: they differ only in the frame of their xyz encoding, which their registered name
says).

Sizes that come from the data (T steps, Z height bins, gripper bins, rotation classes, image and
grid size, the height and gripper ranges, and the workspace box) are fields too, so the model
is built from this config alone; `from_spec` fills them from the PolicySpec and the dataset
statistics. The workspace box normalises the xyz encoding: x and y span the box the EEF visited
in the data (DatasetStats.position_min / position_max), z the PolicySpec's height range; an
axis narrower than MIN_SPAN is widened about its centre.
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

# Fields that come from the data (the PolicySpec and the statistics), not from the user.
SIZE_FIELDS = VOXEL_SIZE_FIELDS | {"workspace_min", "workspace_max"}
MIN_SPAN = 0.1  # metres: the narrowest workspace axis (a dataset that never moves along one)


@dataclass
class VoxelTokenConfig(VoxelSizes):
    SIZE_FIELDS = SIZE_FIELDS

    # backbone fields (BackboneConfig, shared by every policy) and the input / output sizes
    # from the PolicySpec (VoxelSizes, shared by the voxel_volume policies); from the dataset
    # statistics: the workspace box --------------------------------------------------------
    workspace_min: tuple[float, ...] = (-0.5, -0.5, 0.0)  # world metres (x, y, z)
    workspace_max: tuple[float, ...] = (0.5, 0.5, 1.0)
    # head ------------------------------------------------------------------------------------
    d_feat: int = field(default=48, metadata={"help": "voxel-token width (seed cell width 48)"})
    refine_convs: int = field(default=2, metadata={"help": "3x3 conv + GELU layers in refine"})
    d_model: int = field(default=256, metadata={"help": "step-token width"})
    n_heads: int = field(default=8, metadata={"help": "attention heads of the step decoder"})
    tf_layers: int = field(
        default=5,
        metadata={"help": "step-decoder layers (self-attn among steps, cross-attn to image)"},
    )
    ff_mult: int = field(default=4, metadata={"help": "feed-forward width multiple"})
    dropout: float = field(default=0.0, metadata={"help": "dropout in the step decoder"})
    xyz_freqs: int = field(
        default=6,
        metadata={"help": "sin/cos octaves of each normalised voxel coordinate (besides x)"},
    )
    xyz_clip: float = field(
        default=2.0,
        metadata={
            "help": "normalised coordinates are clipped to [-clip, clip] (1 = the workspace's "
            "half-span): far points along grazing rays encode as the edge"
        },
    )
    d_pos: int = field(default=64, metadata={"help": "hidden width of the per-voxel MLPs"})
    voxel_layers: int = field(
        default=1,
        metadata={
            "help": "residual per-voxel MLPs mixing cell feature and xyz encoding (0 = the "
            "token is their sum)"
        },
    )
    gripper_input: bool = field(default=False, metadata={"help": GRIPPER_INPUT_HELP})

    def __post_init__(self) -> None:
        check_voxel_sizes(self)
        name = type(self).__name__
        widths = ("d_feat", "d_model", "n_heads", "tf_layers", "ff_mult", "xyz_freqs", "d_pos")
        check_head_widths(self, positive=widths, non_negative=("refine_convs", "voxel_layers"))
        check_attention(self)  # d_model / n_heads, dropout
        if not self.xyz_clip > 0:
            raise ValueError(f"{name}.xyz_clip must be > 0, got {self.xyz_clip}")
        if len(self.workspace_min) != 3 or len(self.workspace_max) != 3:
            raise ValueError(f"{name}: workspace_min/max need 3 values (x, y, z)")
        self.workspace_min = tuple(float(v) for v in self.workspace_min)
        self.workspace_max = tuple(float(v) for v in self.workspace_max)
        if not all(hi > lo for lo, hi in zip(self.workspace_min, self.workspace_max, strict=True)):
            raise ValueError(f"{name}: needs workspace_min < workspace_max on every axis")

    @classmethod
    def sizes_from_spec(cls, spec: PolicySpec, stats=None) -> dict:
        if stats is None:
            raise ValueError("the voxel-token policies need the dataset statistics (EEF range)")
        lo = [*stats.position_min[:2], spec.height.min]
        hi = [*stats.position_max[:2], spec.height.max]
        for k in range(3):
            if hi[k] - lo[k] < MIN_SPAN:
                mid = (hi[k] + lo[k]) / 2
                lo[k], hi[k] = mid - MIN_SPAN / 2, mid + MIN_SPAN / 2
        return {
            **voxel_sizes_from_spec(spec),
            "workspace_min": tuple(float(v) for v in lo),
            "workspace_max": tuple(float(v) for v in hi),
        }
