"""The single-frame PARA baseline: dense per-cell heads on the DINO feature map (the paper's
and the seed's "PARA single-frame baseline", ~46% in-distribution in the seed's 3x3 matrix).

    image (B, H, W, 3) uint8 RGB ──normalise──> timm DINO ViT ──> patch tokens (B, P, C)
      ──> 1x1 conv -> d_feat, bilinear to the grid, + y/x embeddings
          + start marker at the EEF cell + start embedding (u, v, h[, g]) on every cell
          + refine (3x3 conv + GELU, residual)  ──> cell features F (B, d_feat, Hg, Wg)
    1x1 conv heads on F, one output set per timestep t:
      heatmap logits  (B, T, Hg, Wg)          one channel per t
      height logits   (B, T, Z, Hg, Wg)       Z height bins per cell and t
      gripper logits  (B, T, n_grip, Hg, Wg)  per cell and t
      rotation logits (B, T, n_rot, Hg, Wg)   per cell and t
    graph outputs (voxel_volume): per t the argmax cell (y, x) of the heatmap, then the
      height, gripper and rotation logits read (gathered) at that cell: voxel (z, y, x) with
      z = argmax height bin there; voxel_prob = p(cell) * p(z | cell).

Registered as "para_single_frame", head family "voxel_volume": the same graph outputs as
para_dino_kv, so the node, the bridge, replay and the in-process evaluation run it unchanged.

How it follows the seed: the seed compares its variants against a "PARA single-frame baseline"
that predicts a T-step open-loop window from one image, pixel-aligned: a heatmap over the
feature grid per step, a height per pixel, and the gripper and rotation read at the predicted
pixel, on the same DINO backbone, bins and losses as the 5-layer model (DESIGN §3).

What was designed here, where the seed is silent:
  * The heads are 1x1 convolutions on the per-cell features (no transformer): each cell
    scores itself, which is what "pixel-aligned" means at its plainest.
  * Start conditioning, the same input as para_dino_kv (B, 3 | 4): a learned marker vector is
    added to the EEF's cell, and a Fourier embedding of (u / W, v / H, h normalised[, the
    gripper command]) is added to every cell; the refine convolutions come after both, so
    they spread "the gripper is here, at this height" to the neighbouring cells.
  * Teacher forcing: in training the height, gripper and rotation logits are read at the
    TARGET cell of each step (the cell the heatmap should pick), not at the predicted one;
    at inference (and in the exported graph) at the argmax cell.
  * Targets out of the image (voxel_index -100) are ignored by the heatmap and height CE;
    their gripper and rotation are still learned, read at the target's cell clipped into
    the grid (the class labels stay valid).

Loss: heatmap CE per timestep over the flattened Hg*Wg cells
      + height_loss_weight * height CE at the target cell
      + gripper_loss_weight * gripper CE + rotation_loss_weight * rotation CE (TrainConfig,
      the same weights as para_dino_kv) at the target cell.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from para_ros.core.contract import PolicySpec
from para_training.policies.backbone import IMAGENET_MEAN, IMAGENET_STD, build_backbone
from para_training.policies.common import (
    IGNORE_INDEX,
    ExportIO,
    PolicyModel,
    class_losses,
    class_predictions,
    fourier_features,
    gather_cells,
    normalised_start,
    start_cell,
    voxel_example_inputs,
    voxel_volume_io,
)
from para_training.policies.para_single_frame.configuration_para_single_frame import (
    ParaSingleFrameConfig,
)
from para_training.policies.registry import register


@register("para_single_frame", config=ParaSingleFrameConfig, head="voxel_volume")
class ParaSingleFrame(PolicyModel):
    def __init__(self, cfg: ParaSingleFrameConfig):
        super().__init__()
        self.cfg = cfg
        T, Z, Hg, Wg, Df = cfg.steps, cfg.height_bins, cfg.grid_height, cfg.grid_width, cfg.d_feat
        self.backbone = build_backbone(cfg)  # frozen when cfg.freeze_backbone
        C = self.backbone.num_features
        self.n_prefix = self.backbone.num_prefix_tokens
        self.patch_hw = tuple(self.backbone.patch_embed.grid_size)  # (Hp, Wp)

        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255)
        self.register_buffer("pixel_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255)
        self.register_buffer(
            "height_range", torch.tensor([cfg.height_min, cfg.height_max]), persistent=False
        )
        self.register_buffer(
            "gripper_range", torch.tensor([cfg.gripper_min, cfg.gripper_max]), persistent=False
        )
        self.start_dims = 4 if cfg.gripper_input else 3

        # patch tokens -> per-cell features F, conditioned on the start keypoint
        self.feat_proj = nn.Conv2d(C, Df, kernel_size=1)
        self.cell_y_emb = nn.Parameter(torch.zeros(1, Df, Hg, 1))  # learned y embedding
        self.cell_x_emb = nn.Parameter(torch.zeros(1, Df, 1, Wg))  # learned x embedding
        self.start_marker = nn.Parameter(torch.zeros(1, Df, 1, 1))  # marks the EEF cell
        self.n_start_freq = 8
        self.start_proj = nn.Sequential(
            nn.Linear(self.start_dims * 2 * self.n_start_freq, Df), nn.GELU(), nn.Linear(Df, Df)
        )
        layers: list[nn.Module] = []
        for _ in range(cfg.refine_convs):
            layers += [nn.Conv2d(Df, Df, kernel_size=3, padding=1), nn.GELU()]
        self.refine = nn.Sequential(*layers)

        # 1x1 conv heads: one output set per timestep
        self.heat_out = nn.Conv2d(Df, T, kernel_size=1)
        self.height_out = nn.Conv2d(Df, T * Z, kernel_size=1)
        self.gripper_out = nn.Conv2d(Df, T * cfg.gripper_bins, kernel_size=1)
        self.rotation_out = nn.Conv2d(Df, T * cfg.rotation_classes, kernel_size=1)
        for p in (self.cell_y_emb, self.cell_x_emb, self.start_marker):
            nn.init.normal_(p, std=0.02)

    # -------------------------------------------------------------------------------------
    def forward(self, image: torch.Tensor, start: torch.Tensor) -> dict[str, torch.Tensor]:
        """image (B, H, W, 3) uint8 RGB; start (B, 3) = (u px, v px, h m), or (B, 4) with the
        gripper command being executed when `gripper_input` -> dense per-cell logits."""
        cfg = self.cfg
        B = image.shape[0]
        T, Z, Hg, Wg = cfg.steps, cfg.height_bins, cfg.grid_height, cfg.grid_width
        Hp, Wp = self.patch_hw
        x = image.permute(0, 3, 1, 2).float()  # (B, 3, H, W)
        x = (x - self.pixel_mean) / self.pixel_std  # (B, 3, H, W)
        tokens = self.backbone.forward_features(x)  # (B, prefix + Hp*Wp, C)
        patches = tokens[:, self.n_prefix :]  # (B, Hp*Wp, C)

        pmap = patches.transpose(1, 2).reshape(B, -1, Hp, Wp)  # (B, C, Hp, Wp)
        feat = self.feat_proj(pmap)  # (B, Df, Hp, Wp)
        up = dict(size=(Hg, Wg), mode="bilinear", align_corners=False)
        feat = F.interpolate(feat, **up)  # (B, Df, Hg, Wg)
        feat = feat + self.cell_y_emb + self.cell_x_emb  # (B, Df, Hg, Wg)
        ci, cj = start_cell(start, (cfg.image_height, cfg.image_width), (Hg, Wg))  # (B,), (B,)
        rows = torch.arange(Hg, device=image.device, dtype=ci.dtype)  # (Hg,)
        cols = torch.arange(Wg, device=image.device, dtype=cj.dtype)  # (Wg,)
        mark = (rows[None, :, None] == ci[:, None, None]) & (
            cols[None, None, :] == cj[:, None, None]
        )  # (B, Hg, Wg)
        start_n = normalised_start(start, cfg, self.height_range, self.gripper_range)  # (B, 3|4)
        start_emb = self.start_proj(fourier_features(start_n, self.n_start_freq))  # (B, Df)
        feat = feat + mark[:, None].to(feat.dtype) * self.start_marker  # (B, Df, Hg, Wg)
        feat = feat + start_emb[:, :, None, None]  # (B, Df, Hg, Wg)
        feat = feat + self.refine(feat)  # (B, Df, Hg, Wg)

        return {
            "heatmap_logits": self.heat_out(feat),  # (B, T, Hg, Wg)
            "height_logits": self.height_out(feat).view(B, T, Z, Hg, Wg),  # (B, T, Z, Hg, Wg)
            "gripper_map": self.gripper_out(feat).view(B, T, -1, Hg, Wg),  # (B, T, G, Hg, Wg)
            "rotation_map": self.rotation_out(feat).view(B, T, -1, Hg, Wg),  # (B, T, R, Hg, Wg)
        }

    # -- registry interface (policies.common.PolicyModel) ----------------------------------
    def compute_loss(self, out: dict, batch: dict, spec: PolicySpec, train_cfg) -> dict:
        Wg = spec.grid.width
        heat = out["heatmap_logits"].flatten(2)  # (B, T, Hg*Wg)
        vox = batch["voxel"]  # (B, T, 3) (z, y, x), the cell clipped into the grid
        cell = vox[..., 1] * Wg + vox[..., 2]  # (B, T) the target cell
        in_view = batch["voxel_index"] != IGNORE_INDEX  # (B, T)
        if in_view.any():
            ignore = torch.full_like(cell, IGNORE_INDEX)  # (B, T)
            loss_xy = F.cross_entropy(
                heat.flatten(0, 1),
                torch.where(in_view, cell, ignore).flatten(),
                ignore_index=IGNORE_INDEX,
            )
            # teacher forcing: the height bins are read at the target cell
            height = gather_cells(out["height_logits"], cell)  # (B, T, Z)
            loss_z = F.cross_entropy(
                height.flatten(0, 1),
                torch.where(in_view, vox[..., 0], ignore).flatten(),
                ignore_index=IGNORE_INDEX,
            )
        else:
            loss_xy = heat.sum() * 0.0
            loss_z = out["height_logits"].sum() * 0.0
        at_target = {  # teacher forcing: gripper and rotation read at the target cell
            "gripper_logits": gather_cells(out["gripper_map"], cell),  # (B, T, G)
            "rotation_logits": gather_cells(out["rotation_map"], cell),  # (B, T, R)
        }
        loss_g, loss_r = class_losses(at_target, batch, spec)
        total = (
            loss_xy
            + self.cfg.height_loss_weight * loss_z
            + train_cfg.gripper_loss_weight * loss_g
            + train_cfg.rotation_loss_weight * loss_r
        )
        return {"loss": total, "xy": loss_xy, "z": loss_z, "g": loss_g, "r": loss_r}

    def predict(self, out: dict, spec: PolicySpec) -> dict:
        """Graph outputs: per step the argmax cell, the height, gripper and rotation read
        there; voxel_prob = p(cell) p(z | cell); heatmap = p(cell)."""
        heat = out["heatmap_logits"]  # (B, T, Hg, Wg)
        B, T = heat.shape[0], heat.shape[1]
        Hg, Wg = spec.grid.height, spec.grid.width
        prob = torch.softmax(heat.reshape(B, T, -1), dim=-1)  # (B, T, Hg*Wg)
        cell = heat.reshape(B, T, -1).argmax(dim=-1)  # (B, T) the predicted cell
        p_cell = prob.gather(-1, cell[..., None]).squeeze(-1)  # (B, T)
        height = gather_cells(out["height_logits"], cell)  # (B, T, Z)
        p_z, z = torch.softmax(height, dim=-1).max(dim=-1)  # (B, T), (B, T)
        voxel = torch.stack([z, cell // Wg, cell % Wg], dim=-1)  # (B, T, 3)
        at_cell = {
            "gripper_logits": gather_cells(out["gripper_map"], cell),  # (B, T, G)
            "rotation_logits": gather_cells(out["rotation_map"], cell),  # (B, T, R)
        }
        cls = class_predictions(at_cell, spec)
        return {
            "voxel": voxel,
            "voxel_prob": p_cell * p_z,
            "gripper_bin": cls["gripper_bin"],
            "rotation_bin": cls["rotation_bin"],
            "gripper_logits": cls["gripper_logits"],
            "rotation_logits": cls["rotation_logits"],
            "heatmap": prob.reshape(B, T, Hg, Wg),
        }

    def export_io(self, spec: PolicySpec) -> ExportIO:
        return voxel_volume_io(spec, self.cfg.gripper_bins, self.cfg.rotation_classes)

    @staticmethod
    def example_inputs(spec: PolicySpec, batch: int, seed: int = 0) -> dict:
        return voxel_example_inputs(spec, batch, seed)
