"""Configuration of the coordinate-regression baseline (the paper's ACT-style comparison).

Sizes that come from the data (T steps, gripper bins, rotation classes, image size, the EEF
position statistics and the gripper range) are fields too, so the model is built from this
config alone; `from_spec` fills them from the PolicySpec and the dataset statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from para_ros.core.contract import PolicySpec
from para_training.policies.common import BackboneConfig

SIZE_FIELDS = frozenset(
    {
        "image_height",
        "image_width",
        "steps",
        "gripper_bins",
        "rotation_classes",
        "rotation_mode",
        "gripper_min",
        "gripper_max",
        "position_mean",
        "position_std",
    }
)
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
        for name in ("image_height", "image_width", "steps", "gripper_bins", "d_model"):
            if getattr(self, name) <= 0:
                raise ValueError(
                    f"CoordRegressionConfig.{name} must be > 0, got {getattr(self, name)}"
                )
        if self.rotation_classes <= 0:
            raise ValueError("CoordRegressionConfig.rotation_classes must be > 0")
        if self.mlp_layers < 0:
            raise ValueError("CoordRegressionConfig.mlp_layers must be >= 0")
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
        return dict(
            image_height=spec.image.height,
            image_width=spec.image.width,
            steps=spec.window.steps,
            gripper_bins=spec.gripper.n_bins,
            rotation_classes=spec.rotation.n_classes,
            rotation_mode=spec.rotation.mode,
            gripper_min=spec.gripper.min,
            gripper_max=spec.gripper.max,
            position_mean=tuple(stats.position_mean),
            position_std=tuple(stats.position_std),
        )
