"""Coordinate-regression baseline: the paper's ACT-style comparison for PARA.

    image (B, H, W, 3) uint8 RGB ──normalise──> timm DINO ViT (built by name, as PARA's)
      ──> one global token g (B, C): the CLS token (or the mean of the patch tokens)
    eef_pos (B, 3) world m ──standardise (dataset mean/std)──> Linear ──> p (B, D)
    [gripper_state (B, 1) ──scale to [0, 1]──> Linear ──> (B, D), added to p]
    MLP([Linear(C -> D)(g) + p]) ──> h (B, D)
      ├─ position  (B, T, 3)       regressed, standardised; the graph outputs world metres
      ├─ gripper logits (B, T, n_grip)   the same bins as PARA
      └─ rotation logits (B, T, n_rot)   the same bins as PARA (pca1d | euler | kmeans)

How it follows the paper: the PARA paper compares against coordinate regression "in the style
of ACT": actions regressed from a global (CLS) token of the same image backbone, with no
pixel-aligned structure; that comparison is what this model reproduces (54% vs 1% on
left->right extrapolation, 61% vs 24% on viewpoints in the paper).

What was designed here, where the paper is silent:
  * The head is an MLP on the single global token (no transformer decoder, no CVAE, no
    temporal ensembling): the ablation is the *output parameterisation*, so the backbone,
    data, T, stride and the gripper/rotation classification are PARA's.
  * Proprioception is the current EEF position in world metres (ACT feeds joint positions);
    it reaches the graph as the declared runtime input `eef_pos` (contract
    `model.extra_inputs`), and the gripper command being executed as `gripper_state` when
    `gripper_input` is set (PARA's libero128 recipe conditions on it too).
  * Targets are absolute future EEF positions, standardised per axis with the dataset's mean
    and standard deviation (computed before the split; they travel in the PolicySpec as this
    config's `position_mean` / `position_std`), trained with L1 (ACT's choice); the graph
    de-standardises, so the runtime receives world metres (head family `world_regression`).
  * Gripper and rotation are classified into the PARA bins (CE, the same loss weights), so
    the executor, the safety gate and the metrics run unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from para_ros.core.contract import GraphInputSpec, PolicySpec, TensorSpec
from para_training.policies.backbone import ViTPolicy
from para_training.policies.common import ExportIO, class_losses, class_predictions
from para_training.policies.coord_regression.configuration_coord_regression import (
    CoordRegressionConfig,
)
from para_training.policies.registry import register


@register("coord_regression", config=CoordRegressionConfig, head="world_regression")
class CoordRegression(ViTPolicy):
    def __init__(self, cfg: CoordRegressionConfig):
        super().__init__()
        self.cfg = cfg
        T, D = cfg.steps, cfg.d_model
        C = self.init_backbone(cfg)  # backbone (frozen when cfg.freeze_backbone), pixel_*
        if cfg.pooling == "cls" and self.n_prefix == 0:
            raise ValueError(f"backbone {cfg.backbone!r} has no CLS token: use pooling=mean")
        # dataset statistics (also in the PolicySpec): non-persistent, rebuilt from the config
        self.register_buffer(
            "pos_mean", torch.tensor(cfg.position_mean, dtype=torch.float32), persistent=False
        )
        self.register_buffer(
            "pos_std", torch.tensor(cfg.position_std, dtype=torch.float32), persistent=False
        )
        self.register_buffer(
            "gripper_range", torch.tensor([cfg.gripper_min, cfg.gripper_max]), persistent=False
        )
        self.image_proj = nn.Linear(C, D)
        self.proprio_proj = nn.Linear(3, D)
        self.gripper_proj = nn.Linear(1, D) if cfg.gripper_input else None
        layers: list[nn.Module] = [nn.LayerNorm(D)]
        for _ in range(cfg.mlp_layers):
            layers += [nn.Linear(D, D), nn.GELU(), nn.Dropout(cfg.dropout)]
        self.mlp = nn.Sequential(*layers)
        self.position_out = nn.Linear(D, T * 3)
        self.gripper_out = nn.Linear(D, T * cfg.gripper_bins)
        self.rotation_out = nn.Linear(D, T * cfg.rotation_classes)

    def forward(
        self,
        image: torch.Tensor,
        eef_pos: torch.Tensor,
        gripper_state: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """image (B, H, W, 3) uint8 RGB; eef_pos (B, 3) world metres; gripper_state (B, 1)
        gripper units (with `gripper_input`) -> standardised positions and logits."""
        cfg = self.cfg
        B, T = image.shape[0], cfg.steps
        tokens = self.image_tokens(image)  # (B, prefix + Hp*Wp, C)
        if cfg.pooling == "cls":
            g = tokens[:, 0]  # (B, C) the CLS token
        else:
            g = tokens[:, self.n_prefix :].mean(dim=1)  # (B, C) mean of the patch tokens
        p = (eef_pos - self.pos_mean) / self.pos_std  # (B, 3) standardised
        h = self.image_proj(g) + self.proprio_proj(p)  # (B, D)
        if self.gripper_proj is not None:
            gmin, gmax = self.gripper_range[0], self.gripper_range[1]
            h = h + self.gripper_proj((gripper_state - gmin) / (gmax - gmin))  # (B, D)
        h = self.mlp(h)  # (B, D)
        return {
            "position_norm": self.position_out(h).view(B, T, 3),  # (B, T, 3) standardised
            "gripper_logits": self.gripper_out(h).view(B, T, -1),  # (B, T, n_grip)
            "rotation_logits": self.rotation_out(h).view(B, T, -1),  # (B, T, n_rot)
        }

    # -- registry interface (policies.common.PolicyModel) ----------------------------------
    def compute_loss(self, out: dict, batch: dict, spec: PolicySpec, train_cfg) -> dict:
        target = (batch["target_pos"].float() - self.pos_mean) / self.pos_std  # (B, T, 3)
        loss_p = F.l1_loss(out["position_norm"], target)
        loss_g, loss_r = class_losses(out, batch, spec)  # (), ()
        total = (
            self.cfg.position_loss_weight * loss_p
            + train_cfg.gripper_loss_weight * loss_g
            + train_cfg.rotation_loss_weight * loss_r
        )
        return {"loss": total, "p": loss_p, "g": loss_g, "r": loss_r}

    def predict(self, out: dict, spec: PolicySpec) -> dict:
        """Graph outputs: world positions (metres), argmax bins and the logits."""
        pos = out["position_norm"] * self.pos_std + self.pos_mean  # (B, T, 3) world metres
        return {"position": pos, **class_predictions(out, spec)}

    def extra_input_names(self) -> tuple[str, ...]:
        return ("eef_pos", "gripper_state") if self.cfg.gripper_input else ("eef_pos",)

    def export_io(self, spec: PolicySpec) -> ExportIO:
        H, W, T = spec.image.height, spec.image.width, spec.window.steps
        rot_shape = ("batch", T, 3) if spec.rotation.mode == "euler" else ("batch", T)
        extra = tuple(GraphInputSpec.known(n) for n in self.extra_input_names())
        return ExportIO(
            inputs=(
                TensorSpec("image", "uint8", ("batch", H, W, 3)),
                *(TensorSpec(e.name, e.dtype, ("batch", *e.shape)) for e in extra),
            ),
            outputs=(
                TensorSpec("position", "float32", ("batch", T, 3)),
                TensorSpec("gripper_bin", "int64", ("batch", T)),
                TensorSpec("rotation_bin", "int64", rot_shape),
                TensorSpec("gripper_logits", "float32", ("batch", T, self.cfg.gripper_bins)),
                TensorSpec("rotation_logits", "float32", ("batch", T, self.cfg.rotation_classes)),
            ),
            extra_inputs=extra,
        )

    @staticmethod
    def example_inputs(spec: PolicySpec, batch: int, seed: int = 0) -> dict:
        g = torch.Generator().manual_seed(seed)
        H, W = spec.image.height, spec.image.width
        hp = spec.model.hyperparameters
        mean = torch.tensor(hp["position_mean"], dtype=torch.float32)  # (3,)
        std = torch.tensor(hp["position_std"], dtype=torch.float32)  # (3,)
        image = torch.randint(0, 256, (batch, H, W, 3), dtype=torch.uint8, generator=g)
        eef = mean + std * torch.randn(batch, 3, generator=g)  # (batch, 3) world metres
        feeds = {"image": image, "eef_pos": eef}
        if hp.get("gripper_input", False):
            span = spec.gripper.max - spec.gripper.min
            grip = spec.gripper.min + torch.rand(batch, 1, generator=g) * span  # (batch, 1)
            feeds["gripper_state"] = grip
        return feeds
