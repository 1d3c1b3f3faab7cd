"""Configuration of the coordinate-regression baseline (the paper's ACT-style comparison).

Sizes that come from the data (T steps, gripper bins, rotation classes, image size, the EEF
position statistics and the gripper range) are fields too, so the model is built from this
config alone; `from_spec` fills them from the PolicySpec and the dataset statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from para_ros.core.contract import PolicySpec
from para_training.policies.common import (
    VOXEL_SIZE_FIELDS,
    BackboneConfig,
    check_head_widths,
    voxel_sizes_from_spec,
)

# Fields that come from the data (the PolicySpec and the statistics), not from the user: the
# voxel_volume sizes but the grid and the height bins, and the EEF position statistics.
NOT_SIZES = {"grid_height", "grid_width", "height_bins", "height_min", "height_max"}
SIZE_FIELDS = (VOXEL_SIZE_FIELDS - NOT_SIZES) | {"position_mean", "position_std"}
POOLINGS = ("cls", "mean")


@dataclass
class CoordRegressionConfig(BackboneConfig):
    SIZE_FIELDS = SIZE_FIELDS

    # backbone fields: BackboneConfig (shared by every policy) ------------------------
    # input / output sizes (from the PolicySpec and the dataset statistics) -----------------
    image_height: int = 224
    image_width: int = 224
    steps: int = 6  # T
    gripper_bins: int = 32
    rotation_classes: int = 48
    rotation_mode: str = "pca1d"
    gripper_min: float = -1.0
    gripper_max: float = 1.0
    position_mean: tuple[float, ...] = (0.0, 0.0, 0.0)  # world metres, per axis
    position_std: tuple[float, ...] = (1.0, 1.0, 1.0)
    # head ------------------------------------------------------------------------------------
    pooling: str = field(
        default="cls",
        metadata={"help": "global image token: cls (the paper's CLS token) | mean of patches"},
    )
    d_model: int = field(default=256, metadata={"help": "width of the regression MLP"})
    mlp_layers: int = field(default=2, metadata={"help": "hidden Linear + GELU layers"})
    dropout: float = field(default=0.0, metadata={"help": "dropout in the MLP"})
    gripper_input: bool = field(
        default=False,
        metadata={"help": "also condition on the gripper command being executed"},
    )
    position_loss_weight: float = field(
        default=1.0, metadata={"help": "weight of the L1 loss on standardised positions"}
    )

    def __post_init__(self) -> None:
        positive = ("image_height", "image_width", "steps", "gripper_bins", "d_model")
        check_head_widths(self, (*positive, "rotation_classes"), non_negative=("mlp_layers",))
        if self.pooling not in POOLINGS:
            raise ValueError(
                f"CoordRegressionConfig.pooling must be one of {POOLINGS}, got {self.pooling!r}"
            )
        if self.rotation_mode == "euler" and self.rotation_classes % 3:
            raise ValueError("CoordRegressionConfig: euler rotation_classes must be 3 x n_bins")
        if len(self.position_mean) != 3 or len(self.position_std) != 3:
            raise ValueError("CoordRegressionConfig: position_mean/std need 3 values")
        if not all(s > 0 for s in self.position_std):
            raise ValueError("CoordRegressionConfig.position_std must be > 0 on every axis")
        if not self.gripper_max > self.gripper_min:
            raise ValueError("CoordRegressionConfig: needs gripper_min < gripper_max")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("CoordRegressionConfig.dropout must be in [0, 1)")
        self.position_mean = tuple(float(v) for v in self.position_mean)
        self.position_std = tuple(float(v) for v in self.position_std)

    @classmethod
    def sizes_from_spec(cls, spec: PolicySpec, stats=None) -> dict:
        if stats is None:
            raise ValueError(
                "coord_regression needs the dataset statistics (EEF position mean/std)"
            )
        sizes = {k: v for k, v in voxel_sizes_from_spec(spec).items() if k in SIZE_FIELDS}
        return {
            **sizes,
            "position_mean": tuple(stats.position_mean),
            "position_std": tuple(stats.position_std),
        }
