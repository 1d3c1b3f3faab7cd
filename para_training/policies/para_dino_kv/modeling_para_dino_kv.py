"""The 5-layer DINO-KV PARA model (DESIGN §3; seed "5L transformer + sin z/t + PCA-1D rotation").

    image (B, H, W, 3) uint8 RGB ──normalise──> timm DINO ViT ──> patch tokens (B, P, C)
      ├─ refine: 1x1 conv -> d_feat, bilinear to the grid, 3x3 conv + GELU, + y/x embeddings,
      │          + start marker  ──> cell features F (B, d_feat, Hg, Wg)
      └─ memory: Linear(C -> d_model) + y/x embeddings, plus the start-keypoint token
    queries: T*Z volume tokens (t, z) and T action tokens, fixed sin/cos `t_sin`, `z_sin`
      ──> tf_layers x [self-attn among queries, cross-attn to memory, FFN] ──>
    volume logits  (B, T, Z, Hg, Wg) = <key(t, z), F(y, x)> / sqrt(d_feat) * exp(temperature)
    gripper logits (B, T, n_grip)       from the action tokens
    rotation logits (B, T, n_rot)       from the action tokens (pca1d: one CE over 48 bins)

The start keypoint is (u, v, h): the current EEF pixel in model-input pixels and its world
height in metres; the height range used to normalise h is a buffer taken from the PolicySpec.
With `gripper_input` a 4th value g is the gripper command being executed (gripper units).

Registered as "para_dino_kv", head family "voxel_volume": the graph outputs argmax voxels
(z, y, x) that the runtime lifts to world targets (para_ros.core.heads).

Loss (seed): volume CE per timestep over the flattened Z*Hg*Wg voxels
             + gripper_loss_weight * gripper CE + rotation_loss_weight * rotation CE.
"""

from __future__ import annotations

import torch
from torch import nn

from para_ros.core.contract import PolicySpec
from para_training.policies.cell_features import CellFeaturePolicy
from para_training.policies.common import sincos_table, volume_losses, volume_outputs
from para_training.policies.para_dino_kv.configuration_para_dino_kv import ParaDinoKVConfig
from para_training.policies.registry import register


@register("para_dino_kv", config=ParaDinoKVConfig, head="voxel_volume")
class ParaDinoKV(CellFeaturePolicy):
    def __init__(self, cfg: ParaDinoKVConfig):
        super().__init__()
        self.cfg = cfg
        T, Z, D = cfg.steps, cfg.height_bins, cfg.d_model
        C = self.init_backbone(cfg)  # backbone (frozen when cfg.freeze_backbone), pixel_*
        self.init_start_ranges(cfg)  # height_range, gripper_range, start_dims
        # refine: patch tokens -> per-cell features F, with the start marker
        self.init_cell_features(C, cfg, marker=True)
        # memory for cross-attention: image tokens + the start-keypoint token
        self.init_memory(C, D)

        # queries: fixed sin/cos t and z encodings (seed v9: `z_sin`, `t_sin` buffers)
        self.register_buffer("z_sin", sincos_table(Z, D))  # (Z, D)
        self.register_buffer("t_sin", sincos_table(T, D))  # (T, D)
        self.volume_query = nn.Parameter(torch.zeros(1, 1, 1, D))
        self.action_query = nn.Parameter(torch.zeros(1, 1, D))
        self.init_query_decoder(cfg)  # decoder, out_norm
        # heads: key_out, temperature, gripper_out, rotation_out
        self.init_step_heads(cfg)
        for p in (
            self.cell_y_emb,
            self.cell_x_emb,
            self.mem_y_emb,
            self.mem_x_emb,
            self.start_marker,
            self.start_token_emb,
            self.volume_query,
            self.action_query,
        ):
            if p is not None:  # cell_y_emb, cell_x_emb: None without cell_position_embedding
                nn.init.normal_(p, std=0.02)

    # -------------------------------------------------------------------------------------
    def forward(self, image: torch.Tensor, start: torch.Tensor) -> dict[str, torch.Tensor]:
        """image (B, H, W, 3) uint8 RGB; start (B, 3) = (u px, v px, h m), or (B, 4) with the
        gripper command being executed when `gripper_input` -> logits dict."""
        cfg = self.cfg
        B = image.shape[0]
        T, Z = cfg.steps, cfg.height_bins
        patches = self.patch_tokens(image)  # (B, Hp*Wp, C)
        feat = self.cell_features(patches)  # (B, Df, Hg, Wg) cell features F
        feat = self.mark_start_cell(feat, start)  # (B, Df, Hg, Wg)

        # memory tokens
        mem, start_tok = self.memory_tokens(patches, start)  # (B, Hp*Wp, D), (B, 1, D)
        memory = torch.cat([mem, start_tok], dim=1)  # (B, Hp*Wp + 1, D)

        # queries
        vq = self.volume_query + self.t_sin[None, :, None] + self.z_sin[None, None]  # (1,T,Z,D)
        aq = self.action_query + self.t_sin[None]  # (1, T, D)
        queries = torch.cat([vq.reshape(1, T * Z, -1), aq], dim=1).expand(B, -1, -1)
        out = self.out_norm(self.decoder(queries, memory))  # (B, T*Z + T, D)
        vol_tok = out[:, : T * Z]  # (B, T*Z, D)
        act_tok = out[:, T * Z :]  # (B, T, D)

        keys = self.key_out(vol_tok).view(B, T, Z, -1)  # (B, T, Z, Df)
        scale = self.key_scale()  # ()
        volume = torch.einsum("btzd,bdyx->btzyx", keys, feat) * scale  # (B, T, Z, Hg, Wg)
        return {
            "volume_logits": volume,
            "gripper_logits": self.gripper_out(act_tok),  # (B, T, n_grip)
            "rotation_logits": self.rotation_out(act_tok),  # (B, T, n_rot)
        }

    # -- registry interface (policies.common.PolicyModel; export_io, example_inputs:
    # CellFeaturePolicy's voxel_volume graph) ------------------------------------------------
    def compute_loss(self, out: dict, batch: dict, spec: PolicySpec, train_cfg) -> dict:
        return volume_losses(out, batch, spec, train_cfg)

    def predict(self, out: dict, spec: PolicySpec) -> dict:
        """Graph outputs: argmax voxel (z, y, x), its probability, bins, logits, and the
        heatmap: each cell's most probable voxel's probability (the maximum over z)."""
        return volume_outputs(out, spec, heatmap="max")
