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
from para_training.policies.cell_features import CellFeaturePolicy, refine_stack
from para_training.policies.common import (
    IGNORE_INDEX,
    cell_choice,
    class_losses,
    gather_cells,
    heatmap_loss,
    heatmap_losses,
    voxel_outputs,
)
from para_training.policies.para_single_frame.configuration_para_single_frame import (
    ParaSingleFrameConfig,
)
from para_training.policies.registry import register


@register("para_single_frame", config=ParaSingleFrameConfig, head="voxel_volume")
class ParaSingleFrame(CellFeaturePolicy):
    def __init__(self, cfg: ParaSingleFrameConfig):
        super().__init__()
        self.cfg = cfg
        T, Z, Df = cfg.steps, cfg.height_bins, cfg.d_feat
        C = self.init_backbone(cfg)  # backbone (frozen when cfg.freeze_backbone), pixel_*
        self.init_start_ranges(cfg)  # height_range, gripper_range, start_dims

        # patch tokens -> per-cell features F, conditioned on the start keypoint: the refine
        # convolutions come after the start marker and embedding
        self.init_cell_features(C, cfg, refine=False, marker=True)
        self.init_start_embedding(Df)  # n_start_freq, start_proj
        self.refine = refine_stack(Df, cfg.refine_convs)

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
        patches = self.patch_tokens(image)  # (B, Hp*Wp, C)
        feat = self.cell_features(patches, refine=False)  # (B, Df, Hg, Wg)
        feat = self.mark_start_cell(feat, start)  # (B, Df, Hg, Wg)
        feat = feat + self.start_embedding(start)[:, :, None, None]  # (B, Df, Hg, Wg)
        feat = feat + self.refine(feat)  # (B, Df, Hg, Wg)

        return {
            "heatmap_logits": self.heat_out(feat),  # (B, T, Hg, Wg)
            "height_logits": self.height_out(feat).view(B, T, Z, Hg, Wg),  # (B, T, Z, Hg, Wg)
            "gripper_map": self.gripper_out(feat).view(B, T, -1, Hg, Wg),  # (B, T, G, Hg, Wg)
            "rotation_map": self.rotation_out(feat).view(B, T, -1, Hg, Wg),  # (B, T, R, Hg, Wg)
        }

    # -- registry interface (policies.common.PolicyModel; export_io, example_inputs:
    # CellFeaturePolicy's voxel_volume graph) ------------------------------------------------
    def compute_loss(self, out: dict, batch: dict, spec: PolicySpec, train_cfg) -> dict:
        loss_xy, cell, in_view = heatmap_loss(out["heatmap_logits"], batch, spec.grid.width)
        if in_view.any():
            # teacher forcing: the height bins are read at the target cell
            height = gather_cells(out["height_logits"], cell)  # (B, T, Z)
            target_z = torch.where(in_view, batch["voxel"][..., 0], IGNORE_INDEX)  # (B, T)
            loss_z = F.cross_entropy(
                height.flatten(0, 1), target_z.flatten(), ignore_index=IGNORE_INDEX
            )
        else:
            loss_z = out["height_logits"].sum() * 0.0
        at_target = {  # teacher forcing: gripper and rotation read at the target cell
            "gripper_logits": gather_cells(out["gripper_map"], cell),  # (B, T, G)
            "rotation_logits": gather_cells(out["rotation_map"], cell),  # (B, T, R)
        }
        loss_g, loss_r = class_losses(at_target, batch, spec)  # (), ()
        return heatmap_losses(
            loss_xy, loss_z, loss_g, loss_r, self.cfg.height_loss_weight, train_cfg
        )

    def predict(self, out: dict, spec: PolicySpec) -> dict:
        """Graph outputs: per step the argmax cell, the height, gripper and rotation read
        there; voxel_prob = p(cell) p(z | cell); heatmap = p(cell)."""
        prob, cell, p_cell = cell_choice(out["heatmap_logits"])  # (B, T, Hg*Wg), (B, T) x 2
        Hg, Wg = spec.grid.height, spec.grid.width
        height = gather_cells(out["height_logits"], cell)  # (B, T, Z)
        p_z, z = torch.softmax(height, dim=-1).max(dim=-1)  # (B, T), (B, T)
        voxel = torch.stack([z, cell // Wg, cell % Wg], dim=-1)  # (B, T, 3)
        at_cell = {
            "gripper_logits": gather_cells(out["gripper_map"], cell),  # (B, T, G)
            "rotation_logits": gather_cells(out["rotation_map"], cell),  # (B, T, R)
        }
        heat = prob.reshape(*cell.shape, Hg, Wg)  # (B, T, Hg, Wg) p(cell)
        return voxel_outputs(voxel, p_cell * p_z, at_cell, heat, spec)
