"""What every registered policy shares: strict config (de)serialisation, graph I/O
description, and the mapping from graph input names to dataset batch keys.

A policy folder `policies/<name>/` holds `configuration_<name>.py` (a dataclass using
`PolicyConfig`) and `modeling_<name>.py` (an `nn.Module` implementing `PolicyModel`), and
registers itself with `@register("<name>", head=...)` (policies.registry).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import torch

from para_ros.core.contract import GraphInputSpec, PolicySpec, TensorSpec
from para_training.configs import ConfigKeyError, check_keys

__all__ = ["ConfigKeyError", "ExportIO", "PolicyConfig", "PolicyModel", "check_keys"]


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
