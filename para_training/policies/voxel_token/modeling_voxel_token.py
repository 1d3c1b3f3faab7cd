"""The seed's voxel-token policies: (B) `voxel_abs`, absolute world xyz encoding, and (C)
`voxel_rel`, EEF-relative xyz encoding (seed: `model_voxel_ar.py`, VoxelARPolicyAbs / Rel).

    image (B, H, W, 3) uint8 RGB ──normalise──> timm DINO ViT ──> patch tokens (B, P, C)
      ├─ refine: 1x1 conv -> d_feat, bilinear to the grid, 3x3 conv + GELU, + y/x embeddings,
      │          + start marker  ──> cell features F (B, d_feat, Hg, Wg)
      └─ memory: Linear(C -> d_model) + y/x embeddings, the start-keypoint token, the EEF token
    voxel world points, in the graph from camera_K (B, 3, 3) and T_world_cam (B, 4, 4):
      P(z, y, x) = the ray through cell (y, x)'s centre pixel met with the plane of height bin
      z's centre (DESIGN §4's lift), (B, Z, Hg, Wg, 3) world metres, and whether it exists
    xyz encoding  n = (P - origin) / half-span, clipped to [-xyz_clip, xyz_clip]
                  origin: voxel_abs the workspace centre, voxel_rel eef_pos (B, 3)
      E(z, y, x) = MLP([n, sin/cos of n at xyz_freqs octaves])   (B, Z, Hg, Wg, d_feat)
                   (a learned "no point" vector where the ray misses the plane)
    voxel tokens  V(z, y, x) = F(y, x) + E(z, y, x), then voxel_layers residual per-voxel MLPs
                  (voxel_layers = 0: V is never built; E's last linear layer folds into the key)
    step tokens   T queries (learned + fixed sin/cos t_sin) ──> tf_layers x [self-attn among
                  steps, cross-attn to the memory, FFN] ──> h_t (B, T, d_model)
    volume logits  (B, T, Z, Hg, Wg) = <key(h_t), V(z, y, x)> / sqrt(d_feat) * exp(temperature)
    gripper logits (B, T, n_grip), rotation logits (B, T, n_rot) from h_t

Graph inputs: image, start_keypoint (u, v, h[, g]) as every voxel_volume model, and the
runtime inputs camera_K (at model-input resolution), T_world_cam and eef_pos (world metres),
declared in the contract's `model.extra_inputs` (OnnxPolicy feeds them from the observation;
in training they come from the batch: the dataset's K, the (augmented) camera pose and the
EEF). Registered as "voxel_abs" and "voxel_rel", head family "voxel_volume": the outputs are
the argmax voxels (z, y, x) of the same volume as para_dino_kv, so the runtime decodes them
unchanged (its lift of the argmax voxel is the same point the graph encoded).

How it follows the seed ("3x3 matrix", models (B) and (C)): tokens for the voxels of the
workspace volume, built with the camera intrinsics and extrinsics (its loader yields cam_K and
cam_extrinsic), each carrying an xyz position encoding, absolute in the world (B) or relative
to the EEF (C); both scored per step, trained on the same data, bins and losses as the other
variants. The seed's notes record that both train (val_px_err 12.4 / 13.3 px after 2 epochs)
and nothing else about their insides.

What was designed here, where the seed is silent:
  * The voxels are the PARA volume itself (Z height bins x the Hg x Wg grid): each voxel is
    the world point the runtime would decode for it, so the model scores world points and the
    decode needs nothing new. The lift runs in the graph (torch ops, exported), with
    DESIGN §4's rule: a ray parallel to the plane (|d_z| / |d| < RAY_DZ_MIN) or meeting it
    behind the camera has no point, and gets the learned `no_point` encoding.
  * Normalisation: half-span and centre of the workspace box (x, y: the EEF's range in the
    data; z: the height-bin range; VoxelTokenConfig), so the workspace is ~[-1, 1]^3 in
    voxel_abs; voxel_rel divides xyz - eef by the same half-span. Clipping keeps the far
    points of grazing rays finite and distinct from the workspace.
  * The encoding is NeRF-style: the clipped coordinate itself plus sin/cos octaves (the shared
    `fourier_features` of it mapped into [0, 1]), then an MLP to the token width.
  * Voxel tokens are not attended to (Z*Hg*Wg of them, 100k at the seed's size); the T step
    tokens attend to the image tokens, the start-keypoint token (as para_dino_kv) and an EEF
    token: the EEF's xyz in the variant's frame through the same encoder (voxel_rel: the
    origin, so a constant marker). A step's key then scores every voxel by a dot product, so
    it can point at a world location (abs) or a displacement from the EEF (rel) through E and
    at an appearance through F; the per-voxel MLPs let the two interact (e.g. "this cell's
    surface is at this height"). Compute per voxel is two small MLPs and T dot products.
  * Steps are parallel queries (para_dino_kv's one-shot T-step window), not autoregressive.
  * Invariance this buys: voxel_rel sees world positions only as differences from the EEF,
    so moving the camera and the EEF by the same horizontal offset changes no logit. A
    vertical offset does: the height bins are world heights, and the start keypoint carries
    the EEF's world height, as in every voxel_volume model. voxel_abs's logits follow the
    camera pose.

Loss (as para_dino_kv): volume CE per timestep over the flattened Z*Hg*Wg voxels
      + gripper_loss_weight * gripper CE + rotation_loss_weight * rotation CE (TrainConfig).

Cost: the tokens are (B, Z, Hg, Wg, d_feat); at the seed's size (Z = 32, 56 x 56) that is 100k
voxels per image, about 12k multiply-adds each (the two MLPs at d_pos = 64, d_feat = 48).
Measured there (default head, a 2-layer 96-wide ViT, batch 4, one CPU core): forward + backward
1.8 s and ~1 GB of activations, i.e. ~250 MB per image in training. With voxel_layers = 0 the
logits are <key, F> + <W2^T key, g(z, y, x)> + <key, b2> (g the encoder's hidden layer), the
same numbers without the (B, Z*Hg*Wg, d_feat) tokens: the libero128 presets' choice (their
step time is in para_training/configs.py).

Both registered names live in this one folder (`policies/voxel_token/`), as the seed's
`model_voxel_ar.py` held both classes; they share the config and every line but `relative`.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from para_ros.core import geometry
from para_ros.core.contract import GraphInputSpec, PolicySpec, TensorSpec
from para_training.policies.cell_features import CellFeaturePolicy
from para_training.policies.common import (
    ExportIO,
    fourier_features,
    sincos_table,
    volume_losses,
    volume_outputs,
)
from para_training.policies.registry import register
from para_training.policies.voxel_token.configuration_voxel_token import VoxelTokenConfig

# The runtime inputs these models take besides image and start_keypoint (graph order).
EXTRA_INPUTS = ("camera_K", "T_world_cam", "eef_pos")
# |d_z| / |d| below this: the cell's ray runs parallel to the height planes (float32: the
# numpy decode's 1e-9 would never trigger).
RAY_DZ_MIN = 1e-6


class VoxelTokenPolicy(CellFeaturePolicy):
    """Both variants; `relative` picks the frame of the xyz encoding."""

    relative: ClassVar[bool] = False

    def __init__(self, cfg: VoxelTokenConfig):
        super().__init__()
        self.cfg = cfg
        T, Z, Hg, Wg = cfg.steps, cfg.height_bins, cfg.grid_height, cfg.grid_width
        D, Df = cfg.d_model, cfg.d_feat
        H, W = cfg.image_height, cfg.image_width
        C = self.init_backbone(cfg)  # backbone (frozen when cfg.freeze_backbone), pixel_*
        self.init_start_ranges(cfg)  # height_range, gripper_range, start_dims
        # data-derived constants (in the config): non-persistent, rebuilt from it
        hmin, hmax = cfg.height_min, cfg.height_max
        lo = torch.tensor(cfg.workspace_min, dtype=torch.float32)  # (3,)
        hi = torch.tensor(cfg.workspace_max, dtype=torch.float32)  # (3,)
        buffers = {
            "ws_centre": (lo + hi) / 2,  # (3,) world metres
            "ws_half": (hi - lo) / 2,  # (3,) metres
            # DESIGN §4 decode: cell centre pixels, height-bin centres
            "cell_u": (torch.arange(Wg) + 0.5) * W / Wg,  # (Wg,) px
            "cell_v": (torch.arange(Hg) + 0.5) * H / Hg,  # (Hg,) px
            "bin_h": hmin + (torch.arange(Z) + 0.5) * (hmax - hmin) / Z,  # (Z,) metres
        }
        for name, value in buffers.items():
            self.register_buffer(name, value.float(), persistent=False)

        # refine: patch tokens -> per-cell features F, with the start marker
        self.init_cell_features(C, cfg, marker=True)

        # xyz encoding of a point: [n, sin/cos octaves] -> MLP -> d_feat
        n_in = 3 * (1 + 2 * cfg.xyz_freqs)
        self.pos_mlp = nn.Sequential(
            nn.Linear(n_in, cfg.d_pos), nn.GELU(), nn.Linear(cfg.d_pos, Df)
        )
        self.no_point = nn.Parameter(torch.zeros(Df))  # a voxel whose ray misses its plane
        self.voxel_mlps = nn.ModuleList(
            nn.Sequential(
                nn.LayerNorm(Df), nn.Linear(Df, cfg.d_pos), nn.GELU(), nn.Linear(cfg.d_pos, Df)
            )
            for _ in range(cfg.voxel_layers)
        )

        # memory for cross-attention: image tokens, the start-keypoint token, the EEF token
        self.init_memory(C, D)
        self.eef_proj = nn.Linear(Df, D)  # the EEF's xyz encoding -> a memory token
        self.eef_token_emb = nn.Parameter(torch.zeros(1, 1, D))

        # step tokens: fixed sin/cos t encoding (as para_dino_kv's `t_sin`)
        self.register_buffer("t_sin", sincos_table(T, D))  # (T, D)
        self.step_query = nn.Parameter(torch.zeros(1, 1, D))
        self.init_query_decoder(cfg)  # decoder, out_norm
        # heads: key_out, temperature, gripper_out, rotation_out
        self.init_step_heads(cfg)
        for p in (
            self.cell_y_emb,
            self.cell_x_emb,
            self.start_marker,
            self.no_point,
            self.mem_y_emb,
            self.mem_x_emb,
            self.start_token_emb,
            self.eef_token_emb,
            self.step_query,
        ):
            nn.init.normal_(p, std=0.02)

    # -- geometry ----------------------------------------------------------------------------
    def voxel_points(self, K: torch.Tensor, T_world_cam: torch.Tensor) -> tuple:
        """K (B, 3, 3) at model-input resolution, T_world_cam (B, 4, 4) camera -> world ->
        (world points (B, Z, Hg, Wg, 3) metres, 0 where invalid; valid (B, Z, Hg, Wg) bool):
        the lift of every voxel's cell-centre pixel to its height-bin centre (DESIGN §4):
        d = R K^-1 [u, v, 1]^T, o = camera centre, s = (h - o_z) / d_z, p = o + s d."""
        B = K.shape[0]
        Hg, Wg = self.cfg.grid_height, self.cfg.grid_width
        fx, fy = K[:, 0, 0, None], K[:, 1, 1, None]  # (B, 1) each
        cx, cy = K[:, 0, 2, None], K[:, 1, 2, None]  # (B, 1) each
        rx = (self.cell_u[None] - cx) / fx  # (B, Wg) zero-skew K^-1 (geometry.inverse_intrinsics)
        ry = (self.cell_v[None] - cy) / fy  # (B, Hg)
        ray = torch.stack(
            [
                rx[:, None, :].expand(B, Hg, Wg),
                ry[:, :, None].expand(B, Hg, Wg),
                torch.ones_like(rx[:, None, :]).expand(B, Hg, Wg),
            ],
            dim=-1,
        )  # (B, Hg, Wg, 3) camera frame
        R, o = T_world_cam[:, :3, :3], T_world_cam[:, :3, 3]  # (B, 3, 3), (B, 3)
        d = (ray.reshape(B, -1, 3) @ R.transpose(1, 2)).reshape(B, 1, Hg, Wg, 3)  # world dirs
        dz = d[..., 2]  # (B, 1, Hg, Wg)
        facing = dz.abs() >= RAY_DZ_MIN * d.norm(dim=-1)  # (B, 1, Hg, Wg) not parallel
        dz = torch.where(facing, dz, torch.ones_like(dz))  # (B, 1, Hg, Wg) safe divisor
        s = (self.bin_h[None, :, None, None] - o[:, 2, None, None, None]) / dz  # (B, Z, Hg, Wg)
        valid = facing & (s > 0)  # (B, Z, Hg, Wg) in front of the camera
        p = o[:, None, None, None, :] + s[..., None] * d  # (B, Z, Hg, Wg, 3)
        p = torch.where(valid[..., None], p, torch.zeros_like(p))  # (B, Z, Hg, Wg, 3)
        return p, valid

    def origin(self, eef_pos: torch.Tensor) -> torch.Tensor:
        """(B, 3) the world point the encoding is relative to: the EEF (voxel_rel) or the
        workspace centre (voxel_abs)."""
        if self.relative:
            return eef_pos  # (B, 3)
        return self.ws_centre.expand_as(eef_pos)  # (B, 3)

    def xyz_features(self, n: torch.Tensor) -> torch.Tensor:
        """n (..., 3) normalised coordinates -> (..., n_in) the encoder's input features: the
        clipped coordinate mapped into [0, 1] and its sin/cos octaves."""
        clip = self.cfg.xyz_clip
        n01 = (n.clamp(-clip, clip) + clip) / (2 * clip)  # (..., 3) in [0, 1]
        flat = n01.reshape(-1, 3)  # (M, 3)
        feats = torch.cat([flat, fourier_features(flat, self.cfg.xyz_freqs)], dim=-1)  # (M, n_in)
        return feats.reshape(*n.shape[:-1], -1)  # (..., n_in)

    def encode_xyz(self, n: torch.Tensor) -> torch.Tensor:
        """n (..., 3) normalised coordinates -> (..., d_feat) encodings."""
        return self.pos_mlp(self.xyz_features(n))  # (..., Df)

    def summed_token_logits(
        self, keys: torch.Tensor, feat: torch.Tensor, n: torch.Tensor, valid: torch.Tensor
    ) -> torch.Tensor:
        """voxel_layers = 0, the token is F(y, x) + E(z, y, x): its unscaled logits
        <key, F + E> with the encoder's last linear layer (W2, b2) folded into the key,
        <key, W2 g + b2> = <W2^T key, g> + <key, b2> for the hidden layer g, so the
        (B, Z*Hg*Wg, d_feat) tokens are never built (the same logits, ~3x less per-voxel work).
        keys (B, T, Df); feat (B, Df, Hg, Wg); n (B, Z, Hg, Wg, 3); valid (B, Z, Hg, Wg) ->
        (B, T, Z*Hg*Wg)."""
        B, T = keys.shape[:2]
        Z, Hg, Wg = valid.shape[1:]
        last = self.pos_mlp[-1]  # Linear(d_pos -> Df): W2 (Df, d_pos), b2 (Df,)
        hidden = self.pos_mlp[:-1](self.xyz_features(n))  # (B, Z, Hg, Wg, d_pos) g
        k_pos = keys @ last.weight  # (B, T, d_pos) W2^T key
        pos = k_pos @ hidden.reshape(B, Z * Hg * Wg, -1).transpose(1, 2)  # (B, T, Z*Hg*Wg)
        pos = pos + (keys @ last.bias)[..., None]  # (B, T, Z*Hg*Wg)
        miss = (keys @ self.no_point)[..., None]  # (B, T, 1) <key, no_point>
        pos = torch.where(valid.reshape(B, 1, -1), pos, miss)  # (B, T, Z*Hg*Wg)
        cell = keys @ feat.reshape(B, feat.shape[1], Hg * Wg)  # (B, T, Hg*Wg) <key, F>
        return (pos.view(B, T, Z, Hg * Wg) + cell[:, :, None]).view(B, T, -1)  # (B, T, Z*Hg*Wg)

    # -------------------------------------------------------------------------------------
    def forward(
        self,
        image: torch.Tensor,
        start: torch.Tensor,
        camera_K: torch.Tensor,
        T_world_cam: torch.Tensor,
        eef_pos: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """image (B, H, W, 3) uint8 RGB; start (B, 3) = (u px, v px, h m), or (B, 4) with the
        gripper command being executed when `gripper_input`; camera_K (B, 3, 3) at model-input
        resolution; T_world_cam (B, 4, 4) camera -> world; eef_pos (B, 3) world metres ->
        volume, gripper and rotation logits."""
        cfg = self.cfg
        B = image.shape[0]
        T, Z, Hg, Wg = cfg.steps, cfg.height_bins, cfg.grid_height, cfg.grid_width
        patches = self.patch_tokens(image)  # (B, Hp*Wp, C)
        feat = self.cell_features(patches)  # (B, Df, Hg, Wg) cell features F
        feat = self.mark_start_cell(feat, start)  # (B, Df, Hg, Wg)

        # voxel tokens: cell feature + xyz encoding of the voxel's world point
        K, T_wc = camera_K.float(), T_world_cam.float()  # (B, 3, 3), (B, 4, 4)
        eef = eef_pos.float()  # (B, 3) world metres
        points, valid = self.voxel_points(K, T_wc)  # (B, Z, Hg, Wg, 3), (B, Z, Hg, Wg)
        origin = self.origin(eef)  # (B, 3)
        n = (points - origin[:, None, None, None]) / self.ws_half  # (B, Z, Hg, Wg, 3)
        n = torch.where(valid[..., None], n, torch.zeros_like(n))  # (B, Z, Hg, Wg, 3)

        # memory: image tokens + start token + EEF token
        mem, start_tok = self.memory_tokens(patches, start)  # (B, P, D), (B, 1, D)
        eef_n = (eef - origin) / self.ws_half  # (B, 3) (voxel_rel: 0)
        eef_tok = self.eef_proj(self.encode_xyz(eef_n))[:, None] + self.eef_token_emb  # (B,1,D)
        memory = torch.cat([mem, start_tok, eef_tok], dim=1)  # (B, P + 2, D)

        # step tokens
        queries = (self.step_query + self.t_sin[None]).expand(B, -1, -1)  # (B, T, D)
        steps = self.out_norm(self.decoder(queries, memory))  # (B, T, D)

        keys = self.key_out(steps)  # (B, T, Df)
        scale = self.key_scale()  # ()
        if self.voxel_mlps:
            pos = self.encode_xyz(n)  # (B, Z, Hg, Wg, Df)
            pos = torch.where(valid[..., None], pos, self.no_point)  # (B, Z, Hg, Wg, Df)
            vox = feat.permute(0, 2, 3, 1)[:, None] + pos  # (B, Z, Hg, Wg, Df)
            for mlp in self.voxel_mlps:
                vox = vox + mlp(vox)  # (B, Z, Hg, Wg, Df)
            flat = vox.reshape(B, Z * Hg * Wg, -1)  # (B, Z*Hg*Wg, Df)
            volume = keys @ flat.transpose(1, 2)  # (B, T, Z*Hg*Wg)
        else:
            volume = self.summed_token_logits(keys, feat, n, valid)  # (B, T, Z*Hg*Wg)
        return {
            "volume_logits": (volume * scale).view(B, T, Z, Hg, Wg),  # (B, T, Z, Hg, Wg)
            "gripper_logits": self.gripper_out(steps),  # (B, T, n_grip)
            "rotation_logits": self.rotation_out(steps),  # (B, T, n_rot)
        }

    # -- registry interface (policies.common.PolicyModel) ----------------------------------
    def compute_loss(self, out: dict, batch: dict, spec: PolicySpec, train_cfg) -> dict:
        return volume_losses(out, batch, spec, train_cfg)

    def predict(self, out: dict, spec: PolicySpec) -> dict:
        """Graph outputs: argmax voxel (z, y, x), its probability, bins, logits, heatmap."""
        return volume_outputs(out, spec)

    def export_io(self, spec: PolicySpec) -> ExportIO:
        io = super().export_io(spec)  # the voxel_volume graph: image, start keypoint
        extra = tuple(GraphInputSpec.known(n) for n in EXTRA_INPUTS)
        return ExportIO(
            inputs=(
                *io.inputs,
                *(TensorSpec(e.name, e.dtype, ("batch", *e.shape)) for e in extra),
            ),
            outputs=io.outputs,
            extra_inputs=extra,
        )

    @staticmethod
    def example_inputs(spec: PolicySpec, batch: int, seed: int = 0) -> dict:
        """Random voxel_volume inputs (image, start keypoint) and a consistent camera: the
        spec's training camera (a default one looking down at the workspace when the spec has
        none) moved by up to 5 cm sideways per sample, and the EEF where the start keypoint
        lifts to with it."""
        feeds = CellFeaturePolicy.example_inputs(spec, batch, seed)  # image, start keypoint
        g = torch.Generator().manual_seed(seed + 1)
        K, T_wc = example_camera(spec)
        Ts = np.repeat(T_wc[None], batch, axis=0)  # (batch, 4, 4)
        Ts[:, :2, 3] += (torch.rand(batch, 2, generator=g).numpy() - 0.5) * 0.1
        eef = np.empty((batch, 3))  # (batch, 3) world metres
        start = feeds["start_keypoint"].double().numpy()  # (batch, 3 | 4)
        for b in range(batch):
            res = geometry.lift(start[b, None, :2], start[b, None, 2], K, Ts[b])
            eef[b] = res.points[0] if res.valid[0] else T_wc[:3, 3] - [0, 0, 1.0]
        return {
            **feeds,
            "camera_K": torch.from_numpy(np.repeat(K[None], batch, axis=0)).float(),
            "T_world_cam": torch.from_numpy(Ts).float(),
            "eef_pos": torch.from_numpy(eef).float(),
        }


def example_camera(spec: PolicySpec) -> tuple[np.ndarray, np.ndarray]:
    """(K (3, 3), T_world_cam (4, 4)): the spec's training camera, else a pinhole (45 deg
    field of view) 1 m above the top height bin looking straight down at the workspace."""
    if spec.camera.K and spec.camera.T_world_cam:
        return np.array(spec.camera.K, float), np.array(spec.camera.T_world_cam, float)
    H, W = spec.image.height, spec.image.width
    f = (H / 2) / math.tan(math.radians(45) / 2)
    K = geometry.intrinsics(f, f, W / 2, H / 2)
    hp = spec.model.hyperparameters
    lo, hi = hp.get("workspace_min", (0, 0, 0)), hp.get("workspace_max", (0, 0, 0))
    T = np.eye(4)
    T[:3, :3] = np.diag([1.0, -1.0, -1.0])  # camera x = world x, y = -y, z (forward) = down
    T[:3, 3] = [(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, spec.height.max + 1.0]
    return K, T


@register("voxel_abs", config=VoxelTokenConfig, head="voxel_volume")
class VoxelAbs(VoxelTokenPolicy):
    """(B): the voxels' world xyz, normalised by the workspace box."""

    relative = False


@register("voxel_rel", config=VoxelTokenConfig, head="voxel_volume")
class VoxelRel(VoxelTokenPolicy):
    """(C): the voxels' xyz relative to the current EEF (eef_pos), normalised by the
    workspace half-span."""

    relative = True
