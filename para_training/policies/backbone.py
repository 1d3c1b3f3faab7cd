"""The timm DINO ViT backbone every policy builds by name (local weights only), and the base
class of the policies on it (`ViTPolicy`: the backbone, its input normalisation, its tokens)."""

from __future__ import annotations

import sys

import timm
import torch
from torch import nn

from para_training.policies.common import PolicyModel

# DINOv2/v3 were trained on ImageNet-normalised RGB (timm's pretrained_cfg for these models).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_backbone(cfg) -> nn.Module:
    """timm ViT by name at the model's fixed input size; random init, never a hub download.

    `cfg` (a policies.common.BackboneConfig) has backbone, backbone_weights,
    freeze_backbone (no gradients), vit_embed_dim, vit_depth, vit_heads, vit_patch_size
    (0 = the timm default), image_height and image_width."""
    overrides = {
        k: v
        for k, v in dict(
            embed_dim=cfg.vit_embed_dim,
            depth=cfg.vit_depth,
            num_heads=cfg.vit_heads,
            patch_size=cfg.vit_patch_size,
        ).items()
        if v
    }
    try:
        model = timm.create_model(
            cfg.backbone,
            pretrained=False,
            num_classes=0,
            img_size=(cfg.image_height, cfg.image_width),
            **overrides,
        )
    except RuntimeError as exc:  # timm: "Unknown model (...)"
        raise ValueError(
            f"unknown timm backbone {cfg.backbone!r}: {exc}. DINO ViTs in timm include "
            f"{timm.list_models('*dino*')[:8]}"
        ) from exc
    if cfg.backbone_weights:
        load_backbone_weights(model, cfg.backbone_weights)
    if cfg.freeze_backbone:
        model.requires_grad_(False)
    return model


def load_backbone_weights(model: nn.Module, path: str) -> None:
    """Load a local weights file (safetensors, or a torch file read with weights_only=True).

    timm's own checkpoint filter of the model's family adapts it (position embeddings resampled
    to this input size once, patch embedding resized), as a hub load would.
    """
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("model", state.get("state_dict", state))
    filter_fn = getattr(sys.modules[type(model).__module__], "checkpoint_filter_fn", None)
    if filter_fn is not None:
        state = filter_fn(state, model)
    missing, unexpected = model.load_state_dict(state, strict=False)
    print(
        f"backbone weights {path}: loaded {len(state) - len(unexpected)} tensors, "
        f"missing {len(missing)}, unexpected {len(unexpected)}"
    )


class ViTPolicy(PolicyModel):
    """A policy on the timm ViT: `init_backbone` builds it with the attributes every policy
    names alike (the checkpoints' `backbone.*`, `pixel_mean`, `pixel_std`), `image_tokens` and
    `patch_tokens` run it on a uint8 RGB image."""

    def init_backbone(self, cfg) -> int:
        """Build `backbone` (frozen when cfg.freeze_backbone), `n_prefix` (its CLS and register
        tokens), `patch_hw` (Hp, Wp) and the ImageNet normalisation buffers of uint8 RGB;
        -> C, the token width."""
        self.backbone = build_backbone(cfg)
        self.n_prefix = self.backbone.num_prefix_tokens
        self.patch_hw = tuple(self.backbone.patch_embed.grid_size)  # (Hp, Wp)
        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255)
        self.register_buffer("pixel_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255)
        return self.backbone.num_features

    def image_tokens(self, image: torch.Tensor) -> torch.Tensor:
        """image (B, H, W, 3) uint8 RGB -> every ViT token (B, prefix + Hp*Wp, C)."""
        x = image.permute(0, 3, 1, 2).float()  # (B, 3, H, W)
        x = (x - self.pixel_mean) / self.pixel_std  # (B, 3, H, W)
        return self.backbone.forward_features(x)  # (B, prefix + Hp*Wp, C)

    def patch_tokens(self, image: torch.Tensor) -> torch.Tensor:
        """image (B, H, W, 3) uint8 RGB -> the patch tokens (B, Hp*Wp, C), prefix dropped."""
        return self.image_tokens(image)[:, self.n_prefix :]  # (B, Hp*Wp, C)
