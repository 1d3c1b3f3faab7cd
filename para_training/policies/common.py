"""What every registered policy shares: strict config (de)serialisation, graph I/O
description, and the mapping from graph input names to dataset batch keys.

A policy folder `policies/<name>/` holds `configuration_<name>.py` (a dataclass using
`PolicyConfig`) and `modeling_<name>.py` (an `nn.Module` implementing `PolicyModel`), and
registers itself with `@register("<name>", head=...)` (policies.registry).

Also here: the functional building blocks the policies share (losses, graph outputs, start
keypoint helpers) and the voxel_volume configs' base `VoxelSizes` with its checks. The modules
they share: policies.backbone.ViTPolicy (the ViT) and policies.cell_features (per-cell
features, memory, decoder and heads of the voxel_volume models).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from para_ros.core.contract import GraphInputSpec, PolicySpec, TensorSpec
from para_training.configs import ConfigKeyError, check_keys

__all__ = [
    "IGNORE_INDEX",
    "ConfigKeyError",
    "ExportIO",
    "PolicyConfig",
    "PolicyModel",
    "check_keys",
    "class_losses",
    "class_predictions",
    "fourier_features",
    "sincos_table",
    "start_example",
]


class PolicyConfig:
    """Mixin for a policy's config dataclass. `SIZE_FIELDS` come from the data (the
    PolicySpec, via `from_spec`), the others are the user's hyper-parameters (CLI flags)."""

    SIZE_FIELDS: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def sizes_from_spec(cls, spec: PolicySpec, stats: Any = None) -> dict[str, Any]:
        raise NotImplementedError  # pragma: no cover

    @classmethod
    def from_spec(cls, spec: PolicySpec, stats: Any = None, **hparams):
        """The config of a model for this data: sizes from the spec (and the dataset
        statistics, for models that need them), hyper-parameters as given."""
        check_keys(cls, hparams, "model")
        bad = sorted(set(hparams) & cls.SIZE_FIELDS)
        if bad:
            raise ConfigKeyError(
                f"{cls.__name__}: {bad} come from the data (the PolicySpec), not from flags"
            )
        return cls(**{**hparams, **cls.sizes_from_spec(spec, stats)})

    def hyperparameters(self) -> dict:
        """Everything but the data-derived sizes: what a user chooses."""
        return {k: v for k, v in asdict(self).items() if k not in self.SIZE_FIELDS}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, where: str = "model.hyperparameters"):
        check_keys(cls, d, where)
        return cls(**d)


@dataclass
class BackboneConfig(PolicyConfig):
    """The timm ViT every policy builds by name (policies/backbone.build_backbone): its
    fields, shared by the policies' configs."""

    backbone: str = field(
        default="vit_small_patch14_dinov2",
        metadata={"help": "timm model name (vit_small_patch14_dinov2, vit_small_patch16_dinov3)"},
    )
    backbone_weights: str = field(
        default="",
        metadata={
            "help": "local weights file for the backbone (.safetensors or .pth); '' = "
            "random init. Never downloaded."
        },
    )
    freeze_backbone: bool = field(default=False, metadata={"help": "train only the head"})
    # overrides of the timm architecture, for small models (0 = keep the timm default)
    vit_embed_dim: int = field(default=0, metadata={"help": "ViT width override (0 = default)"})
    vit_depth: int = field(default=0, metadata={"help": "ViT depth override (0 = default)"})
    vit_heads: int = field(default=0, metadata={"help": "ViT heads override (0 = default)"})
    vit_patch_size: int = field(default=0, metadata={"help": "patch size override (0 = default)"})


# graph input name -> key of a ParaWindowDataset batch (para_training.data.dataset)
BATCH_KEYS = {
    "image": "image",
    "start_keypoint": "start",
    "eef_pos": "eef_pos",
    "camera_K": "K",
    "T_world_cam": "T_world_cam",
    "gripper_state": "gripper_state",
}


@dataclass(frozen=True)
class ExportIO:
    """The graph's interface: inputs and outputs in order, their dynamic axes, and the extra
    inputs the runtime must supply (declared in the contract)."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    extra_inputs: tuple[GraphInputSpec, ...] = ()

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.outputs)

    @property
    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """{name: {axis: symbol}} of every input and output with a symbolic dimension."""
        out = {}
        for t in (*self.inputs, *self.outputs):
            dyn = {i: d for i, d in enumerate(t.shape) if isinstance(d, str)}
            if dyn:
                out[t.name] = dyn
        return out


class PolicyModel(torch.nn.Module):
    """Interface of a registered model (nn.Module):

    forward(*inputs)                 graph inputs in `export_io(spec).input_names` order
                                     -> dict of training outputs (logits, regressions)
    compute_loss(out, batch, spec, train_cfg) -> {"loss": total, <part>: ...}
    predict(out, spec)               -> {output name: tensor}: the graph's outputs (argmax
                                     classes etc.), decoded by the head family in
                                     para_ros.core.heads (metrics and export share it)
    export_io(spec)                  -> ExportIO
    example_inputs(spec, batch, seed) -> {input name: tensor} for export and parity
    """

    def batch_inputs(self, batch: dict, spec: PolicySpec, device=None) -> tuple:
        """The model's inputs from a dataset batch, in graph order (floats as float32)."""
        out = []
        for name in self.export_io(spec).input_names:
            t = batch[BATCH_KEYS[name]]
            if t.is_floating_point():
                t = t.float()
            out.append(t.to(device) if device is not None else t)
        return tuple(out)

    def export_io(self, spec: PolicySpec) -> ExportIO:  # pragma: no cover
        raise NotImplementedError


def class_predictions(out: dict, spec: PolicySpec) -> dict:
    """Argmax gripper and rotation bins (euler: per axis) and their logits."""
    rot = out["rotation_logits"]  # (B, T, R)
    grip = out["gripper_logits"]  # (B, T, G)
    B, T = rot.shape[0], rot.shape[1]
    if spec.rotation.mode == "euler":
        rot_bin = rot.reshape(B, T, 3, -1).argmax(-1)  # (B, T, 3)
    else:
        rot_bin = rot.argmax(-1)  # (B, T)
    return {
        "gripper_bin": grip.argmax(-1),  # (B, T)
        "rotation_bin": rot_bin,
        "gripper_logits": grip,
        "rotation_logits": rot,
    }


# -- building blocks shared by the policies ------------------------------------------------
IGNORE_INDEX = -100  # voxel targets outside the image (para_training.data.dataset)


def sincos_table(n: int, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """(n, dim) fixed sinusoidal encodings of positions 0..n-1 (Vaswani et al. 2017)."""
    pos = torch.arange(n, dtype=torch.float32)[:, None]  # (n, 1)
    freq = torch.exp(-math.log(max_period) * torch.arange(0, dim, 2) / dim)  # (dim/2,)
    table = torch.zeros(n, dim)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return table


def fourier_features(x: torch.Tensor, n_freq: int) -> torch.Tensor:
    """(B, k) values in ~[0, 1] -> (B, k * 2 * n_freq) sin/cos features."""
    freqs = (2.0 ** torch.arange(n_freq, device=x.device, dtype=x.dtype)) * math.pi  # (n_freq,)
    ang = x[..., None] * freqs  # (B, k, n_freq)
    return torch.cat([ang.sin(), ang.cos()], dim=-1).flatten(1)  # (B, k * 2 n_freq)


def class_losses(out: dict, batch: dict, spec: PolicySpec) -> tuple:
    """Gripper CE and rotation CE (euler: one CE per axis) of action-token logits."""
    loss_g = F.cross_entropy(out["gripper_logits"].flatten(0, 1), batch["gripper_bin"].flatten())
    rot = out["rotation_logits"]  # (B, T, R)
    if spec.rotation.mode == "euler":
        rot = rot.reshape(*rot.shape[:2], 3, -1)  # (B, T, 3, n)
        loss_r = F.cross_entropy(rot.flatten(0, 2), batch["rotation_bin"].flatten())
    else:
        loss_r = F.cross_entropy(rot.flatten(0, 1), batch["rotation_bin"].flatten())
    return loss_g, loss_r


def start_example(spec: PolicySpec, batch: int, g: torch.Generator) -> torch.Tensor:
    """(batch, 3 | 4) random start keypoints inside the image and the height range."""
    H, W = spec.image.height, spec.image.width
    u = torch.rand(batch, generator=g) * W  # (batch,)
    v = torch.rand(batch, generator=g) * H  # (batch,)
    h = spec.height.min + torch.rand(batch, generator=g) * (spec.height.max - spec.height.min)
    parts = [u, v, h]
    if spec.uses_gripper_state:
        span = spec.gripper.max - spec.gripper.min
        parts.append(spec.gripper.min + torch.rand(batch, generator=g) * span)
    return torch.stack(parts, dim=1).float()  # (batch, 3 | 4)


def start_cell(start: torch.Tensor, image_hw: tuple, grid_hw: tuple) -> tuple:
    """(B, 3 | 4) start keypoints -> ((B,) row i, (B,) col j) of the EEF's grid cell, as float
    tensors: i = floor(v Hg / H), j = floor(u Wg / W), clipped inside (geometry.pixel_to_cell)."""
    (H, W), (Hg, Wg) = image_hw, grid_hw
    ci = torch.clamp(torch.floor(start[:, 1] * Hg / H), 0, Hg - 1)  # (B,)
    cj = torch.clamp(torch.floor(start[:, 0] * Wg / W), 0, Wg - 1)  # (B,)
    return ci, cj


def normalised_start(start: torch.Tensor, cfg, height_range, gripper_range) -> torch.Tensor:
    """(B, 3 | 4) start keypoint (u px, v px, h m[, gripper]) -> (B, 3 | 4) values in ~[0, 1]:
    u / W, v / H, h over the height range [, the gripper command over the gripper range]."""
    hmin, hmax = height_range[0], height_range[1]
    parts = [
        start[:, 0] / cfg.image_width,
        start[:, 1] / cfg.image_height,
        (start[:, 2] - hmin) / (hmax - hmin),
    ]
    if cfg.gripper_input:
        gmin, gmax = gripper_range[0], gripper_range[1]
        parts.append((start[:, 3] - gmin) / (gmax - gmin))
    return torch.stack(parts, dim=1)  # (B, 3 | 4)


def gather_cells(maps: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
    """Read per-cell values at one cell per (batch, step): maps (B, T, K, Hg, Wg), cell (B, T)
    flat y * Wg + x -> (B, T, K)."""
    B, T, K = maps.shape[:3]
    flat = maps.reshape(B, T, K, -1)  # (B, T, K, Hg*Wg)
    idx = cell[:, :, None, None].expand(B, T, K, 1)  # (B, T, K, 1)
    return flat.gather(-1, idx).squeeze(-1)  # (B, T, K)


def voxel_volume_io(spec: PolicySpec, gripper_bins: int, rotation_classes: int) -> ExportIO:
    """The graph I/O of the voxel_volume head family (para_ros.core.heads): image and start
    keypoint in; argmax voxel (z, y, x), its probability, bins, logits and heatmap out."""
    H, W, T = spec.image.height, spec.image.width, spec.window.steps
    Hg, Wg = spec.grid.height, spec.grid.width
    rot_shape = ("batch", T, 3) if spec.rotation.mode == "euler" else ("batch", T)
    start_width = 4 if spec.uses_gripper_state else 3
    return ExportIO(
        inputs=(
            TensorSpec("image", "uint8", ("batch", H, W, 3)),
            TensorSpec("start_keypoint", "float32", ("batch", start_width)),
        ),
        outputs=(
            TensorSpec("voxel", "int64", ("batch", T, 3)),
            TensorSpec("voxel_prob", "float32", ("batch", T)),
            TensorSpec("gripper_bin", "int64", ("batch", T)),
            TensorSpec("rotation_bin", "int64", rot_shape),
            TensorSpec("gripper_logits", "float32", ("batch", T, gripper_bins)),
            TensorSpec("rotation_logits", "float32", ("batch", T, rotation_classes)),
            TensorSpec("heatmap", "float32", ("batch", T, Hg, Wg)),
        ),
    )


def voxel_example_inputs(spec: PolicySpec, batch: int, seed: int = 0) -> dict:
    """Random voxel_volume-family inputs: a uint8 image and a start keypoint in range."""
    g = torch.Generator().manual_seed(seed)
    H, W = spec.image.height, spec.image.width
    image = torch.randint(0, 256, (batch, H, W, 3), dtype=torch.uint8, generator=g)
    return {"image": image, "start_keypoint": start_example(spec, batch, g)}


# The data-derived sizes of a voxel_volume policy (set by `from_spec`, never by flags).
VOXEL_SIZE_FIELDS = frozenset(
    {
        "image_height",
        "image_width",
        "grid_height",
        "grid_width",
        "steps",
        "height_bins",
        "gripper_bins",
        "rotation_classes",
        "rotation_mode",
        "height_min",
        "height_max",
        "gripper_min",
        "gripper_max",
    }
)


def voxel_sizes_from_spec(spec: PolicySpec) -> dict:
    """VOXEL_SIZE_FIELDS from a PolicySpec."""
    return dict(
        image_height=spec.image.height,
        image_width=spec.image.width,
        grid_height=spec.grid.height,
        grid_width=spec.grid.width,
        steps=spec.window.steps,
        height_bins=spec.height.n_bins,
        gripper_bins=spec.gripper.n_bins,
        rotation_classes=spec.rotation.n_classes,
        rotation_mode=spec.rotation.mode,
        height_min=spec.height.min,
        height_max=spec.height.max,
        gripper_min=spec.gripper.min,
        gripper_max=spec.gripper.max,
    )


@dataclass
class VoxelSizes(BackboneConfig):
    """The backbone fields and the data-derived sizes of a voxel_volume policy
    (VOXEL_SIZE_FIELDS, set by `from_spec` from the PolicySpec, never by flags); a policy's
    config adds its own fields after them (its further sizes first, then its head)."""

    SIZE_FIELDS = VOXEL_SIZE_FIELDS

    image_height: int = 224
    image_width: int = 224
    grid_height: int = 56
    grid_width: int = 56
    steps: int = 6  # T
    height_bins: int = 32  # Z
    gripper_bins: int = 32
    rotation_classes: int = 48  # pca1d: 48 (seed); euler: 3 x n; kmeans: K
    rotation_mode: str = "pca1d"
    height_min: float = 0.0  # world Z range of the height bins, metres (normalises start h)
    height_max: float = 1.0
    gripper_min: float = -1.0  # gripper command range (normalises the gripper-state input)
    gripper_max: float = 1.0

    @classmethod
    def sizes_from_spec(cls, spec: PolicySpec, stats: Any = None) -> dict:
        return voxel_sizes_from_spec(spec)


# The help of `gripper_input` in the configs of the voxel_volume policies after para_dino_kv.
GRIPPER_INPUT_HELP = (
    "condition on the gripper command being executed (a 4th start-keypoint value), as "
    "para_dino_kv's gripper_input"
)


def check_head_widths(cfg, positive=(), non_negative=()) -> None:
    """ValueError naming the field where one of `positive` is <= 0 or of `non_negative` < 0."""
    name = type(cfg).__name__
    for f in positive:
        if getattr(cfg, f) <= 0:
            raise ValueError(f"{name}.{f} must be > 0, got {getattr(cfg, f)}")
    for f in non_negative:
        if getattr(cfg, f) < 0:
            raise ValueError(f"{name}.{f} must be >= 0, got {getattr(cfg, f)}")


def check_attention(cfg) -> None:
    """ValueError unless d_model splits into n_heads heads and dropout is in [0, 1)."""
    name = type(cfg).__name__
    if cfg.d_model % cfg.n_heads:
        raise ValueError(
            f"{name}: d_model ({cfg.d_model}) must be divisible by n_heads ({cfg.n_heads})"
        )
    if not 0.0 <= cfg.dropout < 1.0:
        raise ValueError(f"{name}.dropout must be in [0, 1), got {cfg.dropout}")


def check_voxel_sizes(cfg) -> None:
    """ValueError naming the field when a voxel_volume config's sizes are inconsistent."""
    name = type(cfg).__name__
    for f in ("image_height", "image_width", "grid_height", "grid_width", "steps"):
        if getattr(cfg, f) <= 0:
            raise ValueError(f"{name}.{f} must be > 0, got {getattr(cfg, f)}")
    for f in ("height_bins", "gripper_bins", "rotation_classes"):
        if getattr(cfg, f) <= 0:
            raise ValueError(f"{name}.{f} must be > 0, got {getattr(cfg, f)}")
    if cfg.rotation_mode == "euler" and cfg.rotation_classes % 3:
        raise ValueError(f"{name}: euler rotation_classes must be 3 x n_bins")
    if not cfg.height_max > cfg.height_min:
        raise ValueError(f"{name}: needs height_min < height_max")
    if not cfg.gripper_max > cfg.gripper_min:
        raise ValueError(f"{name}: needs gripper_min < gripper_max")


def volume_loss(volume: torch.Tensor, voxel_index: torch.Tensor) -> torch.Tensor:
    """CE per timestep over the flattened voxels: volume (B, T, Z, Hg, Wg) logits, voxel_index
    (B, T) flat z * Hg * Wg + y * Wg + x targets, IGNORE_INDEX where the target left the image
    (a zero that keeps the graph when every target did)."""
    vol = volume.flatten(2)  # (B, T, Z*Hg*Wg)
    if not (voxel_index != IGNORE_INDEX).any():
        return vol.sum() * 0.0
    return F.cross_entropy(vol.flatten(0, 1), voxel_index.flatten(), ignore_index=IGNORE_INDEX)


def heatmap_loss(heatmap_logits: torch.Tensor, batch: dict, grid_width: int) -> tuple:
    """CE per step over the flattened cells of heatmap logits (B, T, Hg, Wg) against the target
    cell, the targets out of the image (voxel_index IGNORE_INDEX) ignored (a zero that keeps
    the graph when every target is) -> (loss, the target cell (B, T) flat y * Wg + x of the
    batch's voxel clipped into the grid, in_view (B, T) bool)."""
    heat = heatmap_logits.flatten(2)  # (B, T, Hg*Wg)
    vox = batch["voxel"]  # (B, T, 3) (z, y, x), the cell clipped into the grid
    cell = vox[..., 1] * grid_width + vox[..., 2]  # (B, T) the target cell
    in_view = batch["voxel_index"] != IGNORE_INDEX  # (B, T)
    if not in_view.any():
        return heat.sum() * 0.0, cell, in_view
    target = torch.where(in_view, cell, torch.full_like(cell, IGNORE_INDEX))  # (B, T)
    loss = F.cross_entropy(heat.flatten(0, 1), target.flatten(), ignore_index=IGNORE_INDEX)
    return loss, cell, in_view


def heatmap_losses(xy, z, g, r, height_loss_weight: float, train_cfg) -> dict:
    """The loss of a heatmap + height model from its parts (heatmap, height, gripper and
    rotation CE): xy + height_loss_weight * z + gripper_loss_weight * g
    + rotation_loss_weight * r."""
    total = (
        xy
        + height_loss_weight * z
        + train_cfg.gripper_loss_weight * g
        + train_cfg.rotation_loss_weight * r
    )
    return {"loss": total, "xy": xy, "z": z, "g": g, "r": r}


def cell_choice(heatmap_logits: torch.Tensor) -> tuple:
    """Heatmap logits (B, T, Hg, Wg) -> (p(cell) (B, T, Hg*Wg), the argmax cell (B, T) flat
    y * Wg + x, its probability (B, T))."""
    B, T = heatmap_logits.shape[0], heatmap_logits.shape[1]
    flat = heatmap_logits.reshape(B, T, -1)  # (B, T, Hg*Wg)
    prob = torch.softmax(flat, dim=-1)  # (B, T, Hg*Wg)
    cell = flat.argmax(dim=-1)  # (B, T)
    return prob, cell, prob.gather(-1, cell[..., None]).squeeze(-1)  # ..., (B, T)


def volume_losses(out: dict, batch: dict, spec: PolicySpec, train_cfg) -> dict:
    """The loss of a model with full volume logits and action-token gripper / rotation logits:
    volume CE + gripper_loss_weight * gripper CE + rotation_loss_weight * rotation CE."""
    loss_v = volume_loss(out["volume_logits"], batch["voxel_index"])  # ()
    loss_g, loss_r = class_losses(out, batch, spec)  # (), ()
    total = (
        loss_v + train_cfg.gripper_loss_weight * loss_g + train_cfg.rotation_loss_weight * loss_r
    )
    return {"loss": total, "v": loss_v, "g": loss_g, "r": loss_r}


def voxel_outputs(voxel, voxel_prob, logits: dict, heatmap, spec: PolicySpec) -> dict:
    """The voxel_volume graph outputs: voxel (B, T, 3) (z, y, x), voxel_prob (B, T), the bins
    and logits of `logits` (gripper and rotation, (B, T, G) and (B, T, R)), heatmap
    (B, T, Hg, Wg)."""
    cls = class_predictions(logits, spec)
    return {
        "voxel": voxel,
        "voxel_prob": voxel_prob,
        "gripper_bin": cls["gripper_bin"],
        "rotation_bin": cls["rotation_bin"],
        "gripper_logits": cls["gripper_logits"],
        "rotation_logits": cls["rotation_logits"],
        "heatmap": heatmap,
    }


def volume_outputs(out: dict, spec: PolicySpec, heatmap: str = "sum") -> dict:
    """The voxel_volume graph outputs of a model with full volume logits (B, T, Z, Hg, Wg)
    (`out["volume_logits"]`) and action-token gripper / rotation logits: the argmax voxel
    (z, y, x), its probability, the bins, the logits and the heatmap over the cells from the
    voxel probabilities: summed over z ("sum": a distribution over the cells, as the per-cell
    variants') or their maximum over z ("max", para_dino_kv's)."""
    vol = out["volume_logits"]  # (B, T, Z, Hg, Wg)
    B, T = vol.shape[0], vol.shape[1]
    Hg, Wg = spec.grid.height, spec.grid.width
    prob = torch.softmax(vol.reshape(B, T, -1), dim=-1)  # (B, T, Z*Hg*Wg)
    conf, idx = prob.max(dim=-1)  # (B, T), (B, T)
    voxel = torch.stack([idx // (Hg * Wg), (idx // Wg) % Hg, idx % Wg], dim=-1)  # (B, T, 3)
    cells = prob.reshape(B, T, -1, Hg, Wg)  # (B, T, Z, Hg, Wg)
    if heatmap == "max":
        heat = cells.amax(dim=2)  # (B, T, Hg, Wg)
    elif heatmap == "sum":
        heat = cells.sum(dim=2)  # (B, T, Hg, Wg)
    else:
        raise ValueError(f"heatmap must be 'sum' or 'max', got {heatmap!r}")
    return voxel_outputs(voxel, conf, out, heat, spec)
