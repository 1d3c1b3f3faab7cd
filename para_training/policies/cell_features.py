"""The pieces the pixel-aligned (voxel_volume) policies share on top of the ViT: the per-cell
features F, the start-keypoint marker on them, the cross-attention memory of image tokens and
the start-keypoint token, the query decoder and the step heads.

    patch tokens (B, Hp*Wp, C) ──> patch map (B, C, Hp, Wp) ──> feat_proj 1x1 conv -> d_feat
      ──> bilinear to the grid ──> [+ refine: 3x3 conv + GELU layers, residual]
      ──> + cell_y_emb + cell_x_emb  ──> F (B, d_feat, Hg, Wg)        (`cell_features`)
    F + start_marker at the EEF's cell                                 (`mark_start_cell`)
    start embedding: start_proj(Fourier features of the normalised (u, v, h[, g]))
                                                                       (`start_embedding`)
    memory: mem_proj(patch tokens) + mem_y_emb + mem_x_emb (B, Hp*Wp, d_model) and the start
      token: start embedding + start_token_emb (B, 1, d_model)         (`memory_tokens`)

Each `init_*` creates its modules and parameters under the same attribute names in every model
and in the order the models always created them (so the checkpoints' state_dict keys and a
seeded build's initial weights are the models' own); the models add their own parts around
them and initialise the learned embeddings themselves, in their own order.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from para_ros.core.contract import PolicySpec
from para_training.policies.backbone import ViTPolicy
from para_training.policies.common import (
    ExportIO,
    fourier_features,
    normalised_start,
    start_cell,
    voxel_example_inputs,
    voxel_volume_io,
)


def refine_stack(width: int, n_convs: int) -> nn.Sequential:
    """n_convs x [3x3 conv (width -> width, same size) + GELU]; empty for 0."""
    layers: list[nn.Module] = []
    for _ in range(n_convs):
        layers += [nn.Conv2d(width, width, kernel_size=3, padding=1), nn.GELU()]
    return nn.Sequential(*layers)


class CellFeaturePolicy(ViTPolicy):
    """A voxel_volume policy on per-cell features of the ViT's patch tokens. Its config has the
    voxel sizes (policies.common.VoxelSizes), d_feat, refine_convs and gripper_input."""

    # -- building -----------------------------------------------------------------------------
    def init_start_ranges(self, cfg) -> None:
        """`height_range`, `gripper_range` (2,) buffers (non-persistent: rebuilt from the
        config) that normalise the start keypoint, and `start_dims`: its width, 3 | 4."""
        self.register_buffer(
            "height_range", torch.tensor([cfg.height_min, cfg.height_max]), persistent=False
        )
        self.register_buffer(
            "gripper_range", torch.tensor([cfg.gripper_min, cfg.gripper_max]), persistent=False
        )
        self.start_dims = 4 if cfg.gripper_input else 3

    def init_cell_features(self, C: int, cfg, *, refine: bool = True, marker: bool = False):
        """`feat_proj` (1x1 conv C -> d_feat), `refine` (cfg.refine_convs 3x3 conv + GELU
        layers; refine=False: the model builds it later, after its start conditioning),
        `cell_y_emb`, `cell_x_emb` (None when cfg.cell_position_embedding is False) and, with
        `marker`, `start_marker` (zero-initialised)."""
        Df, Hg, Wg = cfg.d_feat, cfg.grid_height, cfg.grid_width
        self.feat_proj = nn.Conv2d(C, Df, kernel_size=1)
        if refine:
            self.refine = refine_stack(Df, cfg.refine_convs)
        if getattr(cfg, "cell_position_embedding", True):
            self.cell_y_emb = nn.Parameter(torch.zeros(1, Df, Hg, 1))  # learned y embedding
            self.cell_x_emb = nn.Parameter(torch.zeros(1, Df, 1, Wg))  # learned x embedding
        else:  # F carries no absolute position: a cell scores by what it shows
            self.register_parameter("cell_y_emb", None)
            self.register_parameter("cell_x_emb", None)
        if marker:
            self.start_marker = nn.Parameter(torch.zeros(1, Df, 1, 1))  # marks the EEF cell

    def init_start_embedding(self, width: int) -> None:
        """The start keypoint's embedding: `n_start_freq` octaves of Fourier features of the
        normalised (u, v, h[, g]) and `start_proj`, an MLP to `width`."""
        self.n_start_freq = 8
        self.start_proj = nn.Sequential(
            nn.Linear(self.start_dims * 2 * self.n_start_freq, width),
            nn.GELU(),
            nn.Linear(width, width),
        )

    def init_memory(self, C: int, D: int) -> None:
        """The cross-attention memory's parts: `mem_proj` (C -> D), `mem_y_emb`, `mem_x_emb`
        over the patch grid, and the start-keypoint token: the start embedding (width D) and
        `start_token_emb` (learned "this is the EEF")."""
        Hp, Wp = self.patch_hw
        self.mem_proj = nn.Linear(C, D)
        self.mem_y_emb = nn.Parameter(torch.zeros(1, Hp, 1, D))
        self.mem_x_emb = nn.Parameter(torch.zeros(1, 1, Wp, D))
        self.init_start_embedding(D)
        self.start_token_emb = nn.Parameter(torch.zeros(1, 1, D))

    def init_query_decoder(self, cfg) -> None:
        """`decoder`: cfg.tf_layers pre-norm x [self-attention among the queries,
        cross-attention to the memory, GELU feed-forward], and `out_norm`."""
        D = cfg.d_model
        layer = nn.TransformerDecoderLayer(
            d_model=D,
            nhead=cfg.n_heads,
            dim_feedforward=cfg.ff_mult * D,
            dropout=cfg.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.decoder = nn.TransformerDecoder(layer, num_layers=cfg.tf_layers)
        self.out_norm = nn.LayerNorm(D)

    def init_step_heads(self, cfg, height_bins: int = 0) -> None:
        """The heads of a step token (d_model): `key_out` (-> d_feat, scored against cell or
        voxel features), `temperature` (logits scale exp(temperature)), with `height_bins`
        `height_out`, then `gripper_out` and `rotation_out` (logits)."""
        D = cfg.d_model
        self.key_out = nn.Linear(D, cfg.d_feat)
        self.temperature = nn.Parameter(torch.zeros(()))  # logits scale = exp(temperature)
        if height_bins:
            self.height_out = nn.Linear(D, height_bins)
        self.gripper_out = nn.Linear(D, cfg.gripper_bins)
        self.rotation_out = nn.Linear(D, cfg.rotation_classes)

    # -- forward pieces -----------------------------------------------------------------------
    def cell_features(self, patches: torch.Tensor, refine: bool = True) -> torch.Tensor:
        """patches (B, Hp*Wp, C) -> cell features F (B, d_feat, Hg, Wg): 1x1 conv, bilinear to
        the grid, + refine (residual; refine=False: the model refines later), + y/x
        embeddings (unless the config has cell_position_embedding False)."""
        B = patches.shape[0]
        Hp, Wp = self.patch_hw
        size = (self.cfg.grid_height, self.cfg.grid_width)
        pmap = patches.transpose(1, 2).reshape(B, -1, Hp, Wp)  # (B, C, Hp, Wp)
        feat = self.feat_proj(pmap)  # (B, Df, Hp, Wp)
        up = dict(size=size, mode="bilinear", align_corners=False)
        feat = F.interpolate(feat, **up)  # (B, Df, Hg, Wg)
        if refine:
            feat = feat + self.refine(feat)  # (B, Df, Hg, Wg)
        if self.cell_y_emb is None:
            return feat  # (B, Df, Hg, Wg)
        return feat + self.cell_y_emb + self.cell_x_emb  # (B, Df, Hg, Wg)

    def mark_start_cell(self, feat: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
        """feat (B, Df, Hg, Wg) + `start_marker` at the cell of the start keypoint (B, 3 | 4)."""
        cfg = self.cfg
        Hg, Wg = cfg.grid_height, cfg.grid_width
        ci, cj = start_cell(start, (cfg.image_height, cfg.image_width), (Hg, Wg))  # (B,), (B,)
        rows = torch.arange(Hg, device=feat.device, dtype=ci.dtype)  # (Hg,)
        cols = torch.arange(Wg, device=feat.device, dtype=cj.dtype)  # (Wg,)
        mark = (rows[None, :, None] == ci[:, None, None]) & (
            cols[None, None, :] == cj[:, None, None]
        )  # (B, Hg, Wg)
        return feat + mark[:, None].to(feat.dtype) * self.start_marker  # (B, Df, Hg, Wg)

    def start_embedding(self, start: torch.Tensor) -> torch.Tensor:
        """start (B, 3 | 4) (u px, v px, h m[, gripper]) -> its embedding (B, width)."""
        start_n = normalised_start(start, self.cfg, self.height_range, self.gripper_range)
        return self.start_proj(fourier_features(start_n, self.n_start_freq))  # (B, width)

    def memory_tokens(self, patches: torch.Tensor, start: torch.Tensor) -> tuple:
        """patches (B, Hp*Wp, C), start (B, 3 | 4) -> (image memory (B, Hp*Wp, D) with its y/x
        embeddings, start-keypoint token (B, 1, D))."""
        B = patches.shape[0]
        Hp, Wp = self.patch_hw
        mem = self.mem_proj(patches).view(B, Hp, Wp, -1)  # (B, Hp, Wp, D)
        mem = (mem + self.mem_y_emb + self.mem_x_emb).reshape(B, Hp * Wp, -1)  # (B, P, D)
        start_tok = self.start_embedding(start)[:, None] + self.start_token_emb  # (B, 1, D)
        return mem, start_tok

    def key_scale(self) -> torch.Tensor:
        """() the scale of key . feature logits: exp(temperature) / sqrt(d_feat)."""
        return torch.exp(self.temperature) / math.sqrt(self.cfg.d_feat)

    # -- registry interface (policies.common.PolicyModel): the voxel_volume graph -------------
    def export_io(self, spec: PolicySpec) -> ExportIO:
        return voxel_volume_io(spec, self.cfg.gripper_bins, self.cfg.rotation_classes)

    @staticmethod
    def example_inputs(spec: PolicySpec, batch: int, seed: int = 0) -> dict:
        return voxel_example_inputs(spec, batch, seed)
