"""Model registry: architecture name -> (config class, model class).

The PolicySpec's `model.architecture` names an entry here. The seed's other variants
(single-frame PARA head, autoregressive 2D + 7-DoF heads, voxel-token models) register here
when they are added.
"""

from __future__ import annotations

from typing import Any

from para_training.configs import pick
from para_training.policies.para_dino_kv import ParaDinoKV, ParaDinoKVConfig

REGISTRY: dict[str, tuple[type, type]] = {
    "para_dino_kv": (ParaDinoKVConfig, ParaDinoKV),
}


def lookup(name: str) -> tuple[type, type]:
    return pick(REGISTRY, name, "model architecture")


def make_model(name: str, config: Any):
    _, model_cls = lookup(name)
    return model_cls(config)
