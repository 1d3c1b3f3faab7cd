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

import math

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
    sincos_table,
    voxel_example_inputs,
    voxel_volume_io,
)
from para_training.policies.para_dino_kv.configuration_para_dino_kv import ParaDinoKVConfig
from para_training.policies.registry import register


@register("para_dino_kv", config=ParaDinoKVConfig, head="voxel_volume")
class ParaDinoKV(PolicyModel):
    def __init__(self, cfg: ParaDinoKVConfig):
        super().__init__()
        self.cfg = cfg
        T, Z, Hg, Wg = cfg.steps, cfg.height_bins, cfg.grid_height, cfg.grid_width
        D, Df = cfg.d_model, cfg.d_feat
        self.backbone = build_backbone(cfg)  # frozen when cfg.freeze_backbone
        C = self.backbone.num_features
        self.n_prefix = self.backbone.num_prefix_tokens
        self.patch_hw = tuple(self.backbone.patch_embed.grid_size)  # (Hp, Wp)
        Hp, Wp = self.patch_hw

        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255)
        self.register_buffer("pixel_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255)
        self.register_buffer(
            "height_range", torch.tensor([cfg.height_min, cfg.height_max]), persistent=False
        )
        self.register_buffer(
            "gripper_range", torch.tensor([cfg.gripper_min, cfg.gripper_max]), persistent=False
        )
        self.start_dims = 4 if cfg.gripper_input else 3

        # refine: patch tokens -> per-cell features F
        self.feat_proj = nn.Conv2d(C, Df, kernel_size=1)
        layers: list[nn.Module] = []
        for _ in range(cfg.refine_convs):
            layers += [nn.Conv2d(Df, Df, kernel_size=3, padding=1), nn.GELU()]
        self.refine = nn.Sequential(*layers)
        self.cell_y_emb = nn.Parameter(torch.zeros(1, Df, Hg, 1))  # learned y embedding
        self.cell_x_emb = nn.Parameter(torch.zeros(1, Df, 1, Wg))  # learned x embedding
        self.start_marker = nn.Parameter(torch.zeros(1, Df, 1, 1))  # marks the EEF cell in F

        # memory for cross-attention: image tokens + the start-keypoint token
        self.mem_proj = nn.Linear(C, D)
        self.mem_y_emb = nn.Parameter(torch.zeros(1, Hp, 1, D))
        self.mem_x_emb = nn.Parameter(torch.zeros(1, 1, Wp, D))
        self.n_start_freq = 8
        self.start_proj = nn.Sequential(
            nn.Linear(self.start_dims * 2 * self.n_start_freq, D), nn.GELU(), nn.Linear(D, D)
        )
        self.start_token_emb = nn.Parameter(torch.zeros(1, 1, D))  # learned "this is the EEF"

        # queries: fixed sin/cos t and z encodings (seed v9: `z_sin`, `t_sin` buffers)
        self.register_buffer("z_sin", sincos_table(Z, D))  # (Z, D)
        self.register_buffer("t_sin", sincos_table(T, D))  # (T, D)
        self.volume_query = nn.Parameter(torch.zeros(1, 1, 1, D))
        self.action_query = nn.Parameter(torch.zeros(1, 1, D))
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

        # heads
        self.key_out = nn.Linear(D, Df)
        self.temperature = nn.Parameter(torch.zeros(()))  # logits scale = exp(temperature)
        self.gripper_out = nn.Linear(D, cfg.gripper_bins)
        self.rotation_out = nn.Linear(D, cfg.rotation_classes)
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
            nn.init.normal_(p, std=0.02)

    # -------------------------------------------------------------------------------------
    def forward(self, image: torch.Tensor, start: torch.Tensor) -> dict[str, torch.Tensor]:
        """image (B, H, W, 3) uint8 RGB; start (B, 3) = (u px, v px, h m), or (B, 4) with the
        gripper command being executed when `gripper_input` -> logits dict."""
        cfg = self.cfg
        B = image.shape[0]
        T, Z, Hg, Wg = cfg.steps, cfg.height_bins, cfg.grid_height, cfg.grid_width
        Hp, Wp = self.patch_hw
        x = image.permute(0, 3, 1, 2).float()  # (B, 3, H, W)
        x = (x - self.pixel_mean) / self.pixel_std
        tokens = self.backbone.forward_features(x)  # (B, prefix + Hp*Wp, C)
        patches = tokens[:, self.n_prefix :]  # (B, Hp*Wp, C)

        # cell features F
        pmap = patches.transpose(1, 2).reshape(B, -1, Hp, Wp)  # (B, C, Hp, Wp)
        feat = self.feat_proj(pmap)  # (B, Df, Hp, Wp)
        feat = F.interpolate(feat, size=(Hg, Wg), mode="bilinear", align_corners=False)
        feat = feat + self.refine(feat)  # (B, Df, Hg, Wg)
        feat = feat + self.cell_y_emb + self.cell_x_emb
        u, v = start[:, 0], start[:, 1]  # (B,), (B,) model-input pixels
        ci = torch.clamp(torch.floor(v * Hg / cfg.image_height), 0, Hg - 1)  # (B,)
        cj = torch.clamp(torch.floor(u * Wg / cfg.image_width), 0, Wg - 1)  # (B,)
        rows = torch.arange(Hg, device=image.device, dtype=ci.dtype)
        cols = torch.arange(Wg, device=image.device, dtype=cj.dtype)
        mark = (rows[None, :, None] == ci[:, None, None]) & (
            cols[None, None, :] == cj[:, None, None]
        )  # (B, Hg, Wg)
        feat = feat + mark[:, None].to(feat.dtype) * self.start_marker  # (B, Df, Hg, Wg)

        # memory tokens
        mem = self.mem_proj(patches).view(B, Hp, Wp, -1)  # (B, Hp, Wp, D)
        mem = (mem + self.mem_y_emb + self.mem_x_emb).reshape(B, Hp * Wp, -1)
        hmin, hmax = self.height_range[0], self.height_range[1]
        parts = [u / cfg.image_width, v / cfg.image_height, (start[:, 2] - hmin) / (hmax - hmin)]
        if cfg.gripper_input:
            gmin, gmax = self.gripper_range[0], self.gripper_range[1]
            parts.append((start[:, 3] - gmin) / (gmax - gmin))
        start_n = torch.stack(parts, dim=1)  # (B, 3 | 4) ~[0, 1]
        start_tok = self.start_proj(fourier_features(start_n, self.n_start_freq))  # (B, D)
        start_tok = start_tok[:, None] + self.start_token_emb  # (B, 1, D)
        memory = torch.cat([mem, start_tok], dim=1)  # (B, Hp*Wp + 1, D)

        # queries
        vq = self.volume_query + self.t_sin[None, :, None] + self.z_sin[None, None]  # (1,T,Z,D)
        aq = self.action_query + self.t_sin[None]  # (1, T, D)
        queries = torch.cat([vq.reshape(1, T * Z, -1), aq], dim=1).expand(B, -1, -1)
        out = self.out_norm(self.decoder(queries, memory))  # (B, T*Z + T, D)
        vol_tok = out[:, : T * Z]  # (B, T*Z, D)
        act_tok = out[:, T * Z :]  # (B, T, D)

        keys = self.key_out(vol_tok).view(B, T, Z, -1)  # (B, T, Z, Df)
        scale = torch.exp(self.temperature) / math.sqrt(cfg.d_feat)
        volume = torch.einsum("btzd,bdyx->btzyx", keys, feat) * scale  # (B, T, Z, Hg, Wg)
        return {
            "volume_logits": volume,
            "gripper_logits": self.gripper_out(act_tok),  # (B, T, n_grip)
            "rotation_logits": self.rotation_out(act_tok),  # (B, T, n_rot)
        }

    # -- registry interface (policies.common.PolicyModel) ----------------------------------
    def compute_loss(self, out: dict, batch: dict, spec: PolicySpec, train_cfg) -> dict:
        vol = out["volume_logits"].flatten(2)  # (B, T, Z*Hg*Wg)
        target = batch["voxel_index"]  # (B, T)
        if (target != IGNORE_INDEX).any():
            loss_v = F.cross_entropy(
                vol.flatten(0, 1), target.flatten(), ignore_index=IGNORE_INDEX
            )
        else:
            loss_v = vol.sum() * 0.0
        loss_g, loss_r = class_losses(out, batch, spec)
        total = (
            loss_v
            + train_cfg.gripper_loss_weight * loss_g
            + train_cfg.rotation_loss_weight * loss_r
        )
        return {"loss": total, "v": loss_v, "g": loss_g, "r": loss_r}

    def predict(self, out: dict, spec: PolicySpec) -> dict:
        """Graph outputs: argmax voxel (z, y, x), its probability, bins, logits, heatmap."""
        vol = out["volume_logits"]  # (B, T, Z, Hg, Wg)
        B, T = vol.shape[0], vol.shape[1]
        Hg, Wg = spec.grid.height, spec.grid.width
        prob = torch.softmax(vol.reshape(B, T, -1), dim=-1)  # (B, T, Z*Hg*Wg)
        conf, idx = prob.max(dim=-1)  # (B, T), (B, T)
        voxel = torch.stack([idx // (Hg * Wg), (idx // Wg) % Hg, idx % Wg], dim=-1)  # (B,T,3)
        heat = prob.reshape(B, T, -1, Hg, Wg).amax(dim=2)  # (B, T, Hg, Wg)
        cls = class_predictions(out, spec)
        return {
            "voxel": voxel,
            "voxel_prob": conf,
            "gripper_bin": cls["gripper_bin"],
            "rotation_bin": cls["rotation_bin"],
            "gripper_logits": cls["gripper_logits"],
            "rotation_logits": cls["rotation_logits"],
            "heatmap": heat,
        }

    def export_io(self, spec: PolicySpec) -> ExportIO:
        return voxel_volume_io(spec, self.cfg.gripper_bins, self.cfg.rotation_classes)

    @staticmethod
    def example_inputs(spec: PolicySpec, batch: int, seed: int = 0) -> dict:
        return voxel_example_inputs(spec, batch, seed)
