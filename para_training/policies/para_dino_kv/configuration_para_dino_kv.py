"""Configuration of the 5-layer DINO-KV PARA model (seed: "5L transformer + sin z/t + PCA-1D").

Sizes that come from the data (T steps, Z height bins, gripper bins, rotation classes, image and
grid size) are fields too, so the model is built from this config alone; `from_spec` fills them
from a PolicySpec.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from para_ros.core.contract import PolicySpec
from para_training.policies.common import (
    VOXEL_SIZE_FIELDS,
    BackboneConfig,
    voxel_sizes_from_spec,
)

# Fields that come from the data (the PolicySpec), not from the user: `from_spec` sets them.
SIZE_FIELDS = VOXEL_SIZE_FIELDS


@dataclass
class ParaDinoKVConfig(BackboneConfig):
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

    def __post_init__(self) -> None:
        positive = [
            f.name
            for f in fields(self)
            if f.type in ("int", int)
            and not f.name.startswith("vit_")
            and f.name != "refine_convs"
        ]
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"ParaDinoKVConfig.{name} must be > 0, got {getattr(self, name)}")
        if self.refine_convs < 0:
            raise ValueError("ParaDinoKVConfig.refine_convs must be >= 0")
        if self.d_model % self.n_heads:
            raise ValueError(
                f"ParaDinoKVConfig: d_model ({self.d_model}) must be divisible by n_heads "
                f"({self.n_heads})"
            )
        if self.rotation_mode == "euler" and self.rotation_classes % 3:
            raise ValueError("ParaDinoKVConfig: euler rotation_classes must be 3 x n_bins")
        if not self.height_max > self.height_min:
            raise ValueError("ParaDinoKVConfig: needs height_min < height_max")
        if not self.gripper_max > self.gripper_min:
            raise ValueError("ParaDinoKVConfig: needs gripper_min < gripper_max")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ParaDinoKVConfig.dropout must be in [0, 1), got {self.dropout}")

    @classmethod
    def sizes_from_spec(cls, spec: PolicySpec, stats=None) -> dict:
        return voxel_sizes_from_spec(spec)
